/*
** Incremental backup (src/incremental.ts): compare every page of a source schema with the page of
** the same number in a destination schema and write only the pages that differ, all inside one
** write transaction on the destination, so it ends byte-for-byte as sqlite3_backup_step() would
** leave it.
**
** Both sides are read through their pagers with the sqlite_dbpage virtual table
** (SQLITE_ENABLE_DBPAGE_VTAB): the source's uncommitted-free snapshot, WAL content included, and
** the destination as its transaction sees it. Each side is one full-table scan that stays open
** across calls, so the source scan is also what holds the source's read transaction (one snapshot
** for the whole compare). Pages cross into JS never: one call compares a chunk with memcmp.
**
** What the backup API does to the destination, and so what this does too:
**  - every source page is copied except the lock-byte page (its destination bytes stay as they
**    were, and sqlite_dbpage reads it as zeros on both sides);
**  - page 1 is always written: the source's page 1 with the in-header page count (bytes 28..31)
**    set to the source's page count and the schema cookie (40..43) set to the destination's old
**    cookie + 1; the pager's commit then sets the change counter (24, 92, 96) as for any commit;
**  - a destination larger than the source is truncated to the source's page count.
** Page 1 is written with the old cookie, and the new one is set last by PRAGMA schema_version:
** a changed cookie would make every later statement on the destination fail its schema check
** and reload a half-written schema. The PRAGMA also leaves the connection's cached schema marked
** stale (it reloads after the commit), as the backup API resets it. The truncation is the last
** sqlite_dbpage write: any later one cancels it (a multi-row INSERT doing both did not truncate).
** The transaction is committed by COMMIT, which unlike the backup API runs the destination
** btree's auto-vacuum step: that is a no-op when the new page 1 has no free pages or the old
** destination was not in full auto-vacuum mode, so begin() declines the other case.
**
** One thing sqlite_dbpage does not do and the backup API does: a page whose bytes it replaces
** keeps the btree's parse of its old content (MemPage in the pager's extra space), so the
** destination connection would go on reading stale cell counts (it did: a table added by the
** backup stayed invisible to it). Like backupOnePage(), forget_parse() clears that parse, and
** like sqlite3_backup_step() the commit resets the connection's schemas. Those are internal
** functions, so this file is compiled as one translation unit with the amalgamation (build.sh
** compiles this file instead of sqlite3.c, which it includes unchanged).
*/
#include "sqlite3.c"
#include <stdint.h>

/* SQLite's PENDING_BYTE (fixed unless a test build moves it; this build is SQLITE_UNTESTABLE). */
#define SBW_PENDING_BYTE 0x40000000

/* Extra results of step()/begin() besides SQLite codes: negative, so they never clash. */
#define SBW_WAIT    (-1)  /* the source connection is inside a write transaction: try again later */
#define SBW_RESTART (-2)  /* the source changed since the compare began (its own connection wrote) */

/* Why the destination does not qualify (sbw_pagediff_info(p, SBW_INFO_REASON)); 0: it does. */
enum {
  SBW_OK_QUALIFIES = 0,
  SBW_NO_SOURCE_PAGES,      /* the source is empty: the backup API writes a fresh database */
  SBW_NO_DEST_PAGES,        /* the destination is empty: nothing to compare */
  SBW_PAGE_SIZE_DIFFERS,
  SBW_DEST_WAL,             /* WAL destination: a full backup for now */
  SBW_DEST_AUTOVACUUM,      /* full auto-vacuum destination and a source with free pages (see top) */
  SBW_DEST_DEFENSIVE,       /* SQLITE_DBCONFIG_DEFENSIVE forbids sqlite_dbpage writes */
  SBW_DEST_READONLY
};

/* sbw_pagediff_info() selectors */
enum { SBW_INFO_PAGES, SBW_INFO_NEXT, SBW_INFO_WRITTEN, SBW_INFO_COMPARED, SBW_INFO_REASON, SBW_INFO_ERR_DEST };

