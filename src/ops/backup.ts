// backup(): the everyday call. Over an existing database of the same page size it writes only
// the changed pages, and into a new or empty file every page straight into it (incremental.ts);
// otherwise sqlite3_backup_step (step-loop.ts, a route of driver.ts), straight into the destination, or, for a
// file source that another process may write while this runtime has no real file locks, into a
// scratch copy renamed in once the source guard found it consistent (source-guard.ts, scratch.ts).
import { SQLITE_ACCESS_READ, SQLITE_ERROR, SQLITE_OK, SQLITE_READONLY_ROLLBACK } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { Backup } from "../handles/backup.js";
import { Database, suspendBusyTimeouts } from "../handles/database.js";
import type { Runtime } from "../runtime/runtime.js";
import { incrementalBackup } from "./incremental.js";
import { checkOptions, type BackupOptions, type BackupResult } from "./options.js";
import { lockDestination } from "./dest-lock.js";
import { rollBackAfterFailure } from "./recover.js";
import { plainPath, removeCreated, removeStaleScratch, Scratch } from "./scratch.js";
import { hotJournalError, SourceGuard } from "./source-guard.js";
import { busyDelays } from "./driver.js";
import { stepLoop } from "./step-loop.js";

export async function backup(rt: Runtime, source: Database, dest: Database | string, options: BackupOptions = {}): Promise<BackupResult> {
  checkOptions(options);
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  if (typeof dest !== "string" && !(dest instanceof Database)) throw new TypeError("dest must be a Database or a filename");
  const { sourceName = "main", destName = "main" } = options;
  refuseSameFile(rt, source, sourceName, dest, destName);
  const destFile = destinationFile(rt, dest, destName);
  const unlock = destFile === null ? () => {} : await lockDestination(destFile, options);
  removeStaleScratch(rt, dest, destName); // what killed copies left beside it (scratch.ts)
  let guard: SourceGuard | null = null;
  let resumeBusy = () => {};
  try {
    // BUSY is retried below without blocking the thread, up to options.busyTimeoutMs.
    resumeBusy = suspendBusyTimeouts(rt, [source, dest]);
    guard = sourceGuard(rt, source, options);
    // Over an existing database of the same page size: write only the pages that differ (into a
    // new or empty file: the fresh copy).
    const inc = await incrementalBackup(rt, source, sourceName, dest, destName, guard, options);
    if (inc !== null) return inc;
    if (guard === null) return await copyInto(rt, source, sourceName, dest, destName, options, null);
    // A new file: built in place, recreated for every attempt, removed on failure. An empty
    // in-memory database: built in place, every attempt replacing every page, emptied on failure
    // (a scratch copy would hold the database twice: a 330 MiB file took 700 MiB of heap).
    if (typeof dest === "string" ? isNewFile(rt, dest) : isEmptyInMemory(rt, dest, destName)) {
      return await copyInto(rt, source, sourceName, dest, destName, options, guard);
    }
    return await guardedCopy(rt, source, sourceName, dest, destName, guard, options);
  } catch (e) {
    throw explained(e, rt, source, sourceName);
  } finally {
    guard?.close();
    resumeBusy();
    unlock();
  }
}

/** The file of the default VFS that `dest` names or has open, or null (memory, another VFS). */
function destinationFile(rt: Runtime, dest: Database | string, destName: string): string | null {
  if (typeof dest === "string") return plainPath(dest) ? rt.vfs().fullPathname(dest) : null;
  if (!dest.isOpen || rt.vfsOf(dest.state.ptr, destName) !== rt.vfs()) return null;
  return rt.filename(dest.state.ptr, destName) || null;
}

/**
 * The same file on both sides (by path, through symlinks, or as hard links) is refused at once:
 * a copy would read pages it has just written (SQLite refuses the same connection, not the same file).
 */
function refuseSameFile(rt: Runtime, source: Database, sourceName: string, dest: Database | string, destName: string): void {
  const vfs = rt.vfsOf(source.state.ptr, sourceName);
  const from = rt.filename(source.state.ptr, sourceName);
  if (!vfs || !from) return;
  let to: string;
  if (typeof dest === "string") {
    if (!plainPath(dest) || vfs !== rt.vfs()) return;
    to = vfs.fullPathname(dest);
  } else {
    if (!dest.isOpen || rt.vfsOf(dest.state.ptr, destName) !== vfs) return;
    to = rt.filename(dest.state.ptr, destName);
    if (!to) return;
  }
  const a = vfs.fileId?.(from) ?? from;
  const b = vfs.fileId?.(to) ?? to;
  if (a !== null && a === b) {
    throw new SqliteError(`backup: the source ${from} and the destination ${to} are the same file`, SQLITE_ERROR);
  }
}

