// The browser suite: bundles the test pages, serves the repository from 127.0.0.1, runs every
// test in Debian's Chromium and in Firefox ESR (test/browser/launch.mjs), and prints
// "N passed, N failed, N skipped" last (a skip prints its reason).
//   npm run test:browser            (bundles dist/ first)
//   npx tsx test/browser/run.ts [name-filter]       SBW_BROWSERS=firefox to run one browser
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import type { Browser, Page } from "puppeteer-core";
import { browserNames, launchBrowser } from "./launch.mjs";
import { serve } from "./server.js";

const root = join(import.meta.dirname, "..", "..");
const buildDir = mkdtempSync(join(tmpdir(), "sbw-browser-build-"));
const filter = process.argv[2];

/** What a test gets: the browser it runs in, and where its downloads land. */
interface Ctx {
  name: "chromium" | "firefox";
  browser: Browser;
  downloads: string;
  newPage(): Promise<Page>;
}
/** Thrown by a test that cannot run in this browser: printed with its reason, not counted as passed. */
class Skip extends Error {}

type Test = [name: string, fn: (ctx: Ctx) => Promise<void>];
const tests: Test[] = [];
const test = (name: string, fn: Test[1]) => tests.push([name, fn]);

let baseUrl = "";
let unique = 0;
/** A fresh OPFS directory name per test (all tests share one origin). */
const dirName = (tag: string) => `t${Date.now().toString(36)}-${++unique}-${tag}`;

async function harness(ctx: Ctx): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error(`  [page error] ${e.message}`));
  if (process.env.SBW_DEBUG) page.on("console", (m) => console.error(`  [page] ${m.text()}`));
  await page.goto(`${baseUrl}/test/browser/harness.html`);
  await page.waitForFunction("globalThis.hReady === true", { polling: 50 });
  return page;
}
async function call<T = any>(page: Page, op: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(`globalThis.h.call(${JSON.stringify(op)}, ${JSON.stringify(args)})`) as Promise<T>;
}
async function inWorker<T = any>(page: Page, worker: number, op: string, ...args: unknown[]): Promise<T> {
  return call<T>(page, "inWorker", worker, op, args);
}

/**
 * Opens `path` in a new worker after another was terminated ("recover": the journal before, the
 * content digest, integrity). The dead worker's handles are released asynchronously: retried.
 */
async function recoverInNewWorker(page: Page, path: string): Promise<any> {
  const w = await call(page, "spawn");
  for (let i = 0; i < 50; i++) {
    const r = await inWorker(page, w, "recover", path).catch((e) => {
      if (!/SQLITE_BUSY|another tab or worker/.test(String(e?.message ?? e))) throw e;
    });
    if (r) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`could not reopen ${path}`);
}

// ---------------------------------------------------------------- worker: VFS and backups

test("OPFS and memory VFSes pass the VFS conformance suite (in a worker)", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "conformance", dirName("conf"));
  for (const [vfs, results] of Object.entries(r as Record<string, { name: string; error: string | null }[]>)) {
    assert.ok(results.length >= 10, `${vfs}: only ${results.length} checks`);
    for (const c of results) console.log(`    ${c.error ? "✘" : "✓"} ${vfs}: ${c.name}${c.error ? ` — ${c.error}` : ""}`);
    assert.deepEqual(results.filter((c) => c.error !== null), [], `${vfs} conformance failures`);
  }
});

test("stepped backup memory → OPFS → memory in a worker: real file, sound, equal content", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const dir = dirName("rt");
  const r = await inWorker(page, w, "roundTrip", `${dir}/sub/app.db`, 1500);
  assert.equal(r.toOpfs.sameConnection, true, "content through the destination connection");
  assert.equal(r.toOpfs.integrity, "ok");
  assert.ok(r.toOpfs.steps > 10, `stepped: ${r.toOpfs.steps} steps`);
  assert.ok(r.toOpfs.events > 10, "progress events");
  assert.equal(r.head, "SQLite format 3\0", "the OPFS file is a plain SQLite file");
  assert.equal(r.files["app.db"], r.toOpfs.pageCount * r.pageSize, "file size = pages × page size");
  assert.deepEqual(Object.keys(r.files).sort(), ["app.db", "app.db-journal", "app.db-wal"], "real names, no pool files");
  assert.equal(r.files["app.db-journal"], 0, "the journal is empty after commit");
  assert.equal(r.files["app.db-wal"], 0, "the WAL, open for a journal_mode switch, is empty");
  assert.equal(r.reopened, true, "content through a new connection");
  assert.equal(r.reopenedIntegrity, "ok");
  assert.equal(r.fromOpfs.equal, true, "OPFS → memory content");
  assert.equal(r.fromOpfs.integrity, "ok");
  assert.equal(r.fromOpfs.pageCount, r.toOpfs.pageCount);
});

test("a 30 MB database (the heap grows mid-copy) goes memory → OPFS → memory intact", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "roundTrip", `${dirName("big")}/big.db`, 28_000, 1000);
  assert.ok(r.toOpfs.pageCount * r.pageSize > 30e6, `size ${r.toOpfs.pageCount * r.pageSize}`);
  assert.equal(r.toOpfs.integrity, "ok");
  assert.equal(r.toOpfs.sameConnection, true);
  assert.equal(r.reopened, true);
  assert.equal(r.fromOpfs.equal, true);
  assert.equal(r.fromOpfs.integrity, "ok");
});

test("rollback journal: ROLLBACK after spilled pages restores the old content", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "rollback", `${dirName("rb")}/rb.db`);
  assert.ok(r.midJournal > 0, "the journal was written during the transaction");
  assert.equal(r.equal, true);
  assert.equal(r.integrity, "ok");
  assert.equal(r.journalAfter, 0);
});

