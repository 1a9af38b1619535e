/*
** Incremental backup (src/ops/incremental.ts): compare every page of a source schema with the page
** of the same number in a destination schema and write only the pages that differ, all inside one
** write transaction on the destination, so it ends byte-for-byte as sqlite3_backup_step() would
** leave it. An empty destination gets the fresh copy instead (fresh_qualifies()): every page
** written straight into the file.
**
** Each side's page 1 is read through its pager with the sqlite_dbpage virtual table
** (SQLITE_ENABLE_DBPAGE_VTAB), and the source's scan holds the source's read transaction: one
** snapshot for the whole compare, WAL content included. It stays open across calls, except for a
** rollback-journal file source, whose writers it would keep out: that one is reset after each
** call and stepped again at the next, and a commit by anyone meanwhile (the data version moved
** on) restarts the compare, as another connection's write restarts the backup API. The other
** pages are read in large windows straight from the files, as the pagers would read them (see
** read_window()). Pages cross into JS never: one call compares a chunk with same_page().
**
** What the backup API does to the destination, and so what this does too:
**  - every source page is copied except the lock-byte page (its destination bytes stay as they
**    were, and sqlite_dbpage reads it as zeros on both sides);
**  - page 1 is always written: the source's page 1 with the in-header page count (bytes 28..31)
**    set to the source's page count and the schema cookie (40..43) set to the destination's old
**    cookie + 1; the pager's commit then sets the change counter (24, 92, 96) as for any commit;
**  - a destination larger than the source is truncated to the source's page count;
**  - a destination in WAL mode gets page 1's bytes 18/19 (file format versions) set to 2 (as
**    sqlite3BtreeSetVersion(pDest, 2) does there), whatever the source's are.
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
**
** A WAL destination: begin() first checkpoints it (TRUNCATE), so that its pages are read from the
** main file in the windows; a checkpoint that cannot finish (BUSY: a reader or a writer in the
** way) is no error, as the compare reads the destination's WAL frames on top of the file anyway
** (read_window()). The writes go into its WAL as for any WAL transaction (the spill and the
** COMMIT append frames; ROLLBACK drops them; the WAL is synced after the COMMIT, sbw_sync_wal()),
** and after the COMMIT another TRUNCATE checkpoint moves the result into the main file, where it
** can (a BUSY one leaves it in the WAL, committed and durable).
*/
#include "sqlite3.c"
#include <stdint.h>
#include <unistd.h>

/* SQLite's PENDING_BYTE (fixed unless a test build moves it; this build is SQLITE_UNTESTABLE). */
#define SBW_PENDING_BYTE 0x40000000

/* A WAL position: the WAL's two salts (as the header holds them), its last committed frame, the
** running checksum after that frame (two words) and the checksums' byte order (bigEndCksum). */
#define SBW_WAL_WORDS 6

/* Extra results of step()/begin() besides SQLite codes: negative, so they never clash. */
#define SBW_WAIT    (-1)  /* the source connection is inside a write transaction: try again later */
#define SBW_RESTART (-2)  /* the source changed since the compare began (its own connection wrote) */

/* Why the destination does not qualify (sbw_pagediff_info(p, SBW_INFO_REASON)); 0: it does. */
enum {
  SBW_OK_QUALIFIES = 0,
  SBW_NO_SOURCE_PAGES,      /* the source is empty: the backup API writes a fresh database */
  SBW_NO_DEST_PAGES,        /* the destination is empty: nothing to compare */
  SBW_PAGE_SIZE_DIFFERS,
  SBW_DEST_WAL,             /* page 1 says WAL but the destination's pager is not in WAL mode */
  SBW_DEST_AUTOVACUUM,      /* full auto-vacuum destination and a source with free pages (see top) */
  SBW_DEST_DEFENSIVE,       /* SQLITE_DBCONFIG_DEFENSIVE forbids sqlite_dbpage writes */
  SBW_DEST_READONLY
};

/* sbw_pagediff_info() selectors */
enum { SBW_INFO_PAGES, SBW_INFO_NEXT, SBW_INFO_WRITTEN, SBW_INFO_COMPARED, SBW_INFO_REASON, SBW_INFO_ERR_DEST,
       SBW_INFO_PAGE_SIZE, SBW_INFO_WINDOW_PAGES, SBW_INFO_FRESH, SBW_INFO_AHEAD_FIRST, SBW_INFO_AHEAD_PAGES };

/* A buffer of destination pages the host reads ahead (sbw_pagediff_ahead()). */
enum { AHEAD_FREE, AHEAD_READING, AHEAD_READY };
typedef struct Ahead {
  unsigned char *a;
  int nAlloc;                 /* a's size, pages */
  unsigned iFirst;            /* the pages it holds (or will): iFirst.. */
  int nPage;
  int state;                  /* AHEAD_* */
  unsigned iPass;             /* PageDiff.iPass when claimed */
} Ahead;

