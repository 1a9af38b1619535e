// The C functions wasm/exports.txt exports, typed. Pointers are numbers; sqlite3_int64 is bigint.
import type { HeapExports } from "./heap.js";

type Ptr = number;
export interface CApi extends HeapExports {
  _initialize(): void;
  sqlite3_initialize(): number;
  sqlite3_libversion(): Ptr;
  sqlite3_memory_used(): bigint;
  sqlite3_errstr(rc: number): Ptr;

  sqlite3_open_v2(zFilename: Ptr, ppDb: Ptr, flags: number, zVfs: Ptr): number;
  sqlite3_close_v2(db: Ptr): number;
  sqlite3_errmsg(db: Ptr): Ptr;
  sqlite3_extended_errcode(db: Ptr): number;
  sqlite3_changes64(db: Ptr): bigint;
  sqlite3_last_insert_rowid(db: Ptr): bigint;
  sqlite3_db_filename(db: Ptr, zSchema: Ptr): Ptr;
  sqlite3_file_control(db: Ptr, zSchema: Ptr, op: number, pArg: Ptr): number;
  sqlite3_serialize(db: Ptr, zSchema: Ptr, piSize: Ptr, flags: number): Ptr;
  sqlite3_deserialize(db: Ptr, zSchema: Ptr, pData: Ptr, szDb: bigint, szBuf: bigint, flags: number): number;
  sqlite3_busy_timeout(db: Ptr, ms: number): number;
  sqlite3_get_autocommit(db: Ptr): number;

  sqlite3_prepare_v3(db: Ptr, zSql: Ptr, nByte: number, flags: number, ppStmt: Ptr, pzTail: Ptr): number;
  sqlite3_step(stmt: Ptr): number;
  sqlite3_finalize(stmt: Ptr): number;
  sqlite3_reset(stmt: Ptr): number;
  sqlite3_clear_bindings(stmt: Ptr): number;
  sqlite3_stmt_readonly(stmt: Ptr): number;
  sqlite3_stmt_status(stmt: Ptr, op: number, resetFlg: number): number;
  sqlite3_bind_parameter_count(stmt: Ptr): number;
  sqlite3_bind_parameter_name(stmt: Ptr, i: number): Ptr;
  sqlite3_bind_null(stmt: Ptr, i: number): number;
  sqlite3_bind_int(stmt: Ptr, i: number, v: number): number;
  sqlite3_bind_int64(stmt: Ptr, i: number, v: bigint): number;
  sqlite3_bind_double(stmt: Ptr, i: number, v: number): number;
  sqlite3_bind_text(stmt: Ptr, i: number, p: Ptr, n: number, destructor: number): number;
  sqlite3_bind_blob(stmt: Ptr, i: number, p: Ptr, n: number, destructor: number): number;
  sqlite3_column_count(stmt: Ptr): number;
  sqlite3_column_name(stmt: Ptr, i: number): Ptr;
  sqlite3_column_type(stmt: Ptr, i: number): number;
  sqlite3_column_int64(stmt: Ptr, i: number): bigint;
  sqlite3_column_double(stmt: Ptr, i: number): number;
  sqlite3_column_text(stmt: Ptr, i: number): Ptr;
  sqlite3_column_blob(stmt: Ptr, i: number): Ptr;
  sqlite3_column_bytes(stmt: Ptr, i: number): number;

  sqlite3_backup_init(dest: Ptr, zDest: Ptr, source: Ptr, zSource: Ptr): Ptr;
  sqlite3_backup_step(p: Ptr, nPage: number): number;
  sqlite3_backup_finish(p: Ptr): number;
  sqlite3_backup_remaining(p: Ptr): number;
  sqlite3_backup_pagecount(p: Ptr): number;

  sbw_vfs_register(zName: Ptr, id: number, makeDefault: number, mxPathname: number): number;

  // Incremental backup (wasm/pagediff.c): results are SQLite codes, or -1 (wait) / -2 (restart).
  sbw_pagediff_open(src: Ptr, zSrc: Ptr, dst: Ptr, zDst: Ptr, ppDiff: Ptr, pErrDest: Ptr): number;
  sbw_pagediff_begin(p: Ptr): number;
  sbw_pagediff_step(p: Ptr, nPage: number): number;
  sbw_pagediff_commit(p: Ptr): number;
  sbw_pagediff_flush(p: Ptr): number;
  sbw_pagediff_rewind(p: Ptr): void;
  sbw_pagediff_info(p: Ptr, op: number): number;
  sbw_pagediff_close(p: Ptr): void;
  sbw_pagediff_fresh(p: Ptr, allow: number): void;
  sbw_pagediff_ahead(p: Ptr, from: number, nPage: number): Ptr;
  sbw_pagediff_ahead_done(p: Ptr, nByte: number): void;
  /** The pages the compare wrote this pass (page 1 last); their count into *pn. */
  sbw_pagediff_pgnos(p: Ptr, pn: Ptr): Ptr;
  /** From the next begin() on, keep the old bytes of every page the compare writes. */
  sbw_pagediff_keep_old(p: Ptr, keep: number): void;
  /** The old bytes of the pages sbw_pagediff_pgnos() lists (page size each, same order); 0: not kept. */
  sbw_pagediff_old(p: Ptr): Ptr;
  /** The destination holds the source as of this WAL position (SBW_WAL_WORDS u32 at aWord): compare only pages with later frames. */
  sbw_pagediff_hint(p: Ptr, aWord: Ptr): void;
  /** Word i of the pass's source snapshot's WAL position (salts, last frame, its checksum, byte order). */
  sbw_pagediff_snapshot(p: Ptr, i: number): number;
  /** Syncs a WAL database's WAL (its commits durable under synchronous=NORMAL); SQLITE_OK otherwise. */
  sbw_sync_wal(db: Ptr, zSchema: Ptr): number;
  /** Sets a schema's cache spill threshold (pages); returns the previous one, -1 for no such schema. */
  sbw_cache_spill(db: Ptr, zSchema: Ptr, nPage: number): number;
}

/** SQLITE_TRANSIENT: SQLite copies bound text/blobs before the bind call returns. */
export const SQLITE_TRANSIENT = -1;
