// Reliability of the incremental backup (backup() with `incremental`, src/ops/incremental.ts and
// wasm/pagediff.c), and of its fresh copy into an empty file, under what test/incremental.test.ts does not inject: I/O faults on the
// destination (reads, writes, syncs, truncate, the journal's open and delete) and on a WAL source,
// allocation failures, power loss, SIGKILL of the process, and live writers on the source.
// The rule everywhere: the backup rejects with a SqliteError, and the destination is afterwards
// byte-for-byte its old self, or (only after the commit point) byte-for-byte the new content; a
// mix never. "New" is what SQLite's own backup API makes of the same destination, which the
// incremental path must equal byte for byte (test/incremental.test.ts). Leaks are checked with
// sqlite.memoryUsed(). Every sweep counts the failure points it really hit, so a sweep that
// injects nothing fails instead of passing vacuously.
//
// Only the public API (../src/index.js) and the test helpers are used: the fault and crash VFSes
// wrap a NodeFsVfs (the default VFS, exported).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  loadSqlite, NodeFsVfs, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, SqliteError,
  type Database, type Sqlite, type Vfs,
} from "../src/index.js";
import { CrashVfs, type CrashMode } from "./faults/crash-vfs.js";
import { FaultVfs, type FaultKind, type FaultOp } from "./faults/fault-vfs.js";
import { assertSqliteError, judge, knob, rng, SEED } from "./faults/util.js";
import { nativeWriter, sqlitePromise, tmpDir } from "./helpers.js";

const GARBLE_SEEDS = knob("SBW_INC_GARBLE_SEEDS", 1);
const dir = tmpDir("increl");
const sqlite = await sqlitePromise; // the shared instance: fixtures and references

/**
 * What the fault VFSes did in one run, in order: "fault <side> <op>" for each injected failure,
 * "delete <path>" for each completed delete. A journal deleted before the first fault on either
 * side is SQLite's commit point.
 */
const events: string[] = [];

/** A FaultVfs that logs its injected failures and completed deletes to `events`. */
class LoggingFaultVfs extends FaultVfs {
  constructor(inner: Vfs, readonly side: "src" | "dst") {
    super(inner, `fault-${side}`);
  }
  override shouldFail(op: FaultOp): boolean {
    const fail = super.shouldFail(op);
    if (fail) events.push(`fault ${this.side} ${op}`);
    return fail;
  }
  override delete(name: string, syncDir: boolean): void {
    super.delete(name, syncDir);
    events.push(`delete ${name}`);
  }
}

/** Whether `path` was deleted before the first injected failure of this run. */
function deletedBeforeFault(path: string): boolean {
  const d = events.indexOf(`delete ${path}`);
  const f = events.findIndex((e) => e.startsWith("fault "));
  return d >= 0 && (f < 0 || d < f);
}

// A private instance whose allocations fail on purpose (the OOM sweeps).
const oomSqlite = await loadSqlite({ vfs: [] });
const nodeFs = new NodeFsVfs();
const armMalloc = (n: number, persistent: boolean): number =>
  (oomSqlite as unknown as { runtime: { capi: { sbw_fault_malloc(n: number, p: number): number } } }).runtime.capi.sbw_fault_malloc(n, persistent ? 1 : 0);
const srcFault = new LoggingFaultVfs(nodeFs, "src");
const dstFault = new LoggingFaultVfs(nodeFs, "dst");
const crash = new CrashVfs(nodeFs, "crash-dst");
const faulty: Sqlite = await loadSqlite({ vfs: [srcFault, dstFault, crash] });

