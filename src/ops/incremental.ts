// Incremental backup: over a destination that is already a database with the source's page size,
// compare every page and write only the differing ones, in one write transaction on the
// destination (wasm/pagediff.c does the compare and the writes); into an empty one, write every
// page straight into the file (the fresh copy). The result is byte-for-byte what a full backup
// over the same destination gives. The compare is a route of the driver (driver.ts: chunks sized
// to ~TARGET_STEP_MS, yields between them, BUSY retried up to busyTimeoutMs, the source guard,
// restarts bounded); abort and every failure roll back.
import {
  SQLITE_ACCESS_READ, SQLITE_BUSY, SQLITE_DONE, SQLITE_ERROR, SQLITE_LOCKED, SQLITE_OK, SQLITE_READONLY_ROLLBACK,
} from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import {
  SBW_DEST_AUTOVACUUM, SBW_DEST_DEFENSIVE, SBW_DEST_READONLY, SBW_DEST_WAL, SBW_INFO_AHEAD_FIRST, SBW_INFO_AHEAD_PAGES,
  SBW_INFO_COMPARED, SBW_INFO_ERR_DEST, SBW_INFO_FRESH, SBW_INFO_NEXT, SBW_INFO_PAGE_SIZE, SBW_INFO_PAGES, SBW_INFO_REASON,
  SBW_INFO_WINDOW_PAGES, SBW_INFO_WRITTEN, SBW_NO_DEST_PAGES, SBW_NO_SOURCE_PAGES, SBW_PAGE_SIZE_DIFFERS, SBW_RESTART, SBW_WAIT,
} from "../core/pagediff-constants.js";
import { Backup } from "../handles/backup.js";
import { Database } from "../handles/database.js";
import type { Runtime } from "../runtime/runtime.js";
import type { BackupOptions, BackupResult } from "./options.js";
import { rollBackAfterFailure } from "./recover.js";
import { plainPath, removeCreated } from "./scratch.js";
import { busyDelays, drive, Pacing, type Outcome, type Route } from "./driver.js";
import type { SourceGuard } from "./source-guard.js";

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
 * @internal Replicas (ops/replica/): hooks set here for a destination are called with the
 * compare's handle once it is open (to give it a hint, sbw_pagediff_hint()) and just before its
 * commit (to read the pages written, sbw_pagediff_pgnos()).
 */
export const replicaHooks = new WeakMap<Database, { opened(p: number): void; beforeCommit(p: number): void }>();
/** What each of wasm/pagediff.c's reasons means to a user. */
const REASONS: Record<number, string> = {
  [SBW_NO_SOURCE_PAGES]: "the source is empty",
  [SBW_NO_DEST_PAGES]: "the destination is empty",
  [SBW_PAGE_SIZE_DIFFERS]: "the page sizes differ",
  [SBW_DEST_WAL]: "the destination's page 1 says WAL mode but its connection does not use a WAL (in memory, …)",
  [SBW_DEST_AUTOVACUUM]: "the destination is in full auto-vacuum mode and the source has free pages",
  [SBW_DEST_DEFENSIVE]: "the destination connection is in defensive mode (SQLITE_DBCONFIG_DEFENSIVE)",
  [SBW_DEST_READONLY]: "the destination is read-only",
};
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
    const result = await compareAndWrite(rt, source, sourceName, destDb, destName, guard, options, mode === "auto")
      .catch((e) => (e instanceof Declined ? e : Promise.reject(e)));
    if (result instanceof Declined) return decline(result.reason);
    done = true;
    return result;
  } finally {
    validated?.[Symbol.dispose]();
    if (!done) rollBackAfterFailure(destDb, destName);
    if (own) destDb.close();
    if (created !== null && !done) removeCreated(rt, created);
  }
}

