// The one backup driver: steps a copy until done, yielding to the event loop between steps,
// retrying BUSY/LOCKED, honouring AbortSignal, and finishing in bounded time when the source keeps
// changing (each restart doubles the step; after a few, one step copies the rest). backup() and
// backupToOpfs drive sqlite3_backup_step through it.
import { SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY_ROLLBACK } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import type { Backup, StepResult } from "../handles/backup.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";
import type { BackupOptions, BackupResult } from "./options.js";
import type { SourceGuard, Stamp } from "./source-guard.js";

/**
 * Adaptive steps aim at this much work per step, so the event loop stays responsive. Measured
 * (BENCHMARKS.md, 330 MiB file -> file): at 8 ms, I/O jitter and the 2x growth made 5 of 6 runs
 * block >16 ms in some step (up to 47 ms); at 4 ms, 0 of 6 (max 11.6 ms) for ~5% of throughput.
 */
export const TARGET_STEP_MS = 4;
export const MIN_PAGES = 16;
export const MAX_PAGES = 1 << 16;
/** After this many restarts the rest is copied in one step, which no writer can interrupt. */
export const RESTARTS_BEFORE_ONE_STEP = 3;
export const BUSY_DELAYS_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
/**
 * With real file locks a BUSY is mostly another process's commit (PENDING/EXCLUSIVE held for a
 * few ms): poll every millisecond. An unpaced native writer holds them ~97% of the time here,
 * and the back-off above then found the lock free about once a second.
 */
const OS_BUSY_DELAYS_MS = [1];

/** The waits between BUSY retries under a lock kind. */
export const busyDelays = (locking: "os" | "process"): readonly number[] => (locking === "os" ? OS_BUSY_DELAYS_MS : BUSY_DELAYS_MS);

/** What stepLoop drives: the current backup, and for the source guard a way to start it over. */
export interface StepTarget {
  current(): Backup;
  restart(): void;
  guard: SourceGuard | null;
  /** The destination VFS's settle(), awaited after every step (the browser relay waits for its writer). */
  afterStep?: () => Promise<void>;
  /** The destination VFS's writeBack(), awaited before the step that commits. */
  writeBack?: () => Promise<void>;
  /** Waits between BUSY retries (default BUSY_DELAYS_MS). */
  busyDelaysMs?: readonly number[];
}

/**
 * The stepping rules of backup() (adaptive steps, restarts grow the step and end in one step,
 * BUSY retried up to busyTimeoutMs, abort, a final progress event).
 * Options must have passed checkOptions().
 */
export async function stepLoop(target: StepTarget, options: BackupOptions): Promise<BackupResult> {
  const { pagesPerStep: fixedPages, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal } = options;
  const { current, guard, busyDelaysMs: delays = BUSY_DELAYS_MS } = target;
  const init = () => target.restart();
  const start = performance.now();
  let pages = fixedPages ?? 128;
  let adaptive = fixedPages === undefined;
  let steps = 0;
  let restarts = 0;
  let copied = 0;
  let busySince: number | null = null;
  let busyTries = 0;
  // The source guard: the stamp this copy started from; since when the source keeps changing
  // outside this process; whether the last busy wait was for another process's writer.
  let startStamp: Stamp | null = null;
  let changingSince: number | null = null;
  let writerBusy = false;
  const stepSize = () => (restarts >= RESTARTS_BEFORE_ONE_STEP ? -1 : pages);
  for (;;) {
    signal?.throwIfAborted();
    const backup = current();
    const n = stepSize();
    const before = guard?.stamp() ?? null;
    const t0 = performance.now();
    let rc: StepResult;
    let torn = false;
    writerBusy = before?.writerActive ?? false;
    if (writerBusy) rc = "busy"; // a live journal: a writer is mid-transaction; do not read under it
    else {
      if (guard && startStamp === null) {
        guard.refreshWalIndex();
        startStamp = before;
      }
      try {
        rc = backup.step(n);
      } catch (e) {
        if (!(guard && e instanceof SqliteError)) throw e;
        if (e.extendedCode === SQLITE_READONLY_ROLLBACK) {
          // A read-only source meets another process's live journal: the writer is mid-commit.
          rc = "busy";
          writerBusy = true;
          startStamp = null;
          backup[Symbol.dispose]();
          init();
        } else if (guard.tornRead(e, startStamp!)) {
          rc = "ok";
          torn = true; // pages another process was rewriting: copy again (below)
        } else throw e;
      }
    }
    const dt = performance.now() - t0;
    steps++;
    await target.afterStep?.();
    if (torn || (guard && startStamp !== null && (rc === "ok" || rc === "done") && guard.changedSince(startStamp))) {
      // The source changed since this copy began: during the step (only another process can
      // write then) or between steps (SQLite restarts by itself for its own writers, but not for
      // another process's WAL). Throw this attempt away and copy again from a fresh view.
      changingSince ??= t0;
      if (t0 - changingSince >= busyTimeoutMs) throw guard!.gaveUp(busyTimeoutMs, "kept writing");
      backup[Symbol.dispose]();
      init();
      startStamp = null;
      restarts++;
      copied = 0;
      continue;
    }
    if (rc === "busy" || rc === "locked") {
      busySince ??= t0;
      if (t0 - busySince >= busyTimeoutMs) {
        if (writerBusy) throw guard!.gaveUp(busyTimeoutMs, "stayed inside a write transaction on");
        throw new SqliteError(`backup: ${rc === "busy" ? "database is locked" : "database table is locked"} for longer than busyTimeoutMs (${busyTimeoutMs} ms)`,
          rc === "busy" ? SQLITE_BUSY : SQLITE_LOCKED);
      }
      await sleep(delays[Math.min(busyTries++, delays.length - 1)]!, signal);
      continue;
    }
    busySince = null;
    busyTries = 0;
    if (rc === "done") break;
    // "ok" always copies exactly n pages; landing anywhere else means the copy started over.
    const now = backup.pageCount - backup.remaining;
    if (copied > 0 && now < copied + n) {
      restarts++;
      pages = Math.min(pages * 2, MAX_PAGES);
    } else if (adaptive) {
      const scale = Math.min(2, Math.max(0.5, TARGET_STEP_MS / Math.max(dt, 0.05)));
      pages = Math.min(MAX_PAGES, Math.max(MIN_PAGES, Math.round(pages * scale)));
    }
    copied = now;
    const wanted = onProgress?.({ remaining: backup.remaining, pageCount: backup.pageCount });
    if (typeof wanted === "number" && Number.isInteger(wanted) && wanted !== 0) {
      pages = wanted;
      adaptive = false;
    }
    // The next step commits, and the commit syncs every page written so far. Let the VFS write
    // them back off this thread first, so that sync has little left to block on.
    const next = stepSize();
    if (target.writeBack && (next < 0 || backup.remaining <= next)) await target.writeBack();

    await (pauseMs > 0 ? sleep(pauseMs, signal) : yieldToEventLoop());
  }
  const pageCount = current().pageCount;
  onProgress?.({ remaining: 0, pageCount });
  return { pageCount, steps, restarts, elapsedMs: performance.now() - start, pagesWritten: pageCount, pagesCompared: 0, incremental: false };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A macrotask boundary without timer clamping: setImmediate where it exists, else a message. */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === "function") return new Promise((r) => setImmediate(r));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(null);
  });
}
