// Repeat backup over the previous backup: backup() with incremental true (compare pages, write
// only the differing ones; "auto" would copy this rollback-journal source in full) against
// incremental false (the full copy), alternating, on a ~300 MiB
// file with 1% and 0.1% of its pages changed. Prints medians of time and of bytes written by this
// process (/proc/self/io: wchar = bytes passed to write(), write_bytes = bytes sent to storage).
//
//   node --import tsx bench/incremental.mjs [MiB=300] [rounds=3]
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { generate } from "./gen.mjs";

const { loadSqlite } = await import("../src/index.ts");
const MIB = Number(process.argv[2] ?? 300);
const ROUNDS = Number(process.argv[3] ?? 3);
const data = join(import.meta.dirname, "data");
const base = join(data, `inc-${MIB}.db`);
generate(base, MIB);

const io = () => Object.fromEntries(readFileSync("/proc/self/io", "utf8").trim().split("\n").map((l) => {
  const [k, v] = l.split(":");
  return [k, Number(v)];
}));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmtMiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

const sqlite = await loadSqlite();
const srcFile = join(data, "inc-src.db");
const prevFile = join(data, "inc-prev.db");
const destFile = join(data, "inc-dest.db");

for (const fraction of [0.01, 0.001]) {
  copyFileSync(base, srcFile);
  copyFileSync(base, prevFile); // the previous backup: the same pages
  const src = sqlite.open(srcFile);
  const pages = src.get("PRAGMA page_count").page_count;
  const rows = src.get("SELECT max(id) AS n FROM items").n;
  // Update rows spread evenly over the table until about `fraction` of the pages differ.
  const every = Math.max(1, Math.round(rows / (pages * fraction)));
  src.run("UPDATE items SET n = n + 1 WHERE id % ? = 0", [every]);
  const times = { auto: [], full: [] };
  const wchar = { auto: [], full: [] };
  const wbytes = { auto: [], full: [] };
  let written = 0;
  // One untimed run of each first: both paths JIT-compiled before the clock starts.
  for (const incremental of [true, false]) {
    copyFileSync(prevFile, destFile);
    await sqlite.backup(src, destFile, { incremental });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 ? ["full", "auto"] : ["auto", "full"]) {
      rmSync(`${destFile}-journal`, { force: true });
      copyFileSync(prevFile, destFile);
      const before = io();
      const t0 = performance.now();
      const r = await sqlite.backup(src, destFile, { incremental: mode === "auto" });
      times[mode].push(performance.now() - t0);
      const after = io();
      wchar[mode].push(after.wchar - before.wchar);
      wbytes[mode].push(after.write_bytes - before.write_bytes);
      if (mode === "auto") {
        if (!r.incremental) throw new Error("the incremental path did not run");
        written = r.pagesWritten;
      }
    }
  }
  src.close();
  const a = median(times.auto);
  const f = median(times.full);
  console.log(`${(fraction * 100).toFixed(1)}% changed (${written} of ${pages} pages, ${fmtMiB(pages * 4096)}): ` +
    `auto ${a.toFixed(0)} ms [${times.auto.map((t) => t.toFixed(0)).join(", ")}], ` +
    `full ${f.toFixed(0)} ms [${times.full.map((t) => t.toFixed(0)).join(", ")}], ratio ${(f / a).toFixed(1)}x; ` +
    `written (wchar) auto ${fmtMiB(median(wchar.auto))}, full ${fmtMiB(median(wchar.full))}; ` +
    `write_bytes auto ${fmtMiB(median(wbytes.auto))}, full ${fmtMiB(median(wbytes.full))}`);
}
for (const f of [srcFile, prevFile, destFile]) rmSync(f, { force: true });
