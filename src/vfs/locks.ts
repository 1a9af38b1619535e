// SQLite's file locks (NONE < SHARED < RESERVED < PENDING < EXCLUSIVE) for every connection of
// this JS realm, in one table keyed by the file's identity, with the rules of os_unix.c. Never
// blocks: contention is SQLITE_BUSY. Processes cannot see each other's entries (see README
// "Limits"): this is the only lock table Node gives us without advisory locks.
import {
  SQLITE_BUSY, SQLITE_LOCK_EXCLUSIVE, SQLITE_LOCK_NONE, SQLITE_LOCK_PENDING, SQLITE_LOCK_RESERVED,
  SQLITE_LOCK_SHARED, SQLITE_OK,
} from "../constants.js";

/** One connection's handle on a lockable file. */
export class LockOwner {
  level = SQLITE_LOCK_NONE;
  constructor(readonly entry: LockEntry) {}
}

export class LockEntry {
  shared = 0; // owners at SHARED or above
  reserved: LockOwner | null = null;
  pending: LockOwner | null = null;
  exclusive: LockOwner | null = null;
  owners = 0; // open handles; the entry is dropped when the last one closes
  constructor(readonly key: string) {}
}

const table = new Map<string, LockEntry>();

export function acquireOwner(key: string): LockOwner {
  let entry = table.get(key);
  if (!entry) table.set(key, (entry = new LockEntry(key)));
  entry.owners++;
  return new LockOwner(entry);
}

export function releaseOwner(owner: LockOwner): void {
  unlock(owner, SQLITE_LOCK_NONE);
  const e = owner.entry;
  if (--e.owners === 0) table.delete(e.key);
}

export function lock(owner: LockOwner, level: number): number {
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

export function unlock(owner: LockOwner, level: number): void {
  const e = owner.entry;
  if (owner.level <= level) return;
  if (e.reserved === owner) e.reserved = null;
  if (e.pending === owner) e.pending = null;
  if (e.exclusive === owner) e.exclusive = null;
  if (level === SQLITE_LOCK_NONE && owner.level >= SQLITE_LOCK_SHARED) e.shared--;
  owner.level = level;
}

/** True when any connection holds RESERVED or higher (os_unix.c counts its own, too). */
export function reservedHeld(owner: LockOwner): boolean {
  const e = owner.entry;
  return e.reserved !== null || e.pending !== null || e.exclusive !== null;
}
