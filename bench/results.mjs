// The saved results of the benchmark's parts: one JSON file per part in bench/results/ (tracked),
// each with the machine, the command, the date and the commit it was measured at. bench/report.mjs
// renders BENCHMARKS.md from these files only.
//
// A record: { part, title, command, date, commit, dirty, machine, seconds?, versions?,
//   tables: [{ caption?, columns: [..], align?: "lrr…", rows: [[..]] }], notes?: [..] }
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const rootDir = join(benchDir, "..");
export const resultsDir = join(benchDir, "results");

/** @typedef {{ cpu: string, cores: number, memoryGiB: number, os: string, fs?: string }} Machine */
/**
 * One table of a part: its cells as printed, null or undefined as "–".
 * @typedef {{ caption?: string, columns: string[], align?: string, rows: (string | number | null | undefined)[][] }} Table
 */
/**
 * A part's record, as saved in results/<part>.json.
 * @typedef {object} BenchRecord
 * @property {string} part
 * @property {string} title
 * @property {string} command the command that reproduces it
 * @property {string} date ISO 8601
 * @property {string} commit
 * @property {boolean} dirty whether the library's sources differed from the commit
 * @property {Machine | { note: string }} machine a note instead in a record kept from a hand-written page
 * @property {number} [seconds] how long the part took
 * @property {Record<string, string>} [versions] the peers' versions, by name
 * @property {Table[]} tables
 * @property {string[]} [notes]
 * @property {string} [keptFrom] the commit of the hand-written page its results come from
 * @property {unknown} [raw] the measurements as the part printed them
 */
/** @typedef {"date" | "commit" | "dirty" | "machine"} Provenance */


/**
 * The machine a part runs on; `dataDir` is where its files live (for the file system's type).
 * @returns {Machine}
 */
export function machine(dataDir = benchDir) {
  let fs = "";
  try {
    fs = execFileSync("stat", ["-f", "-c", "%T", dataDir], { encoding: "utf8" }).trim();
  } catch {
    // not Linux's stat: left out
  }
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    os: `Linux ${release()}`,
    ...(fs ? { fs } : {}),
  };
}

/** The commit of the working tree, and whether the library's sources differ from it. */
export function gitState() {
  const git = (/** @type {string[]} */ ...args) => execFileSync("git", args, { cwd: rootDir, encoding: "utf8" }).trim();
  return {
    commit: git("rev-parse", "--short", "HEAD"),
    dirty: git("status", "--porcelain", "--", "src", "wasm", "build.sh") !== "",
  };
}

/**
 * Saves a part's record (adding the date, the commit and the machine unless given).
 * @param {Omit<BenchRecord, Provenance> & Partial<Pick<BenchRecord, Provenance>>} record
 * @returns {BenchRecord}
 */
export function saveResult(record) {
  mkdirSync(resultsDir, { recursive: true });
  const full = { date: new Date().toISOString(), ...gitState(), machine: machine(), ...record };
  writeFileSync(join(resultsDir, `${record.part}.json`), `${JSON.stringify(full, null, 1)}\n`);
  return full;
}

/**
 * Every saved record, by part.
 * @returns {Record<string, BenchRecord>}
 */
export function loadResults() {
  /** @type {Record<string, BenchRecord>} */
  const out = {};
  let files = [];
  try {
    files = readdirSync(resultsDir).filter((f) => f.endsWith(".json"));
  } catch {
    return out;
  }
  for (const f of files) {
    const r = /** @type {BenchRecord} */ (JSON.parse(readFileSync(join(resultsDir, f), "utf8")));
    out[r.part] = r;
  }
  return out;
}

/** The median of the numbers in xs (null, undefined and NaN left out); null if none. */
export const median = (/** @type {readonly (number | null | undefined)[]} */ xs) => {
  const s = /** @type {number[]} */ (xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x))).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const at = (/** @type {number} */ i) => /** @type {number} */ (s[i]);
  return s.length % 2 ? at((s.length - 1) / 2) : (at(s.length / 2 - 1) + at(s.length / 2)) / 2;
};
/** x with d decimals; "–" for null, undefined and NaN. */
export const fmt = (/** @type {number | null | undefined} */ x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
/** 1234.5 → "1,235" */
export const thousands = (/** @type {number | null | undefined} */ x, d = 0) => (x === null || x === undefined ? "–" : x.toLocaleString("en", { minimumFractionDigits: d, maximumFractionDigits: d }));
