// backupToStream() and restoreFromStream(): round trips judged by the native sqlite3 CLI
// (integrity_check, .sha3sum against the source), every route (snapshot, held, spool), compression,
// Node streams, chunk sizes, and every way a stream can end early: abort, cancel, a consumer
// that fails, a source closed, and restores of streams that are cut short, too long or garbage
// (the destination unchanged, no temporary file left).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SqliteError, type Database } from "../src/index.js";
import { cli, fill, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const test = suite("streams");

const sha3 = (file: string) => cli(file, ".sha3sum").trim();
const ls = (dir: string) => readdirSync(dir).sort();

/** The stream's chunks into a file; returns the chunk sizes. */
async function toFile(stream: ReadableStream<Uint8Array>, path: string): Promise<number[]> {
  const fh = await open(path, "w");
  const sizes: number[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      sizes.push(value.length);
      await fh.write(value);
    }
  } finally {
    await fh.close();
  }
  return sizes;
}

/** A file the native CLI made: `rows` rows of ~400 bytes in t, in the given journal mode. */
function nativeDb(path: string, rows: number, mode: "delete" | "wal"): string {
  execFileSync("sqlite3", [path], {
    input: `PRAGMA journal_mode=${mode};
CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) INSERT INTO t(v, s) SELECT randomblob(400), 'row ' || i FROM n;
CREATE INDEX ts ON t(s);\n`,
  });
  return path;
}

/** An in-memory copy of `path`: a source that takes the spool route in every runtime. */
async function inMemory(path: string): Promise<Database> {
  using file = sqlite.open(path);
  const db = sqlite.open(":memory:");
  await sqlite.backup(file, db);
  return db;
}

/** The copy is sound and holds exactly what `ref` holds, for the native CLI. */
function sameAs(copy: string, ref: string): void {
  assert.is(integrity(copy), "ok");
  assert.is(sha3(copy), sha3(ref));
}

function expectCode(e: unknown, codeName: string): void {
  assert.instance(e, SqliteError, String(e));
  assert.is((e as SqliteError).codeName, codeName, (e as Error).message);
}

test("a rollback-journal file goes through a spool in tempDir, removed once the last chunk is out", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  const src = nativeDb(join(dir, "src.db"), 3000, "delete");
  using db = sqlite.open(src);
  const reader = sqlite.backupToStream(db, { tempDir: spool, chunkSize: 64 << 10 }).getReader();
  const first = await reader.read();
  assert.is(first.value!.length, 64 << 10);
  assert.is(ls(spool).length, 1, "the spool exists while the stream is read");
  const out = join(dir, "out.db");
  writeFileSync(out, first.value!);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    writeFileSync(out, value, { flag: "a" });
  }
  assert.equal(ls(spool), [], "the spool is removed at the end");
  sameAs(out, src);
});

test("a WAL source is read from a snapshot where its writers respect it: no spool, commits during the stream are not in it", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  const src = nativeDb(join(dir, "src.db"), 3000, "wal");
  const before = join(dir, "before.db");
  using db = sqlite.open(src);
  await sqlite.backup(db, before);
  // verifySource: false says no other process writes it: the snapshot route in every runtime.
  const reader = sqlite.backupToStream(db, { tempDir: spool, chunkSize: 64 << 10, verifySource: false }).getReader();
  const out = join(dir, "out.db");
  const first = await reader.read();
  writeFileSync(out, first.value!);
  assert.equal(ls(spool), [], "no spool: the pages come from the snapshot");
  db.exec("BEGIN; DELETE FROM t WHERE id % 3 = 0; INSERT INTO t(v, s) SELECT v, s FROM t LIMIT 500; COMMIT");
  // The snapshot holds the checkpoint back (not the writer): it cannot get past our read mark.
  const held = db.get<{ busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!;
  assert.is(held.busy, 1, "a checkpoint cannot truncate the WAL under the snapshot");
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    writeFileSync(out, value, { flag: "a" });
  }
  sameAs(out, before);
  assert.is(db.get<{ busy: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!.busy, 0, "the snapshot is released at the end");
});

