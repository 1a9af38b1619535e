// backup(): the everyday call. Steps a Backup until done, yielding to the event loop between
// steps, retrying BUSY/LOCKED, honouring AbortSignal, and finishing in bounded time when the
// source keeps changing (each restart doubles the step; after a few, one step copies the rest).
import type * as NodeFs from "node:fs";
import type { Backup, StepResult } from "./backup.js";
import {
  SQLITE_ACCESS_EXISTS, SQLITE_ACCESS_READ, SQLITE_BUSY, SQLITE_IOERR, SQLITE_IOERR_FSYNC, SQLITE_LOCKED, SQLITE_OPEN_MAIN_DB,
  SQLITE_OPEN_READONLY, SQLITE_READONLY_ROLLBACK,
} from "./constants.js";
import { Database } from "./database.js";
import { SqliteError } from "./errors.js";
import { incrementalBackup } from "./incremental.js";
import { checkKeys } from "./options.js";
import { SourceGuard, vfsOf, type Stamp } from "./source-guard.js";
import type { Sqlite } from "./sqlite.js";
import { isOpenInRealm } from "./vfs/host.js";

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
   * (not in WAL mode, not in use), compare every page and write only the differing ones
   * (src/incremental.ts), when the source is in-memory or in WAL mode and needs no source guard;
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

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** Every BackupOptions key; checkOptions() rejects any other (a misspelt option is never ignored). */
export const BACKUP_OPTION_KEYS: readonly string[] = [
  "sourceName", "destName", "pagesPerStep", "pauseMs", "onProgress", "signal", "busyTimeoutMs", "verifySource", "incremental",
];

