// Real file locks vs the in-process table, under Node 26 (node:ffi):
// - file -> file backup() of a ~100 MiB database, `locking: "os"` (OFD locks) vs "process";
// - WAL write throughput (one commit per small transaction) and read throughput (one read
//   transaction per point query), with the real mmap'd -shm ("os") vs the heap shm ("process").
// Each measurement runs in a fresh process (the library from src/ through tsx, so it measures
// the working tree), the two lockings alternate within each round, and the medians are printed,
// then one JSON line with every run (bench/run.mjs saves it as the "locks" part).
//
//   node bench/locks.mjs [--rounds 5] [--mib 100] [--node path/to/node26]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** @typedef {"os" | "process"} Locking */
/**
 * What a child prints: ms for "backup"; writesPerS and readsPerS for "wal".
 * @typedef {{ ms: number, writesPerS: number, readsPerS: number }} Measurement
 */

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const args = process.argv.slice(2);
/**
 * The value after flag `name`, else dflt.
 * @template T
 * @param {string} name
 * @param {T} dflt
 * @returns {string | T}
 */
const option = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? /** @type {string} */ (args[i + 1]) : dflt;
};

if (args[0] === "--one") {
  // Child: one measurement; prints a JSON line.
  const [, kind, locking, file = "", dest = ""] = args;
  const { loadSqlite } = await import("../src/index.js");
  const sqlite = await loadSqlite({ locking: /** @type {Locking} */ (locking) });
  if (sqlite.locking !== locking) throw new Error(`asked for ${locking}, got ${sqlite.locking}`);
  /** @type {Partial<Measurement>} */
  const out = {};
  if (kind === "backup") {
    const src = sqlite.open(file, { readonly: true });
    rmSync(dest, { force: true });
    const t0 = performance.now();
    await sqlite.backup(src, dest);
    out.ms = performance.now() - t0;
    src.close();
  } else if (kind === "wal") {
    const db = sqlite.open(file);
    db.exec("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS kv(k INTEGER PRIMARY KEY, v BLOB)");
    const N = 3000;
    let t0 = performance.now();
    for (let i = 0; i < N; i++) db.run("INSERT OR REPLACE INTO kv VALUES (?, randomblob(100))", [i]);
    out.writesPerS = N / ((performance.now() - t0) / 1000);
    const R = 20000;
    t0 = performance.now();
    for (let i = 0; i < R; i++) db.get("SELECT v FROM kv WHERE k = ?", [(i * 7919) % N]);
    out.readsPerS = R / ((performance.now() - t0) / 1000);
    db.close();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const node = option("--node", join(root, "test/runtimes/node_modules/node26/bin/node"));
const rounds = Number(option("--rounds", 5));
const mib = Number(option("--mib", 100));
if (!existsSync(node)) throw new Error(`${node} missing (scripts/setup.sh test installs Node 26)`);

const dir = mkdtempSync(join(tmpdir(), "sbw-bench-locks-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const src = join(dir, "src.db");
// ~100 MiB: rows of ~1 KiB, an index, with the native CLI.
const rows = Math.round((mib * 1024 * 1024) / 1040);
execFileSync("sqlite3", ["-batch", src, `PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, v BLOB);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${rows}) INSERT INTO t SELECT i, 'row ' || i, randomblob(1000) FROM c;
  CREATE INDEX t_s ON t(s);`]);
console.log(`source ${(statSync(src).size / 2 ** 20).toFixed(1)} MiB; ${node} (${execFileSync(node, ["--version"], { encoding: "utf8" }).trim()}); ${rounds} rounds`);

/**
 * One measurement in a new process.
 * @param {"backup" | "wal"} kind
 * @param {Locking} locking
 * @param {string} file
 * @returns {Measurement}
 */
function one(kind, locking, file, dest = "") {
  const r = spawnSync(node, ["--no-warnings", "--import", "tsx", fileURLToPath(import.meta.url), "--one", kind, locking, file, dest], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${kind} ${locking}: ${r.stderr}`);
  return JSON.parse(/** @type {string} */ (r.stdout.trim().split("\n").at(-1)));
}

const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (/** @type {number} */ i) => /** @type {number} */ (s[i]);
  return s.length % 2 ? at((s.length - 1) / 2) : (at(s.length / 2 - 1) + at(s.length / 2)) / 2;
};
/** @type {Record<Locking, Record<"backup" | "writes" | "reads", number[]>>} */
const results = { os: { backup: [], writes: [], reads: [] }, process: { backup: [], writes: [], reads: [] } };
one("backup", "process", src, join(dir, "warm.db")); // page cache warm before the first timed run
for (let round = 0; round < rounds; round++) {
  /** @type {Locking[]} */
  const order = round % 2 ? ["process", "os"] : ["os", "process"];
  for (const locking of order) {
    const b = one("backup", locking, src, join(dir, `copy-${locking}.db`));
    const walFile = join(dir, `wal-${locking}-${round}.db`);
    const w = one("wal", locking, walFile);
    for (const f of [walFile, `${walFile}-wal`, `${walFile}-shm`]) rmSync(f, { force: true });
    results[locking].backup.push(b.ms);
    results[locking].writes.push(w.writesPerS);
    results[locking].reads.push(w.readsPerS);
    console.log(`round ${round + 1} ${locking.padEnd(7)} backup ${b.ms.toFixed(0)} ms, WAL ${w.writesPerS.toFixed(0)} commits/s, ${w.readsPerS.toFixed(0)} reads/s`);
  }
}
const m = (/** @type {Locking} */ l, /** @type {"backup" | "writes" | "reads"} */ k) => median(results[l][k]);
const pct = (/** @type {number} */ a, /** @type {number} */ b) => `${(((a - b) / b) * 100).toFixed(1)}%`;
console.log(`\nmedians of ${rounds}          os (OFD + real -shm)   process (table + heap shm)   os vs process`);
console.log(`backup file -> file    ${m("os", "backup").toFixed(0).padStart(8)} ms ${m("process", "backup").toFixed(0).padStart(22)} ms ${pct(m("os", "backup"), m("process", "backup")).padStart(20)}`);
console.log(`WAL commits/s          ${m("os", "writes").toFixed(0).padStart(11)} ${m("process", "writes").toFixed(0).padStart(25)} ${pct(m("os", "writes"), m("process", "writes")).padStart(20)}`);
console.log(`WAL point reads/s      ${m("os", "reads").toFixed(0).padStart(11)} ${m("process", "reads").toFixed(0).padStart(25)} ${pct(m("os", "reads"), m("process", "reads")).padStart(20)}`);
console.log(JSON.stringify({ node: execFileSync(node, ["--version"], { encoding: "utf8" }).trim(), mib, sourceMiB: statSync(src).size / 2 ** 20, rounds, results }));
