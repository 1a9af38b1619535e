// The official build's answer to "in-memory database → OPFS file": the opfs-sahpool VFS, with
// the same data shape as our browser bench (test/browser/pages/worker.ts "bench": rows of
// randomblob(1000) in one table) and sqlite3_backup_step(-1), timed around the backup only.
import sqlite3InitModule from "/bench/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs";

// mode "raw" instead writes the same database's bytes to OPFS without SQLite: the physical limit.
onmessage = async ({ data: { mib, run, mode } }) => {
  try {
    const sqlite3 = await sqlite3InitModule();
    const { capi, oo1 } = sqlite3;
    const mem = new oo1.DB(":memory:");
    mem.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); BEGIN");
    const rows = Math.ceil((mib * 1024 * 1024) / 1100);
    mem.exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows}) INSERT INTO t(b) SELECT randomblob(1000) FROM s; COMMIT`);
    const bytes = /** @type {number} */ (mem.selectValue("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"));
    if (mode === "raw") {
      const ms = await rawWrite(capi.sqlite3_js_db_export(mem));
      mem.close();
      postMessage({ ok: true, dbMiB: bytes / 2 ** 20, ms, MiBps: bytes / 2 ** 20 / (ms / 1000) });
      return;
    }
    const pool = await sqlite3.installOpfsSAHPoolVfs({ name: `bench-sahpool-${run}`, directory: `.bench-sahpool-${run}`, clearOnInit: true });
    const dest = new pool.OpfsSAHPoolDb("/bench.db");
    const t0 = performance.now();
    const b = capi.sqlite3_backup_init(dest.pointer, "main", mem.pointer, "main");
    let rc;
    do rc = capi.sqlite3_backup_step(b, -1); while (rc === capi.SQLITE_OK || rc === capi.SQLITE_BUSY || rc === capi.SQLITE_LOCKED);
    const fin = capi.sqlite3_backup_finish(b);
    const ms = performance.now() - t0;
    if (rc !== capi.SQLITE_DONE || fin !== 0) throw new Error(`backup: step ${rc}, finish ${fin}`);
    const rowsBack = dest.selectValue("SELECT count(*) FROM t");
    dest.close();
    mem.close();
    await pool.removeVfs();
    postMessage({ ok: true, dbMiB: bytes / 2 ** 20, ms, MiBps: bytes / 2 ** 20 / (ms / 1000), rowsBack, rows });
  } catch (e) {
    postMessage({ ok: false, error: String(/** @type {Error | undefined} */ (e)?.stack ?? e) });
  }
};

/**
 * The same bytes written to a new OPFS file through one sync access handle in 1 MiB writes, then
 * flush(): no SQLite, no page-sized calls.
 * @param {Uint8Array} bytes
 */
async function rawWrite(bytes) {
  const dir = await navigator.storage.getDirectory();
  // createSyncAccessHandle is in TypeScript's webworker lib only: its type from the library's own.
  const file = /** @type {import("../../src/browser/dom.ts").OpfsFileHandle} */ (await dir.getFileHandle("bench-raw.bin", { create: true }));
  const h = await file.createSyncAccessHandle();
  try {
    const t0 = performance.now();
    for (let off = 0; off < bytes.length; off += 1 << 20) h.write(bytes.subarray(off, off + (1 << 20)), { at: off });
    h.flush();
    return performance.now() - t0;
  } finally {
    h.close();
  }
}
