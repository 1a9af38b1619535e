// The bundled example: builds a sample database (a small lending library, ~30 MiB) on first
// run, backs it up page by page with a progress line, and checks the copy.
//
//   npm run example                    after `npm install`
//   node examples/backup-with-progress.mjs [source.db] [copy.db]
import { existsSync } from "node:fs";
import { loadSqlite } from "../dist/index.js";

const source = process.argv[2] ?? new URL("./sample.db", import.meta.url).pathname;
const copy = process.argv[3] ?? new URL("./sample-copy.db", import.meta.url).pathname;
const sqlite = await loadSqlite();
console.log(`SQLite ${sqlite.version} in WebAssembly; VFS: ${sqlite.vfsNames.join(", ")}`);

if (!existsSync(source)) {
  console.log(`creating ${source} …`);
  const db = sqlite.open(source);
  db.exec(`
    PRAGMA journal_mode = WAL;
    CREATE TABLE author(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE book(id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES author, title TEXT, blurb TEXT);
    CREATE TABLE loan(id INTEGER PRIMARY KEY, book_id INTEGER REFERENCES book, out_on TEXT, back_on TEXT);
    CREATE INDEX loan_book ON loan(book_id);
    BEGIN;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
      INSERT INTO author SELECT i, 'Author ' || i FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
      INSERT INTO book SELECT i, 1 + i % 2000, 'Title ' || i, hex(randomblob(300)) FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
      INSERT INTO loan SELECT i, 1 + (i * 7919) % 40000, date('2020-01-01', '+' || (i % 1500) || ' days'), NULL FROM n;
    COMMIT;`);
  db.close();
}

const src = sqlite.open(source, { readonly: true });
const started = performance.now();
const result = await sqlite.backup(src, copy, {
  onProgress({ remaining, pageCount }) {
    const done = pageCount - remaining;
    const pct = pageCount ? Math.round((100 * done) / pageCount) : 100;
    const bar = "#".repeat(pct / 4).padEnd(25, ".");
    process.stdout.write(`\r[${bar}] ${String(pct).padStart(3)}%  ${done}/${pageCount} pages`);
  },
});
process.stdout.write("\n");
const ms = performance.now() - started;
const mib = (result.pageCount * src.get("PRAGMA page_size").page_size) / 2 ** 20;
console.log(`copied ${result.pageCount} pages (${mib.toFixed(1)} MiB) in ${result.steps} steps, ${ms.toFixed(0)} ms`);

const check = sqlite.open(copy, { readonly: true });
const integrity = check.get("PRAGMA integrity_check").integrity_check;
const counts = (db) => db.get("SELECT (SELECT count(*) FROM author) a, (SELECT count(*) FROM book) b, (SELECT count(*) FROM loan) l");
console.log(`integrity_check: ${integrity}; rows source ${JSON.stringify(counts(src))}, copy ${JSON.stringify(counts(check))}`);
const same = JSON.stringify(counts(src)) === JSON.stringify(counts(check));
check.close();
src.close();
if (integrity !== "ok" || !same) process.exit(1);
