// A connection. It owns its handle, its prepared statements and the backups that use it:
// close() finalizes and finishes them first, so no C pointer outlives what it points to.
import {
  SQLITE_DESERIALIZE_FREEONCLOSE, SQLITE_DESERIALIZE_READONLY, SQLITE_DESERIALIZE_RESIZEABLE, SQLITE_DONE,
  SQLITE_ERROR, SQLITE_OK, SQLITE_OPEN_CREATE, SQLITE_OPEN_EXRESCODE, SQLITE_OPEN_READONLY,
  SQLITE_OPEN_READWRITE, SQLITE_OPEN_URI, SQLITE_ROW,
} from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { checkKeys } from "../core/options.js";
import type { Runtime } from "../runtime/runtime.js";
import type { BackupState, DbState } from "./state.js";
import { finalizeStmtState, Statement, type BindParams, type Row, type RunResult } from "./statement.js";

export type { BackupState, DbState } from "./state.js";
export type { BindParams, Row, RunResult } from "./statement.js";

export interface OpenOptions {
  /** Open read-only. Default false. */
  readonly?: boolean;
  /** Create the file if missing. Default true (ignored when readonly). */
  create?: boolean;
  /** VFS name; default: the runtime's default VFS (Node/Deno: "node-fs"). */
  vfs?: string;
  /**
   * How long a statement waits for another connection's lock before it fails with SQLITE_BUSY
   * (sqlite3_busy_timeout). Default 5000 through sqlite.open(); 0 fails at once. The wait blocks
   * the thread, and only locks another process can release are waited for: see docs/database.md.
   */
  busyTimeoutMs?: number;
}
/** The keys of OpenOptions: any other key is a TypeError. */
export const OPEN_OPTION_KEYS = ["readonly", "create", "vfs", "busyTimeoutMs"] as const;

/** A transaction function made by db.transaction(fn); the variants choose how it begins. */
export interface Transaction<F extends (...args: never[]) => unknown> {
  /** Runs fn inside BEGIN … COMMIT (a SAVEPOINT when a transaction is open), rolled back if it throws. */
  (...args: Parameters<F>): ReturnType<F>;
  /** The same, with BEGIN DEFERRED. */
  deferred(...args: Parameters<F>): ReturnType<F>;
  /** The same, with BEGIN IMMEDIATE: the write lock is taken at once. */
  immediate(...args: Parameters<F>): ReturnType<F>;
  /** The same, with BEGIN EXCLUSIVE. */
  exclusive(...args: Parameters<F>): ReturnType<F>;
}

/** Options of sqlite.deserialize(). */
export interface DeserializeOptions {
  /** A read-only database: writes fail with SQLITE_READONLY. Default false. */
  readonly?: boolean;
}
const DESERIALIZE_KEYS = ["readonly"] as const;

/** sqlite3_backup_finish on the raw state, once; caches the last counters. Returns its rc. */
export function finishBackupState(rt: Runtime, s: BackupState, by: string): number {
  if (s.finishedBy !== null) return SQLITE_OK;
  const c = rt.capi;
  s.remaining = c.sqlite3_backup_remaining(s.ptr);
  s.pageCount = c.sqlite3_backup_pagecount(s.ptr);
  const rc = c.sqlite3_backup_finish(s.ptr);
  s.ptr = 0;
  s.finishedBy = by;
  s.source.backups.delete(s);
  s.dest.backups.delete(s);
  return rc;
}

function closeDbState(rt: Runtime, s: DbState): void {
  for (const b of [...s.backups]) finishBackupState(rt, b, "its database was closed");
  for (const st of [...s.statements]) finalizeStmtState(rt, st, "its database was closed");
  rt.capi.sqlite3_close_v2(s.ptr);
  s.ptr = 0;
}

// Last resort for a Database the program dropped without close().
const finalizer = new FinalizationRegistry<{ rt: Runtime; state: DbState }>(({ rt, state }) => {
  if (state.ptr) closeDbState(rt, state);
});

const SAVEPOINT = '"\t_sbw_tx"'; // a name no application picks by accident

