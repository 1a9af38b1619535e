// Repeat backup over the previous backup, five ways in the same run, alternating: backup() with
// its defaults (incremental "auto": compare pages, write only the differing ones), the same with
// the destination's pages read in line rather than ahead in the thread pool (its VFS's files
// without readAsync: what the read-ahead is worth), backup() with incremental false (the full copy),
// better-sqlite3's backup() (native SQLite's backup API with its defaults) and a plain copy of the
// whole file (fs.copyFileSync, i.e. copy_file_range as cp does, then fdatasync), on a ~330 MiB file
// with 1% and 0.1% of its pages changed. Before each timed run the previous backup is copied into
// place and fdatasync'ed (untimed), so no run pays for writing back the setup's copy. Prints
// medians of time and of bytes written by this process (/proc/self/io: wchar = bytes passed to
// write(), write_bytes = bytes sent to storage), a Markdown table, and last one JSON line with
// everything (bench/run.mjs saves it as the "incremental" part).
//
//   node --import tsx bench/incremental.mjs [MiB=330] [rounds=5]
//   SBW_BENCH_WASM=path …   another build of the module (an A/B run of a pagediff.c change)
//   SBW_BENCH_FOLIOS=1 …    a sixth mode, "4 KiB folios": the incremental backup over a destination
//                           the page cache holds in 4 KiB folios (python3 evicts it and reads it
//                           back with POSIX_FADV_RANDOM, untimed), not the large folios a
//                           sequential write or read leaves: what those cost the page writes
//                           (docs/performance.md, "Repeat backups")
import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { datasync, generate } from "./gen.mjs";

const { loadSqlite } = await import("../src/index.ts");
const { NodeFsVfs } = await import("../src/node/fs-vfs.ts");
const MIB = Number(process.argv[2] ?? 330);
const ROUNDS = Number(process.argv[3] ?? 5);
const data = join(import.meta.dirname, "data");
const base = join(data, `inc-${MIB}.db`);
generate(base, MIB);

/** This process's I/O counters (/proc/self/io), among them: */
const io = () => /** @type {{ wchar: number, write_bytes: number }} */ (Object.fromEntries(readFileSync("/proc/self/io", "utf8").trim().split("\n").map((l) => {
  const [k, v] = l.split(":");
  return [k, Number(v)];
})));
const median = (/** @type {number[]} */ xs) => /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
const fmtMiB = (/** @type {number} */ b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Node's VFS with files that cannot read off the thread: an incremental backup reads in line. */
class InlineReadsVfs extends NodeFsVfs {
  /** @override */
  name = /** @type {"node-fs"} */ ("node-fs-inline-reads");
  /**
   * @override
   * @param {string | null} name
   * @param {number} flags
   */
  open(name, flags) {
    const r = super.open(name, flags);
    const file = r.file;
    const hide = new Proxy(file, {
      get: (t, k) => {
        const f = /** @type {Record<string | symbol, unknown>} */ (/** @type {unknown} */ (t));
        return k === "readAsync" ? undefined : typeof f[k] === "function" ? f[k].bind(t) : f[k];
      },
    });
    return { ...r, file: hide };
  }
}
const inline = new InlineReadsVfs();
/** @typedef {"incremental" | "inline reads" | "full" | "better-sqlite3" | "cp+fdatasync" | "4 KiB folios"} Mode */
/** @typedef {import("../src/index.ts").BackupResult} BackupResult */
const sqlite = await loadSqlite({ vfs: [inline], ...(process.env.SBW_BENCH_WASM ? { wasm: process.env.SBW_BENCH_WASM } : {}) });
const srcFile = join(data, "inc-src.db");
const prevFile = join(data, "inc-prev.db");
const destFile = join(data, "inc-dest.db");
/** @type {Mode} */
const FOLIOS = "4 KiB folios";
/** @type {Mode[]} */
const MODES = ["incremental", "inline reads", "full", "better-sqlite3", "cp+fdatasync", ...(process.env.SBW_BENCH_FOLIOS ? [FOLIOS] : [])];
/** Drops file (clean: synced) from the page cache and reads it back without readahead: 4 KiB folios. */
const smallFolios = (/** @type {string} */ file) => execFileSync("python3", ["-c", `import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for at in range(0, os.fstat(fd).st_size, 1 << 20): os.pread(fd, 1 << 20, at)`, file]);

// The ratios follow the host's memory bandwidth (the compare reads both files from the page
// cache; native's backup writes the database twice): printed so runs on other hosts compare.
let copyGiBps;
{
  const from = new Uint8Array(64 << 20).fill(1);
  const to = new Uint8Array(64 << 20);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    to.set(from);
    best = Math.min(best, performance.now() - t0);
  }
  copyGiBps = 1 / 16 / (best / 1000);
  console.log(`host: a 64 MiB memory copy takes ${best.toFixed(1)} ms (${copyGiBps.toFixed(1)} GiB/s), best of 5`);
}