/** An error that names its real cause: a read-only source whose hot journal cannot be rolled back. */
function explained(e: unknown, rt: Runtime, source: Database, sourceName: string): unknown {
  if (!(e instanceof SqliteError) || e.extendedCode !== SQLITE_READONLY_ROLLBACK || e.message.includes("hot journal")) return e;
  return hotJournalError(source.isOpen ? rt.filename(source.state.ptr, sourceName) : "", e.message);
}

/** The source guard a backup of `source` needs, if any (source-guard.ts). */
export function sourceGuard(rt: Runtime, source: Database, options: BackupOptions): SourceGuard | null {
  // With real file locks other processes' writers wait for our reads and SQLite restarts on their
  // commits by itself: the guard is only for the in-process lock table.
  return options.verifySource === false || rt.locking === "os" ? null : SourceGuard.for(rt, source, options.sourceName ?? "main");
}

/** An open in-memory database (no file behind it) of no pages: a guarded copy into it endangers nothing. */
function isEmptyInMemory(rt: Runtime, dest: Database, destName: string): boolean {
  if (!dest.isOpen || rt.filename(dest.state.ptr, destName) !== "") return false;
  try {
    return schemaPragma(dest, destName, "page_count") === 0;
  } catch {
    return false; // no such schema: the Backup says so
  }
}

/** A number PRAGMA of one schema of `db` (page_count, page_size). */
function schemaPragma(db: Database, schema: string, name: "page_count" | "page_size"): number {
  return db.get<Record<string, number>>(`PRAGMA "${schema.replace(/"/g, '""')}".${name}`)![name]!;
}

/** A plain path to a file that does not exist (yet). */
function isNewFile(rt: Runtime, dest: string): boolean {
  const vfs = rt.vfs();
  return plainPath(dest) && !vfs.access(vfs.fullPathname(dest), SQLITE_ACCESS_READ);
}

/**
 * A stepped copy straight into the destination (SQLite rolls it back on failure). With a guard
 * only into a file this call creates, where an attempt the guard abandons starts over in a new
 * file, or into an empty in-memory database, which the next attempt overwrites page by page and
 * a failure empties again.
 */
async function copyInto(rt: Runtime, source: Database, sourceName: string, dest: Database | string, destName: string,
  options: BackupOptions, guard: SourceGuard | null): Promise<BackupResult> {
  // A destination given by name is ours: opened here, closed here, and removed again on failure
  // if this call created it.
  let own: { db: Database; path: string | null } | null = null;
  let destDb: Database;
  if (typeof dest === "string") {
    const vfs = rt.vfs();
    const path = plainPath(dest) ? vfs.fullPathname(dest) : null;
    const created = path !== null && !vfs.access(path, SQLITE_ACCESS_READ);
    destDb = new Database(rt, dest);
    own = { db: destDb, path: created ? path : null };
  } else {
    destDb = dest;
  }

  let handle: Backup | undefined;
  let restoreSpill = () => {};
  try {
    const init = () => {
      restoreSpill(); // a restart on the same destination raises it again
      restoreSpill = raiseSpill(rt, destDb, destName, source, sourceName);
      handle = new Backup(rt, destDb, destName, source, sourceName);
    };
    init();
    const restart = () => {
      if (own === null) return init(); // in memory: every page of the torn copy is replaced
      // The abandoned attempt may have committed a torn copy: never copy over it.
      own.db.close();
      removeCreated(rt, own.path!);
      own.db = destDb = new Database(rt, dest as string);
      init();
    };
    const destVfs = rt.vfsOf(destDb.state.ptr, destName);
    const result = await stepLoop({
      current: () => handle!,
      restart: guard ? restart : init,
      guard,
      afterStep: destVfs?.settle?.bind(destVfs),
      writeBack: destVfs?.writeBack?.bind(destVfs),
      busyDelaysMs: busyDelays(rt.locking, guard),
      lockedWhat: `the source ${rt.filename(source.state.ptr, sourceName) || "(in memory)"} or the destination ${rt.filename(destDb.state.ptr, destName) || "(in memory)"}`,
    }, options);
    handle!.finish();
    restoreSpill();
    syncWal(rt, destDb, destName);
    own?.db.close();
    return result;
  } catch (e) {
    handle?.[Symbol.dispose](); // finish before DONE: SQLite rolls the destination back
    rollBackAfterFailure(destDb, destName);
    restoreSpill();
    if (guard && !own) {
      try {
        emptyAgain(rt, destDb, destName); // an abandoned attempt may have committed
      } catch {
        // Out of memory here too: the error that stopped the copy is the one to report.
      }
    }
    if (own) {
      own.db.close();
      if (own.path !== null) removeCreated(rt, own.path);
    }
    throw e;
  }
}