export class Database implements Disposable {
  readonly filename: string;
  /** @internal The instance this connection lives in. */ readonly runtime: Runtime;
  #state: DbState | null;
  /** BEGIN, COMMIT, … of transaction(), prepared once. */
  readonly #control = new Map<string, Statement>();

  /** @internal Use sqlite.open(). No busy timeout unless options.busyTimeoutMs says so. */
  constructor(rt: Runtime, filename: string, options: OpenOptions = {}) {
    if (typeof filename !== "string") throw new TypeError("filename must be a string");
    checkKeys(options, OPEN_OPTION_KEYS, "open");
    const { busyTimeoutMs = 0 } = options;
    if (typeof busyTimeoutMs !== "number" || !(busyTimeoutMs >= 0)) {
      throw new TypeError(`open: busyTimeoutMs must be a number >= 0 (Infinity: no limit), got ${String(busyTimeoutMs)}`);
    }
    this.runtime = rt;
    this.filename = filename;
    const { capi, heap } = rt;
    let flags = SQLITE_OPEN_URI | SQLITE_OPEN_EXRESCODE;
    if (options.readonly) flags |= SQLITE_OPEN_READONLY;
    else flags |= SQLITE_OPEN_READWRITE | (options.create === false ? 0 : SQLITE_OPEN_CREATE);
    const vfsName = options.vfs ?? rt.vfs().name;
    rt.vfs(vfsName); // a clear error for an unknown name
    rt.enter();
    const ptr = heap.scoped((s) => {
      const ppDb = s.out();
      const rc = capi.sqlite3_open_v2(s.cstring(filename)[0], ppDb, flags, s.cstring(vfsName)[0]);
      const db = heap.i32(ppDb);
      if (rc !== SQLITE_OK) {
        const err = db ? rt.errorFromDb(db) : rt.errorFromCode(rc);
        capi.sqlite3_close_v2(db); // a failed open still allocates a handle (NULL is a no-op)
        throw err;
      }
      return db;
    });
    if (busyTimeoutMs > 0) capi.sqlite3_busy_timeout(ptr, busyMs(busyTimeoutMs));
    this.#state = { ptr, backups: new Set(), statements: new Set(), busySuspended: 0, busySaved: 0 };
    finalizer.register(this, { rt, state: this.#state }, this);
  }

  get isOpen(): boolean {
    return this.#state !== null;
  }

  /** @internal The live state; throws when closed. */
  get state(): DbState {
    if (!this.#state) throw new Error(`database ${this.filename} is closed`);
    return this.#state;
  }

  /** Runs one or more statements, discarding any rows. */
  exec(sql: string): void {
    if (typeof sql !== "string") throw new TypeError("sql must be a string");
    const { capi, heap } = this.runtime;
    const db = this.#begin();
    heap.scoped((s) => {
      const [pSql, n] = s.cstring(sql);
      const end = pSql + n;
      const ppStmt = s.out();
      const pzTail = s.out();
      let p = pSql;
      while (p < end) {
        if (capi.sqlite3_prepare_v3(db, p, end - p, 0, ppStmt, pzTail) !== SQLITE_OK) throw this.runtime.errorFromDb(db);
        const stmt = heap.i32(ppStmt);
        p = heap.i32(pzTail);
        if (!stmt) continue; // whitespace or a comment
        try {
          let rc;
          while ((rc = capi.sqlite3_step(stmt)) === SQLITE_ROW);
          if (rc !== SQLITE_DONE) throw this.runtime.errorFromDb(db);
        } finally {
          capi.sqlite3_finalize(stmt);
        }
      }
    });
  }

  /**
   * How long a statement waits for a lock another process holds (PRAGMA busy_timeout); setting it
   * calls sqlite3_busy_timeout. See OpenOptions.busyTimeoutMs.
   */
  get busyTimeoutMs(): number {
    const s = this.state;
    return s.busySuspended > 0 ? s.busySaved : this.busyTimeoutMsRaw();
  }
  set busyTimeoutMs(ms: number) {
    if (typeof ms !== "number" || !(ms >= 0)) throw new TypeError(`busyTimeoutMs must be a number >= 0 (Infinity: no limit), got ${String(ms)}`);
    const s = this.state;
    if (s.busySuspended > 0) s.busySaved = busyMs(ms);
    else this.runtime.capi.sqlite3_busy_timeout(s.ptr, busyMs(ms));
  }

  /** True inside BEGIN … COMMIT (sqlite3_get_autocommit() is 0). */
  get inTransaction(): boolean {
    return this.runtime.capi.sqlite3_get_autocommit(this.state.ptr) === 0;
  }

  /** Compiles one statement for many runs; see Statement. Finalize it (or `using`) when done. */
  prepare<T = Row>(sql: string): Statement<T, Database> {
    return new Statement<T, Database>(this, sql);
  }

  /** Runs one statement; returns the changes it made and the last inserted rowid. */
  run(sql: string, params?: BindParams): RunResult {
    const stmt = new Statement(this, sql, false);
    try {
      return stmt.run(params);
    } finally {
      stmt.finalize();
    }
  }

  /** The first row as an object, or undefined. */
  get<T = Row>(sql: string, params?: BindParams): T | undefined {
    const stmt = new Statement<T>(this, sql, false);
    try {
      return stmt.get(params);
    } finally {
      stmt.finalize();
    }
  }

  /** All rows as objects. */
  all<T = Row>(sql: string, params?: BindParams): T[] {
    const stmt = new Statement<T>(this, sql, false);
    try {
      return stmt.all(params);
    } finally {
      stmt.finalize();
    }
  }

  /**
   * Wraps fn in a transaction: calling the result runs BEGIN, fn, COMMIT, and ROLLBACK instead
   * of COMMIT when fn throws (the error is rethrown). Called inside another transaction it uses
   * a SAVEPOINT, so an inner failure undoes only its own part. fn must be synchronous.
   */
  transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F> {
    if (typeof fn !== "function") throw new TypeError("transaction() needs a function");
    const make = (begin: string) => {
      const db = this;
      return function (this: unknown, ...args: Parameters<F>): ReturnType<F> {
        return db.#transact(begin, fn, this, args) as ReturnType<F>;
      };
    };
    return Object.assign(make("BEGIN"), {
      deferred: make("BEGIN DEFERRED"),
      immediate: make("BEGIN IMMEDIATE"),
      exclusive: make("BEGIN EXCLUSIVE"),
    });
  }

  /** A copy of the database's content as a file image (sqlite3_serialize). */
  serialize(schema = "main"): Uint8Array {
    if (typeof schema !== "string") throw new TypeError("schema must be a string");
    const { capi, heap } = this.runtime;
    const db = this.#begin();
    return heap.scoped((s) => {
      const zSchema = s.cstring(schema)[0];
      if (!capi.sqlite3_db_filename(db, zSchema)) throw new SqliteError(`unknown database ${schema}`, SQLITE_ERROR);
      const pSize = s.out();
      const p = capi.sqlite3_serialize(db, zSchema, pSize, 0);
      const size = Number(heap.i64(pSize));
      if (!p) {
        if (size === 0) return new Uint8Array(0);
        throw this.runtime.errorFromDb(db);
      }
      try {
        return heap.u8.slice(p, p + size);
      } finally {
        heap.free(p);
      }
    });
  }

  /** Closes the connection, finishing (and rolling back) any backup that still uses it. Idempotent. */
  close(): void {
    const state = this.#state;
    if (!state) return;
    this.#state = null;
    finalizer.unregister(this);
    closeDbState(this.runtime, state);
  }

  [Symbol.dispose](): void {
    try {
      this.close();
    } catch {
      // dispose never throws
    }
  }

  /** @internal PRAGMA busy_timeout as it is now. */
  busyTimeoutMsRaw(): number {
    return this.get<{ timeout: number }>("PRAGMA busy_timeout")!.timeout;
  }

  #transact(begin: string, fn: (...args: never[]) => unknown, self: unknown, args: unknown[]): unknown {
    const nested = this.inTransaction;
    const commit = nested ? `RELEASE ${SAVEPOINT}` : "COMMIT";
    this.#controlStatement(nested ? `SAVEPOINT ${SAVEPOINT}` : begin).run();
    try {
      const result = fn.apply(self, args as never[]);
      if (typeof (result as PromiseLike<unknown> | null)?.then === "function") {
        throw new TypeError("a transaction function must not return a promise: the transaction would stay open across await");
      }
      this.#controlStatement(commit).run();
      return result;
    } catch (e) {
      if (this.isOpen && this.inTransaction) {
        this.#controlStatement(nested ? `ROLLBACK TO ${SAVEPOINT}` : "ROLLBACK").run();
        if (nested) this.#controlStatement(commit).run();
      }
      throw e;
    }
  }

  #controlStatement(sql: string): Statement {
    let stmt = this.#control.get(sql);
    if (!stmt?.isAlive) this.#control.set(sql, (stmt = new Statement(this, sql)));
    return stmt;
  }

  #begin(): number {
    const db = this.state.ptr;
    this.runtime.enter();
    return db;
  }
}

