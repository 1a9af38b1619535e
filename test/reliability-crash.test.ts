// Crashes during a backup over an existing destination. Power loss: a crash VFS loses every
// unsynced write at each sync point (and at each write) of a backup, dropping them or garbling
// them. Process crash: a child Node process is SIGKILLed at random moments of a backup. Either
// way, after the "reboot" the destination must be the old database or the complete new one,
// integrity ok, and whatever was left behind (a hot journal) is recovered by the next open.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSqlite, type Sqlite } from "../src/index.js";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { CrashVfs, type CrashMode } from "./faults/crash-vfs.js";
import { assertOneOf, judge, knob, rng, SEED } from "./faults/util.js";
import { tmpDir } from "./helpers.js";

const GARBLE_SEEDS = knob("SBW_CRASH_GARBLE_SEEDS", 3);
const KILL_TRIALS = knob("SBW_KILL_TRIALS", 24);

const crash = new CrashVfs(new NodeFsVfs());
let sqlite: Sqlite;
const dir = tmpDir("crash");
const stats = { powerLosses: 0, powerLossOld: 0, powerLossNew: 0, kills: 0, killOld: 0, killNew: 0, hotJournals: 0 };

function makeDb(file: string, pageSize: number, rows: number, size: number): string {
  rmSync(file, { force: true });
  execFileSync("sqlite3", ["-batch", file, `PRAGMA page_size=${pageSize}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${rows})
    INSERT INTO t(v) SELECT randomblob(${size}) FROM c;`]);
  return judge(file).sha;
}

test.before(async () => {
  sqlite = await loadSqlite({ vfs: [crash] });
});

/** One power loss at the n-th `op`; returns false when the backup finished before reaching it. */
function powerLoss(srcFile: string, template: string, shas: { old: string; new: string }, op: "sync" | "write", n: number, mode: CrashMode, seed: number, ctx: string): boolean {
  const dest = join(dir, "dest.db");
  rmSync(`${dest}-journal`, { force: true });
  copyFileSync(template, dest);
  const source = sqlite.open(srcFile, { readonly: true });
  const d = sqlite.open(dest, { vfs: crash.name });
  crash.arm(op, n, mode, rng(seed));
  try {
    using b = sqlite.backupInit(d, "main", source, "main");
    while (b.step(3) !== "done");
  } catch (e) {
    if (!crash.crashed) throw e; // only the simulated crash may stop the backup
  }
  const crashed = crash.crashed;
  const committed = crash.deleted.includes(`${dest}-journal`);
  crash.disarm();
  d.close(); // the "process" is gone: closing only releases descriptors and in-process locks
  source.close();
  if (!crashed) {
    assert.is(assertOneOf(dest, shas, ctx), "new", `${ctx}: completed`);
    return false;
  }
  stats.powerLosses++;
  // Reboot: alternately our stack or the native CLI is the first to open (and recover) the file.
  if (n % 2 === 1) {
    using again = sqlite.open(dest);
    assert.equal(again.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `${ctx}: reopen`);
  }
  const got = assertOneOf(dest, shas, ctx);
  assert.is(got, committed ? "new" : "old", `${ctx}: ${committed ? "after" : "before"} the commit point`);
  if (got === "new") stats.powerLossNew++;
  else stats.powerLossOld++;
  return true;
}

for (const [destPage, destRows] of [[1024, 30], [4096, 3], [512, 2]] as const) {
  test(`power loss at every sync and every write (dest page ${destPage}, ${destRows} rows)`, () => {
    const srcFile = join(dir, "src.db");
    const template = join(dir, "old.db");
    const shas = { new: makeDb(srcFile, 1024, 10, 800), old: makeDb(template, destPage, destRows, 600) };
    for (const op of ["sync", "write"] as const) {
      let n = 1;
      for (; ; n++) {
        let reached = powerLoss(srcFile, template, shas, op, n, "drop", 0, `${op} #${n} drop`);
        for (let s = 0; reached && s < GARBLE_SEEDS; s++) {
          reached = powerLoss(srcFile, template, shas, op, n, "garble", SEED + n * 101 + s, `${op} #${n} garble seed ${s}`);
        }
        if (!reached) break;
      }
      assert.ok(n > (op === "sync" ? 2 : 5), `the ${op} sweep reached the commit (${n - 1} crash points)`);
    }
  });
}

