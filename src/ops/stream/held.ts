// backupToStream()'s held route: a rollback-journal file source (Node, Deno, Bun) whose writers
// wait for a read lock of ours (real file locks, the source guard's OS read lock, or
// verifySource: false). Under that lock the file holds one committed state, so the stream reads
// its bytes straight from it, while a copier in the thread pool copies what the stream has not
// read yet into a spool file; once the spool holds the rest, the lock is released and the stream
// reads on from the spool. Writers so wait for one file copy at most, whatever the consumer's
// pace, and a fast consumer never waits for the copy. The spool's name goes at close, its pages
// when its descriptor closes (off the thread: freeing hundreds of MiB takes a while).
import type * as NodeFs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { SQLITE_IOERR, SQLITE_IOERR_SHORT_READ } from "../../core/constants.js";
import { errorCode, SqliteError } from "../../core/errors.js";
import { Database } from "../../handles/database.js";
import { builtin } from "../../runtime/builtin.js";
import type { Runtime } from "../../runtime/runtime.js";
import type { BackupOptions } from "../options.js";
import { SourceGuard } from "../source-guard.js";
import { stampPageCount } from "./header.js";
import { tempName } from "./temp.js";

/** The copier's unit: one read of the source and one write of the spool, in the thread pool. */
const COPY_BYTES = 4 << 20;

export class Held {
  readonly totalBytes: number;
  #offset = 0;
  /** The spool holds the bytes [copiedFrom, copiedTo). */
  #copiedFrom = 0;
  #copiedTo = 0;
  /** The lock is released: every read from now on is of the spool. */
  #released = false;
  #closed = false;
  /** A read of the source in flight: the lock stays until it is over. */
  #reading: Promise<unknown> | null = null;
  #copyError: unknown = null;
  readonly #copying: Promise<void>;

  private constructor(readonly path: string, readonly pageSize: number, readonly pageCount: number, readonly db: Database,
    readonly guard: SourceGuard | null, readonly src: FileHandle, readonly spool: FileHandle, readonly spoolPath: string,
    readonly fs: typeof NodeFs, readonly onProgress: BackupOptions["onProgress"]) {
    this.totalBytes = pageSize * pageCount;
    this.#copying = this.#copy();
  }

  /**
   * The held route for `schema` of `source`, or null where it does not apply (another VFS, memory,
   * WAL mode, no lock that keeps other processes' writers out, a hot journal, a busy writer):
   * backup() into a spool then does what it does.
   */
  static async open(rt: Runtime, source: Database, schema: string, options: BackupOptions, tempDir: string | undefined): Promise<Held | null> {
    const fs = builtin<typeof NodeFs>("node:fs");
    const ptr = source.state.ptr; // a closed source throws here, and errors the stream
    const path = rt.filename(ptr, schema);
    const vfs = rt.vfsOf(ptr, schema);
    if (!fs || !path || vfs !== rt.vfs() || rt.fileOf(ptr, schema)?.fd === undefined) return null;
    // Other processes' writers wait for real file locks, or the guard's OS read lock.
    let guard: SourceGuard | null = null;
    if (rt.locking !== "os" && options.verifySource !== false) {
      guard = SourceGuard.for(rt, source, schema);
      if (guard?.watch?.hold() !== "held") {
        guard?.close();
        return null;
      }
    }
    let db: Database | null = null;
    const handles: FileHandle[] = [];
    try {
      db = new Database(rt, path, { readonly: true, vfs: vfs.name });
      db.exec("BEGIN");
      // The read lock of this process's lock table (and, with real locks, the OS's) from here on.
      const { page_count: pageCount } = db.get<{ page_count: number }>("PRAGMA page_count")!;
      const { journal_mode: mode } = db.get<{ journal_mode: string }>("PRAGMA journal_mode")!;
      if (mode === "wal" || pageCount === 0) throw new Error("not a rollback-journal database");
      if (guard?.stamp().writerActive) throw new Error("a writer is inside a transaction");
      const { page_size: pageSize } = db.get<{ page_size: number }>("PRAGMA page_size")!;
      const src = await fs.promises.open(path, "r");
      handles.push(src);
      if ((await src.stat()).size < pageSize * pageCount) throw new Error("the file is shorter than its pages");
      const spoolPath = tempName(rt, "spool", tempDir);
      const spool = await fs.promises.open(spoolPath, "wx+", 0o600);
      return new Held(path, pageSize, pageCount, db, guard, src, spool, spoolPath, fs, options.onProgress);
    } catch (e) {
      for (const h of handles) void h.close().catch(() => {});
      db?.close(); // ends the read transaction
      guard?.close();
      // A full disk or an unwritable tempDir is the stream's error; the rest falls back.
      if (handles.length === 1 && (e as NodeJS.ErrnoException)?.code !== undefined) throw ioError(e, "cannot create the spool");
      return null;
    }
  }

