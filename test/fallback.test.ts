// backup() of a source that another process (the native sqlite3 CLI) writes, without real file
// locks (locking "process": Node 20-24, Deno without --allow-ffi; forced here on every runtime)
// and with them (locking "os" where the runtime has FFI). Without locks, every backup either
// resolves with a committed state (the CLI checks integrity and the application's invariants) or
// rejects with SQLITE_BUSY naming cause and remedy, the existing destination byte-for-byte as it
// was; a concurrent writer is never reported as SQLITE_CORRUPT. With locks, every copy succeeds.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_NOTADB, SqliteError, type Sqlite, type Vfs, type VfsFile } from "../src/index.js";
import { BACKUP_OPTION_KEYS } from "../src/ops/options.js";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { rng, SEED } from "./faults/util.js";
import { sqlitePromise, tmpDir } from "./helpers.js";

const dir = tmpDir("fallback");
const ACCOUNTS = 50;
const stats: string[] = [];
/**
 * The full copy, whose guard this suite tests; SBW_FALLBACK_ROUTE=default runs backup()'s default
 * route instead (over an existing database, the incremental compare under the same guard; into a
 * new file, the fresh copy). test/runtimes/run.mjs runs both.
 */
const ROUTE = process.env.SBW_FALLBACK_ROUTE === "default" || !BACKUP_OPTION_KEYS.includes("incremental") ? {} : { incremental: false };

/** Moves money between two of 50 accounts, appends a 3 KB row and bumps a counter. */
const SCHEMA = `PRAGMA journal_mode=delete;
  CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${ACCOUNTS}) INSERT INTO acct SELECT i, 100 FROM c;
  CREATE TABLE log(id INTEGER PRIMARY KEY, v BLOB);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<200) INSERT INTO log(v) SELECT randomblob(3000) FROM c;
  CREATE TABLE meta(n INTEGER NOT NULL); INSERT INTO meta VALUES (200);`;

function transferSql(r: () => number): string {
  const a = 1 + Math.floor(r() * ACCOUNTS);
  const b = 1 + Math.floor(r() * ACCOUNTS);
  return `BEGIN IMMEDIATE; UPDATE acct SET bal=bal-7 WHERE id=${a}; UPDATE acct SET bal=bal+7 WHERE id=${b};
    INSERT INTO log(v) VALUES (randomblob(3000)); UPDATE meta SET n=n+1; COMMIT;`;
}

/** The native CLI's verdict: "ok 1" for a committed state (sum of balances and counter = rows). */
function verdict(file: string): string {
  return execFileSync("sqlite3", ["-batch", "-readonly", file, ".timeout 10000", "PRAGMA integrity_check",
    `SELECT (SELECT sum(bal) FROM acct) = ${ACCOUNTS * 100} AND (SELECT n FROM meta) = (SELECT count(*) FROM log)`], { encoding: "utf8" })
    .trim().split("\n").join(" ");
}
const COMMITTED = "ok 1";
const commits = (file: string) =>
  Number(execFileSync("sqlite3", ["-batch", "-readonly", file, ".timeout 10000", "SELECT n FROM meta"], { encoding: "utf8" }).trim());
const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const leftovers = () => readdirSync(dir).filter((f) => f.includes("sbw-tmp"));

function makeSource(name: string): string {
  const file = join(dir, name);
  execFileSync("sqlite3", ["-batch", file, SCHEMA]);
  return file;
}

/**
 * The native CLI committing transfers, paced (~100/s) or unpaced, fed by a shell loop so that it
 * never waits for this process's event loop. Stopping ends the loop; the CLI drains what is
 * queued in the pipe and exits between transactions (no hot journal left behind).
 */
