// Incremental backups (src/ops/incremental.ts, wasm/pagediff.c): over an existing database of the
// same page size, backup() writes only the pages that differ (and into a new or empty file, the
// fresh copy writes every page straight into it). The reference for every result is
// SQLite's own backup API (backupInit + step(-1)) over an identical copy of the same destination:
// the files must be byte-for-byte equal, and the native sqlite3 CLI must find the copy sound and
// dump it exactly as it dumps the source.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { closeSync, copyFileSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, SqliteError, type Database, type Sqlite } from "../src/index.js";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { FaultVfs } from "./faults/fault-vfs.js";
import { judge, rng, SEED } from "./faults/util.js";
import { cli, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const dir = tmpDir("inc");
let fileNo = 0;
const fresh = (tag: string) => join(dir, `${tag}-${++fileNo}.db`);

/** The native CLI's .dump (random blobs make it large). */
function dump(file: string): string {
  return execFileSync("sqlite3", ["-batch", file, ".dump"], { encoding: "utf8", maxBuffer: 1 << 30 });
}

/** What SQLite's backup API makes of `destFile` (a copy of it): the bytes every result must equal. */
function reference(source: Database, destFile: string, sourceName = "main", via: Sqlite = sqlite): Buffer {
  const ref = fresh("ref");
  copyFileSync(destFile, ref);
  const d = via.open(ref);
  try {
    const b = via.backupInit(d, "main", source, sourceName);
    assert.is(b.step(-1), "done");
    b.finish();
  } finally {
    d.close();
  }
  return readFileSync(ref);
}

/**
 * Backs `source` up over a copy of `template` with backup() (incremental: true) and checks the
 * result against the backup API over another copy and against the native CLI. Returns the result.
 */
async function checkOver(source: Database, sourceFile: string, template: string, ctx: string) {
  const want = reference(source, template);
  const dest = fresh("dest");
  copyFileSync(template, dest);
  const r = await sqlite.backup(source, dest, { incremental: true });
  assert.ok(r.incremental, `${ctx}: incremental`);
  const got = readFileSync(dest);
  assert.is(got.length, want.length, `${ctx}: size`);
  assert.ok(got.equals(want), `${ctx}: bytes equal the backup API's`);
  assert.is(integrity(dest), "ok", `${ctx}: integrity_check`);
  assert.is(dump(dest), dump(sourceFile), `${ctx}: .dump`);
  return r;
}

/** A random change to a database: the mix the backup has to get right. */
function mutate(db: Database, r: () => number): string {
  const k = Math.floor(r() * 9);
  const n = 1 + Math.floor(r() * 200);
  switch (k) {
    case 0: db.run("UPDATE t SET v = randomblob(length(v)) WHERE id % ? = 0", [1 + Math.floor(r() * 50)]); return "update";
    case 1: db.run("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<?) INSERT INTO t(v) SELECT randomblob(300) FROM c", [n]); return "grow";
    case 2: db.run("DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT ?)", [n * 3]); return "delete (freelist)";
    case 3: db.exec("DELETE FROM t WHERE id % 3 = 0; VACUUM"); return "shrink (vacuum)";
    case 4: db.run("INSERT INTO t(v) VALUES (randomblob(?))", [20000 + Math.floor(r() * 60000)]); return "overflow";
    case 5: db.exec(`CREATE TABLE IF NOT EXISTS x${n % 7}(a, b); CREATE INDEX IF NOT EXISTS xi${n % 7} ON x${n % 7}(a)`); return "schema (page 1)";
    case 6: db.exec(`PRAGMA user_version = ${n}`); return "user_version (page 1 only)";
    case 7: db.exec("PRAGMA incremental_vacuum(5)"); return "incremental_vacuum";
    default: return "nothing";
  }
}

function makeSource(file: string, pageSize: number, autoVacuum: string, rows: number): Database {
  const db = sqlite.open(file);
  db.exec(`PRAGMA page_size=${pageSize}; PRAGMA auto_vacuum=${autoVacuum}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);`);
  db.run("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<?) INSERT INTO t(v) SELECT randomblob(200 + i % 500) FROM c", [rows]);
  return db;
}

/** A full backup of `source` into a new file: "the previous backup". */
async function previousBackup(source: Database): Promise<string> {
  const f = fresh("prev");
  await sqlite.backup(source, f, { incremental: false });
  return f;
}

test("random change patterns: byte-equal to the backup API over the same destination", async () => {
  const r = rng(SEED);
  const seen = new Set<string>();
  for (const [pageSize, av] of [[4096, "none"], [1024, "full"], [512, "incremental"], [8192, "none"]] as const) {
    const srcFile = fresh("src");
    const src = makeSource(srcFile, pageSize, av, 300 + Math.floor(r() * 500));
    try {
      let prev = await previousBackup(src);
      for (let round = 0; round < 6; round++) {
        const what = [mutate(src, r), mutate(src, r)].join(" + ");
        seen.add(what.split(" + ")[0]!);
        const res = await checkOver(src, srcFile, prev, `page=${pageSize} av=${av} round=${round}: ${what}`);
        assert.ok(res.pagesWritten >= 1 && res.pagesWritten <= res.pageCount, "pagesWritten in range");
        // Next round over this one's result sometimes, over an older backup other times.
        if (r() < 0.6) prev = await previousBackup(src);
      }
    } finally {
      src.close();
    }
  }
  assert.ok(seen.size >= 6, `the random patterns covered ${[...seen].join(", ")}`);
});

test("an unchanged source writes page 1 only; a small change writes few pages", async () => {
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 3000);
  const prev = await previousBackup(src);
  const same = await checkOver(src, srcFile, prev, "unchanged");
  assert.is(same.pagesWritten, 1, "page 1 (its schema cookie changes, as with the backup API)");
  assert.is(same.pagesCompared, same.pageCount);
  src.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 1500");
  const one = await checkOver(src, srcFile, prev, "one row");
  assert.ok(one.pagesWritten >= 2 && one.pagesWritten <= 4, `pagesWritten ${one.pagesWritten}`);
});