  get offset(): number {
    return this.#offset;
  }

  /** Copies what the stream has not read yet into the spool, then releases the lock. */
  async #copy(): Promise<void> {
    const buf = new Uint8Array(Math.min(COPY_BYTES, this.totalBytes));
    try {
      while (this.#copiedTo < this.totalBytes) {
        if (this.#closed) return;
        // What the stream has taken needs no copy.
        if (this.#copiedTo < this.#offset) this.#copiedFrom = this.#copiedTo = this.#offset;
        const at = this.#copiedTo;
        const n = Math.min(buf.length, this.totalBytes - at);
        await readFully(this.src, buf.subarray(0, n), at, this.path);
        if (this.#closed) return;
        let done = 0;
        while (done < n) done += (await this.spool.write(buf, done, n - done, at + done)).bytesWritten;
        this.#copiedTo = at + n;
      }
      while (this.#reading !== null) await this.#reading;
    } catch (e) {
      this.#copyError = ioError(e, "cannot copy the source into the spool");
    }
    this.#release();
  }

  /** Ends the read transaction: the source's writers go on. */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.db.close();
    this.guard?.close();
  }

  async next(max: number): Promise<Uint8Array<ArrayBuffer> | null> {
    if (this.#copyError !== null) throw this.#copyError;
    const at = this.#offset;
    const len = Math.min(max, this.totalBytes - at);
    if (len <= 0) return null;
    const chunk = new Uint8Array(len);
    if (this.#released) {
      await readFully(this.spool, chunk, at, "the spool");
    } else {
      const p = readFully(this.src, chunk, at, this.path);
      this.#reading = p.catch(() => {});
      try {
        await p;
      } finally {
        this.#reading = null;
      }
    }
    if (at === 0) stampPageCount(chunk, this.pageCount);
    this.#offset = at + len;
    await this.onProgress?.({ remaining: this.pageCount - Math.floor(this.#offset / this.pageSize), pageCount: this.pageCount });
    return chunk;
  }

  /** Releases the lock and removes the spool's name at once, closes both files off the thread; idempotent, never throws. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.fs.unlinkSync(this.spoolPath);
    } catch {
      // best effort, as for the spool of backup()
    }
    try {
      this.#release();
    } catch {
      // a read transaction has nothing to lose
    }
    // The last close of the spool frees its pages: not on this thread.
    void this.#copying.finally(() => Promise.all([this.src.close(), this.spool.close()])).catch(() => {});
  }
}

async function readFully(fh: FileHandle, dst: Uint8Array, at: number, what: string): Promise<void> {
  let n = 0;
  while (n < dst.length) {
    const { bytesRead } = await fh.read(dst, n, dst.length - n, at + n);
    if (bytesRead === 0) throw new SqliteError(`backupToStream: ${what} ends at ${at + n}, short of ${at + dst.length} bytes`, SQLITE_IOERR_SHORT_READ);
    n += bytesRead;
  }
}

function ioError(e: unknown, what: string): SqliteError {
  if (e instanceof SqliteError) return e;
  return new SqliteError(`backupToStream: ${what}: ${(e as Error)?.message ?? e}`, errorCode(e, SQLITE_IOERR));
}