test("a worker killed mid-transaction leaves a hot journal that the next open rolls back", async (ctx) => {
  const page = await harness(ctx);
  const path = `${dirName("crash")}/crash.db`;
  const w1 = await call(page, "spawn");
  const { committed } = await inWorker(page, w1, "openTransaction", path);
  await call(page, "terminate", w1);
  // The main thread reads the file with its hot journal: rolled back in a staged copy.
  let restored: any;
  for (let i = 0; i < 50 && !restored; i++) {
    restored = await call(page, "restoreDigest", path).catch((e) => {
      if (!/SQLITE_BUSY|NoModificationAllowed/.test(String(e))) throw e;
    });
    if (!restored) await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(restored?.digest, committed, "restoreFromOpfs: only the committed content");
  assert.equal(restored.integrity, "ok");
  const r = await recoverInNewWorker(page, path);
  assert.ok(r, "could reopen the file");
  assert.ok(r.journalBefore > 0, "a hot journal was left behind");
  assert.equal(r.content, committed, "only the committed content");
  assert.equal(r.integrity, "ok");
  assert.equal(r.journalAfter, 0, "the hot journal was rolled back and emptied");
});

/** An incremental repeat backup (r.inc), checked against the backup API's full copy over the same old bytes (r.full, r.sameBytes). */
function assertIncremental(r: any): void {
  assert.equal(r.inc.incremental, true);
  assert.equal(r.full.incremental, false);
  assert.equal(r.inc.pagesCompared, r.inc.pageCount);
  assert.ok(r.inc.pagesWritten > 0 && r.inc.pagesWritten <= r.inc.pageCount * 0.1, JSON.stringify(r.inc));
  assert.ok(r.events >= 3, `progress in steps: ${r.events}`);
  assert.equal(r.sameBytes, true, "the same bytes as a full backup over the same old bytes");
  assert.equal(r.equal, true);
  assert.equal(r.integrity, "ok");
}

test("incremental backup into an OPFS file (worker): only changed pages written, bytes equal to a full backup's", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "incremental", dirName("inc"));
  assert.deepEqual(r.first, { "inc.db": false, "full.db": false }, "first backups into new files are full copies");
  assertIncremental(r);
});

test("a worker killed in the middle of an incremental backup into OPFS leaves the old database", async (ctx) => {
  const page = await harness(ctx);
  const path = `${dirName("inckill")}/inc.db`;
  const w1 = await call(page, "spawn");
  const { old, next } = await inWorker(page, w1, "incrementalUnderway", path);
  await call(page, "terminate", w1);
  const r = await recoverInNewWorker(page, path);
  assert.ok(r.journalBefore > 0, "killed inside the write transaction: a hot journal was left");
  assert.ok(r.content === old, `the old content (new: ${r.content === next})`);
  assert.equal(r.integrity, "ok");
});

test("main-thread backupToOpfs over its previous backup: incremental in place, bytes equal to a full backup's, shrinks too; a non-database is replaced", async (ctx) => {
  const page = await harness(ctx);
  const r = await call(page, "mainIncremental", dirName("minc"));
  assert.equal(r.first, false, "the first backup into a new file is a full copy");
  assertIncremental(r);
  assert.equal(r.memoryDelta, 0, "memoryUsed() back to where it was: the relay database and its journal freed");
  assert.equal(r.shrunk.incremental, true);
  assert.equal(r.shrunk.equal, true);
  assert.equal(r.shrunk.integrity, "ok");
  assert.equal(r.shrunk.bytes, r.shrunk.pageBytes, "truncated to the source's pages");
  assert.deepEqual(Object.keys(r.files), ["inc.db"], "no journal or temporary file left");
  assert.equal(r.trueOverMissing?.code, 1, JSON.stringify(r.trueOverMissing));
  assert.match(r.trueOverMissing.message, /incremental: true, but .*missing/);
  assert.match(r.junk.junkTrue?.message, /incremental: true, but .*not a database/);
  assert.equal(r.junk.junkAuto, false, "a file that is no database is replaced by the full copy");
  assert.equal(r.junk.equal, true);
});

test("a page closed in the middle of an incremental backupToOpfs leaves a hot journal and the old database", async (ctx) => {
  const page = await harness(ctx);
  const path = `${dirName("minckill")}/inc.db`;
  const { old, next } = await call(page, "mainIncrementalUnderway", path);
  await page.close();
  const page2 = await harness(ctx);
  const r = await recoverInNewWorker(page2, path);
  assert.ok(r.journalBefore > 0, "closed inside the write transaction: a hot journal was left");
  assert.ok(r.content === old, `the old content (new: ${r.content === next})`);
  assert.equal(r.integrity, "ok");
});

test("WAL on OPFS: a worker killed right after its commits (database still open) loses none of them", async (ctx) => {
  // Commits reach the -wal file when they return (the buffering layer flushes at every WAL-index
  // lock): nothing committed waits in a JS buffer that a closed tab would take with it.
  const page = await harness(ctx);
  const path = `${dirName("walkill")}/w.db`;
  const w1 = await call(page, "spawn");
  const { committed } = await inWorker(page, w1, "walCommitted", path);
  await call(page, "terminate", w1);
  const r = await recoverInNewWorker(page, path);
  assert.equal(r.content, committed, "every committed transaction is there");
  assert.equal(r.integrity, "ok");
});

test("two connections in one worker: a writer's lock makes the other SQLITE_BUSY", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "twoConnections", `${dirName("two")}/two.db`);
  assert.equal(r.busy?.code, 5, `BUSY while the other holds RESERVED: ${JSON.stringify(r.busy)}`);
  assert.deepEqual(r.bBeforeCommit, [], "the uncommitted row is invisible");
  assert.deepEqual(r.aSees, [{ k: "a", v: 1 }, { k: "b", v: 2 }]);
  assert.equal(r.integrity, "ok");
});

test("two connections in one worker on a WAL file read each other's commits and checkpoints", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "walTwoConnections", `${dirName("wal")}/wal.db`);
  assert.equal(r.mode, "wal");
  assert.deepEqual(r.seen, [true, true, true, true], "b sees a, a sees b, after the checkpoint, after a delete");
  assert.equal(r.checkpoint.busy, 0, `checkpoint: ${JSON.stringify(r.checkpoint)}`);
  assert.equal(r.rows.n, 10 + 500 + 500 - Math.floor(1010 / 3) + 200);
  assert.equal(r.integrity, "ok");
});

test("WAL: journal_mode switched both ways on an open OPFS connection", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "walSwitch", `${dirName("walsw")}/s.db`);
  assert.deepEqual(r.modes, ["wal", "delete", "wal"]);
  assert.equal(r.otherSees, true, "a second connection reads the WAL");
  assert.ok(r.walDuring > 0, "the WAL was written");
  assert.equal(r.rows, 400);
  assert.equal(r.reopened, true, "the content after closing, read-only");
  assert.equal(r.reopenedMode, "wal");
  assert.equal(r.integrity, "ok");
});

