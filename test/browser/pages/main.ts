// Test page: main-thread operations and a pool of test workers, driven by test/browser/run.ts
// through window.h.call(op, args).
import { loadSqlite, type Database } from "../../../src/index.browser.js";
import { contentOf, digest, errorInfo, fill, fillBench, headerCheck, integrity, keep, listDir, noOpfs, opfsFile, readAll, repeatBench, replicaRound, streamOf } from "./common.js";

const sqlitePromise = loadSqlite();
const workers = new Map<number, { w: Worker; pending: Map<number, (m: any) => void> }>();
let nextWorker = 0;
let nextCall = 0;

async function spawn(): Promise<number> {
  const id = ++nextWorker;
  const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  const pending = new Map<number, (m: any) => void>();
  await new Promise<void>((resolve, reject) => {
    w.onmessage = (e) => {
      if (e.data?.ready) resolve();
      else pending.get(e.data.id)?.(e.data);
    };
    w.onerror = (e) => reject(new Error(`worker failed to start: ${e.message}`));
  });
  workers.set(id, { w, pending });
  return id;
}

function inWorker(id: number, op: string, args: unknown[]): Promise<unknown> {
  const entry = workers.get(id);
  if (!entry) throw new Error(`no worker ${id}`);
  const callId = ++nextCall;
  return new Promise((resolve, reject) => {
    entry.pending.set(callId, (m) => {
      entry.pending.delete(callId);
      if (m.error) reject(Object.assign(new Error(`${op}: ${m.error.name}: ${m.error.message}\n${m.error.stack ?? ""}`), { code: m.error.code }));
      else resolve(m.result);
    });
    entry.w.postMessage({ id: callId, op, args });
  });
}

async function versionOf(path: string, rows: number, tag: string) {
  const sqlite = await sqlitePromise;
  using db = sqlite.open(":memory:");
  fill(db, rows, 500, tag);
  const progress: { remaining: number; pageCount: number }[] = [];
  const res = await sqlite.backupToOpfs(db, path, { pagesPerStep: 20, onProgress: (p) => void progress.push(p) });
  return { res, progress, digest: await digest(contentOf(db)) };
}

async function restoreDigest(path: string) {
  const sqlite = await sqlitePromise;
  using db = await sqlite.restoreFromOpfs(path);
  return { digest: await digest(contentOf(db)), integrity: integrity(db) };
}

const tmpFiles = async (dir: string) => Object.keys(await listDir(dir)).filter((n) => n.endsWith(".sbw-tmp"));