/** A busy timeout as sqlite3_busy_timeout takes it: whole ms in an int (Infinity: ~24 days). */
function busyMs(ms: number): number {
  return Math.min(Math.ceil(ms), 0x7fffffff);
}

/**
 * @internal Turns off the busy handlers of these connections for an operation that retries
 * BUSY itself, asynchronously (backup()): a handler would block the thread for up to its timeout
 * inside one step. Returns the function that turns them back on (nested calls count).
 */
export function suspendBusyTimeouts(rt: Runtime, dbs: readonly (Database | string)[]): () => void {
  const states: DbState[] = [];
  for (const db of dbs) {
    if (!(db instanceof Database) || !db.isOpen) continue;
    const s = db.state;
    if (s.busySuspended++ === 0) {
      s.busySaved = db.busyTimeoutMsRaw();
      if (s.busySaved > 0) rt.capi.sqlite3_busy_timeout(s.ptr, 0);
    }
    states.push(s);
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const s of states) {
      if (--s.busySuspended === 0 && s.ptr && s.busySaved > 0) rt.capi.sqlite3_busy_timeout(s.ptr, s.busySaved);
    }
  };
}

/**
 * A new in-memory Database holding the database file image `data` (sqlite3_deserialize on a
 * copy that SQLite owns and frees). A WAL image is read as a rollback-journal one (an in-memory
 * database has no WAL). SQLITE_NOTADB when the bytes are not a database.
 */
