// The "process" lock layer (lock-layer.ts): SQLite's file locks (NONE < SHARED < RESERVED <
// PENDING < EXCLUSIVE) in one table per file identity for every connection of this JS realm, with
// the rules of os_unix.c, and the WAL-index in the heap (heap-shm.ts). Other processes cannot see it
// (node:fs has no advisory locks); src/node/ofd-locks.ts has the "os" layer for runtimes with FFI.
import {
  SQLITE_BUSY, SQLITE_LOCK_EXCLUSIVE, SQLITE_LOCK_NONE, SQLITE_LOCK_PENDING, SQLITE_LOCK_RESERVED,
  SQLITE_LOCK_SHARED, SQLITE_OK,
} from "../core/constants.js";
import type { FileLock, Locking } from "./lock-layer.js";
import { heapShm } from "./heap-shm.js";

export const processLocking: Locking = {
  kind: "process",
  open: (file) => new ProcessLock(acquireOwner(file.lockKey)),
  shm: (file, heap) => heapShm(file.lockKey, heap),
};

class LockOwner {
  level = SQLITE_LOCK_NONE;
  constructor(readonly entry: LockEntry) {}
}

class LockEntry {
  shared = 0; // owners at SHARED or above
  reserved: LockOwner | null = null;
  pending: LockOwner | null = null;
  exclusive: LockOwner | null = null;
  owners = 0; // open handles; the entry is dropped when the last one closes
  constructor(readonly key: string) {}
}

const table = new Map<string, LockEntry>();

function acquireOwner(key: string): LockOwner {
  let entry = table.get(key);
  if (!entry) table.set(key, (entry = new LockEntry(key)));
  entry.owners++;
  return new LockOwner(entry);
}

class ProcessLock implements FileLock {
  readonly #owner: LockOwner;
  constructor(owner: LockOwner) {
    this.#owner = owner;
  }

  get level(): number {
    return this.#owner.level;
  }

  lock(level: number): number {
    const owner = this.#owner;
    const e = owner.entry;
    if (owner.level >= level) return SQLITE_OK;
    const other = (o: LockOwner | null) => o !== null && o !== owner;
    if (level === SQLITE_LOCK_SHARED) {
      // A pending writer keeps new readers out, so writers cannot starve.
      if (other(e.pending) || other(e.exclusive)) return SQLITE_BUSY;
      e.shared++;
      owner.level = SQLITE_LOCK_SHARED;
      return SQLITE_OK;
    }
    if (level === SQLITE_LOCK_RESERVED) {
      if (owner.level !== SQLITE_LOCK_SHARED) throw new Error(`RESERVED requested from level ${owner.level}`);
      if (other(e.reserved) || other(e.pending) || other(e.exclusive)) return SQLITE_BUSY;
      e.reserved = owner;
      owner.level = SQLITE_LOCK_RESERVED;
      return SQLITE_OK;
    }
    if (level === SQLITE_LOCK_EXCLUSIVE) {
      if (owner.level < SQLITE_LOCK_SHARED) throw new Error("EXCLUSIVE requested without SHARED");
      if (other(e.pending) || other(e.exclusive)) return SQLITE_BUSY;
      e.pending = owner;
      owner.level = SQLITE_LOCK_PENDING;
      if (e.shared > 1) return SQLITE_BUSY; // keep PENDING: readers drain, then we retry
      e.exclusive = owner;
      owner.level = SQLITE_LOCK_EXCLUSIVE;
      return SQLITE_OK;
    }
    throw new Error(`unexpected lock level ${level}`);
  }

  unlock(level: number): void {
    const owner = this.#owner;
    const e = owner.entry;
    if (owner.level <= level) return;
    if (e.reserved === owner) e.reserved = null;
    if (e.pending === owner) e.pending = null;
    if (e.exclusive === owner) e.exclusive = null;
    if (level === SQLITE_LOCK_NONE && owner.level >= SQLITE_LOCK_SHARED) e.shared--;
    owner.level = level;
  }

  /** True when any connection holds RESERVED or higher (os_unix.c counts its own, too). */
  checkReserved(): boolean {
    const e = this.#owner.entry;
    return e.reserved !== null || e.pending !== null || e.exclusive !== null;
  }

  close(): void {
    this.unlock(SQLITE_LOCK_NONE);
    const e = this.#owner.entry;
    if (--e.owners === 0) table.delete(e.key);
  }
}
