// Incremental backup: over a destination that is already a database with the source's page size,
// compare every page and write only the differing ones, in one write transaction on the
// destination (wasm/pagediff.c does the compare and the writes); into an empty one, write every
// page straight into the file (the fresh copy). The result is byte-for-byte what a full backup
// over the same destination gives. The loop is paced by backup()'s rules (step-loop.ts Pacing:
// chunks sized to ~TARGET_STEP_MS, yields between them, BUSY retried up to busyTimeoutMs, restarts
// bounded); abort and every failure roll back.
import {
  SQLITE_ACCESS_READ, SQLITE_BUSY, SQLITE_DONE, SQLITE_ERROR, SQLITE_LOCKED, SQLITE_OK, SQLITE_READONLY_ROLLBACK,
} from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { Backup } from "../handles/backup.js";
import { Database } from "../handles/database.js";
import type { Runtime } from "../runtime/runtime.js";
import type { BackupOptions, BackupResult } from "./options.js";
import { rollBackAfterFailure } from "./recover.js";
import { plainPath, removeCreated } from "./scratch.js";
import type { SourceGuard, Stamp } from "./source-guard.js";
import { busyDelays, lockedTooLong, Pacing } from "./step-loop.js";

// wasm/pagediff.c's extra results and info selectors.
const WAIT = -1;
const RESTART = -2;
const INFO_PAGES = 0;
const INFO_NEXT = 1;
const INFO_WRITTEN = 2;
const INFO_COMPARED = 3;
const INFO_REASON = 4;
const INFO_ERR_DEST = 5;
const INFO_PAGE_SIZE = 6;
const INFO_WINDOW_PAGES = 7;
const INFO_FRESH = 8;
const INFO_AHEAD_FIRST = 9;
const INFO_AHEAD_PAGES = 10;
/** Changed pages kept in the destination's cache before they go to its file between chunks (see flush()). */
const FLUSH_BYTES = 8 << 20;
/**
 * A chunk's most bytes when the destination's pages come from another thread (Vfs.prefetch: the
 * browser relay): its blocks are then few enough to be reused from chunk to chunk. A new 1 MiB
 * buffer per block cost ~0.5 ms, more than comparing the block, and chunks of 16 MiB and more
 * (what 4 ms of compare grows to) left the compare waiting for blocks most of the time.
 */
const PREFETCH_CHUNK_BYTES = 4 << 20;
/**
 * @internal Replicas (ops/replica/): a function set here for a destination is called with the
 * compare's handle just before its commit, to read the pages written (sbw_pagediff_pgnos()).
 */
export const beforeCommit = new WeakMap<Database, (p: number) => void>();
const REASONS = [
  "",
  "the source is empty",
  "the destination is empty",
  "the page sizes differ",
  "the destination's page 1 says WAL mode but its connection does not use a WAL (in memory, …)",
  "the destination is in full auto-vacuum mode and the source has free pages",
  "the destination connection is in defensive mode (SQLITE_DBCONFIG_DEFENSIVE)",
  "the destination is read-only",
];

/**
 * Runs an incremental backup when `options.incremental` allows it and the destination qualifies.
 * Resolves null when the caller must make a full copy instead (incremental false, or "auto" and
 * the destination does not qualify: another page size, …; a WAL destination qualifies, see
 * wasm/pagediff.c). With "auto", an empty or missing destination (a plain path) gets the fresh
 * copy there instead: the same loop and rules, no compare, the pages written straight into the
 * file (result `incremental: false`). With incremental true a destination that does not qualify
 * is a SqliteError (SQLITE_ERROR).
 */
