// Prepared statements: 100,000 inserts in one transaction through prepare(), ours against
// better-sqlite3 (native) and the official wasm build (@sqlite.org/sqlite-wasm, oo1 API). Each
// measurement runs in a fresh process under Node 22 (better-sqlite3 13 needs it); the peers
// alternate within each round and the order rotates every round. Prints the numbers only.
//
//   node bench/statements.mjs [--rounds N] [--rows N]     (needs `npm run build` and `npm install` in bench/)
//
// One process: three transactions, each into a new table with its own statement; "first" is
// the first one (a cold JIT), "warm" the faster of the other two.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
/**
 * The value after flag `name`, else fallback.
 * @template T
 * @param {string} name
 * @param {T} fallback
 * @returns {string | T}
 */
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? /** @type {string} */ (args[i + 1]) : fallback;
};
const ROWS = Number(option("--rows", 100_000));
// The built package, by URL: its types are those of ../src (the check needs no build).
const dist = new URL("../dist/index.js", import.meta.url).href;
const INSERT = "INSERT INTO t%(name, score, n) VALUES (?, ?, ?)";
const CREATE = "CREATE TABLE t%(id INTEGER PRIMARY KEY, name TEXT, score REAL, n INTEGER)";

/**
 * One peer in this process: the three transactions' wall-clock and CPU times in ms.
 * @param {string} peer "ours", "better-sqlite3" or "official"
 * @param {string} target "memory" or "file"
 * @returns {Promise<{ times: number[], cpu: number[] }>}
 */
async function measure(peer, target) {
  const file = target === "file" ? join(mkdtempSync(join(tmpdir(), "sbw-stmt-")), "bench.db") : ":memory:";
  /** @type {number[]} */
  const times = [];
  /** @type {number[]} */
  const cpu = [];
  /** @type {NodeJS.CpuUsage | undefined} */
  let c0;
  let t0 = 0;
  const start = () => {
    c0 = process.cpuUsage();
    t0 = performance.now();
  };
  const stop = () => {
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  };
  try {
    if (peer === "ours") {
      /** @type {typeof import("../src/index.ts")} */
      const { loadSqlite } = await import(dist);
      const sqlite = await loadSqlite();
      const db = sqlite.open(file);
      for (let k = 0; k < 3; k++) {
        db.exec(CREATE.replace("%", String(k)));
        const stmt = db.prepare(INSERT.replace("%", String(k)));
        const insertAll = db.transaction(() => {
          for (let i = 0; i < ROWS; i++) stmt.run([`name ${i}`, i * 0.25, i]);
        });
        start();
        insertAll();
        stop();
        stmt.finalize();
      }
      db.close();
    } else if (peer === "better-sqlite3") {
      /** @type {typeof import("better-sqlite3")} */
      const Database = createRequire(import.meta.url)("better-sqlite3");
      const db = new Database(file);
      for (let k = 0; k < 3; k++) {
        db.exec(CREATE.replace("%", String(k)));
        const stmt = db.prepare(INSERT.replace("%", String(k)));
        const insertAll = db.transaction(() => {
          for (let i = 0; i < ROWS; i++) stmt.run(`name ${i}`, i * 0.25, i);
        });
        start();
        insertAll();
        stop();
      }
      db.close();
    } else if (peer === "official") {
      if (target !== "memory") throw new Error("the official build has no file VFS in Node");
      const { default: init } = await import("@sqlite.org/sqlite-wasm");
      const sqlite3 = await init();
      const db = new sqlite3.oo1.DB(":memory:");
      for (let k = 0; k < 3; k++) {
        db.exec(CREATE.replace("%", String(k)));
        const stmt = db.prepare(INSERT.replace("%", String(k)));
        start();
        db.transaction(() => {
          for (let i = 0; i < ROWS; i++) stmt.bind([`name ${i}`, i * 0.25, i]).stepReset();
        });
        stop();
        stmt.finalize();
      }
      db.close();
    } else throw new Error(`unknown peer ${peer}`);
  } finally {
    if (file !== ":memory:") rmSync(dirname(file), { recursive: true, force: true });
  }
  return { times, cpu };
}

