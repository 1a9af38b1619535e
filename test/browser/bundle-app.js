// An "application" bundled by esbuild from the rollup output (dist/browser/index.js), with
// keepNames, which puts calls to a helper of its own into named functions: the writer worker
// of backupToOpfs must come out of it whole.
import { loadSqlite } from "sqlite-backup-wasm";

export async function answer() {
  const sqlite = await loadSqlite();
  const path = `rebundled-${Date.now()}/app.db`;
  {
    using db = sqlite.open(":memory:");
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (6 * 7)");
    await sqlite.backupToOpfs(db, path);
  }
  using back = await sqlite.restoreFromOpfs(path);
  return `${sqlite.version}:${back.get("SELECT x FROM t").x}`;
}
