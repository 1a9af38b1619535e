// Streams: backupToStream into a consumer that discards, against fs.createReadStream of the same
// file (the limit: the bytes straight from the page cache); both routes (held or spooled for a
// rollback-journal source, the snapshot for a WAL one); the same through gzip against
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
const args = argv.filter((a, i) => !a.startsWith("--") && i !== onlyAt + 1);
const MIB = Number(args[0] ?? 330);
const ROUNDS = Number(args[1] ?? 5);
const PARTS = onlyAt >= 0 ? argv[onlyAt + 1].split(",") : ["out", "gzip", "restore", ...(argv.includes("--big") ? ["big"] : [])];
for (const p of PARTS) if (!["out", "gzip", "restore", "big"].includes(p)) throw new Error(`--only: unknown part "${p}"`);
const json = { node: process.version, runtime: "", mib: 0, rounds: ROUNDS, out: [], gzip: null, restore: null, big: [] };
const { loadSqlite } = await import(join(import.meta.dirname, "../src/index.ts"));
const sqlite = await loadSqlite();
const data = join(import.meta.dirname, "data");
mkdirSync(data, { recursive: true });
const base = join(data, `inc-${MIB}.db`);
generate(base, MIB);
const rollback = join(data, "stream-rollback.db");
const wal = join(data, "stream-wal.db");
copyFileSync(base, rollback);
copyFileSync(base, wal);
execFileSync("sqlite3", [wal, "PRAGMA journal_mode=WAL"]);
const size = statSync(rollback).size;
const runtime = `${globalThis.Bun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`}, locking ${sqlite.locking}`;
console.log(`${runtime}: ${(size / 2 ** 20).toFixed(0)} MiB, ${ROUNDS} rounds`);
json.runtime = runtime;
json.mib = size / 2 ** 20;

/** Runs fn (async) with RSS sampled every 5 ms: [ms, peak RSS over the start, MiB]. */
async function measured(fn) {
  globalThis.gc?.();
  const rss = () => process.memoryUsage().rss;
  const start = rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 5);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - t0;
  peak = Math.max(peak, rss());
  return [ms, (peak - start) / 2 ** 20];
}

async function discard(stream) {
  const reader = stream.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.length;
  }
}
async function discardNode(readable) {
  let n = 0;
  for await (const chunk of readable) n += chunk.length;
  return n;
}

/**
 * Runs fn `rounds` times after a warm-up and prints the median; with `limit` (a name and a
 * function) runs that too in every round just before fn, so the two see the same machine, and
 * prints the median of the per-round ratios limit / fn.
 */
async function bench(name, fn, limit) {
  const times = [];
  const limitTimes = [];
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
function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

// Out: both routes against the limit, fs.createReadStream of the same file.
if (PARTS.includes("out")) {
  const readStream = ["fs.createReadStream", () => discardNode(createReadStream(rollback))];
  json.out.push({ route: "reference", ...await bench("fs.createReadStream, 1 MiB chunks", () => discardNode(createReadStream(rollback, { highWaterMark: 1 << 20 })), readStream) });
  {
    // The held route where other processes' writers wait for a read lock of ours (real file
    // locks, or node:sqlite's from Node 22.12, as the source guard decides); else the spool.
    const [major, minor] = process.versions.node.split(".").map(Number);
    const route = sqlite.locking === "os" || globalThis.Bun || major > 22 || (major === 22 && minor >= 12) ? "held" : "spool";
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
    await pipeline(Readable.fromWeb(sqlite.backupToStream(db).pipeThrough(new CompressionStream("gzip"))), createWriteStream(gz));
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

// A slow consumer of a 1 GiB database: 1 MiB/s for 10 s, then all at once.
if (PARTS.includes("big")) {
  const big = join(data, "stream-1g.db");
  if (!existsSync(big)) execFileSync("sqlite3", [big, "PRAGMA journal_mode=WAL; CREATE TABLE b(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8) INSERT INTO b SELECT zeroblob(1 << 27) FROM n;"]);
  // The peak moves with when the collector runs: a few runs (at most 3, each takes ~15 s).
  const runs = Math.min(ROUNDS, 3);
  for (const [mode, route] of [["WAL", "snapshot"], ["rollback journal", "held"]]) {
    if (mode !== "WAL") execFileSync("sqlite3", [big, "PRAGMA journal_mode=DELETE"]);
    const db = sqlite.open(big);
    const row = { mode, route, ms: [], rssMiB: [] };
    for (let run = 0; run < runs; run++) {
      const [ms, mib] = await measured(async () => {
        const reader = sqlite.backupToStream(db, { verifySource: false }).getReader();
        const t0 = performance.now();
        while (performance.now() - t0 < 10_000) {
          await reader.read();
          await new Promise((r) => setTimeout(r, 1000));
        }
        while (!(await reader.read()).done);
      });
      row.ms.push(ms);
      row.rssMiB.push(mib);
      console.log(`  1 GiB, ${mode} (${route}), 1 MiB/s for 10 s then all: ${(ms / 1000).toFixed(1)} s, rss +${mib.toFixed(0)} MiB`);
    }
    db.close();
    json.big.push(row);
  }
  execFileSync("sqlite3", [big, "PRAGMA journal_mode=WAL"]);
}

for (const f of [rollback, wal, `${wal}-wal`, `${wal}-shm`]) rmSync(f, { force: true });
if (argv.includes("--json")) console.log(JSON.stringify(json));
