// Out-of-memory during a backup, modelled on SQLite's backup_malloc.test: fail allocations one
// by one (N = 1, 2, … until a run sees no failure), once and persistently, across open, init,
// step and finish. Expected: a SqliteError with SQLITE_NOMEM (never a trap or another exception),
// no leak (sqlite3_memory_used() back to its baseline after every run), the source untouched and
// the destination either its old self or a complete copy.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, SQLITE_NOMEM, type Sqlite } from "../src/index.js";
import { assertOneOf, assertSqliteError, judge, knob } from "./faults/util.js";
import { tmpDir } from "./helpers.js";

const STEP_PAGES = knob("SBW_OOM_STEP_PAGES", 3);
const SOURCE_ROWS = knob("SBW_OOM_SOURCE_ROWS", 8);

let sqlite: Sqlite;
/** The wasm/faults.c hook: fail the n-th allocation from now (0 disarms); returns failures so far. */
let armMalloc: (n: number, persistent: boolean) => number;
const dir = tmpDir("oom");
const src = join(dir, "src.db");
const template = join(dir, "old.db");
const shas = { old: "", new: "" };
const stats = { runs: 0, failures: 0, nomem: 0 };

test.before(async () => {
  // A private instance: failing allocations must not disturb other suites' databases.
  sqlite = await loadSqlite({ vfs: [] });
  const capi = (sqlite as unknown as { runtime: { capi: { sbw_fault_malloc(n: number, p: number): number } } }).runtime.capi;
  armMalloc = (n, persistent) => capi.sbw_fault_malloc(n, persistent ? 1 : 0);
  execFileSync("sqlite3", ["-batch", src, `PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${SOURCE_ROWS})
    INSERT INTO t(v, s) SELECT randomblob(700), hex(randomblob(40)) FROM c; CREATE INDEX ts ON t(s);`]);
  execFileSync("sqlite3", ["-batch", template, `PRAGMA page_size=4096; CREATE TABLE old(x); INSERT INTO old VALUES (1), (2);`]);
  shas.new = judge(src).sha;
  shas.old = judge(template).sha;
});

type Target = "file" | "memory";

/** One run with the n-th allocation failing; returns the failures injected. */
function runOnce(n: number, persistent: boolean, target: Target, ctx: string): { hits: number; error: unknown } {
  const dest = join(dir, "dest.db");
  rmSync(`${dest}-journal`, { force: true });
  copyFileSync(template, dest);
  let error: unknown = null;
  let destSha: string | null = null;
  armMalloc(n, persistent);
  try {
    using source = sqlite.open(src, { readonly: true });
    using destDb = sqlite.open(target === "file" ? dest : ":memory:");
    using b = sqlite.backupInit(destDb, "main", source, "main");
    while (b.step(STEP_PAGES) !== "done");
    b.finish();
    if (target === "memory") {
      armMalloc(0, false); // read the in-memory copy back before it goes away
      destSha = sha(destDb);
    }
  } catch (e) {
    error = e;
  }
  const hits = armMalloc(0, false);
  stats.runs++;
  stats.failures += hits;
  if (error !== null) {
    assert.ok(hits > 0, `${ctx}: an error without an injected failure: ${String(error)}`);
    assertSqliteError(error, [SQLITE_NOMEM], ctx);
    stats.nomem++;
  }
  if (target === "file") {
    assert.is(assertOneOf(dest, { old: shas.old, new: shas.new }, ctx), error === null ? "new" : "old", ctx);
  } else if (error === null) assert.is(destSha, shas.new, `${ctx}: in-memory copy`);
  return { hits, error };
}

/** The CLI's content hash of an in-memory database, via a file image of it. */
function sha(db: ReturnType<Sqlite["open"]>): string {
  const file = join(dir, "mem-copy.db");
  writeFileSync(file, db.serialize());
  return judge(file).sha;
}

for (const target of ["file", "memory"] as const) {
  for (const persistent of [false, true]) {
    test(`${persistent ? "persistent" : "transient"} allocation failures, ${target} destination`, () => {
      runOnce(1_000_000, false, target, "warm-up"); // first-use allocations (VFS, caches) settle
      const baseline = sqlite.memoryUsed();
      let n = 1;
      for (; ; n++) {
        const ctx = `${target} ${persistent ? "persistent" : "transient"} N=${n}`;
        const { hits } = runOnce(n, persistent, target, ctx);
        assert.is(sqlite.memoryUsed(), baseline, `${ctx}: memoryUsed back to baseline (no leak)`);
        if (hits === 0) break;
        assert.ok(n < 100_000, `${ctx}: the sweep does not end`);
      }
      assert.ok(n > 20, "the sweep reached the backup's own allocations");
      assert.is(judge(src).sha, shas.new, "source intact");
      // The instance is still fully usable afterwards.
      using db = sqlite.open(":memory:");
      assert.equal(db.get("SELECT 40 + 2 AS x"), { x: 42 });
    });
  }
}

test.after(() => {
  console.log(`  out-of-memory: ${stats.runs} runs, ${stats.failures} allocation failures injected, ${stats.nomem} SQLITE_NOMEM errors, 0 leaks, 0 lost`);
});

test.run();