export function deserializeDatabase(rt: Runtime, data: ArrayBufferLike | ArrayBufferView, options: DeserializeOptions = {}): Database {
  checkKeys(options, DESERIALIZE_KEYS, "deserialize");
  let bytes: Uint8Array;
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && data instanceof SharedArrayBuffer)) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new TypeError("deserialize: data must be a Uint8Array, an ArrayBuffer or another ArrayBufferView");
  const { capi, heap } = rt;
  const db = new Database(rt, ":memory:");
  try {
    const size = bytes.byteLength;
    const flags = SQLITE_DESERIALIZE_FREEONCLOSE | (options.readonly ? SQLITE_DESERIALIZE_READONLY : SQLITE_DESERIALIZE_RESIZEABLE);
    rt.enter();
    const rc = heap.scoped((s) => {
      const zMain = s.cstring("main")[0];
      const image = heap.alloc(size);
      const u8 = heap.u8;
      u8.set(bytes, image);
      if (size >= 20 && u8[image + 18] === 2 && u8[image + 19] === 2) u8[image + 18] = u8[image + 19] = 1;
      // SQLite owns the image from here, and frees it even when this fails.
      return capi.sqlite3_deserialize(db.state.ptr, zMain, image, BigInt(size), BigInt(size), flags);
    });
    if (rc !== SQLITE_OK) throw rt.errorFromCall(rc, db.state.ptr);
    db.get("SELECT count(*) FROM sqlite_schema"); // SQLITE_NOTADB for bytes that are no database
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
