// Web Locks named for an OPFS file: how the tabs and workers of one origin take turns with it.
// OPFS's sync access handles are exclusive too, but a busy handle fails at once (for
// backupToOpfs only at the final rename, after the whole copy), while a lock can be waited for,
// and the browser releases it when the tab or worker holding it goes away.
//   exclusive: a read-write openOpfs (for as long as the database is open), backupToOpfs
//   shared:    a read-only openOpfs, restoreFromOpfs
import { SQLITE_BUSY } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";

export interface HeldLock {
  /** Lets the lock go; idempotent. */
  release(): void;
}

/** Names this realm holds, so that a wait on ourselves says so. */
const mine = new Map<string, number>();

export function lockName(full: string): string {
  return `sqlite-backup-wasm:opfs:${full}`;
}

/**
 * Takes the lock of the OPFS file `full`, waiting up to busyTimeoutMs (0: only if free at
 * once). Rejects with SQLITE_BUSY naming who has the file, or with signal.reason on abort.
 */
export async function lockOpfsFile(full: string, mode: LockMode, what: string, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, signal?: AbortSignal): Promise<HeldLock> {
  if (typeof busyTimeoutMs !== "number" || !(busyTimeoutMs >= 0)) throw new TypeError("busyTimeoutMs must be a number >= 0");
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) throw new SqliteError(`${what}: this context has no navigator.locks (Web Locks need a secure context, as OPFS does)`, SQLITE_BUSY);
  signal?.throwIfAborted();
  const name = lockName(full);
  const timeout = new AbortController();
  const timer = busyTimeoutMs > 0 ? setTimeout(() => timeout.abort(), busyTimeoutMs) : undefined;
  const busy = () => new SqliteError(`${what}: ${full} is open in ${mine.has(name) ? "this thread (close it first)" : "another tab or worker"}; ` +
    `waited busyTimeoutMs (${busyTimeoutMs} ms)`, SQLITE_BUSY);
  let letGo!: () => void;
  const held = new Promise<void>((r) => (letGo = r));
  const options: LockOptions = busyTimeoutMs > 0
    ? { mode, signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal }
    : { mode, ifAvailable: true };
  let granted: boolean;
  try {
    granted = await new Promise<boolean>((resolve, reject) => {
      locks.request(name, options, (lock) => {
        resolve(lock !== null);
        return lock ? held : undefined; // held until release()
      }).catch(reject);
    });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    if (timeout.signal.aborted) throw busy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (!granted) throw busy();
  mine.set(name, (mine.get(name) ?? 0) + 1);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      const n = mine.get(name)! - 1;
      if (n > 0) mine.set(name, n);
      else mine.delete(name);
      letGo();
    },
  };
}
