// Database: statements, binding and values; files the native CLI wrote (WAL included); hot
// journals left by crashed writers, ours and native SQLite's; URIs; cross-connection locking.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { SqliteError } from "../src/index.js";
import { cli, dump, integrity, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;

const sql = suite("statements and values");

sql("run/get/all with positional and named parameters", () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(a, b); -- a comment\n CREATE INDEX i ON t(a);");
  assert.equal(db.run("INSERT INTO t VALUES (?, ?)", [1, "x"]), { changes: 1, lastInsertRowid: 1 });
  assert.equal(db.run("INSERT INTO t VALUES (:a, @b)", { a: 2, b: "y" }), { changes: 1, lastInsertRowid: 2 });
  db.run("INSERT INTO t VALUES ($a, ?2)", { a: 3, 2: "z" } as never);
  assert.equal(db.all("SELECT a, b FROM t ORDER BY a"), [{ a: 1, b: "x" }, { a: 2, b: "y" }, { a: 3, b: "z" }]);
  assert.equal(db.get("SELECT b FROM t WHERE a = ?", [2]), { b: "y" });
  assert.is(db.get("SELECT b FROM t WHERE a = 99"), undefined);
  assert.equal(db.run("UPDATE t SET b = 'w'"), { changes: 3, lastInsertRowid: 3 });
});

sql("values round-trip: integers, bigints, doubles, text, blobs, null, booleans", () => {
  using db = sqlite.open(":memory:");
  const big = 2n ** 62n;
  const row = db.get("SELECT ? i, ? b, ? d, ? s, ? bl, ? n, ? t, ? neg",
    [42, big, 1.25, "héllo ✓ 🙂", new Uint8Array([0, 1, 255]), null, true, -(2n ** 63n)])!;
  assert.equal(row, { i: 42, b: big, d: 1.25, s: "héllo ✓ 🙂", bl: new Uint8Array([0, 1, 255]), n: null, t: 1, neg: -(2n ** 63n) });
  assert.is(db.get("SELECT 9007199254740991 x")!.x, 9007199254740991);
  assert.is(db.get("SELECT 9007199254740992 x")!.x, 9007199254740992n);
  assert.equal(db.get("SELECT x'' e")!.e, new Uint8Array(0));
  assert.equal(db.get("SELECT ? e", [new Uint8Array(0)])!.e, new Uint8Array(0));
  const blob = db.get("SELECT randomblob(16) b")!.b as Uint8Array;
  assert.is(blob.buffer.byteLength, 16, "a copy, not a view of the heap");
});

sql("bad statements and parameters give typed errors", () => {
  using db = sqlite.open(":memory:");
  assert.throws(() => db.run("SELEKT 1"), (e: unknown) => e instanceof SqliteError && /syntax error/.test(e.message));
  assert.throws(() => db.run("SELECT 1; SELECT 2"), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.get(""), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.run("SELECT ?", []), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.run("SELECT ?"), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.run("SELECT :a", { b: 1 }), /missing named parameter "a"/);
  assert.throws(() => db.run("SELECT ?", [{}]), (e: unknown) => e instanceof TypeError);
  assert.throws(() => db.run("SELECT ?", [2n ** 64n]), (e: unknown) => e instanceof RangeError);
  assert.throws(() => db.exec(42 as unknown as string), (e: unknown) => e instanceof TypeError);
  db.exec("CREATE TABLE u(x UNIQUE); INSERT INTO u VALUES (1)");
  assert.throws(() => db.run("INSERT INTO u VALUES (1)"), (e: unknown) => (e as SqliteError).codeName === "SQLITE_CONSTRAINT_UNIQUE");
});

sql("serialize() returns the file image", () => {
  const dir = tmpDir();
  using db = sqlite.open(join(dir, "a.db"));
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('hello')");
  const image = db.serialize();
  assert.is(image.length, statSync(join(dir, "a.db")).size);
  assert.is(new TextDecoder().decode(image.subarray(0, 15)), "SQLite format 3");
  assert.throws(() => db.serialize("nosuch"), /unknown database nosuch/);
});

sql("heap views stay valid across memory growth", async () => {
  using db = sqlite.open(":memory:");
  db.exec("CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)");
  const pages = () => (sqlite as unknown as { runtime: { capi: { memory: WebAssembly.Memory } } }).runtime.capi.memory.buffer.byteLength;
  const before = pages();
  const blob = new Uint8Array(60_000).map((_, i) => i % 251);
  for (let i = 0; i < 1500; i++) db.run("INSERT INTO big(b) VALUES (?)", [blob]); // ~90 MB: memory must grow
  assert.ok(pages() > before, "memory grew");
  assert.equal(db.get("SELECT b FROM big WHERE id = 1500")!.b, blob);
  const dir = tmpDir();
  await sqlite.backup(db, join(dir, "big.db"));
  assert.is(cli(join(dir, "big.db"), "SELECT count(*), sum(length(b)) FROM big").trim(), `1500|${1500 * 60_000}`);
});

sql.run();

const files = suite("files, WAL, hot journals, locking");

