// One measurement in a fresh process: `node [--import tsx] cases.mjs <workload> <peer> <json>`.
// Prints one JSON line: { ms, peakRssDeltaMiB, maxBlockMs?, ... }. Only the operation itself is
// timed; loading libraries and preparing in-memory sources happen before the clock starts.
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [workload, peer, argJson] = process.argv.slice(2);
if (!workload || !peer) throw new Error("usage: node [--import tsx] cases.mjs <workload> <peer> <json>");
/** @type {{ src: string, dst: string }} the source and destination files */
const { src, dst } = JSON.parse(argJson ?? "{}");

/**
 * A prepared measurement: run() is timed; after() adds what it returns to the printed line.
 * @typedef {{ run: () => unknown, after?: () => Record<string, unknown> }} Case
 */

const MiB = 1024 * 1024;
/** A field of /proc/self/status (e.g. "VmHWM:") in bytes. */
const status = (/** @type {string} */ field) => {
  const line = /** @type {string} */ (readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(field)));
  return Number(/** @type {RegExpExecArray} */ (/(\d+) kB/.exec(line))[1]) * 1024;
};
/** Resets VmHWM to the current RSS, so peaks measure only what follows. */
const resetPeak = () => {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
};

/**
 * Longest gap between two turns of the event loop while `fn` runs: what a UI or server would
 * feel. A setImmediate chain records the gaps; a backup loop that yields every step lets it run.
 * @param {() => unknown} fn
 */
async function withBlockMonitor(fn) {
  let last = performance.now();
  let max = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await fn();
  } finally {
    running = false;
  }
  max = Math.max(max, performance.now() - last);
  return max;
}

/** @param {() => Promise<Case>} prepare */
async function measure(prepare) {
  const { run, after } = await prepare();
  if (global.gc) global.gc();
  const peakOk = resetPeak();
  const baseline = status(peakOk ? "VmHWM:" : "VmRSS:"); // the RSS the peak was reset to
  const t0 = performance.now();
  const maxBlockMs = await withBlockMonitor(run);
  const ms = performance.now() - t0;
  const peak = status("VmHWM:");
  const extra = (await after?.()) ?? {};
  return { ms, maxBlockMs, baselineMiB: baseline / MiB, peakRssDeltaMiB: peakOk ? (peak - baseline) / MiB : null, ...extra };
}

// ---- ours ----
/**
 * @param {string} wl the workload
 * @param {string} [kind] "onestep": one step of every page
 * @returns {Promise<Case>}
 */
async function oursCase(wl, kind) {
  const { loadSqlite } = await import("../src/index.ts");
  // SBW_BENCH_WASM: another build of the module (e.g. -O3) for an A/B run
  const sqlite = await loadSqlite(process.env.SBW_BENCH_WASM ? { wasm: process.env.SBW_BENCH_WASM } : undefined);
  const opts = kind === "onestep" ? { pagesPerStep: -1 } : {};
  /** @type {import("../src/index.ts").BackupResult | undefined} */
  let result;
  const after = () => ({ steps: result?.steps });
  if (wl === "file2file" || wl === "big" || wl === "overwrite") {
    const source = sqlite.open(src, { readonly: true });
    return { run: async () => { result = await sqlite.backup(source, dst, opts); }, after };
  }
  if (wl === "mem2file") {
    const file = sqlite.open(src, { readonly: true });
    const mem = sqlite.open(":memory:");
    await sqlite.backup(file, mem, { pagesPerStep: -1 }); // untimed: the source, in memory
    file.close();
    return { run: async () => { result = await sqlite.backup(mem, dst, opts); }, after };
  }
  if (wl === "file2mem") {
    const source = sqlite.open(src, { readonly: true });
    const mem = sqlite.open(":memory:");
    return { run: async () => { result = await sqlite.backup(source, mem, opts); }, after };
  }
  if (wl === "load") {
    const { readFile } = await import("node:fs/promises");
    const url = new URL("../wasm/sqlite3.wasm", import.meta.url);
    return {
      run: async () => {
        // compile + instantiate + sqlite3_initialize from bytes on disk: a fresh instance
        await loadSqlite({ wasm: await readFile(url) });
      },
    };
  }
  throw new Error(`no case ${wl}/${peer}`);
}

// ---- better-sqlite3 (native) ----
/**
 * @param {string} wl
 * @param {string} [kind]
 * @returns {Promise<Case>}
 */
async function bs3Case(wl, kind) {
  /** @type {typeof import("better-sqlite3")} */
  const Database = require("better-sqlite3");
  // Its backup() steps 100 pages by default; the progress callback's return value sets the next step.
  const opts = kind === "onestep" ? { progress: () => 0x7fffffff } : {};
  if (wl === "file2file" || wl === "big" || wl === "overwrite") {
    const db = new Database(src, { readonly: true });
    return { run: () => db.backup(dst, opts) };
  }
  if (wl === "mem2file") {
    const db = new Database(readFileSync(src)); // deserialize: an in-memory database
    return { run: () => db.backup(dst, opts) };
  }
  if (wl === "file2mem") {
    // backup() only writes files; the native way into memory is to deserialize the bytes
    return { run: () => { new Database(readFileSync(src)).close(); } };
  }
  throw new Error(`no case ${wl}/${peer}`);
}

