// Prints the peers' versions (package and the SQLite inside) as JSON, for the report.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
/** A peer's package version. */
const pkg = (/** @type {string} */ n) => /** @type {{ version: string }} */ (JSON.parse(readFileSync(new URL(`node_modules/${n}/package.json`, import.meta.url), "utf8"))).version;
/** @type {typeof import("better-sqlite3")} */
const Database = require("better-sqlite3");
const { DatabaseSync } = await import("node:sqlite");
const SQL = await (await import("sql.js")).default();
const official = await (await import("@sqlite.org/sqlite-wasm")).default();
/** SQLite's version in a better-sqlite3 or a node:sqlite connection. */
const v = (/** @type {{ prepare(sql: string): { get(): unknown } }} */ db) => /** @type {{ v: string }} */ (db.prepare("select sqlite_version() v").get()).v;
/** exec()'s result for a query of one row of one string. */
const sqljsRow = (/** @type {import("sql.js").QueryExecResult[]} */ r) => /** @type {[{ columns: string[], values: [[string]] }]} */ (r);
console.log(JSON.stringify({
  node: process.version,
  "better-sqlite3": `${pkg("better-sqlite3")} (SQLite ${v(new Database(":memory:"))})`,
  "node:sqlite": `Node ${process.version} (SQLite ${v(new DatabaseSync(":memory:"))})`,
  official: `${pkg("@sqlite.org/sqlite-wasm")} (SQLite ${official.version.libVersion})`,
  "sql.js": `${pkg("sql.js")} (SQLite ${sqljsRow(new SQL.Database().exec("select sqlite_version()"))[0].values[0][0]})`,
}));
