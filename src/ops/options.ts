// backup()'s options and result, shared by every route that copies a database (backup(),
// backupToOpfs, restoreFromOpfs), and the one check of them.
import { checkKeys, DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";

export interface BackupProgress {
  remaining: number;
  pageCount: number;
}
export interface BackupOptions {
  /** Schema to copy from. Default "main". */
  sourceName?: string;
  /** Schema to copy into. Default "main". */
  destName?: string;
  /** Pages per step; negative copies everything in one step. Default: adaptive (see README). */
  pagesPerStep?: number;
  /** Milliseconds to wait between steps. Default 0 (the loop still yields every step). */
  pauseMs?: number;
  /** Called after every step and once more with remaining 0. Return a number to change pagesPerStep. */
  onProgress?: (p: BackupProgress) => void | number;
  /** Abort: the destination is rolled back and the promise rejects with signal.reason. */
  signal?: AbortSignal;
  /** Keep retrying BUSY/LOCKED this long before rejecting. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * For a file source: check around every step that no other process changed the file, and copy
   * again if one did (docs/reliability.md). Default true.
   */
  verifySource?: boolean;
  /**
   * "auto" (default): over a destination that is already a database with the source's page size
   * (not in use; a WAL one is checkpointed first), compare every page and write only the differing ones
   * (src/ops/incremental.ts), when the source is in-memory or in WAL mode and needs no source guard;
   * otherwise a full copy. false: always the full copy. true: also for a rollback-journal source
   * (its writers wait during the compare); reject with SqliteError (SQLITE_ERROR) when the
   * destination does not qualify.
   */
  incremental?: boolean | "auto";
}
export interface BackupResult {
  pageCount: number;
  steps: number;
  restarts: number;
  elapsedMs: number;
  /** Pages written to the destination (a full copy writes pageCount). */
  pagesWritten: number;
  /** Source pages compared with an existing destination page (0 for a full copy). */
  pagesCompared: number;
  /** Whether only the differing pages were written (the page-diff path ran). */
  incremental: boolean;
}

/** Every BackupOptions key; checkOptions() rejects any other (a misspelt option is never ignored). */
export const BACKUP_OPTION_KEYS: readonly string[] = [
  "sourceName", "destName", "pagesPerStep", "pauseMs", "onProgress", "signal", "busyTimeoutMs", "verifySource", "incremental",
];

/** Throws TypeError for malformed options (naming `where`), and signal.reason when already aborted. */
export function checkOptions(options: BackupOptions, where = "backup"): void {
  checkKeys(options, BACKUP_OPTION_KEYS, where);
  const { sourceName, destName, pagesPerStep, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal, verifySource } = options ?? {};
  for (const [k, v] of [["sourceName", sourceName], ["destName", destName]] as const) {
    if (v !== undefined && typeof v !== "string") throw new TypeError(`${k} must be a string`);
  }
  if (verifySource !== undefined && typeof verifySource !== "boolean") throw new TypeError("verifySource must be a boolean");
  const { incremental } = options ?? {};
  if (incremental !== undefined && typeof incremental !== "boolean" && incremental !== "auto") throw new TypeError('incremental must be true, false or "auto"');
  if (pagesPerStep !== undefined && !Number.isInteger(pagesPerStep)) throw new TypeError("pagesPerStep must be an integer");
  for (const [k, v] of [["pauseMs", pauseMs], ["busyTimeoutMs", busyTimeoutMs]] as const) {
    if (typeof v !== "number" || !(v >= 0)) throw new TypeError(`${k} must be a number >= 0`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw new TypeError("onProgress must be a function");
  signal?.throwIfAborted();
}
