// Shared by the page and worker test bundles: filling databases and comparing their content.
import { opfsTarget, type Database, type Sqlite } from "../../../src/index.browser.js";

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

/** Every chunk of a byte stream, concatenated; and how many chunks there were. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; chunks: number }> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, chunks: parts.length };
}

/** `bytes` as a ReadableStream of `chunkSize`-byte chunks; with `failAt`, it errors instead of giving the chunk at that offset. */
export function streamOf(bytes: Uint8Array, chunkSize: number, failAt?: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (failAt !== undefined && at >= failAt) return c.error(new Error("the connection dropped"));
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunkSize));
      at += chunkSize;
    },
  });
}

/** The SQLite header, and whether the length agrees with page size × page count in it. */
export function headerCheck(bytes: Uint8Array): { magic: string; lengthAgrees: boolean } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 100);
  const pageSize = dv.getUint16(16) === 1 ? 65536 : dv.getUint16(16);
  return { magic: String.fromCharCode(...bytes.subarray(0, 16)), lengthAgrees: bytes.length === pageSize * dv.getUint32(28) };
}

/** What restoreFromStream of each bad input into `dest` did: its rejection, and whether dest kept its bytes and rows. */
export async function badRestores(sqlite: Sqlite, dest: Database, good: Uint8Array) {
  const damaged = good.slice();
  damaged.fill(0xff, 4096, 4096 + 200); // page 2's b-tree header and cell pointers: the length still agrees
  const inputs: Record<string, () => ReadableStream<Uint8Array> | Iterable<Uint8Array>> = {
    truncated: () => streamOf(good.subarray(0, good.length / 2), 10_000),
    cutInHeader: () => [good.subarray(0, 60)],
    tooLong: () => streamOf(new Uint8Array([...good, ...new Uint8Array(4096)]), 65536),
    notADatabase: () => streamOf(crypto.getRandomValues(new Uint8Array(8192)), 1000),
    empty: () => [],
    damaged: () => streamOf(damaged, 65536),
    inputFails: () => streamOf(good, 10_000, 50_000),
  };
  const bytes0 = dest.serialize();
  const content0 = contentOf(dest);
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(inputs)) {
    const rejection = await sqlite.restoreFromStream(input(), dest).then(() => null, errorInfo);
    const now = dest.serialize();
    out[name] = {
      rejection,
      sameBytes: now.length === bytes0.length && now.every((x, i) => x === bytes0[i]),
      sameRows: (() => {
        try {
          return contentOf(dest) === content0;
        } catch (e) {
          return errorInfo(e).message;
        }
      })(),
      integrity: (() => {
        try {
          return integrity(dest);
        } catch (e) {
          return errorInfo(e).message;
        }
      })(),
    };
  }
  return out;
}

/** Overwrites `n` bytes at `offset` of an OPFS file with 0x55, in place. */
export async function damageFile(path: string, offset: number, n = 16): Promise<void> {
  const w = await (await opfsFile(path)).createWritable({ keepExistingData: true });
  await w.write({ type: "write", position: offset, data: new Uint8Array(n).fill(0x55) });
  await w.close();
}

/**
 * Replicates `src` to opfsTarget(dir): three syncs with changes in between, then restores of the
 * latest state, of the first sync (by seq) and of the second (by time) into databases from
 * `dest`, and verifyReplica. Then one byte range of the second sync's object is overwritten:
 * what restoring and verifying each sync gives. States compared as content digests.
 */
export async function replicaRound(sqlite: Sqlite, src: Database, dir: string, dest: () => Promise<Database> | Database) {
  const syncs: { seq: number; time: number; kind: string; digest: string; pages: number }[] = [];
  const replica = sqlite.replicate(src, opfsTarget(dir), { intervalMs: 3_600_000 });
  try {
    fill(src, 400, 300, "r1");
    for (const change of [
      () => {},
      () => src.exec("UPDATE t SET s = 'second ' || id WHERE id % 10 = 0; DELETE FROM t WHERE id % 7 = 0"),
      () => fill(src, 300, 300, "r3"),
    ]) {
      change();
      const info = await replica.sync();
      syncs.push({ seq: info.seq, time: info.time.getTime(), kind: info.kind, digest: await digest(contentOf(src)), pages: info.pagesUploaded });
    }
  } finally {
    await replica.close();
  }
  const target = opfsTarget(dir); // a new one: nothing cached from the replicator
  const files = await listDir(dir);
  const restoreAt = async (at?: Date | number) => {
    const db = await dest();
    try {
      const r = await sqlite.restoreReplica(target, db, at === undefined ? {} : { at });
      return { seq: r.seq, digest: await digest(contentOf(db)), integrity: integrity(db) };
    } catch (e) {
      return { ...errorInfo(e), unchanged: integrity(db) === "ok" && contentOf(db) === KEPT };
    } finally {
      db.close();
    }
  };
  const latest = await restoreAt();
  const first = await restoreAt(syncs[0]!.seq);
  const second = await restoreAt(new Date(syncs[1]!.time));
  const verified = await sqlite.verifyReplica(target).then((v) => ({ ok: v.ok, integrity: v.integrity, seq: v.seq }), errorInfo);
  // Damage: the payload of the second sync's object (past its header).
  const victim = Object.keys(files).find((n) => n.startsWith(String(syncs[1]!.seq).padStart(16, "0")))!;
  await damageFile(`${dir}/${victim}`, Math.floor(files[victim]! * 0.75));
  const damaged = {
    victim,
    latest: await restoreAt(),
    first: await restoreAt(syncs[0]!.seq),
    second: await restoreAt(syncs[1]!.seq),
    verify: await sqlite.verifyReplica(target).then((v) => ({ ok: v.ok }), errorInfo),
  };
  return { syncs, files, latest, first, second, verified, damaged };
}

/** The content a restore's destination holds before it (dest() makes it so). */
export const KEPT_ROWS = 5;
let KEPT = "";
/** Fills a destination with the rows a failed restore must leave; remembers them as KEPT. */
export function keep(db: Database): Database {
  db.exec("CREATE TABLE IF NOT EXISTS kept(x); DELETE FROM kept");
  for (let i = 0; i < KEPT_ROWS; i++) db.run("INSERT INTO kept VALUES (?)", [i]);
  KEPT = contentOf(db);
  return db;
}