typedef struct PageDiff {
  sqlite3 *pSrc, *pDst;
  char *zSrc, *zDst;          /* schema names (owned copies) */
  sqlite3_stmt *pSrcScan;     /* SELECT data FROM sqlite_dbpage(zSrc): open = source snapshot */
  sqlite3_stmt *pDstScan;     /* SELECT data FROM sqlite_dbpage(zDst) */
  sqlite3_stmt *pPut;         /* INSERT INTO sqlite_dbpage(pgno,data,schema) on the destination */
  Btree *pDstBt, *pSrcBt;     /* the schemas' btrees, as of begin() */
  Pager *pDstPager;           /* the destination schema's pager, as of begin() */
  Pager *pSrcPager;           /* the source schema's pager, as of begin() */
  unsigned char *aSrcWin, *aDstWin;  /* one window of pages of each side (nWin pages each) */
  int nWin;
  unsigned iWin;              /* the first page of the window read (0: none) */
  int nWinSrc, nWinDst;       /* its pages read from each side */
  unsigned char *aDstCur;     /* the window's destination pages: aDstWin, or in aAhead[] */
  Ahead aAhead[2];            /* destination pages read ahead by the host (sbw_pagediff_ahead()) */
  unsigned iPass;             /* bumped by every rewind: a read ahead claimed before it is stale */
  int bDstCached;             /* the destination's cache held pages besides page 1 at begin() */
  int bDstWal;                /* the destination's pager is in WAL mode (as of begin()) */
  int bAllowFresh;            /* an empty destination gets the fresh copy (sbw_pagediff_fresh()) */
  int bFresh;                 /* this pass is a fresh copy (see fresh_qualifies()) */
  int szSpillOld;             /* the destination cache's spill threshold before begin() (0: not changed) */
  unsigned char *aPage1;      /* the patched page 1 (szPage bytes) */
  int szPage;
  unsigned nSrc, nDst;        /* page counts as of begin() */
  unsigned iNext;             /* next page to compare; 0 before begin() */
  unsigned nWritten, nCompared;
  unsigned iDataVersion;      /* the source pager's data version as of begin() */
  int bReleased;              /* the source's read lock is let go between calls now (see releases()) */
  unsigned iCookie;           /* the destination's new schema cookie (old + 1) */
  int reason;                 /* SBW_* qualification result of the last begin() */
  unsigned *aPgno;            /* the pages put_page() wrote this pass, in order (sbw_pagediff_pgnos()) */
  int nPgno, nPgnoAlloc;
  int bKeepOld;               /* put_page() keeps each page's old bytes (sbw_pagediff_keep_old()) */
  unsigned char *aOld;        /* those bytes, szPage per entry of aPgno[] (0s: a page past the end) */
  int nOldAlloc;              /* entries aOld[] has room for; -1: past SBW_OLD_BYTES, none kept */
  unsigned char *aOldPage1;   /* the destination's page 1 as of begin(), when keeping old bytes */
  int bHint;                  /* the destination holds the source as of a WAL snapshot (sbw_pagediff_hint()) */
  u32 aHint[SBW_WAL_WORDS];   /* that snapshot's WAL position (see note_snapshot()) */
  u32 aSnap[SBW_WAL_WORDS];   /* this pass's source snapshot's (0s: no WAL) */
  int bCand;                  /* this pass compares only aCand[] (see build_candidates()) */
  unsigned *aCand;            /* pages with a WAL frame after the hint's, ascending */
  int nCand, nCandAlloc, iCand;
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

/*
** The destination's cache spills dirty pages to the file (after an fsync of the journal) once it
** holds more than its cache size (2 MiB by default): 1% of a 330 MiB database is past that. For
** this transaction the threshold is SBW_SPILL_BYTES of pages at least, then it is set back.
*/
#ifndef SBW_SPILL_BYTES
# define SBW_SPILL_BYTES (16<<20)
#endif
static void raise_spill(PageDiff *p){
  PCache *pCache = p->pDstPager->pPCache;
  int n = SBW_SPILL_BYTES/(pCache->szPage+pCache->szExtra);
  if( p->szSpillOld==0 && n>pCache->szSpill ){
    p->szSpillOld = pCache->szSpill;
    pCache->szSpill = n;
  }
}
static void restore_spill(PageDiff *p){
  if( p->szSpillOld ){
    p->pDstPager->pPCache->szSpill = p->szSpillOld;
    p->szSpillOld = 0;
  }
}

/*
** Makes the committed frames of a WAL database durable. This build's WAL default is
** synchronous=NORMAL, under which a commit is synced only by the next checkpoint (which a reader
** may hold off, and which fails quietly in commit() below). A backup is durable once it
** resolves, so both paths call this after their commit: commit() below, and the full copy
** (src/ops/backup.ts). A no-op outside WAL mode, and when the connection chose
** synchronous=OFF itself.
*/
int sbw_sync_wal(sqlite3 *db, const char *zSchema){
  const int iDb = sqlite3FindDbName(db, zSchema);
  Pager *pPager;
  if( iDb<0 || db->aDb[iDb].pBt==0 ) return SQLITE_OK;
  if( db->aDb[iDb].bSyncSet && db->aDb[iDb].safety_level==PAGER_SYNCHRONOUS_OFF ) return SQLITE_OK;
  pPager = sqlite3BtreePager(db->aDb[iDb].pBt);
  if( !pagerUseWal(pPager) ) return SQLITE_OK;
  return sqlite3OsSync(sqlite3PagerJrnlFile(pPager), SQLITE_SYNC_NORMAL);
}

/*
** Sets the spill threshold (in pages) of zSchema's cache on db to n and returns the one before
** (-1: no such schema). The full copy raises it for the copy and sets it back after
** (src/ops/backup.ts): PRAGMA cache_spill reads back max(cache_size, threshold), not the value.
*/
int sbw_cache_spill(sqlite3 *db, const char *zSchema, int n){
  const int iDb = sqlite3FindDbName(db, zSchema);
  PCache *pCache;
  int old;
  if( iDb<0 || db->aDb[iDb].pBt==0 ) return -1;
  pCache = sqlite3BtreePager(db->aDb[iDb].pBt)->pPCache;
  old = pCache->szSpill;
  pCache->szSpill = n;
  return old;
}

/* Ends the scans (and so the source's read transaction) and rolls the destination back. */
static void rewind_diff(PageDiff *p){
  int i;
  sqlite3_reset(p->pSrcScan);
  p->bReleased = 0;
  sqlite3_reset(p->pDstScan);
  sqlite3_reset(p->pPut);
  if( p->iNext && !sqlite3_get_autocommit(p->pDst) ) sqlite3_exec(p->pDst, "ROLLBACK", 0, 0, 0);
  p->iNext = 0;
  p->nWritten = p->nCompared = 0;
  p->nPgno = 0;
  if( p->nOldAlloc<0 ) p->nOldAlloc = 0;
  p->bCand = 0;
  restore_spill(p);
  sqlite3_free(p->aSrcWin);
  sqlite3_free(p->aDstWin);
  p->aSrcWin = p->aDstWin = 0;
  p->nWin = 0;
  p->iWin = 0;
  p->aDstCur = 0;
  /* What was read ahead may predate the rollback; a read still under way is dropped when done. */
  p->iPass++;
  for(i=0; i<2; i++) if( p->aAhead[i].state==AHEAD_READY ) p->aAhead[i].state = AHEAD_FREE;
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
  sqlite3_free(p->aPgno);
  sqlite3_free(p->aOld);
  sqlite3_free(p->aOldPage1);
  sqlite3_free(p->aCand);
  sqlite3_free(p->aAhead[0].a);  /* the host has no read under way into them (see sbw_pagediff_ahead()) */
  sqlite3_free(p->aAhead[1].a);
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

/* Most bytes of old pages kept per pass: a pass that writes more keeps none. */
#ifndef SBW_OLD_BYTES
# define SBW_OLD_BYTES (8<<20)
#endif

/* Keeps aOld (szPage bytes; 0: a page past the destination's end, kept as zeros) as the old
** bytes of the page put_page() is about to list; gives up past SBW_OLD_BYTES or without memory. */
static void keep_old(PageDiff *p, const void *aOld){
  if( !p->bKeepOld || p->nOldAlloc<0 ) return;
  if( p->nPgno>=p->nOldAlloc ){
    const int n = p->nOldAlloc ? p->nOldAlloc*2 : 64;
    unsigned char *a = (sqlite3_int64)n*p->szPage>SBW_OLD_BYTES ? 0
        : sqlite3_realloc64(p->aOld, (sqlite3_uint64)n*p->szPage);
    if( a==0 ){
      sqlite3_free(p->aOld);
      p->aOld = 0;
      p->nOldAlloc = -1;
      return;
    }
    p->aOld = a;
    p->nOldAlloc = n;
  }
  if( aOld ) memcpy(p->aOld+(sqlite3_int64)p->nPgno*p->szPage, aOld, p->szPage);
  else memset(p->aOld+(sqlite3_int64)p->nPgno*p->szPage, 0, p->szPage);
}

/* Writes page pgno of the destination; aOld: its bytes before (see keep_old()). */
static int put_page(PageDiff *p, unsigned pgno, const void *aData, const void *aOld){
  int rc;
  if( p->nPgno==p->nPgnoAlloc ){
    const int n = p->nPgnoAlloc ? p->nPgnoAlloc*2 : 256;
    unsigned *a = sqlite3_realloc64(p->aPgno, (sqlite3_uint64)n*sizeof(unsigned));
    if( a==0 ){ sqlite3Error(p->pDst, SQLITE_NOMEM); return SQLITE_NOMEM; }
    p->aPgno = a;
    p->nPgnoAlloc = n;
  }
  keep_old(p, aOld);  /* first: aOld may be the destination's cached page, which the write changes */
  sqlite3_bind_int64(p->pPut, 1, pgno);
  sqlite3_bind_blob(p->pPut, 2, aData, p->szPage, SQLITE_STATIC);
  rc = sqlite3_step(p->pPut);
  sqlite3_reset(p->pPut);
  if( rc!=SQLITE_DONE ) return rc;
  forget_parse(p, pgno);
  p->nWritten++;
  p->aPgno[p->nPgno++] = pgno;
  return SQLITE_OK;
}

/* Whether two pages are equal. This libc's memcmp goes byte by byte (a profile of a 300 MiB
** compare spent most of its time there); 32 bytes per test, 8 at a time, is several times faster
** (one branch per 32 bytes: almost every page compared is equal to the end). */
static int same_page(const unsigned char *a, const unsigned char *b, int n){
  int i;
  for(i=0; i+32<=n; i+=32){
    uint64_t x0, x1, x2, x3, y0, y1, y2, y3;
    memcpy(&x0, a+i, 8); memcpy(&x1, a+i+8, 8); memcpy(&x2, a+i+16, 8); memcpy(&x3, a+i+24, 8);
    memcpy(&y0, b+i, 8); memcpy(&y1, b+i+8, 8); memcpy(&y2, b+i+16, 8); memcpy(&y3, b+i+24, 8);
    if( ((x0^y0) | (x1^y1) | (x2^y2) | (x3^y3))!=0 ) return 0;
  }
  for(; i<n; i++) if( a[i]!=b[i] ) return 0;
  return 1;
}

/*
** The pages are read in windows of SBW_WINDOW_BYTES per side, not page by page through the
** pagers: one xRead per window, straight into the heap (the VFS's read-ahead copy and the
** per-page calls into JS were most of the time). That reads what the pager would read:
**  - a database file whose pager keeps nothing the file lacks: not in memory, not a TEMP
**    file (whose pager keeps committed pages in its cache, pagerFlushOnCommit()), file open;
**  - source: the read transaction held by the scan (one snapshot) stops other writers and, in
**    WAL mode, any checkpoint past that snapshot, and its connection has no write open (step()
**    returns SBW_WAIT then); a page with a frame in the snapshot's WAL is read from that frame,
**    as readDbPage() does;
**  - destination: held EXCLUSIVE by this transaction, whose own writes only ever touch pages
**    already compared (a cache spill writes those), so the file still holds every page of the
**    windows not compared yet. In WAL mode the transaction holds the WAL's write lock (its
**    snapshot is the newest): a page with a committed frame is read from the WAL as for the
**    source (its spilled frames are of pages compared already); a checkpoint by another
**    connection meanwhile only writes the file's copy of such pages, from those same frames;
**  - the lock-byte page is never read (a mandatory lock there would fail the read) but zeroed,
**    as sqlite_dbpage reads it: never written either way.
** Anything else (memory and TEMP databases) is read page by page through the pager; a source
** of that kind is compared straight from its pager's pages (step()).
*/
#ifndef SBW_WINDOW_BYTES
# define SBW_WINDOW_BYTES (1<<20)
#endif

/* Pages per window (at least one, for 64 KiB pages and a smaller window). */
static int window_pages(int szPage){
  return SBW_WINDOW_BYTES/szPage > 0 ? SBW_WINDOW_BYTES/szPage : 1;
}

static int direct(Pager *pPager){
  return !pPager->memDb && !pPager->tempFile && isOpen(pPager->fd);
}

/* Reads nPage pages from iFirst on into a, from the file (see above). */
static int read_file(Pager *pPager, unsigned iFirst, int nPage, unsigned char *a, unsigned pending){
  const int sz = pPager->pageSize;
  int rc = SQLITE_OK;
  while( nPage>0 && rc==SQLITE_OK ){
    int n = nPage;
    if( pending>=iFirst && pending<iFirst+(unsigned)n ) n = (int)(pending-iFirst);
    if( n==0 ){
      memset(a, 0, sz);  /* the lock-byte page */
      n = 1;
    }else{
      rc = sqlite3OsRead(pPager->fd, a, n*sz, (i64)(iFirst-1)*sz);
      if( rc==SQLITE_IOERR_SHORT_READ ) rc = SQLITE_OK;  /* zero-filled, as readDbPage() takes it */
    }
    iFirst += n; nPage -= n; a += (i64)n*sz;
  }
  return rc;
}

/* What a pager has besides the file's bytes of nPage pages from iFirst on, put over them at a:
** frames of its WAL, and (bCache) pages of its cache. */
static int overlay(Pager *pPager, unsigned iFirst, int nPage, unsigned char *a, int bCache){
  const int sz = pPager->pageSize;
  int i, rc = SQLITE_OK;
#ifndef SQLITE_OMIT_WAL
  for(i=0; rc==SQLITE_OK && pPager->pWal && i<nPage; i++){
    u32 iFrame = 0;
    rc = sqlite3WalFindFrame(pPager->pWal, iFirst+i, &iFrame);
    if( rc==SQLITE_OK && iFrame ) rc = sqlite3WalReadFrame(pPager->pWal, iFrame, sz, a+(i64)i*sz);
  }
#endif
  /* A page in the pager's cache is read from there, as sqlite3PagerGet() does: a freelist
  ** leaf freed by the last commit is never written back (PGHDR_DONT_WRITE), so its cached
  ** bytes, which the backup API copies, may differ from the file's. */
  for(i=0; rc==SQLITE_OK && bCache && sqlite3PcachePagecount(pPager->pPCache)>0 && i<nPage; i++){
    DbPage *pPg = sqlite3PagerLookup(pPager, iFirst+i);
    if( pPg ){
      memcpy(a+(i64)i*sz, sqlite3PagerGetData(pPg), sz);
      sqlite3PagerUnrefNotNull(pPg);
    }
  }
  return rc;
}

/* Reads nPage pages of a side from iFirst on into a, as its pager sees them (bCache: cached
** pages from its cache; the destination's are compared by step() on top of the file's). */
static int read_window(Pager *pPager, unsigned iFirst, int nPage, unsigned char *a, unsigned pending, int bCache){
  const int sz = pPager->pageSize;
  int i, rc = SQLITE_OK;
  if( direct(pPager) ){
    rc = read_file(pPager, iFirst, nPage, a, pending);
    return rc==SQLITE_OK ? overlay(pPager, iFirst, nPage, a, bCache) : rc;
  }
  for(i=0; rc==SQLITE_OK && i<nPage; i++){
    DbPage *pPg = 0;
    unsigned char *aPage = a+(i64)i*sz;
    if( iFirst+i==pending ){ memset(aPage, 0, sz); continue; }
    rc = sqlite3PagerGet(pPager, iFirst+i, &pPg, 0);
    if( rc==SQLITE_OK ) memcpy(aPage, sqlite3PagerGetData(pPg), sz);
    sqlite3PagerUnref(pPg);
  }
  return rc;
}

/*
** Read ahead: a host whose reads can run off this thread (Node's thread pool) reads the
** destination's next pages there while step() compares, and step() takes a window from them
** when they hold it (dest_window()). Two buffers; the host claims one at a time with
** sbw_pagediff_ahead(), reads the file's bytes of its pages into it, and reports the bytes read
** with sbw_pagediff_ahead_done() (negative: failed, the window is read in step() then). Safe for
** the reason read_window() reads the destination at all: its transaction's own writes only touch
** pages compared already, so pages not compared yet are the file's until a rewind (a rollback,
** after which a read claimed before is dropped). The host must not close, nor start another
** claim, while a read is under way into a buffer. A claim first makes room in the heap for what
** the chunk compared meanwhile may allocate (make_room()), so that the memory does not grow under
** the read.
*/
/* Each buffer's most bytes. Larger buffers did not make a backup faster (164 MiB, 2.4% changed:
** 125 ms warm at 16 MiB, 120 at 4 MiB), but every byte of the heap is paid for by a page fault the
** first time it is touched: the heap grew to 91 MiB instead of 22, and a process's first backup
** took 60-80 ms more than the next (bench/fresh.mjs). */
#ifndef SBW_AHEAD_BYTES
# define SBW_AHEAD_BYTES (4<<20)
#endif

/* Makes the heap hold nByte more above its top without growing the memory: a read ahead goes
** into memory that must not move under it, and some engines move a memory that grows (V8 when it
** could not reserve the memory's whole range up front). What a chunk allocates while the host
** reads is mostly its written pages in the destination's cache, which the caller bounds. */
static int make_room(i64 nByte){
  const i64 need = (i64)(uintptr_t)sbrk(0) + nByte - (i64)__builtin_wasm_memory_size(0)*65536;
  return need<=0 || __builtin_wasm_memory_grow(0, (size_t)((need+65535)/65536))!=(size_t)-1;
}

/* The first page of the next window step() reads. */
static unsigned next_window(PageDiff *p){
  return p->iWin && p->iNext<p->iWin+(unsigned)p->nWinSrc ? p->iWin+(unsigned)p->nWinSrc : p->iNext;
}

/* Claims a buffer for about nPage of the destination's pages, from the first window that starts
** at page iFrom or later (and after the window step() has read) on: returns where the host reads
** the file's bytes of pages SBW_INFO_AHEAD_FIRST.. (SBW_INFO_AHEAD_PAGES of them), or 0 for
** nothing to read (none left, both buffers in use, a read under way, no memory, no compare). */
unsigned char *sbw_pagediff_ahead(PageDiff *p, unsigned iFrom, int nPage){
  Ahead *pA = 0;
  unsigned iFirst;
  int i, nWin, nMax;
  if( p->iNext<2 || p->bFresh || p->bCand || nPage<=0 || !direct(p->pDstPager) ) return 0;
  for(i=0; i<2; i++) if( p->aAhead[i].state==AHEAD_READING ) return 0;
  nWin = window_pages(p->szPage);
  nMax = SBW_AHEAD_BYTES/p->szPage > nWin ? SBW_AHEAD_BYTES/p->szPage/nWin*nWin : nWin;
  iFirst = next_window(p);
  if( iFrom>iFirst ) iFirst += (iFrom-iFirst+(unsigned)nWin-1)/(unsigned)nWin*(unsigned)nWin;
  for(i=0; i<2; i++){
    const Ahead *q = &p->aAhead[i];
    if( q->state==AHEAD_READY && q->iFirst<=iFirst && iFirst<q->iFirst+(unsigned)q->nPage ){
      iFirst = q->iFirst+(unsigned)q->nPage;
      i = -1;  /* the other buffer may hold what follows */
    }
  }
  if( iFirst>p->nDst ) return 0;
  for(i=0; i<2 && pA==0; i++){
    Ahead *q = &p->aAhead[i];
    if( q->state==AHEAD_FREE || q->iFirst+(unsigned)q->nPage<=p->iNext ) pA = q;
  }
  if( pA==0 ) return 0;
  pA->state = AHEAD_FREE;
  nPage = nPage>nMax ? nMax : (nPage+nWin-1)/nWin*nWin;
  if( (unsigned)nPage>p->nDst-iFirst+1 ) nPage = (int)(p->nDst-iFirst+1);
  if( pA->nAlloc<nPage ){
    unsigned char *a = sqlite3_realloc64(pA->a, (sqlite3_uint64)nPage*p->szPage);
    if( a==0 ) return 0;
    pA->a = a;
    pA->nAlloc = nPage;
  }
  /* Room for the chunk compared meanwhile (at most nPage pages written, each a page in the
  ** destination's cache with its headers), and some for the rest. */
  if( !make_room((i64)nPage*(p->szPage+512) + (1<<20)) ) return 0;
  pA->iFirst = iFirst;
  pA->nPage = nPage;
  pA->state = AHEAD_READING;
  pA->iPass = p->iPass;
  return pA->a;
}

/* The claimed read is over: nByte bytes read (short: the rest reads as zeros, as in
** read_file()), or failed (negative). */
void sbw_pagediff_ahead_done(PageDiff *p, int nByte){
  int i;
  for(i=0; i<2; i++){
    Ahead *pA = &p->aAhead[i];
    if( pA->state!=AHEAD_READING ) continue;
    pA->state = AHEAD_FREE;
    if( nByte>=0 && pA->iPass==p->iPass ){
      const i64 n = (i64)pA->nPage*p->szPage;
      if( nByte<n ) memset(pA->a+nByte, 0, (size_t)(n-nByte));
      pA->state = AHEAD_READY;
    }
  }
}

/* The destination's pages of the window at iFirst (p->nWinDst of them) into p->aDstCur: from a
** buffer read ahead when one holds them all, with what read_window() adds to the file's bytes. */
static int dest_window(PageDiff *p, unsigned iFirst, unsigned pending){
  int i;
  for(i=0; i<2; i++){
    const Ahead *pA = &p->aAhead[i];
    if( pA->state==AHEAD_READY && pA->iFirst<=iFirst && iFirst+(unsigned)p->nWinDst<=pA->iFirst+(unsigned)pA->nPage ){
      p->aDstCur = pA->a+(i64)(iFirst-pA->iFirst)*p->szPage;
      if( pending>=iFirst && pending<iFirst+(unsigned)p->nWinDst ){
        memset(p->aDstCur+(i64)(pending-iFirst)*p->szPage, 0, p->szPage);  /* as read_file() */
      }
      return overlay(p->pDstPager, iFirst, p->nWinDst, p->aDstCur, 0);
    }
  }
  p->aDstCur = p->aDstWin;
  return read_window(p->pDstPager, iFirst, p->nWinDst, p->aDstWin, pending, 0);
}

/* A TRUNCATE checkpoint of a WAL destination (begin(), commit()): BUSY is no error (see the top),
** so it does not wait for readers either: the connection's busy handler is off for the call (it
** would block this thread up to busy_timeout, in begin() on every restart). */
static int checkpoint_dest(PageDiff *p){
  const BusyHandler saved = p->pDst->busyHandler;
  int rc;
  p->pDst->busyHandler.xBusyHandler = 0;
  rc = sqlite3_wal_checkpoint_v2(p->pDst, p->zDst, SQLITE_CHECKPOINT_TRUNCATE, 0, 0);
  p->pDst->busyHandler = saved;
  if( rc==SQLITE_BUSY || rc==SQLITE_LOCKED ){
    sqlite3Error(p->pDst, SQLITE_OK);
    rc = SQLITE_OK;
  }
  return rc;
}

/* A rollback-journal file source, whose writers a read lock held across calls would keep out:
** step() lets it go after each call (see the top). */
static int releases(PageDiff *p){
  return direct(p->pSrcPager) && !pagerUseWal(p->pSrcPager);
}

static unsigned data_version(PageDiff *p){
  unsigned v = 0;
  sqlite3_file_control(p->pSrc, p->zSrc, SQLITE_FCNTL_DATA_VERSION, &v);
  return v;
}

/* Keeps the source's page 1 (aSrc, sz bytes) as the backup API writes it over a destination
** whose schema cookie is iOldCookie, for the end of the pass (see the top); compares from page 2. */
static int keep_page1(PageDiff *p, const unsigned char *aSrc, int sz, unsigned iOldCookie){
  if( p->szPage!=sz ){
    sqlite3_free(p->aPage1);
    p->szPage = sz;
    p->aPage1 = sqlite3_malloc(sz);
    if( p->aPage1==0 ){ p->szPage = 0; return SQLITE_NOMEM; }
  }
  memcpy(p->aPage1, aSrc, sz);
  put4(&p->aPage1[28], p->nSrc);
  put4(&p->aPage1[40], iOldCookie);
  if( p->bDstWal ) p->aPage1[18] = p->aPage1[19] = 2;  /* sqlite3BtreeSetVersion(pDest, 2) */
  p->iCookie = iOldCookie+1;
  p->iNext = 2;
  return SQLITE_OK;
}

/*
** The fresh copy: a destination with no pages (a new file) needs no compare, and the backup
** API's way into it, every page through the destination's pager, costs more than the writes
** (~40 ms per 100 MiB of 4 KiB pages here, measured with a VFS that drops every write). So the
** pages go straight into the file, a window per write, and the pager sees only pages 1 and the
** last (so that it knows the size), as sqlite_dbpage writes; its commit then syncs the file and
** ends the journal, as for any transaction. Safe because the transaction's journal (opened by
** BEGIN, which gave the empty database its page 1) records an original size of 0 and is synced
** before the first direct write, as the pager's own syncJournal() does, which also marks the
** file as written: a rollback, or the recovery of a crash, truncates the file to nothing again.
** So it qualifies only with a journal that can roll back (not journal_mode=OFF, not WAL), a file
** (read_window()'s direct()), no auto-vacuum (the commit would run its step on the new page 1)
** and the source's page size, which begin() gives the destination first as the backup API does
** (checked again in begin_fresh(), once the snapshot is open).
*/
static int fresh_qualifies(PageDiff *p){
  const int mode = sqlite3PagerGetJournalMode(p->pDstPager);
  return direct(p->pDstPager) && mode!=PAGER_JOURNALMODE_OFF && mode!=PAGER_JOURNALMODE_WAL
      && !p->pDstBt->pBt->autoVacuum;
}

/* The rest of begin() for a fresh copy, with BEGIN done and the source's snapshot open. */
static int begin_fresh(PageDiff *p){
  const int sz = sqlite3_column_bytes(p->pSrcScan, 0);
  Pager *pPager = p->pDstPager;
  int rc;
  if( sz!=sqlite3BtreeGetPageSize(p->pDstBt) ){
    rewind_diff(p);
    p->reason = SBW_NO_DEST_PAGES;  /* the source's page size changed meanwhile: the backup API copes */
    return SQLITE_OK;
  }
  rc = keep_page1(p, sqlite3_column_blob(p->pSrcScan, 0), sz, 0);  /* a new database's cookie */
  /* What the pager does before it first writes the file itself: sync the journal (as the
  ** connection's settings ask) and enter PAGER_WRITER_DBMOD, so a rollback truncates the file. */
  if( rc==SQLITE_OK && (rc = syncJournal(pPager, 0))!=SQLITE_OK ) sqlite3Error(p->pDst, rc);
  p->nCompared = 0;
  return rc;
}

/* A fresh copy of n pages from iFirst on, whose bytes are at a: straight into the file in runs,
** but the lock-byte page (never written, as in the backup API) and the last page (written
** through the pager, see fresh_qualifies()). */
static int write_fresh(PageDiff *p, const unsigned char *a, unsigned iFirst, int n, unsigned pending){
  const int sz = p->szPage;
  int rc = SQLITE_OK;
  while( n>0 && rc==SQLITE_OK ){
    int m = 0;
    while( m<n && iFirst+m!=pending && iFirst+m!=p->nSrc ) m++;
    if( m>0 ){
      rc = sqlite3OsWrite(p->pDstPager->fd, a, m*sz, (i64)(iFirst-1)*sz);
      if( rc!=SQLITE_OK ) sqlite3Error(p->pDst, rc);
      else p->nWritten += m;
    }else{
      if( iFirst==p->nSrc ) rc = put_page(p, iFirst, a, 0);
      m = 1;
    }
    a += (i64)m*sz;
    iFirst += m;
    n -= m;
  }
  return rc;
}

/*
** Replicas (src/ops/replica/) tell the compare that the destination holds the source as it was
** at a WAL snapshot of an earlier pass (its WAL position, sbw_pagediff_hint()). While the
** source's WAL is still that one (same salts, the same frames and more), every page that changed
** since has a frame after that last frame: a checkpoint meanwhile copies into the file only the
** newest frame of a page, which for the other pages is what the destination holds. So the pass
** compares only the pages of those frames, read through the pagers, instead of every page in
** windows; page 1, the page count and the truncation are done as always.
**
** A WAL restarted once since (salt 1 one more, old_frames()) adds the pages of the old WAL's
** frames after the hint's: they are still in the file past the new WAL's end, unless something
** wrote over them. Anything else (two restarts, a truncated WAL, frames that cannot be proven
** to be all of them), or more frames than a quarter of the pages, compares everything.
*/
/* Notes the source snapshot's WAL position (its read transaction is open). */
static void note_snapshot(PageDiff *p){
  Wal *pWal;
  memset(p->aSnap, 0, sizeof(p->aSnap));
  if( !pagerUseWal(p->pSrcPager) ) return;
  pWal = p->pSrcPager->pWal;
  memcpy(p->aSnap, pWal->hdr.aSalt, 8);
  p->aSnap[2] = pWal->hdr.mxFrame;
  p->aSnap[3] = pWal->hdr.aFrameCksum[0];
  p->aSnap[4] = pWal->hdr.aFrameCksum[1];
  p->aSnap[5] = pWal->hdr.bigEndCksum;
}

/* Marks page pg (if it is one the compare covers) in aBit; counts it in *pN the first time. */
static void mark_page(PageDiff *p, unsigned char *aBit, unsigned pg, int *pN){
  if( pg>=2 && pg<=p->nSrc && (aBit[pg/8] & (1<<(pg%8)))==0 ){ aBit[pg/8] |= 1<<(pg%8); (*pN)++; }
}

/* Reads nByte at iOff of the source's WAL through a handle of its own, whose reads go to the
** file (the connection's handle may serve them from its read-ahead); SQLITE_IOERR_SHORT_READ
** past the end. */
static int read_wal_afresh(Wal *pWal, u8 *a, int nByte, i64 iOff){
  sqlite3_file *pFd = 0;
  int rc = sqlite3OsOpenMalloc(pWal->pVfs, pWal->zWalName, &pFd, SQLITE_OPEN_READONLY|SQLITE_OPEN_WAL, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3OsRead(pFd, a, nByte, iOff);
    sqlite3OsCloseFree(pFd);
  }
  return rc;
}

/*
** The old WAL's frames after the hint's last one, read from the file where the new WAL has not
** reached: each must carry the old salts and continue the checksum chain from the hint's. The
** chain ends at the first frame that does not, which must be one the old WAL never wrote. The WAL's
** frames are written in order from the first, so nothing past the hint's next frame was written
** over while that frame is still the one read first: it is read again, from the file, once the
** scan is done. The end of the file is no proof (a WAL truncated by a checkpoint or by
** journal_size_limit ends there), nor is a frame of zeros. *pbAll: the pages are all of them.
** SQLITE_NOMEM or SQLITE_OK.
*/
static int old_frames(PageDiff *p, Wal *pWal, unsigned char *aBit, int *pN, int *pbAll){
  const int szFrame = WAL_FRAME_HDRSIZE + pWal->szPage;
  const int nativeCksum = (p->aHint[5]==SQLITE_BIGENDIAN);
  const u32 mxScan = p->aHint[2] + p->nSrc/4;
  u32 aCksum[2], i;
  u8 aFirst[WAL_FRAME_HDRSIZE], aAgain[WAL_FRAME_HDRSIZE];
  u8 *aFrame;
  int rc = SQLITE_OK;
  *pbAll = 0;
  aFrame = sqlite3_malloc(szFrame);
  if( aFrame==0 ) return SQLITE_NOMEM;
  aCksum[0] = p->aHint[3];
  aCksum[1] = p->aHint[4];
  for(i=p->aHint[2]+1; i<=mxScan; i++){
    rc = sqlite3OsRead(pWal->pWalFd, aFrame, szFrame, walFrameOffset(i, pWal->szPage));
    if( rc!=SQLITE_OK ) break;
    if( i==p->aHint[2]+1 ) memcpy(aFirst, aFrame, WAL_FRAME_HDRSIZE);
    if( memcmp(&aFrame[8], p->aHint, 8)==0 && get4(aFrame)!=0 ){
      u32 aNext[2];
      walChecksumBytes(nativeCksum, aFrame, 8, aCksum, aNext);
      walChecksumBytes(nativeCksum, &aFrame[WAL_FRAME_HDRSIZE], pWal->szPage, aNext, aNext);
      if( aNext[0]==get4(&aFrame[16]) && aNext[1]==get4(&aFrame[20]) ){
        mark_page(p, aBit, get4(aFrame), pN);
        aCksum[0] = aNext[0];
        aCksum[1] = aNext[1];
        continue;
      }
    }
    /* The first frame that is not the old WAL's ends it where the old WAL never wrote: one of
    ** its own that a rollback left behind, or a stale one of an older WAL (salt 1 lower). A
    ** later WAL's (salt 1 higher) was written over it; a frame of zeros proves nothing. */
    {
      const u32 s1 = get4(&aFrame[8]), s2 = get4(&aFrame[12]);
      if( memcmp(&aFrame[8], p->aHint, 8)==0 || ((int)(s1 - get4((u8*)&p->aHint[0]))<0 && (s1|s2)!=0) ) *pbAll = 1;
    }
    break;
  }
  sqlite3_free(aFrame);
  if( rc==SQLITE_OK && *pbAll ){
    rc = read_wal_afresh(pWal, aAgain, WAL_FRAME_HDRSIZE, walFrameOffset(p->aHint[2]+1, pWal->szPage));
    if( rc==SQLITE_OK && memcmp(aFirst, aAgain, WAL_FRAME_HDRSIZE)!=0 ) *pbAll = 0;
  }
  /* A read that fails (past the end, or a VFS that opens a file once only) proves nothing: the
  ** pass compares everything, and meets a real I/O error there. */
  if( rc!=SQLITE_OK ) *pbAll = 0;
  return SQLITE_OK;
}

static int build_candidates(PageDiff *p){
  Wal *pWal;
  u32 i, iFrom, mx = p->aSnap[2];
  unsigned char *aBit;
  int n = 0, k = 0, rc = SQLITE_OK;
  int bSame, bAll = 1;
  unsigned pg;
  p->bCand = 0;
  if( !pagerUseWal(p->pSrcPager) || !p->bHint ) return SQLITE_OK;
  pWal = p->pSrcPager->pWal;
  bSame = memcmp(p->aHint, p->aSnap, 8)==0;
  if( bSame ? (mx<p->aHint[2] || mx-p->aHint[2]>p->nSrc/4)
            : (get4((u8*)&p->aSnap[0])!=get4((u8*)&p->aHint[0])+1 || p->aHint[2]==0
               || mx>=p->aHint[2] || mx>p->nSrc/4 || pWal->szPage!=(u32)p->szPage) ){
    return SQLITE_OK;
  }
  aBit = sqlite3MallocZero(p->nSrc/8+1);
  if( aBit==0 ) return SQLITE_NOMEM;
  if( !bSame ) rc = old_frames(p, pWal, aBit, &n, &bAll);
  iFrom = bSame ? p->aHint[2]+1 : 1;
  for(i=iFrom; i<=mx && rc==SQLITE_OK && bAll; i++){
    WalHashLoc sLoc;
    rc = walHashGet(pWal, walFramePage(i), &sLoc);
    if( rc==SQLITE_OK ) mark_page(p, aBit, sLoc.aPgno[i-sLoc.iZero-1], &n);
  }
  if( rc==SQLITE_OK && bAll && n>p->nCandAlloc ){
    unsigned *a = sqlite3_realloc64(p->aCand, (sqlite3_uint64)n*sizeof(unsigned));
    if( a==0 ) rc = SQLITE_NOMEM;
    else{ p->aCand = a; p->nCandAlloc = n; }
  }
  if( rc==SQLITE_OK && bAll ){
    for(pg=2; pg<=p->nSrc && k<n; pg++) if( aBit[pg/8] & (1<<(pg%8)) ) p->aCand[k++] = pg;
    p->nCand = n;
    p->iCand = 0;
    p->bCand = 1;
  }
  sqlite3_free(aBit);
  if( rc!=SQLITE_OK ) sqlite3Error(p->pSrc, rc);
  return rc;
}

/* step() of a pass that compares only aCand[]: up to nPage of them (all when negative). */
static int step_candidates(PageDiff *p, int nPage, unsigned pending){
  int i = 0, rc = SQLITE_OK;
  while( (nPage<0 || i<nPage) && p->iCand<p->nCand ){
    const unsigned pgno = p->aCand[p->iCand];
    DbPage *pS = 0, *pD = 0;
    int same = 0;
    if( pgno!=pending ){
      p->errDest = 0;
      rc = sqlite3PagerGet(p->pSrcPager, pgno, &pS, 0);
      if( rc!=SQLITE_OK ){ sqlite3Error(p->pSrc, rc); return rc; }
      p->errDest = 1;
      if( pgno<=p->nDst ){
        rc = sqlite3PagerGet(p->pDstPager, pgno, &pD, 0);
        if( rc==SQLITE_OK ) same = same_page(sqlite3PagerGetData(pS), sqlite3PagerGetData(pD), p->szPage);
        else sqlite3Error(p->pDst, rc);
        p->nCompared++;
      }
      if( rc==SQLITE_OK && !same ) rc = put_page(p, pgno, sqlite3PagerGetData(pS), pD ? sqlite3PagerGetData(pD) : 0);
      sqlite3PagerUnref(pD);
      sqlite3PagerUnref(pS);
      if( rc!=SQLITE_OK ) return rc;
    }
    p->iCand++;
    i++;
  }
  p->iNext = p->iCand<p->nCand ? p->aCand[p->iCand] : p->nSrc+1;
  return SQLITE_OK;
}

/*
** Starts a compare: BEGIN EXCLUSIVE on the destination (as the backup API locks it), opens the
** source snapshot, reads both page 1s and decides whether the destination qualifies (or gets the
** fresh copy). If it does, keeps the new page 1 for the end and returns SQLITE_OK with reason 0.
** If not, rolls back and returns SQLITE_OK with the reason. SQLITE_BUSY: the destination (or,
** SBW_INFO_ERR_DEST 0, the source) is locked; SBW_WAIT: the source is mid-write. Any other result
** is an error. After a failure the destination's transaction may be open: the caller rewinds.
*/
int sbw_pagediff_begin(PageDiff *p){
  int rc;
  int defensive = 0;
  const unsigned char *aSrc, *aDst;
  rewind_diff(p);
  memset(p->aSnap, 0, sizeof(p->aSnap));
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
  p->pDstBt = p->pDst->aDb[sqlite3FindDbName(p->pDst, p->zDst)].pBt;
  p->pSrcBt = p->pSrc->aDb[sqlite3FindDbName(p->pSrc, p->zSrc)].pBt;
  p->pDstPager = sqlite3BtreePager(p->pDstBt);
  p->bFresh = p->nDst==0 && p->bAllowFresh && fresh_qualifies(p);
  if( p->nDst==0 && !p->bFresh ){ p->reason = SBW_NO_DEST_PAGES; return SQLITE_OK; }
  /* page_count() read page 1, so a WAL destination's pager has opened its WAL by now. */
  if( sqlite3PagerGetJournalMode(p->pDstPager)==PAGER_JOURNALMODE_WAL ){
    rc = checkpoint_dest(p);
    if( rc!=SQLITE_OK ) return rc;
  }

  /* As sqlite3_backup_step() does to an empty destination before it locks it (setDestPgsz()). */
  if( p->bFresh && sqlite3BtreeSetPageSize(p->pDstBt, sqlite3BtreeGetPageSize(p->pSrcBt), 0, 0)==SQLITE_NOMEM ){
    return SQLITE_NOMEM;
  }
  rc = sqlite3_exec(p->pDst, "BEGIN EXCLUSIVE", 0, 0, 0);
  if( rc!=SQLITE_OK ) return rc;
  p->iNext = 1;  /* from here on rewind_diff() rolls back */
  p->bDstWal = sqlite3PagerGetJournalMode(p->pDstPager)==PAGER_JOURNALMODE_WAL;
  raise_spill(p);

  p->errDest = 0;
  rc = sqlite3_step(p->pSrcScan);
  if( rc==SQLITE_DONE ){ p->reason = SBW_NO_SOURCE_PAGES; goto decline; }
  if( rc!=SQLITE_ROW ) goto fail;
  p->pSrcPager = sqlite3BtreePager(p->pSrcBt);
  rc = page_count(p->pSrc, p->zSrc, &p->nSrc);
  if( rc!=SQLITE_OK ) goto fail;
  p->iDataVersion = data_version(p);
  note_snapshot(p);
  p->errDest = 1;
  if( p->bFresh ) return begin_fresh(p);

  rc = sqlite3_step(p->pDstScan);
  if( rc==SQLITE_DONE ){ p->reason = SBW_NO_DEST_PAGES; goto decline; }
  if( rc!=SQLITE_ROW ) goto fail;
  rc = page_count(p->pDst, p->zDst, &p->nDst);
  if( rc!=SQLITE_OK ) goto fail;
  /* Only page 1 (held by the transaction): nothing cached to compare beyond the file, as this
  ** transaction caches no page before comparing it. */
  p->bDstCached = sqlite3PcachePagecount(p->pDstPager->pPCache)>1;

  aSrc = sqlite3_column_blob(p->pSrcScan, 0);
  aDst = sqlite3_column_blob(p->pDstScan, 0);
  if( sqlite3_column_bytes(p->pSrcScan, 0)!=sqlite3_column_bytes(p->pDstScan, 0) ){
    p->reason = SBW_PAGE_SIZE_DIFFERS; goto decline;
  }
  if( !p->bDstWal && (aDst[18]==2 || aDst[19]==2) ){ p->reason = SBW_DEST_WAL; goto decline; }
  if( get4(&aDst[52])!=0 && get4(&aDst[64])==0 && get4(&aSrc[36])!=0 ){
    p->reason = SBW_DEST_AUTOVACUUM; goto decline;
  }
  rc = keep_page1(p, aSrc, sqlite3_column_bytes(p->pSrcScan, 0), get4(&aDst[40]));
  if( rc==SQLITE_OK && p->bKeepOld ){
    sqlite3_free(p->aOldPage1);
    p->aOldPage1 = sqlite3_malloc(p->szPage);
    if( p->aOldPage1 ) memcpy(p->aOldPage1, aDst, p->szPage);
    else p->nOldAlloc = -1;
  }
  if( rc==SQLITE_OK ) rc = build_candidates(p);
  if( rc!=SQLITE_OK ) goto fail;
  p->nCompared = 1;
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
  /* A source with no file (memory, TEMP) has every page in its pager already: the compare takes
  ** them from there, with no copy into the window (the fresh copy needs the window's run). */
  const int bSrcPaged = !direct(p->pSrcPager) && !p->bFresh;
  int i, rc = SQLITE_OK;
  char *zSql;
  if( sqlite3_txn_state(p->pSrc, p->zSrc)==SQLITE_TXN_WRITE ) return SBW_WAIT;
  if( p->bReleased ){
    /* The read lock again: the pager checks the file's change counter as it takes it, and a
    ** change since begin() (anyone's commit meanwhile) moves the data version on. */
    p->errDest = 0;
    rc = sqlite3_step(p->pSrcScan);
    if( rc!=SQLITE_ROW ){
      sqlite3_reset(p->pSrcScan);
      return rc==SQLITE_DONE ? SBW_RESTART : sqlite3_extended_errcode(p->pSrc);
    }
    p->bReleased = 0;
    rc = SQLITE_OK;
  }
  if( data_version(p)!=p->iDataVersion ) return SBW_RESTART;
  if( p->bCand ){
    rc = step_candidates(p, nPage, pending);
    if( rc!=SQLITE_OK ) return rc;
    if( p->iNext<=p->nSrc ) return SQLITE_OK;  /* a WAL source: its snapshot stays open */
    goto finish;
  }
  if( p->aSrcWin==0 ){
    p->nWin = window_pages(p->szPage);
    p->aSrcWin = sqlite3_malloc64((sqlite3_uint64)p->nWin*p->szPage);
    p->aDstWin = sqlite3_malloc64((sqlite3_uint64)p->nWin*p->szPage);
    if( p->aSrcWin==0 || p->aDstWin==0 ){
      p->errDest = 1;
      sqlite3_free(p->aSrcWin);
      sqlite3_free(p->aDstWin);
      p->aSrcWin = p->aDstWin = 0;
      sqlite3Error(p->pDst, SQLITE_NOMEM);
      return SQLITE_NOMEM;
    }
  }
  /* A window is read whole even when this call compares only part of it: the next call goes on
  ** from where this one stopped (within one pass nothing read can change, see read_window();
  ** a pass that restarts reads again). Reads of one size, as large as the VFS's largest
  ** read-ahead, go straight into the heap. */
  i = 0;
  while( (nPage<0 || i<nPage) && p->iNext<=p->nSrc ){
    int k, kEnd;
    if( p->iWin==0 || p->iNext>=p->iWin+(unsigned)p->nWinSrc ){
      const unsigned iFirst = p->iNext;
      int n = p->nWin;
      if( (unsigned)n>p->nSrc-iFirst+1 ) n = (int)(p->nSrc-iFirst+1);
      p->iWin = 0;
      p->errDest = 0;
      if( !bSrcPaged && (rc = read_window(p->pSrcPager, iFirst, n, p->aSrcWin, pending, 1))!=SQLITE_OK ){
        sqlite3Error(p->pSrc, rc);
        return rc;
      }
      p->nWinDst = p->bFresh || iFirst>p->nDst ? 0 : (unsigned)n>p->nDst-iFirst+1 ? (int)(p->nDst-iFirst+1) : n;
      p->errDest = 1;
      if( p->nWinDst>0 && (rc = dest_window(p, iFirst, pending))!=SQLITE_OK ){
        sqlite3Error(p->pDst, rc);
        return rc;
      }
      p->iWin = iFirst;
      p->nWinSrc = n;
    }
    k = (int)(p->iNext-p->iWin);
    kEnd = p->nWinSrc;
    if( nPage>=0 && kEnd-k>nPage-i ) kEnd = k+(nPage-i);
    if( p->bFresh ){
      p->errDest = 1;
      rc = write_fresh(p, p->aSrcWin+(i64)k*p->szPage, p->iNext, kEnd-k, pending);
      if( rc!=SQLITE_OK ) return rc;
      i += kEnd-k;
      p->iNext += (unsigned)(kEnd-k);
      continue;
    }
    for(; k<kEnd; k++, i++, p->iNext++){
      const unsigned pgno = p->iNext;
      const unsigned char *aSrc = p->aSrcWin+(i64)k*p->szPage;
      DbPage *pSrcPg = 0;
      int same = 0;
      if( bSrcPaged ){
        /* The lock-byte page is never written (below): nothing to fetch. */
        if( pgno==pending ){
          if( k<p->nWinDst ) p->nCompared++;
          continue;
        }
        p->errDest = 0;
        if( (rc = sqlite3PagerGet(p->pSrcPager, pgno, &pSrcPg, 0))!=SQLITE_OK ){
          sqlite3Error(p->pSrc, rc);
          return rc;
        }
        aSrc = sqlite3PagerGetData(pSrcPg);
      }
      if( k<p->nWinDst ){
        same = same_page(aSrc, p->aDstCur+(i64)k*p->szPage, p->szPage);
        /* A page the destination's connection has cached must equal in its cache too (it may
        ** differ from the file, see read_window()): that connection goes on using it. */
        if( same && p->bDstCached ){
          DbPage *pPg = sqlite3PagerLookup(p->pDstPager, pgno);
          if( pPg ){
            same = same_page(aSrc, sqlite3PagerGetData(pPg), p->szPage);
            sqlite3PagerUnrefNotNull(pPg);
          }
        }
        p->nCompared++;
      }
      /* The lock-byte page is never written, as in the backup API (the pager refuses it anyway). */
      p->errDest = 1;
      if( !same && pgno!=pending ) rc = put_page(p, pgno, aSrc, k<p->nWinDst ? p->aDstCur+(i64)k*p->szPage : 0);
      sqlite3PagerUnref(pSrcPg);
      if( rc!=SQLITE_OK ) return rc;
    }
  }
  if( p->iNext<=p->nSrc ){
    /* More to come: a rollback-journal source's writers are kept out for one call at a time, as
    ** between the backup API's steps (a commit meanwhile restarts the compare, see above). */
    if( releases(p) ){
      sqlite3_reset(p->pSrcScan);
      p->bReleased = 1;
    }
    return SQLITE_OK;
  }
finish:
  sqlite3_reset(p->pSrcScan);
  sqlite3_reset(p->pDstScan);
  p->errDest = 1;
  if( (rc = put_page(p, 1, p->aPage1, p->aOldPage1))!=SQLITE_OK ) return rc;
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

/* Writes the destination's dirty pages to its file before commit(), its journal synced first as
** for any spill: a host that syncs files off its thread (Node's writeBack()) then syncs them
** there, and the COMMIT's own syncs find little left. On failure the caller closes (rolls back). */
int sbw_pagediff_flush(PageDiff *p){
  p->errDest = 1;
  return sqlite3_db_cacheflush(p->pDst);
}

/* COMMIT on the destination; on failure the caller reads the error, then closes (rolls back).
** A WAL destination's WAL is then synced (a failure is reported: committed, not yet durable) and
** the WAL checkpointed: the checkpoint's errors are not the backup's, which is durable by then. */
int sbw_pagediff_commit(PageDiff *p){
  int rc;
  p->errDest = 1;
  rc = sqlite3_exec(p->pDst, "COMMIT", 0, 0, 0);
  if( rc==SQLITE_OK ){
    p->iNext = 0;
    restore_spill(p);
    sqlite3ResetAllSchemasOfConnection(p->pDst);  /* as sqlite3_backup_step() does when done */
    if( p->bDstWal ){
      rc = sbw_sync_wal(p->pDst, p->zDst);
      if( rc!=SQLITE_OK ) sqlite3Error(p->pDst, rc);  /* committed, but not durable yet */
      else if( checkpoint_dest(p)!=SQLITE_OK ) sqlite3Error(p->pDst, SQLITE_OK);
    }
  }
  return rc;
}

/* Whether an empty destination gets the fresh copy (see fresh_qualifies()) rather than being
** declined (SBW_NO_DEST_PAGES); off by default. */
void sbw_pagediff_fresh(PageDiff *p, int bAllow){ p->bAllowFresh = bAllow; }

/* The pages put_page() wrote in this pass, in the order written (page 1 last; the fresh copy's
** straight writes are not listed); *pn gets their count. Read before commit() (replicas upload
** what an incremental backup changed, src/ops/replica/). */
const unsigned *sbw_pagediff_pgnos(PageDiff *p, int *pn){
  *pn = p->nPgno;
  return p->aPgno;
}

/* put_page() keeps the old bytes of every page it writes from the next begin() on, for
** sbw_pagediff_old() (replicas upload what changed in each page, src/ops/replica/). */
void sbw_pagediff_keep_old(PageDiff *p, int bKeep){ p->bKeepOld = bKeep; }

/* The old bytes of the pages sbw_pagediff_pgnos() lists, szPage each, in its order (zeros for a
** page past the destination's end at begin()); 0 when they were not kept (past SBW_OLD_BYTES,
** no memory, a fresh copy) or not asked for. Read before commit(). */
const unsigned char *sbw_pagediff_old(PageDiff *p){
  return p->bKeepOld && p->nOldAlloc>=0 && !p->bFresh ? p->aOld : 0;
}

/* The destination holds the source as of the WAL position whose word i is aWord[i] (see
** note_snapshot() and build_candidates()); set before begin(). */
void sbw_pagediff_hint(PageDiff *p, const unsigned *aWord){
  p->bHint = 1;
  memcpy(p->aHint, aWord, sizeof(p->aHint));
}

/* Word i of this pass's source snapshot's WAL position, as of begin() (note_snapshot()); 0s when
** the source is not in WAL mode. */
unsigned sbw_pagediff_snapshot(PageDiff *p, int i){
  return i>=0 && i<SBW_WAL_WORDS ? p->aSnap[i] : 0;
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
    case SBW_INFO_PAGE_SIZE: return (unsigned)p->szPage;
    case SBW_INFO_WINDOW_PAGES: return p->szPage ? (unsigned)window_pages(p->szPage) : 0;
    case SBW_INFO_FRESH: return (unsigned)p->bFresh;
    case SBW_INFO_AHEAD_FIRST: case SBW_INFO_AHEAD_PAGES: {
      int i;
      for(i=0; i<2; i++){
        if( p->aAhead[i].state==AHEAD_READING ) return op==SBW_INFO_AHEAD_FIRST ? p->aAhead[i].iFirst : (unsigned)p->aAhead[i].nPage;
      }
      return 0;
    }
  }
  return 0;
}
