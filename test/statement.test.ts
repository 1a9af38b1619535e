// Prepared statements, transactions, busyTimeoutMs and deserialize(): binding and values, the
// statement's lifetime (finalize, using, a closed database, the heap back to its baseline),
// iterators stopped early, errors with their codes, and images the native CLI wrote.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, SqliteError, Statement } from "../src/index.js";
import { cli, tmpDir } from "./helpers.js";

// An instance of its own: no other suite's connections count in memoryUsed().
const sqlite = await loadSqlite();

const isSqliteError = (codeName: string) => (e: unknown) => e instanceof SqliteError && e.codeName === codeName;

/** A gc() for the finalizer tests, or null where the runtime offers none. */
async function gcFunction(): Promise<(() => void) | null> {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (typeof g.gc === "function") return g.gc;
  if (g.Bun) return () => g.Bun!.gc(true);
  try {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  } catch {
    return null;
  }
}

const stmts = suite("prepare(): running and binding");

stmts("run/get/all/iterate; reader, readonly, columnNames, source", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL)");
  using ins = db.prepare("INSERT INTO t(name, score) VALUES (?, ?)");
  assert.ok(ins instanceof Statement);
  assert.is(ins.reader, false);
  assert.is(ins.readonly, false);
  assert.equal(ins.columnNames, []);
  assert.is(ins.source, "INSERT INTO t(name, score) VALUES (?, ?)");
  assert.is(ins.database, db);
  assert.equal(ins.run(["a", 1.5]), { changes: 1, lastInsertRowid: 1 });
  assert.equal(ins.run(["b", 2]), { changes: 1, lastInsertRowid: 2 });
  assert.equal(ins.run(["c", null]), { changes: 1, lastInsertRowid: 3 });
  using sel = db.prepare<{ id: number; name: string; score: number | null }>("SELECT id, name, score FROM t WHERE id >= ? ORDER BY id");
  assert.is(sel.reader, true);
  assert.is(sel.readonly, true);
  assert.equal(sel.columnNames, ["id", "name", "score"]);
  assert.equal(sel.get([2]), { id: 2, name: "b", score: 2 });
  assert.is(sel.get([99]), undefined);
  assert.equal(sel.all([2]), [{ id: 2, name: "b", score: 2 }, { id: 3, name: "c", score: null }]);
  assert.equal(sel.all([99]), []);
  assert.equal([...sel.iterate([1])].map((r) => r.name), ["a", "b", "c"]);
  // a statement that returns no rows runs through get() and all() as well
  using del = db.prepare("DELETE FROM t WHERE id = ?");
  assert.is(del.get([3]), undefined);
  assert.equal(db.all("SELECT count(*) n FROM t"), [{ n: 2 }]);
  // RETURNING: rows and changes
  using upd = db.prepare("UPDATE t SET score = score * 2 RETURNING id, score");
  assert.is(upd.reader, true);
  assert.equal(upd.all(), [{ id: 1, score: 3 }, { id: 2, score: 4 }]);
});

