// Streams: backupToStream into a consumer that discards, against fs.createReadStream of the same
// file (the limit: the bytes straight from the page cache); the routes (held, or copied into the
// spool, for a rollback-journal source, the snapshot for a WAL one); the same through gzip against
// `sqlite3 .dump | gzip` and `gzip < file`; restoreFromStream from a file stream against cp +
// fdatasync; and a slow consumer of a 1 GiB source with RSS sampled throughout (big). Each
// timing is the median of `rounds` after an untimed warm-up; "rss +" is the peak RSS during the
// run over the RSS before it. With --json, a last line holds every measurement (bench/run.mjs's
// part "stream" reads it).
//
//   node --import tsx bench/stream.mjs [MiB=330] [rounds=5] [--big | --only out,gzip,restore,big] [--json]
import { execFileSync, execSync } from "node:child_process";
import { copyFileSync, createReadStream, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { datasync, generate } from "./gen.mjs";

const argv = process.argv.slice(2);
const onlyAt = argv.indexOf("--only");
const bigOneAt = argv.indexOf("--big-one");
/** One run of the 1 GiB slow consumer, of this source ("reference", "snapshot", "held"), as a child of this script. */
const BIG_ONE = bigOneAt >= 0 ? argv[bigOneAt + 1] : null;
const args = argv.filter((a, i) => !a.startsWith("--") && !(i > 0 && (i - 1 === onlyAt || i - 1 === bigOneAt)));
const MIB = Number(args[0] ?? 330);
const ROUNDS = Number(args[1] ?? 5);
const PARTS = BIG_ONE ? ["big"] : onlyAt >= 0 ? /** @type {string} */ (argv[onlyAt + 1]).split(",") : ["out", "gzip", "restore", ...(argv.includes("--big") ? ["big"] : [])];
for (const p of PARTS) if (!["out", "gzip", "restore", "big"].includes(p)) throw new Error(`--only: unknown part "${p}"`);
/**
 * One measurement of bench(): its median ms, each round's, the peak RSS over the start (MiB).
 * @typedef {{ name: string, ms: number, times: number[], rssMiB: number }} Bench
 */
/**
 * What bench() adds with a limit: its name, its median ms, the median of the per-round ratios
 * limit / this, and those ratios.
 * @typedef {{ limit: string, limitMs: number, ratio: number, ratios: number[] }} Limited
 */
/**
 * The 1 GiB slow consumer of one source, run by run: ms, and the RSS peaks while slow and in all (MiB).
 * @typedef {{ mode: string, route: string, ms: number[], slowMiB: number[], rssMiB: number[] }} BigRow
 */
/**
 * What --json prints on the last line: each part run, else its empty value.
 * @typedef {object} Output
 * @property {string} node
 * @property {string} runtime
 * @property {number} mib
 * @property {number} rounds
 * @property {(Bench & Limited & { route: string })[]} out
 * @property {{ textMiB: number, ours: Bench & { size: number }, dump: Bench & { size: number }, raw: Bench & { size: number } } | null} gzip sizes as fractions of the file's
 * @property {(Bench & Limited) | null} restore
 * @property {BigRow[]} big
 */
/** @type {Output} */
const json = { node: process.version, runtime: "", mib: 0, rounds: ROUNDS, out: [], gzip: null, restore: null, big: [] };
/** @type {typeof import("../src/index.ts")} */
const { loadSqlite } = await import(join(import.meta.dirname, "../src/index.ts"));
const sqlite = await loadSqlite();
const data = join(import.meta.dirname, "data");
mkdirSync(data, { recursive: true });
const base = join(data, `inc-${MIB}.db`);
const rollback = join(data, "stream-rollback.db");
const wal = join(data, "stream-wal.db");
// Only the 1 GiB slow consumer (big) needs no copy of the database.
const copies = PARTS.some((p) => p !== "big");
if (copies) {
  generate(base, MIB);
  copyFileSync(base, rollback);
  copyFileSync(base, wal);
  execFileSync("sqlite3", [wal, "PRAGMA journal_mode=WAL"]);
}
const size = copies ? statSync(rollback).size : 0;
const g = /** @type {{ Bun?: { version: string } }} */ (globalThis);
const runtime = `${g.Bun ? `bun ${g.Bun.version}` : `node ${process.version}`}, locking ${sqlite.locking}`;
if (!BIG_ONE) console.log(`${runtime}: ${(size / 2 ** 20).toFixed(0)} MiB, ${ROUNDS} rounds`);
json.runtime = runtime;
json.mib = size / 2 ** 20;

/** Samples RSS into the current measurement; the consumers call it after every chunk (a consumer that never waits lets no timer fire). */
let sampleRss = () => {};

/**
 * Runs fn (async) with RSS sampled every 5 ms and by sampleRss(): [ms, peak RSS over the start, MiB].
 * @param {() => unknown} fn
 * @returns {Promise<[number, number]>}
 */
async function measured(fn) {
  globalThis.gc?.();
  const start = process.memoryUsage.rss();
  let peak = start;
  sampleRss = () => (peak = Math.max(peak, process.memoryUsage.rss()));
  const timer = setInterval(sampleRss, 5);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - t0;
  sampleRss();
  sampleRss = () => {};
  return [ms, (peak - start) / 2 ** 20];
}

/** @param {ReadableStream<Uint8Array>} stream */
async function discard(stream) {
  const reader = stream.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.length;
    sampleRss();
  }
}
/** @param {AsyncIterable<Buffer>} readable */
async function discardNode(readable) {
  let n = 0;
  for await (const chunk of readable) {
    n += chunk.length;
    sampleRss();
  }
  return n;
}

