// The lock layer: SQLite's file locks and WAL shared memory, behind the interfaces the host
// bridge (src/runtime/host.ts) calls for every VFS. Two implementations:
// - "process" (process-locks.ts, heap-shm.ts): one table per file identity for the connections
//   of this JS realm, and the WAL-index in the heap; other processes cannot see it.
// - "os" (src/node/ofd-locks.ts, ofd-shm.ts): OFD locks on SQLite's lock bytes and the real -shm
//   file, through the runtime's FFI; native SQLite processes and ours see each other.
// Neither ever blocks: contention is SQLITE_BUSY.
import type { Heap } from "../core/heap.js";
import type { VfsFile } from "./types.js";

/** One connection's lock on one open file. */
export interface FileLock {
  readonly level: number;
  /** SQLITE_OK, or SQLITE_BUSY when another connection's lock conflicts (never waits). */
  lock(level: number): number;
  unlock(level: number): void;
  /** xCheckReservedLock: does any connection hold RESERVED or more? */
  checkReserved(): boolean;
  /** Releases everything; the file is being closed. */
  close(): void;
}

/** One connection's WAL shared memory (xShmMap/xShmLock/xShmBarrier/xShmUnmap). */
export interface SharedMemory {
  /** Heap address of region i (size bytes), or 0 when it does not exist and extend is false. */
  map(region: number, size: number, extend: boolean): number;
  lock(offset: number, n: number, flags: number): number;
  barrier(): void;
  /** deleteFile: SQLite knows no other connection uses the file (xShmUnmap's flag). */
  close(deleteFile: boolean): void;
}

/** Which locks a Sqlite instance takes. */
export interface Locking {
  /** "os": real file locks other processes see; "process": this JS realm's table only. */
  readonly kind: "os" | "process";
  /** Called at xOpen for every file. */
  open(file: VfsFile): FileLock;
  /** Called at a connection's first xShmMap. */
  shm(file: VfsFile, heap: Heap): SharedMemory;
}