stmts("binds every type: numbers, bigints, text, blobs of every view, null, booleans", () => {
  using db = sqlite.open(":memory:");
  using q = db.prepare("SELECT ? v, typeof(?1) t");
  const round = (v: unknown) => q.get([v])!;
  assert.equal(round(0), { v: 0, t: "integer" });
  assert.equal(round(-1), { v: -1, t: "integer" });
  assert.equal(round(2 ** 31), { v: 2 ** 31, t: "integer" }, "past int32: bound as int64");
  assert.equal(round(-(2 ** 31) - 1), { v: -(2 ** 31) - 1, t: "integer" });
  assert.equal(round(Number.MAX_SAFE_INTEGER), { v: Number.MAX_SAFE_INTEGER, t: "integer" });
  assert.equal(round(Number.MIN_SAFE_INTEGER), { v: Number.MIN_SAFE_INTEGER, t: "integer" });
  assert.equal(round(2 ** 53), { v: 2 ** 53, t: "real" }, "an unsafe number stays a double");
  assert.equal(round(1.25), { v: 1.25, t: "real" });
  assert.equal(round(-0), { v: 0, t: "integer" });
  assert.equal(round(Infinity), { v: Infinity, t: "real" });
  assert.equal(round(NaN), { v: null, t: "null" }, "SQLite stores NaN as NULL");
  assert.equal(round(2n ** 63n - 1n), { v: 2n ** 63n - 1n, t: "integer" });
  assert.equal(round(-(2n ** 63n)), { v: -(2n ** 63n), t: "integer" });
  assert.equal(round(2n ** 53n), { v: 2n ** 53n, t: "integer" }, "integers past 2^53 come back as bigint");
  assert.equal(round(-(2n ** 53n) - 1n), { v: -(2n ** 53n) - 1n, t: "integer" });
  assert.equal(round(42n), { v: 42, t: "integer" }, "safe integers come back as numbers");
  assert.throws(() => round(2n ** 63n), (e: unknown) => e instanceof RangeError);
  assert.throws(() => round(-(2n ** 63n) - 1n), (e: unknown) => e instanceof RangeError);
  assert.equal(round(true), { v: 1, t: "integer" });
  assert.equal(round(false), { v: 0, t: "integer" });
  assert.equal(round(null), { v: null, t: "null" });
  assert.equal(round(undefined), { v: null, t: "null" });
  assert.equal(round(""), { v: "", t: "text" }, "the empty string is text, not NULL");
  assert.equal(round("héllo ✓ 🙂"), { v: "héllo ✓ 🙂", t: "text" });
  assert.equal(round("a\0b"), { v: "a\0b", t: "text" }, "a NUL inside text is data");
  const long = "é".repeat(100_000); // past the reusable buffer
  assert.equal(round(long), { v: long, t: "text" });
  assert.equal(round("x".repeat(300)), { v: "x".repeat(300), t: "text" }, "the buffer grows");
  assert.equal(round(new Uint8Array([0, 1, 255])), { v: new Uint8Array([0, 1, 255]), t: "blob" });
  assert.equal(round(new Uint8Array(0)), { v: new Uint8Array(0), t: "blob" }, "an empty blob is a blob, not NULL");
  assert.equal(round(new Uint8Array([9, 8, 7, 6]).buffer), { v: new Uint8Array([9, 8, 7, 6]), t: "blob" });
  const backing = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(round(new DataView(backing.buffer, 2, 3)), { v: new Uint8Array([3, 4, 5]), t: "blob" }, "only the view's bytes");
  assert.equal(round(new Uint16Array([0x0201, 0x0403])), { v: new Uint8Array([1, 2, 3, 4]), t: "blob" });
  const big = new Uint8Array(200_000).map((_, i) => i % 251);
  assert.equal(round(big), { v: big, t: "blob" });
  assert.throws(() => round({}), (e: unknown) => e instanceof TypeError);
  assert.throws(() => round(Symbol("x")), (e: unknown) => e instanceof TypeError);
  const blob = db.prepare("SELECT randomblob(16) b").get()!.b as Uint8Array;
  assert.is(blob.buffer.byteLength, 16, "a copy, not a view of the heap");
  // several text values in one call: each is copied as it is bound
  using three = db.prepare("SELECT ? || ? || ? s");
  assert.equal(three.get(["ab", "cd", "ef"]), { s: "abcdef" });
});

stmts("named parameters (:a, @a, $a, ?NNN) and parameter errors", () => {
  using db = sqlite.open(":memory:");
  using q = db.prepare("SELECT :a a, @b b, $c c, ?4 d");
  assert.equal(q.get({ a: 1, b: "x", c: null, 4: 2n ** 60n }), { a: 1, b: "x", c: null, d: 2n ** 60n });
  assert.equal(q.get({ a: 1, b: 2, c: 3, 4: 4, extra: 5 }), { a: 1, b: 2, c: 3, d: 4 }, "other keys are ignored");
  assert.throws(() => q.get({ a: 1, b: 2, c: 3 }), /missing named parameter "4"/);
  assert.throws(() => q.get(), (e: unknown) => e instanceof RangeError);
  assert.equal(q.get([1, 2, 3, 4]), { a: 1, b: 2, c: 3, d: 4 }, "an array binds by position");
  using anon = db.prepare("SELECT ?, ?");
  assert.throws(() => anon.get({ 1: 1 }), /bare "\?"/);
  assert.throws(() => anon.get([1]), (e: unknown) => e instanceof RangeError);
  assert.throws(() => anon.get([1, 2, 3]), (e: unknown) => e instanceof RangeError);
  assert.throws(() => anon.get("12" as never), (e: unknown) => e instanceof TypeError);
  assert.throws(() => anon.get(new Uint8Array(2) as never), (e: unknown) => e instanceof TypeError);
  using none = db.prepare("SELECT 1 x");
  assert.equal(none.get([]), { x: 1 });
  assert.equal(none.get(), { x: 1 });
});