/** Pages 2.. of `want` that differ from `prev`'s (or that `prev` lacks), plus page 1: what an incremental backup must write. */
function differingPages(prev: Buffer, want: Buffer, size: number): number {
  let n = 1;
  for (let off = size; off < want.length; off += size) {
    if (off >= prev.length || !want.subarray(off, off + size).equals(prev.subarray(off, off + size))) n++;
  }
  return n;
}

test("the destination's next pages are read off the thread meanwhile: over many chunks, exactly the differing pages are written", async () => {
  // Node's VFS reads the pages after each chunk in the thread pool while the chunk is compared
  // (wasm/pagediff.c sbw_pagediff_ahead()). A page compared against the wrong bytes shows as a
  // page written that did not differ, or one that did and was not written.
  const counting = new FaultVfs(new NodeFsVfs()); // never armed: it counts the reads ahead
  const fs: Sqlite = await loadSqlite({ vfs: [counting] });
  const r = rng(SEED + 1);
  for (const pageSize of [4096, 1024, 65536]) {
    const srcFile = fresh("src");
    makeSource(srcFile, pageSize, "none", 12_000).close();
    using src = fs.open(srcFile, { vfs: counting.name });
    using ref = sqlite.open(srcFile); // the reference backup's connection
    let prev = await previousBackup(ref);
    for (let round = 0; round < 4; round++) {
      const what = [mutate(src, r), mutate(src, r), mutate(src, r)].join(" + ");
      const pages = Number(src.get("PRAGMA page_count")!.page_count);
      const pagesPerStep = Math.max(8, Math.floor(pages / (3 + r() * 9)));
      const ctx = `page=${pageSize} round=${round} pagesPerStep=${pagesPerStep}: ${what}`;
      const want = reference(ref, prev);
      const dest = fresh("dest");
      copyFileSync(prev, dest);
      const before = counting.readsAhead;
      const res = await (async () => {
        using d = fs.open(dest, { vfs: counting.name });
        return await fs.backup(src, d, { pagesPerStep });
      })();
      assert.ok(res.incremental, ctx);
      assert.ok(readFileSync(dest).equals(want), `${ctx}: bytes equal the backup API's`);
      assert.is(res.pagesWritten, differingPages(readFileSync(prev), want, pageSize), `${ctx}: pages written`);
      if (res.steps > 2) assert.ok(counting.readsAhead > before, `${ctx}: read ahead (${res.steps} steps)`);
      if (r() < 0.5) prev = dest;
    }
    assert.is(integrity(prev), "ok");
  }
  assert.is(counting.readsAheadDetached, 0, `reads whose memory grew meanwhile, of ${counting.readsAhead}`);
});

test("a read ahead never has the memory grow under it: each claim makes room for its chunk first", async () => {
  // A new instance (a small heap) and large chunks of changed pages, which the destination's
  // cache keeps: without wasm/pagediff.c make_room() the heap grew during reads here.
  const counting = new FaultVfs(new NodeFsVfs());
  const fs: Sqlite = await loadSqlite({ vfs: [counting] });
  const srcFile = fresh("src");
  makeSource(srcFile, 4096, "none", 60_000).close(); // ~27 MiB
  using src = fs.open(srcFile, { vfs: counting.name });
  const prev = fresh("prev");
  await fs.backup(src, prev, { incremental: false });
  src.exec("UPDATE t SET v = randomblob(length(v))");
  const want = reference(src, prev, "main", fs);
  const res = await (async () => {
    using d = fs.open(prev, { vfs: counting.name });
    return await fs.backup(src, d, { pagesPerStep: 1024 });
  })();
  assert.ok(res.incremental && counting.readsAhead > 3, `read ahead ${counting.readsAhead} times`);
  assert.is(counting.readsAheadDetached, 0, `reads whose memory grew meanwhile, of ${counting.readsAhead}`);
  assert.ok(readFileSync(prev).equals(want), "bytes equal the backup API's");
});

test("growth past and shrink below the destination, and an unrelated destination", async () => {
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 200);
  const small = await previousBackup(src);
  src.run("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000) INSERT INTO t(v) SELECT randomblob(500) FROM c");
  const big = await previousBackup(src);
  const grown = await checkOver(src, srcFile, small, "growth");
  assert.ok(grown.pageCount > grown.pagesCompared, "pages past the destination's end are written without compare");
  src.exec("DELETE FROM t WHERE id > 100; VACUUM");
  await checkOver(src, srcFile, big, "shrink (truncation)");
  const other = fresh("other");
  const o = sqlite.open(other);
  o.exec("CREATE TABLE z(q); INSERT INTO z VALUES (randomblob(100000))");
  o.close();
  await checkOver(src, srcFile, other, "unrelated database");
});

test("memory source and memory destination", async () => {
  using mem = sqlite.open(":memory:");
  mem.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000) INSERT INTO t(v) SELECT randomblob(300) FROM c");
  const prev = await previousBackup(mem);
  mem.run("UPDATE t SET v = randomblob(300) WHERE id % 100 = 0");
  const srcFile = fresh("memdump");
  await sqlite.backup(mem, srcFile, { incremental: false });
  await checkOver(mem, srcFile, prev, "memory source");

  // A memory destination holding the previous backup: compare serialize() with the backup API's.
  const load = async () => {
    const d = sqlite.open(":memory:");
    using p = sqlite.open(prev, { readonly: true });
    await sqlite.backup(p, d, { incremental: false });
    return d;
  };
  using a = await load();
  using b = await load();
  const res = await sqlite.backup(mem, a, { incremental: true });
  assert.ok(res.incremental);
  assert.ok(res.pagesWritten < res.pageCount / 4, `pagesWritten ${res.pagesWritten} of ${res.pageCount}`);
  const bk = sqlite.backupInit(b, "main", mem, "main");
  assert.is(bk.step(-1), "done");
  bk.finish();
  assert.ok(Buffer.from(a.serialize()).equals(Buffer.from(b.serialize())), "memory destination: bytes equal");
  assert.equal(a.all("SELECT count(*) AS n, sum(length(v)) AS s FROM t"), mem.all("SELECT count(*) AS n, sum(length(v)) AS s FROM t"));
});

