// Every statement of SQLite's backup API documentation, checked against real files, with the
// native sqlite3 CLI as the independent reader of what we write.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SqliteError, type Database } from "../src/index.js";
import { cli, dump, fill, integrity, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const test = suite("backup semantics");

function pages(db: Database): number {
  return db.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
}
function expectSqliteError(fn: () => unknown, codeName: string): SqliteError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, SqliteError);
    assert.is((e as SqliteError).codeName, codeName, (e as Error).message);
    return e as SqliteError;
  }
  assert.unreachable(`expected ${codeName}`);
  throw new Error("unreachable");
}

test("remaining and pageCount are 0 before the first step and change only at a step", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  using dst = sqlite.open(join(dir, "d.db"));
  fill(src, 200);
  const total = pages(src);
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.remaining, 0);
  assert.is(b.pageCount, 0);
  assert.is(b.step(), "ok"); // default: 5 pages
  assert.is(b.pageCount, total);
  assert.is(b.remaining, total - 5);
  fill(src, 100); // through the same connection
  assert.is(b.pageCount, total, "not updated until the next step");
  assert.is(b.remaining, total - 5);
  assert.is(b.step(3), "ok");
  assert.ok(b.pageCount > total);
  assert.is(b.remaining, b.pageCount - 8, "same connection: updated in place, no restart");
  assert.is(b.step(-1), "done");
  assert.is(b.remaining, 0);
  assert.ok(b.done);
  b.finish();
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

test("a negative page count copies everything in one step", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  using dst = sqlite.open(join(dir, "d.db"));
  fill(src, 100);
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(-7), "done");
  assert.is(b.pageCount, pages(src));
  b.finish();
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

test("same connection on both sides: init fails with the error stored on the destination", () => {
  using db = sqlite.open(":memory:");
  const e = expectSqliteError(() => sqlite.backupInit(db, "main", db, "main"), "SQLITE_ERROR");
  assert.match(e.message, /source and destination must be distinct/);
});

test("a destination with an open read transaction cannot be initialised", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  using dst = sqlite.open(join(dir, "d.db"));
  fill(src, 10);
  dst.exec("CREATE TABLE x(a); INSERT INTO x VALUES (1); BEGIN; SELECT * FROM x;");
  const e = expectSqliteError(() => sqlite.backupInit(dst, "main", src, "main"), "SQLITE_ERROR");
  assert.match(e.message, /destination database is in use/);
  dst.exec("COMMIT");
});

test("finish before DONE rolls the destination back", () => {
  const dir = tmpDir();
  const dPath = join(dir, "d.db");
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 2000);
  {
    using dst = sqlite.open(dPath);
    dst.exec("CREATE TABLE old(a); INSERT INTO old VALUES ('kept')");
  }
  const before = dump(dPath);
  using dst = sqlite.open(dPath);
  dst.exec("PRAGMA cache_size=2"); // force pages out to the file (and journal) mid-backup
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(100), "ok");
  assert.is(b.step(100), "ok");
  b.finish();
  assert.is(dst.get("SELECT a FROM old")?.a, "kept");
  assert.is(integrity(dPath), "ok");
  assert.is(dump(dPath), before);
});

test("read-only destination: SQLITE_READONLY from step and again from finish", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 10);
  { using d = sqlite.open(join(dir, "d.db")); d.exec("CREATE TABLE x(a)"); }
  using dst = sqlite.open(join(dir, "d.db"), { readonly: true });
  const b = sqlite.backupInit(dst, "main", src, "main");
  const first = expectSqliteError(() => b.step(-1), "SQLITE_READONLY");
  expectSqliteError(() => b.step(-1), "SQLITE_READONLY"); // after a fatal error step only repeats it
  const again = expectSqliteError(() => b.finish(), "SQLITE_READONLY");
  assert.is(again.extendedCode, first.extendedCode);
});

test("WAL destination with a different page size: SQLITE_READONLY from step and finish", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 10, 1024);
  using dst = sqlite.open(join(dir, "d.db"));
  dst.exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL; CREATE TABLE kept(a); INSERT INTO kept VALUES (1)");
  const b = sqlite.backupInit(dst, "main", src, "main");
  expectSqliteError(() => b.step(-1), "SQLITE_READONLY");
  expectSqliteError(() => b.finish(), "SQLITE_READONLY");
  assert.is(dst.get("SELECT count(*) n FROM kept")?.n, 1);
});

test("populated in-memory destination with a different page size: SQLITE_READONLY", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 10, 1024);
  using dst = sqlite.open(":memory:");
  dst.exec("PRAGMA page_size=8192; CREATE TABLE kept(a)");
  const b = sqlite.backupInit(dst, "main", src, "main");
  expectSqliteError(() => b.step(-1), "SQLITE_READONLY");
  expectSqliteError(() => b.finish(), "SQLITE_READONLY");
});

test("WAL destination with the same page size is fine", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 50);
  using dst = sqlite.open(join(dir, "d.db"));
  dst.exec("PRAGMA journal_mode=WAL; CREATE TABLE gone(a)");
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(-1), "done");
  b.finish();
  dst.close();
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

test("BUSY while another connection holds the destination, then completes", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 50);
  using dst = sqlite.open(join(dir, "d.db"));
  using other = sqlite.open(join(dir, "d.db"));
  other.exec("CREATE TABLE x(a); BEGIN IMMEDIATE; INSERT INTO x VALUES (1)");
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(-1), "busy");
  assert.is(b.step(-1), "busy", "still busy, nothing lost");
  other.exec("COMMIT");
  assert.is(b.step(-1), "done");
  b.finish();
  other.close();
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

