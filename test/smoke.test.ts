import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { dump, integrity, sqlitePromise, tmpDir } from "./helpers.js";

test("a file backed up by backup() reads back in the native CLI", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir();
  using db = sqlite.open(join(dir, "a.db"));
  db.exec("CREATE TABLE t(x INTEGER PRIMARY KEY, y); INSERT INTO t(y) VALUES ('a'), (x'00ff'), (1.5)");
  const res = await sqlite.backup(db, join(dir, "b.db"));
  assert.is(res.pageCount, 2);
  assert.is(integrity(join(dir, "b.db")), "ok");
  assert.is(dump(join(dir, "b.db")), dump(join(dir, "a.db")));
});

test.run();
