// Shared by the Node suites: temp dirs, the shared instance, and the native sqlite3 CLI as the
// independent reader of every file we write.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { loadSqlite, type Database } from "../src/index.js";

export const sqlitePromise = loadSqlite();

const dirs: string[] = [];
process.on("exit", () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What a promise rejects with; an assertion failure when it resolves. */
export async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.unreachable("expected a rejection");
}

/** A fresh directory, removed when the process exits. */
export function tmpDir(tag = "t"): string {
  const d = mkdtempSync(join(tmpdir(), `sbw-${tag}-`));
  dirs.push(d);
  return d;
}

/** Runs the native sqlite3 CLI on a file; returns stdout. */
export function cli(file: string, ...args: string[]): string {
  return execFileSync("sqlite3", ["-batch", file, ...args], { encoding: "utf8" });
}

/** PRAGMA integrity_check through the native CLI: "ok" when the file is sound. */
export function integrity(file: string): string {
  return cli(file, "PRAGMA integrity_check").trim();
}

/** The native CLI's .dump of a file, for content comparison. */
export function dump(file: string): string {
  return cli(file, ".dump");
}

/** Adds `rows` rows of ~400-byte blobs to table t (about 9 per 4 KiB page). */
export function fill(db: Database, rows: number, pageSize = 4096): void {
  db.exec(`PRAGMA page_size=${pageSize}; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB, s TEXT)`);
  db.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
          INSERT INTO t(v, s) SELECT randomblob(400), 'row ' || i FROM n`, [rows]);
}

/**
 * Starts the native CLI writing `file`: a statement from next() about once a millisecond (a
 * busy writer during every copy; a saturated loop would hold its locks nearly all the time)
 * until stop() kills it.
 */
export function nativeWriter(file: string, next: () => string): { stop(): Promise<void> } {
  const p = spawn("sqlite3", ["-batch", file], { stdio: ["pipe", "ignore", "pipe"] });
  p.stdin.on("error", () => {}); // EPIPE once it is killed
  p.stdin.write(".timeout 5000\n");
  const timer = setInterval(() => {
    if (p.stdin.writableLength < 16 * 1024) p.stdin.write(next() + "\n");
  }, 1);
  return {
    stop: () => new Promise((resolve) => {
      clearInterval(timer);
      p.on("exit", () => resolve());
      p.kill("SIGKILL");
    }),
  };
}