/**
 * A native sqlite3 CLI killed after its last commit: the database and a non-empty -wal, put as
 * n.db and n.db-wal into a new OPFS directory, which is returned.
 */
async function putNativeWal(page: Page, label: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "sbw-native-wal-"));
  try {
    const script = [
      "PRAGMA journal_mode=WAL;",
      "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT);",
      "INSERT INTO t(s) SELECT 'ckpt-' || value FROM generate_series(1, 500);",
      "PRAGMA wal_checkpoint(TRUNCATE);",
      "INSERT INTO t(s) SELECT 'wal-' || value FROM generate_series(1, 300);",
      ".system kill -9 $PPID", // no close, so no checkpoint: the last 300 rows live only in the WAL
    ].join("\n");
    spawnSync("sqlite3", [join(dir, "n.db")], { input: script });
    const files = { db: readFileSync(join(dir, "n.db")), wal: readFileSync(join(dir, "n.db-wal")) };
    assert.ok(files.wal.length > 32, "the native -wal holds frames");
    const opfsDir = dirName(label);
    await call(page, "putFiles", { [`${opfsDir}/n.db`]: files.db.toString("base64"), [`${opfsDir}/n.db-wal`]: files.wal.toString("base64") });
    return opfsDir;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("WAL: a native database with a non-empty -wal is restored on the main thread and in a worker, opened and backed up in a worker", async (ctx) => {
  const page = await harness(ctx);
  const dir = await putNativeWal(page, "walnative");
  const main = await call(page, "restoreCount", `${dir}/n.db`);
  assert.deepEqual({ n: main.n, w: main.w, integrity: main.integrity }, { n: 800, w: 300, integrity: "ok" }, "main thread read through the WAL");
  assert.notEqual(main.mode, "wal", "the copy is a plain in-memory database");
  assert.deepEqual(main.after, main.before, "the OPFS files are unchanged");
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "walRead", `${dir}/n.db`);
  assert.deepEqual(r.viaRestore, { n: 800, w: 300, integrity: "ok" }, "restoreFromOpfs in a worker");
  assert.deepEqual(r.readonly, { n: 800, w: 300, integrity: "ok" }, "openOpfs read-only reads through the WAL");
  assert.deepEqual(r.filesAfterReadonly, r.before, "a read-only open changes no file");
  assert.deepEqual({ n: r.opened.n, w: r.opened.w, integrity: r.opened.integrity, mode: r.opened.mode }, { n: 800, w: 300, integrity: "ok", mode: "wal" });
  assert.deepEqual(r.backedUp, { n: 800, w: 300, equal: true });
});

test("WAL: backupToOpfs from the main thread over a native database with a non-empty -wal replaces both; the old WAL is never replayed into the copy", async (ctx) => {
  const page = await harness(ctx);
  const dir = await putNativeWal(page, "walover");
  const r = await call(page, "backupOverWal", `${dir}/n.db`);
  assert.equal(r.refused?.code, 1, JSON.stringify(r.refused));
  assert.match(r.refused.message, /-journal or -wal beside it is not empty/);
  assert.ok(r.afterRefusal["n.db-wal"] > 32, "the refusal changed nothing");
  assert.equal(r.incremental, false);
  assert.equal(r.files["n.db-wal"] ?? 0, 0, "the old WAL is gone");
  assert.deepEqual(Object.keys(r.files).filter((n) => n.endsWith(".sbw-tmp")), []);
  assert.deepEqual({ tables: r.tables, rows: r.rows, integrity: r.integrity }, { tables: ["fresh"], rows: 3, integrity: "ok" });
});

test("contention between two workers: the second open is SQLITE_BUSY until the first closes", async (ctx) => {
  const page = await harness(ctx);
  const path = `${dirName("cont")}/c.db`;
  const w1 = await call(page, "spawn");
  const w2 = await call(page, "spawn");
  await inWorker(page, w1, "hold", path);
  const busy = await inWorker(page, w2, "tryOpen", path, 0);
  assert.equal(busy.ok, false);
  assert.equal(busy.code, 5, JSON.stringify(busy));
  assert.equal(busy.name, "SqliteError");
  assert.match(busy.message, /is open in another tab or worker/);
  await inWorker(page, w1, "release", path);
  const ok = await inWorker(page, w2, "tryOpen", path);
  assert.equal(ok.ok, true, JSON.stringify(ok));
});

test("read-only openOpfs in two workers at once (where every handle is exclusive, Firefox, the second reads a snapshot): both read the file, a restore reads it meanwhile, a writer waits for both", async (ctx) => {
  const page = await harness(ctx);
  const path = `${dirName("ro2")}/ro.db`;
  const v1 = await call(page, "writeVersion", path, 300, "v1");
  const [r1, r2, wr] = [await call(page, "spawn"), await call(page, "spawn"), await call(page, "spawn")];
  const a = await inWorker(page, r1, "holdReadonly", path);
  const b = await inWorker(page, r2, "holdReadonly", path);
  assert.deepEqual([a, b], [{ digest: v1, integrity: "ok" }, { digest: v1, integrity: "ok" }], "both readers see the file");
  assert.deepEqual(await inWorker(page, r1, "readHeld", path), a, "the first reader reads on");
  assert.equal((await call(page, "restoreDigest", path)).digest, v1, "restoreFromOpfs alongside the readers");
  const busy = await inWorker(page, wr, "tryOpen", path, 0);
  assert.equal(busy.code, 5, `a read-write open while both read: ${JSON.stringify(busy)}`);
  await inWorker(page, r1, "release", path);
  assert.equal((await inWorker(page, wr, "tryOpen", path, 0)).code, 5, "one reader still has it");
  assert.deepEqual(await inWorker(page, r2, "readHeld", path), b, "the second reader reads on alone");
  await inWorker(page, r2, "release", path);
  const ok = await inWorker(page, wr, "tryOpen", path, 10_000);
  assert.equal(ok.ok, true, JSON.stringify(ok));
});

test("missing files: openOpfs(create: false) and restoreFromOpfs are SQLITE_CANTOPEN", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const a = await inWorker(page, w, "openMissing", `${dirName("missing")}/nope.db`);
  assert.equal(a.ok, false);
  assert.equal(a.code, 14, JSON.stringify(a));
  const b = await call(page, "restoreMissing", `${dirName("missing")}/nope.db`);
  assert.equal(b.code, 14, JSON.stringify(b));
  const c = await call(page, "openOpfsOnMainThread", `${dirName("main")}/x.db`);
  assert.equal(c.ok, false);
  assert.match(c.message, /dedicated Workers/);
});

