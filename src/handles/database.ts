// A connection. It owns its handle and the backups that use it: close() finishes them first,
// so no C pointer outlives what it points to.
import { SQLITE_TRANSIENT } from "../core/capi.js";
import {
  SQLITE_BLOB, SQLITE_DONE, SQLITE_ERROR, SQLITE_FLOAT, SQLITE_INTEGER, SQLITE_NULL, SQLITE_OK,
  SQLITE_OPEN_CREATE, SQLITE_OPEN_EXRESCODE, SQLITE_OPEN_READONLY, SQLITE_OPEN_READWRITE,
  SQLITE_OPEN_URI, SQLITE_ROW, SQLITE_TEXT,
} from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import type { Scope } from "../core/heap.js";
import { checkKeys } from "../core/options.js";
import type { Runtime } from "../runtime/runtime.js";

export interface OpenOptions {
  /** Open read-only. Default false. */
  readonly?: boolean;
  /** Create the file if missing. Default true (ignored when readonly). */
  create?: boolean;
  /** VFS name; default: the runtime's default VFS (Node/Deno: "node-fs"). */
  vfs?: string;
}
/** The keys of OpenOptions: any other key is a TypeError. */
export const OPEN_OPTION_KEYS = ["readonly", "create", "vfs"] as const;
export type BindParams = readonly unknown[] | Record<string, unknown>;
export type Row = Record<string, null | number | bigint | string | Uint8Array>;

/** A backup's C handle and what it depends on; shared with Backup and the finalizers. */
export interface BackupState {
  ptr: number;
  source: DbState;
  dest: DbState;
  error: SqliteError | null;
  remaining: number;
  pageCount: number;
  done: boolean;
  /** Why the handle is gone: set by finish(), by close() of either database, or by GC. */
  finishedBy: string | null;
}
export interface DbState {
  ptr: number;
  readonly backups: Set<BackupState>;
}

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
  rt.capi.sqlite3_close_v2(s.ptr);
  s.ptr = 0;
}

// Last resort for a Database the program dropped without close().
const finalizer = new FinalizationRegistry<{ rt: Runtime; state: DbState }>(({ rt, state }) => {
  if (state.ptr) closeDbState(rt, state);
});

const MAX_INT64 = (1n << 63n) - 1n;

export class Database implements Disposable {
  readonly filename: string;
  /** @internal The instance this connection lives in. */ readonly runtime: Runtime;
  #state: DbState | null;