if (args[0] === "--case") {
  process.stdout.write(`${JSON.stringify(await measure(/** @type {string} */ (args[1]), /** @type {string} */ (args[2])))}\n`);
  process.exit(0);
}

const node22 = join(here, "..", "test", "runtimes", "node_modules", "node22", "bin", "node");
if (!existsSync(node22)) throw new Error(`${node22} missing: run scripts/setup.sh test`);
if (!existsSync(join(here, "node_modules", "better-sqlite3"))) throw new Error("bench/node_modules missing: run `npm install` in bench/");
if (!existsSync(join(here, "..", "dist", "index.js"))) throw new Error("dist/ missing: run `npm run build`");

const rounds = Number(option("--rounds", 5));
/** @typedef {"ours" | "better-sqlite3" | "official"} Peer */
/** @type {{ target: string, peers: Peer[] }[]} */
const plan = [
  { target: "memory", peers: ["ours", "better-sqlite3", "official"] },
  { target: "file", peers: ["ours", "better-sqlite3"] },
];
const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (/** @type {number} */ i) => /** @type {number} */ (s[i]);
  return s.length % 2 ? at((s.length - 1) / 2) : (at(s.length / 2 - 1) + at(s.length / 2)) / 2;
};
const version = (/** @type {string} */ pkg) => /** @type {{ version: string }} */ (createRequire(import.meta.url)(`${pkg}/package.json`)).version;
console.log(`${ROWS.toLocaleString("en")} inserts in one transaction, ${rounds} rounds, Node ${execFileSync(node22, ["-p", "process.versions.node"], { encoding: "utf8" }).trim()}; ` +
  `better-sqlite3 ${version("better-sqlite3")}, @sqlite.org/sqlite-wasm ${version("@sqlite.org/sqlite-wasm")}`);
for (const { target, peers } of plan) {
  /** @typedef {"first" | "warm" | "firstCpu" | "warmCpu"} Column */
  /** @type {() => Record<Column, number[]>} */
  const columns = () => ({ first: [], warm: [], firstCpu: [], warmCpu: [] });
  // This target's peers only.
  const runs = /** @type {Record<Peer, Record<Column, number[]>>} */ (Object.fromEntries(peers.map((p) => [p, columns()])));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < peers.length; j++) {
      const peer = /** @type {Peer} */ (peers[(r + j) % peers.length]);
      const out = execFileSync(node22, [fileURLToPath(import.meta.url), "--case", peer, target, "--rows", String(ROWS)], { cwd: here, encoding: "utf8" });
      /** @type {{ times: [number, number, number], cpu: [number, number, number] }} what measure() returns */
      const { times, cpu } = JSON.parse(/** @type {string} */ (out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1)));
      const w = times[1] <= times[2] ? 1 : 2;
      runs[peer].first.push(times[0]);
      runs[peer].warm.push(times[w]);
      runs[peer].firstCpu.push(cpu[0]);
      runs[peer].warmCpu.push(Math.min(cpu[1], cpu[2]));
    }
  }
  const keys = /** @type {Column[]} */ (Object.keys(runs.ours));
  const base = /** @type {Record<Column, number>} */ (Object.fromEntries(keys.map((k) => [k, median(runs["better-sqlite3"][k])])));
  console.log(`\n${target === "memory" ? ":memory:" : "a file (rollback journal, synchronous=FULL)"}: median ms (÷ better-sqlite3)`);
  console.log(`  ${"peer".padEnd(15)}${"warm CPU".padStart(17)}${"warm wall".padStart(17)}${"first CPU".padStart(17)}${"first wall".padStart(17)}`);
  for (const p of peers) {
    const cell = (/** @type {Column} */ k) => {
      const v = median(runs[p][k]);
      return `${v.toFixed(0)} (${(v / base[k]).toFixed(2)}×)`.padStart(17);
    };
    console.log(`  ${p.padEnd(15)}${cell("warmCpu")}${cell("warm")}${cell("firstCpu")}${cell("first")}`);
  }
}
