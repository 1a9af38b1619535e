// Replicas against Litestream 0.3.13, one workload each, one after the other in the same run: a
// WAL database of random rows (MiB, default 100) that the native sqlite3 CLI writes at ~100
// transactions/s (an insert with a random indexed key and an update of a random row; fed by
// replica-writer.mjs from a process of its own, so the CPU measured is the replicator's), replicated
// into a directory with a 1 s interval for SECONDS (default 60). Prints, for each: bytes the
// replica grew per minute (after its first snapshot), the first snapshot's size, CPU of the
// replicating process, its sync times (ours), and the time to restore the latest state and a
// point in the middle of the run, each in a process of its own (our CLI, Litestream's binary) and
// ours also in the replicating process (each checked with the native sqlite3: integrity_check,
// rows). --json: the numbers as JSON on the last line (bench/run.mjs, part "replica").
// Litestream comes from the npm registry (`npm pack @flydotio/litestream-linux-x64@1.0.1`, which
// holds 0.3.13) into bench/data/litestream/ on first use; --no-litestream skips it.
//
// --one-percent instead: a sync of a 330 MiB database (rollback journal) with 1% of its pages
// changed, against backup() incremental over the previous copy for the same change.
//
//   node --import tsx bench/replica.mjs [MiB=100] [SECONDS=60] [--no-litestream] [--json]
//   node --import tsx bench/replica.mjs --one-percent [--json]
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const MIB = Number(args[0] ?? 100);
const SECONDS = Number(args[1] ?? 60);
const LITESTREAM = !process.argv.includes("--no-litestream");
const JSON_OUT = process.argv.includes("--json");
const cliJs = join(import.meta.dirname, "../dist/cli.js");
/** @type {typeof import("../src/index.ts")} */
const { fileTarget, loadSqlite } = await import(join(import.meta.dirname, "../src/index.ts"));
const sqlite = await loadSqlite();
const data = join(import.meta.dirname, "data");
const work = join(data, "replica");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const sqlite3 = (/** @type {string} */ file, /** @type {string} */ sql) => execFileSync("sqlite3", ["-batch", file], { input: sql, encoding: "utf8", maxBuffer: 1 << 26 });
const mib = (/** @type {number} */ n) => (n / 1048576).toFixed(1);
const du = (/** @type {string} */ dir) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
  .reduce((n, e) => n + statSync(join(e.parentPath ?? e.path, e.name)).size, 0);
/** The p-quantile of a (0.5: the median); undefined if a is empty. */
const pct = (/** @type {number[]} */ a, /** @type {number} */ p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];

/** The base database: random rows of hex text with a random indexed key, in WAL mode. */
function base() {
  const file = join(data, `replica-base-${MIB}.db`);
  if (existsSync(file)) return file;
  const rows = Math.round((MIB * 1048576) / 330);
  sqlite3(`${file}.tmp`, `PRAGMA journal_mode=WAL;
    CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER);
    CREATE INDEX t_k ON t(k);
    WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ${rows})
    INSERT INTO t(k, v, n) SELECT hex(randomblob(8)), hex(randomblob(100)) || ' row ' || i, i FROM r;
    PRAGMA wal_checkpoint(TRUNCATE);`);
  execFileSync("mv", [`${file}.tmp`, file]);
  return file;
}

/**
 * The native writer (replica-writer.mjs, a process of its own): ~100 transactions/s until stop();
 * resolves with the transactions sent.
 * @param {string} file
 */
function writer(file) {
  const p = spawn(process.execPath, [join(import.meta.dirname, "replica-writer.mjs"), file], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  p.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  const exited = new Promise((res) => p.once("exit", res));
  return {
    stop: async () => {
      p.stdin.end();
      await exited;
      return Number(out.trim());
    },
  };
}

/** @param {number | undefined} pid */
function cpuOf(pid) {
  const f = /** @type {string} */ (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]).split(" "); // "pid (comm) state …"
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
}

/**
 * @param {string} file
 * @param {string} what
 */
function check(file, what) {
  const out = sqlite3(file, "PRAGMA integrity_check; SELECT count(*) FROM t;").trim().split("\n");
  if (out[0] !== "ok") throw new Error(`${what}: integrity_check: ${out.join(" ")}`);
  return Number(out[1]);
}

