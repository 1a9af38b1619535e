// An "application" bundled by esbuild from the rollup output (dist/browser/index.js).
import { loadSqlite } from "sqlite-backup-wasm";

export async function answer() {
  const sqlite = await loadSqlite();
  const db = sqlite.open(":memory:");
  try {
    return `${sqlite.version}:${db.get("SELECT 6 * 7 AS x").x}`;
  } finally {
    db.close();
  }
}