stmts("bind() binds once for every later call", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(x)");
  using ins = db.prepare("INSERT INTO t VALUES (?)").bind(["fixed"]);
  ins.run();
  ins.run();
  assert.equal(db.all("SELECT x FROM t"), [{ x: "fixed" }, { x: "fixed" }]);
  assert.throws(() => ins.run(["other"]), (e: unknown) => e instanceof TypeError && /bind\(\)/.test(e.message));
  assert.throws(() => ins.bind(["again"]), (e: unknown) => e instanceof TypeError && /once/.test(e.message));
  using q = db.prepare("SELECT :n + 1 v");
  assert.throws(() => q.bind({ m: 1 }), /missing named parameter "n"/);
  assert.throws(() => q.get(), (e: unknown) => e instanceof RangeError, "a failed bind() binds nothing");
  q.bind({ n: 41 });
  assert.equal(q.get(), { v: 42 });
  assert.equal(q.all(), [{ v: 42 }]);
  assert.equal([...q.iterate()], [{ v: 42 }]);
  assert.throws(() => q.bind(undefined as never), (e: unknown) => e instanceof TypeError);
});

stmts("a statement re-prepared after a schema change returns the new columns", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)");
  using q = db.prepare("SELECT * FROM t");
  assert.equal(q.get(), { a: 1 });
  db.exec("ALTER TABLE t ADD COLUMN b DEFAULT 'new'");
  assert.equal(q.get(), { a: 1, b: "new" });
  assert.equal(q.columnNames, ["a", "b"]);
});

stmts("errors are SqliteErrors with codes, and the statement stays usable", () => {
  using db = sqlite.open(":memory:");
  assert.throws(() => db.prepare("SELEKT 1"), (e: unknown) => e instanceof SqliteError && e.codeName === "SQLITE_ERROR" && /syntax error/.test(e.message));
  assert.throws(() => db.prepare("SELECT * FROM nosuch"), (e: unknown) => e instanceof SqliteError && /no such table/.test(e.message));
  assert.throws(() => db.prepare("SELECT 1; SELECT 2"), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.prepare("  -- nothing"), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.prepare(1 as never), (e: unknown) => e instanceof TypeError);
  db.exec("CREATE TABLE u(x UNIQUE NOT NULL)");
  using ins = db.prepare("INSERT INTO u VALUES (?)");
  ins.run([1]);
  assert.throws(() => ins.run([1]), isSqliteError("SQLITE_CONSTRAINT_UNIQUE"));
  assert.throws(() => ins.run([null]), (e: unknown) => e instanceof SqliteError && e.code === 19 && e.extendedCode === 1299);
  assert.equal(ins.run([2]), { changes: 1, lastInsertRowid: 2 });
  // a failure in the middle of the rows (integer overflow in abs())
  db.exec("CREATE TABLE n(v); INSERT INTO n VALUES (1), (2), (-9223372036854775808), (4)");
  using q = db.prepare("SELECT abs(v) a FROM n ORDER BY rowid");
  assert.throws(() => q.all(), (e: unknown) => e instanceof SqliteError && /integer overflow/.test(e.message));
  const it = q.iterate();
  assert.equal(it.next(), { done: false, value: { a: 1 } });
  assert.equal(it.next(), { done: false, value: { a: 2 } });
  assert.throws(() => it.next(), (e: unknown) => e instanceof SqliteError && /integer overflow/.test(e.message));
  assert.equal(it.next(), { done: true, value: undefined }, "an iterator ends with its error");
  assert.is(q.busy, false);
  assert.equal(q.get(), { a: 1 }, "usable again");
});

stmts.run();

const iter = suite("iterate()");