/** Checks noOpfs()'s report (pages/common.ts) from one context. */
function assertNoOpfs(where: string, r: any): void {
  assert.equal(r.available, false, `${where}: opfsAvailable()`);
  for (const k of ["backup", "restore", "open", "openReadonly"]) {
    const e = r[k];
    assert.equal(e.name, "SqliteError", `${where}, ${k}: ${JSON.stringify(e)}`);
    assert.equal(e.code, 14, `${where}, ${k}: SQLITE_CANTOPEN`);
    assert.match(e.message, /OPFS is not available in this context: navigator\.storage\.getDirectory\(\) failed with SecurityError/, `${where}, ${k}`);
    // busyTimeoutMs is 60 s and the file's lock is held: a call that went for the lock would wait.
    assert.ok(e.ms < 10_000, `${where}, ${k}: rejected after ${e.ms} ms`);
  }
}

test("no OPFS (getDirectory() throws SecurityError, as in private windows): opfsAvailable() is false and every OPFS call rejects at once with one SqliteError naming the cause", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  assertNoOpfs("page", await call(page, "noOpfs", `${dirName("noopfs")}/app.db`));
  assertNoOpfs("worker", await inWorker(page, w, "noOpfs", `${dirName("noopfs")}/app.db`));
  const ok = await harness(ctx);
  assert.equal(await ok.evaluate("globalThis.h.call('opfsAvailable', [])"), true, "a page with OPFS");
  if (ctx.name !== "firefox") return;
  // A real private window: Firefox with every window private.
  const priv = await launchBrowser("firefox", { prefs: { "browser.privatebrowsing.autostart": true } });
  try {
    const p = await harness({ ...ctx, browser: priv.browser, newPage: () => priv.browser.newPage() });
    assertNoOpfs("Firefox private window", await call(p, "noOpfs", `${dirName("private")}/app.db`, true));
  } finally {
    await priv.close();
  }
});

// ---------------------------------------------------------------- main thread copies

test("main thread: backupToOpfs with progress, restoreFromOpfs gives equal content", async (ctx) => {
  const page = await harness(ctx);
  const dir = dirName("mb");
  const r = await call(page, "mainBackup", `${dir}/app.db`, 3000);
  assert.ok(r.progress.length > 5, `${r.progress.length} progress events`);
  assert.deepEqual(r.progress.at(-1), { remaining: 0, pageCount: r.res.pageCount }, "final event");
  for (let i = 1; i < r.progress.length; i++) assert.ok(r.progress[i].remaining <= r.progress[i - 1].remaining, "remaining never grows");
  assert.equal(r.back.digest, r.digest, "restored content equals the source");
  assert.equal(r.back.integrity, "ok");
  assert.deepEqual(Object.keys(r.files), ["app.db"], "only the target is left");
  assert.equal(r.memoryDelta, 0, "no heap left allocated");
});

test("main thread: restoreFromOpfs reads in steps with progress; an abort rejects and frees what it read", async (ctx) => {
  const page = await harness(ctx);
  const r = await call(page, "restoreSteps", `${dirName("rsteps")}/app.db`);
  assert.equal(r.restored.digest, r.expected);
  assert.equal(r.restored.integrity, "ok");
  assert.equal(r.progress.length, Math.ceil(r.pageCount / 50), "one event per 50 pages");
  assert.deepEqual(r.progress.at(-1), { remaining: 0, pageCount: r.pageCount });
  for (let i = 1; i < r.progress.length; i++) assert.ok(r.progress[i].remaining < r.progress[i - 1].remaining, "remaining falls every step");
  assert.equal(r.rejection?.message, "stop");
  assert.equal(r.memoryDelta, 0, "the heap is back to where it was");
});

test("main thread: aborted copy (incremental in place, and full) rejects with the reason and leaves the old file", async (ctx) => {
  const page = await harness(ctx);
  for (const incremental of [true, false]) {
    const r = await call(page, "mainAbort", `${dirName("abort")}/app.db`, incremental);
    assert.equal(r.rejection?.message, "user abort", `incremental: ${incremental}`);
    assert.equal(r.events, 3);
    assert.equal(r.after.digest, r.v1, "old content");
    assert.equal(r.after.integrity, "ok");
    assert.deepEqual(r.files, ["app.db"], "no journal or temporary file left");
  }
});

test("main thread: a failure mid-copy (incremental in place, and full) rejects and leaves the old file", async (ctx) => {
  const page = await harness(ctx);
  for (const incremental of [true, false]) {
    const r = await call(page, "mainInjectedFailure", `${dirName("fail")}/app.db`, incremental);
    assert.equal(r.rejection?.message, "injected failure", `incremental: ${incremental}`);
    assert.equal(r.after.digest, r.v1);
    assert.equal(r.after.integrity, "ok");
    assert.deepEqual(r.files, ["app.db"], "no journal or temporary file left");
  }
});

test("main thread: a target the writer cannot create (its directory is a file) rejects with SQLITE_CANTOPEN and leaves nothing", async (ctx) => {
  const page = await harness(ctx);
  const r = await call(page, "mainCannotCreate", dirName("nodir"));
  // false: the full copy starts before the writer has created its file, and stops on that failure;
  // "auto": the writer's look at the target fails first.
  for (const incremental of ["false", "auto"]) {
    assert.equal(r[incremental].ok, false, incremental);
    assert.equal(r[incremental].code, 14, JSON.stringify(r[incremental]));
    assert.match(r[incremental].message, /TypeMismatchError/);
  }
  assert.deepEqual(r.files, { blocker: 15 }, "the blocking file as it was, no temporary file");
});

test("main thread: target held by a worker → SQLITE_BUSY before copying, old file intact", async (ctx) => {
  const page = await harness(ctx);
  const r = await call(page, "mainTargetBusy", `${dirName("busy")}/app.db`);
  assert.equal(r.rejection?.code, 5, JSON.stringify(r.rejection));
  assert.match(r.rejection.message, /is open in another tab or worker/);
  assert.equal(r.events, 0, "nothing was copied");
  assert.equal(r.after.digest, r.v1);
  assert.equal(r.after.integrity, "ok");
  assert.deepEqual(r.tmp, []);
});

