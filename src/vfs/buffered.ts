// Write coalescing and read-ahead for any positional VfsFile (Node fs, OPFS sync handles, …).
// SQLite issues one call per page; the host pays per call (a syscall in Node, far more in OPFS),
// so contiguous page writes are merged into one large write and sequential page reads are served
// from one large read.
//
// Invariants (what makes this safe):
// - At most one file in this JS realm holds buffered writes (`dirty`). A write to any other
//   file, and every other ordering point (sync, truncate, size, lock change, WAL-index lock or
//   barrier, close, a VFS
//   delete/access via flushPendingWrites(), the end of the current task), flushes it first. So
//   the OS sees the same sequence of writes SQLite issued, only with neighbours merged: a
//   process crash leaves what native SQLite would leave (journal before database, database
//   before the journal's deletion), with synchronous=OFF too.
// - A read through any connection of a file with buffered writes flushes them first (WAL
//   frames written by one connection are read by another through its own handle).
// - Read-ahead data is tagged with the file's write generation (per lockKey, bumped by every
//   write or truncate from any connection of this realm, checkpoints included; a connection's
//   own write that misses its read-ahead re-tags it, as those bytes did not change) and with the
//   realm's transaction epoch, bumped whenever any connection takes SHARED from NONE or a
//   WAL-index lock (in WAL mode the database lock stays SHARED across transactions): a new
//   transaction, so another process may have written any file in between (the database, the
//   WAL, or a persistent journal that is not locked itself).
// - A flush that fails inside a VFS call fails that call (SQLITE_IOERR_WRITE, or SQLITE_FULL
//   for a full disk); a flush that fails at the end of a task (no call to fail) is kept and
//   thrown by the next call on that file, as an OS reports a failed write-back at the next
//   fsync.
import { SQLITE_IOERR_WRITE, SQLITE_LOCK_NONE, SQLITE_LOCK_SHARED, SQLITE_NOTFOUND } from "../core/constants.js";
import { errorCode, VfsError } from "../core/errors.js";
import type { VfsFile } from "./types.js";

export interface BufferOptions {
  /** Largest merged write, bytes. Default 1 MiB. */
  maxWrite?: number;
  /** Largest read-ahead, bytes. Default 1 MiB. */
  maxReadAhead?: number;
}

const DEFAULT_MAX = 1 << 20;
/** First read-ahead and first write-buffer size: small databases never pay for 1 MiB buffers. */
const START = 64 << 10;

/** Write generation per file identity, shared by every open handle of that file. */
interface Generation {
  value: number;
  refs: number;
}
const generations = new Map<string, Generation>();

/** Bumped when any connection starts a transaction: read-ahead from before may be stale. */
let epoch = 0;

/** The one file whose writes are buffered, if any (see the invariants above). */
let dirty: BufferedFile | null = null;
let flushQueued = false;

/** Flushes the buffered writes of whichever file has some. Call before VFS-level operations. */
export function flushPendingWrites(): void {
  dirty?.flush();
}

/** End of the current task: nothing stays buffered while the program does something else. */
function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  queueMicrotask(() => {
    flushQueued = false;
    const f = dirty;
    if (!f) return;
    try {
      f.flush();
    } catch (e) {
      f.deferredError ??= e; // no caller to fail now: the next call on this file reports it
    }
  });
}

/** A read-ahead window: bytes [start, start + len) of the file as of generation gen and the epoch. */
class ReadWindow {
  buf: Uint8Array | null = null;
  start = 0;
  len = 0;
  gen = -1;
  epoch = -1;
  /** Start and end of its stream's last read, and the size of its next read-ahead (doubles while the stream goes on). */
  seqStart = -1;
  seqEnd = -1;
  raSize = START;
  /** When it last served a read (a tick of its file): the window used least recently takes a new stream. */
  used = 0;
}

/** Whether the read [offset, end) goes on from the read [lastStart, lastEnd), forwards or backwards, within `gap`. */
function follows(offset: number, end: number, lastStart: number, lastEnd: number, gap: number): boolean {
  return (offset >= lastEnd && offset <= lastEnd + gap) || (end <= lastStart && end >= lastStart - gap);
}

