// Shared by the page and worker test bundles: filling databases and comparing their content.
import type { Database } from "../../../src/index.browser.js";

/** A table with text, blobs, reals and an index; `rows` rows of roughly `blobSize` bytes. */
export function fill(db: Database, rows: number, blobSize = 200, tag = "v"): void {
  db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, r REAL); CREATE INDEX IF NOT EXISTS t_s ON t(s)");
  db.exec("SAVEPOINT fill"); // works inside an open transaction too
  for (let i = 0; i < rows; i++) db.run("INSERT INTO t(s, b, r) VALUES (?, randomblob(?), ?)", [`${tag}-${i}`, blobSize, i / 7]);
  db.exec("RELEASE fill");
}

/** Schema and every row, as one string: equal strings mean equal content. */
export function contentOf(db: Database): string {
  const parts: string[] = [];
  const tables = db.all<{ name: string; sql: string }>("SELECT name, sql FROM sqlite_schema ORDER BY name");
  for (const { name, sql } of tables) {
    parts.push(sql);
    if (!/^CREATE TABLE/i.test(sql)) continue;
    for (const row of db.all(`SELECT * FROM "${name}" ORDER BY rowid`)) {
      parts.push(JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? Array.from(v, (x) => x.toString(16).padStart(2, "0")).join("") : typeof v === "bigint" ? String(v) : v)));
    }
  }
  return parts.join("\n");
}

export async function digest(s: string): Promise<string> {
  const h = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return Array.from(new Uint8Array(h), (x) => x.toString(16).padStart(2, "0")).join("");
}

export function integrity(db: Database): string {
  return db.all<{ integrity_check: string }>("PRAGMA integrity_check").map((r) => r.integrity_check).join("; ");
}

/** Names and sizes of the files in an OPFS directory. */
export async function listDir(path: string): Promise<Record<string, number>> {
  let dir = await navigator.storage.getDirectory();
  for (const p of path.split("/").filter(Boolean)) dir = await dir.getDirectoryHandle(p);
  const out: Record<string, number> = {};
  for await (const [name, h] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    if (h.kind === "file") out[name] = (await (h as FileSystemFileHandle).getFile()).size;
  }
  return out;
}

/** The first bytes of an OPFS file, read without SQLite. */
export async function fileHead(path: string, n: number): Promise<number[]> {
  const parts = path.split("/").filter(Boolean);
  let dir = await navigator.storage.getDirectory();
  for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p);
  const f = await (await dir.getFileHandle(parts.at(-1)!)).getFile();
  return Array.from(new Uint8Array(await f.slice(0, n).arrayBuffer()));
}

export function errorInfo(e: unknown): { name: string; message: string; code?: number } {
  const x = e as { name?: string; message?: string; code?: number };
  return { name: String(x?.name), message: String(x?.message ?? e), code: typeof x?.code === "number" ? x.code : undefined };
}