test("options: unknown keys and destName other than main are TypeErrors; elapsedMs covers the call; a source written between steps is copied as of the end", async (ctx) => {
  const page = await harness(ctx);
  const dir = dirName("opts");
  const r = await call(page, "optionChecks", `${dir}/app.db`);
  for (const [k, v] of Object.entries(r.rejected as Record<string, { ok: boolean; name: string; message: string }>)) {
    assert.equal(v.ok, false, `${k} was accepted`);
    assert.equal(v.name, "TypeError", `${k}: ${v.message}`);
  }
  assert.match(r.rejected.misspelt.message, /unknown option "pagesPerstep"/);
  assert.match(r.rejected.destNosuch.message, /destName/);
  assert.deepEqual(r.filesAfterRejections, {}, "nothing was written");
  assert.deepEqual(r.accepted.destMain, { ok: true });
  assert.deepEqual(r.accepted.incrementalFalse, { ok: true });
  assert.ok(r.elapsed.elapsedMs >= r.elapsed.sinceLastEvent && r.elapsed.elapsedMs <= r.elapsed.wall, JSON.stringify(r.elapsed));
  for (const k of ["sameConnection", "otherConnection", "sameConnectionIncremental", "otherConnectionIncremental"]) {
    assert.equal(r[k].equal, true, `${k}: the file has the source's final content`);
    assert.equal(r[k].integrity, "ok", k);
    assert.equal(r[k].incremental, k.endsWith("Incremental"), k);
  }
  assert.equal(r.sameConnection.restarts, 0, "full copy, the source's own connection: updated in place");
  assert.ok(r.otherConnection.restarts >= 1, `full copy, another connection: the copy starts over (restarts: ${r.otherConnection.restarts})`);
  for (const k of ["sameConnectionIncremental", "otherConnectionIncremental"]) {
    assert.ok(r[k].restarts >= 1, `${k}: the compare starts over (restarts: ${r[k].restarts})`);
  }
});

/** Polls the page until someone waits for the file's Web Lock (a call has started waiting). */
async function waitUntilPending(page: Page, path: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if ((await call(page, "lockState", path)).pending > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nobody waited for the lock of ${path}: ${JSON.stringify(await call(page, "awaitPending"))}`);
}

test("Web Locks, two pages: a file open in another tab makes backupToOpfs, restoreFromOpfs and openOpfs SQLITE_BUSY before copying anything", async (ctx) => {
  const path = `${dirName("locks")}/app.db`;
  const a = await harness(ctx);
  const wa = await call(a, "spawn");
  await inWorker(a, wa, "hold", path);
  await inWorker(a, wa, "fillHeld", path, 100, "a");
  const b = await harness(ctx);
  const r = await call(b, "busyChecks", path, 300);
  for (const k of ["backup", "restore", "open"] as const) {
    assert.equal(r[k].ok, false, `${k} succeeded`);
    assert.equal(r[k].code, 5, `${k}: ${JSON.stringify(r[k])}`);
    assert.match(r[k].message, /is open in another tab or worker/, k);
  }
  assert.equal(r.events, 0, "no progress: nothing was copied");
  assert.deepEqual(r.tmp, [], "no temporary file was started");
  await inWorker(a, wa, "release", path);
  assert.equal((await call(b, "restoreCount", path)).n, 100, "the holder's rows, once it let go");
});

test("Web Locks, two pages: a call that waits succeeds when the other tab lets go; a restore waits for the writer to finish", async (ctx) => {
  const path = `${dirName("locks2")}/app.db`;
  const a = await harness(ctx);
  const wa = await call(a, "spawn");
  await inWorker(a, wa, "hold", path);
  await inWorker(a, wa, "fillHeld", path, 50, "a");
  const b = await harness(ctx);
  // backupToOpfs waits while tab A has the file open, and copies once A closes it.
  await call(b, "startPending", "backup", path, 60_000);
  await waitUntilPending(b, path);
  await inWorker(a, wa, "release", path);
  const backup = await call(b, "awaitPending");
  assert.equal(backup.ok, true, JSON.stringify(backup));
  assert.equal((await call(b, "restoreDigest", path)).digest, backup.expected, "B's copy replaced the file");
  // A restore started while tab A writes reads only what A left when it let go.
  await inWorker(a, wa, "hold", path);
  await inWorker(a, wa, "fillHeld", path, 10, "a2");
  await call(b, "startPending", "restore", path, 60_000);
  await waitUntilPending(b, path);
  await inWorker(a, wa, "fillHeld", path, 1000, "a3");
  await inWorker(a, wa, "release", path);
  const restore = await call(b, "awaitPending");
  assert.deepEqual(restore, { ok: true, rows: 300 + 10 + 1000, integrity: "ok" });
});

test("Web Locks, two pages: closing a tab that has the file open lets the other tab open it", async (ctx) => {
  const path = `${dirName("locks3")}/app.db`;
  const a = await harness(ctx);
  const wa = await call(a, "spawn");
  await inWorker(a, wa, "hold", path);
  await inWorker(a, wa, "fillHeld", path, 20, "a");
  const b = await harness(ctx);
  const wb = await call(b, "spawnHere");
  await a.close();
  const r = await inWorker(b, wb, "tryOpen", path, 30_000);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal((await call(b, "restoreCount", path)).n, 20);
});

/**
 * SQLITE_FULL from either thread once OPFS's quota runs out, the previous file intact. `limit`
 * makes the origin's quota its usage plus 4 MiB (~20 MB would be written), and undoes that.
 */
async function quotaChecks(page: Page, limit: (usage: number) => Promise<() => Promise<void>>): Promise<void> {
  const path = `${dirName("quota")}/app.db`;
  const v1 = await call(page, "writeVersion", path, 200, "v1");
  const w = await call(page, "spawn");
  await inWorker(page, w, "hold", path); // a worker database, filled below
  await inWorker(page, w, "fillHeld", path, 100, "w");
  await inWorker(page, w, "release", path);
  const undo = await limit(await call(page, "usage"));
  try {
    const inWorkerResult = await inWorker(page, w, "quotaFill", path);
    assert.equal(inWorkerResult.error?.code, 13, `worker: ${JSON.stringify(inWorkerResult.error)}`); // SQLITE_FULL
    assert.equal(inWorkerResult.same, true, "worker: the transaction was rolled back");
    assert.equal(inWorkerResult.integrity, "ok");
    await call(page, "terminate", w);
    const v2 = await call(page, "restoreDigest", path);
    const main = await call(page, "mainQuota", path, v2.digest);
    assert.equal(main.rejection?.code, 13, `main thread: ${JSON.stringify(main.rejection)}`);
    assert.equal(main.same, true, "main thread: the previous file is intact");
    assert.equal(main.after.integrity, "ok");
    assert.deepEqual(main.tmp, [], "the temporary file is gone");
    assert.notEqual(v2.digest, v1, "the worker's rows are in the file");
  } finally {
    await undo();
  }
}

test("OPFS quota exhausted (Chromium: DevTools' Storage.overrideQuotaForOrigin; Firefox: a profile with a 10 MiB storage limit): SQLITE_FULL, the previous file intact, from either thread", async (ctx) => {
  if (ctx.name === "chromium") {
    const page = await harness(ctx);
    const cdp = await page.createCDPSession();
    const origin = new URL(baseUrl).origin;
    await quotaChecks(page, async (usage) => {
      await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: usage + (4 << 20) });
      return async () => void (await cdp.send("Storage.overrideQuotaForOrigin", { origin }));
    });
    return;
  }
  // Firefox has no per-origin override: a browser of its own whose whole temporary storage is
  // 20 MiB, which gives an origin 10 MiB (a group's limit is at least min(total, 10 MiB)).
  const limited = await launchBrowser("firefox", { prefs: { "dom.quotaManager.temporaryStorage.fixedLimit": 20 * 1024 } });
  try {
    const lctx: Ctx = { ...ctx, browser: limited.browser, newPage: () => limited.browser.newPage() };
    const page = await harness(lctx);
    await quotaChecks(page, async (usage) => {
      const quota = await page.evaluate("navigator.storage.estimate().then((e) => e.quota)") as number;
      assert.ok(quota - usage < 12 << 20, `the origin's quota is ${quota} bytes, usage ${usage}: too much room for the test`);
      return async () => {};
    });
  } finally {
    await limited.close();
  }
});