/**
 * Runs fn `rounds` times after a warm-up and prints the median; with `limit` (a name and a
 * function) runs that too in every round just before fn, so the two see the same machine, and
 * prints the median of the per-round ratios limit / fn.
 * @overload
 * @param {string} name
 * @param {() => unknown} fn
 * @returns {Promise<Bench>}
 */
/**
 * @overload
 * @param {string} name
 * @param {() => unknown} fn
 * @param {[string, () => unknown]} limit
 * @returns {Promise<Bench & Limited>}
 */
/**
 * @param {string} name
 * @param {() => unknown} fn
 * @param {[string, () => unknown]} [limit]
 * @returns {Promise<Bench | (Bench & Limited)>}
 */
async function bench(name, fn, limit) {
  /** @type {number[]} */
  const times = [];
  /** @type {number[]} */
  const limitTimes = [];
  /** @type {number[]} */
  const ratios = [];
  let rss = 0;
  for (let round = -1; round < ROUNDS; round++) {
    const [limitMs] = limit ? await measured(limit[1]) : [0];
    const [ms, mib] = await measured(fn);
    if (round < 0) continue;
    times.push(ms);
    if (limit) {
      limitTimes.push(limitMs);
      ratios.push(limitMs / ms);
    }
    rss = Math.max(rss, mib);
  }
  const vs = limit ? `, ${median(ratios).toFixed(2)} of ${limit[0]} (per round: ${ratios.map((r) => r.toFixed(2)).join(" ")})` : "";
  console.log(`  ${name}: median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(" ")}), rss +${rss.toFixed(0)} MiB${vs}`);
  return { name, ms: median(times), times, rssMiB: rss, ...(limit ? { limit: limit[0], limitMs: median(limitTimes), ratio: median(ratios), ratios } : {}) };
}
/**
 * The middle value (the upper one of an even count) of ROUNDS ≥ 1 values.
 * @param {number[]} xs
 */
function median(xs) {
  return /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
}

// Out: both routes against the limit, fs.createReadStream of the same file.
if (PARTS.includes("out")) {
  /** @type {[string, () => unknown]} */
  const readStream = ["fs.createReadStream", () => discardNode(createReadStream(rollback))];
  json.out.push({ route: "reference", ...await bench("fs.createReadStream, 1 MiB chunks", () => discardNode(createReadStream(rollback, { highWaterMark: 1 << 20 })), readStream) });
  {
    // The held route where other processes' writers wait for a read lock of ours (real file
    // locks, or node:sqlite's from Node 22.12, as the source guard decides); else the spool,
    // filled by a file copy that the guard finds nobody wrote meanwhile (an idle source).
    const [major, minor] = /** @type {[number, number, number]} */ (process.versions.node.split(".").map(Number));
    const route = sqlite.locking === "os" || g.Bun || major > 22 || (major === 22 && minor >= 12) ? "held" : "copied";
    const db = sqlite.open(rollback);
    json.out.push({ route, ...await bench(`backupToStream, rollback journal (${route})`, () => discard(sqlite.backupToStream(db)), readStream) });
    db.close();
  }
  {
    const db = sqlite.open(wal);
    // The snapshot route: by default where file locks are real; verifySource: false elsewhere.
    json.out.push({ route: "snapshot", ...await bench("backupToStream, WAL (snapshot)", () => discard(sqlite.backupToStream(db, { verifySource: false })), readStream) });
    db.close();
  }
}

