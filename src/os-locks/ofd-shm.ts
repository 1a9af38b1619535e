// The "os" lock layer's WAL shared memory: the WAL-index lives in the real `<db>-shm` file,
// mapped MAP_SHARED, with SQLite's shm locks as OFD locks on its bytes 120..127 and the
// "dead man's switch" at byte 128, as os_unix.c has them, so native processes and ours share one
// index. WebAssembly memory cannot alias a mapping, so each connection has a private copy of
// every region in the heap (the pointers SQLite gets) and a shadow of what it last exchanged
// with the mapping: taking a shm lock copies in the 32-bit words others changed; releasing an
// exclusive lock copies out the words SQLite changed; a barrier does both. This is safe because
// the index header is two checksummed copies read between barriers, the checkpoint info is
// aligned words, and the hash tables change only under the exclusive WAL write lock
// (walformat.html); ncruces/go-sqlite3 keeps its WAL-index the same way where it cannot map.
import * as fs from "node:fs";
import {
  SQLITE_BUSY, SQLITE_IOERR_SHMLOCK, SQLITE_IOERR_SHMOPEN, SQLITE_IOERR_SHMSIZE, SQLITE_OK,
  SQLITE_SHM_EXCLUSIVE, SQLITE_SHM_NLOCK, SQLITE_SHM_SHARED, SQLITE_SHM_UNLOCK,
} from "../constants.js";
import { VfsError } from "../errors.js";
import type { Heap } from "../heap.js";
import type { SharedMemory } from "../vfs/lock-layer.js";
import { F_RDLCK, F_UNLCK, F_WRLCK, type LibC, type Mapping } from "./libc.js";

/** os_unix.c: shm lock i is byte 120 + i; the dead man's switch follows them. */
const SHM_BASE = 120;
const SHM_DMS = SHM_BASE + SQLITE_SHM_NLOCK;
/** Bytes of the index header and checkpoint info: unchanged there means nothing to copy. */
const HEADER_WORDS = 136 / 4;

interface Region {
  readonly mapping: Mapping;
  /** The mapping as words (native processes read and write it). */
  readonly shared: Int32Array;
  /** What this connection last copied in or out. */
  readonly shadow: Int32Array;
  /** The private copy's heap address: what SQLite reads and writes. */
  readonly ptr: number;
}

class OfdShm implements SharedMemory {
  readonly #regions: Region[] = [];
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
      const shadow = shared.slice();
      this.#private(ptr, size).set(shadow);
      this.#regions.push({ mapping, shared, shadow, ptr });
    }
    return this.#regions[i]!.ptr;
  }

  #private(ptr: number, size: number): Int32Array {
    return new Int32Array(this.heap.u8.buffer, ptr, size >>> 2);
  }

  /**
   * Copies in the words other connections changed since this one last looked. For a shared
   * lock, an unchanged header and checkpoint info mean nothing a reader uses changed: hash
   * entries change under the write lock, and those beyond the header's mxFrame are ignored. For
   * an exclusive lock (writer, checkpointer, recovery) every word is compared: a writer that
   * rolled back or was killed leaves hash entries behind without touching the header, and
   * copying out only what this connection changed on top of a stale copy would publish an index
   * whose slots point at the wrong frames.
   */
  #acquire(all: boolean): void {
    const r0 = this.#regions[0];
    if (!r0 || (!all && sameHeader(r0.shadow, r0.shared))) return;
    for (const r of this.#regions) {
      const { shared, shadow } = r;
      const priv = this.#private(r.ptr, shared.byteLength);
      for (let w = 0; w < shared.length; w++) {
        const v = shared[w]!;
        if (shadow[w] !== v) {
          shadow[w] = v;
          priv[w] = v;
        }
      }
    }
  }

  /**
   * Copies out the words SQLite changed in this connection's copy. (The host flushes buffered
   * writes before every shm lock call: the frames a header names are in the WAL file first.)
   */
  #release(): void {
    const r0 = this.#regions[0];
    if (!r0 || sameHeader(r0.shadow, this.#private(r0.ptr, r0.shared.byteLength))) return;
    for (const r of this.#regions) {
      const { shared, shadow } = r;
      const priv = this.#private(r.ptr, shared.byteLength);
      for (let w = 0; w < priv.length; w++) {
        const v = priv[w]!;
        if (shadow[w] !== v) {
          shadow[w] = v;
          shared[w] = v;
        }
      }
    }
  }

  lock(offset: number, n: number, flags: number): number {
    if (flags & SQLITE_SHM_UNLOCK) {
      try {
        if (flags & SQLITE_SHM_EXCLUSIVE) this.#release();
      } finally {
        this.#lock(F_UNLCK, SHM_BASE + offset, n); // a failed write-out must not keep others out forever
      }
      return SQLITE_OK;
    }
    const type = flags & SQLITE_SHM_EXCLUSIVE ? F_WRLCK : flags & SQLITE_SHM_SHARED ? F_RDLCK : -1;
    if (type < 0) throw new VfsError(SQLITE_IOERR_SHMLOCK, `unexpected shm lock flags ${flags}`);
    if (!this.#lock(type, SHM_BASE + offset, n)) return SQLITE_BUSY;
    this.#acquire(type === F_WRLCK);
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

function sameHeader(a: Int32Array, b: Int32Array): boolean {
  for (let w = 0; w < HEADER_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
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