test("page closed mid-copy (full copy): the old file stays intact and readable", async (ctx) => {
  const path = `${dirName("closed")}/app.db`;
  const first = await harness(ctx);
  const v1 = await call(first, "writeVersion", path, 200, "v1");
  await first.close();
  const victim = await harness(ctx);
  await call(victim, "startSlowBackup", path);
  await victim.waitForFunction("globalThis.slowProgress >= 3", { polling: 20 });
  const dir = path.split("/")[0]!;
  const during = await call(victim, "listDir", dir);
  assert.ok(Object.keys(during).some((n) => n.endsWith(".sbw-tmp")), "the copy was writing a temporary file");
  await victim.close();
  const after = await harness(ctx);
  const r = await call(after, "restoreDigest", path);
  assert.equal(r.digest, v1);
  assert.equal(r.integrity, "ok");
  // The next copy sweeps the dead copy's temporary file away.
  const v3 = await call(after, "writeVersion", path, 50, "v3");
  assert.equal((await call(after, "restoreDigest", path)).digest, v3);
  assert.deepEqual(Object.keys(await call(after, "listDir", dir)), ["app.db"]);
});

// ---------------------------------------------------------------- streams and replicas

const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

test("backupToStream on the main thread (in-memory source): the bytes are a database file; restoreFromStream in odd chunks and through gzip gives the same rows", async (ctx) => {
  const page = await harness(ctx);
  const r = await call(page, "mainStream");
  assert.deepEqual(r.header, { magic: "SQLite format 3\0", lengthAgrees: true });
  assert.equal(r.length, r.pageBytes, "the source's pages, all of them");
  assert.ok(r.chunks >= r.length / (64 << 10), `64 KiB chunks: ${r.chunks}`);
  assert.deepEqual(r.progress, { bytes: r.length, totalBytes: r.length, calls: r.chunks });
  assert.deepEqual(r.restored, { pageCount: r.length / 4096, equal: true, integrity: "ok" });
  assert.deepEqual(r.named, { equal: true, integrity: "ok" });
  assert.deepEqual(r.gzip, { equal: true, integrity: "ok" });
});

test("backupToStream of an OPFS database in a worker (spool, and WAL snapshot): restoreFromStream into an existing OPFS database gives the same rows", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "stream", dirName("wstream"));
  assert.deepEqual(r.spool.header, { magic: "SQLite format 3\0", lengthAgrees: true });
  assert.ok(r.spool.chunks > 10, `chunks: ${r.spool.chunks}`);
  assert.deepEqual(r.intoOpfs, { pageCount: r.spool.length / 4096, equal: true, integrity: "ok" });
  assert.deepEqual(r.reopened, { equal: true, integrity: "ok" }, "the OPFS file, through a new connection");
  assert.deepEqual(r.snapshot, { header: { magic: "SQLite format 3\0", lengthAgrees: true }, equal: true, integrity: "ok" });
});

test("restoreFromStream of a cut-short, too long, damaged, empty or non-database stream into an OPFS database (worker): SqliteError, the database byte for byte as it was", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "streamBadRestores", dirName("wbad"));
  const codes: Record<string, number> = { truncated: SQLITE_CORRUPT, cutInHeader: SQLITE_CORRUPT, tooLong: SQLITE_CORRUPT, damaged: SQLITE_CORRUPT, notADatabase: SQLITE_NOTADB, empty: SQLITE_NOTADB };
  for (const [name, out] of Object.entries(r.bad as Record<string, any>)) {
    if (name === "inputFails") assert.match(out.rejection?.message, /the connection dropped/, `${name}: the input's own error`);
    else {
      assert.equal(out.rejection?.name, "SqliteError", `${name}: ${JSON.stringify(out.rejection)}`);
      assert.equal(out.rejection.code, codes[name], `${name}: ${JSON.stringify(out.rejection)}`);
    }
    assert.deepEqual({ sameBytes: out.sameBytes, sameRows: out.sameRows, integrity: out.integrity }, { sameBytes: true, sameRows: true, integrity: "ok" }, name);
  }
  assert.deepEqual(r.filesAfter, r.before, "no file left in the database's directory");
  assert.deepEqual(r.goodAfter, { equal: true, integrity: "ok" }, "a whole stream then restores");
});