files("a WAL database written by the native CLI opens and backs up (with its WAL content)", async () => {
  const dir = tmpDir();
  const src = join(dir, "wal.db");
  // The CLI leaves the -wal in place: autocheckpoint off and persistent WAL.
  cli(src, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);",
    ".filectrl persist_wal 1", "INSERT INTO t SELECT x + 10 FROM t;");
  assert.ok(existsSync(`${src}-wal`) && statSync(`${src}-wal`).size > 0, "the WAL holds the last commits");
  using db = sqlite.open(src);
  assert.is(db.get<{ s: number }>("SELECT sum(x) s FROM t")!.s, 42);
  await sqlite.backup(db, join(dir, "copy.db"));
  assert.is(integrity(join(dir, "copy.db")), "ok");
  assert.is(cli(join(dir, "copy.db"), "SELECT sum(x) FROM t").trim(), "42");
  // and two of our connections share the WAL index
  using second = sqlite.open(src);
  db.exec("INSERT INTO t VALUES (100)");
  assert.is(second.get<{ s: number }>("SELECT sum(x) s FROM t")!.s, 142);
});

files("backup into and out of a WAL database of ours; the native CLI reads both", async () => {
  const dir = tmpDir();
  using w = sqlite.open(join(dir, "w.db"));
  w.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES ('wal')");
  await sqlite.backup(w, join(dir, "plain.db"));
  assert.is(cli(join(dir, "plain.db"), "SELECT x FROM t").trim(), "wal");
  w.close();
  assert.is(integrity(join(dir, "w.db")), "ok");
});

files("a hot journal left by a killed writer of ours is rolled back on open", () => {
  const dir = tmpDir();
  const path = join(dir, "hot.db");
  using db = sqlite.open(path);
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('committed')");
  db.close();
  // A child process updates with a tiny cache (pages spill to the file), then dies mid-transaction.
  const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `
    import { loadSqlite } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};
    const sqlite = await loadSqlite();
    const db = sqlite.open(${JSON.stringify(path)});
    db.exec("PRAGMA cache_size=1; BEGIN; UPDATE t SET x = 'torn'; INSERT INTO t SELECT randomblob(3000) FROM t, t, t, t, t, t, t, t;");
    db.exec("INSERT INTO t SELECT randomblob(3000) FROM t LIMIT 300");
    process.kill(process.pid, "SIGKILL");`], { cwd: process.cwd() });
  assert.is(child.signal, "SIGKILL", child.stderr?.toString());
  assert.ok(existsSync(`${path}-journal`), "a hot journal was left behind");
  using again = sqlite.open(path);
  assert.equal(again.all("SELECT x FROM t"), [{ x: "committed" }]);
  assert.is(existsSync(`${path}-journal`), false);
  assert.is(integrity(path), "ok");
});

files("a hot journal left by a killed native sqlite3 is rolled back on open", async () => {
  const dir = tmpDir();
  const path = join(dir, "native.db");
  cli(path, "CREATE TABLE t(x); INSERT INTO t VALUES ('committed');");
  const before = dump(path);
  const proc = spawn("sqlite3", [path], { stdio: ["pipe", "pipe", "inherit"] });
  proc.stdin.write("PRAGMA cache_size=1; BEGIN; UPDATE t SET x = 'torn';\n" +
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2000) INSERT INTO t SELECT randomblob(1000) FROM n;\n" +
    "SELECT 'ready';\n");
  await new Promise<void>((resolve) => proc.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
  assert.ok(statSync(`${path}-journal`).size > 0, "the native writer has a journal");
  proc.kill("SIGKILL");
  await new Promise((r) => proc.once("exit", r));
  using db = sqlite.open(path);
  assert.equal(db.all("SELECT x FROM t"), [{ x: "committed" }]);
  db.close();
  assert.is(dump(path), before);
  assert.is(integrity(path), "ok");
});

files("file: URIs, read-only opens, and locking between connections", () => {
  const dir = tmpDir();
  const path = join(dir, "u.db");
  using rw = sqlite.open(`file:${path}?cache=private`, { busyTimeoutMs: 0 });
  rw.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  using ro = sqlite.open(`file:${path}?mode=ro`);
  assert.equal(ro.all("SELECT x FROM t"), [{ x: 1 }]);
  assert.throws(() => ro.exec("INSERT INTO t VALUES (2)"), (e: unknown) => (e as SqliteError).code === 8);
  using ro2 = sqlite.open(path, { readonly: true });
  assert.throws(() => ro2.exec("DELETE FROM t"), (e: unknown) => (e as SqliteError).codeName === "SQLITE_READONLY");
  // A reader in a transaction keeps a writer from committing: BUSY, never a wait.
  ro.exec("BEGIN; SELECT * FROM t;");
  rw.exec("BEGIN; INSERT INTO t VALUES (3);");
  assert.throws(() => rw.exec("COMMIT"), (e: unknown) => (e as SqliteError).code === 5);
  ro.exec("COMMIT");
  rw.exec("COMMIT");
  assert.equal(ro.all("SELECT x FROM t"), [{ x: 1 }, { x: 3 }]);
  using mem = sqlite.open("file:shared?mode=memory&cache=shared");
  mem.exec("CREATE TABLE m(y)");
  assert.is(mem.get("SELECT file FROM pragma_database_list WHERE name = 'main'")!.file, "", "an in-memory database");
});

files.run();
