// The destination side of backupToOpfs() on a thread without sync access handles: a VFS whose
// main-database files forward every write to a sink, the writer worker. BufferedFile (the one
// buffering layer) merges SQLite's page writes into large ranges first. Two kinds of target:
//
// - A new file (expect()): only a full copy writes it (the fresh copy of wasm/pagediff.c, or
//   sqlite3_backup_step; backupToOpfs opens it with its journal in memory, and the worker renames
//   it over the target at the end), and that reads nothing of the destination but page 1 (kept:
//   the first 64 KiB, page 1 at any page size): every other page it fetches, when a restart
//   copies the source again, it overwrites whole before writing it out. So a read of bytes
//   already sent returns zeros instead of failing.
// - The existing file itself (expectInPlace()), for an incremental backup: its reads are served
//   from blocks fetched ahead through prefetch() (the compare says which), and a read of a block
//   not fetched fails (SQLITE_IOERR_READ) rather than return anything wrong. Its rollback journal
//   goes to the worker too (kept here as well, for a ROLLBACK to read back), so a tab closed
//   mid-way leaves a hot journal in OPFS that the next open rolls back, as on disk.
import {
  SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOCAP_SEQUENTIAL, SQLITE_IOERR_READ, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_MAIN_JOURNAL,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import { BufferedFile } from "../vfs/buffered.js";
import { MemoryVfs } from "../vfs/memory.js";
import type { OpenResult, Vfs, VfsFile } from "../vfs/types.js";

export interface RelaySink {
  /** Borrows bytes (a view of the heap, valid during the call only): the sink copies them. */
  write(at: number, bytes: Uint8Array): void;
  truncate(size: number): void;
  /** Optional: everything written so far reaches storage before anything written later. */
  sync?(): void;
  /** Waits until the sink has caught up enough; rejects with its first write failure. */
  settle(): Promise<void>;
}

/** An existing file written in place: its size and first bytes, its reader, its journal's sink. */
export interface InPlaceTarget {
  /** read() resolves with n bytes (fewer at the end) in a buffer recycle() may take back. */
  db: RelaySink & { read(at: number, n: number): Promise<Uint8Array>; recycle(data: ArrayBuffer): void };
  journal: RelaySink & { remove(): void };
  size: number;
  /** The file's first min(size, 64 KiB) bytes. */
  head: Uint8Array;
}

const HEAD = 64 << 10;
/** The unit of prefetch(): blocks of the file at multiples of it. */
const BLOCK = 1 << 20;
/** Blocks fetched past what the compare asked for, so the worker reads while the compare runs. */
const READ_AHEAD = 4 * BLOCK;

/** A fetched or pending block; writes made while it is pending are applied when it arrives. */
interface Block {
  data: Uint8Array | null;
  ready: Promise<void>;
  patches: [at: number, bytes: Uint8Array][];
}

class RelayFile implements VfsFile {
  readonly head = new Uint8Array(HEAD);
  #size: number;
  /** In place only: the file's blocks fetched so far (see prefetch()). */
  readonly #blocks = new Map<number, Block>();

  constructor(readonly lockKey: string, readonly sink: RelaySink, readonly inPlace: InPlaceTarget | null) {
    this.#size = inPlace?.size ?? 0;
    if (inPlace) this.head.set(inPlace.head.subarray(0, HEAD));
  }

  read(dst: Uint8Array, offset: number): number {
    const n = Math.max(0, Math.min(dst.length, this.#size - offset));
    if (n === 0) return 0;
    const kept = Math.max(0, Math.min(n, HEAD - offset));
    if (kept > 0) dst.set(this.head.subarray(offset, offset + kept));
    if (!this.inPlace) {
      dst.fill(0, kept, n); // sent: the backup overwrites these pages whole (see above)
      return n;
    }
    for (let at = offset + kept; at < offset + n;) {
      const b = this.#blocks.get(Math.floor(at / BLOCK))?.data;
      if (!b) throw new VfsError(SQLITE_IOERR_READ, `OPFS relay: bytes at ${at} of the existing file were not fetched`);
      const from = at % BLOCK;
      const len = Math.min(offset + n - at, b.length - from);
      if (len <= 0) { // past the old end: bytes the compare never reads, as SQLite sees them
        dst.fill(0, at - offset, n);
        break;
      }
      dst.set(b.subarray(from, from + len), at - offset);
      at += len;
    }
    return n;
  }

  write(src: Uint8Array, offset: number): void {
    const n = src.length;
    if (offset < HEAD) this.head.set(src.subarray(0, Math.min(n, HEAD - offset)), offset);
    for (let i = Math.floor(offset / BLOCK); this.inPlace && i * BLOCK < offset + n; i++) {
      const b = this.#blocks.get(i);
      if (!b) continue;
      if (b.data) patch(b.data, i * BLOCK, src, offset);
      else b.patches.push([offset, src.slice()]);
    }
    this.#size = Math.max(this.#size, offset + n);
    this.sink.write(offset, src);
  }

  /** In place: fetches the blocks of [from, to) (and some beyond) and forgets those before from. */
  async prefetch(from: number, to: number): Promise<void> {
    if (!this.inPlace) return;
    const { db, size } = this.inPlace;
    for (const [i, b] of this.#blocks) {
      if ((i + 1) * BLOCK > from) continue;
      this.#blocks.delete(i);
      if (b.data) db.recycle(b.data.buffer as ArrayBuffer);
    }
    const end = Math.min(size, to);
    const ahead = Math.min(size, end + Math.max(READ_AHEAD, end - from));
    const waits: Promise<void>[] = [];
    for (let i = Math.floor(from / BLOCK); i * BLOCK < ahead; i++) {
      let b = this.#blocks.get(i);
      if (!b) {
        const block: Block = { data: null, patches: [], ready: Promise.resolve() };
        block.ready = db.read(i * BLOCK, Math.min(BLOCK, size - i * BLOCK)).then((data) => {
          for (const [at, bytes] of block.patches) patch(data, i * BLOCK, bytes, at);
          block.patches = [];
          block.data = data;
        });
        block.ready.catch(() => {}); // a block read ahead may fail unawaited: a read of it fails then
        this.#blocks.set(i, (b = block));
      }
      if (i * BLOCK < end) waits.push(b.ready);
    }
    await Promise.all(waits);
  }

  truncate(size: number): void {
    if (size < HEAD) this.head.fill(0, size);
    this.#size = size;
    this.sink.truncate(size);
  }
  sync(): void {
    this.sink.sync?.();
  }
  size(): number {
    return this.#size;
  }
  close(): void {
    this.#blocks.clear();
  }
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    // In place, SQLite must sync the journal before it writes the database (no SEQUENTIAL).
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE | (this.inPlace ? 0 : SQLITE_IOCAP_SEQUENTIAL);
  }
}

/** Copies the part of bytes (at offset `at` of the file) that falls in block (at `base`). */
function patch(block: Uint8Array, base: number, bytes: Uint8Array, at: number): void {
  const from = Math.max(at, base);
  const to = Math.min(at + bytes.length, base + block.length);
  if (from < to) block.set(bytes.subarray(from - at, to - at), from - base);
}

/** The in-place target's journal: a file in memory (SQLite reads it back to roll back) whose writes also go to the worker. */
class JournalFile implements VfsFile {
  constructor(readonly inner: VfsFile, readonly sink: RelaySink) {}
  get lockKey(): string {
    return this.inner.lockKey;
  }
  read(dst: Uint8Array, offset: number): number {
    return this.inner.read(dst, offset);
  }
  write(src: Uint8Array, offset: number): void {
    this.inner.write(src, offset);
    this.sink.write(offset, src);
  }
  truncate(size: number): void {
    this.inner.truncate(size);
    this.sink.truncate(size);
  }
  sync(): void {
    this.sink.sync?.();
  }
  size(): number {
    return this.inner.size();
  }
  close(): void {
    this.inner.close();
  }
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
  }
}

export class RelayVfs implements Vfs {
  readonly mxPathname = 1024;
  /** Only this realm writes relay files. */
  readonly exclusive = true;
  readonly #sinks = new Map<string, { sink: RelaySink; inPlace: InPlaceTarget | null }>();
  readonly #open = new Map<string, RelayFile>();
  /** Journals and temporary files of relay databases stay in memory (in place, journals also go out). */
  readonly #side = new MemoryVfs("opfs-relay-side");

  constructor(readonly name = "opfs-relay") {}

  /** Routes the main database named `name` to a new file's sink until forget(name). */
  expect(name: string, sink: RelaySink): void {
    this.#sinks.set(this.fullPathname(name), { sink, inPlace: null });
  }
  /** Routes the main database named `name` (and its journal) to an existing file, until forget(name). */
  expectInPlace(name: string, target: InPlaceTarget): void {
    this.#sinks.set(this.fullPathname(name), { sink: target.db, inPlace: target });
  }
  forget(name: string): void {
    const path = this.fullPathname(name);
    this.#sinks.delete(path);
    this.#open.delete(path);
    this.#side.remove(`${path}-journal`);
  }

  open(name: string | null, flags: number): OpenResult {
    const path = name === null ? "" : this.fullPathname(name);
    const route = this.#sinks.get(path);
    if (route && flags & SQLITE_OPEN_MAIN_DB) {
      const file = new RelayFile(`${this.name}:${path}`, route.sink, route.inPlace);
      this.#open.set(path, file);
      // In place, no read-ahead: a read past what was fetched would fail.
      return { file: new BufferedFile(file, route.inPlace ? { maxReadAhead: 0 } : {}), outFlags: flags };
    }
    const target = this.#journalTarget(path);
    const opened = this.#side.open(name, flags);
    if (target && flags & SQLITE_OPEN_MAIN_JOURNAL) return { file: new JournalFile(opened.file, target.journal), outFlags: opened.outFlags };
    return opened;
  }
  delete(name: string): void {
    this.#journalTarget(this.fullPathname(name))?.journal.remove();
    this.#side.delete(name);
  }
  access(name: string, flags: number): boolean {
    return this.#side.access(name, flags);
  }
  fullPathname(name: string): string {
    return this.#side.fullPathname(name);
  }
  /** backup() awaits this after every step into a relay file: the writer keeps up. */
  async settle(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.sink.settle()));
  }
  /** An incremental backup into an existing file awaits this before each chunk (see RelayFile.prefetch). */
  async prefetch(path: string, from: number, to: number): Promise<void> {
    await this.#open.get(path)?.prefetch(from, to);
  }

  /** The in-place target whose journal `path` is. */
  #journalTarget(path: string): InPlaceTarget | null {
    return path.endsWith("-journal") ? this.#sinks.get(path.slice(0, -"-journal".length))?.inPlace ?? null : null;
  }
}