/** Throws TypeError for malformed options, and signal.reason when already aborted. */
export function checkOptions(options: BackupOptions): void {
  checkKeys(options, BACKUP_OPTION_KEYS, "backup");
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

export async function runBackup(sqlite: Sqlite, source: Database, dest: Database | string, options: BackupOptions = {}): Promise<BackupResult> {
  checkOptions(options);
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  if (typeof dest !== "string" && !(dest instanceof Database)) throw new TypeError("dest must be a Database or a filename");
  const { sourceName = "main", destName = "main" } = options;
  // With real file locks other processes' writers wait for our reads and SQLite restarts on their
  // commits by itself: the guard is only for the in-process lock table.
  const guard = options.verifySource === false || sqlite.locking === "os" ? null : SourceGuard.for(sqlite, source, sourceName);
  // Over an existing database of the same page size: write only the pages that differ.
  const inc = await incrementalBackup(sqlite, source, sourceName, dest, destName, guard, options);
  if (inc !== null) return inc;
  if (guard === null) return copyInto(sqlite, source, sourceName, dest, destName, options, null);
  // A new file: built in place, recreated for every attempt, removed on failure.
  if (typeof dest === "string" && isNewFile(sqlite, dest)) return copyInto(sqlite, source, sourceName, dest, destName, options, guard);
  return guardedCopy(sqlite, source, sourceName, dest, destName, guard, options);
}

/** A plain path to a file that does not exist (yet). */
function isNewFile(sqlite: Sqlite, dest: string): boolean {
  const vfs = sqlite.vfs();
  return plainPath(dest) && !vfs.access(vfs.fullPathname(dest), SQLITE_ACCESS_READ);
}

/**
 * A stepped copy straight into the destination (SQLite rolls it back on failure). With a guard
 * only into a file this call creates: an attempt the guard abandons starts over in a new file.
 */
async function copyInto(sqlite: Sqlite, source: Database, sourceName: string, dest: Database | string, destName: string,
  options: BackupOptions, guard: SourceGuard | null): Promise<BackupResult> {
  // A destination given by name is ours: opened here, closed here, and removed again on failure
  // if this call created it.
  let own: { db: Database; path: string | null } | null = null;
  let destDb: Database;
  if (typeof dest === "string") {
    const vfs = sqlite.vfs();
    const path = plainPath(dest) ? vfs.fullPathname(dest) : null;
    const created = path !== null && !vfs.access(path, SQLITE_ACCESS_READ);
    destDb = sqlite.open(dest);
    own = { db: destDb, path: created ? path : null };
  } else {
    destDb = dest;
  }

  let backup: Backup | undefined;
  try {
    const init = () => (backup = sqlite.backupInit(destDb, destName, source, sourceName));
    init();
    const restart = () => {
      // The abandoned attempt may have committed a torn copy: never copy over it.
      own!.db.close();
      removeCreated(sqlite, own!.path!);
      own!.db = destDb = sqlite.open(dest as string);
      init();
    };
    const destVfs = vfsOf(sqlite, destDb, destName);
    const writeBack = destVfs?.writeBack?.bind(destVfs);
    const busyDelaysMs = sqlite.locking === "os" ? OS_BUSY_DELAYS_MS : BUSY_DELAYS_MS;
    const result = await stepLoop({ current: () => backup!, restart: guard ? restart : init, guard, writeBack, busyDelaysMs }, options);
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

/**
 * A copy of a source another process may write (the source guard, docs/reliability.md): the
 * copy goes into a scratch database, fresh for every attempt, and reaches the destination only
 * once the guard found it to be a committed state: renamed over a destination file where that is
 * safe, otherwise copied into the destination (one in-process backup, which nobody can tear).
 */
async function guardedCopy(sqlite: Sqlite, source: Database, sourceName: string, dest: Database | string, destName: string,
  guard: SourceGuard, options: BackupOptions): Promise<BackupResult> {
  const start = performance.now();
  const scratch = Scratch.create(sqlite, dest, destName);
  let backup: Backup | undefined;
  try {
    const init = () => (backup = sqlite.backupInit(scratch.db, "main", source, sourceName));
    init();
    const restart = () => {
      scratch.reset(); // an abandoned attempt may have committed a torn copy (journal_mode=OFF)
      init();
    };
    // The scratch file's pages written back off the thread before the commit syncs it.
    const writeBack = scratch.path === null ? undefined : sqlite.vfs().writeBack?.bind(sqlite.vfs());
    const result = await stepLoop({ current: () => backup!, restart, guard, writeBack }, options);
    backup!.finish();
    if (!(await scratch.renameOver(dest, destName))) {
      // Progress was reported for the copy from the source; this one is local and cannot restart.
      const second = await copyInto(sqlite, scratch.db, "main", dest, destName, { ...options, onProgress: undefined }, null);
      result.steps += second.steps;
    }
    result.elapsedMs = performance.now() - start;
    return result;
  } catch (e) {
    backup?.[Symbol.dispose]();
    throw e;
  } finally {
    scratch.discard();
  }
}

/** node:fs where the runtime has it (Node, Deno, Bun), without importing it into browser bundles. */
function nodeFs(): typeof NodeFs | null {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return (p?.getBuiltinModule?.("node:fs") as typeof NodeFs | undefined) ?? null;
}

const plainPath = (name: string) => !name.startsWith("file:") && name !== ":memory:" && name !== "";
const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Where a guarded copy is built: a file beside the destination file (same directory, so it can
 * be renamed over it, and on the same disk), or a private temporary database (open("")) when the
 * destination is not a file of the default VFS. journal_mode=OFF: an attempt is never rolled back
 * but thrown away. The commit syncs the file through the VFS as for any destination, so a failed
 * write-back surfaces there (SQLITE_IOERR_FSYNC).
 */
class Scratch {
  db: Database;
  #renamed = false;

  private constructor(readonly sqlite: Sqlite, readonly path: string | null, readonly fs: typeof NodeFs | null) {
    this.db = this.#open();
  }

  static create(sqlite: Sqlite, dest: Database | string, destName: string): Scratch {
    const fs = nodeFs();
    let file: string | null = null;
    if (typeof dest === "string") file = plainPath(dest) ? sqlite.vfs().fullPathname(dest) : null;
    else if (vfsOf(sqlite, dest, destName) === sqlite.vfs()) file = sqlite.heap.scoped((s) =>
      sqlite.heap.cstring(sqlite.capi.sqlite3_db_filename(dest.state.ptr, s.cstring(destName)[0]))) || null;
    if (fs && file !== null) {
      const target = realTarget(fs, file);
      const dir = dirOf(target);
      const random = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
      try {
        return new Scratch(sqlite, `${dir}.${target.slice(dir.length)}.${random}.sbw-tmp`, fs);
      } catch {
        // e.g. no write permission on the directory: build the copy in a private temporary file
      }
    }
    return new Scratch(sqlite, null, null);
  }

  #open(): Database {
    const db = this.sqlite.open(this.path ?? "");
    try {
      db.exec("PRAGMA journal_mode=OFF");
    } catch (e) {
      this.#remove(db);
      throw e;
    }
    return db;
  }

  #remove(db: Database): void {
    db.close();
    if (this.path !== null) removeCreated(this.sqlite, this.path);
  }

  /** Throws the current attempt away and starts an empty one. */
  reset(): void {
    this.#remove(this.db);
    this.db = this.#open();
  }

  /** Removes the scratch copy unless it was renamed into place. Never throws. */
  discard(): void {
    if (this.#renamed) return;
    try {
      this.#remove(this.db); // close() is idempotent: the db may be closed already
    } catch {
      // best effort: the caller's result or error is what matters
    }
  }

  /**
   * Renames the verified (committed and synced) copy over `dest` when that is safe, then syncs
   * the directory. False when the copy must be copied into `dest` instead.
   */
  async renameOver(dest: Database | string, destName: string): Promise<boolean> {
    const { fs, path } = this;
    if (fs === null || path === null || typeof dest !== "string" || destName !== "main") return false;
    const target = realTarget(fs, this.sqlite.vfs().fullPathname(dest));
    // Checked in the same synchronous run as the rename: nobody in this realm can open it between.
    if (!this.#replaceable(fs, target)) return false;
    this.db.close();
    try {
      const st = fs.statSync(target, { throwIfNoEntry: false });
      if (st) fs.chmodSync(path, st.mode & 0o7777);
      fs.renameSync(path, target);
    } catch (e) {
      throw new SqliteError(`backup: cannot rename ${path} to ${target}: ${(e as Error).message}`, SQLITE_IOERR);
    }
    this.#renamed = true;
    // Past the commit point: the new content is in place; only its name's durability is left.
    await syncDirectory(fs, dirOf(target));
    return true;
  }

  /**
   * Whether renaming over `target` keeps everything a copy into it would: nobody in this realm
   * has it open (their connections would keep the old file), no journal or WAL beside it (they
   * would be applied to the new file), a single link, our owner and group (a rename cannot keep
   * others), and it is empty or a rollback-journal database (a copy into anything else fails, and
   * into a WAL database keeps it in WAL mode).
   */
  #replaceable(fs: typeof NodeFs, target: string): boolean {
    if (isOpenInRealm(target)) return false;
    const vfs = this.sqlite.vfs();
    if (vfs.access(`${target}-journal`, SQLITE_ACCESS_EXISTS) || vfs.access(`${target}-wal`, SQLITE_ACCESS_EXISTS)) return false;
    const st = fs.statSync(target, { throwIfNoEntry: false });
    if (st === undefined) return true;
    const mine = fs.statSync(this.path!);
    if (!st.isFile() || st.nlink !== 1 || st.uid !== mine.uid || st.gid !== mine.gid) return false;
    if (st.size === 0) return true;
    const { file } = vfs.open(target, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB);
    try {
      const head = new Uint8Array(20);
      if (file.read(head, 0) < head.length) return false;
      return new TextDecoder().decode(head.subarray(0, 16)) === SQLITE_MAGIC && head[18] !== 2 && head[19] !== 2;
    } finally {
      file.close();
    }
  }
}

/** The directory part of an absolute path, with its trailing separator. */
const dirOf = (path: string) => path.slice(0, Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);

/** The file a path names, through symlinks (rename replaces the target, not the link). */
function realTarget(fs: typeof NodeFs, path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path; // does not exist (yet)
  }
}

/** fsync a directory so a renamed-in name is durable; file systems that refuse are ignored, as in node-fs.ts. */
async function syncDirectory(fs: typeof NodeFs, dir: string): Promise<void> {
  let fh: NodeFs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, "r");
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? "";
    if (!["EINVAL", "EISDIR", "EBADF", "EPERM", "EACCES"].includes(code)) {
      throw new SqliteError(`backup: the copy is in place, but syncing ${dir} failed: ${(e as Error).message}`, SQLITE_IOERR_FSYNC);
    }
  } finally {
    await fh?.close();
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
  /** Waits between BUSY retries (default BUSY_DELAYS_MS). */
  busyDelaysMs?: readonly number[];
}

/**
 * The stepping rules of backup() (adaptive steps, restarts grow the step and end in one step,
 * BUSY retried up to busyTimeoutMs, abort, a final progress event), shared with backupToOpfs.
 * Options must have passed checkOptions().
 */
export async function stepLoop(target: StepTarget, options: BackupOptions): Promise<BackupResult> {
  const { pagesPerStep: fixedPages, pauseMs = 0, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, onProgress, signal } = options;
  const { current, guard, busyDelaysMs: busyDelays = BUSY_DELAYS_MS } = target;
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
      await sleep(busyDelays[Math.min(busyTries++, busyDelays.length - 1)]!, signal);
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
