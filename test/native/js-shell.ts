// A process of ours for the real-lock suite (test/native/shell.ts drives it): one connection to
// argv[2] (busy_timeout argv[3] ms) with real file locks, taking one JSON-encoded SQL string per
// line on stdin and printing as the sqlite3 CLI does: one "a|b" line per row, "Error: …" for a
// failure (which skips the rest of that input, as the CLI skips the rest of a line). Statements
// are split at ";" (the suite's SQL has none inside literals). Exits when stdin ends.
import process from "node:process";
import { createInterface } from "node:readline";
import { loadSqlite, SqliteError } from "../../src/index.js";

const [file, timeout = "10000"] = process.argv.slice(2);
const sqlite = await loadSqlite({ locking: "os" }); // rejects where real locks are unavailable
const db = sqlite.open(file!);
db.exec(`PRAGMA busy_timeout = ${Number(timeout)}`);

const out = (s: string) => process.stdout.write(`${s}\n`);
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const sql = JSON.parse(line) as string;
  try {
    for (const stmt of sql.split(";").map((s) => s.trim()).filter(Boolean)) {
      for (const row of db.all(stmt)) out(Object.values(row).map((v) => (v === null ? "" : String(v))).join("|"));
    }
  } catch (e) {
    out(`Error: ${e instanceof SqliteError ? `${e.message} (${e.code})` : String(e)}`);
  }
}
db.close();
