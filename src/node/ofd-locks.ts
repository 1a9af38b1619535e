// The "os" lock layer (src/vfs/lock-layer.ts): SQLite's locks as Linux OFD locks on the bytes
// os_unix.c uses, so native SQLite processes (POSIX locks on the same bytes) and our connections
// exclude each other both ways. OFD locks belong to an open file description, so two of our
// connections (two open() calls) conflict too, even in one process: one rule set, the kernel's.
// A killed process loses them with its descriptors.
import {
  SQLITE_BUSY, SQLITE_IOERR_LOCK, SQLITE_LOCK_EXCLUSIVE, SQLITE_LOCK_NONE, SQLITE_LOCK_PENDING,
  SQLITE_LOCK_RESERVED, SQLITE_LOCK_SHARED, SQLITE_OK,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import type { FileLock, Locking } from "../vfs/lock-layer.js";
import { processLocking } from "../vfs/process-locks.js";
import { F_RDLCK, F_UNLCK, F_WRLCK, type LibC } from "./libc.js";
import { ofdShm } from "./ofd-shm.js";

/** os_unix.c's lock bytes (sqlite3PendingByte's default). */
const PENDING_BYTE = 0x40000000;
const RESERVED_BYTE = PENDING_BYTE + 1;
const SHARED_FIRST = PENDING_BYTE + 2;
const SHARED_SIZE = 510;

class OfdLock implements FileLock {
  level = SQLITE_LOCK_NONE;
  constructor(readonly libc: LibC, readonly fd: number, readonly name: string) {}

  #set(type: number, start: number, len: number): boolean {
    try {
      return this.libc.setLock(this.fd, type, start, len);
    } catch (e) {
      throw new VfsError(SQLITE_IOERR_LOCK, `${this.name}: ${(e as Error).message}`);
    }
  }

  lock(level: number): number {
    if (this.level >= level) return SQLITE_OK;
    if (level === SQLITE_LOCK_SHARED) {
      // As os_unix.c: a read lock on PENDING while taking the SHARED range, so a writer that
      // holds PENDING keeps new readers out and cannot starve.
      if (!this.#set(F_RDLCK, PENDING_BYTE, 1)) return SQLITE_BUSY;
      const ok = this.#set(F_RDLCK, SHARED_FIRST, SHARED_SIZE);
      this.#set(F_UNLCK, PENDING_BYTE, 1);
      if (!ok) return SQLITE_BUSY;
      this.level = SQLITE_LOCK_SHARED;
      return SQLITE_OK;
    }
    if (this.level < SQLITE_LOCK_SHARED) throw new Error(`lock level ${level} requested without SHARED`);
    if (level === SQLITE_LOCK_RESERVED) {
      if (!this.#set(F_WRLCK, RESERVED_BYTE, 1)) return SQLITE_BUSY;
      this.level = SQLITE_LOCK_RESERVED;
      return SQLITE_OK;
    }
    if (level !== SQLITE_LOCK_EXCLUSIVE) throw new Error(`unexpected lock level ${level}`);
    if (this.level < SQLITE_LOCK_PENDING) {
      if (!this.#set(F_WRLCK, PENDING_BYTE, 1)) return SQLITE_BUSY;
      this.level = SQLITE_LOCK_PENDING;
    }
    // Keep PENDING when readers still hold the SHARED range: they drain, SQLite retries.
    if (!this.#set(F_WRLCK, SHARED_FIRST, SHARED_SIZE)) return SQLITE_BUSY;
    this.level = SQLITE_LOCK_EXCLUSIVE;
    return SQLITE_OK;
  }

  unlock(level: number): void {
    if (this.level <= level) return;
    if (level === SQLITE_LOCK_SHARED) {
      // Downgrade in place: the range is never unlocked, so no writer slips in between.
      if (this.level === SQLITE_LOCK_EXCLUSIVE) this.#set(F_RDLCK, SHARED_FIRST, SHARED_SIZE);
      this.#set(F_UNLCK, PENDING_BYTE, 2); // PENDING and RESERVED
    } else {
      this.#set(F_UNLCK, 0, 0); // the whole file
    }
    this.level = level;
  }

  checkReserved(): boolean {
    if (this.level >= SQLITE_LOCK_RESERVED) return true;
    try {
      return this.libc.getLock(this.fd, F_WRLCK, RESERVED_BYTE, 1) !== F_UNLCK;
    } catch (e) {
      throw new VfsError(SQLITE_IOERR_LOCK, `${this.name}: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.unlock(SQLITE_LOCK_NONE); // closing the descriptor would drop them too
  }
}

/** Real file locks for every file that has an OS descriptor; the in-process table for the rest. */
export function ofdLocking(libc: LibC): Locking {
  return {
    kind: "os",
    open: (file) => (file.fd === undefined ? processLocking.open(file) : new OfdLock(libc, file.fd, file.lockKey)),
    shm: (file, heap) => (file.fd === undefined ? processLocking.shm(file, heap) : ofdShm(libc, file.lockKey, heap)),
  };
}