export class BufferedFile implements VfsFile {
  readonly #inner: VfsFile;
  readonly #maxWrite: number;
  readonly #maxReadAhead: number;
  readonly #gen: Generation;
  #level = SQLITE_LOCK_NONE;
  /** @internal A failed end-of-task flush, thrown by the next call. */
  deferredError: unknown = null;

  // Pending writes: bytes [wStart, wStart + wLen) held in wBuf. Owned here; freed at close.
  #wBuf: Uint8Array | null = null;
  #wStart = 0;
  #wLen = 0;

  // Read-ahead: two windows, each following one stream of sequential reads (a scan of a table's
  // leaves and of its overflow pages go on side by side). Freed at close.
  readonly #windows = [new ReadWindow(), new ReadWindow()];
  /**
   * The last read no window's stream continued: a new stream starts where a read continues it.
   * NaN when there is none (none yet, or its stream started): follows() never matches NaN, as it
   * would -1 (a read in the first 64 KiB, e.g. the change counter each transaction reads).
   */
  #loneStart = Number.NaN;
  #loneEnd = Number.NaN;
  #tick = 0;

  constructor(inner: VfsFile, options: BufferOptions = {}) {
    this.#inner = inner;
    this.#maxWrite = options.maxWrite ?? DEFAULT_MAX;
    this.#maxReadAhead = options.maxReadAhead ?? DEFAULT_MAX;
    let g = generations.get(inner.lockKey);
    if (!g) generations.set(inner.lockKey, (g = { value: 0, refs: 0 }));
    g.refs++;
    this.#gen = g;
  }

  get lockKey(): string {
    return this.#inner.lockKey;
  }

  get fd(): number | undefined {
    return this.#inner.fd;
  }

  get readAsync(): VfsFile["readAsync"] {
    return this.#inner.readAsync;
  }

  /** Writes the buffered run to the file. */
  flush(): void {
    if (dirty !== this) return;
    const buf = this.#wBuf!;
    const len = this.#wLen;
    dirty = null;
    this.#wLen = 0;
    try {
      this.#inner.write(buf.subarray(0, len), this.#wStart);
    } catch (e) {
      if (e instanceof VfsError) throw e;
      throw new VfsError(errorCode(e, SQLITE_IOERR_WRITE), `buffered write of ${len} bytes at ${this.#wStart}: ${(e as Error)?.message ?? e}`);
    }
  }

