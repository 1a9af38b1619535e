// The driver of sqlite3_backup_step: steps a copy until done, yielding to the event loop between
// steps, retrying BUSY/LOCKED, honouring AbortSignal, and finishing in bounded time when the
// source keeps changing (each restart doubles the step; after a few, one step copies the rest).
// backup() and backupToOpfs drive full copies through it; its pacing rules (Pacing) also pace the
// incremental compare (incremental.ts).
import { SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY_ROLLBACK } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import type { Backup, StepResult } from "../handles/backup.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";
import { checkPages, type BackupOptions, type BackupResult } from "./options.js";
import type { SourceGuard, Stamp } from "./source-guard.js";

/**
 * Adaptive steps aim at this much work per step, so the event loop stays responsive. Measured
 * (docs/performance.md, 330 MiB file -> file): at 8 ms, I/O jitter and the 2x growth made 5 of 6 runs
 * block >16 ms in some step (up to 47 ms); at 4 ms, 0 of 6 (max 11.6 ms) for ~5% of throughput.
 */
export const TARGET_STEP_MS = 4;
export const MIN_PAGES = 16;
export const MAX_PAGES = 1 << 16;
const INT32_MAX = 2 ** 31 - 1;
/** After this many restarts the rest is copied in one step, which no writer can interrupt. */
export const RESTARTS_BEFORE_ONE_STEP = 3;
export const BUSY_DELAYS_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
/**
 * With real file locks a BUSY is mostly another process's commit (PENDING/EXCLUSIVE held for a
 * few ms): poll every millisecond. An unpaced native writer holds them ~97% of the time here,
 * and the back-off above then found the lock free about once a second.
 */
const OS_BUSY_DELAYS_MS = [1];

/**
 * The waits between BUSY retries under a lock kind, or with a source guard that takes the source's
 * read lock through the OS (source-guard.ts): then, too, a BUSY is another process's commit.
 */
export const busyDelays = (locking: "os" | "process", guard: SourceGuard | null): readonly number[] =>
  (locking === "os" || guard?.osReadLock() ? OS_BUSY_DELAYS_MS : BUSY_DELAYS_MS);

/**
 * The pacing rules of both backup loops (stepLoop below, the compare of incremental.ts): adaptive
 * steps toward TARGET_STEP_MS, or a fixed size from pagesPerStep or onProgress; each restart
 * doubles the step, and after RESTARTS_BEFORE_ONE_STEP the rest goes in one step; BUSY waited
 * out up to busyTimeoutMs; a source that keeps changing given up on after busyTimeoutMs.
 * Options must have passed checkOptions().
 */
export class Pacing {
  restarts = 0;
  #pages: number;
  #adaptive: boolean;
  #busySince: number | null = null;
  #busyTries = 0;
  #changingSince: number | null = null;
  readonly #busyTimeoutMs: number;

