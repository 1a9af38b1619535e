// The "os" lock layer's WAL shared memory: the WAL-index lives in the real `<db>-shm` file,
// mapped MAP_SHARED, with SQLite's shm locks as OFD locks on its bytes 120..127 and the
// "dead man's switch" at byte 128, as os_unix.c has them, so native processes and ours share one
// index. WebAssembly memory cannot alias a mapping, so each connection has a private copy of
// every region in the heap (the pointers SQLite gets), exchanged with the mapping at the shm
// protocol's points (walformat.html; ncruces/go-sqlite3 keeps its WAL-index the same way where it
// cannot map):
// - The two index headers and the checkpoint info (region 0's first 136 bytes) are aligned words
//   that several connections change, each under its own lock: they go word by word against a
//   shadow of what this connection last exchanged. Taking a shm lock copies in the words others
//   changed; releasing an exclusive lock copies out the words SQLite changed; a barrier does both.
// - The hash tables (everything else) change only under the exclusive WAL write lock. Taking it
//   copies them all in (a writer that rolled back or was killed leaves entries behind without
//   touching a header, and a private copy that missed them publishes an index whose slots point
//   at the wrong frames); holding it, this connection's copy is the truth and goes out whole at
//   every barrier and at the unlock, before the header words that make it visible. Otherwise they
//   are copied in whenever the header words changed (a new commit, checkpoint or WAL restart),
//   which is all a reader needs: entries beyond the header's mxFrame are ignored.
// Whole copies are memcpy (TypedArray.set), an order of magnitude cheaper than comparing words.
import * as fs from "node:fs";
import {
  SQLITE_BUSY, SQLITE_IOERR_SHMLOCK, SQLITE_IOERR_SHMOPEN, SQLITE_IOERR_SHMSIZE, SQLITE_OK,
  SQLITE_SHM_EXCLUSIVE, SQLITE_SHM_NLOCK, SQLITE_SHM_SHARED, SQLITE_SHM_UNLOCK,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import type { Heap } from "../core/heap.js";
import type { SharedMemory } from "../vfs/lock-layer.js";
import { F_RDLCK, F_UNLCK, F_WRLCK, type LibC, type Mapping } from "./libc.js";

/** os_unix.c: shm lock i is byte 120 + i; the dead man's switch follows them. */
const SHM_BASE = 120;
const SHM_DMS = SHM_BASE + SQLITE_SHM_NLOCK;
/** Words of the index headers and checkpoint info at the start of region 0; the hash tables follow. */
const HEADER_WORDS = 136 / 4;
/** SQLite's WAL_WRITE_LOCK: shm lock 0. */
const WRITE_LOCK = 0;

interface Region {
  readonly mapping: Mapping;
  /** The mapping as words (native processes read and write it). */
  readonly shared: Int32Array;
  /** The private copy's heap address: what SQLite reads and writes. */
  readonly ptr: number;
}

class OfdShm implements SharedMemory {
  readonly #regions: Region[] = [];
  /** The header words as this connection last copied them in or out. */
  readonly #shadow = new Int32Array(HEADER_WORDS);
  /** This connection holds the WAL write lock: the hash tables are its to change. */
  #writer = false;
  #closed = false;

  constructor(readonly libc: LibC, readonly heap: Heap, readonly path: string, readonly fd: number) {}

  #lock(type: number, start: number, len: number): boolean {
    try {
      return this.libc.setLock(this.fd, type, start, len);
    } catch (e) {
      throw new VfsError(SQLITE_IOERR_SHMLOCK, `${this.path}: ${(e as Error).message}`);
    }
  }

  /**
   * The first connection anywhere (no lock on the dead man's switch) truncates the file, so a
   * stale index left by a crash is rebuilt from the WAL; every connection then holds the switch
   * shared for as long as it is attached.
   */
  attach(): void {
    const held = this.libc.getLock(this.fd, F_WRLCK, SHM_DMS, 1);
    if (held === F_WRLCK) throw new VfsError(SQLITE_BUSY, `${this.path} is being initialised by another connection`);
    if (held === F_UNLCK) {
      if (!this.#lock(F_WRLCK, SHM_DMS, 1)) throw new VfsError(SQLITE_BUSY, `${this.path} is being initialised by another connection`);
      fs.ftruncateSync(this.fd, 3); // as os_unix.c: a small, recognisable size
    }
    if (!this.#lock(F_RDLCK, SHM_DMS, 1)) throw new VfsError(SQLITE_BUSY, `${this.path} is being initialised by another connection`);
  }

  map(i: number, size: number, extend: boolean): number {
    while (this.#regions.length <= i) {
      const n = this.#regions.length;
      const end = (n + 1) * size;
      if (fs.fstatSync(this.fd).size < end) {
        if (!extend) return 0;
        try {
          // Write the last byte of every 4 KiB page, as os_unix.c does, so the blocks exist on
          // disk and touching the mapping cannot fault on a full disk.
          const zero = new Uint8Array(1);
          for (let at = n * size + 4095; at < end; at += 4096) fs.writeSync(this.fd, zero, 0, 1, at);
        } catch (e) {
          throw new VfsError(SQLITE_IOERR_SHMSIZE, `cannot grow ${this.path}: ${(e as Error).message}`);
        }
      }
      let mapping: Mapping;
      try {
        mapping = this.libc.map(this.fd, n * size, size);
      } catch (e) {
        throw new VfsError(SQLITE_IOERR_SHMOPEN, `${this.path}: ${(e as Error).message}`);
      }
      let ptr = 0;
      try {
        ptr = this.heap.alloc(size);
      } catch (e) {
        mapping.unmap();
        throw e;
      }
      const shared = new Int32Array(mapping.bytes);
      this.#private(ptr, size).set(shared);
      if (n === 0) this.#shadow.set(shared.subarray(0, HEADER_WORDS));
      this.#regions.push({ mapping, shared, ptr });
    }
    return this.#regions[i]!.ptr;
  }

  #private(ptr: number, size: number): Int32Array {
    return new Int32Array(this.heap.u8.buffer, ptr, size >>> 2);
  }

  /**
   * Copies in what other connections changed since this one last looked: the header words that
   * differ from the shadow, and the hash tables when taking the write lock or when the header
   * words changed (unless this connection is the writer: then its hash tables are the truth).
   */
  #acquire(takingWriteLock: boolean): void {
    const r0 = this.#regions[0];
    if (!r0) return;
    const shadow = this.#shadow;
    const shared0 = r0.shared;
    const priv0 = this.#private(r0.ptr, shared0.byteLength);
    let changed = false;
    for (let w = 0; w < HEADER_WORDS; w++) {
      const v = shared0[w]!;
      if (shadow[w] !== v) {
        shadow[w] = v;
        priv0[w] = v;
        changed = true;
      }
    }
    if (!takingWriteLock && (this.#writer || !changed)) return;
    for (const r of this.#regions) {
      const from = r === r0 ? HEADER_WORDS : 0;
      this.#private(r.ptr, r.shared.byteLength).subarray(from).set(r.shared.subarray(from));
    }
  }

  /**
   * Copies out what SQLite changed in this connection's copy: as the writer, the hash tables
   * whole (first: the header is what makes their new entries visible); then the header words
   * that differ from the shadow. (The host flushes buffered writes before every shm lock call,
   * so the frames a header names are in the WAL file first.)
   */
  #release(): void {
    const r0 = this.#regions[0];
    if (!r0) return;
    if (this.#writer) {
      for (const r of this.#regions) {
        const from = r === r0 ? HEADER_WORDS : 0;
        r.shared.subarray(from).set(this.#private(r.ptr, r.shared.byteLength).subarray(from));
      }
    }
    const shadow = this.#shadow;
    const shared0 = r0.shared;
    const priv0 = this.#private(r0.ptr, shared0.byteLength);
    for (let w = 0; w < HEADER_WORDS; w++) {
      const v = priv0[w]!;
      if (shadow[w] !== v) {
        shadow[w] = v;
        shared0[w] = v;
      }
    }
  }

  lock(offset: number, n: number, flags: number): number {
    if (flags & SQLITE_SHM_UNLOCK) {
      try {
        if (flags & SQLITE_SHM_EXCLUSIVE) this.#release();
      } finally {
        if (flags & SQLITE_SHM_EXCLUSIVE && offset === WRITE_LOCK) this.#writer = false;
        this.#lock(F_UNLCK, SHM_BASE + offset, n); // a failed write-out must not keep others out forever
      }
      return SQLITE_OK;
    }
    const type = flags & SQLITE_SHM_EXCLUSIVE ? F_WRLCK : flags & SQLITE_SHM_SHARED ? F_RDLCK : -1;
    if (type < 0) throw new VfsError(SQLITE_IOERR_SHMLOCK, `unexpected shm lock flags ${flags}`);
    if (!this.#lock(type, SHM_BASE + offset, n)) return SQLITE_BUSY;
    const write = type === F_WRLCK && offset === WRITE_LOCK;
    this.#acquire(write);
    if (write) this.#writer = true;
    return SQLITE_OK;
  }

  barrier(): void {
    this.#acquire(false);
    this.#release();
  }

  close(deleteFile: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#regions.splice(0)) {
      r.mapping.unmap(); // no view of it is used after this
      this.heap.free(r.ptr);
    }
    fs.closeSync(this.fd); // drops this descriptor's locks, the dead man's switch included
    if (deleteFile) fs.rmSync(this.path, { force: true });
  }
}

/** Opens (creating it if needed) and attaches to `${dbPath}-shm`. */
export function ofdShm(libc: LibC, dbPath: string, heap: Heap): SharedMemory {
  const path = `${dbPath}-shm`;
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (e) {
    throw new VfsError(SQLITE_IOERR_SHMOPEN, `cannot open ${path}: ${(e as Error).message}`);
  }
  const shm = new OfdShm(libc, heap, path, fd);
  try {
    shm.attach();
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return shm;
}
