// A bundler-based browser app's view of the package: with the "browser" condition, TypeScript
// must resolve the browser entry's types (the OPFS operations), not the Node ones.
import { loadSqlite, type Database, type BackupResult } from "sqlite-backup-wasm";

const sqlite = await loadSqlite();
using db = sqlite.open(":memory:");
db.exec("CREATE TABLE t(x)");
const saved: BackupResult = await sqlite.backupToOpfs(db, "dir/app.db", { pagesPerStep: 64 });
using back: Database = await sqlite.restoreFromOpfs("dir/app.db");
const worker: Promise<Database> = sqlite.openOpfs("dir/app.db", { create: false });
// @ts-expect-error the OPFS path is a string
await sqlite.backupToOpfs(db, new URL("file:///x"));
console.log(saved.pageCount, back.filename, worker);