test("source written through another connection: the backup restarts and ends equal to the final source", () => {
  const dir = tmpDir();
  using src = sqlite.open(join(dir, "s.db"));
  using writer = sqlite.open(join(dir, "s.db"));
  fill(src, 300);
  using dst = sqlite.open(join(dir, "d.db"));
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(10), "ok");
  assert.is(b.step(10), "ok");
  const copiedBefore = b.pageCount - b.remaining;
  assert.is(copiedBefore, 20);
  writer.run("UPDATE t SET s = 'changed' WHERE id % 7 = 0");
  assert.is(b.step(10), "ok");
  assert.is(b.pageCount - b.remaining, 10, "restarted from page 1");
  assert.is(b.step(-1), "done");
  b.finish();
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
  assert.match(dump(join(dir, "d.db")), /changed/);
});

test("in-memory source written by its own connection: the copy ends equal to the final source", () => {
  using src = sqlite.open(":memory:");
  fill(src, 300);
  using dst = sqlite.open(":memory:");
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(10), "ok");
  src.run("DELETE FROM t WHERE id % 3 = 0");
  let rc;
  while ((rc = b.step(10)) === "ok");
  assert.is(rc, "done");
  b.finish();
  assert.equal(dst.all("SELECT id, s FROM t"), src.all("SELECT id, s FROM t"));
});

test("attached and temp schemas as source and destination names", () => {
  const dir = tmpDir();
  using db = sqlite.open(":memory:");
  db.exec(`ATTACH '${join(dir, "aux.db")}' AS aux; CREATE TABLE aux.a(x); INSERT INTO aux.a VALUES ('from aux');
           CREATE TEMP TABLE tt(y); INSERT INTO tt VALUES ('from temp')`);
  using out = sqlite.open(join(dir, "out.db"));
  using b1 = sqlite.backupInit(out, "main", db, "aux");
  assert.is(b1.step(-1), "done");
  b1.finish();
  assert.equal(out.all("SELECT x FROM a"), [{ x: "from aux" }]);
  using out2 = sqlite.open(":memory:");
  using b2 = sqlite.backupInit(out2, "main", db, "temp");
  assert.is(b2.step(-1), "done");
  b2.finish();
  assert.equal(out2.all("SELECT y FROM tt"), [{ y: "from temp" }]);
  // and into an attached destination schema
  using holder = sqlite.open(":memory:");
  holder.exec(`ATTACH '${join(dir, "target.db")}' AS target`);
  using b3 = sqlite.backupInit(holder, "target", out, "main");
  assert.is(b3.step(-1), "done");
  b3.finish();
  assert.equal(holder.all("SELECT x FROM target.a"), [{ x: "from aux" }]);
  holder.exec("DETACH target");
  assert.is(integrity(join(dir, "target.db")), "ok");
  const e = expectSqliteError(() => sqlite.backupInit(out, "main", db, "nosuch"), "SQLITE_ERROR");
  assert.match(e.message, /unknown database nosuch/);
});

test("a destination larger than the source is truncated", () => {
  const dir = tmpDir();
  using big = sqlite.open(join(dir, "d.db"));
  fill(big, 2000);
  big.close();
  const bigSize = statSync(join(dir, "d.db")).size;
  using src = sqlite.open(join(dir, "s.db"));
  fill(src, 20);
  using dst = sqlite.open(join(dir, "d.db"));
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(-1), "done");
  b.finish();
  dst.close();
  const size = statSync(join(dir, "d.db")).size;
  assert.ok(size < bigSize);
  assert.is(size, pages(src) * 4096);
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(dump(join(dir, "d.db")), dump(join(dir, "s.db")));
});

test("a 0-byte source gives a valid one-page destination", () => {
  const dir = tmpDir();
  writeFileSync(join(dir, "empty.db"), "");
  using src = sqlite.open(join(dir, "empty.db"));
  using dst = sqlite.open(join(dir, "d.db"));
  dst.exec("CREATE TABLE gone(a)");
  using b = sqlite.backupInit(dst, "main", src, "main");
  assert.is(b.step(-1), "done");
  b.finish();
  dst.close();
  assert.is(integrity(join(dir, "d.db")), "ok");
  assert.is(statSync(join(dir, "d.db")).size, 4096);
  assert.is(dump(join(dir, "d.db")).includes("gone"), false);
});

for (const size of [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]) {
  const other = size === 65536 ? 512 : size * 2;
  test(`page size ${size} → ${other} and ${other} → ${size}`, () => {
    const dir = tmpDir();
    using a = sqlite.open(join(dir, "a.db"));
    fill(a, 60, size);
    using b = sqlite.open(join(dir, "b.db"));
    b.exec(`PRAGMA page_size=${other}; CREATE TABLE gone(x); INSERT INTO gone VALUES (1)`);
    using bk = sqlite.backupInit(b, "main", a, "main");
    while (bk.step(3) === "ok");
    bk.finish();
    assert.is(cli(join(dir, "b.db"), "PRAGMA page_size").trim(), String(size));
    using c = sqlite.open(join(dir, "c.db"));
    c.exec(`PRAGMA page_size=${other}`);
    c.close();
    using back = sqlite.open(":memory:");
    back.exec(`PRAGMA page_size=${other}`);
    using bk2 = sqlite.backupInit(back, "main", b, "main");
    assert.is(bk2.step(-1), "done");
    bk2.finish();
    b.close();
    assert.is(integrity(join(dir, "b.db")), "ok");
    assert.is(dump(join(dir, "b.db")), dump(join(dir, "a.db")));
    assert.equal(back.all("SELECT id, s FROM t"), a.all("SELECT id, s FROM t"));
  });
}

test.run();