test("the default route: a snapshot for a WAL source where file locks are real, a spool otherwise", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  for (const mode of ["wal", "delete"] as const) {
    const src = nativeDb(join(dir, `${mode}.db`), 1000, mode);
    using db = sqlite.open(src);
    const reader = sqlite.backupToStream(db, { tempDir: spool, chunkSize: 4096 }).getReader();
    await reader.read();
    const snapshot = mode === "wal" && sqlite.locking === "os";
    assert.is(ls(spool).length, snapshot ? 0 : 1, `${mode}, locking ${sqlite.locking}`);
    await reader.cancel();
    assert.equal(ls(spool), []);
  }
});

test("a rollback-journal file whose writers wait for us: read straight from it, the lock released once the spool holds the rest", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  const src = nativeDb(join(dir, "src.db"), 3000, "delete");
  const before = join(dir, "before.db");
  using db = sqlite.open(src, { busyTimeoutMs: 0 }); // a busy wait would block the copy's callbacks
  await sqlite.backup(db, before);
  // verifySource: false says no other process writes it: the held route in every runtime.
  const reader = sqlite.backupToStream(db, { tempDir: spool, chunkSize: 4096, verifySource: false }).getReader();
  const out = join(dir, "out.db");
  writeFileSync(out, (await reader.read()).value!);
  assert.is(ls(spool).length, 1, "the spool exists while the stream is read");
  // The writer waits for the copy into the spool, not for the consumer.
  const t0 = performance.now();
  for (;;) {
    try {
      db.exec("DELETE FROM t WHERE id % 3 = 0");
      break;
    } catch (e) {
      expectCode(e, "SQLITE_BUSY");
      assert.ok(performance.now() - t0 < 5000, "the lock is released once the spool is written");
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  db.close(); // the stream no longer needs the source
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    writeFileSync(out, value, { flag: "a" });
  }
  sameAs(out, before);
  assert.equal(ls(spool), [], "the spool is removed at the end");
});

test("an in-memory source: the stream holds what backup() into a file holds", async () => {
  const dir = tmpDir("stream");
  using db = sqlite.open(":memory:");
  fill(db, 2000);
  db.exec("CREATE INDEX ts ON t(s); PRAGMA user_version = 7");
  const ref = join(dir, "ref.db");
  await sqlite.backup(db, ref);
  const out = join(dir, "out.db");
  await toFile(sqlite.backupToStream(db, { tempDir: tmpDir("spool") }), out);
  sameAs(out, ref);
  assert.is(cli(out, "PRAGMA user_version").trim(), "7");
});

test("progress: the copy's onProgress ends at remaining 0, onStreamProgress counts the bytes handed out", async () => {
  const dir = tmpDir("stream");
  for (const mode of ["delete", "wal"] as const) {
    const src = nativeDb(join(dir, `${mode}.db`), 2000, mode);
    using db = sqlite.open(src);
    const copy: number[] = [];
    const bytes: number[] = [];
    let total = 0;
    const sizes = await toFile(sqlite.backupToStream(db, {
      tempDir: tmpDir("spool"), chunkSize: 100_000, verifySource: false,
      onProgress: (p) => void copy.push(p.remaining),
      onStreamProgress: (p) => {
        bytes.push(p.bytes);
        total = p.totalBytes;
      },
    }), join(dir, `${mode}-out.db`));
    assert.is(copy.at(-1), 0, mode);
    assert.ok(copy.length >= 1);
    assert.equal(bytes, sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b)), mode);
    assert.is(total, sizes.reduce((a, b) => a + b));
    // Whole pages per chunk: 100,000 bytes is 24 pages of 4096.
    if (mode === "wal") assert.is(sizes[0], 24 * 4096);
  }
});