/** A test that reports its duration with SBW_TIMES=1. */
function timed(name: string, fn: () => unknown): void {
  test(name, async () => {
    const t0 = performance.now();
    try {
      await fn();
    } finally {
      if (process.env.SBW_TIMES) console.log(`  ${((performance.now() - t0) / 1000).toFixed(1)} s  ${name}`);
    }
  });
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sh = (file: string, ...sql: string[]) => execFileSync("sqlite3", ["-batch", file, ...sql], { encoding: "utf8", maxBuffer: 1 << 28 });
const JOURNAL_MAGIC = Buffer.from("d9d505f920a163d7", "hex");
const hotJournal = (db: string) => existsSync(`${db}-journal`) && readFileSync(`${db}-journal`).subarray(0, 8).equals(JOURNAL_MAGIC);

// ---------------------------------------------------------------------------------------------
// Fixtures: a WAL source (page 1024, part of its content only in the -wal file) and two earlier
// backups of its history as destinations: a smaller one (the source grew since) and a larger one
// (the source shrank: the incremental path must truncate). Destinations are rollback-journal
// databases, as incremental backups require.

const SRC = join(dir, "src.db"); // the pristine source: db + wal, copied for every run
const FILL = (from: number, to: number, size: number) =>
  `WITH RECURSIVE c(i) AS (SELECT ${from} UNION ALL SELECT i+1 FROM c WHERE i<${to}) INSERT INTO t(id, v, s) SELECT i, randomblob(${size}), hex(randomblob(20)) FROM c;`;

interface Template {
  /** "empty": a 0-byte file, which "auto" fills with the fresh copy (wasm/pagediff.c), not a compare. */
  name: "smaller" | "larger" | "larger-wal" | "empty";
  /** A WAL-mode destination (page 1 bytes 18/19 = 2): written through its WAL, checkpointed after. */
  wal: boolean;
  file: string;
  /** sha256 of the bytes, before and after (the backup API's result over a copy). */
  sha: string;
  newSha: string;
  /** The native CLI's content hash (.sha3sum) and .dump, before and after. */
  oldContent: string;
  newContent: string;
  dump: string;
  newDump: string;
}
const templates: Template[] = [];

{
  const smaller = join(dir, "tmpl-smaller.db");
  const larger = join(dir, "tmpl-larger.db");
  sh(SRC, `PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT); CREATE INDEX ts ON t(s); ${FILL(1, 12, 700)}`);
  copyFileSync(SRC, smaller);
  sh(SRC, FILL(13, 36, 700));
  copyFileSync(SRC, larger);
  sh(SRC, "DELETE FROM t WHERE id > 20 AND id % 3 <> 0; UPDATE t SET v = randomblob(700) WHERE id % 5 = 0; VACUUM;");
  // WAL, and changes that stay in the -wal file (no checkpoint when the CLI closes).
  sh(SRC, "PRAGMA journal_mode=WAL", ".dbconfig no_ckpt_on_close on", `UPDATE t SET s = hex(randomblob(20)) WHERE id % 4 = 1; ${FILL(100, 105, 900)}`);
  rmSync(`${SRC}-shm`, { force: true });
  assert.ok(existsSync(`${SRC}-wal`), "the source has a -wal file");
  const largerWal = join(dir, "tmpl-larger-wal.db");
  copyFileSync(larger, largerWal);
  sh(largerWal, "PRAGMA journal_mode=WAL"); // the CLI checkpoints and removes the -wal as it closes
  const empty = join(dir, "tmpl-empty.db");
  writeFileSync(empty, "");
  for (const [name, file] of [["smaller", smaller], ["larger", larger], ["larger-wal", largerWal], ["empty", empty]] as const) {
    const bytes = readFileSync(file);
    // The reference: SQLite's backup API over a copy of the same destination.
    const ref = join(dir, `ref-${name}.db`);
    copyFileSync(file, ref);
    const s = copySource("ref");
    const src = sqlite.open(s, { readonly: true });
    const d = sqlite.open(ref);
    const b = sqlite.backupInit(d, "main", src, "main");
    assert.is(b.step(-1), "done");
    b.finish();
    d.close();
    src.close();
    const newBytes = readFileSync(ref);
    templates.push({
      name, wal: name.endsWith("-wal"), file, sha: sha256(bytes), newSha: sha256(newBytes), oldContent: judge(file).sha, newContent: judge(ref).sha,
      dump: sh(file, ".dump"), newDump: sh(ref, ".dump"),
    });
  }
}

/** The options of the backups under test: incremental, or the fresh copy into the empty file
 *  (which "auto" takes; the source is a private copy, so no guard is needed). */
const modeOf = (t: Template) => (t.name === "empty" ? { incremental: "auto" as const, verifySource: false } : { incremental: true });

/** A fresh copy of the WAL source (db and -wal) for one run; returns its path. */
function copySource(tag: string): string {
  const f = join(dir, `src-${tag}.db`);
  for (const x of ["-journal", "-wal", "-shm"]) rmSync(f + x, { force: true });
  copyFileSync(SRC, f);
  copyFileSync(`${SRC}-wal`, `${f}-wal`);
  return f;
}

/** A fresh copy of a destination template for one run. */
function copyDest(t: Template, tag: string): string {
  const f = join(dir, `dest-${tag}.db`);
  for (const x of ["-journal", "-wal", "-shm"]) rmSync(f + x, { force: true });
  copyFileSync(t.file, f);
  return f;
}

/**
 * What a destination file holds after a "reboot": a hot journal left behind is rolled back by
 * the native CLI first (its integrity_check must pass), then the bytes are named "old", "new" or
 * "mixed". A WAL destination is judged by content instead, as the native CLI reads it through
 * whatever its -wal holds (a failure after the checkpoint leaves committed frames there).
 */
function verdict(t: Template, dest: string, ctx: string): "old" | "new" | "mixed" {
  if (t.wal) {
    const j = judge(dest);
    assert.is(j.integrity, "ok", `${ctx}: integrity_check of the WAL destination`);
    return j.sha === t.oldContent ? "old" : j.sha === t.newContent ? "new" : "mixed";
  }
  if (existsSync(`${dest}-journal`)) {
    assert.is(sh(dest, "PRAGMA integrity_check").trim(), "ok", `${ctx}: integrity_check after the native CLI's recovery`);
    assert.not.ok(hotJournal(dest), `${ctx}: the hot journal was rolled back`);
  }
  const got = sha256(readFileSync(dest));
  return got === t.sha ? "old" : got === t.newSha ? "new" : "mixed";
}

// ---------------------------------------------------------------------------------------------
// 1. I/O faults

interface IoSweep { side: "src" | "dst"; persistent: boolean; kind: FaultKind; ops?: readonly FaultOp[] }
const ioStats = { runs: 0, failed: 0, afterCommit: 0, completedDespiteFault: 0, byOp: {} as Record<string, number> };

async function ioRun(t: Template, n: number, s: IoSweep, ctx: string): Promise<number> {
  const fault = s.side === "src" ? srcFault : dstFault;
  const srcFile = copySource("io");
  const dest = copyDest(t, "io");
  const source = faulty.open(srcFile, { vfs: srcFault.name });
  const destDb = faulty.open(dest, { vfs: dstFault.name });
  let error: unknown = null;
  let res;
  events.length = 0;
  fault.arm(n, { persistent: s.persistent, kind: s.kind, ...(s.ops ? { ops: s.ops } : {}) });
  try {
    res = await faulty.backup(source, destDb, { ...modeOf(t), pagesPerStep: 8 });
  } catch (e) {
    error = e;
  }
  const hits = fault.hits;
  fault.disarm();
  // SQLite's commit point is the deletion of the journal: a failure after it is reported,
  // although the new content is durable (docs/api.md, backup()). In WAL mode it is the commit frame's
  // write, which these events do not tell apart: a failing WAL destination may be either.
  const committed = deletedBeforeFault(`${dest}-journal`);
  const firstOp = events.find((e) => e.startsWith("fault "))?.split(" ")[2];
  ioStats.runs++;
  if (error === null) {
    assert.is(res!.incremental, t.name !== "empty", `${ctx}: incremental (the fresh copy is not)`);
    if (hits > 0) ioStats.completedDespiteFault++;
  } else {
    ioStats.failed++;
    assert.ok(hits > 0, `${ctx}: an error without an injected fault: ${String(error)}`);
    assertSqliteError(error, s.kind === "enospc" ? [SQLITE_FULL] : [SQLITE_IOERR, SQLITE_CANTOPEN], ctx);
    ioStats.byOp[`${s.side}:${firstOp}`] = (ioStats.byOp[`${s.side}:${firstOp}`] ?? 0) + 1;
    if (committed) ioStats.afterCommit++;
  }
  const why = `${error === null ? "completed" : String(error)}${committed ? " after the commit point" : ""}`;
  // Every other run the destination connection, still open, is the first to look (and so rolls
  // back a hot journal itself): it must see a sound database, the old one unless committed.
  if (n % 2 === 0) {
    assert.equal(destDb.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `${ctx}: the destination connection after the failure`);
    // (serialize() would give an empty database a page 1 first: its old self has no pages.)
    const seen = t.name === "empty" && destDb.get<{ n: number }>("SELECT page_count AS n FROM pragma_page_count")?.n === 0 ? t.sha : sha256(destDb.serialize());
    if (t.wal && error !== null) assert.ok(seen === t.sha || seen === t.newSha, `${ctx}: the destination connection sees old or new (${why})`);
    else assert.is(seen, error === null || committed ? t.newSha : t.sha, `${ctx}: what the destination connection sees (${why})`);
  }
  destDb.close();
  source.close();
  if (t.wal) {
    const got = verdict(t, dest, ctx);
    if (error !== null && got === "new") ioStats.afterCommit++;
    assert.ok(error === null ? got === "new" : got !== "mixed", `${ctx}: the WAL destination is ${got} (${why})`);
  } else if (error !== null && committed) {
    // After the commit point the content is the new one, but the bytes need not be: a database
    // that shrank is truncated after the journal's deletion (pager_end_transaction), so a failure
    // there leaves the new pages followed by the old tail, which SQLite ignores.
    const j = judge(dest);
    assert.is(j.integrity, "ok", `${ctx}: integrity_check (${why})`);
    assert.is(j.sha, t.newContent, `${ctx}: the new content (${why})`);
  } else assert.is(verdict(t, dest, ctx), error === null ? "new" : "old", `${ctx}: ${why}`);
  return hits;
}

const IO_SWEEPS: [string, IoSweep, Template["name"][], string[]][] = [
  ["destination: transient I/O error at every call", { side: "dst", persistent: false, kind: "eio" }, ["larger", "smaller", "larger-wal", "empty"],
    ["open", "read", "write", "sync", "delete", "size", "truncate"]],
  ["destination: persistent I/O errors from every call on", { side: "dst", persistent: true, kind: "eio" }, ["larger", "larger-wal"], ["open", "read", "write", "sync", "truncate"]],
  ["destination: disk full (ENOSPC) at every write and truncate → SQLITE_FULL", { side: "dst", persistent: true, kind: "enospc", ops: ["write", "truncate"] }, ["larger", "larger-wal", "empty"], ["write", "truncate"]],
  ["destination: short (torn) writes", { side: "dst", persistent: false, kind: "short", ops: ["write"] }, ["smaller"], ["write"]],
  ["WAL source: transient I/O error at every call", { side: "src", persistent: false, kind: "eio" }, ["smaller"], ["read", "access", "open"]],
  ["WAL source: persistent I/O errors from every call on", { side: "src", persistent: true, kind: "eio" }, ["larger"], ["read"]],
];

for (const [name, s, which, mustHit] of IO_SWEEPS) {
  timed(`I/O faults: ${name}: rejects with SqliteError, destination old (or new after the commit point), no leak`, async () => {
    const before = { ...ioStats.byOp };
    for (const t of templates.filter((x) => which.includes(x.name))) {
      await ioRun(t, 1_000_000, s, "warm-up"); // first-use allocations settle
      const baseline = faulty.memoryUsed();
      let n = 1;
      for (; ; n++) {
        const ctx = `${name} (${t.name} destination) N=${n}`;
        const hits = await ioRun(t, n, s, ctx);
        assert.is(faulty.memoryUsed(), baseline, `${ctx}: memoryUsed() back to its baseline`);
        if (hits === 0) break;
        assert.ok(n < 20_000, `${ctx}: the sweep does not end`);
      }
      assert.ok(n > 10, `${name} (${t.name}): the sweep reached real I/O (${n - 1} fault points)`);
    }
    // The failure points of interest were really hit (and their runs checked above).
    for (const op of mustHit) {
      const k = `${s.side}:${op}`;
      assert.ok((ioStats.byOp[k] ?? 0) > (before[k] ?? 0), `a failing ${op} on the ${s.side === "src" ? "source" : "destination"} made a backup fail`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Allocation failures

const oomStats = { runs: 0, failures: 0, nomem: 0 };
/** Failure points whose error was a SqliteError with another code than SQLITE_NOMEM. */
let wrongCodes: string[] = [];

/** One incremental backup with the n-th allocation failing; returns the failures injected. */
async function oomRun(t: Template, n: number, persistent: boolean, target: "file" | "memory", ctx: string): Promise<number> {
  const srcFile = copySource("oom");
  const source = oomSqlite.open(srcFile);
  let dest = "";
  let memDest: Database | null = null;
  let oldMem = "";
  let newMem = "";
  if (target === "file") dest = copyDest(t, "oom");
  else {
    // An in-memory destination holding the old database; "new" is the backup API's result over
    // another such copy.
    const load = async () => {
      const m = oomSqlite.open(":memory:");
      const f = oomSqlite.open(t.file, { readonly: true });
      await oomSqlite.backup(f, m, { incremental: false });
      f.close();
      return m;
    };
    memDest = await load();
    oldMem = sha256(memDest.serialize());
    const ref = await load();
    const b = oomSqlite.backupInit(ref, "main", source, "main");
    assert.is(b.step(-1), "done");
    b.finish();
    newMem = sha256(ref.serialize());
    ref.close();
  }
  let error: unknown = null;
  armMalloc(n, persistent);
  try {
    await oomSqlite.backup(source, memDest ?? dest, { ...modeOf(t), pagesPerStep: 8 });
  } catch (e) {
    error = e;
  }
  const hits = armMalloc(0, false);
  oomStats.runs++;
  oomStats.failures += hits;
  if (error !== null) {
    assert.ok(hits > 0, `${ctx}: an error without an injected failure: ${String(error)}`);
    assert.instance(error, SqliteError, `${ctx}: ${String(error)}`);
    if ((error as SqliteError).code === SQLITE_NOMEM) oomStats.nomem++;
    // Collected rather than thrown, so that one sweep lists every failure point that reports
    // a wrong code (asserted at the end of the sweep).
    else wrongCodes.push(`${ctx}: ${(error as SqliteError).codeName} "${(error as Error).message}"`);
  }
  const want = error === null ? "new" : "old";
  if (memDest) {
    assert.equal(memDest.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `${ctx}: quick_check`);
    assert.is(sha256(memDest.serialize()), want === "new" ? newMem : oldMem, `${ctx}: in-memory destination is ${want} (${String(error)})`);
    memDest.close();
  }
  source.close();
  if (memDest) return hits;
  const got = verdict(t, dest, ctx);
  // A WAL destination's commit point (the commit frame) may come before a failure: old or new.
  if (t.wal && error !== null) assert.ok(got !== "mixed", `${ctx}: the WAL destination is ${got} (${String(error)})`);
  else assert.is(got, want, `${ctx}: ${String(error)}`);
  return hits;
}

for (const [target, persistent, name] of [["file", false, "larger"], ["file", true, "larger"], ["memory", false, "larger"], ["file", false, "larger-wal"], ["file", false, "empty"]] as const) {
  const kind = name === "larger-wal" ? " in WAL mode" : name === "empty" ? " (empty: the fresh copy)" : "";
  timed(`allocation failures (${persistent ? "persistent" : "transient"}, ${target} destination${kind}): SQLITE_NOMEM, old or new, no leak`, async () => {
    const t = templates.find((x) => x.name === name)!;
    await oomRun(t, 1_000_000, false, target, "warm-up");
    const baseline = oomSqlite.memoryUsed();
    const nomemBefore = oomStats.nomem;
    wrongCodes = [];
    let n = 1;
    for (; ; n++) {
      const ctx = `OOM ${name} ${target} ${persistent ? "persistent" : "transient"} N=${n}`;
      const hits = await oomRun(t, n, persistent, target, ctx);
      assert.is(oomSqlite.memoryUsed(), baseline, `${ctx}: memoryUsed() back to its baseline (no leak)`);
      if (hits === 0) break;
      assert.ok(n < 50_000, `${ctx}: the sweep does not end`);
    }
    assert.ok(n > 50, `the sweep reached the backup's own allocations (${n - 1} failure points)`);
    assert.ok(oomStats.nomem > nomemBefore, "allocation failures made backups fail with SQLITE_NOMEM");
    // Found by this test, fixed: allocation failures inside wasm/pagediff.c were reported with the
    // connection's stale code (SQLITE_OK, SQLITE_ROW; now Runtime.errorFromCall), and one in a VFS
    // method (xShmMap) as the bridge's fallback IOERR_SHMMAP (now IOERR_NOMEM, reported by SQLite
    // as SQLITE_NOMEM, core/errors.ts errorCode).
    assert.equal(wrongCodes, [], `every failure is SQLITE_NOMEM; ${wrongCodes.length} are not:\n${wrongCodes.join("\n")}`);
    using db = oomSqlite.open(":memory:");
    assert.equal(db.get("SELECT 40 + 2 AS x"), { x: 42 }, "the instance is still usable");
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Power loss

const crashStats = { losses: 0, old: 0, new: 0, midCompare: 0, walOld: 0, walNew: 0 };

/**
 * One power loss at the n-th sync or write of the destination; returns false when the backup
 * finished first. The destination's page cache is tiny, so changed pages spill into the file
 * (behind a synced journal) during the compare, not only at the commit.
 */
async function powerLoss(t: Template, op: "sync" | "write", n: number, mode: CrashMode, seed: number, ctx: string): Promise<boolean> {
  const srcFile = copySource("crash");
  const dest = copyDest(t, "crash");
  const source = faulty.open(srcFile);
  const d = faulty.open(dest, { vfs: crash.name });
  d.exec("PRAGMA cache_size=4");
  let progressed = 0;
  crash.arm(op, n, mode, rng(seed));
  let error: unknown = null;
  try {
    await faulty.backup(source, d, { ...modeOf(t), pagesPerStep: 4, onProgress: () => void progressed++ });
  } catch (e) {
    error = e;
  }
  const crashed = crash.crashed;
  const committed = crash.deleted.includes(`${dest}-journal`);
  // The "process" is gone: closing only releases descriptors and in-process locks, before the
  // power comes back (a WAL connection closed after that would checkpoint from its stale index).
  d.close();
  source.close();
  crash.disarm();
  if (!crashed) {
    assert.is(error, null, `${ctx}: no crash, no error`);
    assert.is(verdict(t, dest, ctx), "new", `${ctx}: completed`);
    return false;
  }
  // A WAL destination is committed once its commit frame is synced; a crash in the checkpoint
  // after that is no failure of the backup (wasm/pagediff.c), which then resolves.
  if (!t.wal || error !== null) assert.instance(error, SqliteError, `${ctx}: the backup rejects with a SqliteError: ${String(error)}`);
  crashStats.losses++;
  if (progressed > 0 && !committed) crashStats.midCompare++;
  // Reboot: every other time our own stack opens (and recovers) the file first.
  if (crashStats.losses % 2 === 1) {
    using again = faulty.open(dest);
    assert.equal(again.all("PRAGMA quick_check"), [{ quick_check: "ok" }], `${ctx}: reopen`);
  }
  // The native CLI's view: integrity_check, and a dump equal to the old or the new database.
  const out = sh(dest, "PRAGMA integrity_check", ".dump");
  assert.ok(out.startsWith("ok\n"), `${ctx}: integrity_check: ${out.slice(0, 200)}`);
  const dump = out.slice(3);
  const got = dump === t.dump ? "old" : dump === t.newDump ? "new" : "mixed";
  // In WAL mode the commit point (the commit frame's sync) is not among what the crash VFS records.
  if (t.wal) assert.ok(error === null ? got === "new" : got !== "mixed", `${ctx}: the WAL destination is ${got} (${String(error)})`);
  else assert.is(got, committed ? "new" : "old", `${ctx}: ${committed ? "after" : "before"} the commit point`);
  assert.not.ok(hotJournal(dest), `${ctx}: no hot journal left`);
  crashStats[got as "old" | "new"]++;
  if (t.wal) crashStats[got === "old" ? "walOld" : "walNew"]++;
  return true;
}

timed("power loss at every sync and at writes all through an incremental backup: old or new, never a mix", async () => {
  for (const t of templates) {
    // A run without a crash counts the destination's writes and syncs.
    assert.not.ok(await powerLoss(t, "sync", 1_000_000, "drop", 0, `${t.name} no crash`));
    const { writes, syncs } = crash;
    assert.ok(syncs >= 3 && writes > (t.name === "empty" ? 2 : 16), `${t.name}: ${syncs} syncs and ${writes} writes`);
    // Every sync; writes with a stride (every write would be ~4x the time for little more: the
    // pages are alike), and every one of the last few before the commit.
    const stride = Math.max(1, Math.ceil(writes / 16));
    const points: ["sync" | "write", number][] = [];
    for (let n = 1; n <= syncs; n++) points.push(["sync", n]);
    for (let n = 1; n <= writes; n++) if (n % stride === 1 % stride || n > writes - 4) points.push(["write", n]);
    for (const [i, [op, n]] of points.entries()) {
      assert.ok(await powerLoss(t, op, n, "drop", 0, `${t.name} ${op} #${n} drop`), `${t.name} ${op} #${n}: the crash point was reached`);
      for (let s = 0; s < GARBLE_SEEDS && (op === "sync" || i % 2 === 0); s++) { // garbled: every sync, every other write
        await powerLoss(t, op, n, "garble", SEED + n * 101 + s, `${t.name} ${op} #${n} garble seed ${s}`);
      }
    }
  }
  assert.ok(crashStats.old > 0, `power losses left the old database (${crashStats.old})`);
  assert.ok(crashStats.walOld > 0 && crashStats.walNew > 0, `WAL destination: power losses before and after the commit point (${crashStats.walOld} old, ${crashStats.walNew} new)`);
  assert.ok(crashStats.midCompare > 0, "some power losses struck during the compare, with pages spilled");
});

// ---------------------------------------------------------------------------------------------
// 4. SIGKILL

const killChild = fileURLToPath(new URL("./faults/kill-incremental-child.ts", import.meta.url));
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

interface KillOutcome { how: "killed" | "finished"; events: number; result?: { incremental: boolean; pagesWritten: number; pageCount: number } }

/** Runs the child; kills it after `afterEvents` progress events (+ delayMs), or never when null. */
function killTrial(src: string, dest: string, afterEvents: number | null, delayMs: number): Promise<KillOutcome> {
  return new Promise((resolve, reject) => {
    const args = [...(isBun ? [] : ["--no-concurrent-recompilation", "--import", "tsx"]), killChild, src, dest, "32", "20"];
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    let events = 0;
    let armed = false;
    let result: KillOutcome["result"];
    p.stdout.on("data", (b: Buffer) => {
      buf += b.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith("p ")) events++;
        if (line.startsWith("done ")) result = JSON.parse(line.slice(5));
        if (!armed && afterEvents !== null && events >= afterEvents) {
          armed = true;
          if (delayMs === 0) p.kill("SIGKILL");
          else setTimeout(() => p.kill("SIGKILL"), delayMs);
        }
      }
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve({ how: "killed", events, result });
      else if (code === 0) resolve({ how: "finished", events, result });
      else reject(new Error(`child exited with ${code}`));
    });
  });
}

timed("SIGKILL of a process in the middle of an incremental backup: the native CLI finds the old or the new database", async () => {
  // ~24 MiB, most pages changed: more dirty pages than the 16 MiB wasm/pagediff.c lets the
  // destination's cache hold during the compare, so they spill into the file behind a hot journal.
  const src = join(dir, "kill-src.db");
  const template = join(dir, "kill-old.db");
  sh(template, `PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT); ${FILL(1, 8000, 3000)}`);
  copyFileSync(template, src);
  sh(src, "UPDATE t SET v = randomblob(3000) WHERE id % 3 <> 0; DELETE FROM t WHERE id > 7600;");
  const oldSha = judge(template).sha;
  const newSha = judge(src).sha;
  assert.is.not(oldSha, newSha);
  // A complete run first: how many progress events a backup makes, and that it is incremental.
  const full = join(dir, "kill-full.db");
  copyFileSync(template, full);
  const clean = await killTrial(src, full, null, 0);
  assert.is(clean.how, "finished");
  assert.ok(clean.result?.incremental, "the child's backup is incremental");
  assert.ok(clean.result!.pagesWritten > clean.result!.pageCount / 2, "most pages are rewritten");
  assert.is(judge(full).sha, newSha, "a complete backup holds the new content");
  const total = clean.events;
  assert.ok(total >= 20, `enough progress events to kill in between (${total})`);
  // Kill points: after k progress events for k spread over the run, and after the last one
  // with delays that land in the final chunk and the commit.
  // 0.85 and 0.93: past the 16 MiB of dirty pages, so the file holds spilled pages behind the journal.
  const points: [number, number][] = [1, Math.floor(total / 3), Math.floor((2 * total) / 3), Math.floor(total * 0.85), Math.floor(total * 0.93), total - 1]
    .map((k) => [k, 0] as [number, number]);
  for (const ms of [0, 20]) points.push([total, ms]);
  const seen = { old: 0, new: 0, hot: 0, killedMidway: 0 };
  for (let k = 0; k < points.length; k += 2) {
    await Promise.all(points.slice(k, k + 2).map(async ([events, ms], j) => {
      const i = k + j;
      const dest = join(dir, `kill-${i}.db`);
      copyFileSync(template, dest);
      const out = await killTrial(src, dest, events, ms);
      const ctx = `kill trial ${i} (after ${events} events + ${ms} ms: ${out.how} at event ${out.events})`;
      if (hotJournal(dest)) seen.hot++;
      const j2 = judge(dest); // the native CLI rolls a hot journal back
      assert.is(j2.integrity, "ok", `${ctx}: integrity_check`);
      const got = j2.sha === oldSha ? "old" : j2.sha === newSha ? "new" : "mixed";
      assert.is.not(got, "mixed", `${ctx}: the content is the old or the new database`);
      if (out.how === "finished") assert.is(got, "new", `${ctx}: a finished backup`);
      assert.not.ok(hotJournal(dest), `${ctx}: the hot journal was recovered`);
      seen[got as "old" | "new"]++;
      if (out.how === "killed" && got === "old") seen.killedMidway++;
      rmSync(dest, { force: true });
    }));
  }
  assert.ok(seen.killedMidway > 0, "some kills landed in the middle of the backup");
  assert.ok(seen.hot > 0, `some kills left a hot journal for the CLI to roll back (${JSON.stringify(seen)})`);
  console.log(`  SIGKILL: ${points.length} trials over ${total} progress events: ${seen.old} old, ${seen.new} new, ${seen.hot} hot journals rolled back`);
});

// ---------------------------------------------------------------------------------------------
// 5. Live writers on the source

const ROWS = 120;
/** Counters spread over many pages (a 600-byte pad each): one transaction bumps them all. */
const COUNTER_SCHEMA = `PRAGMA page_size=4096; PRAGMA journal_mode=WAL;
  CREATE TABLE meta(k INTEGER PRIMARY KEY, total INTEGER NOT NULL); INSERT INTO meta VALUES (1, 0);
  CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, pad BLOB);
  WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r WHERE i<${ROWS}) INSERT INTO c SELECT i, 0, randomblob(600) FROM r;
  CREATE TABLE filler(id INTEGER PRIMARY KEY, v BLOB);
  WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r WHERE i<400) INSERT INTO filler SELECT i, randomblob(800) FROM r;`;
const bumpSql = (r: () => number) => `BEGIN IMMEDIATE; UPDATE c SET n = n + 1; UPDATE meta SET total = total + 1;
  UPDATE filler SET v = randomblob(800) WHERE id = ${1 + Math.floor(r() * 400)}; COMMIT;`;

/** The native CLI's view of a copy: its integrity and the committed counter it holds. */
function counterState(file: string): { integrity: string; consistent: boolean; total: number } {
  const out = sh(file, "PRAGMA integrity_check",
    "SELECT (SELECT total FROM meta) || ' ' || (SELECT count(*) FROM c WHERE n = (SELECT total FROM meta)) || ' ' || (SELECT count(*) FROM c)").trim().split("\n");
  const [total, same, all] = out.pop()!.split(" ").map(Number) as [number, number, number];
  return { integrity: out.join("\n"), consistent: same === ROWS && all === ROWS, total };
}

timed("counterState() sees a torn copy (pages of two committed states)", () => {
  // The check below must be able to fail: splice two committed states page by page.
  const a = join(dir, "torn-a.db");
  sh(a, COUNTER_SCHEMA.replace("PRAGMA journal_mode=WAL;", ""));
  const b = join(dir, "torn-b.db");
  copyFileSync(a, b);
  sh(b, bumpSql(rng(1)));
  assert.ok(counterState(a).consistent && counterState(b).consistent);
  const x = readFileSync(a);
  const y = readFileSync(b);
  assert.is(x.length, y.length);
  const torn = Buffer.from(x);
  y.copy(torn, 4096 * 4, 4096 * 4, 4096 * 12); // pages 5..12 from the later state
  const tornFile = join(dir, "torn.db");
  writeFileSync(tornFile, torn);
  assert.not.ok(counterState(tornFile).consistent, "a torn copy is inconsistent");
});

// With "process" locking (no FFI) backup() guards a file source against other processes by
// stamping its files, which sees these writes too and restarts the compare (the last pass is one
// chunk); verifySource: false leaves the consistency to the snapshot the compare holds.
for (const verifySource of [true, false]) {
  timed(`a WAL source written by another connection of ours between chunks (verifySource: ${verifySource}): the copy is one committed state`, async () => {
    const file = join(dir, `live-src-${verifySource}.db`);
    sh(file, COUNTER_SCHEMA);
    using source = sqlite.open(file);
    using writer = sqlite.open(file);
    const prev = join(dir, `live-prev-${verifySource}.db`);
    await sqlite.backup(source, prev, { incremental: false });
    // A backup of a WAL database is a WAL database (header bytes 18/19): every backup below is
    // incremental over a WAL destination (checkpointed, compared, written into its WAL, checkpointed).
    const r = rng(SEED);
    for (let round = 0; round < 3; round++) {
      const start = writer.get<{ total: number }>("SELECT total FROM meta")!.total;
      let writes = 0;
      const res = await sqlite.backup(source, prev, {
        incremental: true, verifySource, pagesPerStep: 16 << round,
        onProgress: ({ remaining }) => {
          if (remaining > 0) {
            writer.exec(bumpSql(r));
            writes++;
          }
        },
      });
      const end = writer.get<{ total: number }>("SELECT total FROM meta")!.total;
      assert.ok(res.incremental, "incremental");
      assert.ok(writes > 0, "the writer committed during the backup");
      const st = counterState(prev);
      assert.is(st.integrity, "ok", `round ${round}: integrity_check`);
      assert.ok(st.consistent, `round ${round}: every counter row equals meta.total (${st.total})`);
      assert.ok(st.total >= start && st.total <= end, `round ${round}: a state between ${start} and ${end}, got ${st.total}`);
      // Whichever state it copied, the next incremental backup brings it up to date.
      await sqlite.backup(source, prev, { incremental: true, verifySource });
      assert.is(counterState(prev).total, end, `round ${round}: a backup with no writer copies the last state`);
    }
  });
}

/** Starts the native CLI committing counter bumps about once a millisecond until stopped. */
function startWriter(file: string, seed: number): { stop(): Promise<void> } {
  const r = rng(seed);
  return nativeWriter(file, () => bumpSql(r));
}

const nativeName = "a WAL source written by a native sqlite3 process under real file locks: every copy is one committed state";
if (sqlite.locking !== "os") {
  console.log(`  skipped: "${nativeName}": needs real file locks, but ${sqlite.lockingReason}`);
  test.skip(`${nativeName} (skipped: ${sqlite.lockingReason})`, () => {});
} else {
  timed(nativeName, async () => {
    const file = join(dir, "native-src.db");
    sh(file, COUNTER_SCHEMA);
    const total = () => Number(execFileSync("sqlite3", ["-batch", "-cmd", ".timeout 5000", file, "SELECT total FROM meta"], { encoding: "utf8" }).trim());
    const dest = join(dir, "native-prev.db");
    {
      using s = sqlite.open(file, { readonly: true });
      await sqlite.backup(s, dest, { incremental: false });
    }
    const w = startWriter(file, SEED);
    let copies = 0;
    let first = -1;
    try {
      for (let t = 0; total() === 0 && t < 2000; t++) await new Promise((r) => setTimeout(r, 5));
      first = total();
      assert.ok(first > 0, "the native writer started committing");
      for (let i = 0; i < 4 || (total() === first && i < 200); i++) {
        using source = sqlite.open(file, { readonly: true });
        const res = await sqlite.backup(source, dest, { pagesPerStep: 8, pauseMs: 1 }); // "auto": a WAL source with real locks
        assert.ok(res.incremental, `copy ${i}: "auto" took the incremental path`);
        const st = counterState(dest);
        assert.is(st.integrity, "ok", `copy ${i}: integrity_check`);
        assert.ok(st.consistent, `copy ${i}: every counter row equals meta.total (${st.total})`);
        copies++;
      }
    } finally {
      await w.stop();
    }
    assert.ok(total() > first, "the native writer committed while the copies ran");
    assert.ok(copies >= 4);
  });
}

test.after(() => {
  console.log(`  incremental I/O faults: ${ioStats.runs} runs, ${ioStats.failed} failed backups (${ioStats.afterCommit} after the commit point), ` +
    `${ioStats.completedDespiteFault} completed despite a fault; failing ops ${JSON.stringify(ioStats.byOp)}`);
  console.log(`  incremental OOM: ${oomStats.runs} runs, ${oomStats.failures} allocation failures, ${oomStats.nomem} SQLITE_NOMEM`);
  console.log(`  incremental power loss: ${crashStats.losses} (${crashStats.old} old, ${crashStats.new} new, ${crashStats.midCompare} during the compare)`);
});

test.run();
