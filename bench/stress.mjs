// Stress: are backups of a live source, written by a native sqlite3 process, ever corrupt? Per
// runtime, a child process backs up the source read-only in a loop for a time budget while the
// native CLI commits ~50 transactions/s and checkpoints. Every resolved backup is copied aside and
// judged by the native CLI (integrity_check and two application invariants); a rejected backup
// counts as refused. Exits 1 if any copy is corrupt, 2 if the run itself was not sound (writer
// died, source broken, child crashed, runtime missing). Timings are printed, never judged.
//
//   node bench/stress.mjs [--seconds 20] [--runtimes node20,node22,node24,node26,bun,deno]
//     [--checkpoint truncate|restart|passive|auto|none] [--mode wal|delete] [--mib 50]
//     [--rate 50] [--busy-ms N] [--pending 4] [--keep 5] [--kept-dir bench/data/stress-kept] [--seed 1]
//     [--dist dist/index.js] [--control on]
//   (each flag also as an env var: --kept-dir → SBW_STRESS_KEPT_DIR; `npm run build` first)
//
// --dist measures another build (e.g. a commit built in another directory): dist/ here follows
// whoever ran `npm run build` last. The header line says which build ran. --control on adds a
// fourth kind, the raw Backup.step() loop (unguarded, one to one with C): without real locks its
// copies should come out torn now and then, which shows this workload and judge can catch tearing.
// Control copies are counted apart and never fail the run.
//
// Runtime labels are those of test/runtimes/index.mjs, plus "deno-ffi" (Deno with --allow-ffi,
// so real file locks). Plain "deno" runs without --allow-ffi: no real locks, the source guard.
import { execFile, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const SELF = fileURLToPath(import.meta.url);
const REPO = join(dirname(SELF), "..");
const SQLITE3 = "/usr/bin/sqlite3";
const ROWS = 200_000;
const BALANCE = 1000;
const SUM = ROWS * BALANCE;
const PAD = 1000; // bytes of randomblob per log row
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The run's settings (the flags).
 * @typedef {object} Config
 * @property {number} seconds
 * @property {string[]} runtimes
 * @property {string} checkpoint
 * @property {string} mode
 * @property {number} mib
 * @property {number} rate
 * @property {number | undefined} busyMs
 * @property {number} pending
 * @property {number} keep
 * @property {string} keptDir
 * @property {number} seed
 * @property {boolean} control
 */
/**
 * What the parent gives a child (JSON on its command line).
 * @typedef {{ dist: string, source: string, work: string, copies: string, seconds: number, pending: number, busyMs: number | undefined, control: boolean }} ChildConfig
 */
/**
 * The lines a child prints: hello first, then one per backup, then end.
 * @typedef {{ hello: true, end?: undefined, locking: string, version: string }} HelloLine
 * @typedef {{ end: true, hello?: undefined, waitedMs: number, leftovers: string[] }} EndLine
 * @typedef {{ hello?: undefined, end?: undefined, i: number, kind: string, ms: number }} BackupLine
 * @typedef {BackupLine & { ok: false, code: string, message: string }} RefusedLine
 * @typedef {BackupLine & { ok: true, copyError: string }} UncopiedLine a backup that resolved, but copying its result failed
 * @typedef {BackupLine & { ok: true, copyError?: undefined, copy: string, sidecars: string[], restarts: number, incremental: boolean, pagesWritten: number | undefined }} CopiedLine
 * @typedef {HelloLine | EndLine | RefusedLine | UncopiedLine | CopiedLine} ChildLine
 */
/** @typedef {import("node:child_process").ChildProcess} ChildProcess */

// ---------------------------------------------------------------------------------------------
// The child: one runtime's backups. Prints one JSON line per backup on stdout.

/** @param {ChildConfig} config */
async function child({ dist, source, work, copies, seconds, pending, busyMs, control }) {
  const say = (/** @type {ChildLine} */ o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  /** @type {typeof import("../src/index.ts")} a build of the library */
  const { loadSqlite } = await import(dist);
  const sqlite = await loadSqlite();
  const g = /** @type {{ Deno?: { version: { deno: string } }, Bun?: { version: string } }} */ (globalThis);
  const version = g.Deno ? `deno ${g.Deno.version.deno}` : g.Bun ? `bun ${g.Bun.version}` : `node ${process.version}`;
  say({ hello: true, locking: sqlite.locking, version });
  // Read-only: a read-write connection that cannot see the writer's locks would take its
  // journal for a hot one (docs/reliability.md).
  const src = sqlite.open(source, { readonly: true });
  // The three everyday destinations: the previous backup (compared page by page), an existing
  // file copied over in full, and a new file.
  const busy = busyMs === undefined ? {} : { busyTimeoutMs: busyMs };
  /** @type {{ kind: string, dest: string | null, options?: import("../src/index.ts").BackupOptions, raw?: boolean }[]} */
  const kinds = [
    { kind: "incremental", dest: join(work, "inc.db"), options: { ...busy } },
    { kind: "full-over", dest: join(work, "full.db"), options: { ...busy, incremental: false } },
    { kind: "new-file", dest: null, options: { ...busy } },
    ...(control ? [{ kind: "control-raw", dest: null, raw: true }] : []),
  ];
  // The control: the raw API, small steps, yielding between them so the writer gets in. With
  // real locks SQLite restarts it on every commit of the writer, so it may never finish: 5 s.
  const rawBackup = async (/** @type {string} */ dest) => {
    const db = sqlite.open(dest);
    const deadline = Date.now() + 5000;
    try {
      const b = sqlite.backupInit(db, "main", src, "main");
      try {
        let r;
        do {
          if (Date.now() > deadline) throw Object.assign(new Error("the raw backup did not finish within 5 s"), { codeName: "TIMEOUT" });
          r = b.step(64);
          await sleep(r === "busy" || r === "locked" ? 10 : 1);
        } while (r !== "done");
      } finally {
        b.finish();
      }
    } finally {
      db.close();
    }
    return { restarts: 0, incremental: false, pagesWritten: undefined };
  };
  const unjudged = () => readdirSync(copies).filter((f) => f.endsWith(".db")).length;
  const end = Date.now() + seconds * 1000;
  let waitedMs = 0;
  for (let i = 0; Date.now() < end; i++) {
    // The parent judges and deletes copies; wait for it rather than fill the disk.
    const w0 = Date.now();
    while (unjudged() >= pending && Date.now() < end) await sleep(20);
    waitedMs += Date.now() - w0;
    if (Date.now() >= end) break;
    const { kind, options, dest: reused, raw } = /** @type {typeof kinds[number]} */ (kinds[i % kinds.length]);
    const dest = reused ?? join(work, `new-${i}.db`);
    const t0 = performance.now();
    let result;
    try {
      result = raw ? await rawBackup(dest) : await sqlite.backup(src, dest, options);
    } catch (err) {
      if (raw) rmSync(dest, { force: true }); // backup() removes a new file it failed to fill; the raw API does not
      const e = /** @type {{ codeName?: string, name?: string, message?: string } | undefined} */ (err);
      say({ i, kind, ok: false, ms: performance.now() - t0, code: e?.codeName ?? e?.name ?? "?", message: String(e?.message ?? e) });
      continue;
    }
    const ms = performance.now() - t0;
    // The copy is what another program would open: the file plus any -wal/-journal beside it.
    const copy = join(copies, `${i}.db`);
    const sidecars = [];
    try {
      for (const s of ["-wal", "-journal"]) {
        if (existsSync(dest + s)) {
          sidecars.push(`${s} (${statSync(dest + s).size} bytes)`);
          copyFileSync(dest + s, `${copy}${s}.part`);
        }
      }
      copyFileSync(dest, `${copy}.part`);
      if (!reused) for (const s of ["", "-wal", "-journal"]) rmSync(dest + s, { force: true });
      for (const s of ["-wal", "-journal"]) if (existsSync(`${copy}${s}.part`)) renameSync(`${copy}${s}.part`, copy + s);
      renameSync(`${copy}.part`, copy); // last: the parent counts *.db files as unjudged
    } catch (e) {
      say({ i, kind, ok: true, ms, copyError: String(/** @type {Error | undefined} */ (e)?.message ?? e) });
      continue;
    }
    say({ i, kind, ok: true, ms, copy, sidecars, restarts: result.restarts, incremental: result.incremental, pagesWritten: result.pagesWritten });
  }
  src.close();
  // Anything left in the work dir besides the two reused destinations was left behind by backup().
  const leftovers = readdirSync(work).filter((f) => !/^(inc|full)\.db(-wal|-shm)?$/.test(f));
  say({ end: true, waitedMs, leftovers });
}

// ---------------------------------------------------------------------------------------------
// The parent: builds the source, runs the writer and one child per runtime, judges the copies.

async function parent() {
  /** @type {{ runtimes: Record<string, string> }} label → executable */
  const { runtimes } = await import(pathToFileURL(join(REPO, "test", "runtimes", "index.mjs")).href);
  /** @type {Record<string, string | undefined>} */
  const labels = { ...runtimes, "deno-ffi": runtimes.deno };
  const args = process.argv.slice(2);
  const known = ["seconds", "runtimes", "checkpoint", "mode", "mib", "rate", "busy-ms", "pending", "keep", "kept-dir", "seed", "dist", "control"];
  for (let k = 0; k < args.length; k += 2) {
    const flag = /** @type {string} */ (args[k]);
    if (!flag.startsWith("--") || !known.includes(flag.slice(2)) || args[k + 1] === undefined) {
      console.error(`unknown or incomplete option ${args[k]}; options: ${known.map((o) => `--${o} V`).join(" ")}`);
      process.exit(2);
    }
  }
  /**
   * A flag's value, else its environment variable's, else dflt.
   * @template [T=undefined]
   * @param {string} name
   * @param {T} [dflt]
   * @returns {string | T}
   */
  const opt = (name, dflt) => {
    const k = args.indexOf(`--${name}`);
    return k >= 0 ? /** @type {string} */ (args[k + 1]) : process.env[`SBW_STRESS_${name.toUpperCase().replace(/-/g, "_")}`] ?? /** @type {T} */ (dflt);
  };
  const num = (/** @type {string} */ name, /** @type {number} */ dflt, /** @type {number} */ min) => {
    const v = Number(opt(name, dflt));
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return v;
  };
  /** @type {Config} */
  const cfg = {
    seconds: num("seconds", 20, 1),
    runtimes: opt("runtimes", "node20,node22,node24,node26,bun,deno").split(",").filter(Boolean),
    checkpoint: opt("checkpoint", "truncate"),
    mode: opt("mode", "wal"),
    mib: num("mib", 50, 8),
    rate: num("rate", 50, 1),
    busyMs: opt("busy-ms") === undefined ? undefined : num("busy-ms", 0, 0), // backup()'s busyTimeoutMs; unset: its default
    pending: num("pending", 4, 1),
    keep: num("keep", 5, 0),
    keptDir: opt("kept-dir", join(REPO, "bench", "data", "stress-kept", new Date().toISOString().replace(/[:.]/g, "-"))),
    seed: num("seed", 1, 0),
    control: opt("control", "off") === "on",
  };
  if (!["truncate", "restart", "passive", "auto", "none"].includes(cfg.checkpoint)) throw new Error("--checkpoint: truncate|restart|passive|auto|none");
  if (!["wal", "delete"].includes(cfg.mode)) throw new Error("--mode: wal|delete");
  for (const l of cfg.runtimes) if (!labels[l]) throw new Error(`unknown runtime ${l}; known: ${Object.keys(labels).join(", ")}`);
  const dist = resolve(opt("dist", join(REPO, "dist", "index.js")));
  if (!existsSync(dist)) throw new Error(`${dist} is missing: npm run build`);

  const tmp = mkdtempSync(join(tmpdir(), "sbw-stress-"));
  // Everything we start, so that every exit path (SIGINT too) kills it and removes tmp.
  /** @type {Set<ChildProcess>} */
  const live = new Set();
  const cleanup = () => {
    for (const p of live) p.kill("SIGKILL");
    live.clear();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  for (const sig of /** @type {const} */ (["SIGINT", "SIGTERM"])) process.on(sig, () => { cleanup(); process.exit(130); });

  console.log(`stress: ${cfg.mode} source of ${cfg.mib} MiB, native writer ~${cfg.rate} tx/s, checkpoint ${cfg.checkpoint}, ` +
    `${cfg.seconds} s per runtime, busyTimeoutMs ${cfg.busyMs ?? "default"}, seed ${cfg.seed}; runtimes ${cfg.runtimes.join(", ")}`);
  console.log(provenance(dist));
  const template = join(tmp, "template.db");
  const t0 = Date.now();
  makeSource(template, cfg);
  console.log(`source: ${(statSync(template).size / 2 ** 20).toFixed(1)} MiB, ${countLogs(template)} log rows, made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await selfTest(template, tmp);

  let corrupt = 0;
  let unsound = 0;
  for (const label of cfg.runtimes) {
    const r = await runRuntime(label, /** @type {string} */ (labels[label]), { cfg, dist, template, tmp, live });
    corrupt += r.corrupt;
    if (!r.sound) unsound++;
  }
  console.log(`\nstress: ${corrupt} corrupt ${corrupt === 1 ? "copy" : "copies"}${unsound ? `, ${unsound} runtime(s) with an unsound run (see above)` : ""}`);
  process.exitCode = corrupt ? 1 : unsound ? 2 : 0;
}

// ---------------------------------------------------------------------------------------------

/**
 * Which build is measured: edits to src/ reach dist/ only with a rebuild, and anyone may rebuild.
 * @param {string} dist
 */
function provenance(dist) {
  const pkg = join(dirname(dist), "..");
  const built = statSync(dist).mtimeMs;
  let head = "no git";
  try {
    head = `HEAD ${execFileSync("git", ["-C", pkg, "rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()}`;
  } catch {}
  const src = join(pkg, "src");
  const newer = existsSync(src) ? readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => statSync(join(src, f)).mtimeMs > built) : [];
  const changed = newer.length ? `${newer.length} src/ file(s) changed since (not in this build): ${newer.slice(0, 5).join(", ")}${newer.length > 5 ? ", …" : ""}` : "src/ unchanged since";
  return `build: ${dist} of ${new Date(built).toISOString()}, ${head}; ${changed}`;
}

const sql = (/** @type {string} */ file, /** @type {string[]} */ ...s) => execFileSync(SQLITE3, ["-batch", "-bail", file, ...s], { encoding: "utf8", maxBuffer: 64 << 20 }).trim();
const countLogs = (/** @type {string} */ file) => Number(sql(file, "SELECT count(*) FROM log"));

/**
 * The source: 200,000 accounts of 1000 each, their index, a log padded to the size, a counter.
 * @param {string} file
 * @param {Config} cfg
 */
function makeSource(file, cfg) {
  sql(file, `PRAGMA journal_mode=DELETE;
    CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${ROWS}) INSERT INTO acct SELECT i, ${BALANCE} FROM c;
    CREATE INDEX acct_bal ON acct(bal);
    CREATE TABLE log(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, amt INTEGER, pad BLOB);
    CREATE TABLE counter(n INTEGER);`);
  const bytes = Number(sql(file, "SELECT page_count*page_size FROM pragma_page_count, pragma_page_size"));
  // A log row of PAD bytes takes about PAD + 30 bytes of a 4 KiB page (4 rows per page).
  const logs = Math.max(1, Math.round((cfg.mib * 2 ** 20 - bytes) / ((4096 - 100) / 4)));
  sql(file, `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${logs})
      INSERT INTO log(a, b, amt, pad) SELECT 0, 0, 0, randomblob(${PAD}) FROM c;
    INSERT INTO counter SELECT count(*) FROM log;
    PRAGMA journal_mode=${cfg.mode};`);
}

/**
 * The native CLI's verdict on a copy: the failed checks (none = consistent) and its counter.
 * @param {string} file
 */
async function judge(file) {
  const q = async (/** @type {string} */ s) => (await promisify(execFile)(SQLITE3, ["-batch", "-bail", file, s], { encoding: "utf8", maxBuffer: 64 << 20 })).stdout.trim();
  const why = (/** @type {unknown} */ err) => {
    const e = /** @type {{ stderr?: string, message?: string } | undefined} */ (err);
    return String(e?.stderr || e?.message || e).trim().split("\n")[0];
  };
  /** @type {string[]} */
  const failed = [];
  /** @type {number | undefined} */
  let n;
  try {
    const ic = await q("PRAGMA integrity_check");
    if (ic !== "ok") {
      const lines = ic.split("\n");
      failed.push(`integrity_check: ${lines.slice(0, 3).join(" / ")}${lines.length > 3 ? ` (+${lines.length - 3} more)` : ""}`);
    }
  } catch (e) {
    failed.push(`integrity_check: ${why(e)}`);
  }
  try {
    const [sum, count] = (await q("SELECT sum(bal), count(*) FROM acct")).split("|").map(Number);
    if (sum !== SUM) failed.push(`sum(bal) = ${sum}, not ${SUM}`);
    if (count !== ROWS) failed.push(`count(acct) = ${count}, not ${ROWS}`);
  } catch (e) {
    failed.push(`acct: ${why(e)}`);
  }
  try {
    const [counter, logs] = (await q("SELECT (SELECT n FROM counter), (SELECT count(*) FROM log)")).split("|").map(Number);
    n = counter;
    if (counter !== logs) failed.push(`counter n = ${counter}, log rows = ${logs}`);
  } catch (e) {
    failed.push(`counter/log: ${why(e)}`);
  }
  return { failed, n };
}

/**
 * A judge that cannot fail is no judge: each check must catch its own kind of damage.
 * @param {string} template
 * @param {string} tmp
 */
async function selfTest(template, tmp) {
  /** @type {[check: string, damage: string][]} */
  const cases = [
    ["sum(bal)", `UPDATE acct SET bal=bal+1 WHERE id=7`],
    ["counter n", `DELETE FROM log WHERE id=(SELECT max(id) FROM log)`],
    ["count(acct)", `DELETE FROM acct WHERE id=8; UPDATE acct SET bal=bal+${BALANCE} WHERE id=9`],
    ["integrity_check", `PRAGMA writable_schema=ON; UPDATE sqlite_schema SET rootpage=(SELECT rootpage FROM sqlite_schema WHERE name='log') WHERE name='acct_bal'`],
  ];
  for (const [check, damage] of cases) {
    const file = join(tmp, "selftest.db");
    copyFileSync(template, file);
    sql(file, damage);
    const { failed } = await judge(file);
    rmSync(file);
    if (!failed.some((f) => f.startsWith(check))) throw new Error(`the judge missed damage it must catch (${check}): ${failed.join("; ") || "judged consistent"}`);
  }
  const { failed } = await judge(template);
  if (failed.length) throw new Error(`the fresh source fails the judge: ${failed.join("; ")}`);
}

/**
 * Seeded, so every runtime sees the same sequence of transactions.
 * @param {number} seed
 */
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The native writer: the CLI fed transactions on stdin at --rate per second. It acknowledges each
 * one with a `.print`, and at most a few wait in the pipe: a writer held up by locks catches up
 * a little, not with a burst of everything that fell due meanwhile.
 * @param {string} file
 * @param {Config} cfg
 * @param {Set<ChildProcess>} live
 */
function startWriter(file, cfg, live) {
  const p = spawn(SQLITE3, ["-batch", file], { stdio: ["pipe", "pipe", "pipe"] });
  live.add(p);
  /** @type {{ stderr: string, exited: { code: number | null, signal: NodeJS.Signals | null } | null, stopping: boolean, sent: number, done: number, checkpoints: number, checkpointsBusy: number }} */
  const state = { stderr: "", exited: null, stopping: false, sent: 0, done: 0, checkpoints: 0, checkpointsBusy: 0 };
  /** @type {Promise<void>} */
  const exited = new Promise((r) => p.on("exit", (code, signal) => { live.delete(p); state.exited = { code, signal }; r(); }));
  p.on("error", (e) => { state.stderr += `${e.message}\n`; });
  p.stderr.on("data", (b) => { state.stderr = (state.stderr + b).slice(-2000); });
  for (const stream of [p.stdin, p.stdout]) stream.on("error", () => {});
  createInterface({ input: p.stdout }).on("line", (line) => {
    if (line === "@") state.done++;
    // wal_checkpoint's row: busy|log frames|checkpointed frames.
    else if (/^\d+\|-?\d+\|-?\d+$/.test(line)) {
      state.checkpoints++;
      if (line.startsWith("1|")) state.checkpointsBusy++;
    }
  });
  // .bail: a failed statement must end the writer, not leave half a transaction committed
  // in autocommit mode (which would break the invariants in the source itself).
  p.stdin.write(`.bail on\n.timeout 10000\n${cfg.checkpoint === "none" ? "PRAGMA wal_autocheckpoint=0;\n" : ""}`);
  const rand = mulberry32(cfg.seed);
  const pick = () => 1 + Math.floor(rand() * ROWS);
  const tx = (/** @type {number} */ n) => {
    const a = pick();
    let b = pick();
    while (b === a) b = pick();
    const amt = 1 + Math.floor(rand() * 100);
    const checkpoint = cfg.mode === "wal" && n % 5 === 0 && !["auto", "none"].includes(cfg.checkpoint) ? `PRAGMA wal_checkpoint(${cfg.checkpoint.toUpperCase()});\n` : "";
    return `BEGIN IMMEDIATE;\nUPDATE acct SET bal=bal-${amt} WHERE id=${a};\nUPDATE acct SET bal=bal+${amt} WHERE id=${b};\n` +
      `INSERT INTO log(a, b, amt, pad) VALUES (${a}, ${b}, ${amt}, randomblob(${PAD}));\nUPDATE counter SET n=n+1;\nCOMMIT;\n${checkpoint}.print @\n`;
  };
  const t0 = Date.now();
  let slots = 0; // transactions that fell due so far
  const timer = setInterval(() => {
    // A slot that falls due while three transactions still wait is skipped, not saved up.
    for (const now = Math.floor(((Date.now() - t0) / 1000) * cfg.rate); slots < now; slots++) {
      if (state.sent - state.done < 3 && !p.stdin.destroyed) p.stdin.write(tx(++state.sent));
    }
  }, 5);
  return {
    state,
    exited,
    stop: async () => {
      state.stopping = true;
      clearInterval(timer);
      if (!state.exited) p.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * One runtime: a fresh copy of the source, the writer, the child; prints its line.
 * @param {string} label
 * @param {string} exe
 * @param {{ cfg: Config, dist: string, template: string, tmp: string, live: Set<ChildProcess> }} run
 */
async function runRuntime(label, exe, { cfg, dist, template, tmp, live }) {
  /** @type {string[]} */
  const problems = [];
  const report = (/** @type {string} */ line) => { console.log(line); for (const p of problems) console.log(`  unsound: ${p}`); };
  if (!existsSync(exe)) {
    problems.push(`not installed at ${exe} (scripts/setup.sh test)`);
    report(`${label}: not run`);
    return { corrupt: 0, sound: false };
  }
  const dir = join(tmp, label);
  const work = join(dir, "work");
  const copies = join(dir, "copies");
  mkdirSync(work, { recursive: true });
  mkdirSync(copies);
  const source = join(dir, "source.db");
  copyFileSync(template, source);
  // The reused destinations start as an earlier backup would have left them.
  copyFileSync(template, join(work, "inc.db"));
  copyFileSync(template, join(work, "full.db"));
  const n0 = Number(sql(source, "SELECT n FROM counter"));

  const writer = startWriter(source, cfg, live);
  await sleep(500); // the writer is under way (a non-empty WAL) before the first backup
  const wroteFrom = Date.now();

  const flags = label.startsWith("deno")
    ? ["run", "--sloppy-imports", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", ...(label === "deno-ffi" ? ["--allow-ffi"] : [])]
    : label === "bun" ? [] : ["--no-concurrent-recompilation"]; // Node 20 can hang at exit after wasm work (docs/runtimes.md)
  /** @type {ChildConfig} */
  const childCfg = { dist: pathToFileURL(dist).href, source, work, copies, seconds: cfg.seconds, pending: cfg.pending, busyMs: cfg.busyMs, control: cfg.control };
  const proc = spawn(exe, [...flags, SELF, "--child", JSON.stringify(childCfg)], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  live.add(proc);
  let stderr = "";
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const childExit = new Promise((r) => proc.on("exit", (code, signal) => { live.delete(proc); r({ code, signal }); }));
  proc.on("error", (e) => { stderr += `${e.message}\n`; });
  proc.stderr.on("data", (b) => { stderr = (stderr + b).slice(-4000); });
  writer.exited.then(() => {
    if (!writer.state.stopping) {
      problems.push(`the writer exited early (${JSON.stringify(writer.state.exited)}): ${writer.state.stderr.trim().split("\n").slice(-2).join(" / ")}`);
      proc.kill("SIGKILL");
    }
  });
  // A child that outlives its budget by far has hung; the run must still end.
  const watchdog = setTimeout(() => { problems.push(`the child did not end within ${cfg.seconds + 120} s; killed`); proc.kill("SIGKILL"); }, (cfg.seconds + 120) * 1000);

  /**
   * @type {{ hello: HelloLine | null, end: EndLine | null, judged: number, corrupt: (CopiedLine & { failed: string[], where: string })[],
   *   refused: RefusedLine[], kinds: Record<string, { ms: number[], refused: number }>, restarts: number, sidecars: number, counters: number[] }}
   */
  const stats = { hello: null, end: null, judged: 0, corrupt: [], refused: [], kinds: {}, restarts: 0, sidecars: 0, counters: [] };
  /** @type {{ judged: number, corrupt: number, refused: number, failures: string[] }} */
  const control = { judged: 0, corrupt: 0, refused: 0, failures: [] };
  let kept = 0;
  let judging = Promise.resolve();
  const judgeOne = async (/** @type {CopiedLine} */ rec) => {
    const { failed, n } = await judge(rec.copy);
    if (rec.kind.startsWith("control")) {
      control.judged++;
      if (failed.length) control.corrupt++, control.failures.push(...failed);
      for (const s of ["", "-wal", "-journal", "-shm"]) rmSync(rec.copy + s, { force: true });
      return;
    }
    stats.judged++;
    if (n !== undefined) stats.counters.push(n);
    if (failed.length) {
      let where = "deleted (over --keep)";
      if (kept < cfg.keep) {
        kept++;
        mkdirSync(cfg.keptDir, { recursive: true });
        where = join(cfg.keptDir, `${label}-${rec.i}-${rec.kind}.db`);
        for (const s of ["", "-wal", "-journal"]) if (existsSync(rec.copy + s)) { copyFileSync(rec.copy + s, where + s); }
      }
      stats.corrupt.push({ ...rec, failed, where });
    }
    for (const s of ["", "-wal", "-journal", "-shm"]) rmSync(rec.copy + s, { force: true });
  };
  for await (const line of createInterface({ input: proc.stdout })) {
    /** @type {ChildLine} */
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      problems.push(`child printed: ${line.slice(0, 200)}`);
      continue;
    }
    if (rec.hello) stats.hello = rec;
    else if (rec.end) stats.end = rec;
    else {
      const k = (stats.kinds[rec.kind] ??= { ms: [], refused: 0 });
      if (!rec.ok) {
        k.refused++;
        if (rec.kind.startsWith("control")) control.refused++;
        else stats.refused.push(rec);
      } else if (rec.copyError) {
        problems.push(`backup #${rec.i} (${rec.kind}) resolved, but copying its result failed: ${rec.copyError}`);
      } else {
        const copied = /** @type {CopiedLine} */ (rec);
        k.ms.push(copied.ms);
        stats.restarts += copied.restarts ?? 0;
        if (copied.sidecars.length) stats.sidecars++;
        judging = judging.then(() => judgeOne(copied));
      }
    }
  }
  const { code, signal } = await childExit;
  clearTimeout(watchdog);
  const wroteFor = (Date.now() - wroteFrom) / 1000 + 0.5;
  await writer.stop();
  await judging;
  if (code !== 0) problems.push(`the child exited with ${signal ?? code}: ${stderr.trim().split("\n").slice(-3).join(" / ")}`);
  if (!stats.end && code === 0) problems.push("the child ended without finishing its loop");
  if (stats.end?.leftovers.length) problems.push(`backup() left files behind: ${stats.end.leftovers.join(", ")}`);
  // The source itself must keep the invariants, or a "corrupt" copy would prove nothing.
  const src = await judge(source);
  if (src.failed.length) problems.push(`the source itself fails: ${src.failed.join("; ")}`);
  const commits = (src.n ?? n0) - n0;
  // A writer held up by real locks is a finding; one that hardly wrote makes the run meaningless.
  if (commits < wroteFor) problems.push(`the writer committed only ${commits} transactions in ${wroteFor.toFixed(0)} s`);

  const locking = stats.hello?.locking ?? "?";
  const groups = countBy(stats.refused.map((r) => r.code));
  const refusedText = stats.refused.length ? ` (${Object.entries(groups).map(([c, k]) => `${c} x${k}`).join(", ")})` : "";
  report(`${label} (locking=${locking}): judged ${stats.judged}, corrupt ${stats.corrupt.length}, refused ${stats.refused.length}${refusedText}`);
  const median = (/** @type {number[]} */ a) => (a.length ? `${Math.round(/** @type {number} */ ([...a].sort((x, y) => x - y)[a.length >> 1]))} ms` : "–");
  const counters = stats.counters.length ? `, counter n in copies ${Math.min(...stats.counters) - n0}..${Math.max(...stats.counters) - n0} of ${commits}` : "";
  console.log(`  ${stats.hello?.version ?? exe}; writer ${commits} commits (${(commits / wroteFor).toFixed(0)}/s), ${writer.state.checkpoints} checkpoints (${writer.state.checkpointsBusy} busy)${counters}; ` +
    `median backup ${Object.entries(stats.kinds).map(([k, v]) => `${k} ${median(v.ms)} (${v.ms.length}+${v.refused} refused)`).join(", ")}; ` +
    `restarts ${stats.restarts}${stats.sidecars ? `; ${stats.sidecars} with -wal/-journal beside` : ""}; waited for the judge ${((stats.end?.waitedMs ?? 0) / 1000).toFixed(1)} s`);
  for (const [m, k] of Object.entries(countBy(stats.refused.map((r) => `${r.code}: ${r.message.slice(0, 300)}`)))) console.log(`  refused x${k}: ${m}`);
  if (cfg.control) {
    const top = Object.entries(countBy(control.failures.map((f) => f.replace(/\d+/g, "N")))).slice(0, 3).map(([f, k]) => `${f} x${k}`);
    console.log(`  control (raw Backup.step, unguarded): judged ${control.judged}, torn ${control.corrupt}, refused ${control.refused}${top.length ? `: ${top.join("; ")}` : ""}`);
  }
  for (const c of stats.corrupt) {
    console.log(`  corrupt #${c.i} (${c.kind}, ${Math.round(c.ms)} ms, restarts ${c.restarts}, incremental ${c.incremental}, ${c.pagesWritten} pages written` +
      `${c.sidecars.length ? `, beside it ${c.sidecars.join(", ")}` : ""}): ${c.failed.join("; ")} → ${c.where}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return { corrupt: stats.corrupt.length, sound: problems.length === 0 };
}

/** @param {string[]} list */
function countBy(list) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

// Last, so that every module-level constant above is initialised first.
if (process.argv[2] === "--child") await child(JSON.parse(/** @type {string} */ (process.argv[3])));
else await parent();
