// One before/after sample in Node: `node --import tsx bench/layers/node.mjs <checkout> <MiB>`;
// prints one JSON line of milliseconds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { fill, journalModes } from "./workloads.mjs";

const [root, mibArg = "100"] = process.argv.slice(2);
if (!root) throw new Error("usage: node --import tsx bench/layers/node.mjs <checkout> [MiB]");
/** @type {typeof import("../../src/index.ts")} */
const { loadSqlite } = await import(pathToFileURL(join(root, "src/index.ts")).href);
const sqlite = await loadSqlite();
const dir = mkdtempSync(join(tmpdir(), "sbw-layers-"));
try {
  const src = sqlite.open(join(dir, "src.db"));
  fill(src, Number(mibArg));
  let t0 = performance.now();
  await sqlite.backup(src, join(dir, "copy.db"), { pagesPerStep: -1 });
  const full = performance.now() - t0;
  /** @type {Record<string, number>} ms by workload */
  const out = { full, ...(await journalModes((name) => sqlite.open(join(dir, name)))) };
  const mem = sqlite.open(":memory:");
  t0 = performance.now();
  await sqlite.backup(src, mem, { pagesPerStep: -1 });
  out.read = performance.now() - t0;
  mem.close();
  src.close();
  console.log(JSON.stringify(out));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