const ops: Record<string, (...args: any[]) => Promise<unknown>> = {
  spawn,
  inWorker,
  async terminate(id: number) {
    workers.get(id)?.w.terminate();
    workers.delete(id);
    return true;
  },

  /** backupToOpfs with progress, then restoreFromOpfs: equal content, sound file, no leftovers. */
  async mainBackup(path: string, rows: number) {
    const sqlite = await sqlitePromise;
    const used0 = sqlite.memoryUsed();
    const v = await versionOf(path, rows, "main");
    const back = await restoreDigest(path);
    const dir = path.split("/").slice(0, -1).join("/");
    return { ...v, back, files: await listDir(dir), memoryDelta: sqlite.memoryUsed() - used0 };
  },

  /** An aborted copy rejects with the abort reason and leaves the previous file. */
  async mainAbort(path: string, incremental: boolean) {
    const sqlite = await sqlitePromise;
    const v1 = await versionOf(path, 300, "v1");
    using db2 = sqlite.open(":memory:");
    fill(db2, 3000, 500, "v2");
    const ac = new AbortController();
    let events = 0;
    let rejection: unknown = null;
    try {
      await sqlite.backupToOpfs(db2, path, {
        incremental,
        pagesPerStep: 10,
        signal: ac.signal,
        onProgress: () => {
          if (++events === 3) ac.abort(new Error("user abort"));
        },
      });
    } catch (e) {
      rejection = errorInfo(e);
    }
    const after = await restoreDigest(path);
    return { v1: v1.digest, rejection, events, after, files: Object.keys(await listDir(path.split("/").slice(0, -1).join("/"))) };
  },

  /** A failure in the middle (here: onProgress throws) rejects and leaves the previous file. */
  async mainInjectedFailure(path: string, incremental: boolean) {
    const sqlite = await sqlitePromise;
    const v1 = await versionOf(path, 300, "v1");
    using db2 = sqlite.open(":memory:");
    fill(db2, 3000, 500, "v2");
    let rejection: unknown = null;
    let events = 0;
    try {
      await sqlite.backupToOpfs(db2, path, {
        incremental,
        pagesPerStep: 10,
        onProgress: () => {
          if (++events === 5) throw new Error("injected failure");
        },
      });
    } catch (e) {
      rejection = errorInfo(e);
    }
    const after = await restoreDigest(path);
    return { v1: v1.digest, rejection, after, files: Object.keys(await listDir(path.split("/").slice(0, -1).join("/"))) };
  },

  /** A target whose directory is a file: the writer cannot create the copy; what the call rejects with, and what is left. */
  async mainCannotCreate(dir: string) {
    const sqlite = await sqlitePromise;
    await ops.putFiles!({ [`${dir}/blocker`]: btoa("not a directory") });
    using db = sqlite.open(":memory:");
    fill(db, 3000, 500);
    const out: Record<string, unknown> = {};
    for (const incremental of [false, "auto"] as const) {
      let events = 0;
      try {
        await sqlite.backupToOpfs(db, `${dir}/blocker/app.db`, { incremental, pagesPerStep: 10, onProgress: () => void events++ });
        out[String(incremental)] = { ok: true, events };
      } catch (e) {
        out[String(incremental)] = { ok: false, events, ...errorInfo(e) };
      }
    }
    return { ...out, files: await listDir(dir) };
  },

  /** The target held open by a worker: SQLITE_BUSY once busyTimeoutMs is over, before anything is copied; nothing changes. */
  async mainTargetBusy(path: string) {
    const sqlite = await sqlitePromise;
    const v1 = await versionOf(path, 100, "v1");
    const w = await spawn();
    await inWorker(w, "hold", [path]);
    using db2 = sqlite.open(":memory:");
    fill(db2, 200, 500, "v2");
    let rejection: unknown = null;
    let events = 0;
    try {
      await sqlite.backupToOpfs(db2, path, { busyTimeoutMs: 200, onProgress: () => void events++ });
    } catch (e) {
      rejection = errorInfo(e);
    }
    await inWorker(w, "release", [path]);
    await ops.terminate!(w);
    const after = await restoreDigest(path);
    return { v1: v1.digest, rejection, events, after, tmp: await tmpFiles(path.split("/").slice(0, -1).join("/")) };
  },

  /**
   * backupToOpfs over its previous backup: incremental in place, byte-equal to the backup API's
   * full copy over the same old bytes (here in memory), no files left beside it.
   */
  async mainIncremental(dir: string) {
    const sqlite = await sqlitePromise;
    const path = `${dir}/inc.db`;
    using src = sqlite.open(":memory:");
    fill(src, 3000, 500);
    const first = await sqlite.backupToOpfs(src, path);
    using ref = await sqlite.restoreFromOpfs(path); // the old bytes
    src.exec("UPDATE t SET s = 'changed ' || id WHERE id % 100 = 0; INSERT INTO t(s, b, r) VALUES ('new', randomblob(500), 1)");
    const expected = contentOf(src);
    let events = 0;
    const used0 = sqlite.memoryUsed();
    const inc = await sqlite.backupToOpfs(src, path, { pagesPerStep: 40, onProgress: () => void events++ });
    const memoryDelta = sqlite.memoryUsed() - used0;
    const full = await sqlite.backup(src, ref, { incremental: false });
    const a = new Uint8Array(await (await (await opfsFile(path)).getFile()).arrayBuffer());
    const b = ref.serialize();
    using back = await sqlite.restoreFromOpfs(path);
    // Shrinking: the file is truncated to the source's size.
    src.exec("DELETE FROM t WHERE id > 1000; VACUUM");
    const shrunk = await sqlite.backupToOpfs(src, path);
    using back2 = await sqlite.restoreFromOpfs(path);
    const trueOverMissing = await sqlite.backupToOpfs(src, `${dir}/missing.db`, { incremental: true }).then(() => null, errorInfo);
    const files = await listDir(dir);
    // A file that is no database: refused with incremental true, replaced by the full copy with "auto".
    const d = await (await navigator.storage.getDirectory()).getDirectoryHandle(dir);
    const w = await (await d.getFileHandle("junk.db", { create: true })).createWritable();
    await w.write(new Uint8Array(8192).fill(7));
    await w.close();
    const junkTrue = await sqlite.backupToOpfs(src, `${dir}/junk.db`, { incremental: true }).then(() => null, errorInfo);
    const junkAuto = await sqlite.backupToOpfs(src, `${dir}/junk.db`).then((r) => r.incremental, errorInfo);
    using junk = await sqlite.restoreFromOpfs(`${dir}/junk.db`);
    return {
      junk: { junkTrue, junkAuto, equal: contentOf(junk) === contentOf(src) },
      first: first.incremental, events, memoryDelta,
      inc: { incremental: inc.incremental, pagesWritten: inc.pagesWritten, pagesCompared: inc.pagesCompared, pageCount: inc.pageCount },
      full: { incremental: full.incremental },
      sameBytes: a.length === b.length && a.every((x, i) => x === b[i]),
      equal: contentOf(back) === expected, integrity: integrity(back),
      shrunk: { incremental: shrunk.incremental, equal: contentOf(back2) === contentOf(src), integrity: integrity(back2), bytes: (await listDir(dir))["inc.db"], pageBytes: shrunk.pageCount * 4096 },
      files, trueOverMissing,
    };
  },

  /** Starts an incremental backupToOpfs big enough to write pages in place before its commit, and resolves mid-way. */
  async mainIncrementalUnderway(path: string) {
    const sqlite = await sqlitePromise;
    const src = sqlite.open(":memory:");
    fill(src, 30_000, 1000);
    await sqlite.backupToOpfs(src, path);
    const old = await digest(contentOf(src));
    src.exec("UPDATE t SET s = 'changed ' || id"); // every page: past the 16 MiB the cache holds
    const next = await digest(contentOf(src));
    return new Promise((resolve, reject) => {
      let events = 0;
      sqlite.backupToOpfs(src, path, {
        incremental: true, pagesPerStep: 200, pauseMs: 50,
        onProgress: () => void (++events === 30 && resolve({ old, next })),
      }).catch(reject);
    });
  },

  async writeVersion(path: string, rows: number, tag: string) {
    return (await versionOf(path, rows, tag)).digest;
  },

  /** Starts a slow full copy (a temporary file) and returns at once; progress is counted in window.slowProgress. */
  async startSlowBackup(path: string) {
    const sqlite = await sqlitePromise;
    const db = sqlite.open(":memory:");
    fill(db, 4000, 500, "slow");
    (globalThis as any).slowProgress = 0;
    void sqlite.backupToOpfs(db, path, { incremental: false, pagesPerStep: 4, pauseMs: 30, onProgress: () => void (globalThis as any).slowProgress++ });
    return true;
  },

  /** Unknown keys and options a route cannot honour are TypeErrors; the others do what backup() does. */
  async optionChecks(path: string) {
    const sqlite = await sqlitePromise;
    const dir = path.split("/").slice(0, -1).join("/");
    const attempt = async (fn: () => Promise<unknown> | unknown) => {
      try {
        const r = await fn();
        (r as { close?: () => void })?.close?.();
        return { ok: true };
      } catch (e) {
        return { ok: false, ...errorInfo(e) };
      }
    };
    using db = sqlite.open(":memory:");
    fill(db, 300, 500, "opts");
    const rejected = {
      misspelt: await attempt(() => sqlite.backupToOpfs(db, path, { pagesPerstep: 5 } as object)),
      destNosuch: await attempt(() => sqlite.backupToOpfs(db, path, { destName: "nosuch" })),
      destTemp: await attempt(() => sqlite.backupToOpfs(db, path, { destName: "temp" })),
      notAnObject: await attempt(() => sqlite.backupToOpfs(db, path, 5 as object)),
      restoreMisspelt: await attempt(() => sqlite.restoreFromOpfs(path, { onprogress: () => {} } as object)),
      restoreSourceName: await attempt(() => sqlite.restoreFromOpfs(path, { sourceName: "main" } as object)),
      openMisspelt: await attempt(() => sqlite.open(":memory:", { readOnly: true } as object)),
      openOpfsVfs: await attempt(() => sqlite.openOpfs(path, { vfs: "memory" } as object)),
      openOpfsTimeout: await attempt(() => sqlite.openOpfs(path, { busyTimeoutMs: -1 })),
      backupTimeout: await attempt(() => sqlite.backupToOpfs(db, path, { busyTimeoutMs: "5" } as object)),
      incrementalType: await attempt(() => sqlite.backupToOpfs(db, path, { incremental: "yes" } as object)),
    };
    const filesAfterRejections = await listDir(dir).catch(() => ({}));
    // destName "main" and verifySource false are accepted.
    const accepted = {
      destMain: await attempt(() => sqlite.backupToOpfs(db, path, { destName: "main", verifySource: false })),
      incrementalFalse: await attempt(() => sqlite.backupToOpfs(db, path, { incremental: false })),
    };
    // elapsedMs covers the whole call: from before its first step to after the rename.
    const t0 = performance.now();
    let lastEvent = 0;
    const res = await sqlite.backupToOpfs(db, path, { pagesPerStep: 50, onProgress: () => void (lastEvent = performance.now()) });
    const wall = performance.now() - t0;
    // A commit between steps, as in backup(): in the backup API's full copy, through the source's
    // own connection SQLite updates the copy in place, through another connection it starts the
    // copy over; the incremental compare starts over for both. The source (~4 MiB) outgrows the
    // destination's page cache, so the full copy's restart fetches pages already sent to OPFS.
    using file = sqlite.open(`${dir}-changing.db`);
    fill(file, 4000, 1000, "changing");
    using other = sqlite.open(`${dir}-changing.db`);
    const changed = async (writer: Database, incremental: boolean) => {
      let events = 0;
      const r = await sqlite.backupToOpfs(file, path, {
        incremental,
        pagesPerStep: 100,
        onProgress: () => {
          if (++events === 8) writer.exec(`UPDATE t SET s = 'changed ${events}' WHERE id IN (1, 3999)`);
        },
      });
      const back = await restoreDigest(path);
      return { restarts: r.restarts, incremental: r.incremental, equal: back.digest === (await digest(contentOf(file))), integrity: back.integrity };
    };
    return {
      rejected, filesAfterRejections, accepted,
      elapsed: { elapsedMs: res.elapsedMs, sinceLastEvent: lastEvent - t0, wall },
      sameConnection: await changed(file, false),
      otherConnection: await changed(other, false),
      sameConnectionIncremental: await changed(file, true),
      otherConnectionIncremental: await changed(other, true),
    };
  },

  /** Writes files into OPFS as they are (base64), e.g. a native database and its -wal. */
  async putFiles(files: Record<string, string>) {
    for (const [path, b64] of Object.entries(files)) {
      const parts = path.split("/");
      let dir = await navigator.storage.getDirectory();
      for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p, { create: true });
      const w = await (await dir.getFileHandle(parts.at(-1)!, { create: true })).createWritable();
      await w.write(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
      await w.close();
    }
    return true;
  },

  /** restoreFromOpfs on this thread: row counts, and the OPFS files before and after. */
  async restoreCount(path: string) {
    const sqlite = await sqlitePromise;
    const dir = path.split("/").slice(0, -1).join("/");
    const before = await listDir(dir);
    using db = await sqlite.restoreFromOpfs(path);
    const c = db.get<{ n: number; w: number }>("SELECT count(*) AS n, sum(s LIKE 'wal-%') AS w FROM t")!;
    return { ...c, integrity: integrity(db), mode: db.get<{ journal_mode: string }>("PRAGMA journal_mode")!.journal_mode, before, after: await listDir(dir) };
  },

  /** backupToOpfs over a database with a non-empty -wal beside it: incremental: true refused, then the full copy; what a restore reads after, and the files. */
  async backupOverWal(path: string) {
    const sqlite = await sqlitePromise;
    const dir = path.split("/").slice(0, -1).join("/");
    using db = sqlite.open(":memory:");
    db.exec("CREATE TABLE fresh(x); INSERT INTO fresh VALUES (1), (2), (3)");
    let refused: unknown = null;
    try {
      await sqlite.backupToOpfs(db, path, { incremental: true });
    } catch (e) {
      refused = errorInfo(e);
    }
    const afterRefusal = await listDir(dir);
    const res = await sqlite.backupToOpfs(db, path);
    using back = await sqlite.restoreFromOpfs(path);
    return {
      refused, afterRefusal, incremental: res.incremental, files: await listDir(dir),
      tables: back.all<{ name: string }>("SELECT name FROM sqlite_schema ORDER BY name").map((r) => r.name),
      rows: back.get<{ n: number }>("SELECT count(*) AS n FROM fresh")!.n, integrity: integrity(back),
    };
  },

  /** With the file open in another tab: each OPFS call is SQLITE_BUSY once its wait is over, and copied nothing. */
  async busyChecks(path: string, waitMs: number) {
    const sqlite = await sqlitePromise;
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
        return { ok: true };
      } catch (e) {
        return { ok: false, ...errorInfo(e) };
      }
    };
    using db = sqlite.open(":memory:");
    fill(db, 200, 500, "b");
    let events = 0;
    const backup = await attempt(() => sqlite.backupToOpfs(db, path, { busyTimeoutMs: waitMs, onProgress: () => void events++ }));
    const restore = await attempt(async () => (await sqlite.restoreFromOpfs(path, { busyTimeoutMs: waitMs, onProgress: () => void events++ })).close());
    const w = await spawn();
    const open = await inWorker(w, "tryOpen", [path, waitMs]);
    await ops.terminate!(w);
    const dir = path.split("/").slice(0, -1).join("/");
    return { backup, restore, open, events, tmp: await tmpFiles(dir) };
  },

  /** Starts an OPFS call without waiting for it; awaitPending() gives its outcome. */
  async startPending(kind: "backup" | "restore", path: string, busyTimeoutMs: number) {
    const sqlite = await sqlitePromise;
    const db = sqlite.open(":memory:");
    fill(db, 300, 500, "pending");
    const expected = await digest(contentOf(db));
    const run = kind === "backup"
      ? sqlite.backupToOpfs(db, path, { busyTimeoutMs }).then(() => ({ ok: true, expected }))
      : sqlite.restoreFromOpfs(path, { busyTimeoutMs }).then((r) => {
        const out = { ok: true, rows: r.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, integrity: integrity(r) };
        r.close();
        return out;
      });
    (globalThis as any).pending = run.catch((e) => ({ ok: false, ...errorInfo(e) })).finally(() => db.close());
    return true;
  },
  async awaitPending() {
    return (globalThis as any).pending;
  },

  /** The file's Web Lock as this origin sees it: how many hold it and wait for it. */
  async lockState(path: string) {
    const name = `sqlite-backup-wasm:opfs:/${path}`;
    const q = await navigator.locks.query();
    return { held: (q.held ?? []).filter((l) => l.name === name).length, pending: (q.pending ?? []).filter((l) => l.name === name).length };
  },

  /** restoreFromOpfs in steps: progress per step, an abort frees the half-read image. */
  async restoreSteps(path: string) {
    const sqlite = await sqlitePromise;
    const v = await versionOf(path, 2000, "steps");
    const used0 = sqlite.memoryUsed();
    const progress: { remaining: number; pageCount: number }[] = [];
    const db = await sqlite.restoreFromOpfs(path, { pagesPerStep: 50, onProgress: (p) => void progress.push(p) });
    const restored = { digest: await digest(contentOf(db)), integrity: integrity(db) };
    db.close();
    const ac = new AbortController();
    let rejection: unknown = null;
    try {
      await sqlite.restoreFromOpfs(path, { pagesPerStep: 20, signal: ac.signal, onProgress: () => ac.abort(new Error("stop")) });
    } catch (e) {
      rejection = errorInfo(e);
    }
    return { expected: v.digest, pageCount: v.res.pageCount, progress, restored, rejection, memoryDelta: sqlite.memoryUsed() - used0 };
  },

  /** Bytes this origin stores now (the quota tests set theirs a little above it). */
  async usage() {
    return (await navigator.storage.estimate()).usage ?? 0;
  },

  /** A backupToOpfs that outgrows the quota: SQLITE_FULL, the previous file intact. */
  async mainQuota(path: string, v1: string) {
    const sqlite = await sqlitePromise;
    using db = sqlite.open(":memory:");
    fill(db, 20_000, 1000, "big");
    let rejection: unknown = null;
    try {
      await sqlite.backupToOpfs(db, path);
    } catch (e) {
      rejection = errorInfo(e);
    }
    const after = await restoreDigest(path);
    return { rejection, after, same: after.digest === v1, tmp: await tmpFiles(path.split("/").slice(0, -1).join("/")) };
  },

  /**
   * backupToStream of an in-memory database, read to the end; the bytes restored with
   * restoreFromStream into another in-memory database and into a name of the memory VFS, in
   * odd-sized chunks; and the same through gzip.
   */
  async mainStream() {
    const sqlite = await sqlitePromise;
    using src = sqlite.open(":memory:");
    fill(src, 3000, 500, "stream");
    const expected = contentOf(src);
    let progress = { bytes: 0, totalBytes: 0, calls: 0 };
    const { bytes, chunks } = await readAll(sqlite.backupToStream(src, {
      chunkSize: 64 << 10, onStreamProgress: (p) => void (progress = { ...p, calls: progress.calls + 1 }),
    }));
    using dest = sqlite.open(":memory:");
    const res = await sqlite.restoreFromStream(streamOf(bytes, 7777), dest);
    await sqlite.restoreFromStream([bytes], "streamed.db");
    using named = sqlite.open("streamed.db");
    using gz = sqlite.open(":memory:");
    const compressed = sqlite.backupToStream(src).pipeThrough(new CompressionStream("gzip"));
    await sqlite.restoreFromStream(compressed.pipeThrough(new DecompressionStream("gzip")), gz);
    return {
      length: bytes.length, chunks, progress, header: headerCheck(bytes),
      pageBytes: src.get<{ n: number }>("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size")!.n,
      restored: { pageCount: res.pageCount, equal: contentOf(dest) === expected, integrity: integrity(dest) },
      named: { equal: contentOf(named) === expected, integrity: integrity(named) },
      gzip: { equal: contentOf(gz) === expected, integrity: integrity(gz) },
    };
  },

  /**
   * Cancelling a stream after its first chunk, and while its spool is still being written (from
   * onProgress): what the reader got, how far the copy went, and a backup of the same source after.
   */
  async mainStreamCancel() {
    const sqlite = await sqlitePromise;
    using src = sqlite.open(":memory:");
    fill(src, 3000, 500, "cancel");
    const reader = sqlite.backupToStream(src, { chunkSize: 16 << 10 }).getReader();
    const first = await reader.read();
    await reader.cancel();
    const afterCancel = await reader.read();
    let events = 0;
    let cancelled: Promise<void> | null = null;
    const r2 = sqlite.backupToStream(src, {
      pagesPerStep: 20, onProgress: () => {
        if (++events === 3) cancelled = r2.cancel();
      },
    }).getReader();
    const read2 = await r2.read();
    await cancelled;
    const eventsAtCancel = events;
    src.exec("UPDATE t SET s = 'after' WHERE id % 3 = 0");
    const again = await readAll(sqlite.backupToStream(src));
    using back = sqlite.open(":memory:");
    await sqlite.restoreFromStream([again.bytes], back);
    return {
      first: first.value?.length ?? 0, afterCancelDone: afterCancel.done,
      duringSpool: { done: read2.done, eventsAtCancel, pages: src.get<{ n: number }>("SELECT page_count AS n FROM pragma_page_count")!.n },
      again: { equal: contentOf(back) === contentOf(src), integrity: integrity(back) },
    };
  },

  /** replicaRound from an in-memory source on this thread, restores into in-memory databases. */
  async mainReplica(dir: string) {
    const sqlite = await sqlitePromise;
    using src = sqlite.open(":memory:");
    return await replicaRound(sqlite, src, dir, () => keep(sqlite.open(":memory:")));
  },

  spawnHere: spawn,

  async opfsAvailable() {
    return (await sqlitePromise).opfsAvailable();
  },

  async noOpfs(path: string, real = false) {
    return noOpfs(await sqlitePromise, path, real);
  },

  /** One timed main-thread restoreFromOpfs; the result stays open until dropRestored. */
  async timedRestore(path: string) {
    const sqlite = await sqlitePromise;
    const t0 = performance.now();
    const db = await sqlite.restoreFromOpfs(path);
    const ms = performance.now() - t0;
    (globalThis as any).kept = db;
    return { ms, rows: db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n };
  },
  async dropRestored() {
    (globalThis as any).kept?.close();
    return true;
  },

  restoreDigest,
  listDir,

  /** Main-thread backupToOpfs speed (the first call, which starts the writer worker, and the next), and the longest step (the page's worst freeze). */
  async benchMain(path: string, mib: number) {
    const sqlite = await sqlitePromise;
    using db = sqlite.open(":memory:");
    const bytes = fillBench(db, mib);
    let last = performance.now();
    let longestTaskMs = 0;
    const t0 = performance.now();
    const res = await sqlite.backupToOpfs(db, path, {
      onProgress: () => {
        const now = performance.now();
        longestTaskMs = Math.max(longestTaskMs, now - last);
        last = now;
      },
    });
    const s = (performance.now() - t0) / 1000;
    const restoreT0 = performance.now();
    (await sqlite.restoreFromOpfs(path)).close();
    const restoreMiBps = bytes / 2 ** 20 / ((performance.now() - restoreT0) / 1000);
    // Again into a new file, with the writer worker the first call started (it waits 10 s for the next).
    const warmT0 = performance.now();
    await sqlite.backupToOpfs(db, `${path}.warm`);
    const warmMiBps = bytes / 2 ** 20 / ((performance.now() - warmT0) / 1000);
    return { dbMiB: bytes / 2 ** 20, MiBps: bytes / 2 ** 20 / s, warmMiBps, steps: res.steps, longestGapBetweenStepsMs: longestTaskMs, restoreMiBps };
  },

  /** Main-thread backupToOpfs over its previous backup, 1% of pages changed (common.ts repeatBench). */
  async benchRepeatMain(path: string, mib: number) {
    const sqlite = await sqlitePromise;
    using db = sqlite.open(":memory:");
    return await repeatBench(db, fillBench(db, mib), (incremental) => sqlite.backupToOpfs(db, path, { incremental }));
  },

  async restoreMissing(path: string) {
    const sqlite = await sqlitePromise;
    try {
      (await sqlite.restoreFromOpfs(path)).close();
      return { ok: true };
    } catch (e) {
      return { ok: false, ...errorInfo(e) };
    }
  },
  async openOpfsOnMainThread(path: string) {
    const sqlite = await sqlitePromise;
    try {
      await sqlite.openOpfs(path);
      return { ok: true };
    } catch (e) {
      return { ok: false, ...errorInfo(e) };
    }
  },
};

(globalThis as any).h = {
  async call(op: string, args: unknown[]) {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op ${op}`);
    return fn(...args);
  },
};
(globalThis as any).hReady = true;