test("the destination connection sees the new schema and content after the backup", async () => {
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 100);
  const destFile = await previousBackup(src);
  using dest = sqlite.open(destFile);
  assert.equal(dest.get("SELECT count(*) AS n FROM t"), { n: 100 }); // schema cached
  src.exec("CREATE TABLE added(a); INSERT INTO added VALUES (42); DELETE FROM t WHERE id > 50");
  const res = await sqlite.backup(src, dest);
  assert.ok(res.incremental, "auto over a rollback-journal source");
  assert.equal(dest.get("SELECT a FROM added"), { a: 42 });
  assert.equal(dest.get("SELECT count(*) AS n FROM t"), { n: 50 });
});

test("a destination kept open whose own connection freed pages: its cache and the file both end equal to the source", async () => {
  // wasm/pagediff.c reads the destination from its file; where this connection's cache differs
  // from the file, the cache must be compared too, or that connection keeps a stale view.
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 2000);
  const destFile = await previousBackup(src);
  using dest = sqlite.open(destFile);
  // Pages changed and then freed in one transaction stay in the cache unwritten (PGHDR_DONT_WRITE):
  // the file keeps the bytes the source still has, the cache has others.
  dest.exec("PRAGMA cache_size=-16000; BEGIN; UPDATE t SET v = randomblob(length(v)) WHERE id > 1000; DELETE FROM t WHERE id > 1000; COMMIT");
  src.exec("UPDATE t SET v = randomblob(300) WHERE id % 50 = 0");
  const res = await sqlite.backup(src, dest, { incremental: true });
  assert.ok(res.incremental);
  assert.equal(dest.all("PRAGMA integrity_check"), [{ integrity_check: "ok" }], "the kept-open connection's view");
  assert.equal(dest.get("SELECT count(*) AS n, sum(length(v)) AS b FROM t"), src.get("SELECT count(*) AS n, sum(length(v)) AS b FROM t"));
  assert.is(judge(destFile).integrity, "ok");
  assert.is(judge(destFile).sha, judge(srcFile).sha, "the file: the source's content");
});

test("incremental false copies everything; auto falls back when the destination does not qualify; true rejects", async () => {
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 500);
  const prev = await previousBackup(src);
  const full = await sqlite.backup(src, prev, { incremental: false, verifySource: false });
  assert.is(full.incremental, false);
  assert.is(full.pagesWritten, full.pageCount);
  assert.is(full.pagesCompared, 0);

  const otherSize = fresh("p1024");
  const o = sqlite.open(otherSize);
  o.exec("PRAGMA page_size=1024; CREATE TABLE z(q); INSERT INTO z VALUES (1)");
  o.close();
  const avFull = fresh("avfull");
  const av = sqlite.open(avFull);
  av.exec("PRAGMA auto_vacuum=FULL; CREATE TABLE z(q)");
  av.close();
  src.run("DELETE FROM t WHERE id < 200"); // free pages in the source
  const cases: [string, string][] = [
    [fresh("missing"), "not an existing file"], [otherSize, "page sizes differ"],
    [avFull, "auto-vacuum"],
  ];
  for (const [dest, why] of cases) {
    const before = statSync(dest, { throwIfNoEntry: false }) ? readFileSync(dest) : null;
    try {
      await sqlite.backup(src, dest, { incremental: true });
      assert.unreachable(`${why}: incremental true must reject`);
    } catch (e) {
      assert.instance(e, SqliteError, String(e));
      assert.match((e as Error).message, why);
    }
    if (before) assert.ok(readFileSync(dest).equals(before), `${why}: destination untouched`);
    else assert.not.ok(statSync(dest, { throwIfNoEntry: false }), `${why}: no file created`);
    const r = await sqlite.backup(src, dest); // auto: a full copy
    assert.is(r.incremental, false, why);
    assert.is(r.pagesWritten, r.pageCount, why);
    assert.is(dump(dest), dump(srcFile), why);
  }
  using empty = sqlite.open(":memory:");
  await sqlite.backup(src, empty, { incremental: true }).then(() => assert.unreachable("empty destination"),
    (e) => assert.match(String(e), "the destination is empty"));
  // Still declined: page 1 says WAL (a full backup of a WAL source wrote it) but the destination's
  // pager is not in WAL mode (in memory).
  src.exec("PRAGMA journal_mode=WAL");
  using memWal = sqlite.open(":memory:");
  await sqlite.backup(src, memWal, { incremental: false });
  await sqlite.backup(src, memWal, { incremental: true }).then(() => assert.unreachable("memory destination, WAL page 1"),
    (e) => assert.match(String(e), "WAL mode"));
  for (const bad of ["yes", 1, null]) {
    try {
      await sqlite.backup(src, fresh("x"), { incremental: bad as never });
      assert.unreachable(`incremental: ${String(bad)}`);
    } catch (e) {
      assert.instance(e, TypeError);
    }
  }
});