iter("leaving early resets the statement: its read lock is gone, it runs again", () => {
  const dir = tmpDir("iter");
  const path = join(dir, "i.db");
  using db = sqlite.open(path);
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)");
  using writer = sqlite.open(path, { busyTimeoutMs: 0 });
  using q = db.prepare<{ x: number }>("SELECT x FROM t ORDER BY x");
  const seen: number[] = [];
  for (const row of q.iterate()) {
    seen.push(row.x);
    assert.is(q.busy, true);
    assert.throws(() => q.get(), (e: unknown) => e instanceof TypeError && /iterated/.test(e.message));
    assert.throws(() => writer.run("INSERT INTO t VALUES (9)"), isSqliteError("SQLITE_BUSY"), "the reader holds its lock");
    if (row.x === 2) break;
  }
  assert.equal(seen, [1, 2]);
  assert.is(q.busy, false);
  writer.run("INSERT INTO t VALUES (4)"); // the reader let go
  assert.equal([...q.iterate()].map((r) => r.x), [1, 2, 3, 4]);
  // return() by hand, twice; next() after it is done
  const it = q.iterate();
  assert.equal(it.next(), { done: false, value: { x: 1 } });
  assert.equal(it.return(), { done: true, value: undefined });
  assert.equal(it.return(), { done: true, value: undefined });
  assert.equal(it.next(), { done: true, value: undefined });
  writer.run("INSERT INTO t VALUES (5)");
  // an exception in the loop body resets it too
  assert.throws(() => {
    for (const row of q.iterate()) if (row.x === 1) throw new Error("stop");
  }, /stop/);
  assert.is(q.busy, false);
  writer.run("INSERT INTO t VALUES (6)");
  // `using` ends an iterator that was never finished
  {
    using open = q.iterate();
    open.next();
  }
  assert.is(q.busy, false);
  writer.run("INSERT INTO t VALUES (7)");
  // an iterator that was never started ends as well
  q.iterate().return();
  assert.equal(q.all().length, 7);
});

iter("parameters are bound when iterate() is called; other statements run meanwhile", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3); CREATE TABLE u(y)");
  using q = db.prepare<{ x: number }>("SELECT x FROM t WHERE x >= ?");
  assert.throws(() => q.iterate(), (e: unknown) => e instanceof RangeError, "at once, not at the first next()");
  assert.is(q.busy, false);
  using ins = db.prepare("INSERT INTO u VALUES (?)");
  const got: number[] = [];
  for (const { x } of q.iterate([2])) {
    got.push(x);
    ins.run([x * 10]); // another statement of the same connection
  }
  assert.equal(got, [2, 3]);
  assert.equal(db.all("SELECT y FROM u"), [{ y: 20 }, { y: 30 }]);
  // Iterator helpers, where the engine has them; the helper's end ends the statement's iterator.
  const it = q.iterate([1]) as unknown as { map?(f: (r: { x: number }) => number): { toArray(): number[] }; return(): void };
  if (typeof it.map === "function") assert.equal(it.map((r) => r.x * 2).toArray(), [2, 4, 6]);
  else it.return();
  assert.is(q.busy, false);
});

iter.run();

const life = suite("lifetime: finalize, using, close, the heap");

life("a statement used after finalize() throws a clear Error; finalize() is idempotent", () => {
  using db = sqlite.open(":memory:");
  const q = db.prepare("SELECT 1 x");
  assert.is(q.isAlive, true);
  q.finalize();
  q.finalize();
  assert.is(q.isAlive, false);
  const finalized = (e: unknown) => e instanceof Error && !(e instanceof SqliteError) && /finalized.*SELECT 1 x/.test((e as Error).message);
  assert.throws(() => q.get(), finalized);
  assert.throws(() => q.run(), finalized);
  assert.throws(() => q.all(), finalized);
  assert.throws(() => q.iterate(), finalized);
  assert.throws(() => q.bind([]), finalized);
  assert.throws(() => q.columnNames, finalized);
  q[Symbol.dispose](); // never throws
  // finalize() in the middle of an iteration
  const r = db.prepare("SELECT 1 x UNION ALL SELECT 2");
  const it = r.iterate();
  it.next();
  r.finalize();
  assert.throws(() => it.next(), finalized);
  it.return();
});

life("a statement of a closed database throws; so does prepare()", () => {
  const db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)");
  const q = db.prepare("SELECT x FROM t");
  const it = q.iterate();
  assert.equal(it.next().value, { x: 1 });
  db.close();
  const closed = (e: unknown) => e instanceof Error && !(e instanceof SqliteError) && /is closed/.test((e as Error).message);
  assert.throws(() => q.get(), closed);
  assert.throws(() => it.next(), closed);
  assert.is(q.isAlive, false);
  assert.throws(() => db.prepare("SELECT 1"), closed);
  assert.throws(() => db.transaction(() => 1)(), closed);
  q.finalize(); // no-op
  it.return();
});

