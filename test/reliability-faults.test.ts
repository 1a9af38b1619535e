// I/O fault injection during a backup, modelled on SQLite's backup_ioerr.test: fail the N-th VFS
// call (N = 1, 2, … until a run sees no fault), transient and persistent, over destination page
// sizes 512/1024/4096 and destinations smaller and larger than the source. Expected: the failing
// step throws SqliteError (IOERR_*, CANTOPEN for a failed open, FULL for ENOSPC), finish() throws
// it again, and the destination reopens with integrity_check ok and its previous content; a
// backup that completes despite a fault (SQLite retried or ignored it) holds the new content.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  loadSqlite, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR, SQLITE_IOERR_WRITE, type Sqlite,
} from "../src/index.js";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { FaultVfs, type FaultKind, type FaultOp } from "./faults/fault-vfs.js";
import { assertOneOf, assertSqliteError, judge, knob } from "./faults/util.js";
import { tmpDir } from "./helpers.js";

const STEP_PAGES = knob("SBW_FAULT_STEP_PAGES", 4);
const SOURCE_ROWS = knob("SBW_FAULT_SOURCE_ROWS", 6);

const fault = new FaultVfs(new NodeFsVfs());
let sqlite: Sqlite;
const dir = tmpDir("faults");
const src = join(dir, "src.db");
let srcSha = "";
const stats = { runs: 0, faults: 0, failedSteps: 0, failedAfterCommit: 0, completedDespiteFault: 0, recoveredByUs: 0 };

function sh(file: string, sql: string): void {
  execFileSync("sqlite3", ["-batch", file, sql]);
}

test.before(async () => {
  sqlite = await loadSqlite({ vfs: [fault] });
  sh(src, `PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${SOURCE_ROWS})
    INSERT INTO t(v) SELECT randomblob(900) FROM c; CREATE INDEX tv ON t(substr(v,1,8));`);
  srcSha = judge(src).sha;
});

/** A destination template with the given page size, smaller or larger than the source. */
function makeDest(pageSize: number, larger: boolean): { file: string; sha: string } {
  const file = join(dir, `dest-${pageSize}-${larger ? "large" : "small"}.db`);
  rmSync(file, { force: true });
  const rows = larger ? SOURCE_ROWS * 4 : 2;
  sh(file, `PRAGMA page_size=${pageSize}; CREATE TABLE old(id INTEGER PRIMARY KEY, w BLOB);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${rows})
    INSERT INTO old(w) SELECT randomblob(${larger ? 900 : 100}) FROM c;`);
  return { file, sha: judge(file).sha };
}

interface Sweep { persistent: boolean; kind: FaultKind; ops?: readonly FaultOp[] }

/** One run: arm the fault at call n, back up src → a fresh copy of the template. Returns hits. */
function runOnce(template: { file: string; sha: string }, n: number, sweep: Sweep, ctx: string): number {
  const dest = join(dir, "work.db");
  rmSync(`${dest}-journal`, { force: true });
  copyFileSync(template.file, dest);
  const source = sqlite.open(src, { vfs: fault.name });
  const destDb = sqlite.open(dest, { vfs: fault.name });
  let error: unknown = null;
  fault.arm(n, sweep);
  try {
    const b = sqlite.backupInit(destDb, "main", source, "main");
    try {
      for (let busy = 0; ;) {
        const rc = b.step(STEP_PAGES);
        if (rc === "done") break;
        if (rc !== "ok" && ++busy > 100) assert.unreachable(`${ctx}: step keeps returning ${rc}`);
      }
    } catch (e) {
      error = e;
    }
    if (error === null) b.finish();
    else {
      // finish() reports the step's error again, and must not throw anything else.
      try {
        b.finish();
        assert.unreachable(`${ctx}: finish() after a failed step did not throw`);
      } catch (e) {
        assert.is(e, error, `${ctx}: finish() throws the step's error`);
      }
    }
  } catch (e) {
    error ??= e; // backupInit itself failed
  }
  const hits = fault.hits;
  // SQLite's commit point is the journal's deletion: a fault after it is reported, yet the new
  // content is durable (as in native SQLite). Before it, the old content must come back.
  const committed = fault.deletedBeforeFault.includes(`${dest}-journal`);
  fault.disarm();
  destDb.close();
  source.close();
  stats.runs++;
  stats.faults += hits;

  if (error !== null) {
    stats.failedSteps++;
    assert.ok(hits > 0, `${ctx}: an error without an injected fault: ${String(error)}`);
    const codes = sweep.kind === "enospc" ? [SQLITE_FULL] : [SQLITE_IOERR, SQLITE_CANTOPEN];
    const err = assertSqliteError(error, codes, ctx);
    if (sweep.kind === "short") assert.is(err.extendedCode, SQLITE_IOERR_WRITE, `${ctx}: short write → IOERR_WRITE`);
    if (committed) stats.failedAfterCommit++;
  } else if (hits > 0) stats.completedDespiteFault++;

  // Every other run, our own stack reopens the file first (and so rolls back any hot journal).
  if (n % 2 === 0) {
    const again = sqlite.open(dest);
    try {
      assert.equal(again.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `${ctx}: reopen`);
      stats.recoveredByUs++;
    } finally {
      again.close();
    }
  }
  const got = assertOneOf(dest, { old: template.sha, new: srcSha }, ctx);
  const want = error === null || committed ? "new" : "old";
  assert.is(got, want, `${ctx}: ${error === null ? "completed" : `${String(error)}${committed ? " after the commit point" : ""}`}`);
  return hits;
}

