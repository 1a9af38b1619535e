// The same file runs unchanged in Node 20-26, Bun and Deno 2 inside the consumer project the
// pack test installs the tarball into: a stepped file-to-file backup through the bare specifier.
// Usage: <runtime> consumer.mjs <source.db> <destination.db>; prints one JSON line.
import process from "node:process";
import { loadSqlite, SqliteError } from "sqlite-backup-wasm";

const [source, destination] = process.argv.slice(2);
const sqlite = await loadSqlite();
const src = sqlite.open(source, { readonly: true, create: false });
const remaining = [];
let result;
try {
  result = await sqlite.backup(src, destination, { pagesPerStep: 16, onProgress: (p) => void remaining.push(p.remaining) });
} finally {
  src.close();
}
const dest = sqlite.open(destination, { readonly: true });
const rows = dest.get("SELECT count(*) AS n FROM t").n;
const integrity = dest.get("PRAGMA integrity_check").integrity_check;
dest.close();
let missing = null;
try {
  sqlite.open(`${destination}.does-not-exist/x.db`);
} catch (e) {
  missing = e instanceof SqliteError ? e.codeName : String(e);
}
const runtime = typeof Deno !== "undefined" ? `deno ${Deno.version.deno}` : typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.version}`;
console.log(JSON.stringify({
  runtime, version: sqlite.version, vfs: sqlite.vfsNames[0], pageCount: result.pageCount, steps: result.steps,
  events: remaining.length, lastRemaining: remaining.at(-1), rows, integrity, missing, memoryUsed: sqlite.memoryUsed(),
}));
