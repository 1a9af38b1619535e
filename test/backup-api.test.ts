// The wrapper's own promises: misuse gives clear errors, handles never dangle, the heap returns
// to baseline, and backup() reports progress, aborts, retries BUSY and cleans up after itself.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, NodeFsVfs, SqliteError, type Database } from "../src/index.js";
import { cli, dump, fill, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;


const misuse = suite("misuse and lifetimes");

misuse("step() takes only integers", () => {
  using src = sqlite.open(":memory:");
  using dst = sqlite.open(":memory:");
  using b = sqlite.backupInit(dst, "main", src, "main");
  for (const bad of [1.5, NaN, Infinity, "5", null, 5n]) {
    assert.throws(() => b.step(bad as number), (e: unknown) => e instanceof TypeError, String(bad));
  }
  assert.is(b.step(), "done");
});

misuse("any call after finish() throws a plain Error and touches no freed memory", () => {
  using src = sqlite.open(":memory:");
  fill(src, 30);
  using dst = sqlite.open(":memory:");
  const b = sqlite.backupInit(dst, "main", src, "main");
  b.step(2);
  b.finish();
  const isFinished = (e: unknown) => e instanceof Error && !(e instanceof SqliteError) && /finished/.test((e as Error).message);
  assert.throws(() => b.step(), isFinished);
  assert.throws(() => b.finish(), isFinished);
  assert.ok(b.remaining > 0, "counters keep their last values");
  assert.ok(b.pageCount > 0);
  b[Symbol.dispose](); // never throws
});

misuse("closing a database with an unfinished backup finishes the backup first", () => {
  const dir = tmpDir();
  using src = sqlite.open(":memory:");
  fill(src, 100);
  const dst = sqlite.open(join(dir, "d.db"));
  dst.exec("CREATE TABLE old(a); INSERT INTO old VALUES (1)");
  const before = dump(join(dir, "d.db"));
  const b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(5), "ok");
  src.close(); // the source goes first: the backup is finished, the destination rolled back
  assert.throws(() => b.step(), /finished \(its database was closed\)/);
  assert.is(dst.get("SELECT a FROM old")?.a, 1);
  dst.close();
  dst.close(); // idempotent
  assert.is(dump(join(dir, "d.db")), before);
});

misuse("a closed database gives a clear error everywhere", () => {
  const db = sqlite.open(":memory:");
  db.close();
  assert.is(db.isOpen, false);
  for (const call of [() => db.exec("SELECT 1"), () => db.run("SELECT 1"), () => db.get("SELECT 1"), () => db.all("SELECT 1"),
    () => db.serialize(), () => sqlite.backupInit(db, "main", sqlite.open(":memory:"), "main")]) {
    assert.throws(call, /is closed/);
  }
  db[Symbol.dispose]();
});

misuse("databases of two instances cannot meet in one backup", async () => {
  const other = await loadSqlite({ wasm: new URL("../wasm/sqlite3.wasm", import.meta.url) });
  assert.is.not(other, sqlite);
  assert.is(await loadSqlite(), sqlite, "loadSqlite() without options returns the shared instance");
  using a = sqlite.open(":memory:");
  using b = other.open(":memory:");
  assert.throws(() => sqlite.backupInit(a, "main", b, "main"), /another Sqlite instance/);
  assert.throws(() => sqlite.backupInit({} as Database, "main", a, "main"), (e: unknown) => e instanceof TypeError);
  assert.throws(() => sqlite.backupInit(a, 1 as unknown as string, a, "main"), (e: unknown) => e instanceof TypeError);
});

misuse("open errors are SqliteErrors with codes and leak nothing", () => {
  const dir = tmpDir();
  const base = sqlite.memoryUsed();
  let e: unknown;
  try {
    sqlite.open(join(dir, "missing", "x.db"));
  } catch (err) {
    e = err;
  }
  assert.instance(e, SqliteError);
  assert.is((e as SqliteError).codeName, "SQLITE_CANTOPEN");
  assert.match((e as Error).message, /unable to open database file/);
  assert.throws(() => sqlite.open(join(dir, "nope.db"), { create: false }), (x: unknown) => (x as SqliteError).code === 14);
  assert.throws(() => sqlite.open(":memory:", { vfs: "nosuch" }), /no such vfs/);
  writeFileSync(join(dir, "garbage.db"), "this is not a database, just text that is long enough to have a header".repeat(20));
  using g = sqlite.open(join(dir, "garbage.db"));
  assert.throws(() => g.get("SELECT * FROM sqlite_schema"), (x: unknown) => (x as SqliteError).codeName === "SQLITE_NOTADB");
  g.close();
  assert.is(sqlite.memoryUsed(), base);
});