life("the heap is back to its baseline after finalize(), using, and close() of undisposed statements", () => {
  const base = sqlite.memoryUsed();
  const db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB)");
  db.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO t(s, b) SELECT 'row ' || i, zeroblob(i) FROM n");
  // Statements that bind, read and iterate, but leave the database (and its page cache) as it was.
  const work = () => {
    const echo = db.prepare("SELECT ? s, ? b, length(?1) n");
    for (let i = 0; i < 50; i++) echo.get([`text ${i}`.repeat(i), new Uint8Array(i * 100)]);
    echo.get(["x".repeat(100_000), new Uint8Array(100_000)]); // the one-off allocations
    const sel = db.prepare("SELECT * FROM t WHERE id > ?");
    sel.all([10]);
    for (const _ of sel.iterate([1])) break;
    const bound = db.prepare("SELECT count(*) FROM t WHERE s <> ?").bind(["y".repeat(3000)]);
    bound.get();
    return [echo, sel, bound];
  };
  for (const s of work()) s.finalize(); // the first run also fills the page cache
  const opened = sqlite.memoryUsed();
  for (const s of work()) s.finalize();
  assert.is(sqlite.memoryUsed(), opened, "finalized");
  {
    using a = db.prepare("SELECT ? || ?").bind(["a".repeat(1000), "b"]);
    a.get();
  }
  assert.is(sqlite.memoryUsed(), opened, "using");
  work(); // neither finalized nor disposed
  const tx = db.transaction(() => db.prepare("SELECT 1").get());
  tx();
  assert.ok(sqlite.memoryUsed() > opened);
  db.close();
  assert.is(sqlite.memoryUsed(), base, "close() finalizes what is left");
});

life("a statement the program drops is finalized when collected", async () => {
  const gc = await gcFunction();
  if (!gc) {
    console.log("  (skipped: no gc() in this runtime)");
    return;
  }
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(s)");
  // What earlier tests dropped is collected first: the instance is shared, and its memory count too.
  await settle();
  const opened = sqlite.memoryUsed();
  (() => {
    for (let i = 0; i < 20; i++) db.prepare("SELECT count(*) FROM t WHERE s = ?").get(["y".repeat(200)]);
  })();
  assert.ok(sqlite.memoryUsed() > opened, "20 statements and their buffers are alive");
  for (let i = 0; i < 200 && sqlite.memoryUsed() !== opened; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(sqlite.memoryUsed(), opened);
});

life("db.run/get/all keep their behaviour and leave nothing allocated", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(a, b)");
  const calls = () => {
    assert.equal(db.run("INSERT INTO t VALUES (?, ?)", [1, "x"]), { changes: 1, lastInsertRowid: 1 });
    assert.equal(db.run("INSERT INTO t VALUES (:a, :b)", { a: 2, b: "y".repeat(5000) }), { changes: 1, lastInsertRowid: 2 });
    assert.equal(db.get("SELECT a FROM t WHERE a = ?", [2]), { a: 2 });
    assert.equal(db.all("SELECT a FROM t ORDER BY a"), [{ a: 1 }, { a: 2 }]);
    assert.throws(() => db.run("INSERT INTO t VALUES (?, ?)", [1]), (e: unknown) => e instanceof RangeError);
    assert.throws(() => db.get("SELECT 1; SELECT 2"), (e: unknown) => e instanceof RangeError);
    assert.throws(() => db.run("INSERT INTO nosuch VALUES (1)"), (e: unknown) => e instanceof SqliteError);
    db.run("DELETE FROM t");
  };
  calls();
  const after = sqlite.memoryUsed();
  calls();
  assert.is(sqlite.memoryUsed(), after, "no statement left behind");
});

life.run();

const tx = suite("transaction()");

tx("commits, rolls back on throw, passes arguments, this and the result", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(x UNIQUE)");
  using ins = db.prepare("INSERT INTO t VALUES (?)");
  const insertMany = db.transaction(function (this: unknown, xs: number[]) {
    assert.is(db.inTransaction, true);
    for (const x of xs) ins.run([x]);
    return { n: xs.length, self: this };
  });
  assert.is(db.inTransaction, false);
  const ctx = { me: 1 };
  assert.equal(insertMany.call(ctx, [1, 2, 3]), { n: 3, self: ctx });
  assert.is(db.inTransaction, false);
  assert.throws(() => insertMany([4, 5, 1]), isSqliteError("SQLITE_CONSTRAINT_UNIQUE"));
  assert.is(db.inTransaction, false);
  assert.equal(db.all("SELECT x FROM t ORDER BY x").map((r) => r.x), [1, 2, 3], "4 and 5 rolled back");
  const fails = db.transaction(() => {
    ins.run([10]);
    throw new Error("mine");
  });
  assert.throws(() => fails(), /mine/);
  assert.is(db.get("SELECT count(*) n FROM t WHERE x = 10")!.n, 0);
  assert.throws(() => db.transaction("no" as never), (e: unknown) => e instanceof TypeError);
});

