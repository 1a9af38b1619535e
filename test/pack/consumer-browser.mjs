// Bundled by esbuild (platform "browser") from the consumer project, so the package's "browser"
// export condition is what gets resolved; "sqlite-backup-wasm/inline", the one-file build with
// the wasm inlined, as esbuild does not emit new URL(…, import.meta.url) assets. Runs on a
// page's main thread: memory → OPFS file
// (backupToOpfs, through the package's worker relay) → memory again, bytes handed back for the
// native sqlite3 CLI to check.
import { loadSqlite } from "sqlite-backup-wasm/inline";

globalThis.runPackTest = async (rows) => {
  const sqlite = await loadSqlite();
  const db = sqlite.open(":memory:");
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT)");
  db.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
          INSERT INTO t(v, s) SELECT zeroblob(200), 'row ' || i FROM n`, [rows]);
  let events = 0;
  const r = await sqlite.backupToOpfs(db, "pack-test/app.db", { pagesPerStep: 16, onProgress: () => void events++ });
  db.close();
  const back = await sqlite.restoreFromOpfs("pack-test/app.db");
  const bytes = back.serialize();
  back.close();
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return { version: sqlite.version, pageCount: r.pageCount, events, base64: btoa(binary) };
};