test("gzip: CompressionStream on the way out (the native gunzip and sqlite3 read it), DecompressionStream on the way back", async () => {
  const dir = tmpDir("stream");
  const src = nativeDb(join(dir, "src.db"), 2000, "wal");
  using db = sqlite.open(src);
  db.exec("CREATE TABLE text(s TEXT); INSERT INTO text SELECT 'the same sentence, again and again: ' || s FROM t");
  const gz = join(dir, "backup.db.gz");
  await toFile(sqlite.backupToStream(db, { tempDir: tmpDir("spool") }).pipeThrough(new CompressionStream("gzip")), gz);
  const unzipped = join(dir, "gunzipped.db");
  writeFileSync(unzipped, execFileSync("gunzip", ["-c", gz], { maxBuffer: 64 << 20 }));
  sameAs(unzipped, src);
  const restored = join(dir, "restored.db");
  const body = (Readable.toWeb(createReadStream(gz)) as ReadableStream<Uint8Array<ArrayBuffer>>).pipeThrough(new DecompressionStream("gzip"));
  const result = await sqlite.restoreFromStream(body, restored);
  assert.is(result.pageCount, Number(cli(src, "PRAGMA page_count").trim()));
  sameAs(restored, src);
});

test("Node streams: Readable.fromWeb into fs.createWriteStream, fs.createReadStream into restoreFromStream", async () => {
  const dir = tmpDir("stream");
  const src = nativeDb(join(dir, "src.db"), 1500, "delete");
  using db = sqlite.open(src);
  const out = join(dir, "out.db");
  await pipeline(Readable.fromWeb(sqlite.backupToStream(db, { tempDir: tmpDir("spool") }) as import("node:stream/web").ReadableStream), createWriteStream(out));
  sameAs(out, src);
  const restored = join(dir, "restored.db");
  await sqlite.restoreFromStream(createReadStream(out, { highWaterMark: 7000 }), restored);
  sameAs(restored, src);
});

test("restore: 1-byte chunks and 16 MiB chunks give the same database", async () => {
  const dir = tmpDir("stream");
  const small = nativeDb(join(dir, "small.db"), 60, "delete");
  const bytes = readFileSync(small);
  async function* oneByteAtATime() {
    for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
  }
  await sqlite.restoreFromStream(oneByteAtATime(), join(dir, "small-out.db"));
  sameAs(join(dir, "small-out.db"), small);

  const big = nativeDb(join(dir, "big.db"), 45_000, "wal");
  using db = sqlite.open(big);
  const sizes: number[] = [];
  const stream = sqlite.backupToStream(db, { chunkSize: 16 << 20, tempDir: tmpDir("spool"), verifySource: false })
    .pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        sizes.push(chunk.length);
        c.enqueue(chunk);
      },
    }));
  await sqlite.restoreFromStream(stream, join(dir, "big-out.db"));
  assert.is(sizes[0], 16 << 20);
  assert.ok(sizes.length >= 2, `${sizes.length} chunks`);
  sameAs(join(dir, "big-out.db"), big);
});

test("restore into an open Database: an in-memory one, and a file in use (copied into, not renamed over)", async () => {
  const dir = tmpDir("stream");
  // 2.6 MiB: its last part arrives after the last full write buffer.
  const src = nativeDb(join(dir, "src.db"), 5000, "delete");
  using mem = sqlite.open(":memory:");
  mem.exec("CREATE TABLE old(x); INSERT INTO old VALUES (1)");
  await sqlite.restoreFromStream(createReadStream(src), mem, { tempDir: tmpDir("stage") });
  assert.is(mem.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 5000);
  assert.is(mem.get("SELECT name FROM sqlite_schema WHERE name = 'old'"), undefined);

  const destPath = join(dir, "dest.db");
  nativeDb(destPath, 10, "wal");
  using dest = sqlite.open(destPath);
  const result = await sqlite.restoreFromStream(createReadStream(src), dest);
  assert.is(dest.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 5000, "the open connection sees the new content");
  assert.is(result.pageCount, Number(cli(src, "PRAGMA page_count").trim()));
  dest.close();
  sameAs(destPath, src);
  assert.equal(ls(dir).filter((f) => !/^(src|dest)\.db(-wal|-shm)?$/.test(f)), [], "no staging file left");
});

