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
  /**
   * Pages per step: -1 (or any negative integer) copies everything in one step; a step larger than
   * the database copies it all. Default: adaptive (steps of ~4 ms, docs/api.md).
   */
  pagesPerStep?: number;
  /** Milliseconds to wait between steps. Default 0 (the loop still yields every step). */
  pauseMs?: number;
  /**
   * Called after every step and once more with remaining 0 (after the commit). Return a number (as
   * pagesPerStep) to change the step size. A promise it returns is awaited before the next step; a
   * throw or a rejection aborts the backup as an abort does.
   */
  onProgress?: (p: BackupProgress) => void | number | Promise<void | number>;
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
   * (not in use; a WAL one is checkpointed first), compare every page and write only the differing
   * ones (src/ops/incremental.ts); into a new or empty file, write every page straight into it;
   * otherwise a full copy. false: always the full copy (the backup API). true: the compare or
   * nothing: reject with SqliteError (SQLITE_ERROR) when the destination does not qualify.
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

/** Most milliseconds a timer can wait (setTimeout's limit: beyond it a timer fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Throws TypeError for a step size that is not -1 ("all") or a positive safe integer (any other
 * negative integer also means "all", as in sqlite3_backup_step). `what` names it in the message.
 */
export function checkPages(n: unknown, what: string): asserts n is number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n === 0) {
    throw new TypeError(`${what} must be -1 (all) or a positive safe integer, got ${String(n)}`);
  }
}

/** Throws TypeError unless `signal` is an AbortSignal (or undefined). */
export function checkSignal(signal: unknown): asserts signal is AbortSignal | undefined {
  if (signal === undefined) return;
  const isSignal = typeof AbortSignal === "function" ? signal instanceof AbortSignal
    : typeof (signal as AbortSignal)?.throwIfAborted === "function";
  if (!isSignal) throw new TypeError(`signal must be an AbortSignal, got ${signal === null ? "null" : typeof signal}`);
}

/** Throws TypeError for malformed options (naming `where`), and signal.reason when already aborted. */
export function checkOptions(options: BackupOptions, where = "backup"): void {
  checkKeys(options, BACKUP_OPTION_KEYS, where);
  const { sourceName, destName, pagesPerStep, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal, verifySource } = options ?? {};
  for (const [k, v] of [["sourceName", sourceName], ["destName", destName]] as const) {
    if (v !== undefined && typeof v !== "string") throw new TypeError(`${where}: ${k} must be a string`);
    if (v?.includes("\0")) throw new TypeError(`${where}: ${k} must not contain NUL characters`);
  }
  if (verifySource !== undefined && typeof verifySource !== "boolean") throw new TypeError(`${where}: verifySource must be a boolean`);
  const { incremental } = options ?? {};
  if (incremental !== undefined && typeof incremental !== "boolean" && incremental !== "auto") throw new TypeError(`${where}: incremental must be true, false or "auto"`);
  if (pagesPerStep !== undefined) checkPages(pagesPerStep, `${where}: pagesPerStep`);
  if (typeof pauseMs !== "number" || !(pauseMs >= 0 && pauseMs <= MAX_TIMER_MS)) {
    throw new TypeError(`${where}: pauseMs must be a number from 0 to ${MAX_TIMER_MS}, got ${String(pauseMs)}`);
  }
  // Infinity: wait as long as it takes.
  if (typeof busyTimeoutMs !== "number" || !(busyTimeoutMs >= 0)) {
    throw new TypeError(`${where}: busyTimeoutMs must be a number >= 0 (Infinity: no limit), got ${String(busyTimeoutMs)}`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw new TypeError(`${where}: onProgress must be a function`);
  checkSignal(signal);
  signal?.throwIfAborted();
}
