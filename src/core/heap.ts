// Heap helpers: typed views that survive memory growth, C strings, and scoped allocation.
// Every allocation goes through sqlite3_malloc64 so sqlite3_memory_used() sees our leaks too.
import { SQLITE_NOMEM } from "./constants.js";
import { SqliteError } from "./errors.js";

export interface HeapExports {
  memory: WebAssembly.Memory;
  sqlite3_malloc64(n: bigint): number;
  sqlite3_free(p: number): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Heap {
  #u8: Uint8Array;
  #dv: DataView;

  constructor(private readonly x: HeapExports) {
    this.#u8 = new Uint8Array(x.memory.buffer);
    this.#dv = new DataView(x.memory.buffer);
  }

  /** A view of all of memory. Re-read after any call into WASM: growth detaches the old one. */
  get u8(): Uint8Array {
    if (this.#u8.buffer !== this.x.memory.buffer) this.#refresh();
    return this.#u8;
  }
  get dv(): DataView {
    // Identity first: browsers throw on byteLength of a DataView whose buffer growth detached.
    if (this.#dv.buffer !== this.x.memory.buffer) this.#refresh();
    return this.#dv;
  }
  #refresh(): void {
    this.#u8 = new Uint8Array(this.x.memory.buffer);
    this.#dv = new DataView(this.x.memory.buffer);
  }

  alloc(n: number): number {
    const p = this.x.sqlite3_malloc64(BigInt(Math.max(n, 1)));
    if (p === 0) throw new SqliteError(`out of memory allocating ${n} bytes`, SQLITE_NOMEM);
    return p;
  }
  free(p: number): void {
    if (p) this.x.sqlite3_free(p);
  }

  i32(p: number): number { return this.dv.getInt32(p, true); }
  setI32(p: number, v: number): void { this.dv.setInt32(p, v, true); }
  i64(p: number): bigint { return this.dv.getBigInt64(p, true); }
  setI64(p: number, v: bigint): void { this.dv.setBigInt64(p, v, true); }

  /** Reads a NUL-terminated UTF-8 string; null for a NULL pointer. */
  cstring(p: number): string | null {
    if (!p) return null;
    const u8 = this.u8;
    const end = u8.indexOf(0, p);
    return decoder.decode(u8.subarray(p, end));
  }
  /** Reads n bytes of UTF-8. */
  utf8(p: number, n: number): string {
    return n ? decoder.decode(this.u8.subarray(p, p + n)) : "";
  }
  /** Writes a NUL-terminated string into a caller-owned buffer of size n; false if it did not fit. */
  writeCString(s: string, p: number, n: number): boolean {
    const bytes = encoder.encode(s);
    if (bytes.length + 1 > n) return false;
    const u8 = this.u8;
    u8.set(bytes, p);
    u8[p + bytes.length] = 0;
    return true;
  }

  /** Runs fn with a scope whose allocations are all freed when fn returns or throws. */
  scoped<T>(fn: (scope: Scope) => T): T {
    const scope = new Scope(this);
    try {
      return fn(scope);
    } finally {
      scope.release();
    }
  }
}

/** Allocations that live exactly as long as one call (see Heap.scoped). */
export class Scope {
  readonly #ptrs: number[] = [];
  constructor(readonly heap: Heap) {}

  alloc(n: number): number {
    const p = this.heap.alloc(n);
    this.#ptrs.push(p);
    return p;
  }
  /** A zeroed 8-byte slot for an out-parameter (int, pointer or int64). */
  out(): number {
    const p = this.alloc(8);
    this.heap.setI64(p, 0n);
    return p;
  }
  /**
   * A NUL-terminated UTF-8 copy of s (a name, a path or SQL); returns [pointer, byte length without
   * the NUL]. A NUL inside s is a TypeError: C would read only the part before it (a path with a
   * NUL would open another file).
   */
  cstring(s: string): [number, number] {
    if (s.includes("\0")) throw new TypeError(`a string passed to SQLite must not contain NUL characters: ${JSON.stringify(s.slice(0, 80))}`);
    return this.text(s);
  }
  /** A NUL-terminated UTF-8 copy of any string (a bound value: NULs inside it are data). */
  text(s: string): [number, number] {
    const max = s.length * 3 + 1;
    const p = this.alloc(max);
    const { written } = encoder.encodeInto(s, this.heap.u8.subarray(p, p + max - 1));
    this.heap.u8[p + written] = 0;
    return [p, written];
  }
  bytes(b: Uint8Array): number {
    const p = this.alloc(b.byteLength);
    this.heap.u8.set(b, p);
    return p;
  }
  release(): void {
    for (const p of this.#ptrs) this.heap.free(p);
    this.#ptrs.length = 0;
  }
}