/** An onProgress that writes through the source's own connection between chunks, up to 10 times. */
function writesBetweenChunks(src: Database) {
  let writes = 0;
  return {
    onProgress: ({ remaining }: { remaining: number }) => {
      if (remaining > 0 && writes < 10) {
        src.run("INSERT INTO t(v) VALUES (randomblob(3000))");
        writes++;
      }
    },
    count: () => writes,
  };
}

test("a write through the source's connection between chunks restarts the compare, bounded", async () => {
  for (const memory of [false, true]) {
    const srcFile = memory ? ":memory:" : fresh("src");
    using src = makeSource(srcFile, 4096, "none", 3000);
    const prev = await previousBackup(src);
    const dest = fresh("dest");
    copyFileSync(prev, dest);
    const writer = writesBetweenChunks(src);
    const res = await sqlite.backup(src, dest, { incremental: true, pagesPerStep: 50, onProgress: writer.onProgress });
    assert.ok(res.incremental);
    assert.is(res.restarts, 3, "after 3 restarts the rest runs in one chunk, which nobody can interrupt");
    assert.ok(writer.count() >= 3);
    const want = fresh("want");
    await sqlite.backup(src, want, { incremental: false });
    assert.is(dump(dest), dump(want), `${memory ? "memory" : "file"} source: the copy is the source after its writes`);
    assert.is(integrity(dest), "ok");
  }
});

test("a rollback-journal source is held one chunk at a time: another connection commits between chunks at once, and the compare starts again", async () => {
  // "auto" takes this path over a rollback-journal source too: its writers must not wait for
  // the whole compare (a busy timeout of 0 would turn that wait into SQLITE_BUSY).
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 3000);
  const dest = await previousBackup(src);
  using other = sqlite.open(srcFile);
  other.exec("PRAGMA busy_timeout=0");
  let commits = 0;
  const res = await sqlite.backup(src, dest, {
    pagesPerStep: 50,
    onProgress: ({ remaining, pageCount }) => {
      if (commits < 2 && remaining < pageCount / 2) {
        other.run("UPDATE t SET v = randomblob(length(v)) WHERE id = ?", [commits * 100 + 7]); // throws SQLITE_BUSY while the source is held
        commits++;
      }
    },
  });
  assert.is(commits, 2);
  assert.ok(res.incremental, "auto is incremental over a rollback-journal source");
  assert.is(res.restarts, 2, "each commit between chunks restarted the compare");
  assert.is(dump(dest), dump(srcFile), "the copy is the source after the other connection's commits");
  assert.is(integrity(dest), "ok");
});

test("abort in the middle of the compare leaves the destination byte-for-byte as it was", async () => {
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 3000);
  const prev = await previousBackup(src);
  src.exec("UPDATE t SET v = randomblob(length(v))"); // every page differs: the writes are under way
  const dest = fresh("dest");
  copyFileSync(prev, dest);
  const before = readFileSync(dest);
  const ac = new AbortController();
  let events = 0;
  const reason = new Error("stop");
  try {
    await sqlite.backup(src, dest, {
      incremental: true, pagesPerStep: 16, signal: ac.signal,
      onProgress: () => { if (++events === 5) ac.abort(reason); },
    });
    assert.unreachable("must reject");
  } catch (e) {
    assert.is(e, reason);
  }
  assert.is(events, 5, "no chunk runs after the abort");
  assert.ok(readFileSync(dest).equals(before), "bytes unchanged");
  assert.not.ok(statSync(`${dest}-journal`, { throwIfNoEntry: false }), "no journal left");
  // The source is usable and unlocked again.
  src.run("INSERT INTO t(v) VALUES (1)");
});

test("changed pages past 8 MiB go to the destination's file between chunks: an abort after that still leaves the old bytes, and a whole run equals the backup API's", async () => {
  // incremental.ts flush(): the journal written back, then the cached pages written to the file.
  const srcFile = fresh("src");
  using src = makeSource(srcFile, 4096, "none", 60_000); // ~27 MiB
  const prev = await previousBackup(src);
  src.exec("UPDATE t SET v = randomblob(length(v))"); // every page differs: ~27 MiB to write
  const old = readFileSync(prev);
  const dest = fresh("dest");
  copyFileSync(prev, dest);
  const ac = new AbortController();
  const reason = new Error("stop");
  let writtenAt = -1; // bytes compared (every page differs: and written) when the file first changed
  const e = await rejects(sqlite.backup(src, dest, {
    pagesPerStep: 256, signal: ac.signal,
    onProgress: ({ remaining, pageCount }) => {
      if (writtenAt < 0 && !readFileSync(dest).equals(old)) {
        writtenAt = (pageCount - remaining) * 4096;
        ac.abort(reason);
      }
    },
  }));
  assert.is(e, reason);
  // Before the cache's own spill (16 MiB, wasm/pagediff.c) could have written them.
  assert.ok(writtenAt > 0 && writtenAt < 16 << 20, `pages reached the file after ${writtenAt} bytes`);
  assert.ok(readFileSync(dest).equals(old), "rolled back: the old bytes");
  assert.not.ok(statSync(`${dest}-journal`, { throwIfNoEntry: false }), "no journal left");
  const res = await checkOver(src, srcFile, prev, "a whole run");
  assert.ok(res.pagesWritten * 4096 > 16 << 20, `pagesWritten ${res.pagesWritten}`);
});