function nativeWriter(file: string, paced: boolean): { stop(): Promise<void> } {
  const stopFile = `${file}.stop`;
  const txn = `BEGIN IMMEDIATE; UPDATE acct SET bal=bal-7 WHERE id=$a; UPDATE acct SET bal=bal+7 WHERE id=$b;
    INSERT INTO log(v) VALUES (randomblob(3000)); UPDATE meta SET n=n+1; COMMIT;`;
  const loop = `{ echo .timeout 10000; while [ ! -e "$0" ]; do a=$((RANDOM % ${ACCOUNTS} + 1)); b=$((RANDOM % ${ACCOUNTS} + 1));
    echo "${txn}"; ${paced ? "sleep 0.01;" : ""} done; } | sqlite3 -batch "$1" >/dev/null`;
  const p = spawn("bash", ["-c", loop, stopFile, file], { stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise<void>((resolve) => p.on("exit", () => resolve()));
  return {
    async stop() {
      writeFileSync(stopFile, "");
      await exited;
      rmSync(stopFile);
    },
  };
}

/** The test's VFS: node-fs with a hook on every read, to act exactly while a step reads. */
class HookVfs implements Vfs {
  readonly name = "hook";
  readonly mxPathname = 1024;
  readonly inner = new NodeFsVfs();
  onRead: ((offset: number, length: number, file: VfsFile) => void) | null = null;

  open(name: string | null, flags: number) {
    const { file: f, outFlags } = this.inner.open(name, flags);
    const file: VfsFile = {
      lockKey: f.lockKey,
      close: () => f.close(),
      read: (dst, offset) => {
        this.onRead?.(offset, dst.length, f);
        return f.read(dst, offset);
      },
      write: (src, offset) => f.write(src, offset),
      truncate: (size) => f.truncate(size),
      sync: (flags) => f.sync(flags),
      size: () => f.size(),
      fileControl: f.fileControl && ((op, arg) => f.fileControl!(op, arg)),
      sectorSize: () => f.sectorSize(),
      deviceCharacteristics: () => f.deviceCharacteristics(),
      lockChanged: f.lockChanged && ((level) => f.lockChanged!(level)),
    };
    return { file, outFlags };
  }
  delete(name: string, syncDir: boolean) { this.inner.delete(name, syncDir); }
  access(name: string, flags: number) { return this.inner.access(name, flags); }
  fullPathname(name: string) { return this.inner.fullPathname(name); }
}

const hook = new HookVfs();
/** Locks of this process only, whatever the runtime offers: the fallback under test. */
const fallback: Promise<Sqlite> = loadSqlite({ locking: "process", vfs: [hook] });

/** One native commit, run synchronously (in the middle of one of our steps). */
const nativeCommit = (file: string, r: () => number) => execFileSync("sqlite3", ["-batch", file, ".timeout 5000", transferSql(r)]);

function assertGaveUp(e: unknown, context: string): void {
  assert.instance(e, SqliteError, `${context}: ${String(e)}`);
  const err = e as SqliteError;
  assert.is(err.code, SQLITE_BUSY, `${context}: ${err.codeName} ${err.message}`);
  assert.match(err.message, /another process .* the source file/, "names the cause");
  assert.match(err.message, /Node >= 26, Bun, or Deno with --allow-ffi .* WAL mode/, "names the remedy");
}

test("unknown or malformed backup() options are a TypeError", async () => {
  const sqlite = await sqlitePromise;
  using src = sqlite.open(":memory:");
  using dst = sqlite.open(":memory:");
  for (const bad of [{ pageSize: 4 }, { busyTimeout: 10 }, { verifySource: "yes" }, { sourceName: 1 }, null]) {
    const e = await sqlite.backup(src, dst, bad as never).then(() => null, (err: unknown) => err);
    assert.instance(e, TypeError, JSON.stringify(bad));
  }
});

test("another process commits during the step that ends every copy: SQLITE_BUSY, the existing destination unchanged", async () => {
  const sqlite = await fallback;
  const file = makeSource("last-step.db");
  const key = realpathSync(file);
  const r = rng(SEED);
  const dest = join(dir, "last-step-backup.db");
  using memDest = sqlite.open(":memory:");
  using emptyMem = sqlite.open(":memory:");
  {
    using source = sqlite.open(file, { readonly: true });
    await sqlite.backup(source, dest, ROUTE);
    await sqlite.backup(source, memDest, ROUTE);
  }
  assert.is(verdict(dest), COMMITTED);
  chmodSync(dest, 0o600);
  const before = sha(dest);
  const memBefore = memDest.serialize();
  const newDest = join(dir, "last-step-new.db");
  let fired = 0;
  // Reading the source's last page: a native commit lands in the middle of the finishing step.
  hook.onRead = (offset, length, f) => {
    if (f.lockKey === key && length >= 512 && offset + length >= f.size()) {
      fired++;
      nativeCommit(file, r);
    }
  };
  try {
    for (const [target, label] of [[dest, "existing file"], [memDest, "open Database"], [emptyMem, "empty in-memory Database"], [newDest, "new file"]] as const) {
      // A fresh connection: its page cache must not hide the file's pages from the hook.
      using source = sqlite.open(file, { vfs: hook.name, readonly: true });
      const was = fired;
      const e = await sqlite.backup(source, target, { ...ROUTE, busyTimeoutMs: 300 }).then(() => null, (err: unknown) => err);
      assertGaveUp(e, label);
      assert.ok(fired - was > 1, `${label}: several copies were torn (${fired - was})`);
    }
  } finally {
    hook.onRead = null;
  }
  assert.is(sha(dest), before, "the existing destination is byte-for-byte what it was");
  assert.is(statSync(dest).mode & 0o777, 0o600);
  assert.equal(memDest.serialize(), memBefore, "the open destination is what it was");
  // Copied into in place, it held a torn copy after every attempt: empty again.
  assert.ok(emptyMem.get<{ page_count: number }>("PRAGMA page_count")!.page_count <= 1, "the empty in-memory destination is empty");
  assert.equal(emptyMem.all("SELECT name FROM sqlite_schema"), []);
  assert.equal(emptyMem.all("PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
  assert.not.ok(existsSync(newDest), "a new destination is not created");
  assert.equal(leftovers(), [], "no temporary file left");
  // With the writer gone the same call succeeds, and the rename keeps the file's mode.
  {
    using source = sqlite.open(file, { readonly: true });
    await sqlite.backup(source, dest, ROUTE);
  }
  assert.is(verdict(dest), COMMITTED);
  assert.is(commits(dest), commits(file));
  assert.is(statSync(dest).mode & 0o777, 0o600);
  stats.push(`last step torn: ${fired} native commits inside finishing steps, 4 rejections, destinations unchanged`);
});

test("a guarded copy into an empty in-memory database holds the database once, and restarts in place", async () => {
  const sqlite = await fallback;
  const file = makeSource("into-memory.db");
  // ~12 MiB: the source connection's own cache (2 MiB) stays small beside it.
  execFileSync("sqlite3", ["-batch", file, `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<4000)
    INSERT INTO log(v) SELECT randomblob(3000) FROM c; UPDATE meta SET n=(SELECT count(*) FROM log);`]);
  const key = realpathSync(file);
  const bytes = statSync(file).size;
  const r = rng(SEED);
  using mem = sqlite.open(":memory:");
  let peak = 0;
  let torn = 0;
  // Two native commits in the middle of the copy: two attempts abandoned, the third one kept.
  hook.onRead = (offset, length, f) => {
    if (f.lockKey === key && torn < 2 && offset > bytes / 2) {
      torn++;
      nativeCommit(file, r);
    }
  };
  try {
    using source = sqlite.open(file, { vfs: hook.name, readonly: true });
    const before = sqlite.memoryUsed();
    const sample = () => (peak = Math.max(peak, sqlite.memoryUsed() - before));
    const timer = setInterval(sample, 1); // between steps, whatever copy they belong to
    const result = await sqlite.backup(source, mem, { ...ROUTE, pagesPerStep: 200, onProgress: sample }).finally(() => clearInterval(timer));
    assert.ok(result.restarts >= 1, `torn attempts restarted (${result.restarts}, ${torn} native commits)`);
  } finally {
    hook.onRead = null;
  }
  // A scratch copy beside the destination would have held it twice.
  assert.ok(peak < bytes * 1.5, `peak ${peak} bytes for a ${bytes}-byte database`);
  const out = join(dir, "into-memory-check.db");
  writeFileSync(out, mem.serialize());
  assert.is(verdict(out), COMMITTED);
  assert.is(commits(out), commits(file));
});

test("another process grows the file between the size check and page 1: a restart, not SQLITE_CORRUPT", async () => {
  const sqlite = await fallback;
  const file = makeSource("torn-header.db");
  const key = realpathSync(file);
  const r = rng(SEED + 1);
  using source = sqlite.open(file, { vfs: hook.name, readonly: true });
  const dest = join(dir, "torn-header-backup.db");
  let fired = 0;
  // SQLite has read the file size; page 1 read next says the database has one more page.
  hook.onRead = (offset, length, f) => {
    if (fired === 0 && f.lockKey === key && offset === 0 && length >= 512) {
      fired++;
      nativeCommit(file, r);
    }
  };
  let result;
  try {
    result = await sqlite.backup(source, dest, { busyTimeoutMs: 2000 });
  } finally {
    hook.onRead = null;
  }
  assert.is(fired, 1);
  assert.ok(result.restarts >= 1, "the torn read was a restart");
  assert.is(verdict(dest), COMMITTED);
  assert.is(commits(dest), commits(file), "the copy is the state after the native commit");
});

test("a truly damaged source still rejects with SQLITE_CORRUPT; a non-database destination is never replaced", async () => {
  const sqlite = await fallback;
  const file = makeSource("damaged.db");
  truncateSync(file, statSync(file).size - 8 * 4096); // the header promises pages the file lacks
  using source = sqlite.open(file, { readonly: true });
  const dest = join(dir, "damaged-backup.db");
  const e = await sqlite.backup(source, dest).then(() => null, (err: unknown) => err);
  assert.instance(e, SqliteError);
  assert.is((e as SqliteError).code, SQLITE_CORRUPT, String(e));
  assert.not.ok(existsSync(dest));

  const good = makeSource("good.db");
  using goodSource = sqlite.open(good, { readonly: true });
  const notes = join(dir, "notes.txt");
  writeFileSync(notes, "not a database, ".repeat(100));
  const e2 = await sqlite.backup(goodSource, notes, ROUTE).then(() => null, (err: unknown) => err);
  assert.is((e2 as SqliteError)?.code, SQLITE_NOTADB, String(e2));
  assert.is(readFileSync(notes, "utf8"), "not a database, ".repeat(100));
  assert.equal(leftovers(), []);
});

test("a destination file this program has open is copied into, not replaced; one nobody has open is renamed in", async () => {
  const sqlite = await fallback;
  const file = makeSource("renamed.db");
  using source = sqlite.open(file, { readonly: true });
  const dest = join(dir, "renamed-backup.db");
  execFileSync("sqlite3", [dest, "CREATE TABLE old(x); INSERT INTO old VALUES (1);"]);
  {
    using open = sqlite.open(dest);
    const ino = statSync(dest).ino;
    await sqlite.backup(source, dest, ROUTE);
    assert.is(statSync(dest).ino, ino, "the same file");
    assert.is(open.get<{ n: number }>("SELECT count(*) AS n FROM acct")?.n, ACCOUNTS, "the open connection sees the copy");
  }
  execFileSync("sqlite3", [dest, "DROP TABLE acct"]);
  const ino = statSync(dest).ino;
  await sqlite.backup(source, dest, ROUTE);
  // The incremental route writes the existing file in place, its commit after the last check.
  if (ROUTE.incremental === false) assert.is.not(statSync(dest).ino, ino, "renamed in");
  else assert.is(statSync(dest).ino, ino, "updated in place");
  assert.is(verdict(dest), COMMITTED);
  assert.equal(leftovers(), []);
});

test("a native writer holding its transaction (live journal): SQLITE_BUSY naming cause and remedy", async () => {
  const sqlite = await fallback;
  const file = makeSource("held.db");
  const dest = join(dir, "held-backup.db");
  copyFileSync(file, dest);
  const before = sha(dest);
  // A small cache spills the transaction's pages into the file mid-transaction, then it waits.
  const p = spawn("sqlite3", ["-batch", file], { stdio: ["pipe", "ignore", "inherit"] });
  let gone = false;
  const exited = new Promise<void>((resolve) => p.on("exit", () => resolve()));
  void exited.then(() => (gone = true));
  p.stdin.end("PRAGMA cache_size=5; BEGIN; UPDATE log SET v=randomblob(3000);\n.shell sleep 2\nROLLBACK;\n");
  const journal = `${file}-journal`;
  const live = () => existsSync(journal) && readFileSync(journal).subarray(0, 4).equals(Buffer.from([0xd9, 0xd5, 0x05, 0xf9]));
  while (!live() && !gone) await new Promise((r) => setTimeout(r, 5));
  assert.ok(live(), "the writer spilled its transaction into the file");
  try {
    using source = sqlite.open(file, { readonly: true });
    const e = await sqlite.backup(source, dest, { ...ROUTE, busyTimeoutMs: 300 }).then(() => null, (err: unknown) => err);
    assertGaveUp(e, "live journal");
    assert.match((e as Error).message, /stayed inside a write transaction/);
  } finally {
    await exited;
  }
  assert.is(sha(dest), before);
  assert.is(verdict(file), COMMITTED, "the writer rolled back");
  assert.equal(leftovers(), []);
});

for (const paced of [true, false]) {
  const label = paced ? "paced (~100 commits/s)" : "unpaced";
  test(`locking "process": a native writer, ${label}; backups over an existing good backup are consistent or SQLITE_BUSY, never damaging`, async () => {
    const sqlite = await fallback;
    const file = makeSource(`live-${paced}.db`);
    const dest = join(dir, `live-${paced}-backup.db`);
    {
      using source = sqlite.open(file, { readonly: true });
      await sqlite.backup(source, dest);
    }
    const start = commits(file);
    const w = nativeWriter(file, paced);
    let ok = 0;
    let busy = 0;
    let restarts = 0;
    try {
      for (let i = 0; i < 16; i++) {
        using source = sqlite.open(file, { readonly: true });
        const before = sha(dest);
        try {
          const res = await sqlite.backup(source, dest, { ...ROUTE, busyTimeoutMs: 400 });
          restarts += res.restarts;
          assert.is(verdict(dest), COMMITTED, `copy ${i}: a committed state`);
          ok++;
        } catch (e) {
          assertGaveUp(e, `copy ${i}`); // never SQLITE_CORRUPT or any other error
          assert.is(sha(dest), before, `copy ${i}: the destination is byte-for-byte what it was`);
          busy++;
        }
        assert.equal(leftovers(), [], `copy ${i}: no temporary file left`);
      }
    } finally {
      await w.stop();
    }
    const written = commits(file) - start;
    assert.ok(written > 0, "the native writer committed during the backups");
    assert.is(verdict(file), COMMITTED);
    stats.push(`process, ${label}: ${ok} consistent copies (${restarts} restarts), ${busy} SQLITE_BUSY, ${written} native commits meanwhile`);
  });
}

test(`locking "os" (where the runtime has FFI): a native writer, paced and unpaced; every backup is a consistent copy`, async () => {
  const sqlite = await sqlitePromise;
  if (sqlite.locking !== "os") {
    stats.push(`os: skipped (${sqlite.lockingReason})`);
    return;
  }
  for (const paced of [true, false]) {
    const file = makeSource(`os-${paced}.db`);
    const dest = join(dir, `os-${paced}-backup.db`);
    copyFileSync(file, dest);
    const start = commits(file);
    const w = nativeWriter(file, paced);
    let restarts = 0;
    try {
      for (let i = 0; i < 6; i++) {
        using source = sqlite.open(file, { readonly: true });
        const res = await sqlite.backup(source, dest, ROUTE);
        restarts += res.restarts;
        assert.is(verdict(dest), COMMITTED, `copy ${i}: a committed state`);
      }
    } finally {
      await w.stop();
    }
    const written = commits(file) - start;
    assert.ok(written > 0, "the native writer committed during the backups");
    stats.push(`os, ${paced ? "paced" : "unpaced"}: 6 of 6 consistent copies (${restarts} restarts), ${written} native commits meanwhile`);
  }
  assert.equal(leftovers(), []);
});

test.after(() => {
  for (const s of stats) console.log(`  ${s}`);
});

test.run();
