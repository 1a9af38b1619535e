// Before/after benchmark of a restructuring: the same workloads (workloads.mjs) on two checkouts,
// taking turns, in Node and in headless Chromium; prints medians (ms) as a Markdown table.
//   node bench/layers/run.mjs <before-checkout> <after-checkout> [rounds=5] [MiB=100] [--json] [--only node|browser]
// With --only, one side alone runs (a bisection of a browser row need not pay for Node's). Each
// checkout needs its build (npm run build): its src/ and wasm/sqlite3.wasm are used. The
// checkouts are absolute paths. With --json, one more line follows the table: the run as JSON
// (the checkouts' commits, the medians and every sample), which `bench/run.mjs --only layers
// --from <file>` saves for BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const usage = "usage: node bench/layers/run.mjs <before-checkout> <after-checkout> [rounds] [MiB] [--json] [--only node|browser]";
/** @type {string[]} the arguments left after the options */
const positional = [];
/** @type {string | undefined} */
let only;
for (let i = 2; i < process.argv.length; i++) {
  const a = /** @type {string} */ (process.argv[i]);
  if (a === "--only") only = process.argv[++i];
  else if (a !== "--json") positional.push(a);
}
const json = process.argv.includes("--json");
const [before, after, roundsArg = "5", mibArg = "100"] = positional;
if (!before || !after || (only !== undefined && only !== "node" && only !== "browser")) throw new Error(usage);
const here = import.meta.dirname;
const root = join(here, "..", "..");
const tsx = join(root, "node_modules/.bin/tsx");
/** @typedef {"node" | "browser"} Where */
/** @typedef {{ commit: string, dirty: boolean }} Checkout a checkout's commit; dirty if its src/, wasm/ or build.sh differ from it */
/** @typedef {{ where: string, workload: string, key: string, before: number, after: number }} Row the medians (ms) of a workload */
/**
 * The line --json prints: the checkouts, the medians, every sample, and how long the run took.
 * @typedef {{ before: Checkout, after: Checkout, rounds: number, mib: number, seconds?: number, rows: Row[], samples: Record<Where, Record<"before" | "after", Sample[]>> }} Output
 */
/** @typedef {Record<string, number>} Sample ms by workload, as node.mjs or browser.ts prints it */
/**
 * One sample of a checkout, in a new process.
 * @param {string} side the checkout
 * @param {Where} which
 * @returns {Sample}
 */
const sample = (side, which) => JSON.parse(/** @type {string} */ (execFileSync(tsx, [join(here, `${which}.${which === "node" ? "mjs" : "ts"}`), side, mibArg], { cwd: root, encoding: "utf8" }).trim().split("\n").at(-1)));

const t0 = performance.now();
/** @type {Output["samples"]} */
const runs = { node: { before: [], after: [] }, browser: { before: [], after: [] } };
/** @type {Where[]} */
const wheres = only === "node" || only === "browser" ? [only] : ["node", "browser"];
for (let r = 0; r < Number(roundsArg); r++) {
  for (const which of wheres) {
    /** @type {("before" | "after")[]} */
    const order = r % 2 === 0 ? ["before", "after"] : ["after", "before"];
    for (const side of order) runs[which][side].push(sample(side === "before" ? before : after, which));
  }
  process.stderr.write(`round ${r + 1} done\n`);
}
const median = (/** @type {number[]} */ xs) => /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
/** @type {Record<string, string>} */
const names = {
  full: `${mibArg} MiB → new file (OPFS: openOpfs destination), one step`, txn_delete: "600 transactions, DELETE journal",
  txn_wal: "600 transactions, WAL", read: "file → memory, one step", mainBackup: "main thread backupToOpfs", mainRestore: "main thread restoreFromOpfs",
};
/** @type {Row[]} */
const rows = [];
let md = "| where | workload | before (ms) | after (ms) | after / before |\n|---|---|---:|---:|---:|\n";
for (const which of wheres) {
  for (const key of Object.keys(runs[which].before[0] ?? {})) {
    const b = median(runs[which].before.map((x) => /** @type {number} */ (x[key])));
    const a = median(runs[which].after.map((x) => /** @type {number} */ (x[key])));
    const where = which === "node" ? "Node" : "Chromium OPFS";
    rows.push({ where, workload: names[key] ?? key, key, before: b, after: a });
    md += `| ${where} | ${names[key]} | ${b.toFixed(0)} | ${a.toFixed(0)} | ${(a / b).toFixed(2)} |\n`;
  }
}
console.log(md);
if (json) {
  /** @returns {Checkout} */
  const checkout = (/** @type {string} */ dir) => {
    const git = (/** @type {string[]} */ ...args) => execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
    return { commit: git("rev-parse", "--short", "HEAD"), dirty: git("status", "--porcelain", "--", "src", "wasm", "build.sh") !== "" };
  };
  /** @type {Output} */
  const o = { before: checkout(before), after: checkout(after), rounds: Number(roundsArg), mib: Number(mibArg), seconds: (performance.now() - t0) / 1000, rows, samples: runs };
  console.log(JSON.stringify(o));
}