/**
 * The median of three runs of a restore into `out`, s (`out` removed before each, untimed: a
 * single restore's time moves by half on this kind of machine).
 * @param {() => unknown} fn
 * @param {string} out
 */
async function timed(fn, out) {
  const times = [];
  for (let i = 0; i < 3; i++) {
    rmSync(out, { force: true });
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return /** @type {number} */ (pct(times, 0.5));
}

/**
 * Restores with our CLI in a process of its own (dist/ must be built).
 * @param {string} dir
 * @param {string} out
 * @param {Date} [at]
 */
function cliRestore(dir, out, at) {
  execFileSync(process.execPath, [cliJs, "restore", `file://${dir}`, out, "--quiet", ...(at ? ["--at", at.toISOString()] : [])]);
}

/**
 * One side's numbers; null where they do not apply to Litestream.
 * @typedef {object} Side
 * @property {number} transactions
 * @property {number} growthMiBPerMin
 * @property {number} snapshotMiB
 * @property {number} snapshotPercent
 * @property {number | null} snapshotCpuS
 * @property {number | null} deltas
 * @property {number} minutes
 * @property {number | null} hinted
 * @property {number | null | undefined} pagesPerSync undefined (left out of the JSON) if no delta synced
 * @property {number | null} syncP50S NaN (null in the JSON) if no delta synced
 * @property {number | null} syncP90S
 * @property {number} cpuSPerMin
 * @property {number} rssMiB
 * @property {number} restoreLatestS
 * @property {number} restorePitS
 * @property {number | null} restoreLatestInProcessS
 * @property {number | null} restorePitInProcessS
 * @property {number | null} errors
 */
/**
 * What --json prints on its last line (litestream left out with --no-litestream).
 * @typedef {{ mib: number, seconds: number, node: string, ours: Side, litestream?: Side }} Output
 */
/**
 * What --one-percent --json prints: medians of 3 rounds, ms and pages.
 * @typedef {{ pages: number, backupMs: number, syncMs: number, written: number, uploaded: number, bytes: number }} OnePercent
 */

/** @type {{ ours?: Side, litestream?: Side }} */
const results = {};

async function ours() {
  const file = join(work, "ours.db");
  copyFileSync(base(), file);
  const dir = join(work, "ours-replica");
  const target = fileTarget(dir);
  /** @type {import("../src/index.ts").SyncInfo[]} */
  const syncs = [];
  /** @type {Error[]} */
  const errors = [];
  const cpu0 = process.cpuUsage();
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0;
  const r = sqlite.replicate(file, target, { intervalMs: 1000, onSync: (i) => syncs.push(i), onError: (e) => errors.push(e) });
  if (process.env.SBW_BENCH_TRACE) {
    const t = setInterval(() => { const s = syncs.at(-1); if (s) console.log(`${new Date().toISOString().slice(17,23)} sync ${s.seq} @${s.time.toISOString().slice(17,23)} ${s.kind} uploaded ${s.pagesUploaded} compared ${s.pagesCompared} of ${s.pageCount} in ${s.elapsedMs.toFixed(0)} ms`); }, 1000);
    t.unref();
  }
  await r.sync();
  const snapshotBytes = du(dir);
  const cpuSnap = process.cpuUsage(cpu0);
  const cpu1 = process.cpuUsage();
  const w = writer(file);
  const t0 = Date.now();
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 200);
  await new Promise((res) => setTimeout(res, (SECONDS * 1000) / 2));
  const middle = new Date();
  await new Promise((res) => setTimeout(res, (SECONDS * 1000) / 2));
  const sent = await w.stop();
  const cpu = process.cpuUsage(cpu1);
  const minutes = (Date.now() - t0) / 60000;
  await r.close();
  clearInterval(sampler);
  if (errors.length) console.log(`ours: ${errors.length} sync errors, first: ${errors[0]?.message}`);
  const grown = du(dir) - snapshotBytes;
  const latest = join(work, "ours-latest.db");
  const tLatest = await timed(() => sqlite.restoreReplica(target, latest), latest);
  const pit = join(work, "ours-pit.db");
  const tPit = await timed(() => sqlite.restoreReplica(target, pit, { at: middle }), pit);
  const rows = check(latest, "ours latest");
  check(pit, "ours point-in-time");
  const want = Number(sqlite3(file, "SELECT count(*) FROM t").trim());
  if (rows !== want) throw new Error(`ours: ${rows} rows restored, the source has ${want}`);
  const cliLatest = join(work, "ours-cli-latest.db");
  const tCliLatest = await timed(async () => cliRestore(dir, cliLatest), cliLatest);
  const cliPit = join(work, "ours-cli-pit.db");
  const tCliPit = await timed(async () => cliRestore(dir, cliPit, middle), cliPit);
  if (check(cliLatest, "ours latest (CLI)") !== want) throw new Error("ours: the CLI's restore differs");
  check(cliPit, "ours point-in-time (CLI)");
  const deltas = syncs.filter((s) => s.kind === "delta");
  results.ours = {
    transactions: sent,
    growthMiBPerMin: grown / 1048576 / minutes,
    snapshotMiB: snapshotBytes / 1048576,
    snapshotPercent: (100 * snapshotBytes) / statSync(file).size,
    snapshotCpuS: (cpuSnap.user + cpuSnap.system) / 1e6,
    deltas: deltas.length,
    minutes,
    hinted: deltas.filter((s) => s.pagesCompared < s.pageCount / 4).length,
    pagesPerSync: pct(deltas.map((s) => s.pagesUploaded), 0.5),
    syncP50S: (pct(deltas.map((s) => s.elapsedMs), 0.5) ?? NaN) / 1000,
    syncP90S: (pct(deltas.map((s) => s.elapsedMs), 0.9) ?? NaN) / 1000,
    cpuSPerMin: (cpu.user + cpu.system) / 1e6 / minutes,
    rssMiB: (rssMax - rss0) / 1048576,
    restoreLatestS: tCliLatest,
    restorePitS: tCliPit,
    restoreLatestInProcessS: tLatest,
    restorePitInProcessS: tPit,
    errors: errors.length,
  };
}

