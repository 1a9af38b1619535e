// Child process for the SIGKILL trials of test/incremental-reliability.test.ts: an incremental
// backup (incremental: true) of argv[2] over the existing database argv[3], `pages` pages per
// chunk, the destination connection's page cache limited to `cache` pages (so that the changed
// pages spill into the file, behind a synced hot journal, long before the commit). Prints "go"
// before the backup, "p <k>" after the k-th progress event and "done <json>" at the end, so the
// parent can kill it after a chosen number of progress events. Exits 0 after a complete backup.
import { loadSqlite } from "../../src/index.js";

const [src, dest, pages, cache] = process.argv.slice(2);
const sqlite = await loadSqlite();
const source = sqlite.open(src!, { readonly: true });
const d = sqlite.open(dest!, { create: false });
d.exec(`PRAGMA cache_size=${Number(cache)}`);
let k = 0;
process.stdout.write("go\n");
const r = await sqlite.backup(source, d, {
  incremental: true, pagesPerStep: Number(pages), pauseMs: 1,
  onProgress: ({ remaining }) => {
    if (remaining > 0) process.stdout.write(`p ${++k}\n`);
  },
});
d.close();
source.close();
process.stdout.write(`done ${JSON.stringify(r)}\n`);
