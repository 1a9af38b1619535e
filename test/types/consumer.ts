// A consumer of the published types, compiled with `tsc --noEmit` against the installed tarball
// (test/pack/run-pack-tests.mjs). Each @ts-expect-error must stay an error: if the .d.ts decayed
// to `any`, tsc reports the directive as unused and the test fails.
import {
  Backup, Database, loadSqlite, SQLITE_BUSY, SQLITE_DONE, SQLITE_OK, SqliteError,
  type BackupOptions, type BackupProgress, type BackupResult, type Row, type Sqlite, type StepResult,
} from "sqlite-backup-wasm";

const sqlite: Sqlite = await loadSqlite();
const version: string = sqlite.version;
const vfsNames: string[] = sqlite.vfsNames;

function rowCount(db: Database, table: string): number {
  return db.get<{ n: number }>(`SELECT count(*) AS n FROM "${table}"`)?.n ?? 0;
}

{
  // Both connections and the backup are disposed (backup first) when the block ends.
  using source = sqlite.open("app.db", { readonly: true });
  using dest = sqlite.open("copy.db", { create: true, vfs: vfsNames[0] });
  using backup: Backup = sqlite.backupInit(dest, "main", source, "main");
  let rc: StepResult;
  do rc = backup.step(64);
  while (rc === "ok" || rc === "busy" || rc === "locked");
  const left: number = backup.remaining + backup.pageCount;
  const finished: boolean = backup.done;
  backup.finish();
  console.log(version, left, finished, rowCount(dest, "t"));

  // @ts-expect-error pages is a number
  backup.step("5");
  // @ts-expect-error "error" is not a step result
  const bad: StepResult = "error";
  // @ts-expect-error backupInit takes the destination first and both schema names
  sqlite.backupInit(dest, source);
  void bad;
}

{
  using db = sqlite.open(":memory:");
  const info = db.run("INSERT INTO t(v) VALUES (?)", [new Uint8Array([1, 2])]);
  const id: number | bigint = info.lastInsertRowid;
  const rows: Row[] = db.all("SELECT * FROM t WHERE id = :id", { id });
  const bytes: Uint8Array = db.serialize();
  // @ts-expect-error a Row value is never undefined or a boolean
  const flag: boolean = rows[0]!["x"];
  void [bytes, flag];

  const controller = new AbortController();
  const options: BackupOptions = {
    pagesPerStep: 100,
    pauseMs: 5,
    signal: controller.signal,
    onProgress: ({ remaining, pageCount }: BackupProgress) => (remaining > pageCount / 2 ? 200 : undefined),
  };
  const result: BackupResult = await sqlite.backup(db, "copy.db", options);
  const { pageCount, steps, restarts, elapsedMs } = result;
  console.log(pageCount + steps + restarts + elapsedMs, sqlite.memoryUsed());
  // @ts-expect-error pagesPerStep is a number
  await sqlite.backup(db, "copy.db", { pagesPerStep: "all" });
}

try {
  sqlite.open("/no/such/dir/x.db");
} catch (e) {
  if (e instanceof SqliteError) {
    const codes: [number, number, string] = [e.code, e.extendedCode, e.codeName];
    console.log(codes, e.code === SQLITE_BUSY, SQLITE_OK, SQLITE_DONE);
  }
}
