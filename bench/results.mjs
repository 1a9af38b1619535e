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

/** The machine a part runs on; `dataDir` is where its files live (for the file system's type). */
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
  const git = (...args) => execFileSync("git", args, { cwd: rootDir, encoding: "utf8" }).trim();
  return {
    commit: git("rev-parse", "--short", "HEAD"),
    dirty: git("status", "--porcelain", "--", "src", "wasm", "build.sh") !== "",
  };
}

/** Saves a part's record (adding the date, the commit and the machine unless given). */
export function saveResult(record) {
  mkdirSync(resultsDir, { recursive: true });
  const full = { date: new Date().toISOString(), ...gitState(), machine: machine(), ...record };
  writeFileSync(join(resultsDir, `${record.part}.json`), `${JSON.stringify(full, null, 1)}\n`);
  return full;
}

/** Every saved record, by part. */
export function loadResults() {
  const out = {};
  let files = [];
  try {
    files = readdirSync(resultsDir).filter((f) => f.endsWith(".json"));
  } catch {
    return out;
  }
  for (const f of files) {
    const r = JSON.parse(readFileSync(join(resultsDir, f), "utf8"));
    out[r.part] = r;
  }
  return out;
}

export const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
/** 1234.5 → "1,235" */
export const thousands = (x, d = 0) => (x === null || x === undefined ? "–" : x.toLocaleString("en", { minimumFractionDigits: d, maximumFractionDigits: d }));
