// Real file locks: native sqlite3 processes, processes of ours and connections of this
// process on the same files at once (the checks are in test/native/lock-checks.ts, shared with
// the Deno runner). They need "os" locking (Node >= 26, Bun; Deno with --allow-ffi). Where the
// runtime has no FFI (Node 20-24) the suite says so: it asserts that locking is "process" with a
// reason naming the cause, that insisting on "os" is refused, and runs only the checks that hold
// for the in-process table too; the others are listed as skipped.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { loadSqlite } from "../src/index.js";
import { lockChecks } from "./native/lock-checks.js";
import { sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const os = sqlite.locking === "os";
const skipped: string[] = [];

test(`locking is ${os ? '"os"' : '"process"'} here, and says why`, async () => {
  const bun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  const major = Number(process.versions.node.split(".")[0]);
  if (bun || major >= 26) {
    assert.is(sqlite.locking, "os", `Bun and Node >= 26 have FFI: ${sqlite.lockingReason}`);
    assert.match(sqlite.lockingReason, bun ? /bun:ffi/ : /node:ffi/);
  } else {
    assert.is(sqlite.locking, "process", `Node ${process.versions.node} has no node:ffi`);
    assert.match(sqlite.lockingReason, /node:ffi/, `the reason names the cause: ${sqlite.lockingReason}`);
    try {
      await loadSqlite({ locking: "os" });
      assert.unreachable("locking: \"os\" was granted without FFI");
    } catch (e) {
      assert.match(String((e as Error).message), /real file locks are not available here: .*node:ffi/);
    }
  }
});

// A native process holding EXCLUSIVE when backup() starts: the call waits for it (here the
// incremental path's journal-mode query once threw SQLITE_BUSY at once: 5 of 6 live backups).
const exclusiveAtStart = "rollback journal: backup() that starts while a native process holds EXCLUSIVE waits for it and succeeds";
if (!os) skipped.push(exclusiveAtStart);
else test(exclusiveAtStart, async () => {
  const dir = tmpDir("excl");
  const file = join(dir, "src.db");
  execFileSync("sqlite3", [file, "CREATE TABLE t(x); INSERT INTO t VALUES (1);"]);
  // EXCLUSIVE for ~400 ms, then a commit; "ready" is printed once the lock is held.
  const p = spawn("sqlite3", ["-batch", file], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((r) => p.on("exit", r));
  p.stdin.end("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);\n.print ready\n.shell sleep 0.4\nCOMMIT;\n");
  await new Promise<void>((r) => p.stdout.on("data", (b) => String(b).includes("ready") && r()));
  for (const dest of [join(dir, "new.db"), join(dir, "new.db")]) { // a new file, then over it
    const source = sqlite.open(file, { readonly: true });
    try {
      await sqlite.backup(source, dest);
    } finally {
      source.close();
    }
  }
  await exited;
  assert.is(execFileSync("sqlite3", [join(dir, "new.db"), "SELECT count(*) FROM t"], { encoding: "utf8" }).trim(), "2", "the copy has the committed row");
});

for (const c of lockChecks(sqlite)) {
  if (!os && !c.anyLocking) skipped.push(c.name);
  else test(c.name, c.fn);
}

test.after(() => {
  if (skipped.length) {
    console.log(`\n  SKIPPED ${skipped.length} real-lock checks (locking "${sqlite.locking}": ${sqlite.lockingReason}):\n` +
      skipped.map((s) => `    - ${s}`).join("\n"));
  }
});

test.run();
