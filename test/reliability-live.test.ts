// Live sources. A source written every millisecond by this program (in memory and on disk):
// backup() completes, and the copy is a committed state (the sum of the balances is invariant).
// A source file written concurrently by another process, the native sqlite3 CLI, in rollback
// journal and in WAL mode: every copy is a committed state (integrity ok, invariant holds) or a
// clear SqliteError; never a silently torn copy (the source guard, docs/reliability.md).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { SqliteError, type Database } from "../src/index.js";
import { knob, rng, SEED } from "./faults/util.js";
import { nativeWriter, sqlitePromise, tmpDir } from "./helpers.js";

const ACCOUNTS = 50;
const TOTAL = ACCOUNTS * 100;
const CROSS_BACKUPS = knob("SBW_LIVE_BACKUPS", 8);
const dir = tmpDir("live");
const liveStats = { inProcess: 0, crossOk: 0, crossErrors: 0, unguardedTorn: 0, unguarded: 0 };

const SCHEMA = `CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${ACCOUNTS}) INSERT INTO acct SELECT i, 100 FROM c;
  CREATE TABLE filler(id INTEGER PRIMARY KEY, v BLOB);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<300) INSERT INTO filler SELECT i, randomblob(800) FROM c;`;

/** One transfer plus a rewritten filler row, so that pages all over the file change. */
function transferSql(r: () => number): string {
  const a = 1 + Math.floor(r() * ACCOUNTS);
  const b = 1 + Math.floor(r() * ACCOUNTS);
  const f = 1 + Math.floor(r() * 300);
  return `BEGIN IMMEDIATE; UPDATE acct SET bal=bal-7 WHERE id=${a}; UPDATE acct SET bal=bal+7 WHERE id=${b};
    UPDATE filler SET v=randomblob(800) WHERE id=${f}; COMMIT;`;
}

/** The native CLI's verdict on a copy: "ok <sum> <count>" for a committed state. */
function verdict(file: string): string {
  return execFileSync("sqlite3", ["-batch", file, "PRAGMA integrity_check", "SELECT sum(bal) || ' ' || count(*) FROM acct"], { encoding: "utf8" })
    .trim().split("\n").join(" ");
}
const COMMITTED = `ok ${TOTAL} ${ACCOUNTS}`;

async function inProcess(source: Database, writer: Database, label: string): Promise<void> {
  const sqlite = await sqlitePromise;
  const r = rng(SEED);
  let writes = 0;
  const timer = setInterval(() => {
    writer.exec(transferSql(r));
    writes++;
  }, 1);
  const dest = join(dir, `${label}.db`);
  try {
    const res = await sqlite.backup(source, dest, { pagesPerStep: 4, pauseMs: 1 });
    assert.ok(res.pageCount > 40, "a multi-step backup");
  } finally {
    clearInterval(timer);
  }
  assert.ok(writes > 0, "the writer ran during the backup");
  assert.is(verdict(dest), COMMITTED, `${label}: a committed state`);
  liveStats.inProcess++;
}

test("in-memory source written every millisecond by the same connection", async () => {
  const sqlite = await sqlitePromise;
  using db = sqlite.open(":memory:");
  db.exec(SCHEMA);
  await inProcess(db, db, "mem-live");
});

test("file source written every millisecond by another connection of this program", async () => {
  const sqlite = await sqlitePromise;
  const file = join(dir, "live-src.db");
  using db = sqlite.open(file);
  db.exec(SCHEMA);
  using writer = sqlite.open(file);
  await inProcess(db, writer, "file-live");
});

/** Starts the native CLI committing transfers about once a millisecond until stopped. */
function startWriter(file: string, seed: number): { stop(): Promise<void> } {
  const r = rng(seed);
  return nativeWriter(file, () => transferSql(r));
}

for (const mode of ["delete", "wal"] as const) {
  test(`source file written by the native sqlite3 CLI (journal_mode=${mode})`, async () => {
    const sqlite = await sqlitePromise;
    const file = join(dir, `native-${mode}.db`);
    execFileSync("sqlite3", ["-batch", file, `PRAGMA journal_mode=${mode};` + SCHEMA]);
    // Every transfer moves money between two accounts, so this weighted sum changes with each one.
    // A busy timeout: with real file locks the writer's commits keep this reader out for a moment.
    const state = () => execFileSync("sqlite3", ["-batch", "-cmd", ".timeout 5000", file, "SELECT sum(bal * id) FROM acct"]).toString();
    const initial = state();
    const w = startWriter(file, SEED + (mode === "wal" ? 1 : 0));
    let ok = 0;
    let during = initial;
    try {
      // Copy only once the writer is committing, and go on until it has committed during the
      // copies too: on a loaded machine the sqlite3 process can start later than a few copies take.
      for (let t = 0; during === initial && t < 2000; t++) {
        await new Promise((r) => setTimeout(r, 5));
        during = state();
      }
      assert.is.not(during, initial, "the native writer started committing");
      for (let i = 0; i < CROSS_BACKUPS || (state() === during && i < 1000); i++) {
        // Read-only: SQLite must never roll back a journal the other process is still writing.
        using source = sqlite.open(file, { readonly: true });
        for (const verifySource of [true, false]) {
          const dest = join(dir, `native-${mode}-${i}-${verifySource}.db`);
          rmSync(dest, { force: true });
          try {
            await sqlite.backup(source, dest, { pagesPerStep: 8, busyTimeoutMs: 3000, verifySource });
          } catch (e) {
            if (!verifySource) continue; // without the guard, errors are not the point
            assert.instance(e, SqliteError, `copy ${i}: ${String(e)}`);
            liveStats.crossErrors++;
            continue;
          }
          const v = verdict(dest);
          if (verifySource) {
            assert.is(v, COMMITTED, `copy ${i} (${mode}): a committed state`);
            liveStats.crossOk++;
            ok++;
          } else {
            liveStats.unguarded++;
            if (v !== COMMITTED) liveStats.unguardedTorn++; // what the guard is for
          }
        }
      }
    } finally {
      await w.stop();
    }
    assert.ok(ok > 0 || CROSS_BACKUPS === 0, "at least one copy succeeded while the writer ran");
    assert.is.not(state(), during, "the native writer committed while the copies ran");
    assert.is(verdict(file), COMMITTED, "the writer's own file stays consistent");
  });
}

test.after(() => {
  console.log(`  live sources: ${liveStats.inProcess} in-process live backups, ${liveStats.crossOk} guarded copies of a file the native CLI was writing ` +
    `(all committed states), ${liveStats.crossErrors} clear errors; unguarded: ${liveStats.unguardedTorn} of ${liveStats.unguarded} copies torn`);
});

test.run();