/** Why a destination does not qualify for the compare (a full copy serves it instead). */
export class Declined extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The compare as a route of the driver (driver.ts). Throws Declined when the destination does not qualify. */
async function compareAndWrite(rt: Runtime, source: Database, sourceName: string, dest: Database, destName: string,
  guard: SourceGuard | null, options: BackupOptions, auto: boolean): Promise<BackupResult> {
  const { signal } = options;
  const { capi, heap } = rt;
  const start = performance.now();
  const pacing = new Pacing(options, busyDelays(rt.locking, guard));
  let p = 0;
  let begun = false;
  const info = (op: number) => capi.sbw_pagediff_info(p, op) >>> 0;
  /** Before every call into the compare: not aborted, both databases still open. */
  const ready = () => {
    signal?.throwIfAborted();
    if (!source.isOpen || !dest.isOpen) throw new Error("the backup is finished (its database was closed)");
    rt.enter();
  };
  /** What failed, on the connection it happened on (before any rollback resets it); `onSource` from `errDest`. */
  const failed = (rc: number, onSource: boolean): Outcome => {
    const db = onSource ? source : dest;
    if (!db.isOpen) return { kind: "failed", error: new Error("the backup is finished (its database was closed)"), onSource };
    const error = rt.errorFromCall(rc, db.state.ptr);
    if (error.code === SQLITE_BUSY || error.code === SQLITE_LOCKED) {
      // A writer keeps the source's read lock out (a rollback-journal source is read a chunk at a
      // time, see wasm/pagediff.c), or the destination is in use.
      if (!onSource && !begun && error.code === SQLITE_BUSY) {
        // BEGIN EXCLUSIVE cannot hold PENDING between tries, so readers polling the destination
        // could keep it out forever; with "auto" the full copy (which can) takes over.
        if (auto && p !== 0) throw new Declined("the destination is in use by another connection");
      }
      if (p !== 0 && !begun) capi.sbw_pagediff_rewind(p); // nothing held while it waits
      return { kind: "busy", on: onSource ? "source" : "destination", code: error.code };
    }
    if (p !== 0 && !begun && onSource && error.extendedCode === SQLITE_READONLY_ROLLBACK) capi.sbw_pagediff_rewind(p);
    return { kind: "failed", error, onSource };
  };
  /** Prepares the compare's statements (they read the source's schema); its handle, or what failed. */
  const open = (): Outcome => heap.scoped((s) => {
    const pp = s.out();
    const pErrDest = s.out();
    ready();
    const rc = capi.sbw_pagediff_open(source.state.ptr, s.cstring(sourceName)[0], dest.state.ptr, s.cstring(destName)[0], pp, pErrDest);
    if (rc !== SQLITE_OK) return failed(rc, heap.i32(pErrDest) === 0);
    p = heap.i32(pp);
    // "auto" over an empty destination: the fresh copy, no compare (wasm/pagediff.c fresh_qualifies()).
    if (auto) capi.sbw_pagediff_fresh(p, 1);
    replicaHooks.get(dest)?.opened(p);
    return { kind: "began" };
  });
  const destVfs = rt.vfsOf(dest.state.ptr, destName);
  const destPath = destVfs?.prefetch ? rt.filename(dest.state.ptr, destName) : "";
  // The compare reads the destination (not the fresh copy) through blocks fetched ahead.
  const fetching = () => begun && destPath !== "" && info(SBW_INFO_FRESH) === 0;
  // A destination file that can read off this thread (NodeFsVfs): the pages after this chunk (up
  // to twice its size: the next chunk may be larger) are read in the thread pool while this
  // thread compares, so both files are read at once (reading them was most of the time). One
  // read at a time; the finally below waits for it before the close frees its buffer.
  const readAsync = rt.fileOf(dest.state.ptr, destName)?.readAsync;
  let ahead: Promise<void> | null = null;
  const readAhead = (n: number): Promise<void> | null => {
    const ptr = readAsync && n > 0 ? capi.sbw_pagediff_ahead(p, info(SBW_INFO_NEXT) + n, 2 * n) : 0;
    if (ptr === 0) return null;
    const size = info(SBW_INFO_PAGE_SIZE);
    const memory = rt.heap.u8;
    // The claim made room in the heap for what the chunk compared meanwhile allocates, so the
    // memory does not grow (and, in an engine that moves a growing memory, move) under the
    // read. If it grew anyway, the view detached and the read may have stopped short: it is
    // dropped (wasm/pagediff.c then reads those pages itself).
    return readAsync!(memory.subarray(ptr, ptr + info(SBW_INFO_AHEAD_PAGES) * size), (info(SBW_INFO_AHEAD_FIRST) - 1) * size)
      .then((bytes) => capi.sbw_pagediff_ahead_done(p, rt.heap.u8 === memory ? bytes : -1), () => capi.sbw_pagediff_ahead_done(p, -1));
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
    if (rc !== SQLITE_OK) throw rt.errorFromCall(rc, (info(SBW_INFO_ERR_DEST) ? dest : source).state.ptr);
    flushedAt = info(SBW_INFO_WRITTEN);
  };
  const route: Route = {
    cap: () => (fetching() ? PREFETCH_CHUNK_BYTES / info(SBW_INFO_PAGE_SIZE) : undefined),
    async prepare(n) {
      if (ahead) await ahead;
      ahead = null;
      // Lets the destination's VFS fetch what the next chunk reads: whole windows of pages from
      // the one holding the next page (begun at most a window earlier) to a window past the chunk.
      if (fetching()) {
        const size = info(SBW_INFO_PAGE_SIZE);
        const next = info(SBW_INFO_NEXT);
        const win = info(SBW_INFO_WINDOW_PAGES);
        await destVfs!.prefetch!(destPath, Math.max(0, next - win) * size, n < 0 ? Infinity : (next - 1 + n + win) * size);
      }
    },
    step(n) {
      if (p === 0) return open();
      ready();
      if (!begun) {
        const rc = capi.sbw_pagediff_begin(p);
        if (rc === SBW_WAIT) {
          capi.sbw_pagediff_rewind(p); // nothing held while it waits
          return { kind: "busy", on: "source" };
        }
        if (rc !== SQLITE_OK) return failed(rc, info(SBW_INFO_ERR_DEST) === 0);
        const reason = info(SBW_INFO_REASON);
        if (reason !== 0) throw new Declined(REASONS[reason] ?? `reason ${reason}`);
        begun = true;
        return { kind: "began" };
      }
      ahead = readAhead(n);
      const rc = capi.sbw_pagediff_step(p, n);
      if (rc === SBW_RESTART) return { kind: "restart" };
      if (rc === SBW_WAIT) return { kind: "busy", on: "source" }; // a connection of ours is writing the source
      if (rc !== SQLITE_OK && rc !== SQLITE_DONE) return failed(rc, info(SBW_INFO_ERR_DEST) === 0);
      const pageCount = info(SBW_INFO_PAGES);
      if (rc === SQLITE_DONE) return { kind: "done", pageCount };
      // Page 1 is written last (wasm/pagediff.c), so it counts as remaining until the end: a step
      // of n pages moves the count by n, as the backup API's does.
      return { kind: "copied", remaining: pageCount - info(SBW_INFO_NEXT) + 2, pageCount };
    },
    rewind() {
      if (p === 0) return;
      capi.sbw_pagediff_rewind(p); // a fresh snapshot; the destination's writes so far are rolled back
      flushedAt = 0;
      begun = false;
    },
    async settle() {
      await destVfs?.settle?.(); // a VFS that hands writes on (the browser relay) keeps up
      // The fresh copy writes its pages straight into the file (and the write-behind syncs them).
      if (destVfs?.writeBack && info(SBW_INFO_FRESH) === 0 && (info(SBW_INFO_WRITTEN) - flushedAt) * info(SBW_INFO_PAGE_SIZE) >= FLUSH_BYTES) await flush();
    },
    async commit() {
      ready();
      replicaHooks.get(dest)?.beforeCommit(p);
      const rc = capi.sbw_pagediff_commit(p);
      if (rc !== SQLITE_OK) throw rt.errorFromCall(rc, (info(SBW_INFO_ERR_DEST) ? dest : source).state.ptr);
    },
    lockedWhat: (on) => on === "destination"
      ? `the destination ${rt.filename(dest.state.ptr, destName) || "(in memory)"}`
      : `the source ${rt.filename(source.state.ptr, sourceName) || "(in memory)"}`,
  };
  // Everything compared and written: the commit comes after the VFS wrote back what it can
  // off-thread (the pages flushed just before, too).
  if (destVfs?.writeBack) {
    route.writeBack = async () => {
      await flush();
      await destVfs.writeBack!();
    };
  }
  try {
    const { pageCount, steps, restarts } = await drive(route, guard, pacing);
    // The fresh copy reports what a full copy does.
    const fresh = info(SBW_INFO_FRESH) !== 0;
    return {
      pageCount, steps, restarts, elapsedMs: performance.now() - start,
      pagesWritten: fresh ? pageCount : info(SBW_INFO_WRITTEN), pagesCompared: info(SBW_INFO_COMPARED), incremental: !fresh,
    };
  } finally {
    await ahead; // its buffer is freed by the close (a read ahead never rejects)
    if (p !== 0) capi.sbw_pagediff_close(p); // rolls the destination back unless committed; frees everything
  }
}