typedef struct PageDiff {
  sqlite3 *pSrc, *pDst;
  char *zSrc, *zDst;          /* schema names (owned copies) */
  sqlite3_stmt *pSrcScan;     /* SELECT data FROM sqlite_dbpage(zSrc): open = source snapshot */
  sqlite3_stmt *pDstScan;     /* SELECT data FROM sqlite_dbpage(zDst) */
  sqlite3_stmt *pPut;         /* INSERT INTO sqlite_dbpage(pgno,data,schema) on the destination */
  Pager *pDstPager;           /* the destination schema's pager, as of begin() */
  unsigned char *aPage1;      /* the patched page 1 (szPage bytes) */
  int szPage;
  unsigned nSrc, nDst;        /* page counts as of begin() */
  unsigned iNext;             /* next page to compare; 0 before begin() */
  unsigned nWritten, nCompared;
  unsigned iDataVersion;      /* the source pager's data version as of begin() */
  unsigned iCookie;           /* the destination's new schema cookie (old + 1) */
  int reason;                 /* SBW_* qualification result of the last begin() */
  int errDest;                /* the last error is the destination connection's (else the source's) */
} PageDiff;

static int prepare(sqlite3 *db, const char *zSql, sqlite3_stmt **pp){
  return sqlite3_prepare_v3(db, zSql, -1, SQLITE_PREPARE_PERSISTENT, pp, 0);
}

/* The page count of a schema (sqlite3BtreeLastPage(), as the backup API and sqlite_dbpage use). */
static int page_count(sqlite3 *db, const char *zSchema, unsigned *pN){
  sqlite3_stmt *p = 0;
  char *zSql = sqlite3_mprintf("PRAGMA \"%w\".page_count", zSchema);
  int rc = zSql ? prepare(db, zSql, &p) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){ *pN = (unsigned)sqlite3_column_int64(p, 0); rc = SQLITE_OK; }
  }
  sqlite3_finalize(p);
  return rc;
}

static unsigned get4(const unsigned char *a){
  return ((unsigned)a[0]<<24) | ((unsigned)a[1]<<16) | ((unsigned)a[2]<<8) | a[3];
}
static void put4(unsigned char *a, unsigned v){
  a[0] = (unsigned char)(v>>24); a[1] = (unsigned char)(v>>16); a[2] = (unsigned char)(v>>8); a[3] = (unsigned char)v;
}

/* Ends the scans (and so the source's read transaction) and rolls the destination back. */
static void rewind_diff(PageDiff *p){
  sqlite3_reset(p->pSrcScan);
  sqlite3_reset(p->pDstScan);
  sqlite3_reset(p->pPut);
  if( p->iNext && !sqlite3_get_autocommit(p->pDst) ) sqlite3_exec(p->pDst, "ROLLBACK", 0, 0, 0);
  p->iNext = 0;
  p->nWritten = p->nCompared = 0;
}

void sbw_pagediff_close(PageDiff *p){
  if( p==0 ) return;
  rewind_diff(p);
  /* Destination calls end here: finalizing its last statement may free a zombie connection. */
  sqlite3_finalize(p->pSrcScan);
  sqlite3_finalize(p->pDstScan);
  sqlite3_finalize(p->pPut);
  sqlite3_free(p->zSrc);
  sqlite3_free(p->zDst);
  sqlite3_free(p->aPage1);
  sqlite3_free(p);
}

