// Shared by the reliability suites: iteration knobs, the native CLI as the judge of a file, and
// small fixtures. Defaults keep `npm test` fast; raise the env vars for soak runs (docs/reliability.md).
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as assert from "uvu/assert";
import { SqliteError } from "../../src/index.js";

/** An integer knob from the environment, e.g. knob("SBW_KILL_TRIALS", 24). */
export function knob(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

export { rng } from "./rng.js";

export const SEED = knob("SBW_SEED", 20240601);

/** The native CLI's verdict on a file: integrity_check and a content hash (.sha3sum). */
export function judge(file: string): { integrity: string; sha: string } {
  const out = execFileSync("sqlite3", ["-batch", file, "PRAGMA integrity_check", ".sha3sum"], { encoding: "utf8" });
  const lines = out.trim().split("\n");
  const sha = lines.pop()!;
  return { integrity: lines.join("\n"), sha };
}

/** Asserts the file is sound and holds one of the allowed contents (named for the message). */
export function assertOneOf(file: string, allowed: Record<string, string>, context: string): string {
  const j = judge(file);
  assert.is(j.integrity, "ok", `${context}: integrity_check`);
  const name = Object.keys(allowed).find((k) => allowed[k] === j.sha);
  assert.ok(name !== undefined, `${context}: content is neither of ${Object.keys(allowed).join("/")}`);
  return name!;
}

/** Asserts e is a SqliteError whose primary code is one of `codes`. */
export function assertSqliteError(e: unknown, codes: readonly number[], context: string): SqliteError {
  assert.instance(e, SqliteError, `${context}: ${String(e)}`);
  const err = e as SqliteError;
  assert.ok(codes.includes(err.code), `${context}: unexpected ${err.codeName} (${err.message})`);
  return err;
}

/** Open file descriptors of this process (Linux). */
export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** SQL that fills a table with `rows` rows of `size`-byte random blobs. */
export function fillSql(rows: number, size: number, table = "t"): string {
  return `CREATE TABLE IF NOT EXISTS ${table}(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${rows})
    INSERT INTO ${table}(v) SELECT randomblob(${size}) FROM c;`;
}
