// The one driver of every backup loop: the backup API's steps (step-loop.ts) and the incremental
// compare (incremental.ts) are routes it drives. It writes once what every route needs: steps
// sized to ~TARGET_STEP_MS or as asked, a yield (or pauseMs) between them, abort, BUSY waited out
// up to busyTimeoutMs, the source guard (another process writing a file source: wait while its
// journal is live, start over when the source changed, never report its torn pages as
// corruption), restarts that grow the step and end in one step, progress events (awaited), and
// the write-back before the commit.
import { SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY_ROLLBACK } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";
import { checkPages, type BackupOptions } from "./options.js";
import type { SourceGuard, Stamp } from "./source-guard.js";

/**
 * Adaptive steps aim at this much work per step, so the event loop stays responsive. Measured
 * (docs/performance.md, 330 MiB file -> file): at 8 ms, I/O jitter and the 2x growth made 5 of 6
 * runs block >16 ms in some step (up to 47 ms); at 4 ms, 0 of 6 (max 11.6 ms) for ~5% of throughput.
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

/** The error once `what` (e.g. "the destination /x.db") stayed locked for busyTimeoutMs. */
export function lockedTooLong(what: string, ms: number, code = SQLITE_BUSY): SqliteError {
  const kind = code === SQLITE_LOCKED ? "a table of it is locked by another connection of this process" : "another connection or process holds its lock";
  return new SqliteError(`backup: ${what} stayed locked for longer than busyTimeoutMs (${ms} ms): ${kind}`, code);
}

/**
 * The pacing rules: adaptive steps toward TARGET_STEP_MS, or a fixed size from pagesPerStep or
 * onProgress; each restart doubles the step, and after RESTARTS_BEFORE_ONE_STEP the rest goes in
 * one step; BUSY waited out up to busyTimeoutMs; a source that keeps changing given up on after
 * busyTimeoutMs. Options must have passed checkOptions().
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

/** Who held a lock a step waited for: named in the error once busyTimeoutMs has passed. */
export type Holder = "source" | "destination" | "either";

/** What one call of a route did. */
export type Outcome =
  /** A pass began (statements prepared, a transaction opened): no pages yet, not a step. */
  | { readonly kind: "began" }
  /** Pages copied, more remain; `restarted`: the route found itself starting over (SQLite did). */
  | { readonly kind: "copied"; readonly remaining: number; readonly pageCount: number; readonly restarted?: boolean }
  /** Everything copied (the backup API has committed too). */
  | { readonly kind: "done"; readonly pageCount: number }
  /** Nothing done: a lock is held (`code`: SQLITE_BUSY or SQLITE_LOCKED); try again. */
  | { readonly kind: "busy"; readonly on: Holder; readonly code?: number }
  /** The route's snapshot of the source changed under it: it starts over. */
  | { readonly kind: "restart" }
  /** A call failed on one side: the driver decides (torn source pages restart, the rest throw). */
  | { readonly kind: "failed"; readonly error: unknown; readonly onSource: boolean };

/** A way to copy a database, as the driver sees it. */
export interface Route {
  /** The largest adaptive step, in pages, when it is bounded (e.g. by blocks fetched ahead). */
  cap?(): number | undefined;
  /** Before the call that gets `pages` (-1: all): e.g. what it reads, fetched ahead. */
  prepare?(pages: number): Promise<void>;
  /** Begins a pass, or copies up to `pages` pages (-1: all). */
  step(pages: number): Outcome;
  /** Throws the current pass away (what it wrote is rolled back); the next step begins anew. */
  rewind(): void;
  /** After a call that copied pages or finished: e.g. a VFS that hands writes on keeps up. */
  settle?(): Promise<void>;
  /** Whether the next call of `pages` pages commits (then the VFS writes back first). */
  commitsNext?(pages: number): boolean;
  /** Before the commit: the VFS writes back off the thread what the commit would sync. */
  writeBack?(): Promise<void>;
  /** After "done", for a route whose last step does not commit: the commit. */
  commit?(): Promise<void>;
  /** What a BUSY on `on` waits for, for the error (e.g. "the source /a.db"). */
  lockedWhat(on: Holder): string;
}