// This build's WAL default is synchronous=NORMAL: a commit reaches the disk at the next
// checkpoint. A backup() that resolved must survive a power loss anyway, also while a reader
// keeps the checkpoint from finishing (fails without sbw_sync_wal: the WAL frames are lost).
for (const incremental of [false, true]) {
  test(`a backup() into a WAL destination that resolved survives a power loss right after (incremental: ${incremental}, a reader in the way of the checkpoint)`, async () => {
    const srcFile = join(dir, "wal-src.db");
    const template = join(dir, "wal-old.db");
    const shas = { new: makeDb(srcFile, 1024, 10, 800), old: makeDb(template, 1024, 30, 600) };
    execFileSync("sqlite3", ["-batch", template, "PRAGMA journal_mode=WAL"]);
    const dest = join(dir, "wal-dest.db");
    for (const x of ["", "-wal", "-shm", "-journal"]) rmSync(dest + x, { force: true });
    copyFileSync(template, dest);
    const source = sqlite.open(srcFile, { readonly: true });
    const d = sqlite.open(dest, { vfs: crash.name });
    const reader = sqlite.open(dest, { vfs: crash.name });
    reader.exec("BEGIN");
    reader.get("SELECT count(*) FROM t"); // a snapshot from before the backup
    crash.arm("sync", 1_000_000, "drop", rng(SEED));
    const r = await sqlite.backup(source, d, { incremental });
    assert.is(r.incremental, incremental);
    crash.arm("write", 1, "drop", rng(SEED)); // the power goes at the next write, whatever it is
    assert.throws(() => d.exec("CREATE TABLE after(x)"));
    assert.ok(crash.crashed, "the power loss happened");
    reader.close();
    d.close();
    source.close();
    crash.disarm();
    assert.is(assertOneOf(dest, shas, "after the power loss"), "new", "the resolved backup is durable");
  });
}

/** A journal SQLite would roll back: it starts with the journal magic (a zeroed header is inert). */
function hotJournal(file: string): boolean {
  return existsSync(file) && readFileSync(file).subarray(0, 8).equals(Buffer.from("d9d505f920a163d7", "hex"));
}

const child = fileURLToPath(new URL("./faults/kill-child.ts", import.meta.url));

/** Runs one child backup and SIGKILLs it `delayMs` after it said "go" (or lets it finish). */
function killTrial(src: string, dest: string, delayMs: number): Promise<"killed" | "finished"> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", child, src, dest, "4"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (b: Buffer) => {
      if (!out.includes("go") && (out += b.toString()).includes("go")) setTimeout(() => p.kill("SIGKILL"), delayMs);
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve("killed");
      else if (code === 0) resolve("finished");
      else reject(new Error(`child exited with ${code}`));
    });
  });
}

test(`SIGKILL during a backup over an existing file (${KILL_TRIALS} trials)`, async () => {
  const src = join(dir, "kill-src.db");
  const template = join(dir, "kill-old.db");
  const shas = { new: makeDb(src, 1024, 100, 900), old: makeDb(template, 4096, 20, 900) };
  const rand = rng(SEED);
  const trials = Array.from({ length: KILL_TRIALS }, (_, i) => ({ i, delay: Math.floor(rand() * 60) }));
  let killedMidway = 0;
  // Two at a time (two cores); each trial has its own destination.
  for (let k = 0; k < trials.length; k += 2) {
    await Promise.all(trials.slice(k, k + 2).map(async ({ i, delay }) => {
      const dest = join(dir, `kill-${i}.db`);
      copyFileSync(template, dest);
      const how = await killTrial(src, dest, delay);
      stats.kills++;
      const journal = `${dest}-journal`;
      if (hotJournal(journal)) stats.hotJournals++;
      if (i % 2 === 0) { // our stack recovers first; the native CLI otherwise
        using db = sqlite.open(dest);
        assert.equal(db.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `trial ${i}: reopen`);
      }
      const got = assertOneOf(dest, shas, `trial ${i} (${how} after ${delay} ms)`);
      if (how === "finished") assert.is(got, "new", `trial ${i}: a finished backup`);
      assert.not.ok(hotJournal(journal), `trial ${i}: the hot journal was recovered`);
      if (got === "new") stats.killNew++;
      else stats.killOld++;
      if (how === "killed" && got === "old") killedMidway++;
    }));
  }
  // The trials must really hit the copy: some kills leave the old database behind.
  assert.ok(killedMidway > 0 || KILL_TRIALS < 4, "no SIGKILL landed in the middle of a backup");
});

test.after(() => {
  console.log(`  crashes: ${stats.powerLosses} power losses simulated (${stats.powerLossOld} old, ${stats.powerLossNew} new), ` +
    `${stats.kills} SIGKILL trials (${stats.killOld} old, ${stats.killNew} new, ${stats.hotJournals} hot journals recovered), 0 lost`);
});

test.run();
