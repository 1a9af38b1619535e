// The backup API as a route of the driver (driver.ts): sqlite3_backup_step one to one. backup()
// drives full copies with it, into the destination or into a scratch copy (backup.ts).
import { SQLITE_BUSY, SQLITE_LOCKED } from "../core/constants.js";
import type { Backup } from "../handles/backup.js";
import { busyDelays, drive, Pacing, type Route } from "./driver.js";
import type { BackupOptions, BackupResult } from "./options.js";
import type { SourceGuard } from "./source-guard.js";

/** What stepLoop drives: the current backup, and a way to start it over. */
export interface StepTarget {
  current(): Backup;
  /** A new backup after the current one was finished (a pass thrown away). */
  restart(): void;
  guard: SourceGuard | null;
  /** The destination VFS's settle(), awaited after every step (the browser relay waits for its writer). */
  afterStep?: () => Promise<void>;
  /** The destination VFS's writeBack(), awaited before the step that commits. */
  writeBack?: () => Promise<void>;
  /** Waits between BUSY retries (default: busyDelays("process", guard)). */
  busyDelaysMs?: readonly number[];
  /** What a BUSY step waits for, for its error (e.g. "the source /a.db or the destination /b.db"). */
  lockedWhat: string;
}

/** Steps a copy until done. Options must have passed checkOptions(). */
export async function stepLoop(target: StepTarget, options: BackupOptions): Promise<BackupResult> {
  const start = performance.now();
  const pacing = new Pacing(options, target.busyDelaysMs ?? busyDelays("process", target.guard));
  // Pages of this pass copied so far: a step that lands anywhere else started over (SQLite does,
  // when the source changes under a copy).
  let copied = 0;
  const route: Route = {
    step(pages) {
      const backup = target.current();
      let rc;
      try {
        rc = backup.step(pages);
      } catch (error) {
        return { kind: "failed", error, onSource: true }; // the backup API does not say which side
      }
      if (rc === "busy" || rc === "locked") return { kind: "busy", on: "either", code: rc === "busy" ? SQLITE_BUSY : SQLITE_LOCKED };
      if (rc === "done") return { kind: "done", pageCount: backup.pageCount };
      const now = backup.pageCount - backup.remaining;
      const restarted = copied > 0 && now < copied + pages;
      copied = now;
      return { kind: "copied", remaining: backup.remaining, pageCount: backup.pageCount, restarted };
    },
    rewind() {
      target.current()[Symbol.dispose](); // finish before DONE: SQLite rolls the destination back
      target.restart();
      copied = 0;
    },
    commitsNext: (pages) => pages < 0 || target.current().remaining <= pages,
    lockedWhat: () => target.lockedWhat,
  };
  if (target.afterStep) route.settle = target.afterStep;
  if (target.writeBack) route.writeBack = target.writeBack;
  const { pageCount, steps, restarts } = await drive(route, target.guard, pacing);
  return { pageCount, steps, restarts, elapsedMs: performance.now() - start, pagesWritten: pageCount, pagesCompared: 0, incremental: false };
}