  /** @internal Use sqlite.open(). */
  constructor(rt: Runtime, filename: string, options: OpenOptions = {}) {
    if (typeof filename !== "string") throw new TypeError("filename must be a string");
    checkKeys(options, OPEN_OPTION_KEYS, "open");
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
    this.#state = { ptr, backups: new Set() };
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

  /** Runs one statement; returns the changes it made and the last inserted rowid. */
  run(sql: string, params?: BindParams): { changes: number; lastInsertRowid: number | bigint } {
    return this.#statement(sql, params, (stmt, db) => {
      const { capi } = this.runtime;
      let rc;
      while ((rc = capi.sqlite3_step(stmt)) === SQLITE_ROW);
      if (rc !== SQLITE_DONE) throw this.runtime.errorFromDb(db);
      return { changes: Number(capi.sqlite3_changes64(db)), lastInsertRowid: toJsInteger(capi.sqlite3_last_insert_rowid(db)) };
    });
  }

  /** The first row as an object, or undefined. */
  get<T = Row>(sql: string, params?: BindParams): T | undefined {
    return this.#statement(sql, params, (stmt, db) => {
      const rc = this.runtime.capi.sqlite3_step(stmt);
      if (rc === SQLITE_ROW) return this.#row(stmt, this.#columns(stmt)) as T;
      if (rc !== SQLITE_DONE) throw this.runtime.errorFromDb(db);
      return undefined;
    });
  }

  /** All rows as objects. */
  all<T = Row>(sql: string, params?: BindParams): T[] {
    return this.#statement(sql, params, (stmt, db) => {
      const rows: T[] = [];
      const columns = this.#columns(stmt);
      let rc;
      while ((rc = this.runtime.capi.sqlite3_step(stmt)) === SQLITE_ROW) rows.push(this.#row(stmt, columns) as T);
      if (rc !== SQLITE_DONE) throw this.runtime.errorFromDb(db);
      return rows;
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

  #begin(): number {
    const db = this.state.ptr;
    this.runtime.enter();
    return db;
  }

  #statement<T>(sql: string, params: BindParams | undefined, fn: (stmt: number, db: number) => T): T {
    if (typeof sql !== "string") throw new TypeError("sql must be a string");
    const { capi, heap } = this.runtime;
    const db = this.#begin();
    return heap.scoped((s) => {
      const [pSql, n] = s.cstring(sql);
      const ppStmt = s.out();
      const pzTail = s.out();
      if (capi.sqlite3_prepare_v3(db, pSql, n, 0, ppStmt, pzTail) !== SQLITE_OK) throw this.runtime.errorFromDb(db);
      const stmt = heap.i32(ppStmt);
      if (!stmt) throw new RangeError("the SQL string contains no statement");
      try {
        this.#rejectSecondStatement(db, heap.i32(pzTail), pSql + n, s);
        this.#bind(stmt, params, s);
        return fn(stmt, db);
      } finally {
        capi.sqlite3_finalize(stmt);
      }
    });
  }

  #rejectSecondStatement(db: number, tail: number, end: number, s: Scope): void {
    if (tail >= end) return;
    const { capi, heap } = this.runtime;
    const ppStmt = s.out();
    const pzTail = s.out();
    const rc = capi.sqlite3_prepare_v3(db, tail, end - tail, 0, ppStmt, pzTail);
    const next = heap.i32(ppStmt);
    capi.sqlite3_finalize(next);
    if (rc !== SQLITE_OK || next) {
      throw new RangeError("the SQL string contains more than one statement; use exec() for scripts");
    }
  }

  #bind(stmt: number, params: BindParams | undefined, s: Scope): void {
    const { capi, heap } = this.runtime;
    const count = capi.sqlite3_bind_parameter_count(stmt);
    if (params === undefined || params === null) {
      if (count > 0) throw new RangeError(`the statement has ${count} parameter(s) but none were given`);
      return;
    }
    if (Array.isArray(params)) {
      if (params.length !== count) throw new RangeError(`the statement has ${count} parameter(s), ${params.length} given`);
      for (let i = 1; i <= count; i++) this.#bindValue(stmt, i, params[i - 1], s);
      return;
    }
    if (typeof params !== "object" || ArrayBuffer.isView(params)) {
      throw new TypeError("params must be an array (for ?) or a plain object (for :name, @name, $name, ?NNN)");
    }
    const named = params as Record<string, unknown>;
    for (let i = 1; i <= count; i++) {
      const name = heap.cstring(capi.sqlite3_bind_parameter_name(stmt, i));
      if (!name) throw new RangeError(`parameter ${i} is a bare "?": pass an array`);
      const key = name.slice(1);
      if (!Object.hasOwn(named, key)) throw new RangeError(`missing named parameter "${key}"`);
      this.#bindValue(stmt, i, named[key], s);
    }
  }

  #bindValue(stmt: number, i: number, v: unknown, s: Scope): void {
    const c = this.runtime.capi;
    let rc: number;
    if (v === null || v === undefined) rc = c.sqlite3_bind_null(stmt, i);
    else if (typeof v === "number") {
      rc = Number.isSafeInteger(v) ? c.sqlite3_bind_int64(stmt, i, BigInt(v)) : c.sqlite3_bind_double(stmt, i, v);
    } else if (typeof v === "bigint") {
      if (v > MAX_INT64 || v < -MAX_INT64 - 1n) throw new RangeError(`parameter ${i}: ${v} does not fit in 64 bits`);
      rc = c.sqlite3_bind_int64(stmt, i, v);
    } else if (typeof v === "string") {
      const [p, n] = s.text(v);
      rc = c.sqlite3_bind_text(stmt, i, p, n, SQLITE_TRANSIENT);
    } else if (typeof v === "boolean") rc = c.sqlite3_bind_int64(stmt, i, v ? 1n : 0n);
    else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      rc = c.sqlite3_bind_blob(stmt, i, s.bytes(bytes), bytes.byteLength, SQLITE_TRANSIENT);
    } else throw new TypeError(`parameter ${i}: cannot bind a value of type ${typeof v}`);
    if (rc !== SQLITE_OK) throw this.runtime.errorFromDb(this.state.ptr);
  }

  #columns(stmt: number): string[] {
    const { capi, heap } = this.runtime;
    const n = capi.sqlite3_column_count(stmt);
    return Array.from({ length: n }, (_, i) => heap.cstring(capi.sqlite3_column_name(stmt, i)) ?? `column${i}`);
  }

  #row(stmt: number, columns: string[]): Row {
    const { capi, heap } = this.runtime;
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) {
      let v: Row[string];
      switch (capi.sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER: v = toJsInteger(capi.sqlite3_column_int64(stmt, i)); break;
        case SQLITE_FLOAT: v = capi.sqlite3_column_double(stmt, i); break;
        case SQLITE_TEXT: {
          const p = capi.sqlite3_column_text(stmt, i);
          v = heap.utf8(p, capi.sqlite3_column_bytes(stmt, i));
          break;
        }
        case SQLITE_BLOB: {
          const p = capi.sqlite3_column_blob(stmt, i);
          v = heap.u8.slice(p, p + capi.sqlite3_column_bytes(stmt, i)); // a copy, never a heap view
          break;
        }
        case SQLITE_NULL:
        default: v = null;
      }
      row[columns[i]!] = v;
    }
    return row;
  }
}

function toJsInteger(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
