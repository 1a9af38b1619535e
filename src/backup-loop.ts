// backup(): the everyday call. Steps a Backup until done, yielding to the event loop between
// steps, retrying BUSY/LOCKED, honouring AbortSignal, and finishing in bounded time when the
// source keeps changing (each restart doubles the step; after a few, one step copies the rest).
import type { Backup, StepResult } from "./backup.js";
import { SQLITE_ACCESS_READ, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY_ROLLBACK } from "./constants.js";
import { Database } from "./database.js";
import { SqliteError } from "./errors.js";
import { SourceGuard, vfsOf, type Stamp } from "./source-guard.js";
import type { Sqlite } from "./sqlite.js";

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
}
export interface BackupResult {
  pageCount: number;
  steps: number;
  restarts: number;
  elapsedMs: number;
}

/**
 * Adaptive steps aim at this much work per step, so the event loop stays responsive. Measured
 * (BENCHMARKS.md, 330 MiB file -> file): at 8 ms, I/O jitter and the 2x growth made 5 of 6 runs
 * block >16 ms in some step (up to 47 ms); at 4 ms, 0 of 6 (max 11.6 ms) for ~5% of throughput.
 */
const TARGET_STEP_MS = 4;
const MIN_PAGES = 16;
const MAX_PAGES = 1 << 16;
/** After this many restarts the rest is copied in one step, which no writer can interrupt. */
const RESTARTS_BEFORE_ONE_STEP = 3;
const BUSY_DELAYS_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** Throws TypeError for malformed options, and signal.reason when already aborted. */
export function checkOptions(options: BackupOptions): void {
  const { pagesPerStep, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal } = options;
  if (pagesPerStep !== undefined && !Number.isInteger(pagesPerStep)) throw new TypeError("pagesPerStep must be an integer");
  for (const [k, v] of [["pauseMs", pauseMs], ["busyTimeoutMs", busyTimeoutMs]] as const) {
    if (typeof v !== "number" || !(v >= 0)) throw new TypeError(`${k} must be a number >= 0`);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") throw new TypeError("onProgress must be a function");
  signal?.throwIfAborted();
}

export async function runBackup(sqlite: Sqlite, source: Database, dest: Database | string, options: BackupOptions = {}): Promise<BackupResult> {
  const { sourceName = "main", destName = "main" } = options;
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  if (typeof dest !== "string" && !(dest instanceof Database)) throw new TypeError("dest must be a Database or a filename");
  checkOptions(options);

  // A destination given by name is ours: opened here, closed here, and removed again on failure
  // if this call created it.
  let own: { db: Database; path: string | null } | null = null;
  let destDb: Database;
  if (typeof dest === "string") {
    const vfs = sqlite.vfs();
    const path = dest.startsWith("file:") || dest === ":memory:" || dest === "" ? null : vfs.fullPathname(dest);
    const created = path !== null && !vfs.access(path, SQLITE_ACCESS_READ);
    destDb = sqlite.open(dest);
    own = { db: destDb, path: created ? path : null };
  } else {
    destDb = dest;
  }

  let backup: Backup | undefined;
  try {
    const guard = options.verifySource === false ? null : SourceGuard.for(sqlite, source, sourceName);
    const init = () => (backup = sqlite.backupInit(destDb, destName, source, sourceName));
    init();
    const destVfs = vfsOf(sqlite, destDb, destName);
    const writeBack = destVfs?.writeBack?.bind(destVfs);
    const result = await stepLoop({ current: () => backup!, restart: init, guard, writeBack }, options);
    backup!.finish();
    own?.db.close();
    return result;
  } catch (e) {
    backup?.[Symbol.dispose](); // finish before DONE: SQLite rolls the destination back
    if (own) {
      own.db.close();
      if (own.path !== null) removeCreated(sqlite, own.path);
    }
    throw e;
  }
}

/** What stepLoop drives: the current backup, and for the source guard a way to start it over. */
export interface StepTarget {
  current(): Backup;
  restart(): void;
  guard: SourceGuard | null;
  /** Awaited after every step (backupToOpfs waits for its writer here). */
  afterStep?: () => Promise<void>;
  /** The destination VFS's writeBack(), awaited before the step that commits. */
  writeBack?: () => Promise<void>;
}

/**
 * The stepping rules of backup() (adaptive steps, restarts grow the step and end in one step,
 * BUSY retried up to busyTimeoutMs, abort, a final progress event), shared with backupToOpfs.
 * Options must have passed checkOptions().
 */
export async function stepLoop(target: StepTarget, options: BackupOptions): Promise<BackupResult> {
  const { pagesPerStep: fixedPages, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal } = options;
  const { current, guard } = target;
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
  // outside this process; whether a finished copy turned out torn (committed before we knew).
  let startStamp: Stamp | null = null;
  let changingSince: number | null = null;
  let tornCopy = false;
  const stepSize = () => (restarts >= RESTARTS_BEFORE_ONE_STEP ? -1 : pages);
  for (;;) {
    signal?.throwIfAborted();
    const backup = current();
    const n = stepSize();
    const before = guard?.stamp() ?? null;
    const t0 = performance.now();
    let rc: StepResult;
    if (before?.writerActive) rc = "busy"; // a live journal: a writer is mid-transaction; do not read under it
    else {
      if (guard && startStamp === null) {
        guard.refreshWalIndex();
        startStamp = before;
      }
      try {
        rc = backup.step(n);
      } catch (e) {
        // A read-only source meets another process's live journal: the writer is mid-commit.
        if (!(guard && e instanceof SqliteError && e.extendedCode === SQLITE_READONLY_ROLLBACK)) throw e;
        rc = "busy";
        startStamp = null;
        backup[Symbol.dispose]();
        init();
      }
    }
    const dt = performance.now() - t0;
    steps++;
    await target.afterStep?.();
    if (guard && startStamp !== null && (rc === "ok" || rc === "done") && guard.stamp().key !== startStamp.key) {
      // The source changed since this copy began: during the step (only another process can
      // write then) or between steps (SQLite restarts by itself for its own writers, but not for
      // another process's WAL). Copy again from a fresh view; a finished copy is overwritten.
      changingSince ??= t0;
      tornCopy ||= rc === "done";
      if (t0 - changingSince >= busyTimeoutMs) {
        throw new SqliteError(`backup: the source file kept changing outside this process for longer than busyTimeoutMs (${busyTimeoutMs} ms); ` +
          (tornCopy ? "the destination holds a copy that may be inconsistent" : "the destination was rolled back"), SQLITE_BUSY);
      }
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
        throw new SqliteError(`backup: ${rc === "busy" ? "database is locked" : "database table is locked"} for longer than busyTimeoutMs (${busyTimeoutMs} ms)`,
          rc === "busy" ? SQLITE_BUSY : SQLITE_LOCKED);
      }
      await sleep(BUSY_DELAYS_MS[Math.min(busyTries++, BUSY_DELAYS_MS.length - 1)]!, signal);
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
  return { pageCount, steps, restarts, elapsedMs: performance.now() - start };
}

function removeCreated(sqlite: Sqlite, path: string): void {
  const vfs = sqlite.vfs();
  for (const p of [path, `${path}-journal`, `${path}-wal`]) {
    try {
      if (vfs.access(p, SQLITE_ACCESS_READ)) vfs.delete(p, false);
    } catch {
      // best effort: the main error is what the caller needs
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
function yieldToEventLoop(): Promise<void> {
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
