// Temporary database files of the stream operations: the spool of backupToStream() and the
// staging file of restoreFromStream(). They are files of the default VFS: on Node, Deno and Bun
// real files in a directory (os.tmpdir() unless told otherwise), reached through builtin()
// (runtime/builtin.ts) so that browser bundles import nothing of Node; in browsers files of
// the in-memory VFS (their bytes live in JS memory until removed).
import type * as NodeOs from "node:os";
import { SQLITE_IOERR, SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_WRITE, SQLITE_OPEN_CREATE, SQLITE_OPEN_EXCLUSIVE, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READONLY, SQLITE_OPEN_READWRITE, SQLITE_SYNC_NORMAL } from "../../core/constants.js";
import { errorCode, SqliteError } from "../../core/errors.js";
import { builtin } from "../../runtime/builtin.js";
import type { Runtime } from "../../runtime/runtime.js";
import { MemoryVfs } from "../../vfs/memory.js";
import type { VfsFile } from "../../vfs/types.js";

/** 16 random hex digits: temporary names nobody else picks. */
export function randomTag(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A new name for a temporary database of the default VFS: in `dir`, else the OS's temporary
 * directory, else (browsers) the in-memory VFS's root. Throws when there is neither a directory
 * nor the in-memory VFS as the default (a runtime that cannot say where temporary files go).
 */
export function tempName(rt: Runtime, tag: string, dir?: string): string {
  const name = `sbw-${tag}-${randomTag()}.db`;
  const base = dir ?? builtin<typeof NodeOs>("node:os")?.tmpdir();
  if (base !== undefined) return rt.vfs().fullPathname(`${base.replace(/[\\/]+$/, "")}/${name}`);
  if (rt.vfs() instanceof MemoryVfs) return rt.vfs().fullPathname(`/${name}`);
  throw new TypeError(`no temporary directory in this runtime: pass the tempDir option`);
}

/** Removes a temporary database with its journal, WAL and shared-memory files; never throws. */
export function removeTemp(rt: Runtime, path: string): void {
  const vfs = rt.vfs();
  for (const p of [path, `${path}-journal`, `${path}-wal`, `${path}-shm`]) {
    try {
      vfs.delete(p, false);
    } catch {
      // absent (most of them are), or best effort: the caller's result or error is what matters
    }
  }
}

/** The VFS failure `e` as a SqliteError for `what` (a full disk stays SQLITE_FULL). */
function ioError(e: unknown, fallback: number, what: string): SqliteError {
  if (e instanceof SqliteError) return e;
  return new SqliteError(`${what}: ${(e as Error)?.message ?? e}`, errorCode(e, fallback));
}

/** Sequential reads of a finished temporary file, off the thread where the VFS can. */
export class TempReader {
  readonly #file: VfsFile;
  readonly size: number;
  #offset = 0;

  constructor(rt: Runtime, readonly path: string) {
    try {
      this.#file = rt.vfs().open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB).file;
      this.size = this.#file.size();
    } catch (e) {
      throw ioError(e, SQLITE_IOERR, `cannot read ${path}`);
    }
  }

  get offset(): number {
    return this.#offset;
  }

  /** The next `n` bytes (fewer at the end) in a new array; null at the end. */
  async next(n: number): Promise<Uint8Array<ArrayBuffer> | null> {
    const len = Math.min(n, this.size - this.#offset);
    if (len <= 0) return null;
    const chunk = new Uint8Array(len);
    let got: number;
    try {
      got = this.#file.readAsync ? await this.#file.readAsync(chunk, this.#offset) : this.#file.read(chunk, this.#offset);
    } catch (e) {
      throw ioError(e, SQLITE_IOERR, `cannot read ${this.path}`);
    }
    if (got !== len) throw new SqliteError(`${this.path}: short read at ${this.#offset} (${got} of ${len} bytes)`, SQLITE_IOERR_SHORT_READ);
    this.#offset += len;
    return chunk;
  }

  /** Idempotent; never throws. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // nothing was written: nothing to lose
    }
  }
}

/**
 * Appends to a new temporary file through a buffer of `bufferSize` bytes, so that memory stays
 * bounded and writes stay large whatever the sizes of the pieces appended (1 byte to many MiB:
 * a piece at least as large as the buffer is written as it is).
 */
export class TempWriter {
  readonly #file: VfsFile;
  readonly #buffer: Uint8Array;
  #used = 0;
  #offset = 0;
  #closed = false;

  /** `exclusive`: the file must not exist yet (a name of tempName()). */
  constructor(readonly rt: Runtime, readonly path: string, bufferSize: number, exclusive: boolean) {
    try {
      const flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB | (exclusive ? SQLITE_OPEN_EXCLUSIVE : 0);
      this.#file = rt.vfs().open(path, flags).file;
    } catch (e) {
      throw ioError(e, SQLITE_IOERR, `cannot create ${path}`);
    }
    this.#buffer = new Uint8Array(bufferSize);
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.#offset + this.#used;
  }

  append(bytes: Uint8Array): void {
    let rest = bytes;
    while (rest.length > 0) {
      if (this.#used === 0 && rest.length >= this.#buffer.length) {
        this.#write(rest);
        return;
      }
      const n = Math.min(rest.length, this.#buffer.length - this.#used);
      this.#buffer.set(rest.subarray(0, n), this.#used);
      this.#used += n;
      rest = rest.subarray(n);
      if (this.#used === this.#buffer.length) this.flush();
    }
  }

  flush(): void {
    if (this.#used === 0) return;
    this.#write(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  #write(bytes: Uint8Array): void {
    try {
      this.#file.write(bytes, this.#offset);
    } catch (e) {
      throw ioError(e, SQLITE_IOERR_WRITE, `cannot write ${this.path}`);
    }
    this.#offset += bytes.length;
  }

  /**
   * Starts writing the file back to the disk off the thread (Node: fdatasync in libuv's thread
   * pool), so that a durable finish() finds little left. Never rejects; await it before closing.
   */
  writeBack(): Promise<void> {
    this.flush();
    return this.rt.vfs().writeBack?.() ?? Promise.resolve();
  }

  /**
   * Writes what is buffered and closes the file (which flushes the VFS's own buffering); with
   * `durable`, syncs it first, after the VFS wrote back what it could off the thread.
   */
  async finish(durable: boolean): Promise<void> {
    try {
      if (durable) {
        await this.writeBack();
        this.#file.sync(SQLITE_SYNC_NORMAL);
      }
      this.flush();
      this.#closed = true;
      this.#file.close();
    } catch (e) {
      throw ioError(e, SQLITE_IOERR_WRITE, `cannot write ${this.path}`);
    }
  }

  /** Closes without caring for the content (it is about to be removed); never throws. */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#file.close();
    } catch {
      // the file is thrown away
    }
  }
}