function litestreamBinary() {
  const dir = join(data, "litestream");
  const exe = join(dir, "package", "litestream");
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const tgz = /** @type {string} */ (execFileSync("npm", ["pack", "--silent", "@flydotio/litestream-linux-x64@1.0.1"], { cwd: dir, encoding: "utf8" }).trim().split("\n").pop());
  execFileSync("tar", ["xzf", tgz], { cwd: dir });
  return exe;
}

async function litestream() {
  const exe = litestreamBinary();
  const file = join(work, "ls.db");
  copyFileSync(base(), file);
  const dir = join(work, "ls-replica");
  const cfg = join(work, "litestream.yml");
  writeFileSync(cfg, `dbs:\n  - path: ${file}\n    replicas:\n      - type: file\n        path: ${dir}\n        sync-interval: 1s\n`);
  const p = spawn(exe, ["replicate", "-config", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  p.stderr.on("data", (b) => (log += b));
  const t00 = Date.now();
  // The first snapshot: a generation with a snapshot file.
  while (!(existsSync(dir) && readdirSync(dir, { recursive: true }).some((n) => String(n).includes("snapshots/") && String(n).endsWith(".lz4")))) {
    if (Date.now() - t00 > 60000) throw new Error(`litestream made no snapshot: ${log}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  await new Promise((res) => setTimeout(res, 1500));
  const snapshotBytes = du(dir);
  const cpu0 = cpuOf(p.pid);
  const w = writer(file);
  const t0 = Date.now();
  await new Promise((res) => setTimeout(res, (SECONDS * 1000) / 2));
  const middle = new Date();
  await new Promise((res) => setTimeout(res, (SECONDS * 1000) / 2));
  const sent = await w.stop();
  const minutes = (Date.now() - t0) / 60000;
  await new Promise((res) => setTimeout(res, 2500)); // its last sync
  const cpu = cpuOf(p.pid) - cpu0;
  const rss = Number(/** @type {RegExpExecArray} */ (/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, "utf8")))[1]) * 1024;
  p.kill("SIGTERM");
  await new Promise((res) => p.once("exit", res));
  const grown = du(dir) - snapshotBytes;
  const latest = join(work, "ls-latest.db");
  const url = `file://${dir}`;
  const tLatest = await timed(async () => execFileSync(exe, ["restore", "-o", latest, url]), latest);
  const pit = join(work, "ls-pit.db");
  const tPit = await timed(async () => execFileSync(exe, ["restore", "-o", pit, "-timestamp", middle.toISOString(), url]), pit);
  check(latest, "litestream latest");
  check(pit, "litestream point-in-time");
  results.litestream = {
    transactions: sent,
    growthMiBPerMin: grown / 1048576 / minutes,
    snapshotMiB: snapshotBytes / 1048576,
    snapshotPercent: (100 * snapshotBytes) / statSync(file).size,
    snapshotCpuS: null,
    deltas: null,
    minutes,
    hinted: null,
    pagesPerSync: null,
    syncP50S: null,
    syncP90S: null,
    cpuSPerMin: cpu / minutes,
    rssMiB: rss / 1048576,
    restoreLatestS: tLatest,
    restorePitS: tPit,
    restoreLatestInProcessS: null,
    restorePitInProcessS: null,
    errors: null,
  };
}

async function onePercent() {
  const big = join(data, "replica-330.db");
  if (!existsSync(big)) {
    const rows = Math.round((330 * 1048576) / 330);
    sqlite3(`${big}.tmp`, `CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER);
      WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ${rows})
      INSERT INTO t(k, v, n) SELECT hex(randomblob(8)), hex(randomblob(100)) || ' row ' || i, i FROM r;`);
    execFileSync("mv", [`${big}.tmp`, big]);
  }
  const file = join(work, "one.db");
  copyFileSync(big, file);
  const db = sqlite.open(file);
  const copy = join(work, "one-copy.db");
  await sqlite.backup(db, copy);
  const r = sqlite.replicate(db, fileTarget(join(work, "one-replica")), { intervalMs: 3_600_000, compress: false });
  await r.sync();
  const pages = Number(/** @type {{ page_count: number }} */ (db.get("PRAGMA page_count")).page_count);
  const rows = Number(/** @type {{ m: number }} */ (db.get("SELECT max(id) AS m FROM t")).m);
  /** @type {{ backup: number, sync: number, written: number, uploaded: number, bytes: number }[]} */
  const rounds = [];
  for (let round = 0; round < 3; round++) {
    db.exec("BEGIN");
    for (let i = 0; i < pages / 100; i++) db.run("UPDATE t SET n = n + 1 WHERE id = ?", [1 + Math.floor(Math.random() * rows)]);
    db.exec("COMMIT");
    const b = await sqlite.backup(db, copy, { incremental: true });
    const t0 = performance.now();
    const info = await r.sync();
    rounds.push({ backup: b.elapsedMs, sync: performance.now() - t0, written: b.pagesWritten, uploaded: info.pagesUploaded, bytes: info.bytesUploaded });
  }
  await r.close();
  db.close();
  const med = (/** @type {keyof (typeof rounds)[number]} */ k) => /** @type {number} */ (pct(rounds.map((x) => x[k]), 0.5)); // of 3 rounds
  if (JSON_OUT) console.log(JSON.stringify({ pages, backupMs: med("backup"), syncMs: med("sync"), written: med("written"), uploaded: med("uploaded"), bytes: med("bytes") }));
  else console.log(`330 MiB, 1% of ${pages} pages changed (median of 3): backup() incremental ${(med("backup") / 1000).toFixed(3)} s writing ${med("written")} pages; ` +
    `sync ${(med("sync") / 1000).toFixed(3)} s (${(med("sync") / med("backup")).toFixed(2)}x) uploading ${med("uploaded")} pages, ${mib(med("bytes"))} MiB (${(med("bytes") / (med("written") * 4096)).toFixed(2)}x the changed pages)`);
}

if (process.argv.includes("--one-percent")) {
  await onePercent();
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
base();
console.log(`replica benchmark: ${MIB} MiB WAL database, native writer ~100 tx/s for ${SECONDS} s, 1 s interval, into a directory`);
await ours();
if (LITESTREAM) await litestream();
rmSync(work, { recursive: true, force: true });
if (JSON_OUT) console.log(JSON.stringify({ mib: MIB, seconds: SECONDS, node: process.version, ...results }));
else {
  const cols = /** @type {(keyof typeof results)[]} */ (Object.keys(results));
  console.log(["", ...cols].join(" | "));
  const keys = /** @type {(keyof Side)[]} */ (Object.keys(/** @type {Side} */ (results.ours))); // ours() ran
  for (const k of keys) console.log([k, ...cols.map((c) => { const v = results[c]?.[k]; return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : v; })].join(" | "));
}
