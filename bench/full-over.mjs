// The full copy (`incremental: false`) over an existing database, the previous backup: the backup
// API journals every old page, and each spill of the destination's cache syncs the journal.
// Rounds alternate nothing: run it on two checkouts in turn for an A/B. Under a runtime with real
// file locks (Node 26, Deno, Bun) the copy goes straight into the destination; without them
// (Node 20-24) into a scratch copy renamed over it (src/ops/backup.ts).
//
//   node --import tsx bench/full-over.mjs [MiB=330] [rounds=5] [checkout=.]
import { copyFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { datasync, generate } from "./gen.mjs";

const MIB = Number(process.argv[2] ?? 330);
const ROUNDS = Number(process.argv[3] ?? 5);
const checkout = resolve(process.argv[4] ?? join(import.meta.dirname, ".."));
/** @type {typeof import("../src/index.ts")} */
const { loadSqlite } = await import(join(checkout, "src/index.ts"));
const data = join(import.meta.dirname, "data");
const base = join(data, `inc-${MIB}.db`);
generate(base, MIB);
const src = join(data, "full-src.db");
const prev = join(data, "full-prev.db");
const dest = join(data, "full-dest.db");
copyFileSync(base, src);
copyFileSync(base, prev);
const sqlite = await loadSqlite();
const db = sqlite.open(src);
db.run("UPDATE items SET n = n + 1 WHERE id % 100 = 0");
/** @type {number[]} */
const times = [];
for (let round = -1; round < ROUNDS; round++) { // round -1: untimed warm-up
  rmSync(`${dest}-journal`, { force: true });
  copyFileSync(prev, dest);
  datasync(dest);
  const t0 = performance.now();
  const r = await sqlite.backup(db, dest, { incremental: false });
  if (r.incremental) throw new Error("not a full copy");
  if (round >= 0) times.push(performance.now() - t0);
}
db.close();
for (const f of [src, prev, dest, `${dest}-journal`]) rmSync(f, { force: true });
const sorted = [...times].sort((a, b) => a - b);
console.log(`${process.version ?? ""} ${sqlite.locking ?? ""} ${checkout}: full copy over the previous backup, ${MIB} MiB: median ` +
  `${/** @type {number} */ (sorted[Math.floor(sorted.length / 2)]).toFixed(0)} ms [${times.map((t) => t.toFixed(0)).join(", ")}]`);