  constructor(readonly options: BackupOptions, readonly delays: readonly number[] = BUSY_DELAYS_MS) {
    this.#pages = options.pagesPerStep ?? 128;
    this.#adaptive = options.pagesPerStep === undefined;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  }

  /**
   * Pages for the next step; -1: all that is left. An adaptive step is at most `max` pages. A step
   * beyond C's int range is "all" (no database has that many pages; C would see a truncated count).
   */
  size(max = MAX_PAGES): number {
    if (this.restarts >= RESTARTS_BEFORE_ONE_STEP || this.#pages < 0 || this.#pages > INT32_MAX) return -1;
    return this.#adaptive ? Math.min(this.#pages, max) : this.#pages;
  }

  /** The copy starts over. */
  restarted(): void {
    this.restarts++;
    this.#pages = Math.min(this.#pages * 2, MAX_PAGES);
  }

  /** A step went through: BUSY is over. */
  through(): void {
    this.#busySince = null;
    this.#busyTries = 0;
  }

  /** A step of the same copy took dt ms: the next one aims at TARGET_STEP_MS (adaptive steps only). */
  adapt(dt: number): void {
    if (!this.#adaptive) return;
    const scale = Math.min(2, Math.max(0.5, TARGET_STEP_MS / Math.max(dt, 0.05)));
    this.#pages = Math.min(MAX_PAGES, Math.max(MIN_PAGES, Math.round(this.#pages * scale)));
  }

  /**
   * The progress event after a step, awaited when it returns a promise; a number it returns (or
   * resolves with) is the step size from then on, checked as pagesPerStep is.
   */
  async progress(remaining: number, pageCount: number): Promise<void> {
    let wanted = this.options.onProgress?.({ remaining, pageCount });
    if (typeof (wanted as Promise<unknown> | undefined)?.then === "function") wanted = await wanted;
    if (typeof wanted !== "number") return;
    checkPages(wanted, "the step size onProgress returned");
    this.#pages = wanted;
    this.#adaptive = false;
  }

  /** A BUSY (or LOCKED) step at t0: waits before the next try, or throws timedOut() once BUSY has lasted busyTimeoutMs. */
  async busy(t0: number, timedOut: (busyTimeoutMs: number) => Error): Promise<void> {
    this.#busySince ??= t0;
    if (t0 - this.#busySince >= this.#busyTimeoutMs) throw timedOut(this.#busyTimeoutMs);
    await sleep(this.delays[Math.min(this.#busyTries++, this.delays.length - 1)]!, this.options.signal);
  }

  /** Another process changed the source (seen at t0): throws gaveUp() once that has gone on for busyTimeoutMs. */
  changing(t0: number, gaveUp: (busyTimeoutMs: number) => Error): void {
    this.#changingSince ??= t0;
    if (t0 - this.#changingSince >= this.#busyTimeoutMs) throw gaveUp(this.#busyTimeoutMs);
  }

  /** Between steps: pauseMs, or a macrotask boundary. */
  pause(): Promise<void> {
    const { pauseMs = 0, signal } = this.options;
    return pauseMs > 0 ? sleep(pauseMs, signal) : yieldToEventLoop();
  }
}

/** The error once `what` (e.g. "the destination /x.db") stayed locked for busyTimeoutMs. */
export function lockedTooLong(what: string, ms: number, code = SQLITE_BUSY): SqliteError {
  const kind = code === SQLITE_LOCKED ? "a table of it is locked by another connection of this process" : "another connection or process holds its lock";
  return new SqliteError(`backup: ${what} stayed locked for longer than busyTimeoutMs (${ms} ms): ${kind}`, code);
}

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
  /** What a BUSY step waits for, for its error (e.g. "the source /a.db or the destination /b.db"). */
  lockedWhat: string;
}

/**
 * The stepping rules of backup() (adaptive steps, restarts grow the step and end in one step,
 * BUSY retried up to busyTimeoutMs, abort, a final progress event).
 * Options must have passed checkOptions().
 */
export async function stepLoop(target: StepTarget, options: BackupOptions): Promise<BackupResult> {
  const { onProgress, signal } = options;
  const { current, guard } = target;
  const init = () => target.restart();
  const pacing = new Pacing(options, target.busyDelaysMs ?? busyDelays("process", guard));
  const start = performance.now();
  let steps = 0;
  let copied = 0;
  // The source guard: the stamp this copy started from; whether the last busy wait was for
  // another process's writer.
  let startStamp: Stamp | null = null;
  let writerBusy = false;
  for (;;) {
    signal?.throwIfAborted();
    const backup = current();
    const n = pacing.size();
    const before = guard?.stamp() ?? null;
    const t0 = performance.now();
    let rc: StepResult;
    let torn = false;
    // A live journal: a writer is mid-transaction; do not read under it. (A hot one, whose writer
    // died, is rolled back by the step where the source may be written.)
    writerBusy = (before?.writerActive ?? false) && !before!.hot;
    if (writerBusy) rc = "busy";
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
          if (before!.hot) throw guard.hotJournal();
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
      pacing.changing(t0, (ms) => guard!.gaveUp(ms, "kept writing"));
      backup[Symbol.dispose]();
      init();
      startStamp = null;
      pacing.restarted();
      copied = 0;
      continue;
    }
    if (rc === "busy" || rc === "locked") {
      await pacing.busy(t0, (ms) => {
        if (writerBusy) return guard!.gaveUp(ms, "stayed inside a write transaction on");
        return lockedTooLong(target.lockedWhat, ms, rc === "busy" ? SQLITE_BUSY : SQLITE_LOCKED);
      });
      continue;
    }
    pacing.through();
    if (rc === "done") break;
    // "ok" always copies exactly n pages; landing anywhere else means the copy started over.
    const now = backup.pageCount - backup.remaining;
    if (copied > 0 && now < copied + n) pacing.restarted();
    else pacing.adapt(dt);
    copied = now;
    await pacing.progress(backup.remaining, backup.pageCount);
    // The next step commits, and the commit syncs every page written so far. Let the VFS write
    // them back off this thread first, so that sync has little left to block on.
    const next = pacing.size();
    if (target.writeBack && (next < 0 || backup.remaining <= next)) await target.writeBack();

    await pacing.pause();
  }
  const pageCount = current().pageCount;
  await onProgress?.({ remaining: 0, pageCount });
  return { pageCount, steps, restarts: pacing.restarts, elapsedMs: performance.now() - start, pagesWritten: pageCount, pagesCompared: 0, incremental: false };
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