misuse("thousands of init/step/finish cycles return the heap to its baseline", () => {
  using src = sqlite.open(":memory:");
  fill(src, 50);
  using dst = sqlite.open(":memory:");
  // warm up lazily allocated state (schema, the destination's pages) before taking the baseline
  const warm = sqlite.backupInit(dst, "main", src, "main");
  warm.step(-1);
  warm.finish();
  const base = sqlite.memoryUsed();
  for (let i = 0; i < 3000; i++) {
    const b = sqlite.backupInit(dst, "main", src, "main");
    b.step(i % 7);
    if (i % 3 === 0) b.step(-1);
    b.finish();
    if (i % 500 === 0) {
      try {
        sqlite.backupInit(src, "main", src, "main");
      } catch {
        // the failed init must not leak either
      }
    }
  }
  assert.is(sqlite.memoryUsed(), base);
});

misuse.run();

const loop = suite("backup()");

loop("reports progress, ends with a final 0-remaining event, and commits before resolving", async () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 500);
  const events: { remaining: number; pageCount: number }[] = [];
  const res = await sqlite.backup(src, join(dir, "d.db"), { pagesPerStep: 10, onProgress: (p) => void events.push(p) });
  const total = src.get<{ n: number }>("SELECT page_count n FROM pragma_page_count")!.n;
  assert.is(res.pageCount, total);
  assert.is(res.steps, Math.ceil(total / 10));
  assert.is(res.restarts, 0);
  assert.ok(res.elapsedMs >= 0);
  assert.equal(events.at(-1), { remaining: 0, pageCount: total });
  assert.is(events.length, res.steps); // one per "ok" step plus the final event
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.remaining < events[i - 1]!.remaining);
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

loop("onProgress can change the step size; pauseMs waits between steps", async () => {
  using src = sqlite.open(":memory:");
  fill(src, 300);
  using dst = sqlite.open(":memory:");
  let calls = 0;
  const res = await sqlite.backup(src, dst, { pagesPerStep: 1, pauseMs: 1, onProgress: () => (++calls === 1 ? -1 : undefined) });
  assert.is(res.steps, 2, "one page, then everything");
  assert.equal(dst.all("SELECT s FROM t"), src.all("SELECT s FROM t"));
});

loop("abort: the destination is rolled back and the promise rejects with signal.reason", async () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 2000);
  const dPath = join(dir, "d.db");
  { using d = sqlite.open(dPath); d.exec("CREATE TABLE precious(a); INSERT INTO precious VALUES ('kept')"); }
  const before = dump(dPath);
  const ac = new AbortController();
  const reason = new Error("user cancelled");
  let steps = 0;
  const e = await rejects(sqlite.backup(src, dPath, { pagesPerStep: 20, signal: ac.signal, onProgress: () => { if (++steps === 5) ac.abort(reason); } }));
  assert.is(e, reason);
  assert.is(integrity(dPath), "ok");
  assert.is(dump(dPath), before);
  assert.is(existsSync(`${dPath}-journal`), false);
  // an already aborted signal rejects before touching anything
  const e2 = await rejects(sqlite.backup(src, join(dir, "never.db"), { signal: AbortSignal.abort(reason) }));
  assert.is(e2, reason);
  assert.is(existsSync(join(dir, "never.db")), false);
});

loop("a destination file this call created is removed again when the backup fails", async () => {
  const dir = tmpDir();
  using src = sqlite.open(":memory:");
  fill(src, 100);
  const ac = new AbortController();
  const p = sqlite.backup(src, join(dir, "new.db"), { pagesPerStep: 1, signal: ac.signal, onProgress: () => ac.abort() });
  await rejects(p);
  assert.is(existsSync(join(dir, "new.db")), false);
});

loop("BUSY is retried until the destination is free", async () => {
  const dir = tmpDir();
  using src = sqlite.open(":memory:");
  fill(src, 100);
  using other = sqlite.open(join(dir, "d.db"));
  other.exec("CREATE TABLE x(a); BEGIN IMMEDIATE; INSERT INTO x VALUES (1)");
  setTimeout(() => other.exec("COMMIT"), 30);
  const res = await sqlite.backup(src, join(dir, "d.db"), { busyTimeoutMs: 10_000 });
  assert.ok(res.steps > 1, "at least one busy step before the copy");
  other.close();
  assert.is(integrity(join(dir, "d.db")), "ok");
});

loop("BUSY longer than busyTimeoutMs rejects with SQLITE_BUSY and leaves the destination alone", async () => {
  const dir = tmpDir();
  using src = sqlite.open(":memory:");
  fill(src, 100);
  using other = sqlite.open(join(dir, "d.db"));
  other.exec("CREATE TABLE x(a); INSERT INTO x VALUES ('mine'); BEGIN IMMEDIATE; INSERT INTO x VALUES ('pending')");
  const e = await rejects(sqlite.backup(src, join(dir, "d.db"), { busyTimeoutMs: 20 }));
  assert.instance(e, SqliteError);
  assert.is((e as SqliteError).codeName, "SQLITE_BUSY");
  other.exec("COMMIT");
  assert.equal(other.all("SELECT a FROM x"), [{ a: "mine" }, { a: "pending" }]);
});