tx("nested calls use savepoints: an inner failure undoes only its own part", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(x)");
  const add = db.transaction((x: number) => db.run("INSERT INTO t VALUES (?)", [x]));
  const addOrFail = db.transaction((x: number) => {
    add(x);
    if (x < 0) throw new RangeError("negative");
  });
  const outer = db.transaction(() => {
    addOrFail(1);
    try {
      addOrFail(-1);
    } catch (e) {
      assert.instance(e, RangeError);
    }
    assert.is(db.inTransaction, true, "the outer transaction is still open");
    addOrFail(2);
  });
  outer();
  assert.equal(db.all("SELECT x FROM t ORDER BY rowid").map((r) => r.x), [1, 2]);
  // inside a transaction begun by hand it is a savepoint too: the outer one stays ours to end
  db.exec("BEGIN");
  addOrFail(3);
  assert.throws(() => addOrFail(-3));
  assert.is(db.inTransaction, true);
  db.exec("ROLLBACK");
  assert.equal(db.all("SELECT x FROM t ORDER BY rowid").map((r) => r.x), [1, 2]);
  // a failing outer transaction undoes what its inner ones committed
  assert.throws(() => db.transaction(() => {
    addOrFail(4);
    throw new Error("outer");
  })(), /outer/);
  assert.equal(db.all("SELECT x FROM t ORDER BY rowid").map((r) => r.x), [1, 2]);
});

tx("deferred, immediate and exclusive begin as named; a promise is refused and rolled back", async () => {
  const dir = tmpDir("tx");
  const path = join(dir, "tx.db");
  using db = sqlite.open(path);
  db.exec("CREATE TABLE t(x)");
  using other = sqlite.open(path, { busyTimeoutMs: 0 });
  const probe = () => {
    try {
      other.exec("BEGIN IMMEDIATE; ROLLBACK");
      return "free";
    } catch (e) {
      if (e instanceof SqliteError && e.code === 5) return "write-locked";
      throw e;
    }
  };
  const reads = () => {
    try {
      other.get("SELECT count(*) FROM t");
      return true;
    } catch {
      return false;
    }
  };
  const t = db.transaction(() => [probe(), reads()]);
  assert.equal(t(), ["free", true], "BEGIN is deferred: nothing locked until the first access");
  assert.equal(t.deferred(), ["free", true]);
  assert.equal(t.immediate(), ["write-locked", true]);
  assert.equal(t.exclusive(), ["write-locked", false], "exclusive keeps readers out (rollback journal)");
  const asyncFn = db.transaction((async () => {
    db.run("INSERT INTO t VALUES (1)");
  }) as () => unknown);
  assert.throws(() => asyncFn(), (e: unknown) => e instanceof TypeError && /promise/.test(e.message));
  assert.is(db.inTransaction, false);
  assert.is(db.get("SELECT count(*) n FROM t")!.n, 0, "rolled back");
  await Promise.resolve();
});

tx.run();

const busy = suite("busyTimeoutMs");

busy("defaults to 5000 through sqlite.open(); 0 and other values as given; bad values are TypeErrors", () => {
  using db = sqlite.open(":memory:");
  assert.is(db.busyTimeoutMs, 5000);
  assert.is(db.get("PRAGMA busy_timeout")!.timeout, 5000);
  using zero = sqlite.open(":memory:", { busyTimeoutMs: 0 });
  assert.is(zero.busyTimeoutMs, 0);
  using some = sqlite.open(":memory:", { readonly: false, busyTimeoutMs: 1234.2 });
  assert.is(some.busyTimeoutMs, 1235);
  using forever = sqlite.open(":memory:", { busyTimeoutMs: Infinity });
  assert.is(forever.busyTimeoutMs, 0x7fffffff);
  some.busyTimeoutMs = 10;
  assert.is(some.get("PRAGMA busy_timeout")!.timeout, 10);
  for (const bad of [-1, NaN, "5", null]) {
    assert.throws(() => sqlite.open(":memory:", { busyTimeoutMs: bad as number }), (e: unknown) => e instanceof TypeError, String(bad));
    assert.throws(() => { some.busyTimeoutMs = bad as number; }, (e: unknown) => e instanceof TypeError, String(bad));
  }
  assert.throws(() => sqlite.open(":memory:", { busyTimeout: 5 } as never), /unknown option "busyTimeout"/);
});

/** Starts the native CLI holding an exclusive lock on `path` for `ms`; resolves once it holds it. */
async function nativeHolder(path: string, ms: number): Promise<{ exited: Promise<void> }> {
  const script = `(echo ".bail on"; echo "BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held(x);"; echo ".print locked"; sleep ${ms / 1000}; echo "COMMIT;") | sqlite3 -batch '${path}'`;
  const p = spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => p.on("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    p.stdout.on("data", (d) => String(d).includes("locked") && resolve());
    exited.then(() => reject(new Error("the native CLI did not get its lock")));
  });
  return { exited };
}