function sweep(name: string, s: Sweep, configs: readonly [number, boolean][]): void {
  test(name, () => {
    for (const [pageSize, larger] of configs) {
      const template = makeDest(pageSize, larger);
      let n = 1;
      for (; ; n++) {
        const ctx = `${name} page=${pageSize} ${larger ? "larger" : "smaller"} N=${n}`;
        if (runOnce(template, n, s, ctx) === 0) break;
        assert.ok(n < 100_000, `${ctx}: the sweep does not end`);
      }
      assert.ok(n > 5, "the sweep reached real I/O"); // a sweep that ends at once tests nothing
      assert.is(judge(src).sha, srcSha, "source intact");
    }
  });
}

const ALL: [number, boolean][] = [512, 1024, 4096].flatMap((p) => [[p, false], [p, true]] as [number, boolean][]);
sweep("transient I/O errors at every call", { persistent: false, kind: "eio" }, ALL);
sweep("persistent I/O errors from every call on", { persistent: true, kind: "eio" }, ALL);
sweep("disk full (ENOSPC) at every write → SQLITE_FULL", { persistent: true, kind: "enospc", ops: ["write", "truncate"] }, [[1024, false], [4096, true]]);
sweep("short (torn) writes → SQLITE_IOERR_WRITE", { persistent: false, kind: "short", ops: ["write"] }, [[512, true], [1024, false]]);

test("backup() rejects with the fault and leaves the destination as it was", async () => {
  const template = makeDest(1024, true);
  const dest = join(dir, "loop.db");
  for (let n = 1; ; n++) {
    copyFileSync(template.file, dest);
    const source = sqlite.open(src, { vfs: fault.name });
    const d = sqlite.open(dest, { vfs: fault.name });
    fault.arm(n, { persistent: true });
    let error: unknown = null;
    try {
      await sqlite.backup(source, d, { pagesPerStep: STEP_PAGES });
    } catch (e) {
      error = e;
    }
    const hits = fault.hits;
    const committed = fault.deletedBeforeFault.includes(`${dest}-journal`);
    fault.disarm();
    d.close();
    source.close();
    if (error) assertSqliteError(error, [SQLITE_IOERR, SQLITE_CANTOPEN], `backup() N=${n}`);
    assert.is(assertOneOf(dest, { old: template.sha, new: srcSha }, `backup() N=${n}`), error && !committed ? "old" : "new");
    if (hits === 0) break;
  }
});

test.after(() => {
  console.log(`  fault injection: ${stats.runs} runs, ${stats.faults} faults injected, ${stats.failedSteps} failed backups ` +
    `(${stats.failedAfterCommit} after the commit point, the rest rolled back), ` +
    `${stats.completedDespiteFault} completed despite a fault, 0 lost (every file judged by the native CLI)`);
});

test.run();