/* Prepares the statements. On failure *pp is 0 and the error is on the connection named by
** *pErrDest (1: destination). */
int sbw_pagediff_open(sqlite3 *pSrc, const char *zSrc, sqlite3 *pDst, const char *zDst, PageDiff **pp, int *pErrDest){
  PageDiff *p = sqlite3_malloc(sizeof(*p));
  int rc = SQLITE_NOMEM;
  *pp = 0;
  *pErrDest = 1;
  if( p==0 ) return rc;
  memset(p, 0, sizeof(*p));
  p->pSrc = pSrc;
  p->pDst = pDst;
  p->zSrc = sqlite3_mprintf("%s", zSrc);
  p->zDst = sqlite3_mprintf("%s", zDst);
  if( p->zSrc && p->zDst ){
    *pErrDest = 0;
    rc = prepare(pSrc, "SELECT data FROM sqlite_dbpage(?1)", &p->pSrcScan);
    if( rc==SQLITE_OK ){
      *pErrDest = 1;
      rc = prepare(pDst, "SELECT data FROM sqlite_dbpage(?1)", &p->pDstScan);
    }
    if( rc==SQLITE_OK ) rc = prepare(pDst, "INSERT INTO sqlite_dbpage(pgno, data, schema) VALUES(?1, ?2, ?3)", &p->pPut);
    if( rc==SQLITE_OK ){
      sqlite3_bind_text(p->pSrcScan, 1, p->zSrc, -1, SQLITE_STATIC);
      sqlite3_bind_text(p->pDstScan, 1, p->zDst, -1, SQLITE_STATIC);
      sqlite3_bind_text(p->pPut, 3, p->zDst, -1, SQLITE_STATIC);
    }
  }
  if( rc!=SQLITE_OK ){
    sbw_pagediff_close(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

/* Makes the destination's btree parse page pgno again from its new bytes (see the top). */
static void forget_parse(PageDiff *p, unsigned pgno){
  DbPage *pPg = 0;
  if( sqlite3PagerGet(p->pDstPager, pgno, &pPg, 0)==SQLITE_OK ){
    ((u8*)sqlite3PagerGetExtra(pPg))[0] = 0;  /* MemPage.isInit, as backupOnePage() does */
  }
  sqlite3PagerUnref(pPg);
}

static int put_page(PageDiff *p, unsigned pgno, const void *aData){
  int rc;
  sqlite3_bind_int64(p->pPut, 1, pgno);
  sqlite3_bind_blob(p->pPut, 2, aData, p->szPage, SQLITE_STATIC);
  rc = sqlite3_step(p->pPut);
  sqlite3_reset(p->pPut);
  if( rc!=SQLITE_DONE ) return rc;
  forget_parse(p, pgno);
  p->nWritten++;
  return SQLITE_OK;
}

/* Whether two pages are equal. This libc's memcmp goes byte by byte (a profile of a 300 MiB
** compare spent most of its time there); 8 bytes at a time is several times faster. */
static int same_page(const unsigned char *a, const unsigned char *b, int n){
  int i;
  for(i=0; i+8<=n; i+=8){
    uint64_t x, y;
    memcpy(&x, a+i, 8);
    memcpy(&y, b+i, 8);
    if( x!=y ) return 0;
  }
  for(; i<n; i++) if( a[i]!=b[i] ) return 0;
  return 1;
}

/* Steps a scan to its next page; SQLITE_ROW or an error (a scan that ends early is corrupt). */
static int scan(sqlite3_stmt *pScan){
  int rc = sqlite3_step(pScan);
  return rc==SQLITE_DONE ? SQLITE_CORRUPT : rc;
}

static unsigned data_version(PageDiff *p){
  unsigned v = 0;
  sqlite3_file_control(p->pSrc, p->zSrc, SQLITE_FCNTL_DATA_VERSION, &v);
  return v;
}

/*
** Starts a compare: BEGIN EXCLUSIVE on the destination (as the backup API locks it), opens the
** source snapshot, reads both page 1s and decides whether the destination qualifies. If it does,
** keeps the new page 1 for the end and returns SQLITE_OK with reason 0. If not, rolls back and returns SQLITE_OK with
** the reason. SQLITE_BUSY: the destination is locked, SBW_WAIT: the source is mid-write; nothing
** is held then. Any other result is an error (nothing is held either).
*/
int sbw_pagediff_begin(PageDiff *p){
  int rc;
  int defensive = 0;
  const unsigned char *aSrc, *aDst;
  rewind_diff(p);
  p->reason = SBW_OK_QUALIFIES;
  p->errDest = 1;
  if( sqlite3_db_readonly(p->pDst, p->zDst)!=0 ){ p->reason = SBW_DEST_READONLY; return SQLITE_OK; }
  sqlite3_db_config(p->pDst, SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive);
  if( defensive ){ p->reason = SBW_DEST_DEFENSIVE; return SQLITE_OK; }
  /* As sqlite3_backup_step(): no copy while the source connection has a write open. */
  if( sqlite3_txn_state(p->pSrc, p->zSrc)==SQLITE_TXN_WRITE ) return SBW_WAIT;
  /* Empty: checked before BEGIN, which would give it a page 1 of its own. */
  rc = page_count(p->pDst, p->zDst, &p->nDst);
  if( rc!=SQLITE_OK ) return rc;
  if( p->nDst==0 ){ p->reason = SBW_NO_DEST_PAGES; return SQLITE_OK; }

  rc = sqlite3_exec(p->pDst, "BEGIN EXCLUSIVE", 0, 0, 0);
  if( rc!=SQLITE_OK ) return rc;
  p->iNext = 1;  /* from here on rewind_diff() rolls back */
  p->pDstPager = sqlite3BtreePager(p->pDst->aDb[sqlite3FindDbName(p->pDst, p->zDst)].pBt);

  p->errDest = 0;
  rc = sqlite3_step(p->pSrcScan);
  if( rc==SQLITE_DONE ){ p->reason = SBW_NO_SOURCE_PAGES; goto decline; }
  if( rc!=SQLITE_ROW ) goto fail;
  rc = page_count(p->pSrc, p->zSrc, &p->nSrc);
  if( rc!=SQLITE_OK ) goto fail;
  p->iDataVersion = data_version(p);

  p->errDest = 1;
  rc = sqlite3_step(p->pDstScan);
  if( rc==SQLITE_DONE ){ p->reason = SBW_NO_DEST_PAGES; goto decline; }
  if( rc!=SQLITE_ROW ) goto fail;
  rc = page_count(p->pDst, p->zDst, &p->nDst);
  if( rc!=SQLITE_OK ) goto fail;

  aSrc = sqlite3_column_blob(p->pSrcScan, 0);
  aDst = sqlite3_column_blob(p->pDstScan, 0);
  if( sqlite3_column_bytes(p->pSrcScan, 0)!=sqlite3_column_bytes(p->pDstScan, 0) ){
    p->reason = SBW_PAGE_SIZE_DIFFERS; goto decline;
  }
  if( aDst[18]==2 || aDst[19]==2 ){ p->reason = SBW_DEST_WAL; goto decline; }
  if( get4(&aDst[52])!=0 && get4(&aDst[64])==0 && get4(&aSrc[36])!=0 ){
    p->reason = SBW_DEST_AUTOVACUUM; goto decline;
  }
  if( p->szPage!=sqlite3_column_bytes(p->pSrcScan, 0) ){
    sqlite3_free(p->aPage1);
    p->szPage = sqlite3_column_bytes(p->pSrcScan, 0);
    p->aPage1 = sqlite3_malloc(p->szPage);
    if( p->aPage1==0 ){ p->szPage = 0; rc = SQLITE_NOMEM; goto fail; }
  }
  memcpy(p->aPage1, aSrc, p->szPage);
  put4(&p->aPage1[28], p->nSrc);
  memcpy(&p->aPage1[40], &aDst[40], 4);
  p->iCookie = get4(&aDst[40])+1;
  p->nCompared = 1;
  p->iNext = 2;
  return SQLITE_OK;

decline:
  rewind_diff(p);
  return SQLITE_OK;
fail:
  return rc;  /* the caller reads the error, then rewinds */
}

/*
** Compares up to nPage more pages (all when negative) and writes the differing ones. SQLITE_OK:
** more remain; SQLITE_DONE: all compared, the destination's size set, scans ended (commit next);
** SBW_WAIT / SBW_RESTART (see above; nothing was read); anything else is an error.
*/
int sbw_pagediff_step(PageDiff *p, int nPage){
  const unsigned pending = (unsigned)(SBW_PENDING_BYTE / p->szPage) + 1;
  int i, rc = SQLITE_OK;
  char *zSql;
  if( sqlite3_txn_state(p->pSrc, p->zSrc)==SQLITE_TXN_WRITE ) return SBW_WAIT;
  if( data_version(p)!=p->iDataVersion ) return SBW_RESTART;
  for(i=0; (nPage<0 || i<nPage) && p->iNext<=p->nSrc; i++, p->iNext++){
    const unsigned pgno = p->iNext;
    const unsigned char *aSrc;
    int same = 0;
    p->errDest = 0;
    if( (rc = scan(p->pSrcScan))!=SQLITE_ROW ) return rc;
    aSrc = sqlite3_column_blob(p->pSrcScan, 0);
    if( pgno<=p->nDst ){
      p->errDest = 1;
      if( (rc = scan(p->pDstScan))!=SQLITE_ROW ) return rc;
      same = same_page(aSrc, sqlite3_column_blob(p->pDstScan, 0), p->szPage);
      p->nCompared++;
    }
    /* The lock-byte page is never written, as in the backup API (the pager refuses it anyway). */
    if( !same && pgno!=pending ){
      p->errDest = 1;
      if( (rc = put_page(p, pgno, aSrc))!=SQLITE_OK ) return rc;
    }
  }
  if( p->iNext<=p->nSrc ) return SQLITE_OK;
  sqlite3_reset(p->pSrcScan);
  sqlite3_reset(p->pDstScan);
  p->errDest = 1;
  if( (rc = put_page(p, 1, p->aPage1))!=SQLITE_OK ) return rc;
  if( p->nDst>p->nSrc ){
    /* "INSERT (pgno, NULL)" drops pgno and the later pages at commit. */
    sqlite3_bind_int64(p->pPut, 1, (sqlite3_int64)p->nSrc+1);
    sqlite3_bind_null(p->pPut, 2);
    rc = sqlite3_step(p->pPut);
    sqlite3_reset(p->pPut);
    if( rc!=SQLITE_DONE ) return rc;
  }
  zSql = sqlite3_mprintf("PRAGMA \"%w\".schema_version=%u", p->zDst, p->iCookie);
  rc = zSql ? sqlite3_exec(p->pDst, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  return rc==SQLITE_OK ? SQLITE_DONE : rc;
}

/* COMMIT on the destination; on failure the caller reads the error, then closes (rolls back). */
int sbw_pagediff_commit(PageDiff *p){
  int rc;
  p->errDest = 1;
  rc = sqlite3_exec(p->pDst, "COMMIT", 0, 0, 0);
  if( rc==SQLITE_OK ){
    p->iNext = 0;
    sqlite3ResetAllSchemasOfConnection(p->pDst);  /* as sqlite3_backup_step() does when done */
  }
  return rc;
}

/* Restarts from a fresh snapshot: the caller calls begin() again. */
void sbw_pagediff_rewind(PageDiff *p){ rewind_diff(p); }

unsigned sbw_pagediff_info(PageDiff *p, int op){
  switch( op ){
    case SBW_INFO_PAGES: return p->nSrc;
    case SBW_INFO_NEXT: return p->iNext;
    case SBW_INFO_WRITTEN: return p->nWritten;
    case SBW_INFO_COMPARED: return p->nCompared;
    case SBW_INFO_REASON: return (unsigned)p->reason;
    case SBW_INFO_ERR_DEST: return (unsigned)p->errDest;
  }
  return 0;
}