test("backupToStream cancelled (reader.cancel()): on the main thread the spool's copy stops; in a worker the WAL snapshot is let go (a checkpoint completes); the next backup of the source succeeds", async (ctx) => {
  const page = await harness(ctx);
  const m = await call(page, "mainStreamCancel");
  assert.equal(m.first, 16 << 10, "a first chunk was read");
  assert.equal(m.afterCancelDone, true);
  assert.equal(m.duringSpool.done, true, "the read pending at the cancel ends the stream");
  assert.ok(m.duringSpool.eventsAtCancel < m.duringSpool.pages / 20 - 2, `the copy stopped at the cancel: ${JSON.stringify(m.duringSpool)}`);
  assert.deepEqual(m.again, { equal: true, integrity: "ok" });
  const w = await call(page, "spawn");
  const r = await inWorker(page, w, "streamCancel", dirName("wcancel"));
  assert.equal(r.first, 16 << 10);
  assert.ok(r.whileOpen.busy === 1 || r.whileOpen.checkpointed < r.whileOpen.log, `the stream holds its snapshot: ${JSON.stringify(r.whileOpen)}`);
  assert.deepEqual(r.afterCancel, { busy: 0, log: 0, checkpointed: 0 }, "after the cancel the checkpoint completes and truncates the WAL");
  assert.equal(r.wal, 0);
  assert.deepEqual(r.again, { false: { equal: true, integrity: "ok" }, true: { equal: true, integrity: "ok" } });
});

/** A replicaRound's result (pages/common.ts): each restore is the state of its sync; the damaged object refuses what needs it. */
function assertReplicaRound(r: any): void {
  const [s1, s2, s3] = r.syncs;
  assert.deepEqual(r.syncs.map((s: any) => s.seq), [s1.seq, s1.seq + 1, s1.seq + 2], JSON.stringify(r.syncs));
  assert.deepEqual([s2.kind, s3.kind], ["delta", "delta"], JSON.stringify(r.syncs));
  assert.ok(r.files["lease.json"] > 0, JSON.stringify(r.files));
  assert.deepEqual(Object.keys(r.files).filter((n) => n.startsWith(".")), [], "no temporary object left");
  assert.deepEqual(r.latest, { seq: s3.seq, digest: s3.digest, integrity: "ok" }, "latest");
  assert.deepEqual(r.first, { seq: s1.seq, digest: s1.digest, integrity: "ok" }, "at the first sync's seq");
  assert.deepEqual(r.second, { seq: s2.seq, digest: s2.digest, integrity: "ok" }, "at the second sync's time");
  assert.deepEqual(r.verified, { ok: true, integrity: [], seq: s3.seq });
  const d = r.damaged;
  for (const k of ["latest", "second"] as const) {
    assert.equal(d[k].name, "SqliteError", `${k} after damage: ${JSON.stringify(d[k])}`);
    assert.equal(d[k].code, SQLITE_CORRUPT, `${k}: ${JSON.stringify(d[k])}`);
    assert.ok(d[k].message.includes(d.victim), `${k}: the message names the damaged object: ${d[k].message}`);
    assert.equal(d[k].unchanged, true, `${k}: the destination is as it was`);
  }
  assert.deepEqual(d.first, { seq: s1.seq, digest: s1.digest, integrity: "ok" }, "the sync before the damage still restores");
  assert.equal(d.verify.name, "SqliteError", JSON.stringify(d.verify));
  assert.equal(d.verify.code, SQLITE_CORRUPT);
}

test("replicate() from the main thread (in-memory source) to opfsTarget: restoreReplica latest and at earlier syncs, verifyReplica; a damaged object is refused", async (ctx) => {
  const page = await harness(ctx);
  assertReplicaRound(await call(page, "mainReplica", dirName("mrep")));
});

test("replicate() from a worker (OPFS source) to opfsTarget: restoreReplica into an OPFS database latest and at earlier syncs, verifyReplica; a damaged object is refused", async (ctx) => {
  const page = await harness(ctx);
  const w = await call(page, "spawn");
  assertReplicaRound(await inWorker(page, w, "replica", dirName("wrep")));
});

// ---------------------------------------------------------------- bundle and demo

test("rollup bundles: index.js (wasm/sqlite3.wasm fetched) in a page and a module worker; inline.js in a page and from another bundler's output (keepNames), which backs up to OPFS; streams, verify and replicas from index.js's chunks and from inline.js", async (ctx) => {
  const page = await ctx.newPage();
  await page.goto(`${baseUrl}/test/browser/bundle.html`);
  await page.waitForFunction("globalThis.bundleResult !== undefined", { timeout: 30_000, polling: 50 });
  const r = await page.evaluate("globalThis.bundleResult");
  assert.deepEqual(r, {
    page: "3.54.1:42", worker: "3.54.1:42", inlinePage: "3.54.1:42", rebundled: "3.54.1:42", lazy: "true:42:42", inlineLazy: "true:42:42",
    chunks: ["/dist/browser/from-stream.js", "/dist/browser/replicator.js", "/dist/browser/to-stream-source.js", "/dist/browser/verify.js"],
    wasmFetches: ["/wasm/sqlite3.wasm"],
  });
});

test("strict CSP (worker-src 'self', no blob:): the default writer is refused with an error naming the fix; loadSqlite({ writerWorkerUrl }) with the served opfs-writer.js backs up", async (ctx) => {
  const page = await ctx.newPage();
  await page.goto(`${baseUrl}/test/browser/csp.html`);
  await page.waitForFunction("globalThis.cspResult !== undefined", { timeout: 60_000, polling: 50 });
  const r = await page.evaluate("globalThis.cspResult") as any;
  assert.deepEqual(r.served, { ok: true, x: 42 }, "the served writer script");
  assert.equal(r.blob.ok, false, "a blob: worker under worker-src 'self'");
  assert.equal(r.blob.name, "SqliteError", JSON.stringify(r.blob));
  assert.match(r.blob.message, /Content-Security-Policy .*writerWorkerUrl/, JSON.stringify(r.blob));
  assert.ok(r.violations.some((v: string) => v.startsWith("worker-src blob")), `the browser reported the blocked worker: ${JSON.stringify(r.violations)}`);
});