export async function incrementalBackup(rt: Runtime, source: Database, sourceName: string, dest: Database | string,
  destName: string, guard: SourceGuard | null, options: BackupOptions): Promise<BackupResult | null> {
  const mode = options.incremental ?? "auto";
  if (mode === false) return null;
  const decline = (why: string) => {
    if (mode === true) throw new SqliteError(`backup: incremental: true, but ${why}`, SQLITE_ERROR);
    return null;
  };
  let destDb: Database;
  let own = false;
  // A new file ("auto" only) gets the fresh copy (wasm/pagediff.c): created here, removed again
  // unless the copy succeeds.
  let created: string | null = null;
  if (typeof dest === "string") {
    const vfs = rt.vfs();
    const path = vfs.fullPathname(dest);
    const exists = plainPath(dest) && vfs.access(path, SQLITE_ACCESS_READ);
    if (!exists && (mode !== "auto" || !plainPath(dest))) return decline("the destination is not an existing file");
    destDb = new Database(rt, dest, { create: !exists });
    own = true;
    if (!exists) created = path;
  } else destDb = dest;
  let validated: Disposable | undefined;
  let done = false;
  try {
    // backupInit() checks what the full copy would (distinct connections, destination not in use,
    // known schemas) with the same errors. Never stepped, it holds no lock and copies nothing.
    validated = new Backup(rt, destDb, destName, source, sourceName);
    const result = await compareAndWrite(rt, source, sourceName, destDb, destName, guard, options, mode === "auto");
    if (typeof result === "string") return decline(result);
    done = true;
    return result;
  } finally {
    validated?.[Symbol.dispose]();
    if (!done) rollBackAfterFailure(destDb, destName);
    if (own) destDb.close();
    if (created !== null && !done) removeCreated(rt, created);
  }
}

