// A prepared statement: SQL compiled once, run many times. It belongs to its Database:
// close() finalizes it, and one the program drops is finalized when it is collected.
import { SQLITE_TRANSIENT } from "../core/capi.js";
import type { Scope } from "../core/heap.js";
import {
  SQLITE_BLOB, SQLITE_DONE, SQLITE_FLOAT, SQLITE_INTEGER, SQLITE_OK, SQLITE_PREPARE_PERSISTENT, SQLITE_ROW, SQLITE_TEXT,
} from "../core/constants.js";
import type { Runtime } from "../runtime/runtime.js";
import type { DbState, StmtState } from "./state.js";

export type BindParams = readonly unknown[] | Record<string, unknown>;
export type Row = Record<string, null | number | bigint | string | Uint8Array>;
export interface RunResult {
  /** Rows the statement inserted, updated or deleted (sqlite3_changes64). */
  changes: number;
  /** The connection's last inserted rowid (sqlite3_last_insert_rowid). */
  lastInsertRowid: number | bigint;
}

/** @internal sqlite3_finalize on the raw state, once. */
export function finalizeStmtState(rt: Runtime, s: StmtState, by: string): void {
  if (s.finalizedBy !== null) return;
  rt.capi.sqlite3_finalize(s.ptr);
  rt.heap.free(s.scratch);
  s.ptr = 0;
  s.scratch = s.scratchSize = 0;
  s.finalizedBy = by;
  s.db.statements.delete(s);
}

// Last resort for a Statement the program dropped without finalize().
const finalizer = new FinalizationRegistry<{ rt: Runtime; state: StmtState }>(({ rt, state }) => {
  finalizeStmtState(rt, state, "it was garbage-collected");
});

const SQLITE_STMTSTATUS_REPREPARE = 5;
/** The reusable buffer for bound text and blobs: its first size, and the most it grows to. */
const SCRATCH_MIN = 256;
const SCRATCH_MAX = 64 * 1024;
const encoder = new TextEncoder();
const MAX_INT64 = (1n << 63n) - 1n;
const MIN_INT64 = -(1n << 63n);

/** @internal A 64-bit integer as a number when it is exact, else as a bigint. */
export function toJsInteger(v: bigint): number | bigint {
  const n = Number(v); // exact for every safe integer; no unsafe one rounds to a safe number
  return Number.isSafeInteger(n) ? n : v;
}

/** What a statement needs of the connection it belongs to (a Database). */
export interface Connection {
  readonly runtime: Runtime;
  readonly state: DbState;
  readonly filename: string;
}

export class Statement<T = Row, D = Connection> implements Disposable {
  /** The connection the statement belongs to (db.prepare() types it as the Database). */
  readonly database: D;
  readonly #conn: Connection;
  /** The SQL text it was prepared from. */
  readonly source: string;
  /** True when it returns rows (a SELECT, a PRAGMA with a result, RETURNING, …). */
  readonly reader: boolean;
  /** True when it cannot change the database (sqlite3_stmt_readonly). */
  readonly readonly: boolean;
  readonly #rt: Runtime;
  readonly #s: StmtState;
  /** The parameters' names without their prefix (":a" → "a", "?2" → "2"); null for a bare "?". */
  readonly #names: readonly (string | null)[];
  #columns: string[] | null = null;
  #view: Uint8Array | null = null;
  #prepares = 0;
  #bound = false;
  #iterating = false;