test("an I/O fault anywhere in an incremental backup leaves the old database (or, after the commit point, the new)", async () => {
  const fault = new FaultVfs(new NodeFsVfs());
  const fs: Sqlite = await loadSqlite({ vfs: [fault] });
  const srcFile = fresh("src");
  // ~150 KB: one of pagediff.c's 1 MiB read windows, so few I/O calls (more with the source guard).
  const s0 = makeSource(srcFile, 1024, "none", 300);
  s0.close();
  const template = fresh("tmpl");
  copyFileSync(srcFile, template);
  const edit = sqlite.open(srcFile);
  edit.exec("UPDATE t SET v = randomblob(length(v)) WHERE id % 7 = 0; DELETE FROM t WHERE id > 250");
  edit.close();
  const oldSha = judge(template).sha;
  const newSha = judge(srcFile).sha;
  let failures = 0;
  for (const persistent of [false, true]) {
    let n = 1;
    for (; ; n++) {
      const dest = fresh("fault");
      copyFileSync(template, dest);
      const source = fs.open(srcFile, { vfs: fault.name });
      fault.arm(n, { persistent, ops: ["read", "write", "sync", "truncate", "size", "open", "delete"] });
      let error: unknown = null;
      let res;
      try {
        res = await fs.backup(source, dest, { incremental: true, pagesPerStep: 16 });
      } catch (e) {
        error = e;
      }
      const hits = fault.hits;
      const committed = fault.deletedBeforeFault.includes(`${dest}-journal`);
      fault.disarm();
      source.close();
      const j = judge(dest);
      assert.is(j.integrity, "ok", `N=${n}`);
      if (error === null) {
        assert.ok(res!.incremental);
        assert.is(j.sha, newSha, `N=${n}: completed → new content`);
      } else {
        failures++;
        assert.ok(hits > 0, `N=${n}: error without a fault: ${String(error)}`);
        assert.instance(error, SqliteError, String(error));
        assert.is(j.sha, committed ? newSha : oldSha, `N=${n}: ${String(error)}`);
      }
      rmSync(dest, { force: true });
      if (hits === 0) break;
    }
    assert.ok(n > 5, `the sweep reached real I/O (${n} calls)`);
  }
  assert.ok(failures > 5, `faults made backups fail (${failures})`);
});

/**
 * A sparse database past 1 GiB (64 KiB pages): page 1 with table t, t's root at page 2, and every
 * other page on the freelist (trunk pages 3, 4, …; the leaves are holes), except the lock-byte
 * page 16385, which SQLite never uses.
 */
function sparseDatabase(file: string, pages: number, seed: number): void {
  const PAGE = 65536;
  const db = sqlite.open(file);
  db.exec(`PRAGMA page_size=${PAGE}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)`);
  db.run("INSERT INTO t(v) VALUES (randomblob(100)), (?)", [seed]);
  db.close();
  const fd = openSync(file, "r+");
  try {
    const page1 = Buffer.alloc(PAGE);
    readSync(fd, page1, 0, PAGE, 0);
    const pending = Math.floor(0x40000000 / PAGE) + 1;
    const leaves: number[] = [];
    const perTrunk = PAGE / 4 - 2;
    const trunks = Math.ceil((pages - 2) / (perTrunk + 1));
    for (let pg = 3 + trunks; pg <= pages; pg++) if (pg !== pending) leaves.push(pg);
    for (let i = 0; i < trunks; i++) {
      const trunk = Buffer.alloc(PAGE);
      const mine = leaves.slice(i * perTrunk, (i + 1) * perTrunk);
      trunk.writeUInt32BE(i + 1 < trunks ? 3 + i + 1 : 0, 0);
      trunk.writeUInt32BE(mine.length, 4);
      mine.forEach((pg, k) => trunk.writeUInt32BE(pg, 8 + 4 * k));
      writeSync(fd, trunk, 0, PAGE, (3 + i - 1) * PAGE);
    }
    page1.writeUInt32BE(pages, 28);
    page1.writeUInt32BE(3, 32);
    page1.writeUInt32BE(trunks + leaves.length, 36);
    writeSync(fd, page1, 0, PAGE, 0);
    ftruncateSync(fd, pages * PAGE);
  } finally {
    closeSync(fd);
  }
}