loop("source and destination schema names", async () => {
  const dir = tmpDir();
  using db = sqlite.open(":memory:");
  db.exec(`ATTACH '${join(dir, "aux.db")}' AS aux; CREATE TABLE aux.a(x); INSERT INTO aux.a VALUES (42)`);
  using into = sqlite.open(":memory:");
  into.exec(`ATTACH '${join(dir, "copy.db")}' AS copy`);
  await sqlite.backup(db, into, { sourceName: "aux", destName: "copy" });
  assert.equal(into.all("SELECT x FROM copy.a"), [{ x: 42 }]);
  const e = await rejects(sqlite.backup(db, into, { sourceName: "nosuch" }));
  assert.instance(e, SqliteError);
});

loop("restore: file → memory → new file round trip", async () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 400);
  using mem = sqlite.open(":memory:");
  await sqlite.backup(src, mem);
  mem.run("UPDATE t SET s = upper(s) WHERE id < 10");
  await sqlite.backup(mem, join(dir, "s.db"));
  assert.is(src.get("SELECT s FROM t WHERE id = 1")?.s, "ROW 1");
  assert.is(integrity(join(dir, "s.db")), "ok");
});

loop("a source written by the same program between every step finishes in bounded time with a committed state", async () => {
  for (const where of ["memory", "file"]) {
    const dir = tmpDir();
    using src = sqlite.open(where === "memory" ? ":memory:" : join(dir, "s.db"));
    using writer = where === "memory" ? null : sqlite.open(join(dir, "s.db"));
    src.exec("CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, pad BLOB)");
    src.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO acct SELECT i, 100, randomblob(200) FROM n`);
    const w = writer ?? src;
    let moves = 0;
    const timer = setInterval(() => {
      const a = 1 + (moves * 7919) % 3000, b = 1 + (moves * 104729) % 3000;
      w.exec(`BEGIN; UPDATE acct SET bal = bal - 1 WHERE id = ${a}; UPDATE acct SET bal = bal + 1 WHERE id = ${b}; COMMIT`);
      moves++;
    }, 1);
    try {
      using dst = sqlite.open(":memory:");
      const res = await sqlite.backup(src, dst, { pagesPerStep: 2, pauseMs: 1 });
      assert.ok(moves > 0, "writes happened during the backup");
      assert.ok(res.restarts > 0, `${where}: restarts were seen`);
      assert.is(dst.get<{ s: number }>("SELECT sum(bal) s FROM acct")!.s, 300000, "a committed state");
    } finally {
      clearInterval(timer);
    }
  }
});

/** The default VFS, counting the syncs of each file's name suffix ("" for the database, "-journal"). */
class SyncCountingVfs extends NodeFsVfs {
  override readonly name = "sync-counting" as "node-fs";
  syncs = new Map<string, number>();
  override open(name: string | null, flags: number) {
    const r = super.open(name, flags);
    const suffix = /-(journal|wal)$/.exec(name ?? "")?.[0] ?? "";
    const file = r.file;
    const sync = file.sync.bind(file);
    file.sync = (flags: number) => {
      this.syncs.set(suffix, (this.syncs.get(suffix) ?? 0) + 1);
      return sync(flags);
    };
    return r;
  }
}

loop("a full copy over an existing database spills its cache rarely (journal synced at the commit only), then the connection's threshold is its own again", async () => {
  const counting = new SyncCountingVfs();
  const own = await loadSqlite({ vfs: [counting] });
  const dir = tmpDir();
  const path = join(dir, "d.db");
  using src = own.open(":memory:");
  fill(src, 20_000); // ~10 MiB: 2,500 pages, five times what the default cache holds
  {
    using old = own.open(path, { vfs: counting.name });
    fill(old, 3_000);
    old.run("UPDATE t SET s = 'old ' || id");
  }
  using dest = own.open(path, { vfs: counting.name });
  dest.exec("PRAGMA cache_size = 300");
  const threshold = () => dest.get<{ cache_spill: number }>("PRAGMA cache_spill")!.cache_spill;
  assert.is(threshold(), 300);
  counting.syncs.clear();
  const r = await own.backup(src, dest, { incremental: false, pagesPerStep: 100 });
  assert.is(r.incremental, false);
  // Rollback journal, synchronous=FULL: the commit syncs the journal twice (before and after its
  // header's record count), then the database. A spill would add two journal syncs each.
  assert.is(counting.syncs.get("-journal"), 2, JSON.stringify([...counting.syncs]));
  assert.is(threshold(), 300, "the connection's spill threshold is its own again");
  dest.close();
  assert.is(integrity(path), "ok");
  assert.is(cli(path, "SELECT count(*), sum(length(v)) FROM t WHERE s LIKE 'row %'").trim(), "20000|8000000", "the source's rows, none of the old");
});

loop.run();