busy("with real file locks a statement waits for another process's lock, up to busyTimeoutMs", async () => {
  const dir = tmpDir("busy");
  const path = join(dir, "b.db");
  cli(path, "CREATE TABLE t(x)");
  if (sqlite.locking !== "os") {
    console.log(`  (the wait for another process is skipped: ${sqlite.lockingReason})`);
    return;
  }
  {
    using db = sqlite.open(path, { busyTimeoutMs: 100 });
    const holder = await nativeHolder(path, 800);
    const t0 = performance.now();
    assert.throws(() => db.run("INSERT INTO t VALUES (1)"), isSqliteError("SQLITE_BUSY"));
    const waited = performance.now() - t0;
    assert.ok(waited >= 90 && waited < 700, `gave up after ${waited.toFixed(0)} ms`);
    await holder.exited;
  }
  {
    using db = sqlite.open(path); // the default: 5000 ms
    const holder = await nativeHolder(path, 400);
    const t0 = performance.now();
    db.run("INSERT INTO t VALUES (2)");
    const waited = performance.now() - t0;
    assert.ok(waited >= 200 && waited < 4000, `went through after ${waited.toFixed(0)} ms`);
    await holder.exited;
  }
  assert.is(cli(path, "SELECT count(*) FROM t").trim(), "1");
});

busy("a lock of another connection of this thread: SQLITE_BUSY (at once without real file locks)", () => {
  const dir = tmpDir("busy");
  const path = join(dir, "c.db");
  using a = sqlite.open(path);
  a.exec("CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)");
  // Under real file locks the busy handler sleeps for its whole timeout first: nothing in this
  // thread can release the lock meanwhile.
  using b = sqlite.open(path, { busyTimeoutMs: sqlite.locking === "os" ? 150 : 5000 });
  const t0 = performance.now();
  assert.throws(() => b.get("SELECT count(*) FROM t"), isSqliteError("SQLITE_BUSY"));
  const waited = performance.now() - t0;
  if (sqlite.locking === "os") assert.ok(waited >= 140, `waited ${waited.toFixed(0)} ms`);
  else assert.ok(waited < 1000, `the busy handler's sleeps return at once: ${waited.toFixed(0)} ms`);
  a.exec("COMMIT");
  assert.equal(b.get("SELECT count(*) n FROM t"), { n: 1 });
});

busy("backup() retries BUSY itself: the source's busy handler is off while it runs, then back", async () => {
  const dir = tmpDir("busy");
  const path = join(dir, "s.db");
  using src = sqlite.open(path, { busyTimeoutMs: 3000 });
  src.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  using holder = sqlite.open(path, { busyTimeoutMs: 0 });
  holder.exec("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2)");
  let longest = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  const t0 = performance.now();
  let error: unknown = null;
  try {
    await sqlite.backup(src, join(dir, "d.db"), { busyTimeoutMs: 300 });
  } catch (e) {
    error = e;
  }
  clearInterval(timer);
  const took = performance.now() - t0;
  assert.ok(isSqliteError("SQLITE_BUSY")(error), String(error));
  assert.ok(took < 2500, `rejected after ${took.toFixed(0)} ms, not after the source's 3000`);
  assert.ok(longest < 1000, `the event loop was blocked for ${longest.toFixed(0)} ms`);
  assert.is(src.busyTimeoutMs, 3000, "restored");
  holder.exec("ROLLBACK");
  await sqlite.backup(src, join(dir, "d.db"));
  assert.is(cli(join(dir, "d.db"), "SELECT count(*) FROM t").trim(), "1");
});

busy.run();

const image = suite("deserialize()");

/** A database the native CLI wrote, as bytes; `wal`: in WAL mode (header bytes 18-19 are 2). */
function nativeImage(wal: boolean): Uint8Array {
  const dir = tmpDir("img");
  const path = join(dir, "n.db");
  cli(path, `${wal ? "PRAGMA journal_mode=WAL;" : ""}
    CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB, big INTEGER);
    CREATE INDEX ts ON t(s);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
    INSERT INTO t SELECT i, 'row ' || i || ' ✓', i / 4.0, zeroblob(i % 50), 9007199254740993 + i FROM n;
    ${wal ? "PRAGMA wal_checkpoint(TRUNCATE);" : ""}`);
  return new Uint8Array(readFileSync(path));
}