/** Calls check with page pg of both files, for pg from `from` to `to`. */
function pagePairs(fileA: string, fileB: string, size: number, from: number, to: number, check: (pg: number, a: Buffer, b: Buffer) => void): void {
  const a = Buffer.alloc(size);
  const b = Buffer.alloc(size);
  const fa = openSync(fileA, "r");
  const fb = openSync(fileB, "r");
  try {
    for (let pg = from; pg <= to; pg++) {
      readSync(fa, a, 0, size, (pg - 1) * size);
      readSync(fb, b, 0, size, (pg - 1) * size);
      check(pg, a, b);
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

test("a source past 1 GiB: the lock-byte page is skipped, every other page copied", async () => {
  const PAGE = 65536;
  const srcFile = fresh("big-src");
  const destFile = fresh("big-dest");
  sparseDatabase(srcFile, 16400, 1); // past the lock-byte page (16385)
  sparseDatabase(destFile, 16000, 2); // ends before it
  assert.is(integrity(srcFile), "ok", "the sparse source is a sound database");
  const before = Buffer.alloc(100);
  const dfd = openSync(destFile, "r");
  readSync(dfd, before, 0, 100, 0);
  closeSync(dfd);
  using src = sqlite.open(srcFile, { readonly: true });
  const r = await sqlite.backup(src, destFile, { incremental: true });
  assert.ok(r.incremental);
  assert.is(r.pageCount, 16400);
  // Pages past the destination's end but the lock-byte page, pages 1 (header) and 2 (t's rows),
  // and the two freelist trunks (3, 4), which list other leaves.
  assert.is(r.pagesWritten, (16400 - 16000 - 1) + 2 + 2);
  assert.is(integrity(destFile), "ok");
  assert.is(dump(destFile), dump(srcFile));
  // What the backup API writes: every page but the lock-byte one, page 1 with the destination's
  // change counter and schema cookie + 1 and this library's version number.
  assert.is(statSync(destFile).size, statSync(srcFile).size);
  pagePairs(srcFile, destFile, PAGE, 1, 16400, (pg, a, b) => {
    if (pg === 1) {
      assert.is(b.readUInt32BE(24), before.readUInt32BE(24) + 1, "change counter");
      assert.is(b.readUInt32BE(40), before.readUInt32BE(40) + 1, "schema cookie");
      assert.is(b.readUInt32BE(92), b.readUInt32BE(24), "version-valid-for");
      for (const at of [24, 40, 92, 96]) a.copy(b, at, at, at + 4);
    }
    if (pg === 16385) assert.ok(b.every((x) => x === 0), "the lock-byte page is left as it was (a hole)");
    else assert.ok(a.equals(b), `page ${pg}`);
  });
});

// The fresh copy (wasm/pagediff.c fresh_qualifies()): "auto" into a new or empty file writes the
// pages straight into it, not through the destination's pager; the result must be what the backup
// API makes of the same empty file.
test("a new or empty file gets the fresh copy: byte-equal to the backup API's, every page size, file, WAL and memory sources", async () => {
  for (const pageSize of [512, 4096, 65536]) {
    for (const kind of ["file", "wal", "memory"] as const) {
      const ctx = `page size ${pageSize}, ${kind} source`;
      const srcFile = fresh("fsrc");
      using file = makeSource(srcFile, pageSize, "none", pageSize === 65536 ? 300 : 1500);
      file.run("DELETE FROM t WHERE id % 7 = 0"); // free pages
      if (kind === "wal") {
        file.exec("PRAGMA journal_mode=WAL");
        file.run("UPDATE t SET v = randomblob(300) WHERE id % 5 = 0"); // frames in the -wal, not checkpointed
      }
      using mem = sqlite.open(":memory:");
      if (kind === "memory") await sqlite.backup(file, mem, { incremental: false });
      const source = kind === "memory" ? mem : file;
      const empty = fresh("fempty0");
      writeFileSync(empty, "");
      const want = reference(source, empty);
      const byName = fresh("fnew");
      const r = await sqlite.backup(source, byName, { pagesPerStep: 100 });
      assert.equal([r.incremental, r.pagesWritten, r.pagesCompared], [false, r.pageCount, 0], `${ctx}: reported as a full copy`);
      assert.ok(readFileSync(byName).equals(want), `${ctx}: a new file, bytes equal the backup API's`);
      const emptyFile = fresh("fempty");
      writeFileSync(emptyFile, "");
      {
        using d = sqlite.open(emptyFile);
        await sqlite.backup(source, d);
        assert.equal(d.get("SELECT count(*) AS n FROM t"), source.get("SELECT count(*) AS n FROM t"), `${ctx}: the destination connection sees the rows`);
      }
      assert.ok(readFileSync(emptyFile).equals(want), `${ctx}: an empty file, bytes equal the backup API's`);
      assert.is(integrity(emptyFile), "ok", ctx);
    }
  }
});

test("the fresh copy: a write through the source's connection restarts it (the file truncated, bounded); an abort removes a new file and empties an empty one", async () => {
  // A WAL file: the backup API updates its copy in place on its own connection's writes
  // (restarts 0); the fresh copy holds a snapshot and starts over.
  using src = makeSource(fresh("fsrc"), 4096, "none", 3000);
  src.exec("PRAGMA journal_mode=WAL");
  const dest = fresh("frestart");
  const writer = writesBetweenChunks(src);
  const res = await sqlite.backup(src, dest, { verifySource: false, pagesPerStep: 50, onProgress: writer.onProgress });
  assert.is(res.restarts, 3, "after 3 restarts the rest runs in one chunk");
  const want = fresh("fwant");
  writeFileSync(want, "");
  assert.ok(readFileSync(dest).equals(reference(src, want)), "the source after its writes, bytes equal the backup API's");

  const reason = new Error("stop");
  for (const existing of [false, true]) {
    const f = fresh("fabort");
    if (existing) writeFileSync(f, "");
    const ac = new AbortController();
    let events = 0;
    await sqlite.backup(src, f, { verifySource: false, pagesPerStep: 50, signal: ac.signal, onProgress: () => { if (++events === 5) ac.abort(reason); } })
      .then(() => assert.unreachable("must reject"), (e) => assert.is(e, reason));
    if (existing) assert.is(statSync(f).size, 0, "the empty file is empty again");
    else assert.not.ok(statSync(f, { throwIfNoEntry: false }), "the new file is removed");
    assert.not.ok(statSync(`${f}-journal`, { throwIfNoEntry: false }), "no journal left");
  }
});

test("the fresh copy of a source past 1 GiB: every page but the lock-byte one, equal to the source's", async () => {
  const PAGE = 65536;
  const srcFile = fresh("fbig-src");
  sparseDatabase(srcFile, 16400, 3);
  using src = sqlite.open(srcFile, { readonly: true });
  const dest = fresh("fbig-dest");
  const r = await sqlite.backup(src, dest, { verifySource: false });
  assert.is(r.pageCount, 16400);
  assert.is(statSync(dest).size, statSync(srcFile).size);
  pagePairs(srcFile, dest, PAGE, 2, 16400, (pg, a, b) => {
    if (pg === 16385) assert.ok(b.every((x) => x === 0), "the lock-byte page is not written (a hole)");
    else assert.ok(a.equals(b), `page ${pg}`);
  });
  assert.is(integrity(dest), "ok");
  rmSync(dest);
  rmSync(srcFile);
});

test("CLI: backup --force over the previous backup reports the changed pages; --full copies all", () => {
  const srcFile = fresh("src");
  const s = makeSource(srcFile, 4096, "none", 2000);
  s.close();
  const dest = fresh("dest");
  copyFileSync(srcFile, dest);
  const edit = sqlite.open(srcFile);
  edit.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 7"); // a rollback-journal source, the everyday case
  edit.close();
  const cliTs = join(import.meta.dirname, "..", "src", "cli.ts");
  const run = (...args: string[]) => execFileSync(process.execPath, ["--no-concurrent-recompilation", "--import", "tsx", cliTs, ...args],
    { encoding: "utf8", cwd: join(import.meta.dirname, "..") });
  const text = run("backup", srcFile, dest, "--force");
  assert.match(text, /^backup: copied the changed pages: [2-4] of \d+ pages changed/);
  assert.is(dump(dest), dump(srcFile));
  const json = run("backup", srcFile, dest, "--force", "--json", "--full").trim().split("\n").map((l) => JSON.parse(l));
  const done = json.find((e) => e.event === "done");
  assert.is(done.incremental, false);
  assert.is(done.pagesWritten, done.pageCount);
  assert.is(dump(dest), dump(srcFile));
});

// WAL destinations (a backup of a WAL source is one: page 1's bytes 18/19 are 2).
const walBytes = (file: string) => { const b = readFileSync(file); return [b[18], b[19]]; };
const walLeft = (file: string) => statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;

/** A WAL source of `rows` rows and its previous backup (a WAL-mode file, no -wal left). */
async function walPair(rows: number) {
  const srcFile = fresh("wsrc");
  const src = makeSource(srcFile, 4096, "none", rows);
  src.exec("PRAGMA journal_mode=WAL");
  const prev = await previousBackup(src);
  assert.equal(walBytes(prev), [2, 2], "the previous backup is in WAL mode");
  assert.is(walLeft(prev), 0, "no -wal left");
  return { src, srcFile, prev };
}

/** A copy of a WAL destination with its -wal: what a full backup runs over, for comparison. */
function walCopy(prev: string): string {
  const ref = fresh("wref");
  copyFileSync(prev, ref);
  copyFileSync(`${prev}-wal`, `${ref}-wal`);
  return ref;
}

/** After an incremental backup into `prev`: a full backup into `ref` (its old copy) gives the same bytes. */
async function assertLikeFullBackup(src: Database, prev: string, ref: string): Promise<void> {
  await sqlite.backup(src, ref, { incremental: false });
  assert.is(walLeft(prev), 0, "no -wal left (or an empty one)");
  assert.ok(readFileSync(prev).equals(readFileSync(ref)), "bytes equal the full backup's over a copy (db and -wal)");
  assert.is(judge(prev).integrity, "ok", "integrity_check");
}

test("WAL destination: a WAL source over its previous backup is incremental and byte-equal to a full backup", async () => {
  const { src, srcFile, prev } = await walPair(3000);
  try {
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id IN (7, 1500, 2999)");
    const ref = fresh("wref");
    copyFileSync(prev, ref);
    const want = reference(src, prev); // the backup API over a copy, closed (checkpointed)
    const r = await sqlite.backup(src, prev, {});
    assert.ok(r.incremental, "incremental");
    assert.ok(r.pagesWritten >= 2 && r.pagesWritten <= 6, `pages written: ${r.pagesWritten}`);
    assert.is(r.pagesCompared, r.pageCount);
    const full = await sqlite.backup(src, ref, { incremental: false });
    assert.is(full.incremental, false);
    assert.is(walLeft(prev), 0, "no -wal left (or an empty one)");
    const got = readFileSync(prev);
    assert.equal(walBytes(prev), [2, 2], "still a WAL-mode file");
    assert.ok(got.equals(readFileSync(ref)), "bytes equal the full backup's over a copy");
    assert.ok(got.equals(want), "bytes equal the backup API's over a copy");
    assert.is(judge(prev).integrity, "ok", "integrity_check");

    // A destination kept open: the backup checkpoints it (TRUNCATE), so the file holds the result.
    src.run("DELETE FROM t WHERE id % 97 = 0");
    const want2 = reference(src, prev);
    {
      using d = sqlite.open(prev);
      const r2 = await sqlite.backup(src, d, {});
      assert.ok(r2.incremental && r2.pagesWritten < r2.pageCount / 4, `open destination: ${r2.pagesWritten} of ${r2.pageCount}`);
      assert.is(walLeft(prev), 0, "open destination: the -wal is empty after the backup");
      assert.ok(readFileSync(prev).equals(want2), "open destination: bytes equal the backup API's");
      assert.is(d.get<{ n: number }>("SELECT count(*) n FROM t")!.n, src.get<{ n: number }>("SELECT count(*) n FROM t")!.n);
    }
    // A rollback-journal source over a WAL destination: page 1's bytes 18/19 stay 2, as in the backup API.
    src.exec("PRAGMA journal_mode=DELETE");
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 10");
    const want3 = reference(src, prev);
    assert.equal([want3[18], want3[19]], [2, 2], "the backup API keeps a WAL destination in WAL mode");
    const r3 = await sqlite.backup(src, prev, { incremental: true });
    assert.ok(r3.incremental);
    assert.ok(readFileSync(prev).equals(want3), "rollback source: bytes equal the backup API's");
  } finally {
    src.close();
  }
  assert.is(dump(prev), dump(srcFile), ".dump");
});

test("WAL destination with a non-empty -wal (the native CLI's commits): checkpointed, then compared", async () => {
  const { src, srcFile, prev } = await walPair(2000);
  try {
    // Commits of another writer that stay in the -wal: the backup must undo them too.
    cli(prev, "PRAGMA wal_autocheckpoint=0", ".dbconfig no_ckpt_on_close on", "UPDATE t SET v = zeroblob(length(v)) WHERE id % 200 = 3; DELETE FROM t WHERE id > 1990;");
    assert.ok(walLeft(prev) > 0, "the -wal holds the CLI's commits");
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 1000");
    const ref = walCopy(prev);
    const r = await sqlite.backup(src, prev, {});
    assert.ok(r.incremental, "incremental");
    assert.ok(r.pagesWritten < r.pageCount / 4, `pages written: ${r.pagesWritten} of ${r.pageCount}`);
    await assertLikeFullBackup(src, prev, ref);
    assert.is(walLeft(ref), 0, "reference: no -wal left");
  } finally {
    src.close();
  }
  assert.is(dump(prev), dump(srcFile), ".dump");
});

test("WAL destination with a reader in the way of the checkpoint: compared over its -wal, the reader keeps its snapshot", async () => {
  const { src, srcFile, prev } = await walPair(2000);
  try {
    // A reader of the file itself (the -wal empty): no frame can be checkpointed while it reads.
    using reader = sqlite.open(prev);
    reader.exec("BEGIN");
    const old = reader.get<{ n: number }>("SELECT count(*) n FROM t")!.n;
    {
      using w = sqlite.open(prev); // commits that stay in the -wal, pages the compare must read from there
      w.run("UPDATE t SET v = zeroblob(length(v)) WHERE id % 150 = 4");
      w.run("DELETE FROM t WHERE id > 1980");
    }
    assert.ok(walLeft(prev) > 0, "the -wal holds the commits");
    const ref = walCopy(prev);
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 33");
    const r = await sqlite.backup(src, prev, { pagesPerStep: 100 });
    assert.ok(r.incremental, "incremental");
    assert.ok(r.pagesWritten < r.pageCount / 4, `pages written: ${r.pagesWritten} of ${r.pageCount}`);
    assert.is(reader.get<{ n: number }>("SELECT count(*) n FROM t")!.n, old, "the reader's snapshot");
    reader.exec("COMMIT");
    assert.is(reader.get<{ n: number }>("SELECT count(*) n FROM t")!.n, src.get<{ n: number }>("SELECT count(*) n FROM t")!.n, "then the new content");
    reader.close(); // the last connection: checkpoints
    await assertLikeFullBackup(src, prev, ref);
  } finally {
    src.close();
  }
  assert.is(dump(prev), dump(srcFile), ".dump");
});

test("WAL destination kept open with a busy_timeout and a reader in the way: the checkpoints do not wait for it", async () => {
  const { src, srcFile, prev } = await walPair(1000);
  try {
    using reader = sqlite.open(prev);
    reader.exec("BEGIN");
    reader.get("SELECT count(*) FROM t");
    {
      using w = sqlite.open(prev);
      w.run("UPDATE t SET v = zeroblob(length(v)) WHERE id % 100 = 1");
    }
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id = 5");
    using d = sqlite.open(prev);
    d.exec("PRAGMA busy_timeout=3000");
    const t0 = performance.now();
    const r = await sqlite.backup(src, d, { incremental: true });
    const ms = performance.now() - t0;
    assert.ok(r.incremental);
    assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms (the busy handler would wait 3000 ms per checkpoint)`);
    assert.is(d.get<{ n: number }>("SELECT sum(length(v)) n FROM t")!.n, src.get<{ n: number }>("SELECT sum(length(v)) n FROM t")!.n);
    reader.exec("COMMIT");
  } finally {
    src.close();
  }
  assert.is(judge(prev).integrity, "ok", "integrity_check");
  assert.is(dump(prev), dump(srcFile), ".dump");
});

test("WAL destination: an abort in the middle leaves its old content (in the -wal too)", async () => {
  const { src, prev } = await walPair(3000);
  try {
    cli(prev, "PRAGMA wal_autocheckpoint=0", ".dbconfig no_ckpt_on_close on", "UPDATE t SET v = zeroblob(10) WHERE id % 100 = 5;");
    const before = judge(prev);
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id % 3 = 0"); // most pages differ
    const ac = new AbortController();
    let calls = 0;
    const err = await sqlite.backup(src, prev, {
      incremental: true, pagesPerStep: 64, signal: ac.signal, onProgress: () => { if (++calls === 3) ac.abort(); },
    }).then(() => null, (e) => e);
    assert.ok(err instanceof Error && err.name === "AbortError", String(err));
    const after = judge(prev);
    assert.is(after.integrity, "ok", "integrity_check");
    assert.is(after.sha, before.sha, "the old content");
  } finally {
    src.close();
  }
});

test("every allocation is released: memoryUsed() returns to its baseline", async () => {
  const srcFile = fresh("src");
  const s = makeSource(srcFile, 4096, "none", 1000);
  s.close();
  const prev = fresh("prev");
  copyFileSync(srcFile, prev);
  const cycle = async () => {
    const src = sqlite.open(srcFile);
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id % 50 = 0");
    await sqlite.backup(src, prev, { incremental: true }); // success
    const ac = new AbortController();
    await sqlite.backup(src, prev, { incremental: true, pagesPerStep: 16, signal: ac.signal, onProgress: () => ac.abort() }).catch(() => {});
    const wal = fresh("wal");
    const w = sqlite.open(wal);
    w.exec("PRAGMA journal_mode=WAL; CREATE TABLE z(q)");
    w.run("INSERT INTO z VALUES (1)"); // a non-empty -wal
    await sqlite.backup(src, w, { incremental: true }); // a WAL destination: checkpointed, compared, checkpointed
    const ac2 = new AbortController();
    src.run("UPDATE t SET v = randomblob(length(v)) WHERE id % 50 = 1");
    await sqlite.backup(src, w, { incremental: true, pagesPerStep: 16, signal: ac2.signal, onProgress: () => ac2.abort() }).catch(() => {});
    w.close();
    src.close();
  };
  await cycle(); // warm-up: lazily created module state
  const base = sqlite.memoryUsed();
  for (let i = 0; i < 3; i++) await cycle();
  assert.is(sqlite.memoryUsed(), base);
});

test.run();
