// Test worker: named operations run on request from the page ({ id, op, args } → { id, result | error }).
import { loadSqlite, MemoryVfs, OpfsVfs, type Database } from "../../../src/index.browser.js";
import { runVfsConformance } from "../../vfs-conformance.js";
import { badRestores, contentOf, digest, errorInfo, fileHead, fill, fillBench, headerCheck, integrity, keep, listDir, noOpfs, readAll, repeatBench, replicaRound, streamOf } from "./common.js";

const sqlitePromise = loadSqlite();
const held = new Map<string, Database>();

const ops: Record<string, (...args: any[]) => Promise<unknown>> = {
  async conformance(dir: string) {
    const results: Record<string, unknown> = {};
    let n = 0;
    // The default buffers, none (each call goes through), and buffers smaller than some writes.
    for (const [label, opts] of [["opfs", {}], ["opfs unbuffered", { writeBuffer: 0, readAhead: 0 }], ["opfs small buffers", { writeBuffer: 3000, readAhead: 5000 }]] as const) {
      const opfs = new OpfsVfs(`opfs-conformance-${label}`, opts);
      const pins: { release(): void }[] = [];
      results[label] = await runVfsConformance(opfs, async () => {
        const pin = await opfs.prepare(`${dir}/f${++n}.db`);
        pins.push(pin);
        return pin.path;
      });
      for (const p of pins) p.release();
    }
    let m = 0;
    results.memory = await runVfsConformance(new MemoryVfs("memory-conformance"), () => `/m${++m}.db`);
    return results;
  },

  /** memory → OPFS and OPFS → memory, stepped; everything read back and compared. */
  async roundTrip(path: string, rows: number, blobSize = 300) {
    const sqlite = await sqlitePromise;
    using mem = sqlite.open(":memory:");
    fill(mem, rows, blobSize);
    const expected = contentOf(mem);
    const pageSize = mem.get<{ page_size: number }>("PRAGMA page_size")!.page_size;
    let events = 0;
    let toOpfs: object;
    {
      using dest = await sqlite.openOpfs(path);
      const res = await sqlite.backup(mem, dest, { pagesPerStep: 7, onProgress: () => void events++ });
      const sameConnection = contentOf(dest) === expected;
      toOpfs = { ...res, events, sameConnection, integrity: integrity(dest) };
    }
    const dir = path.split("/").slice(0, -1).join("/");
    const name = path.split("/").at(-1)!;
    const files = await listDir(dir);
    const head = await fileHead(path, 16);
    // read back through a new connection, then copy OPFS → memory
    using again = await sqlite.openOpfs(path, { readonly: true });
    const reopened = contentOf(again) === expected;
    using back = sqlite.open(":memory:");
    const res2 = await sqlite.backup(again, back, { pagesPerStep: 5 });
    return {
      toOpfs, files, name, pageSize, head: String.fromCharCode(...head),
      reopened, reopenedIntegrity: integrity(again),
      fromOpfs: { ...res2, equal: contentOf(back) === expected, integrity: integrity(back) },
    };
  },

  /** A rolled-back transaction that spilled pages to the file leaves the old content. */
  async rollback(path: string) {
    const sqlite = await sqlitePromise;
    using db = await sqlite.openOpfs(path);
    fill(db, 200);
    const before = contentOf(db);
    db.exec("PRAGMA cache_size=5; BEGIN");
    fill(db, 2000, 500, "rolled-back");
    db.exec("UPDATE t SET s = 'changed' WHERE id < 100");
    const midJournal = (await listDir(path.split("/").slice(0, -1).join("/")))[`${path.split("/").at(-1)}-journal`];
    db.exec("ROLLBACK");
    const dir = await listDir(path.split("/").slice(0, -1).join("/"));
    return { equal: contentOf(db) === before, integrity: integrity(db), midJournal, journalAfter: dir[`${path.split("/").at(-1)}-journal`] };
  },

  /** Leaves a big write transaction open (pages spilled to the file) for the page to kill us. */
  async openTransaction(path: string) {
    const sqlite = await sqlitePromise;
    const db = await sqlite.openOpfs(path);
    held.set(path, db);
    fill(db, 300);
    const committed = await digest(contentOf(db));
    db.exec("PRAGMA cache_size=10; BEGIN");
    fill(db, 3000, 1000, "never-committed");
    db.exec("DELETE FROM t WHERE id < 50");
    return { committed };
  },

  /** Commits WAL transactions and keeps the database open, for the page to kill us right after. */
  async walCommitted(path: string) {
    const sqlite = await sqlitePromise;
    const db = await sqlite.openOpfs(path);
    held.set(path, db);
    db.exec("PRAGMA journal_mode=WAL");
    fill(db, 50);
    db.run("INSERT INTO t(s) VALUES ('the last commit')");
    return { committed: await digest(contentOf(db)) };
  },

  /** After a crash: the hot journal is there, and opening rolls it back. */
  async recover(path: string) {
    const sqlite = await sqlitePromise;
    const dir = path.split("/").slice(0, -1).join("/");
    const name = path.split("/").at(-1)!;
    const before = await listDir(dir);
    using db = await sqlite.openOpfs(path);
    const content = await digest(contentOf(db));
    const after = await listDir(dir);
    return { journalBefore: before[`${name}-journal`], journalAfter: after[`${name}-journal`], content, integrity: integrity(db) };
  },

  /** Two connections of this worker on one file coordinate through the lock table. */
  async twoConnections(path: string) {
    const sqlite = await sqlitePromise;
    using a = await sqlite.openOpfs(path);
    using b = await sqlite.openOpfs(path);
    a.exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v)");
    a.exec("BEGIN IMMEDIATE; INSERT INTO kv VALUES ('a', 1)");
    let busy: unknown = null;
    try {
      b.exec("INSERT INTO kv VALUES ('b', 2)");
    } catch (e) {
      busy = errorInfo(e);
    }
    const bBeforeCommit = b.all("SELECT * FROM kv");
    a.exec("COMMIT");
    b.exec("INSERT INTO kv VALUES ('b', 2)");
    return { busy, bBeforeCommit, aSees: a.all("SELECT * FROM kv ORDER BY k"), integrity: integrity(a) };
  },

  /** WAL mode, synchronous=OFF: each connection reads the other's commits and a checkpoint's pages. */
  async walTwoConnections(path: string) {
    const sqlite = await sqlitePromise;
    {
      using db = await sqlite.openOpfs(path);
      fill(db, 10);
      db.exec("PRAGMA journal_mode=WAL");
    }
    using a = await sqlite.openOpfs(path);
    using b = await sqlite.openOpfs(path);
    a.exec("PRAGMA synchronous=OFF");
    b.exec("PRAGMA synchronous=OFF; PRAGMA cache_size=5"); // b reads pages from the file again
    const seen: boolean[] = [];
    fill(a, 500, 300, "a");
    seen.push(contentOf(b) === contentOf(a));
    fill(b, 500, 300, "b");
    seen.push(contentOf(a) === contentOf(b));
    const checkpoint = a.get("PRAGMA wal_checkpoint(TRUNCATE)");
    seen.push(contentOf(b) === contentOf(a));
    a.exec("DELETE FROM t WHERE id % 3 = 0");
    fill(a, 200, 300, "a2");
    seen.push(contentOf(b) === contentOf(a));
    return { mode: a.get<{ journal_mode: string }>("PRAGMA journal_mode")!.journal_mode, seen, checkpoint, rows: b.get("SELECT count(*) AS n FROM t"), integrity: integrity(b) };
  },

  /** PRAGMA journal_mode switched on an open connection, to WAL and back, twice. */
  async walSwitch(path: string) {
    const sqlite = await sqlitePromise;
    const dir = path.split("/").slice(0, -1).join("/");
    const name = path.split("/").at(-1)!;
    const modes: string[] = [];
    const mode = (db: Database, m: string) => modes.push(db.get<{ journal_mode: string }>(`PRAGMA journal_mode=${m}`)!.journal_mode);
    using db = await sqlite.openOpfs(path);
    fill(db, 100, 300, "delete-1");
    mode(db, "WAL");
    fill(db, 100, 300, "wal-1");
    using other = await sqlite.openOpfs(path);
    const otherSees = contentOf(other) === contentOf(db);
    other.close();
    const walDuring = (await listDir(dir))[`${name}-wal`];
    mode(db, "DELETE");
    fill(db, 100, 300, "delete-2");
    mode(db, "WAL");
    fill(db, 100, 300, "wal-2");
    const expected = contentOf(db);
    const rows = db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n;
    db.close();
    using again = await sqlite.openOpfs(path, { readonly: true });
    return { modes, otherSees, walDuring, rows, reopened: contentOf(again) === expected, reopenedMode: again.get<{ journal_mode: string }>("PRAGMA journal_mode")!.journal_mode, integrity: integrity(again) };
  },

  /** A database with a non-empty -wal: read through openOpfs (both modes), backup() and restoreFromOpfs in this worker. */
  async walRead(path: string) {
    const sqlite = await sqlitePromise;
    const count = (db: Database) => db.get<{ n: number; w: number }>("SELECT count(*) AS n, sum(s LIKE 'wal-%') AS w FROM t")!;
    const dir = path.split("/").slice(0, -1).join("/");
    const before = await listDir(dir);
    const restored = await sqlite.restoreFromOpfs(path);
    const viaRestore = { ...count(restored), integrity: integrity(restored) };
    restored.close();
    let readonly: object;
    {
      using db = await sqlite.openOpfs(path, { readonly: true });
      readonly = { ...count(db), integrity: integrity(db) };
    }
    const filesAfterReadonly = await listDir(dir);
    using db = await sqlite.openOpfs(path);
    const opened = { ...count(db), integrity: integrity(db), mode: db.get<{ journal_mode: string }>("PRAGMA journal_mode")!.journal_mode };
    using mem = sqlite.open(":memory:");
    await sqlite.backup(db, mem, { pagesPerStep: 3 });
    return { before, viaRestore, readonly, filesAfterReadonly, opened, backedUp: { ...count(mem), equal: contentOf(mem) === contentOf(db) } };
  },

  /** A database of about `mib` MiB of random blobs, written straight into OPFS. */
  async makeBig(path: string, mib: number) {
    const sqlite = await sqlitePromise;
    using db = await sqlite.openOpfs(path);
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB); BEGIN");
    for (let i = 0; i < Math.ceil((mib * 2 ** 20) / 4200); i++) db.run("INSERT INTO t(s, b) VALUES ('big', randomblob(4000))");
    db.exec("COMMIT");
    return db.get<{ n: number }>("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size")!.n;
  },

  /** One timed OPFS → memory copy in this worker: restoreFromOpfs, or openOpfs + one backup step. */
  async timedRestore(path: string, route: "restore" | "backup") {
    const sqlite = await sqlitePromise;
    const t0 = performance.now();
    let db: Database;
    if (route === "restore") db = await sqlite.restoreFromOpfs(path);
    else {
      using src = await sqlite.openOpfs(path, { readonly: true });
      db = sqlite.open(":memory:");
      using b = sqlite.backupInit(db, "main", src, "main");
      b.step(-1);
    }
    const ms = performance.now() - t0;
    (globalThis as any).kept = db; // alive until dropRestored, so memory is measured with it
    return { ms, rows: db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n };
  },
  async dropRestored() {
    (globalThis as any).kept?.close();
    return true;
  },

  /** A transaction that outgrows the quota: SQLITE_FULL, rolled back, the file as before. */
  async quotaFill(path: string) {
    const sqlite = await sqlitePromise;
    using db = await sqlite.openOpfs(path);
    const before = await digest(contentOf(db));
    let error: unknown = null;
    try {
      db.exec("BEGIN");
      fill(db, 20_000, 1000, "too-much");
      db.exec("COMMIT");
    } catch (e) {
      error = errorInfo(e);
      try {
        db.exec("ROLLBACK");
      } catch {
        // SQLite may have rolled back by itself already
      }
    }
    return { error, same: (await digest(contentOf(db))) === before, integrity: integrity(db) };
  },

  async noOpfs(path: string) {
    return noOpfs(await sqlitePromise, path);
  },

  async hold(path: string) {
    const sqlite = await sqlitePromise;
    held.set(path, await sqlite.openOpfs(path));
    return true;
  },
  /** Writes rows into the database hold() keeps open. */
  /** Opens the file read-only and keeps it open (until release); what it reads now. */
  async holdReadonly(path: string) {
    const sqlite = await sqlitePromise;
    const db = await sqlite.openOpfs(path, { readonly: true, busyTimeoutMs: 10_000 });
    held.set(path, db);
    return { digest: await digest(contentOf(db)), integrity: integrity(db) };
  },
  /** Reads the file through the connection holdReadonly keeps open. */
  async readHeld(path: string) {
    const db = held.get(path)!;
    return { digest: await digest(contentOf(db)), integrity: integrity(db) };
  },
  async fillHeld(path: string, rows: number, tag: string) {
    fill(held.get(path)!, rows, 200, tag);
    return true;
  },
  async release(path: string) {
    held.get(path)?.close();
    held.delete(path);
    return true;
  },
  async tryOpen(path: string, busyTimeoutMs?: number) {
    const sqlite = await sqlitePromise;
    try {
      (await sqlite.openOpfs(path, { busyTimeoutMs })).close();
      return { ok: true };
    } catch (e) {
      return { ok: false, ...errorInfo(e) };
    }
  },
  /**
   * Incremental backups into an OPFS file: a repeat backup writes only the changed pages, and
   * leaves the file byte for byte what a full backup over the same old file gives.
   */
  async incremental(dir: string) {
    const sqlite = await sqlitePromise;
    using src = sqlite.open(":memory:");
    fill(src, 3000, 500);
    const first: Record<string, unknown> = {};
    for (const name of ["inc.db", "full.db"]) {
      using dest = await sqlite.openOpfs(`${dir}/${name}`);
      const r = await sqlite.backup(src, dest, { pagesPerStep: -1 });
      first[name] = r.incremental;
    }
    src.exec("UPDATE t SET s = 'changed ' || id WHERE id % 100 = 0; INSERT INTO t(s, b, r) VALUES ('new', randomblob(500), 1)");
    const expected = contentOf(src);
    using inc = await sqlite.openOpfs(`${dir}/inc.db`);
    using full = await sqlite.openOpfs(`${dir}/full.db`);
    let events = 0;
    const ri = await sqlite.backup(src, inc, { pagesPerStep: 40, onProgress: () => void events++ });
    const rf = await sqlite.backup(src, full, { incremental: false });
    const a = inc.serialize();
    const b = full.serialize();
    return {
      first, events,
      inc: { incremental: ri.incremental, pagesWritten: ri.pagesWritten, pagesCompared: ri.pagesCompared, pageCount: ri.pageCount },
      full: { incremental: rf.incremental, pagesWritten: rf.pagesWritten },
      sameBytes: a.length === b.length && a.every((x, i) => x === b[i]),
      equal: contentOf(inc) === expected, integrity: integrity(inc),
    };
  },

  /** Starts an incremental backup into an OPFS file and resolves mid-way, for the page to kill us. */
  async incrementalUnderway(path: string) {
    const sqlite = await sqlitePromise;
    const src = sqlite.open(":memory:");
    fill(src, 3000, 1000);
    {
      using dest = await sqlite.openOpfs(path);
      await sqlite.backup(src, dest);
    }
    const old = await digest(contentOf(src));
    src.exec("UPDATE t SET s = 'changed ' || id WHERE id % 3 = 0");
    const next = await digest(contentOf(src));
    const dest = await sqlite.openOpfs(path);
    held.set(path, dest);
    dest.exec("PRAGMA cache_size=10"); // changed pages spill to the file before the commit
    return new Promise((resolve, reject) => {
      let events = 0;
      sqlite.backup(src, dest, {
        incremental: true, pagesPerStep: 20, pauseMs: 20,
        onProgress: () => void (++events === 20 && resolve({ old, next })),
      }).catch(reject);
    });
  },

  async openMissing(path: string) {
    const sqlite = await sqlitePromise;
    try {
      (await sqlite.openOpfs(path, { create: false })).close();
      return { ok: true };
    } catch (e) {
      return { ok: false, ...errorInfo(e) };
    }
  },

  /** Backup speed memory → OPFS, and the per-call baseline of 4 KiB sync-handle writes. */
  async bench(dir: string, mib: number, run = 0) {
    const sqlite = await sqlitePromise;
    using mem = sqlite.open(":memory:");
    const bytes = fillBench(mem, mib);
    const results: Record<string, number> = { dbMiB: bytes / 2 ** 20 };
    // The physical limit in this browser and worker: the same bytes written through one sync
    // access handle in 1 MiB writes, then flushed (OPFS's speed moves up to 4x between launches,
    // so a ratio to a raw write in another launch says little).
    const image = mem.serialize();
    const root = await navigator.storage.getDirectory().then((r) => r.getDirectoryHandle(dir, { create: true }));
    // Each run starts with another variant: the first copy of a run meets storage with nothing
    // of the others still being written back, and was the fastest whatever it was.
    const variants = [["oneStep", -1], ["adaptive", undefined], ["pages100", 100], ["raw", 0]] as const;
    for (let k = 0; k < variants.length; k++) {
      const [label, pagesPerStep] = variants[(k + run) % variants.length]!;
      if (label === "raw") {
        const sah = await ((await root.getFileHandle("bench-raw.bin", { create: true })) as any).createSyncAccessHandle();
        try {
          const t0 = performance.now();
          for (let at = 0; at < image.length; at += 1 << 20) sah.write(image.subarray(at, at + (1 << 20)), { at });
          sah.flush();
          results.rawMiBps = bytes / 2 ** 20 / ((performance.now() - t0) / 1000);
        } finally {
          sah.close();
        }
        continue;
      }
      using dest = await sqlite.openOpfs(`${dir}/bench-${label}.db`);
      const t0 = performance.now();
      await sqlite.backup(mem, dest, pagesPerStep === undefined ? {} : { pagesPerStep });
      results[`${label}MiBps`] = bytes / 2 ** 20 / ((performance.now() - t0) / 1000);
    }
    {
      using src = await sqlite.openOpfs(`${dir}/bench-oneStep.db`, { readonly: true });
      using back = sqlite.open(":memory:");
      const t0 = performance.now();
      await sqlite.backup(src, back, { pagesPerStep: -1 });
      results.opfsToMemoryMiBps = bytes / 2 ** 20 / ((performance.now() - t0) / 1000);
    }
    // A/B on this machine: the same VFS with coalescing and read-ahead off (one write per page).
    {
      const unbuffered = new OpfsVfs("opfs-unbuffered", { writeBuffer: 0, readAhead: 0 });
      const plain = await loadSqlite({ vfs: [unbuffered] });
      using src = plain.open(":memory:");
      fillBench(src, mib);
      const pin = await unbuffered.prepare(`${dir}/bench-unbuffered.db`);
      using dest = plain.open(pin.path, { vfs: unbuffered.name });
      pin.release();
      const t0 = performance.now();
      await plain.backup(src, dest, { pagesPerStep: -1 });
      results.unbufferedOneStepMiBps = bytes / 2 ** 20 / ((performance.now() - t0) / 1000);
    }
    // Baseline: raw 4 KiB sync-handle writes, one call per page.
    const fh = await root.getFileHandle("raw4k.bin", { create: true });
    const sah = await (fh as any).createSyncAccessHandle();
    const page = new Uint8Array(4096).fill(1);
    const n = Math.min(2048, bytes / 4096);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sah.write(page, { at: i * 4096 });
    sah.flush();
    results.raw4kWriteMiBps = (n * 4096) / 2 ** 20 / ((performance.now() - t0) / 1000);
    sah.close();
    return results;
  },

  /**
   * backupToStream of an OPFS database (the spool route, and in WAL mode with verifySource: false
   * the snapshot route), read to the end, restored with restoreFromStream into an existing OPFS
   * database and into memory.
   */
  async stream(dir: string) {
    const sqlite = await sqlitePromise;
    using src = await sqlite.openOpfs(`${dir}/src.db`);
    fill(src, 3000, 500, "wstream");
    const expected = contentOf(src);
    const spool = await readAll(sqlite.backupToStream(src, { chunkSize: 100_000 }));
    using dest = keep(await sqlite.openOpfs(`${dir}/dest.db`));
    const res = await sqlite.restoreFromStream(streamOf(spool.bytes, 12_345), dest);
    const intoOpfs = { pageCount: res.pageCount, equal: contentOf(dest) === expected, integrity: integrity(dest) };
    src.exec("PRAGMA journal_mode=WAL");
    src.exec("UPDATE t SET s = 'wal ' || id WHERE id % 5 = 0");
    const walExpected = contentOf(src);
    const snap = await readAll(sqlite.backupToStream(src, { verifySource: false }));
    using mem = sqlite.open(":memory:");
    await sqlite.restoreFromStream([snap.bytes], mem);
    dest.close();
    using reopened = await sqlite.openOpfs(`${dir}/dest.db`, { readonly: true });
    return {
      spool: { length: spool.bytes.length, chunks: spool.chunks, header: headerCheck(spool.bytes) }, intoOpfs,
      reopened: { equal: contentOf(reopened) === expected, integrity: integrity(reopened) },
      snapshot: { header: headerCheck(snap.bytes), equal: contentOf(mem) === walExpected, integrity: integrity(mem) },
    };
  },

  /** restoreFromStream of bad inputs into an existing OPFS database (common.ts badRestores), then a good one. */
  async streamBadRestores(dir: string) {
    const sqlite = await sqlitePromise;
    using other = sqlite.open(":memory:");
    fill(other, 1000, 500, "other");
    const good = (await readAll(sqlite.backupToStream(other))).bytes;
    using dest = await sqlite.openOpfs(`${dir}/dest.db`);
    fill(dest, 200, 300, "old");
    const before = await listDir(dir);
    const bad = await badRestores(sqlite, dest, good);
    const filesAfter = await listDir(dir);
    await sqlite.restoreFromStream(streamOf(good, 65536), dest);
    return { bad, before, filesAfter, goodAfter: { equal: contentOf(dest) === contentOf(other), integrity: integrity(dest) } };
  },

  /**
   * An OPFS source in WAL mode streamed on the snapshot route (verifySource: false): a
   * checkpoint cannot finish while the stream holds its snapshot; after reader.cancel() it can,
   * and both routes stream the source again.
   */
  async streamCancel(dir: string) {
    const sqlite = await sqlitePromise;
    using src = await sqlite.openOpfs(`${dir}/src.db`);
    src.exec("PRAGMA journal_mode=WAL");
    fill(src, 2000, 500, "wcancel");
    src.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const reader = sqlite.backupToStream(src, { verifySource: false, chunkSize: 16 << 10 }).getReader();
    const first = await reader.read();
    fill(src, 100, 500, "during");
    const checkpoint = () => src.get<{ busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!;
    const whileOpen = checkpoint();
    await reader.cancel();
    const afterCancel = checkpoint();
    const wal = (await listDir(dir))["src.db-wal"];
    const expected = contentOf(src);
    const again: Record<string, unknown> = {};
    for (const verifySource of [false, true]) {
      using back = sqlite.open(":memory:");
      await sqlite.restoreFromStream(sqlite.backupToStream(src, { verifySource }), back);
      again[String(verifySource)] = { equal: contentOf(back) === expected, integrity: integrity(back) };
    }
    return { first: first.value?.length ?? 0, whileOpen, afterCancel, wal, again };
  },

  /** replicaRound from an OPFS source in this worker, restores into an existing OPFS database. */
  async replica(dir: string) {
    const sqlite = await sqlitePromise;
    using src = await sqlite.openOpfs(`${dir}/src.db`);
    return await replicaRound(sqlite, src, `${dir}/replica`, async () => keep(await sqlite.openOpfs(`${dir}/dest.db`)));
  },

  /** openOpfs + backup over the previous backup, 1% of pages changed (common.ts repeatBench). */
  async benchRepeat(path: string, mib: number) {
    const sqlite = await sqlitePromise;
    using src = sqlite.open(":memory:");
    const r = await repeatBench(src, fillBench(src, mib), async (incremental) => {
      using dest = await sqlite.openOpfs(path);
      return await sqlite.backup(src, dest, { incremental });
    });
    // What any compare must do at least: read the whole previous backup once (1 MiB reads through
    // one sync access handle into one buffer), as a share of the first backup's time.
    const parts = path.split("/");
    let d = await navigator.storage.getDirectory();
    for (const part of parts.slice(0, -1)) d = await d.getDirectoryHandle(part);
    const sah = await ((await d.getFileHandle(parts.at(-1)!)) as any).createSyncAccessHandle();
    try {
      const buf = new Uint8Array(1 << 20);
      const t0 = performance.now();
      for (let at = 0, size = sah.getSize(); at < size; at += buf.length) sah.read(buf, { at });
      const readMs = performance.now() - t0;
      return { ...r, readOldFileMs: readMs, readOfFirst: readMs / r.firstMs };
    } finally {
      sah.close();
    }
  },
};

self.onmessage = async (e: MessageEvent<{ id: number; op: string; args: unknown[] }>) => {
  const { id, op, args } = e.data;
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op ${op}`);
    self.postMessage({ id, result: await fn(...args) });
  } catch (err) {
    self.postMessage({ id, error: { ...errorInfo(err), stack: (err as Error)?.stack } });
  }
};
self.postMessage({ ready: true });