image("an image the native sqlite3 wrote reads back in full; writes go to the copy only", () => {
  for (const wal of [false, true]) {
    const bytes = nativeImage(wal);
    const before = Uint8Array.from(bytes);
    using db = sqlite.deserialize(bytes);
    assert.is(db.filename, ":memory:");
    assert.equal(db.get("SELECT count(*) n, sum(r) r, sum(length(b)) b FROM t"), { n: 3000, r: 3000 * 3001 / 8, b: 73500 });
    assert.equal(db.get("SELECT s, big FROM t WHERE id = 7"), { s: "row 7 ✓", big: 9007199254741000n });
    assert.equal(db.get("PRAGMA quick_check"), { quick_check: "ok" });
    assert.equal(db.get("SELECT id FROM t INDEXED BY ts WHERE s = 'row 2999 ✓'"), { id: 2999 });
    db.run("INSERT INTO t(s) VALUES (?)", ["added ".repeat(10_000)]); // the image grows
    assert.is(db.get("SELECT count(*) n FROM t")!.n, 3001);
    assert.equal(bytes, before, `the caller's bytes are untouched (wal: ${wal})`);
    // and back out: the native CLI reads what serialize() gives
    const out = join(tmpDir("img"), "out.db");
    writeFileSync(out, db.serialize());
    assert.is(cli(out, "SELECT count(*) FROM t").trim(), "3001");
  }
});

image("readonly: true refuses writes; ArrayBuffers, SharedArrayBuffers and other views are accepted", () => {
  const bytes = nativeImage(false);
  using ro = sqlite.deserialize(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), { readonly: true });
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  using fromShared = sqlite.deserialize(shared);
  assert.is(fromShared.get("SELECT count(*) n FROM t")!.n, 3000);
  assert.is(ro.get("SELECT count(*) n FROM t")!.n, 3000);
  assert.throws(() => ro.run("DELETE FROM t"), (e: unknown) => e instanceof SqliteError && e.code === 8);
  const padded = new Uint8Array(bytes.byteLength + 10);
  padded.set(bytes, 5);
  using fromView = sqlite.deserialize(new DataView(padded.buffer, 5, bytes.byteLength));
  assert.is(fromView.get("SELECT count(*) n FROM t")!.n, 3000);
  using empty = sqlite.deserialize(new Uint8Array(0));
  empty.exec("CREATE TABLE x(y)");
  assert.equal(empty.all("SELECT name FROM sqlite_schema"), [{ name: "x" }]);
  assert.throws(() => sqlite.deserialize("bytes" as never), (e: unknown) => e instanceof TypeError);
  assert.throws(() => sqlite.deserialize(bytes, { readOnly: true } as never), /unknown option "readOnly"/);
});

image("a damaged image is a SqliteError (SQLITE_NOTADB or SQLITE_CORRUPT), and nothing leaks", () => {
  const bytes = nativeImage(false);
  const base = sqlite.memoryUsed();
  /** Reads everything; a damage SQLite does not meet on the way is what integrity_check reports. */
  const readAll = (b: Uint8Array) => {
    using db = sqlite.deserialize(b);
    db.all("SELECT * FROM t");
    const check = db.get("PRAGMA integrity_check")!.integrity_check;
    if (check !== "ok") throw new SqliteError(`integrity_check: ${check}`, 11);
  };
  const random = crypto.getRandomValues(new Uint8Array(8192));
  assert.throws(() => sqlite.deserialize(random), isSqliteError("SQLITE_NOTADB"));
  assert.throws(() => sqlite.deserialize(new Uint8Array(4096)), isSqliteError("SQLITE_NOTADB"));
  const corrupt = (e: unknown) => e instanceof SqliteError && (e.codeName === "SQLITE_CORRUPT" || e.codeName === "SQLITE_NOTADB");
  assert.throws(() => readAll(bytes.subarray(0, bytes.length / 2)), corrupt, "truncated");
  assert.throws(() => readAll(bytes.subarray(0, 100)), corrupt, "the header alone");
  const trashed = Uint8Array.from(bytes);
  trashed.fill(0x55, 4096 * 2, 4096 * 3);
  assert.throws(() => readAll(trashed), corrupt, "a page overwritten");
  const header = Uint8Array.from(bytes);
  header.fill(0xff, 100, 200);
  assert.throws(() => readAll(header), corrupt, "page 1's b-tree header overwritten");
  assert.is(sqlite.memoryUsed(), base);
});

image.run();