test("restore over an existing file that nobody has open: the staged copy is renamed into place", async () => {
  const dir = tmpDir("stream");
  const src = nativeDb(join(dir, "src.db"), 500, "delete");
  const destPath = nativeDb(join(dir, "dest.db"), 20, "delete");
  const result = await sqlite.restoreFromStream(createReadStream(src), destPath);
  assert.is(result.incremental, false);
  assert.is(result.pagesWritten, result.pageCount);
  assert.equal(readFileSync(destPath), readFileSync(src), "the stream's bytes are the file");
  assert.equal(ls(dir), ["dest.db", "src.db"]);
});

/** A stream of `bytes` in chunks of `size`. */
function streamOf(bytes: Uint8Array, size = 10_000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

test("restore of a stream cut short, too long or not a database: SqliteError, destination unchanged, no temporary file", async () => {
  const dir = tmpDir("stream");
  const stage = tmpDir("stage");
  const src = nativeDb(join(dir, "src.db"), 600, "delete");
  const good = readFileSync(src);
  const destPath = nativeDb(join(dir, "dest.db"), 30, "delete");
  const destBefore = readFileSync(destPath);
  const random = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
    return b;
  };
  const garbagePages = new Uint8Array(good.length);
  garbagePages.set(good.subarray(0, 4096));
  garbagePages.set(random(good.length - 4096), 4096);
  const cases: [string, Uint8Array, string][] = [
    ["cut at a page boundary", good.subarray(0, good.length / 2 - ((good.length / 2) % 4096)), "SQLITE_CORRUPT"],
    ["cut inside a page", good.subarray(0, good.length - 100), "SQLITE_CORRUPT"],
    ["cut inside the header", good.subarray(0, 50), "SQLITE_CORRUPT"],
    ["a page too long", new Uint8Array([...good, ...new Uint8Array(4096)]), "SQLITE_CORRUPT"],
    ["a byte too long", new Uint8Array([...good, 0]), "SQLITE_CORRUPT"],
    ["garbage", random(good.length), "SQLITE_NOTADB"],
    ["empty", new Uint8Array(0), "SQLITE_NOTADB"],
    ["a header over garbage pages", garbagePages, "SQLITE_CORRUPT"],
  ];
  for (const [what, bytes, code] of cases) {
    for (const dest of [destPath, join(dir, "new.db")]) {
      const e = await rejects(sqlite.restoreFromStream(streamOf(bytes), dest, { tempDir: stage }));
      expectCode(e, code);
      assert.ok((e as Error).message.startsWith("restoreFromStream:"), (e as Error).message);
      assert.equal(readFileSync(destPath), destBefore, `${what}: the destination is byte for byte what it was`);
      assert.equal(ls(dir), ["dest.db", "src.db"], `${what}: nothing left beside it (${dest})`);
      assert.equal(ls(stage), [], `${what}: nothing left in tempDir`);
    }
  }
  // Into an open in-memory database (staged in tempDir, then copied): its content stays.
  using mem = sqlite.open(":memory:");
  mem.exec("CREATE TABLE keep(x); INSERT INTO keep VALUES (42)");
  for (const [what, bytes, code] of cases) {
    expectCode(await rejects(sqlite.restoreFromStream(streamOf(bytes), mem, { tempDir: stage })), code);
    assert.is(mem.get<{ x: number }>("SELECT x FROM keep")!.x, 42, what);
    assert.equal(ls(stage), [], what);
  }
});