// Through gzip, on a database of text (what compresses: names, JSON, dates) of about 100 MiB.
if (PARTS.includes("gzip")) {
  const text = join(data, "stream-text.db");
  if (!existsSync(text)) {
    execFileSync("sqlite3", [text], {
      input: `CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, created TEXT);
  CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, meta TEXT, at TEXT);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
  INSERT INTO customers SELECT i, 'Customer ' || (i * 7919 % 100003), 'user' || i || '@example.com',
  (CASE i % 5 WHEN 0 THEN 'Berlin' WHEN 1 THEN 'Lisbon' WHEN 2 THEN 'Osaka' WHEN 3 THEN 'Quito' ELSE 'Tartu' END),
  datetime(1700000000 + i * 37, 'unixepoch') FROM n;
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
  INSERT INTO orders SELECT i, i * 13 % 200000 + 1, 'item-' || (i * 31 % 5000), i % 9 + 1, (i % 1000) / 10.0,
  json_object('channel', CASE i % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'app' ELSE 'store' END, 'coupon', i % 17 = 0, 'note', 'order number ' || i),
  datetime(1700000000 + i * 11, 'unixepoch') FROM n;
  CREATE INDEX orders_customer ON orders(customer);\n`,
    });
  }
  const textSize = statSync(text).size;
  const gz = join(data, "stream-text.db.gz");
  const db = sqlite.open(text);
  const ours = await bench(`gzip: backupToStream | CompressionStream, ${(textSize / 2 ** 20).toFixed(0)} MiB of text`, async () => {
    const { createWriteStream } = await import("node:fs");
    const { Readable } = await import("node:stream");
    const { pipeline } = await import("node:stream/promises");
    // The DOM's ReadableStream type, which Node's is at run time.
    const gzipped = /** @type {import("node:stream/web").ReadableStream} */ (sqlite.backupToStream(db).pipeThrough(new CompressionStream("gzip")));
    await pipeline(Readable.fromWeb(gzipped), createWriteStream(gz));
  });
  db.close();
  const ratio = statSync(gz).size / textSize;
  const dump = await bench("gzip: sqlite3 .dump | gzip", () => execSync(`sqlite3 '${text}' .dump | gzip > '${gz}.dump'`));
  const raw = await bench("gzip: gzip < file", () => execSync(`gzip < '${text}' > '${gz}.raw'`));
  const sizes = { ours: ratio, dump: statSync(`${gz}.dump`).size / textSize, raw: statSync(`${gz}.raw`).size / textSize };
  console.log(`  gzip sizes: ours ${(sizes.ours * 100).toFixed(1)}% of ${textSize} bytes, .dump | gzip ${(sizes.dump * 100).toFixed(1)}%, gzip < file ${(sizes.raw * 100).toFixed(1)}%; medians: gzip < file ${(raw.ms / ours.ms).toFixed(2)}x ours, .dump | gzip ${(dump.ms / ours.ms).toFixed(2)}x`);
  json.gzip = { textMiB: textSize / 2 ** 20, ours: { ...ours, size: sizes.ours }, dump: { ...dump, size: sizes.dump }, raw: { ...raw, size: sizes.raw } };
  for (const f of [gz, `${gz}.dump`, `${gz}.raw`]) rmSync(f, { force: true });
}

// Back: restoreFromStream of a file stream into a new file, against cp + fdatasync.
if (PARTS.includes("restore")) {
  const dest = join(data, "stream-restored.db");
  /** @type {[string, () => unknown]} */
  const cp = ["cp + fdatasync", () => {
    rmSync(dest, { force: true });
    copyFileSync(rollback, dest);
    datasync(dest);
  }];
  json.restore = await bench("restoreFromStream(fs.createReadStream) into a new file", async () => {
    rmSync(dest, { force: true });
    await sqlite.restoreFromStream(createReadStream(rollback, { highWaterMark: 1 << 20 }), dest);
  }, cp);
  rmSync(dest, { force: true });
}