export interface Driven {
  pageCount: number;
  steps: number;
  restarts: number;
}

/**
 * Drives `route` until its copy is done (and committed), then sends the final progress event.
 * Options must have passed checkOptions().
 */
export async function drive(route: Route, guard: SourceGuard | null, pacing: Pacing): Promise<Driven> {
  const { onProgress, signal } = pacing.options;
  let steps = 0;
  let pageCount = 0;
  // The source guard: the stamp this pass began from.
  let start: Stamp | null = null;
  const startOver = (t0: number) => {
    pacing.changing(t0, (ms) => guard!.gaveUp(ms, "kept writing"));
    route.rewind();
    start = null;
    pacing.restarted();
  };
  for (;;) {
    signal?.throwIfAborted();
    const n = pacing.size(route.cap?.());
    await route.prepare?.(n);
    const before = guard?.stamp() ?? null;
    const t0 = performance.now();
    let outcome: Outcome;
    // A live journal: another process is mid-transaction; do not read under it. (A hot one,
    // whose writer died, is rolled back by the step where the source may be written.)
    const writerActive = before !== null && before.writerActive && !before.hot;
    if (writerActive) outcome = { kind: "busy", on: "source" };
    else {
      if (guard && start === null) {
        guard.refreshWalIndex();
        start = before;
      }
      outcome = route.step(n);
    }
    const dt = performance.now() - t0;
    if (outcome.kind !== "began") steps++;

    if (outcome.kind === "failed") {
      const { error, onSource } = outcome;
      if (!(guard && onSource && error instanceof SqliteError)) throw error;
      if (error.extendedCode === SQLITE_READONLY_ROLLBACK) {
        // A read-only source meets another process's journal: live (the writer is mid-commit:
        // wait), or hot (no writer: only a read-write open can roll it back).
        if (before!.hot) throw guard.hotJournal();
        route.rewind();
        start = null;
        await pacing.busy(t0, (ms) => guard.gaveUp(ms, "stayed inside a write transaction on"));
        continue;
      }
      // Pages another process was rewriting read as corrupt while the source changed: copy again.
      if (guard.tornRead(error, start ?? before!)) {
        startOver(t0);
        continue;
      }
      throw error;
    }
    if (outcome.kind === "busy") {
      const writer = writerActive;
      const { on, code = SQLITE_BUSY } = outcome;
      await pacing.busy(t0, (ms) => (writer ? guard!.gaveUp(ms, "stayed inside a write transaction on") : lockedTooLong(route.lockedWhat(on), ms, code)));
      continue;
    }
    pacing.through();
    if (outcome.kind === "began") continue;
    if (outcome.kind === "restart") {
      route.rewind();
      start = null;
      pacing.restarted();
      continue;
    }
    // The source changed since this pass began: during the step (only another process can write
    // then) or between steps (SQLite restarts by itself for its own writers, but not for another
    // process's WAL). What was read may be torn: throw this pass away.
    if (guard && start !== null && guard.changedSince(start)) {
      startOver(t0);
      continue;
    }
    await route.settle?.();
    if (outcome.kind === "done") {
      pageCount = outcome.pageCount;
      break;
    }
    if (outcome.restarted) pacing.restarted();
    else pacing.adapt(dt);
    await pacing.progress(outcome.remaining, outcome.pageCount);
    // The next step commits, and the commit syncs every page written so far. Let the VFS write
    // them back off this thread first, so that sync has little left to block on.
    const next = pacing.size(route.cap?.());
    if (route.writeBack && route.commitsNext?.(next)) await route.writeBack();
    await pacing.pause();
  }
  if (route.commit) {
    await route.writeBack?.();
    await route.commit();
  }
  await onProgress?.({ remaining: 0, pageCount });
  return { pageCount, steps, restarts: pacing.restarts };
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