test("restore: an input that fails, an abort, a chunk that is not bytes: the input's error, dest unchanged, the input cancelled", async () => {
  const dir = tmpDir("stream");
  const stage = tmpDir("stage");
  const src = nativeDb(join(dir, "src.db"), 600, "delete");
  const good = readFileSync(src);
  const destPath = nativeDb(join(dir, "dest.db"), 30, "delete");
  const destBefore = readFileSync(destPath);
  const check = (what: string) => {
    assert.equal(readFileSync(destPath), destBefore, what);
    assert.equal(ls(dir), ["dest.db", "src.db"], what);
    assert.equal(ls(stage), [], what);
  };

  const boom = new Error("connection reset");
  let sent = 0;
  const failing = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent > 50_000) return c.error(boom);
      c.enqueue(good.slice(sent, sent + 10_000));
      sent += 10_000;
    },
  });
  assert.is(await rejects(sqlite.restoreFromStream(failing, destPath, { tempDir: stage })), boom);
  check("failing input");

  // Abort while the next chunk is awaited: at once, and the input is cancelled.
  const ac = new AbortController();
  let cancelled: unknown = "not cancelled";
  let pulls = 0;
  const stalled = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(good.slice(0, 8192));
      else setTimeout(() => ac.abort(new Error("stop")), 20); // and no chunk: the read waits
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const e = await rejects(sqlite.restoreFromStream(stalled, destPath, { tempDir: stage, signal: ac.signal }));
  assert.is((e as Error).message, "stop");
  assert.is((cancelled as Error).message, "stop");
  check("abort");

  async function* notBytes() {
    yield good.subarray(0, 4096);
    yield "text" as unknown as Uint8Array;
  }
  assert.instance(await rejects(sqlite.restoreFromStream(notBytes(), destPath, { tempDir: stage })), TypeError);
  check("a string chunk");
});

test("abort and cancel mid-stream: the stream errors (or ends), the spool is removed, the snapshot released", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  for (const mode of ["delete", "wal"] as const) {
    const src = nativeDb(join(dir, `${mode}.db`), 2000, mode);
    using db = sqlite.open(src);
    const released = () => {
      assert.equal(ls(spool), [], `${mode}: no spool left`);
      if (mode === "wal") assert.is(db.get<{ busy: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!.busy, 0, "no snapshot held");
    };
    const options = { tempDir: spool, chunkSize: 16384, verifySource: false };

    const ac = new AbortController();
    const reader = sqlite.backupToStream(db, { ...options, signal: ac.signal }).getReader();
    await reader.read();
    const reason = new Error("user abort");
    ac.abort(reason);
    assert.is(await rejects(reader.read()), reason, "the stream errors with the signal's reason");
    await new Promise((r) => setTimeout(r, 10));
    released();

    const r2 = sqlite.backupToStream(db, options).getReader();
    await r2.read();
    await r2.cancel("no thanks");
    assert.is((await r2.read()).done, true);
    released();

    // Aborted before the first pull: the stream errors, nothing was made.
    const gone = new AbortController();
    gone.abort(new Error("too late"));
    assert.is((await rejects(sqlite.backupToStream(db, { ...options, signal: gone.signal }).getReader().read()) as Error).message, "too late");
    released();
  }
});

test("abort while the spool is being written: the backup stops, the stream errors, the spool is removed", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  using db = await inMemory(nativeDb(join(dir, "src.db"), 3000, "delete"));
  const ac = new AbortController();
  let calls = 0;
  const stream = sqlite.backupToStream(db, {
    tempDir: spool, signal: ac.signal, pagesPerStep: 16,
    onProgress: () => {
      if (++calls === 2) ac.abort(new Error("enough"));
    },
  });
  assert.is((await rejects(stream.getReader().read()) as Error).message, "enough");
  assert.is(calls, 2, "no step after the abort");
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(ls(spool), []);
});

test("cancel while the spool is being written: the backup stops at once, the spool is removed", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  using db = await inMemory(nativeDb(join(dir, "src.db"), 3000, "delete"));
  let steps = 0;
  let cancelled = false;
  const reader = sqlite.backupToStream(db, {
    tempDir: spool, pagesPerStep: 16, pauseMs: 5,
    onProgress: () => {
      steps++;
      assert.not.ok(cancelled, "no step after the cancel");
    },
  }).getReader();
  const read = reader.read(); // starts the spool
  while (steps < 2) await new Promise((r) => setTimeout(r, 1));
  cancelled = true;
  await reader.cancel("no longer wanted");
  assert.is((await read).done, true);
  assert.equal(ls(spool), []);
});

