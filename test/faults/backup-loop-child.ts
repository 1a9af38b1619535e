// A process of ours that backs up `src` into `dest` `n` times (incremental "auto" and false in
// turn) and prints one JSON line per backup: its result or its error. For the tests of several
// processes writing one destination.
import { loadSqlite, SqliteError } from "../../src/index.js";

const [src, dest, n] = process.argv.slice(2) as [string, string, string];
const sqlite = await loadSqlite();
const source = sqlite.open(src, { readonly: true });
for (let i = 0; i < Number(n); i++) {
  try {
    const r = await sqlite.backup(source, dest, { incremental: i % 2 === 0 ? "auto" : false, busyTimeoutMs: 20_000 });
    console.log(JSON.stringify({ ok: true, incremental: r.incremental }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, code: e instanceof SqliteError ? e.codeName : String(e), message: (e as Error).message }));
  }
}
source.close();