/** Makes an in-memory database that held no pages an empty database again (one page, no schema). */
function emptyAgain(rt: Runtime, dest: Database, destName: string): void {
  if (!dest.isOpen || schemaPragma(dest, destName, "page_count") === 0) return;
  const empty = new Database(rt, ":memory:");
  try {
    const copy = new Backup(rt, dest, destName, empty, "main");
    try {
      copy.step(-1);
    } finally {
      copy.finish();
    }
  } finally {
    empty.close();
  }
}

/**
 * Over an existing database every spill of the destination's cache syncs its journal first, and
 * by default the cache spills every 2 MiB of pages: a full copy over a 300 MiB file took
 * 2.6-3.2 s so, 2.1-2.2 s with spills every 32 MiB (Node 26, real locks; the backup API as
 * native SQLite runs it, through our VFS). So for the copy the threshold is at least SPILL_BYTES
 * of the source's pages; the returned function sets the connection's own value back. A new or
 * empty destination journals nothing and keeps its threshold (the cache would only grow).
 */
const SPILL_BYTES = 32 << 20;
function raiseSpill(rt: Runtime, dest: Database, destName: string, source: Database, sourceName: string): () => void {
  // No file of ours (memory, no such schema: the Backup says so), or an empty one.
  if (!(rt.fileOf(dest.state.ptr, destName)?.size())) return () => {};
  // Page sizes as the connections read them at open (no lock, no I/O); the copy gives the
  // destination the source's, so the larger of the two bounds the memory.
  const raised = Math.ceil(SPILL_BYTES / Math.max(schemaPragma(source, sourceName, "page_size"), schemaPragma(dest, destName, "page_size")));
  const set = (n: number) => rt.heap.scoped((s) => rt.capi.sbw_cache_spill(dest.state.ptr, s.cstring(destName)[0], n));
  const old = set(raised);
  if (old > raised) set(old);
  return () => {
    if (dest.isOpen) set(old);
  };
}

/**
 * Makes a WAL destination's commit durable (wasm/pagediff.c sbw_sync_wal: this build's WAL
 * default, synchronous=NORMAL, syncs at checkpoints only). A failure rejects the backup, whose
 * content is committed but not yet durable, as an I/O error after the commit point does.
 */
function syncWal(rt: Runtime, db: Database, schema: string): void {
  rt.enter();
  const rc = rt.heap.scoped((s) => rt.capi.sbw_sync_wal(db.state.ptr, s.cstring(schema)[0]));
  if (rc !== SQLITE_OK) throw rt.errorFromCode(rc, "backup: the copy is committed, but syncing the destination's WAL failed");
}

/**
 * A copy of a source another process may write (the source guard, docs/reliability.md): the
 * copy goes into a scratch database, fresh for every attempt, and reaches the destination only
 * once the guard found it to be a committed state: renamed over a destination file where that is
 * safe, otherwise copied into the destination (one in-process backup, which nobody can tear).
 */
async function guardedCopy(rt: Runtime, source: Database, sourceName: string, dest: Database | string, destName: string,
  guard: SourceGuard, options: BackupOptions): Promise<BackupResult> {
  const start = performance.now();
  const scratch = Scratch.create(rt, dest, destName);
  let handle: Backup | undefined;
  try {
    const init = () => (handle = new Backup(rt, scratch.db, "main", source, sourceName));
    init();
    const restart = () => {
      scratch.reset(); // an abandoned attempt may have committed a torn copy (journal_mode=OFF)
      init();
    };
    // The scratch file's pages written back off the thread before the commit syncs it.
    const writeBack = scratch.path === null ? undefined : rt.vfs().writeBack?.bind(rt.vfs());
    const result = await stepLoop({ current: () => handle!, restart, guard, writeBack, lockedWhat: `the source ${guard.path}` }, options);
    handle!.finish();
    if (!(await scratch.renameOver(dest, destName))) {
      // Progress was reported for the copy from the source; this one is local and cannot restart.
      const second = await copyInto(rt, scratch.db, "main", dest, destName, { ...options, onProgress: undefined }, null);
      result.steps += second.steps;
    }
    result.elapsedMs = performance.now() - start;
    return result;
  } catch (e) {
    handle?.[Symbol.dispose]();
    throw e;
  } finally {
    scratch.discard();
  }
}