test("a consumer that fails: pipeTo rejects, the stream is cancelled, nothing is left", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  for (const mode of ["delete", "wal"] as const) {
    using db = sqlite.open(nativeDb(join(dir, `${mode}.db`), 2000, mode));
    let writes = 0;
    const full = new Error("disk full");
    const sink = new WritableStream<Uint8Array>({
      write() {
        if (++writes === 3) throw full;
      },
    });
    assert.is(await rejects(sqlite.backupToStream(db, { tempDir: spool, chunkSize: 8192, verifySource: false }).pipeTo(sink)), full);
    assert.equal(ls(spool), [], mode);
    if (mode === "wal") assert.is(db.get<{ busy: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!.busy, 0);
  }
});

test("the source closed while its copy is made errors the stream; a snapshot taken before outlives it", async () => {
  const dir = tmpDir("stream");
  const spool = tmpDir("spool");
  const db = await inMemory(nativeDb(join(dir, "src.db"), 3000, "delete"));
  let closed = false;
  const stream = sqlite.backupToStream(db, {
    tempDir: spool, pagesPerStep: 16,
    onProgress: () => {
      if (!closed) db.close();
      closed = true;
    },
  });
  const e = await rejects(toFile(stream, join(dir, "partial.db")));
  assert.instance(e, Error);
  assert.equal(ls(spool), []);

  const walSrc = nativeDb(join(dir, "wal.db"), 3000, "wal");
  const wal = sqlite.open(walSrc);
  const reader = sqlite.backupToStream(wal, { tempDir: spool, chunkSize: 8192, verifySource: false }).getReader();
  const out = join(dir, "out.db");
  writeFileSync(out, (await reader.read()).value!);
  wal.close();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    writeFileSync(out, value, { flag: "a" });
  }
  sameAs(out, walSrc);
});

test("options: unknown keys, destination options and wrong types are TypeErrors", async () => {
  using db = sqlite.open(":memory:");
  for (const bad of [{ destName: "main" }, { incremental: true }, { chunkSize: 0 }, { chunkSize: 1.5 }, { tempdir: "/tmp" }, { onStreamProgress: 1 }, { signal: {} }]) {
    assert.throws(() => sqlite.backupToStream(db, bad as never), (e: unknown) => e instanceof TypeError, JSON.stringify(bad));
  }
  assert.throws(() => sqlite.backupToStream({} as Database), (e: unknown) => e instanceof TypeError);
  const dir = tmpDir("stream");
  for (const bad of [{ pagesPerStep: 5 }, { sourceName: "main" }, { busyTimeoutMs: -1 }, { tempDir: 3 }]) {
    assert.instance(await rejects(sqlite.restoreFromStream(streamOf(new Uint8Array(1)), join(dir, "x.db"), bad as never)), TypeError, JSON.stringify(bad));
  }
  assert.instance(await rejects(sqlite.restoreFromStream(42 as never, join(dir, "x.db"))), TypeError);
  assert.instance(await rejects(sqlite.restoreFromStream(streamOf(new Uint8Array(1)), 42 as never)), TypeError);
  assert.equal(ls(dir), []);
});

test("no heap memory is kept: memoryUsed() is back where it was after streams of every kind", async () => {
  const dir = tmpDir("stream");
  const src = nativeDb(join(dir, "src.db"), 1000, "wal");
  using db = sqlite.open(src);
  using mem = sqlite.open(":memory:");
  fill(mem, 500);
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for (const reader = s.getReader(); !(await reader.read()).done;);
  };
  const round = async () => {
    await drain(sqlite.backupToStream(db, { verifySource: false }));
    await drain(sqlite.backupToStream(db));
    await drain(sqlite.backupToStream(mem));
    const r = sqlite.backupToStream(db, { chunkSize: 4096, verifySource: false }).getReader();
    await r.read();
    await r.cancel();
    await sqlite.restoreFromStream(createReadStream(src), join(dir, "out.db"));
    await rejects(sqlite.restoreFromStream(streamOf(readFileSync(src).subarray(0, 9000)), join(dir, "out.db")));
  };
  await round(); // warm-up: SQLite keeps some memory after the first use of a path (caches, lookaside)
  const before = sqlite.memoryUsed();
  await round();
  assert.is(sqlite.memoryUsed(), before);
  assert.ok(existsSync(join(dir, "out.db")));
});

test.run();