// ---- node:sqlite (Node 22) ----
/**
 * @param {string} wl
 * @param {string} [kind]
 * @returns {Promise<Case>}
 */
async function nodeSqliteCase(wl, kind) {
  const { DatabaseSync, backup } = await import("node:sqlite");
  const opts = kind === "onestep" ? { rate: 0x7fffffff } : {}; // default rate: 100 pages per step
  if (wl === "file2file" || wl === "overwrite") {
    const db = new DatabaseSync(src, { readOnly: true });
    return { run: () => backup(db, dst, opts) };
  }
  if (wl === "mem2file") {
    // No deserialize in Node 22's node:sqlite: copy the rows into a memory database (untimed).
    const db = new DatabaseSync(":memory:");
    db.exec(`ATTACH '${src.replaceAll("'", "''")}' AS s`);
    const schema = db.prepare("SELECT name, sql FROM s.sqlite_schema WHERE sql NOT NULL ORDER BY type = 'index'").all();
    for (const { sql } of schema) db.exec(/** @type {string} */ (sql));
    for (const { name } of db.prepare("SELECT name FROM s.sqlite_schema WHERE type = 'table'").all()) {
      db.exec(`INSERT INTO main."${name}" SELECT * FROM s."${name}"`);
    }
    db.exec("DETACH s");
    return { run: () => backup(db, dst, opts) };
  }
  throw new Error(`no case ${wl}/${peer}`);
}

// ---- @sqlite.org/sqlite-wasm (official; in-memory only in Node) ----
/**
 * @param {string} wl
 * @returns {Promise<Case>}
 */
async function officialCase(wl) {
  const { default: init } = await import("@sqlite.org/sqlite-wasm");
  if (wl === "load") return { run: () => init() };
  const sqlite3 = await init();
  const { capi, wasm, oo1 } = sqlite3;
  const deserialize = (/** @type {Buffer} */ buf) => {
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length); // not a Buffer: it wants a plain Uint8Array
    const db = new oo1.DB(":memory:");
    const p = wasm.allocFromTypedArray(bytes);
    const rc = capi.sqlite3_deserialize(db.pointer, "main", p, bytes.length, bytes.length,
      capi.SQLITE_DESERIALIZE_FREEONCLOSE | capi.SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc) throw new Error(`sqlite3_deserialize: ${rc}`);
    return db;
  };
  if (wl === "mem2file") {
    const db = deserialize(readFileSync(src));
    return { run: () => writeFileSync(dst, capi.sqlite3_js_db_export(db)) };
  }
  if (wl === "file2mem") return { run: () => deserialize(readFileSync(src)).close() };
  throw new Error(`no case ${wl}/${peer}`);
}

// ---- sql.js ----
/**
 * @param {string} wl
 * @returns {Promise<Case>}
 */
async function sqljsCase(wl) {
  const { default: init } = await import("sql.js");
  const SQL = await init();
  if (wl === "file2file") return { run: () => writeFileSync(dst, new SQL.Database(readFileSync(src)).export()) };
  if (wl === "mem2file") {
    const db = new SQL.Database(readFileSync(src));
    return { run: () => writeFileSync(dst, db.export()) };
  }
  if (wl === "file2mem") return { run: () => new SQL.Database(readFileSync(src)).close() };
  throw new Error(`no case ${wl}/${peer}`);
}

// ---- the physical limits ----
/**
 * @param {string} wl
 * @param {string} [kind] "cp": the cp command rather than copyFileSync
 * @returns {Promise<Case>}
 */
async function fsCase(wl, kind) {
  if (wl === "file2file" || wl === "big" || wl === "overwrite") {
    if (kind === "cp") return { run: () => execFileSync("cp", [src, dst]) };
    return { run: () => copyFileSync(src, dst) };
  }
  if (wl === "mem2file") {
    const bytes = readFileSync(src);
    return { run: () => writeFileSync(dst, bytes) };
  }
  if (wl === "file2mem") return { run: () => readFileSync(src) };
  throw new Error(`no case ${wl}/${peer}`);
}

const [lib, kind] = /** @type {[string, string?]} */ (peer.split("/"));
/** @type {Record<string, (() => Promise<Case>) | undefined>} */
const peers = {
  ours: () => oursCase(workload, kind),
  "better-sqlite3": () => bs3Case(workload, kind),
  "node:sqlite": () => nodeSqliteCase(workload, kind),
  official: () => officialCase(workload),
  "sql.js": () => sqljsCase(workload),
  fs: () => fsCase(workload, kind),
};
const prepare = peers[lib];
if (!prepare) throw new Error(`unknown peer ${peer}`);
process.stdout.write(`${JSON.stringify(await measure(prepare))}\n`);
