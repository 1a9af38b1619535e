// What killed guarded copies leave beside a destination (src/ops/scratch.ts: `.<name>.<pid as 8
// hex><8 hex>.sbw-tmp`): the next copy to that destination removes the files whose creating
// process is gone or that nothing changed for a day, and keeps every other file.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite } from "../src/index.js";
import { removeStaleScratch, STALE_SCRATCH_MS } from "../src/ops/scratch.js";
import { cli, dump, tmpDir } from "./helpers.js";

const test = suite("scratch-leftovers");

const hex8 = (n: number) => n.toString(16).padStart(8, "0");
/** A scratch file's name for `dest`, as process `pid` makes it. */
const scratchName = (dest: string, pid: number, random: string) => `.${dest}.${hex8(pid)}${random}.sbw-tmp`;

/** A process that runs until kill() (Node's, Bun's: whatever runs this suite). */
function liveProcess(): { pid: number; kill(): void } {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  return { pid: child.pid!, kill: () => child.kill("SIGKILL") };
}

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}

/** Files named in `dir`, an old mtime for those in `old`. */
function put(dir: string, names: string[], old: string[] = []): void {
  const then = (Date.now() - STALE_SCRATCH_MS - 3_600_000) / 1000;
  for (const n of names) writeFileSync(join(dir, n), "left over");
  for (const n of old) utimesSync(join(dir, n), then, then);
}

function makeSource(file: string): void {
  cli(file, `CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
      INSERT INTO t(b) SELECT randomblob(500) FROM n;`);
}

test("a guarded copy removes the leftovers of ended processes and old ones, and keeps the rest", async () => {
  const dir = tmpDir("scratch");
  makeSource(join(dir, "src.db"));
  cli(join(dir, "dest.db"), "CREATE TABLE old(x)");
  const dead = await deadPid();
  const live = liveProcess();
  try {
    const gone = [
      scratchName("dest.db", dead, "0badf00d"), `${scratchName("dest.db", dead, "0badf00d")}-journal`,
      `${scratchName("dest.db", dead, "11111111")}-wal`, // its database already gone
      scratchName("dest.db", live.pid, "22222222"), // old: the pid is another process's now
      scratchName("dest.db", 0xffffffff, "33333333"), // old, and no pid in the name
    ];
    const kept = [
      scratchName("dest.db", live.pid, "44444444"), // a copy that may be running
      scratchName("dest.db", process.pid, "55555555"), // this process's
      scratchName("dest.db", 0xffffffff, "66666666"), // no pid in the name, changed lately
      scratchName("other.db", dead, "0badf00d"), // another destination's
      `.dest.db.${hex8(dead)}0badf0.sbw-tmp`, `.dest.db.${hex8(dead)}0BADF00D.sbw-tmp`, `dest.db.${hex8(dead)}0badf00d.sbw-tmp`,
      `.dest.db.${hex8(dead)}0badf00d.sbw-tmp.bak`, `.dest.db.${hex8(dead)}0badf00d.sbw-tmp-shm2`,
    ];
    put(dir, [...gone, ...kept], [gone[3]!, gone[4]!]);

    const sqlite = await loadSqlite({ locking: "process" }); // the source guard, so a scratch copy
    using source = sqlite.open(join(dir, "src.db"), { readonly: true });
    await sqlite.backup(source, join(dir, "dest.db"), { incremental: false });
    assert.is(dump(join(dir, "dest.db")), dump(join(dir, "src.db")));
    const left = readdirSync(dir).filter((f) => f !== "src.db" && f !== "dest.db");
    assert.equal(left.sort(), [...kept].sort());
  } finally {
    live.kill();
  }
});

test("removeStaleScratch: for a destination named or open, beside its real file", async () => {
  const dir = tmpDir("scratch");
  cli(join(dir, "dest.db"), "CREATE TABLE old(x)");
  const dead = await deadPid();
  const sqlite = await loadSqlite();
  put(dir, [scratchName("dest.db", dead, "0badf00d"), scratchName("dest.db", process.pid, "55555555")]);
  removeStaleScratch(sqlite.runtime, join(dir, "dest.db"));
  assert.not.ok(existsSync(join(dir, scratchName("dest.db", dead, "0badf00d"))));
  assert.ok(existsSync(join(dir, scratchName("dest.db", process.pid, "55555555"))));

  put(dir, [scratchName("dest.db", dead, "1badf00d")]);
  using db = sqlite.open(join(dir, "dest.db"));
  removeStaleScratch(sqlite.runtime, db, "main");
  assert.not.ok(existsSync(join(dir, scratchName("dest.db", dead, "1badf00d"))));

  // Nothing for a destination that is no file.
  removeStaleScratch(sqlite.runtime, ":memory:");
  removeStaleScratch(sqlite.runtime, join(dir, "no-such-dir", "x.db"));
});

test.run();