// A slow consumer of a 1 GiB database: 1 MiB/s for 10 s, then all at once; the same consumer of
// fs.createReadStream (1 MiB chunks) is the reference. RSS is sampled every 5 ms while the
// consumer waits, and after every chunk while it reads at once (no timer fires then). Each source
// first gives a few chunks, untimed, so that what a process pays once (the module's first load,
// compiling, first touches of the heap) is not counted; each run is a process of its own (RSS
// freed by one run would hide the next one's).
if (PARTS.includes("big")) {
  const big = join(data, "stream-1g.db");
  if (!existsSync(big)) execFileSync("sqlite3", [big, "PRAGMA journal_mode=WAL; CREATE TABLE b(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8) INSERT INTO b SELECT zeroblob(1 << 27) FROM n;"]);
  /**
   * Reads `next()` (true at the end) at 1 MiB/s for 10 s, then at once: [ms, RSS peak while slow, RSS peak, MiB over the start].
   * @param {() => Promise<boolean>} next
   * @returns {Promise<[number, number, number]>}
   */
  async function slowThenFast(next) {
    globalThis.gc?.();
    const start = process.memoryUsage.rss();
    let peak = start;
    const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
    const timer = setInterval(sample, 5);
    const t0 = performance.now();
    while (performance.now() - t0 < 10_000) {
      await next();
      await new Promise((r) => setTimeout(r, 1000));
    }
    clearInterval(timer);
    sample();
    const slow = peak;
    while (!(await next())) sample();
    sample();
    return [performance.now() - t0, (slow - start) / 2 ** 20, (peak - start) / 2 ** 20];
  }
  /** @typedef {[next: () => Promise<boolean>, stop: () => unknown]} Reading */
  /** @returns {Reading} */
  const webNext = (/** @type {ReadableStream<Uint8Array>} */ stream) => {
    const reader = stream.getReader();
    return [async () => (await reader.read()).done, () => reader.cancel()];
  };
  /** @returns {Reading} */
  const nodeNext = (/** @type {import("node:fs").ReadStream} */ readable) => {
    const it = readable[Symbol.asyncIterator]();
    return [async () => (await it.next()).done === true, () => readable.destroy()];
  };
  /** @type {[mode: string, route: string][]} */
  const sources = [["fs.createReadStream", "reference"], ["WAL", "snapshot"], ["rollback journal", "held"]];
  if (BIG_ONE) {
    const [mode, route] = /** @type {[string, string]} */ (sources.find(([, r]) => r === BIG_ONE));
    const db = route === "reference" ? null : sqlite.open(big);
    const open = () => (db ? webNext(sqlite.backupToStream(db, { verifySource: false })) : nodeNext(createReadStream(big, { highWaterMark: 1 << 20 })));
    const [warm, stop] = open();
    for (let i = 0; i < 3; i++) await warm();
    await stop();
    const [ms, slow, mib] = await slowThenFast(open()[0]);
    db?.close();
    console.log(JSON.stringify({ mode, route, ms, slow, mib }));
    process.exit(0);
  }
  // The peak moves with when the collector runs: a few runs (at most 3, each takes ~11 s).
  const runs = Math.min(ROUNDS, 3);
  for (const [mode, route] of sources) {
    execFileSync("sqlite3", [big, `PRAGMA journal_mode=${mode === "WAL" ? "WAL" : "DELETE"}`]);
    /** @type {BigRow} */
    const row = { mode, route, ms: [], slowMiB: [], rssMiB: [] };
    for (let run = 0; run < runs; run++) {
      const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, "--big-one", route], { encoding: "utf8" });
      const { ms, slow, mib } = /** @type {{ ms: number, slow: number, mib: number }} */ (JSON.parse(/** @type {string} */ (out.trim().split("\n").at(-1))));
      row.ms.push(ms);
      row.slowMiB.push(slow);
      row.rssMiB.push(mib);
      console.log(`  1 GiB, ${mode} (${route}), 1 MiB/s for 10 s then all: ${(ms / 1000).toFixed(1)} s, rss +${slow.toFixed(0)} MiB while slow, +${mib.toFixed(0)} MiB in all`);
    }
    json.big.push(row);
  }
  execFileSync("sqlite3", [big, "PRAGMA journal_mode=WAL"]);
}

for (const f of [rollback, wal, `${wal}-wal`, `${wal}-shm`]) rmSync(f, { force: true });
if (argv.includes("--json")) console.log(JSON.stringify(json));
