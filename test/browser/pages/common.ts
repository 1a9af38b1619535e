// Shared by the page and worker test bundles: filling databases and comparing their content.
import type { Database, Sqlite } from "../../../src/index.browser.js";

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

/** The handle of an OPFS file. */
export async function opfsFile(path: string): Promise<FileSystemFileHandle> {
  const parts = path.split("/").filter(Boolean);
  let dir = await navigator.storage.getDirectory();
  for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p);
  return dir.getFileHandle(parts.at(-1)!);
}

/** The first bytes of an OPFS file, read without SQLite. */
export async function fileHead(path: string, n: number): Promise<number[]> {
  const f = await (await opfsFile(path)).getFile();
  return Array.from(new Uint8Array(await f.slice(0, n).arrayBuffer()));
}

export function errorInfo(e: unknown): { name: string; message: string; code?: number } {
  const x = e as { name?: string; message?: string; code?: number };
  return { name: String(x?.name), message: String(x?.message ?? e), code: typeof x?.code === "number" ? x.code : undefined };
}

/** The benches' database: `mib` MiB of 1000-byte random blobs, one a row. Returns its size in bytes. */
export function fillBench(db: Database, mib: number): number {
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  db.exec("BEGIN");
  for (let i = 0; i < Math.ceil((mib * 2 ** 20) / 1100); i++) db.run("INSERT INTO t(b) VALUES (randomblob(1000))");
  db.exec("COMMIT");
  return db.get<{ n: number }>("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size")!.n;
}

/** Changes ~1% of a fillBench database's pages: one row in 350, at ~3.5 rows a page. */
export const CHANGE_ONE_PERCENT = "UPDATE t SET b = randomblob(1000) WHERE id % 350 = 0";

/**
 * A repeat backup after 1% changed, against the first backup into a new file and a full repeat:
 * `backupTo(incremental)` runs one backup of the source to the same OPFS file.
 */
export async function repeatBench(src: Database, bytes: number,
  backupTo: (incremental: boolean | "auto") => Promise<{ pagesWritten: number; pageCount: number; incremental: boolean }>) {
  const timed = async (incremental: boolean | "auto") => {
    const t0 = performance.now();
    const r = await backupTo(incremental);
    return { ms: performance.now() - t0, r };
  };
  const first = await timed("auto");
  src.exec(CHANGE_ONE_PERCENT);
  const inc = await timed("auto");
  src.exec(CHANGE_ONE_PERCENT);
  const full = await timed(false);
  const { pagesWritten, pageCount, incremental } = inc.r;
  return {
    dbMiB: bytes / 2 ** 20, firstMs: first.ms, incrementalMs: inc.ms, fullRepeatMs: full.ms, incremental,
    ofFirst: inc.ms / first.ms, pagesWritten, pageCount,
    // Each written page once into the journal (4 + page + 4 bytes, and a 512-byte header) and once into the file.
    writtenPct: (100 * (pagesWritten * (2 * 4096 + 8) + 512)) / bytes,
  };
}

/**
 * What a context without OPFS gets (a private window: getDirectory() throws SecurityError, made
 * so here unless `real`): opfsAvailable(), and each OPFS call's rejection and how long it took.
 * The file's Web Lock is held meanwhile, so a call that reached the lock would wait busyTimeoutMs.
 */
export async function noOpfs(sqlite: Sqlite, path: string, real = false) {
  if (!real) {
    StorageManager.prototype.getDirectory = () => Promise.reject(new DOMException("The operation is insecure.", "SecurityError"));
  }
  let letGo!: () => void;
  await new Promise<void>((held) => void navigator.locks.request(`sqlite-backup-wasm:opfs:/${path}`, () => {
    held();
    return new Promise<void>((r) => (letGo = r));
  }));
  const timed = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    try {
      await f();
      return { ok: true };
    } catch (e) {
      return { ...errorInfo(e), ms: performance.now() - t0 };
    }
  };
  try {
    using db = sqlite.open(":memory:");
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    const opts = { busyTimeoutMs: 60_000 };
    return {
      available: await sqlite.opfsAvailable(),
      backup: await timed(() => sqlite.backupToOpfs(db, path, opts)),
      restore: await timed(() => sqlite.restoreFromOpfs(path, opts)),
      open: await timed(() => sqlite.openOpfs(path, opts)),
      openReadonly: await timed(() => sqlite.openOpfs(path, { ...opts, readonly: true })),
    };
  } finally {
    letGo();
  }
}