const rows = [];
for (const fraction of [0.01, 0.001]) {
  copyFileSync(base, srcFile);
  copyFileSync(base, prevFile); // the previous backup: the same pages
  const src = sqlite.open(srcFile);
  const pages = /** @type {{ page_count: number }} */ (src.get("PRAGMA page_count")).page_count;
  const maxId = /** @type {{ n: number }} */ (src.get("SELECT max(id) AS n FROM items")).n;
  // Update rows spread evenly over the table until about `fraction` of the pages differ.
  const every = Math.max(1, Math.round(maxId / (pages * fraction)));
  src.run("UPDATE items SET n = n + 1 WHERE id % ? = 0", [every]);
  datasync(srcFile);
  datasync(prevFile);
  const native = new Database(srcFile, { readonly: true });
  /** @type {Record<Mode, () => Promise<BackupResult | import("better-sqlite3").BackupProgress> | void>} */
  const run = {
    incremental: () => sqlite.backup(src, destFile),
    [FOLIOS]: () => sqlite.backup(src, destFile),
    "inline reads": async () => {
      const dest = sqlite.open(destFile, { vfs: inline.name });
      try {
        return await sqlite.backup(src, dest);
      } finally {
        dest.close();
      }
    },
    full: () => sqlite.backup(src, destFile, { incremental: false }),
    "better-sqlite3": () => native.backup(destFile),
    "cp+fdatasync": () => {
      copyFileSync(srcFile, destFile);
      datasync(destFile);
    },
  };
  /** @type {() => Record<Mode, number[]>} */
  const byMode = () => /** @type {Record<Mode, number[]>} */ (Object.fromEntries(MODES.map((m) => [m, /** @type {number[]} */ ([])])));
  const times = byMode();
  const wchar = byMode();
  const wbytes = byMode();
  let written = 0;
  const prepare = (/** @type {Mode} */ mode) => {
    rmSync(`${destFile}-journal`, { force: true });
    copyFileSync(prevFile, destFile);
    datasync(destFile);
    if (mode === FOLIOS) smallFolios(destFile);
  };
  // One untimed run of each first: every path JIT-compiled (and loaded) before the clock starts.
  for (const mode of MODES) {
    prepare(mode);
    await run[mode]();
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with another mode, and reverses the order every other round.
    const order = MODES.map((_, i) => /** @type {Mode} */ (MODES[(i + round) % MODES.length]));
    if (round % 2) order.reverse();
    for (const mode of order) {
      prepare(mode);
      const before = io();
      const t0 = performance.now();
      const r = await run[mode]();
      times[mode].push(performance.now() - t0);
      const after = io();
      wchar[mode].push(after.wchar - before.wchar);
      wbytes[mode].push(after.write_bytes - before.write_bytes);
      if (mode === "incremental" || mode === "inline reads" || mode === FOLIOS) {
        const res = /** @type {BackupResult} */ (r);
        if (!res.incremental) throw new Error("the incremental path did not run");
        written = res.pagesWritten;
      }
    }
  }
  native.close();
  src.close();
  const m = /** @type {Record<Mode, number>} */ (Object.fromEntries(MODES.map((k) => [k, median(times[k])])));
  const dbBytes = pages * 4096;
  console.log(`${(fraction * 100).toFixed(1)}% changed (${written} of ${pages} pages written, ${fmtMiB(dbBytes)}):`);
  for (const k of MODES) {
    console.log(`  ${k.padEnd(15)} ${m[k].toFixed(0).padStart(5)} ms [${times[k].map((t) => t.toFixed(0)).join(", ")}]` +
      `  wchar ${fmtMiB(median(wchar[k]))}, write_bytes ${fmtMiB(median(wbytes[k]))}`);
  }
  console.log(`  better-sqlite3 ÷ incremental: ${(m["better-sqlite3"] / m.incremental).toFixed(1)}x`);
  rows.push({
    fraction, written, pages, m, wchar: median(wchar.incremental), times,
    wcharByMode: Object.fromEntries(MODES.map((k) => [k, median(wchar[k])])),
    writeBytesByMode: Object.fromEntries(MODES.map((k) => [k, median(wbytes[k])])),
  });
}
console.log("\n| pages changed | pages written | incremental | in-line reads | full copy | better-sqlite3 backup() | cp + fdatasync | written (wchar), incremental |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${(r.fraction * 100).toFixed(1)}% | ${r.written.toLocaleString("en")} of ${r.pages.toLocaleString("en")} | ` +
    `${r.m.incremental.toFixed(0)} ms | ${r.m["inline reads"].toFixed(0)} ms | ${r.m.full.toFixed(0)} ms | ${r.m["better-sqlite3"].toFixed(0)} ms | ${r.m["cp+fdatasync"].toFixed(0)} ms | ` +
    `${fmtMiB(r.wchar)} (${((100 * r.wchar) / (r.pages * 4096)).toFixed(1)}%) |`);
}
for (const f of [srcFile, prevFile, destFile, `${destFile}-journal`]) rmSync(f, { force: true });
console.log(JSON.stringify({ node: process.version, locking: sqlite.locking, mib: MIB, rounds: ROUNDS, copyGiBps, modes: MODES, rows }));
