// Builds the benchmark databases deterministically (same bytes on every machine for a given
// size) with native SQLite via better-sqlite3. Data files live in bench/data/ (git-ignored);
// an existing file of the right generator version and size is reused. datasync() puts a copy of
// one on disk before a timed run.
//
//   node gen.mjs <file> <MiB>
import { createRequire } from "node:module";
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

const GEN_VERSION = 1; // bump when the content below changes, so stale files are rebuilt

/**
 * xorshift32: a fixed pseudo-random pool that row bodies are cut from.
 * @param {number} bytes a multiple of 4
 */
function pool(bytes) {
  const out = new Uint32Array(bytes / 4);
  let x = 2463534242;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x;
  }
  return Buffer.from(out.buffer);
}

/**
 * fdatasync of a file by name: its pages on disk, so that no timed run pays for writing them back.
 * @param {string} file
 */
export function datasync(file) {
  const fd = openSync(file, "r+");
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes `file`, a database of about `mib` MiB, unless it is there and up to date.
 * @param {string} file
 * @param {number} mib
 * @returns {boolean} whether it was made
 */
export function generate(file, mib) {
  const stamp = `${file}.gen.json`;
  const want = JSON.stringify({ GEN_VERSION, mib });
  if (existsSync(file) && existsSync(stamp) && readFileSync(stamp, "utf8") === want) return false;
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  // Loaded here, not at import: a measured process that only needs datasync() does not load it.
  /** @type {typeof import("better-sqlite3")} */
  const Database = createRequire(import.meta.url)("better-sqlite3");
  const db = new Database(tmp);
  db.pragma("journal_mode = OFF");
  db.pragma("synchronous = OFF");
  db.exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n REAL, body BLOB);
           CREATE INDEX items_name ON items(name);`);
  const bytes = pool(1 << 20);
  const insert = db.prepare("INSERT INTO items(id, name, n, body) VALUES (?, ?, ?, ?)");
  const target = mib * 1024 * 1024;
  const pragma = (/** @type {string} */ name) => /** @type {number} */ (db.pragma(name, { simple: true }));
  const pageSize = pragma("page_size");
  let id = 0;
  while (pragma("page_count") * pageSize < target) {
    db.transaction(() => {
      for (let k = 0; k < 10000; k++, id++) {
        const len = 200 + ((id * 2654435761) >>> 0) % 1600; // 200..1799 bytes: overflow pages too
        const at = ((id * 40503) >>> 0) % (bytes.length - len);
        insert.run(id, `item-${((id * 7919) % 1000003).toString(36)}-${id}`, id / 7, bytes.subarray(at, at + len));
      }
    })();
  }
  db.close();
  renameSync(tmp, file);
  writeFileSync(stamp, want);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, mib] = process.argv.slice(2);
  if (!file || !mib) throw new Error("usage: node gen.mjs <file> <MiB>");
  const t = performance.now();
  const made = generate(file, Number(mib));
  console.log(`${file}: ${made ? `generated in ${((performance.now() - t) / 1000).toFixed(1)} s` : "up to date"}`);
}