/** The compare loop; a string says why the destination does not qualify. */
async function compareAndWrite(rt: Runtime, source: Database, sourceName: string, dest: Database, destName: string,
  guard: SourceGuard | null, options: BackupOptions, auto: boolean): Promise<BackupResult | string> {
  const { onProgress, signal } = options;
  const { capi, heap } = rt;
  const start = performance.now();
  const pacing = new Pacing(options, busyDelays(rt.locking, guard));
  /** Another process is mid-commit on the source: its journal is live, or SQLite would not roll that back (read-only). */
  const writerMidCommit = (before: Stamp | null, error: unknown) => {
    const readOnlyRollback = guard !== null && error instanceof SqliteError && error.extendedCode === SQLITE_READONLY_ROLLBACK;
    if (readOnlyRollback && before?.hot) throw guard.hotJournal();
    return (before?.writerActive === true && !before.hot) || readOnlyRollback;
  };
  /** The error once BUSY has lasted busyTimeoutMs, on the source (by another process's writer, or not) or the destination. */
  const tooLong = (on: "writer" | "source" | "destination") => (ms: number) => on === "writer"
    ? guard!.gaveUp(ms, "stayed inside a write transaction on")
    : lockedTooLong(`the ${on} ${rt.filename((on === "source" ? source : dest).state.ptr, on === "source" ? sourceName : destName) || "(in memory)"}`, ms);
  /** The compare's handle, or the error of the connection it failed on (source: onSource). */
  const open = () => heap.scoped((s) => {
    const pp = s.out();
    const pErrDest = s.out();
    rt.enter();
    const rc = capi.sbw_pagediff_open(source.state.ptr, s.cstring(sourceName)[0], dest.state.ptr, s.cstring(destName)[0], pp, pErrDest);
    if (rc === SQLITE_OK) return { p: heap.i32(pp) };
    const onSource = heap.i32(pErrDest) === 0;
    return { error: rt.errorFromCall(rc, (onSource ? source : dest).state.ptr), onSource };
  });
  let p = 0;
  while (p === 0) {
    // Preparing the scans reads the source's schema: a writer may hold it (wait, as for the
    // compare's reads below), and without real locks another process's commit can tear that read.
    const before = guard?.stamp() ?? null;
    const t0 = performance.now();
    const r = open();
    if (r.p !== undefined) p = r.p;
    else if (r.onSource && writerMidCommit(before, r.error)) await pacing.busy(t0, tooLong("writer"));
    else if (r.error.code === SQLITE_BUSY || r.error.code === SQLITE_LOCKED) await pacing.busy(t0, tooLong(r.onSource ? "source" : "destination"));
    else if (r.onSource && guard?.tornRead(r.error, before!)) {
      pacing.changing(t0, (ms) => guard.gaveUp(ms, "kept writing"));
      pacing.restarted();
    } else throw r.error;
  }
  const info = (op: number) => capi.sbw_pagediff_info(p, op) >>> 0;
  // "auto" over an empty destination: the fresh copy, no compare (wasm/pagediff.c fresh_qualifies()).
  if (auto) capi.sbw_pagediff_fresh(p, 1);
  // An error of the last call, from the connection it happened on (before any rollback resets it).
  const failure = (rc: number) => {
    const db = info(INFO_ERR_DEST) ? dest : source;
    return db.isOpen ? rt.errorFromCall(rc, db.state.ptr) : new Error("the backup is finished (its database was closed)");
  };
  let ahead: Promise<void> | null = null;
  try {
    let steps = 0;
    let begun = false;
    // The source guard (another process writing a file source): the stamp this pass began from.
    let startStamp: Stamp | null = null;
    const destVfs = rt.vfsOf(dest.state.ptr, destName);
    const destPath = destVfs?.prefetch ? rt.filename(dest.state.ptr, destName) : "";
    /** Lets the destination's VFS fetch what the next chunk reads: whole windows of pages from
     *  the one holding the next page (begun at most a window earlier) to a window past the chunk. */
    const prefetch = (n: number) => {
      const size = info(INFO_PAGE_SIZE);
      const next = info(INFO_NEXT);
      const win = info(INFO_WINDOW_PAGES);
      return destVfs!.prefetch!(destPath, Math.max(0, next - win) * size, n < 0 ? Infinity : (next - 1 + n + win) * size);
    };
    // A destination file that can read off this thread (NodeFsVfs): the pages after this chunk (up
    // to twice its size: the next chunk may be larger) are read in the thread pool while this
    // thread compares, so both files are read at once (reading them was most of the time). One
    // read at a time; the finally below waits for it before the close frees its buffer.
    const destFile = rt.fileOf(dest.state.ptr, destName);
    const readAsync = destFile?.readAsync;
    const readAhead = (n: number): Promise<void> | null => {
      const ptr = readAsync && n > 0 ? capi.sbw_pagediff_ahead(p, info(INFO_NEXT) + n, 2 * n) : 0;
      if (ptr === 0) return null;
      const size = info(INFO_PAGE_SIZE);
      const memory = rt.heap.u8;
      // The claim made room in the heap for what the chunk compared meanwhile allocates, so the
      // memory does not grow (and, in an engine that moves a growing memory, move) under the
      // read. If it grew anyway, the view detached and the read may have stopped short: it is
      // dropped (wasm/pagediff.c then reads those pages itself).
      return readAsync!(memory.subarray(ptr, ptr + info(INFO_AHEAD_PAGES) * size), (info(INFO_AHEAD_FIRST) - 1) * size)
        .then((bytes) => capi.sbw_pagediff_ahead_done(p, rt.heap.u8 === memory ? bytes : -1), () => capi.sbw_pagediff_ahead_done(p, -1));
    };
    /** Before every call into the compare: not aborted, both databases still open. */
    const ready = () => {
      signal?.throwIfAborted();
      if (!source.isOpen || !dest.isOpen) throw new Error("the backup is finished (its database was closed)");
      rt.enter();
    };
    // The pages written so far wait in the destination's cache: they go to its file here, after
    // its journal (which must be durable before them) was written back off the thread, so that
    // what syncs them runs off the thread too. Else a spill inside a chunk, or the COMMIT, syncs
    // on it: at 1% of 330 MiB changed the COMMIT blocked the event loop for 24-34 ms, at 10%
    // 64-91 ms, and spills 18-22 ms (bench/event-loop.mjs over the previous backup).
    let flushedAt = 0;
    const flush = async () => {
      await destVfs!.writeBack!();
      ready();
      const rc = capi.sbw_pagediff_flush(p);
      if (rc !== SQLITE_OK) throw failure(rc);
      flushedAt = info(INFO_WRITTEN);
    };
    for (;;) {
      if (ahead) await ahead;
      ahead = null;
      // The compare reads the destination (not the fresh copy) through blocks fetched ahead.
      const fetching = begun && destPath !== "" && info(INFO_FRESH) === 0;
      const n = pacing.size(fetching ? PREFETCH_CHUNK_BYTES / info(INFO_PAGE_SIZE) : undefined);
      if (fetching) await prefetch(n);
      ready();
      const before = guard?.stamp() ?? null;
      const t0 = performance.now();
      let rc: number;
      if (before?.writerActive && !before.hot) rc = WAIT; // another process is mid-transaction: do not read under it
      else if (!begun) {
        guard?.refreshWalIndex();
        rc = capi.sbw_pagediff_begin(p);
        if (rc === SQLITE_OK) {
          const reason = info(INFO_REASON);
          if (reason !== 0) return REASONS[reason] ?? `reason ${reason}`;
          begun = true;
          startStamp = before;
          continue;
        }
      } else {
        ahead = readAhead(n);
        rc = capi.sbw_pagediff_step(p, n);
        steps++;
      }
      const dt = performance.now() - t0;
      // A failure, as the connection it happened on reports it (before anything resets it).
      const error = rc > 0 && rc !== SQLITE_DONE ? failure(rc) : null;
      const onSource = error !== null && info(INFO_ERR_DEST) === 0;
      const code = error instanceof SqliteError ? error.code : 0;
      // BEGIN EXCLUSIVE found the destination locked.
      const lockedOut = error !== null && !onSource && !begun && code === SQLITE_BUSY;
      // A writer keeps the source's read lock out (a rollback-journal source is read a chunk at a
      // time, see wasm/pagediff.c), or, without real locks, another process is mid-commit.
      const writerBusy = (before?.writerActive === true && !before.hot) || (onSource && writerMidCommit(before, error));
      const sourceBusy = writerBusy || (onSource && (code === SQLITE_BUSY || code === SQLITE_LOCKED));
      // A destination in use: BEGIN EXCLUSIVE cannot hold PENDING between tries, so readers
      // polling it could keep it out forever; the full copy (which can) takes over.
      if (lockedOut && auto) return "the destination is in use by another connection";
      if (rc === WAIT || lockedOut || sourceBusy) {
        if (!begun) {
          steps++; // a retried attempt counts as a step, as in stepLoop (a chunk counted already)
          capi.sbw_pagediff_rewind(p); // nothing held while it waits: begin() may have opened the destination's transaction
        }
        await pacing.busy(t0, tooLong(writerBusy ? "writer" : lockedOut ? "destination" : "source"));
        continue;
      }
      // Without real locks, pages another process was rewriting can read as corrupt: copy again.
      const torn = onSource && guard !== null && guard.tornRead(error, startStamp ?? before!);
      if (error !== null && !torn) throw error;
      pacing.through();
      // Another process wrote the source during this pass: what was read may be torn.
      const otherWriter = torn || (startStamp !== null && rc !== RESTART && guard!.changedSince(startStamp));
      if (rc === RESTART || otherWriter) {
        if (otherWriter) {
          pacing.changing(t0, (ms) => guard!.gaveUp(ms, "kept writing"));
        }
        capi.sbw_pagediff_rewind(p); // a fresh snapshot; the destination's writes so far are rolled back
        flushedAt = 0;
        begun = false;
        pacing.restarted();
        continue;
      }
      await destVfs?.settle?.(); // a VFS that hands writes on (the browser relay) keeps up
      if (rc === SQLITE_DONE) break;
      // The fresh copy writes its pages straight into the file (and the write-behind syncs them).
      if (destVfs?.writeBack && info(INFO_FRESH) === 0 && (info(INFO_WRITTEN) - flushedAt) * info(INFO_PAGE_SIZE) >= FLUSH_BYTES) await flush();
      const pageCount = info(INFO_PAGES);
      pacing.adapt(dt);
      // Page 1 is written last (wasm/pagediff.c), so it counts as remaining until the end: a step
      // of n pages moves the count by n, as the backup API's does.
      await pacing.progress(pageCount - info(INFO_NEXT) + 2, pageCount);
      await pacing.pause();
    }
    // Everything is compared and written: commit, after the VFS wrote back what it can off-thread
    // (the pages flushed just before, too).
    if (destVfs?.writeBack) {
      await flush();
      await destVfs.writeBack();
    }
    ready();
    beforeCommit.get(dest)?.(p);
    const committed = capi.sbw_pagediff_commit(p);
    if (committed !== SQLITE_OK) throw failure(committed);
    const pageCount = info(INFO_PAGES);
    await onProgress?.({ remaining: 0, pageCount });
    // The fresh copy reports what a full copy does.
    const fresh = info(INFO_FRESH) !== 0;
    return {
      pageCount, steps, restarts: pacing.restarts, elapsedMs: performance.now() - start,
      pagesWritten: fresh ? pageCount : info(INFO_WRITTEN), pagesCompared: info(INFO_COMPARED), incremental: !fresh,
    };
  } finally {
    await ahead; // its buffer is freed by the close (a read ahead never rejects)
    capi.sbw_pagediff_close(p); // rolls the destination back unless committed; frees everything
  }
}
