// One backup at a time into a destination file, across processes of this package: a lock file
// beside the destination, created exclusively and naming its process. SQLite's own locks cannot do
// this on runtimes without real file locks, and even with them two backups that each create a new
// file, or each rename a staged copy over it, must not interleave (one's clean-up would remove the
// other's result). A lock left by a killed process is taken over once that process is gone. It
// reaches node:fs through builtin() (runtime/builtin.ts), so browser bundles import nothing of Node.
import type * as NodeFs from "node:fs";
import { SQLITE_BUSY, SQLITE_CANTOPEN } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { builtin } from "../runtime/builtin.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";
import { sleep } from "./driver.js";

interface NodeProcess {
  pid: number;
  kill(pid: number, signal: number): void;
}

/** Waits between tries while another backup holds the lock. */
const POLL_MS = [5, 10, 20, 50, 100];

/** The lock file of the destination file `path` (a full pathname). */
export function lockPath(path: string): string {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1;
  return `${path.slice(0, slash)}.${path.slice(slash)}.sbw-lock`;
}

/** Whether the process `pid` of this machine still runs. */
export function processAlive(pid: number): boolean {
  const p = (globalThis as { process?: NodeProcess }).process;
  if (!p || !Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === p.pid) return true;
  try {
    p.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException)?.code === "EPERM"; // alive, someone else's
  }
}

/**
 * Takes the destination lock of `path`, waiting up to busyTimeoutMs for another backup of this
 * package (in any process) to finish; resolves with its release (never throws). Resolves with a
 * no-op release where there is no node:fs (browsers: OPFS has Web Locks) or the directory cannot
 * hold the lock file (read-only: the backup then fails on its own, with the real cause).
 */
export async function lockDestination(path: string, options: { busyTimeoutMs?: number; signal?: AbortSignal }): Promise<() => void> {
  const p = (globalThis as { process?: NodeProcess }).process;
  const fs = builtin<typeof NodeFs>("node:fs");
  if (!p || !fs) return () => {};
  const file = lockPath(path);
  const start = performance.now();
  const timeout = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  for (let tries = 0; ; tries++) {
    options.signal?.throwIfAborted();
    let fd: number;
    try {
      fd = fs.openSync(file, "wx", 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") {
        if (code === "ENOENT") throw new SqliteError(`backup: cannot open ${path}: its directory does not exist`, SQLITE_CANTOPEN);
        return () => {};
      }
      const holder = readHolder(fs, file);
      if (holder !== null && !processAlive(holder)) {
        // Left by a process that is gone: take it over (only if it still names that process).
        if (readHolder(fs, file) === holder) fs.rmSync(file, { force: true });
        continue;
      }
      if (performance.now() - start >= timeout) {
        throw new SqliteError(`backup: another backup (process ${holder ?? "?"}) is writing the destination ${path} and did not ` +
          `finish within busyTimeoutMs (${timeout} ms); its lock is ${file}${holder === null ? " (remove it if no backup is running)" : ""}`, SQLITE_BUSY);
      }
      await sleep(POLL_MS[Math.min(tries, POLL_MS.length - 1)]!, options.signal);
      continue;
    }
    try {
      fs.writeSync(fd, `${p.pid}\n`);
    } finally {
      fs.closeSync(fd);
    }
    return () => {
      try {
        if (readHolder(fs, file) === p.pid) fs.rmSync(file, { force: true });
      } catch {
        // best effort: a lock left behind names this process, which is gone by the next look
      }
    };
  }
}

/** The pid a lock file names; null while it is being written (or unreadable). */
function readHolder(fs: typeof NodeFs, file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
