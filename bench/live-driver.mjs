// One peer's backups of a live source, for bench/live.mjs: prints one JSON line per backup.
// Usage: <runtime> live-driver.mjs <peer> <source> <destPrefix> <count>
import { createRequire } from "node:module";
const args = process.argv.slice(2);
if (args.length !== 4) throw new Error("usage: <runtime> live-driver.mjs <peer> <source> <destPrefix> <count>");
const [peer, source, prefix, count] = /** @type {[string, string, string, string]} */ (args);
const require = createRequire(import.meta.url);
// The built package, by URL: its types are those of ../src (the check needs no build).
const dist = new URL("../dist/index.js", import.meta.url).href;

/**
 * One backup into dest.
 * @param {string} dest
 * @returns {Promise<string>} the locking it ran with
 */
async function once(dest) {
  if (peer === "ours") {
    /** @type {typeof import("../src/index.ts")} */
    const { loadSqlite } = await import(dist);
    const sqlite = await loadSqlite();
    const db = sqlite.open(source, { readonly: true });
    try {
      await sqlite.backup(db, dest, { busyTimeoutMs: 5000 });
    } finally {
      db.close();
    }
    return sqlite.locking;
  }
  if (peer === "better-sqlite3") {
    /** @type {typeof import("better-sqlite3")} */
    const Database = require("better-sqlite3");
    const db = new Database(source, { readonly: true, timeout: 5000 });
    try {
      await db.backup(dest);
    } finally {
      db.close();
    }
    return "os";
  }
  if (peer === "node:sqlite") {
    const { DatabaseSync, backup } = await import("node:sqlite");
    const db = new DatabaseSync(source, { readOnly: true, timeout: 5000 });
    try {
      await backup(db, dest);
    } finally {
      db.close();
    }
    return "os";
  }
  throw new Error(`unknown peer ${peer}`);
}

for (let i = 0; i < Number(count); i++) {
  const dest = `${prefix}-${i}.db`;
  const t0 = performance.now();
  try {
    const locking = await once(dest);
    console.log(JSON.stringify({ dest, ok: true, ms: performance.now() - t0, locking }));
  } catch (err) {
    const e = /** @type {{ code?: string, message?: string } | undefined} */ (err);
    console.log(JSON.stringify({ dest, ok: false, ms: performance.now() - t0, error: `${e?.code ?? ""} ${e?.message ?? e}`.slice(0, 200) }));
  }
}