  #checkDeferred(): void {
    const e = this.deferredError;
    if (e !== null) {
      this.deferredError = null;
      throw e;
    }
  }

  /** Any operation that others (or a crash) could observe the order of. */
  #orderingPoint(): void {
    this.#checkDeferred();
    flushPendingWrites();
  }

  read(dst: Uint8Array, offset: number): number {
    this.#checkDeferred();
    const n = dst.length;
    const end = offset + n;
    for (const w of this.#windows) {
      if (w.gen === this.#gen.value && w.epoch === epoch && offset >= w.start && end <= w.start + w.len) {
        // Filled at the current generation: no write to this file since, so nothing pending in it.
        dst.set(w.buf!.subarray(offset - w.start, end - w.start));
        w.seqStart = offset;
        w.seqEnd = end;
        w.used = ++this.#tick;
        return n;
      }
    }
    // A read that goes on from a window's last one, forwards or backwards (quick_check walks a
    // table's b-tree from its last cell), allowing a small gap: pages SQLite found in its cache
    // are skipped. One that goes on from a read no window followed starts a stream in the window
    // used least recently.
    let w = n < this.#maxReadAhead ? this.#windows.find((x) => follows(offset, end, x.seqStart, x.seqEnd, START)) : undefined;
    if (w === undefined && n < this.#maxReadAhead && follows(offset, end, this.#loneStart, this.#loneEnd, START)) {
      w = this.#windows[0]!.used <= this.#windows[1]!.used ? this.#windows[0]! : this.#windows[1]!;
      w.raSize = START;
      this.#loneStart = this.#loneEnd = Number.NaN;
    }
    const backward = w !== undefined && end <= w.seqStart;
    const size = w !== undefined ? Math.max(n, w.raSize) : n;
    // The read-ahead's window: from the page on, or (backwards) up to its end.
    const start = backward ? Math.max(0, end - size) : offset;
    const length = backward ? end - start : size;
    // Whatever the disk read will cover must be on disk first.
    if (dirty !== null && dirty.lockKey === this.lockKey &&
      (dirty !== this || (start < this.#wStart + this.#wLen && start + length > this.#wStart))) {
      dirty.flush();
    }
    if (w === undefined) {
      this.#loneStart = offset;
      this.#loneEnd = end;
      return this.#inner.read(dst, offset);
    }
    w.seqStart = offset;
    w.seqEnd = end;
    w.raSize = Math.min(w.raSize * 2, this.#maxReadAhead);
    w.used = ++this.#tick;
    if (w.buf === null || w.buf.length < length) w.buf = new Uint8Array(size);
    w.gen = -1; // until the read succeeds
    w.len = this.#inner.read(w.buf.subarray(0, length), start);
    w.start = start;
    w.gen = this.#gen.value;
    w.epoch = epoch;
    const got = Math.max(0, Math.min(n, w.len - (offset - start)));
    dst.set(w.buf.subarray(offset - start, offset - start + got));
    return got;
  }

  write(src: Uint8Array, offset: number): void {
    this.#checkDeferred();
    const n = src.length;
    this.#gen.value++; // every read-ahead of this file, in every connection, is now stale…
    // …except this connection's own when the write misses it (e.g. a spill of pages it read
    // earlier while it reads ahead of them): what it holds is still the file's content.
    for (const w of this.#windows) if (w.gen === this.#gen.value - 1 && (offset >= w.start + w.len || offset + n <= w.start)) w.gen = this.#gen.value;
    if (dirty === this) {
      const wEnd = this.#wStart + this.#wLen;
      if (offset >= this.#wStart && offset + n <= wEnd) { // rewrite of buffered bytes
        this.#wBuf!.set(src, offset - this.#wStart);
        return;
      }
      if (offset === wEnd && this.#wLen + n <= this.#maxWrite) { // append to the run
        this.#reserve(this.#wLen + n);
        this.#wBuf!.set(src, this.#wLen);
        this.#wLen += n;
        return;
      }
    }
    flushPendingWrites();
    if (n >= this.#maxWrite) {
      this.#inner.write(src, offset);
      return;
    }
    this.#reserve(n);
    this.#wBuf!.set(src, 0);
    this.#wStart = offset;
    this.#wLen = n;
    dirty = this;
    queueFlush();
  }

  /** Grows the write buffer (doubling, up to maxWrite) to hold `need` bytes, keeping its content. */
  #reserve(need: number): void {
    const cur = this.#wBuf;
    if (cur !== null && cur.length >= need) return;
    let size = Math.max(cur?.length ?? 0, START);
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(size, this.#maxWrite));
    if (cur !== null && this.#wLen > 0) next.set(cur.subarray(0, this.#wLen));
    this.#wBuf = next;
  }

  truncate(size: number): void {
    this.#orderingPoint();
    this.#gen.value++;
    this.#inner.truncate(size);
  }

  sync(flags: number): void {
    this.#orderingPoint();
    this.#inner.sync(flags);
  }

  size(): number {
    this.#orderingPoint();
    return this.#inner.size();
  }

  close(): void {
    try {
      this.#checkDeferred();
      if (dirty === this) this.flush();
    } finally {
      if (dirty === this) dirty = null; // the flush failed: the data is lost with the handle
      this.#wBuf = null;
      for (const w of this.#windows) w.buf = null;
      if (--this.#gen.refs === 0) generations.delete(this.lockKey);
      this.#inner.close();
    }
  }

  /** A WAL-index lock or barrier: an ordering point, and (maybe) another process's new snapshot. */
  shmChanged(): void {
    flushPendingWrites(); // frames must be in the WAL file before the index says they exist
    epoch++; // a read transaction starts: another process may have written the WAL or database
  }

  lockChanged(level: number): void {
    if (level === SQLITE_LOCK_SHARED && this.#level === SQLITE_LOCK_NONE) epoch++; // a new transaction
    this.#level = level;
    this.#orderingPoint(); // others may read the file as soon as we unlock
    this.#inner.lockChanged?.(level);
  }

  fileControl(op: number, arg: number): number {
    return this.#inner.fileControl ? this.#inner.fileControl(op, arg) : SQLITE_NOTFOUND;
  }

  sectorSize(): number {
    return this.#inner.sectorSize();
  }

  deviceCharacteristics(): number {
    return this.#inner.deviceCharacteristics();
  }
}
