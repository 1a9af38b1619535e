// sqlite.verify(): the library call behind the CLI's verify (test/cli.test.ts runs the CLI).
import { copyFileSync, openSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;

function source(file: string) {
  const db = sqlite.open(file);
  db.exec("PRAGMA user_version = 7; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE w(k TEXT PRIMARY KEY, n) WITHOUT ROWID");
  db.exec("BEGIN");
  for (let i = 1; i <= 1200; i++) db.run("INSERT INTO t(v) VALUES (?)", [`row ${i}`]); // more than one 500-row batch
  db.run("INSERT INTO w VALUES ('a', 1), ('b', 2)");
  db.exec("COMMIT");
  return db;
}

test("verify: equal copies, then each kind of difference with its details", async () => {
  const dir = tmpDir("verify");
  using src = source(join(dir, "src.db"));
  await sqlite.backup(src, join(dir, "copy.db"));
  {
    using copy = sqlite.open(join(dir, "copy.db"));
    const r = await sqlite.verify(src, copy);
    assert.equal(r, { ok: true, integrity: [], differences: [], tables: [{ name: "t", rows: 1200, same: true }, { name: "w", rows: 2, same: true }] });

    copy.run("UPDATE t SET v = 'changed' WHERE id = 777");
    copy.exec("PRAGMA user_version = 8");
    const d = await sqlite.verify(src, copy);
    assert.is(d.ok, false);
    assert.equal(d.differences.map((x) => [x.what, x.object, x.at]), [["user_version", undefined, undefined], ["rows", "t", "777"]]);
    assert.equal(d.tables, [{ name: "t", rows: 776, same: false }, { name: "w", rows: 2, same: true }]);

    copy.exec("CREATE INDEX extra ON t(v)");
    const s = await sqlite.verify(src, copy);
    assert.ok(s.differences.some((x) => x.what === "schema" && x.object === "index extra" && /only in the copy/.test(x.message)), JSON.stringify(s));
    assert.equal(s.tables, [], "rows of differently shaped databases are not compared");
  }
  // A damaged copy: integrity_check's messages, nothing compared.
  copyFileSync(join(dir, "src.db"), join(dir, "bad.db"));
  const fd = openSync(join(dir, "bad.db"), "r+");
  writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 2);
  closeSync(fd);
  using bad = sqlite.open(join(dir, "bad.db"), { readonly: true });
  const b = await sqlite.verify(src, bad).catch((e: Error) => ({ thrown: e.message }));
  assert.ok("thrown" in b ? /malformed|corrupt/.test(b.thrown) : !b.ok && b.integrity.length > 0, JSON.stringify(b));
});

test("verify: arguments must be databases", async () => {
  using db = sqlite.open(":memory:");
  try {
    await sqlite.verify(db, "copy.db" as never);
    assert.unreachable("accepted a string");
  } catch (e) {
    assert.instance(e, TypeError);
  }
});

test.run();