  /** @internal Use db.prepare(). `persistent`: kept for many runs (not a one-shot of db.run()). */
  constructor(db: D & Connection, sql: string, persistent = true) {
    if (typeof sql !== "string") throw new TypeError("sql must be a string");
    const rt = db.runtime;
    const dbState = db.state;
    const { capi, heap } = rt;
    rt.enter();
    const ptr = heap.scoped((s) => {
      const [pSql, n] = s.cstring(sql);
      const ppStmt = s.out();
      const pzTail = s.out();
      const flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
      if (capi.sqlite3_prepare_v3(dbState.ptr, pSql, n, flags, ppStmt, pzTail) !== SQLITE_OK) throw rt.errorFromDb(dbState.ptr);
      const stmt = heap.i32(ppStmt);
      if (!stmt) throw new RangeError("the SQL string contains no statement");
      try {
        rejectSecondStatement(rt, dbState.ptr, heap.i32(pzTail), pSql + n, s);
      } catch (e) {
        capi.sqlite3_finalize(stmt);
        throw e;
      }
      return stmt;
    });
    this.database = db;
    this.#conn = db;
    this.source = sql;
    this.#rt = rt;
    this.#s = { ptr, db: dbState, finalizedBy: null, scratch: 0, scratchSize: 0 };
    const count = capi.sqlite3_bind_parameter_count(ptr);
    this.#names = Array.from({ length: count }, (_, i) => heap.cstring(capi.sqlite3_bind_parameter_name(ptr, i + 1))?.slice(1) ?? null);
    this.reader = capi.sqlite3_column_count(ptr) > 0;
    this.readonly = capi.sqlite3_stmt_readonly(ptr) !== 0;
    if (persistent) {
      dbState.statements.add(this.#s);
      finalizer.register(this, { rt, state: this.#s }, this);
    }
  }

  /** The result columns' names (empty for a statement that returns no rows). */
  get columnNames(): readonly string[] {
    return this.#columnsOf(this.#live());
  }

  /** False once finalize() was called or the database was closed. */
  get isAlive(): boolean {
    return this.#s.finalizedBy === null;
  }

  /** True while an iterate() iterator is open (the statement cannot run anything else then). */
  get busy(): boolean {
    return this.#iterating;
  }

  /**
   * Binds `params` for every later run: run(), get(), all() and iterate() are then called
   * without parameters. Once per statement.
   */
  bind(params: BindParams): this {
    const ptr = this.#live();
    if (this.#iterating) throw new TypeError("the statement is being iterated: finish the iterator or call its return() first");
    if (this.#bound) throw new TypeError("bind() can be called once per statement");
    if (params === undefined || params === null) throw new TypeError("bind() needs parameters: an array or an object");
    this.#rt.enter();
    this.#rt.capi.sqlite3_reset(ptr);
    try {
      this.#bindAll(ptr, params);
    } catch (e) {
      this.#rt.capi.sqlite3_clear_bindings(ptr);
      throw e;
    }
    this.#bound = true;
    return this;
  }

  /** Runs the statement to its end (any rows are discarded); returns the changes and the last rowid. */
  run(params?: BindParams): RunResult {
    const ptr = this.#start(params);
    const { capi } = this.#rt;
    const db = this.#s.db.ptr;
    try {
      let rc;
      while ((rc = capi.sqlite3_step(ptr)) === SQLITE_ROW);
      if (rc !== SQLITE_DONE) throw this.#rt.errorFromDb(db);
      return { changes: Number(capi.sqlite3_changes64(db)), lastInsertRowid: toJsInteger(capi.sqlite3_last_insert_rowid(db)) };
    } finally {
      capi.sqlite3_reset(ptr);
    }
  }

  /** The first row as an object, or undefined when there is none. */
  get(params?: BindParams): T | undefined {
    const ptr = this.#start(params);
    const { capi } = this.#rt;
    try {
      const rc = capi.sqlite3_step(ptr);
      if (rc === SQLITE_ROW) return this.#row(ptr, this.#columnsOf(ptr)) as T;
      if (rc !== SQLITE_DONE) throw this.#rt.errorFromDb(this.#s.db.ptr);
      return undefined;
    } finally {
      capi.sqlite3_reset(ptr);
    }
  }

  /** Every row, as objects. */
  all(params?: BindParams): T[] {
    const ptr = this.#start(params);
    const { capi } = this.#rt;
    try {
      const rows: T[] = [];
      let rc = capi.sqlite3_step(ptr);
      if (rc === SQLITE_ROW) {
        const columns = this.#columnsOf(ptr);
        do rows.push(this.#row(ptr, columns) as T);
        while ((rc = capi.sqlite3_step(ptr)) === SQLITE_ROW);
      }
      if (rc !== SQLITE_DONE) throw this.#rt.errorFromDb(this.#s.db.ptr);
      return rows;
    } finally {
      capi.sqlite3_reset(ptr);
    }
  }

  /**
   * The rows one at a time. Parameters are bound at once; each next() steps the statement.
   * Leaving a for…of early (break, return, throw) or calling return() resets the statement,
   * which ends its read transaction; until the iterator is done, the statement cannot run
   * anything else.
   */
  iterate(params?: BindParams): RowIterator<T> {
    const ptr = this.#start(params);
    this.#iterating = true;
    return new RowIterator<T>(this.#rt, this.#s, ptr, {
      row: (p) => this.#row(p, this.#columnsOf(p)) as T,
      end: () => {
        this.#iterating = false;
        if (this.#s.ptr) this.#rt.capi.sqlite3_reset(this.#s.ptr);
      },
      dead: () => this.#deadError(),
    });
  }

  /** Frees the compiled statement. Idempotent; the statement cannot be used afterwards. */
  finalize(): void {
    if (this.#s.finalizedBy !== null) return;
    finalizer.unregister(this);
    this.#iterating = false;
    finalizeStmtState(this.#rt, this.#s, "finalize() was called");
  }

  [Symbol.dispose](): void {
    this.finalize();
  }

  /** The live handle, or a clear Error. */
  #live(): number {
    if (this.#s.finalizedBy !== null) throw this.#deadError();
    return this.#s.ptr;
  }

  #deadError(): Error {
    const by = this.#s.finalizedBy;
    if (by === "its database was closed") return new Error(`database ${this.#conn.filename} is closed (statement: ${snippet(this.source)})`);
    return new Error(`the statement is finalized (${by}): ${snippet(this.source)}`);
  }

  /** Checks the state, binds `params` (or checks that bind() did), and returns the handle. */
  #start(params: BindParams | undefined): number {
    const ptr = this.#live();
    if (this.#iterating) throw new TypeError("the statement is being iterated: finish the iterator or call its return() first");
    this.#rt.enter();
    if (params !== undefined && params !== null) {
      if (this.#bound) throw new TypeError("the statement's parameters were bound with bind(): call it without parameters");
      this.#bindAll(ptr, params);
    } else if (!this.#bound && this.#names.length > 0) {
      throw new RangeError(`the statement has ${this.#names.length} parameter(s) but none were given`);
    }
    return ptr;
  }

  #bindAll(ptr: number, params: BindParams): void {
    const names = this.#names;
    const count = names.length;
    if (Array.isArray(params)) {
      if (params.length !== count) throw new RangeError(`the statement has ${count} parameter(s), ${params.length} given`);
      for (let i = 0; i < count; i++) this.#bindValue(ptr, i + 1, params[i]);
      return;
    }
    if (typeof params !== "object" || ArrayBuffer.isView(params)) {
      throw new TypeError("params must be an array (for ?) or a plain object (for :name, @name, $name, ?NNN)");
    }
    const named = params as Record<string, unknown>;
    for (let i = 0; i < count; i++) {
      const key = names[i] as string | null;
      if (key === null) throw new RangeError(`parameter ${i + 1} is a bare "?": pass an array`);
      if (!Object.hasOwn(named, key)) throw new RangeError(`missing named parameter "${key}"`);
      this.#bindValue(ptr, i + 1, named[key]);
    }
  }

  #bindValue(stmt: number, i: number, v: unknown): void {
    const c = this.#rt.capi;
    let rc: number;
    if (v === null || v === undefined) rc = c.sqlite3_bind_null(stmt, i);
    else if (typeof v === "number") {
      if ((v | 0) === v) rc = c.sqlite3_bind_int(stmt, i, v);
      else rc = Number.isSafeInteger(v) ? c.sqlite3_bind_int64(stmt, i, BigInt(v)) : c.sqlite3_bind_double(stmt, i, v);
    } else if (typeof v === "bigint") {
      if (v > MAX_INT64 || v < MIN_INT64) throw new RangeError(`parameter ${i}: ${v} does not fit in 64 bits`);
      rc = c.sqlite3_bind_int64(stmt, i, v);
    } else if (typeof v === "string") {
      const buf = this.#scratch(v.length * 3 + 1);
      if (buf) rc = c.sqlite3_bind_text(stmt, i, this.#s.scratch, encoder.encodeInto(v, buf).written, SQLITE_TRANSIENT);
      else rc = this.#rt.heap.scoped((s) => {
        const [p, n] = s.text(v);
        return c.sqlite3_bind_text(stmt, i, p, n, SQLITE_TRANSIENT);
      });
    } else if (typeof v === "boolean") rc = c.sqlite3_bind_int(stmt, i, v ? 1 : 0);
    else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      const buf = this.#scratch(bytes.byteLength + 1);
      if (buf) {
        buf.set(bytes);
        rc = c.sqlite3_bind_blob(stmt, i, this.#s.scratch, bytes.byteLength, SQLITE_TRANSIENT);
      } else rc = this.#rt.heap.scoped((s) => c.sqlite3_bind_blob(stmt, i, s.bytes(bytes), bytes.byteLength, SQLITE_TRANSIENT));
    } else throw new TypeError(`parameter ${i}: cannot bind a value of type ${typeof v}`);
    if (rc !== SQLITE_OK) throw this.#rt.errorFromDb(this.#s.db.ptr);
  }

  /**
   * A view of the statement's reusable heap buffer, at least n bytes long, for a value that SQLite
   * copies as it is bound (SQLITE_TRANSIENT); null when n is larger than the buffer may grow.
   */
  #scratch(n: number): Uint8Array | null {
    const s = this.#s;
    const { heap } = this.#rt;
    if (n > s.scratchSize) {
      if (n > SCRATCH_MAX) return null;
      const size = Math.max(SCRATCH_MIN, 2 ** Math.ceil(Math.log2(n)));
      const p = heap.alloc(size);
      heap.free(s.scratch);
      s.scratch = p;
      s.scratchSize = size;
      this.#view = null;
    }
    // A view over memory that grew since is detached: its length reads 0.
    if (this.#view === null || this.#view.length === 0) this.#view = new Uint8Array(heap.u8.buffer, s.scratch, s.scratchSize);
    return this.#view;
  }

  /** The column names, read again when SQLite re-prepared the statement (a schema change). */
  #columnsOf(ptr: number): string[] {
    const { capi, heap } = this.#rt;
    const prepares = capi.sqlite3_stmt_status(ptr, SQLITE_STMTSTATUS_REPREPARE, 0);
    if (this.#columns === null || prepares !== this.#prepares) {
      const n = capi.sqlite3_column_count(ptr);
      this.#columns = Array.from({ length: n }, (_, i) => heap.cstring(capi.sqlite3_column_name(ptr, i)) ?? `column${i}`);
      this.#prepares = prepares;
    }
    return this.#columns;
  }

  #row(stmt: number, columns: string[]): Row {
    const { capi, heap } = this.#rt;
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) {
      let v: Row[string];
      switch (capi.sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER: {
          // A double is exact for every safe integer, and no unsafe one converts to a safe double.
          const d = capi.sqlite3_column_double(stmt, i);
          v = Number.isSafeInteger(d) ? d : capi.sqlite3_column_int64(stmt, i);
          break;
        }
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
        default: v = null;
      }
      row[columns[i]!] = v;
    }
    return row;
  }
}

/** What a RowIterator needs from its statement. */
interface RowSource<T> {
  row(ptr: number): T;
  end(): void;
  dead(): Error;
}

/** The iterator of Statement.iterate(): also Disposable, so `using` ends it too. */
export class RowIterator<T> implements IterableIterator<T>, Disposable {
  readonly #rt: Runtime;
  readonly #s: StmtState;
  readonly #ptr: number;
  readonly #src: RowSource<T>;
  #done = false;

  /** @internal */
  constructor(rt: Runtime, s: StmtState, ptr: number, src: RowSource<T>) {
    this.#rt = rt;
    this.#s = s;
    this.#ptr = ptr;
    this.#src = src;
  }

  next(): IteratorResult<T, undefined> {
    if (this.#done) return { done: true, value: undefined };
    if (this.#s.ptr !== this.#ptr) {
      this.#finish();
      throw this.#src.dead();
    }
    const { capi } = this.#rt;
    this.#rt.enter();
    let rc: number;
    try {
      rc = capi.sqlite3_step(this.#ptr);
      if (rc === SQLITE_ROW) return { done: false, value: this.#src.row(this.#ptr) };
    } catch (e) {
      this.#finish();
      throw e;
    }
    const error = rc === SQLITE_DONE ? null : this.#rt.errorFromDb(this.#s.db.ptr);
    this.#finish();
    if (error) throw error;
    return { done: true, value: undefined };
  }

  /** Ends the iteration early: resets the statement. */
  return(value?: undefined): IteratorResult<T, undefined> {
    this.#finish();
    return { done: true, value };
  }

  [Symbol.iterator](): this {
    return this;
  }

  [Symbol.dispose](): void {
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#src.end();
  }
}

// Iterator helpers (map, filter, toArray, …) where the engine has them.
Object.setPrototypeOf(RowIterator.prototype, Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())));

/** Refuses a string with a second statement after the first (only whitespace or comments may follow). */
function rejectSecondStatement(rt: Runtime, db: number, tail: number, end: number, s: Scope): void {
  if (tail >= end) return;
  const { capi, heap } = rt;
  const ppStmt = s.out();
  const pzTail = s.out();
  const rc = capi.sqlite3_prepare_v3(db, tail, end - tail, 0, ppStmt, pzTail);
  const next = heap.i32(ppStmt);
  capi.sqlite3_finalize(next);
  if (rc !== SQLITE_OK || next) {
    throw new RangeError("the SQL string contains more than one statement; use exec() for scripts");
  }
}

function snippet(sql: string): string {
  const one = sql.replace(/\s+/g, " ").trim();
  return one.length > 60 ? `${one.slice(0, 57)}…` : one;
}