/** Starts `npm run demo`'s server (examples/opfs-demo/serve.mjs) on a free port; resolves with the URL it prints. */
async function startDemoServer(): Promise<{ url: string; stop(): void }> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [join(root, "examples/opfs-demo/serve.mjs")], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      const m = /open (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`the demo server exited (${code}) before printing its URL: ${out}`)));
  });
  return { url, stop: () => child.kill() };
}

test("demo page (npm run demo's server): back up to OPFS with a progress bar, restore, download (screenshot saved)", async (ctx) => {
  const server = await startDemoServer();
  try {
    await demo(ctx, server.url);
  } finally {
    server.stop();
  }
});

/**
 * Waits until the demo's status line says `text`, or shows an error; fails with what it said
 * (a bare selector timeout would not tell an error from a slow step).
 */
async function demoStatus(page: Page, text: string, timeout = 60_000): Promise<void> {
  const said = await page.waitForFunction((want: string) => {
    const el = document.getElementById("status")!;
    return el.classList.contains("error") || el.textContent!.includes(want) ? el.textContent : null;
  }, { timeout, polling: 50 }, text).then((h) => h.jsonValue(), async (e) => `nothing within ${timeout} ms (${(e as Error).message.split("\n")[0]}); it says: ${await textOf(page, "#status")}`);
  assert.ok(said?.includes(text), `the demo's status should say "${text}": ${said}`);
}

const textOf = (page: Page, sel: string) => page.$eval(sel, (el) => el.textContent);
const attrOf = (page: Page, sel: string, name: string) => page.$eval(sel, (el, n) => el.getAttribute(n), name);

/**
 * Waits until the browser has saved `name` into the downloads directory: no partial file beside
 * it, and the same non-zero size twice 200 ms apart (Firefox puts an empty placeholder first).
 */
async function downloaded(dir: string, name: string): Promise<string> {
  const { readdirSync, statSync } = await import("node:fs");
  let last = -1;
  for (let i = 0; i < 150; i++) {
    const files = readdirSync(dir);
    const size = files.includes(name) && !files.some((f) => f.startsWith(name) && f !== name) ? statSync(join(dir, name)).size : -1;
    if (size > 0 && size === last) return join(dir, name);
    last = size;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no ${name} in ${dir}: ${readdirSync(dir).join(", ")}`);
}

async function demo(ctx: Ctx, url: string): Promise<void> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error(`  [demo page error] ${e.message}`));
  await page.goto(url);
  await demoStatus(page, "ready");
  await page.$eval("#rows", (el) => void ((el as HTMLInputElement).value = "20000"));
  await page.click("#fill");
  await demoStatus(page, "rows in memory");
  await page.click("#backup");
  await demoStatus(page, "backed up");
  assert.equal(await attrOf(page, "#progress", "value"), await attrOf(page, "#progress", "max"), "progress bar full");
  await page.click("#clear");
  await demoStatus(page, "cleared");
  assert.equal(await textOf(page, "#count"), "0");
  await page.click("#restore");
  await demoStatus(page, "restored");
  const rows = Number(await textOf(page, "#count"));
  assert.ok(rows >= 20000, `restored row count ${rows}`);
  await page.click("#download");
  const file = await downloaded(ctx.downloads, "notes.db");
  const { execFileSync } = await import("node:child_process");
  assert.equal(execFileSync("sqlite3", [file, "PRAGMA integrity_check"], { encoding: "utf8" }).trim(), "ok", "downloaded file checked by the native CLI");
  assert.equal(execFileSync("sqlite3", [file, "SELECT count(*) FROM notes"], { encoding: "utf8" }).trim(), String(rows));
  const shot = join(root, "dist", "screenshots", `opfs-demo-${ctx.name}.png`); // dist/ is git-ignored
  mkdirSync(join(root, "dist", "screenshots"), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`    screenshot: ${shot}`);
}

// ---------------------------------------------------------------- runner

async function bundlePages(): Promise<void> {
  await build({
    entryPoints: { "pages/main": join(import.meta.dirname, "pages/main.ts"), "pages/worker": join(import.meta.dirname, "pages/worker.ts") },
    bundle: true, format: "esm", target: "es2022", outdir: buildDir, sourcemap: "inline", logLevel: "error",
  });
  // "Another bundler's output": the rollup bundle re-bundled by esbuild (keepNames: see bundle-app.js).
  await build({
    entryPoints: { "rebundled/app": join(import.meta.dirname, "bundle-app.js") },
    bundle: true, format: "esm", target: "es2022", outdir: buildDir, logLevel: "error", keepNames: true,
    alias: { "sqlite-backup-wasm": join(root, "dist/browser/inline.js") },
  });
}

/** Runs the tests in one browser; returns [passed, failed, skipped]. */
async function runIn(name: Ctx["name"]): Promise<[number, number, number]> {
  const downloads = mkdtempSync(join(tmpdir(), "sbw-downloads-"));
  const launched = await launchBrowser(name, { downloadPath: downloads });
  console.log(`# ${launched.version}`);
  const ctx: Ctx = { name, browser: launched.browser, downloads, newPage: () => launched.browser.newPage() };
  // The first tab stays open: closing a browser's last tab may end the browser.
  const keep = new Set(await launched.browser.pages());
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    for (const [test, fn] of tests) {
      if (filter && !test.includes(filter)) continue;
      const t0 = Date.now();
      try {
        await fn(ctx);
        passed++;
        console.log(`✓ [${name}] ${test} (${Date.now() - t0} ms)`);
      } catch (e) {
        if (e instanceof Skip) {
          skipped++;
          console.log(`- [${name}] ${test} — skipped: ${e.message}`);
          continue;
        }
        failed++;
        console.log(`✘ [${name}] ${test}\n    ${String((e as Error)?.stack ?? e).split("\n").join("\n    ")}`);
      } finally {
        for (const p of await launched.browser.pages().catch(() => [])) if (!keep.has(p)) await p.close().catch(() => {});
      }
    }
  } finally {
    await launched.close();
    rmSync(downloads, { recursive: true, force: true });
  }
  return [passed, failed, skipped];
}

async function main(): Promise<number> {
  await bundlePages();
  const server = await serve(root, { "/build/": buildDir });
  baseUrl = server.url;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    for (const name of browserNames()) {
      const [p, f, s] = await runIn(name);
      passed += p;
      failed += f;
      skipped += s;
    }
  } finally {
    await server.close();
    rmSync(buildDir, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
