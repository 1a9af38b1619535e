// Every event-loop block during one backup() (a setImmediate chain runs beside it): the longest
// five, where they fell, and how many exceeded 16 ms. Quicker to repeat than the full harness.
// With a previous backup, the backup goes over a copy of it (the incremental path). SBW_BENCH_WARM=1
// makes one untimed backup of the same kind first: a process's first backup also waits for the
// engine to compile its code paths (docs/performance.md, "Repeat backups").
//   node --import tsx bench/event-loop.mjs [source.sqlite] ['{"pagesPerStep":-1}'] [previous.sqlite]
import { copyFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSqlite } from "../src/index.ts";

const src = process.argv[2] || join(import.meta.dirname, "data/db330.sqlite");
/** @type {import("../src/index.ts").BackupOptions} */
const options = JSON.parse(process.argv[3] ?? "{}");
const dst = join(tmpdir(), `sbw-event-loop-${process.pid}.sqlite`);
if (process.argv[4]) copyFileSync(process.argv[4], dst);
const sqlite = await loadSqlite();
const source = sqlite.open(src, { readonly: true });

if (process.env.SBW_BENCH_WARM) {
  if (process.argv[4]) copyFileSync(process.argv[4], `${dst}.warm`);
  await sqlite.backup(source, `${dst}.warm`, options);
  rmSync(`${dst}.warm`, { force: true });
}
/** @type {number[]} */
const gaps = [];
let last = performance.now();
let running = true;
const tick = () => {
  const now = performance.now();
  gaps.push(now - last);
  last = now;
  if (running) setImmediate(tick);
};
setImmediate(tick);
const t0 = performance.now();
try {
  const { steps, pagesWritten } = await sqlite.backup(source, dst, options);
  gaps.push(performance.now() - last);
  const top = gaps.map((g, i) => /** @type {const} */ ([g, i])).sort((a, b) => b[0] - a[0]).slice(0, 5);
  console.log(JSON.stringify({
    ms: Math.round(performance.now() - t0), steps, pagesWritten,
    longest: top.map(([g, i]) => `${g.toFixed(1)} ms at gap ${i} of ${gaps.length}`),
    over16: gaps.filter((g) => g > 16).length,
  }));
} finally {
  running = false;
  rmSync(dst, { force: true });
  rmSync(`${dst}-journal`, { force: true });
}
