// The write-coalescing / read-ahead layer (src/vfs/buffered.ts): what others see, and when.
// Other connections of this process, other file handles (as another process would read) and
// the native sqlite3 CLI must never see stale or missing data at the points SQLite relies on.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import {
  SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_LOCK_EXCLUSIVE, SQLITE_LOCK_NONE, SQLITE_LOCK_SHARED,
  SQLITE_OPEN_CREATE, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READWRITE, VfsError, type VfsFile,
} from "../src/index.js";
import { BufferedFile } from "../src/vfs/buffered.js";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { integrity, sqlitePromise, tmpDir } from "./helpers.js";

const FLAGS = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB;
const vfs = new NodeFsVfs();
const openRaw = (p: string) => vfs.open(p, FLAGS).file;
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
const onDisk = (p: string) => new Uint8Array(readFileSync(p));
/** helpers.dump() with room for the multi-MiB dumps here. */
const dump = (file: string) => execFileSync("sqlite3", ["-batch", file, ".dump"], { encoding: "utf8", maxBuffer: 256 << 20 });
const read = (f: VfsFile, off: number, n: number) => {
  const b = new Uint8Array(n);
  f.read(b, off);
  return b;
};

for (const mode of ["DELETE", "WAL"] as const) {
  test(`${mode}: two connections with synchronous=OFF see each other's commits`, async () => {
    const sqlite = await sqlitePromise;
    const file = join(tmpDir("buf"), "two.db");
    using a = sqlite.open(file);
    a.exec(`PRAGMA journal_mode=${mode}; PRAGMA synchronous=OFF;
            CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
            WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3000)
            INSERT INTO t SELECT i, printf('%0500d', i) FROM s;`);
    using b = sqlite.open(file);
    b.exec("PRAGMA synchronous=OFF");
    for (let round = 1; round <= 4; round++) {
      // b scans everything (sequential reads: read-ahead fills), then a rewrites every row
      assert.is(b.get<{ n: number }>("SELECT count(*) n FROM t WHERE v = printf('%0500d', id + ?)", [round - 1])!.n, 3000);
      a.run("UPDATE t SET v = printf('%0500d', id + ?)", [round]);
      assert.is(b.get<{ n: number }>("SELECT count(*) n FROM t WHERE v = printf('%0500d', id + ?)", [round])!.n, 3000, `round ${round}`);
      b.run("INSERT INTO t VALUES (?, 'from b')", [10_000 + round]);
      assert.is(a.get<{ v: string }>("SELECT v FROM t WHERE id = ?", [10_000 + round])?.v, "from b");
      b.run("DELETE FROM t WHERE id = ?", [10_000 + round]);
    }
    if (mode === "WAL") {
      a.exec("PRAGMA wal_checkpoint(TRUNCATE)"); // checkpoint writes the database file under b's read-ahead
      a.run("UPDATE t SET v = 'after checkpoint' WHERE id = 7");
      a.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      assert.is(b.get<{ v: string }>("SELECT v FROM t WHERE id = 7")?.v, "after checkpoint");
    }
    a.close();
    b.close();
    assert.is(integrity(file), "ok");
  });
}

test("a backup with synchronous=OFF destination reads back in the native CLI", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("buf");
  using src = sqlite.open(join(dir, "src.db"));
  src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, w TEXT); CREATE INDEX tw ON t(w);
            WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
            INSERT INTO t SELECT i, zeroblob(i % 900), printf('w%d', i * 7919 % 20011) FROM s;`);
  for (const pagesPerStep of [-1, 7, 100]) {
    const dest = join(dir, `dst${pagesPerStep}.db`);
    using d = sqlite.open(dest);
    d.exec("PRAGMA synchronous=OFF");
    await sqlite.backup(src, d, { pagesPerStep });
    // still open: everything must already be in the file for another process
    assert.is(integrity(dest), "ok", `pagesPerStep ${pagesPerStep}`);
    assert.is(dump(dest), dump(join(dir, "src.db")), `pagesPerStep ${pagesPerStep}`);
  }
});

test("a read right after a buffered write sees it, also inside a read-ahead window", () => {
  const p = join(tmpDir("buf"), "raw.db");
  const f = openRaw(p);
  try {
    for (let i = 0; i < 64; i++) f.write(bytes(4096, i), i * 4096);
    for (let i = 0; i < 4; i++) assert.equal(read(f, i * 4096, 4096), bytes(4096, i)); // fills read-ahead
    f.write(bytes(4096, 99), 6 * 4096); // inside the window just read ahead
    assert.equal(read(f, 5 * 4096, 4096), bytes(4096, 5));
    assert.equal(read(f, 6 * 4096, 4096), bytes(4096, 99));
    f.write(bytes(100, 98), 64 * 4096); // extends the file, buffered
    assert.is(f.size(), 64 * 4096 + 100);
    assert.equal(read(f, 64 * 4096, 100), bytes(100, 98));
  } finally {
    f.close();
  }
});

test("writes reach the file at sync, lock changes, close, another file's write, a VFS delete", () => {
  const dir = tmpDir("buf");
  const [p, q, r] = [join(dir, "a.db"), join(dir, "b.db"), join(dir, "c.db")];
  const f = openRaw(p);
  const g = openRaw(q);
  try {
    f.write(bytes(4096, 1), 0);
    f.sync(0);
    assert.equal(onDisk(p), bytes(4096, 1));
    f.write(bytes(4096, 2), 4096);
    f.lockChanged!(SQLITE_LOCK_NONE);
    assert.equal(onDisk(p).subarray(4096), bytes(4096, 2));
    f.write(bytes(4096, 3), 8192);
    g.write(bytes(10, 4), 0); // the OS must see writes in SQLite's order: f's first
    assert.equal(onDisk(p).subarray(8192), bytes(4096, 3));
    openRaw(r).close();
    vfs.delete(r, false); // e.g. deleting a journal commits: g's pending write must land first
    assert.equal(onDisk(q), bytes(10, 4));
    g.write(bytes(4096, 5), 4096);
  } finally {
    f.close();
    g.close();
  }
  assert.equal(onDisk(q).subarray(4096), bytes(4096, 5));
});

test("writes are on disk once the task that made them ends", async () => {
  const p = join(tmpDir("buf"), "task.db");
  const f = openRaw(p);
  try {
    f.write(bytes(4096, 6), 0);
    await Promise.resolve();
    assert.equal(onDisk(p), bytes(4096, 6));
  } finally {
    f.close();
  }
});

test("read-ahead is dropped when a new transaction starts (another process may have written)", () => {
  const p = join(tmpDir("buf"), "other.db");
  const f = openRaw(p);
  try {
    f.write(bytes(65536, 7), 0);
    f.lockChanged!(SQLITE_LOCK_SHARED);
    assert.equal(read(f, 0, 4096), bytes(4096, 7)); // read-ahead now holds [0, 64 KiB)
    f.lockChanged!(SQLITE_LOCK_NONE);
    const fd = openSync(p, "r+"); // "another process"
    writeSync(fd, bytes(4096, 8), 0, 4096, 4096);
    closeSync(fd);
    f.lockChanged!(SQLITE_LOCK_SHARED);
    assert.equal(read(f, 4096, 4096), bytes(4096, 8));
  } finally {
    f.close();
  }
});

test("a new transaction on any file drops read-ahead of files that take no locks (e.g. a persistent journal)", () => {
  const dir = tmpDir("buf");
  const db = openRaw(join(dir, "x.db"));
  const journal = openRaw(join(dir, "x.db-journal"));
  try {
    journal.write(bytes(65536, 11), 0);
    assert.equal(read(journal, 0, 4096), bytes(4096, 11)); // read-ahead holds [0, 64 KiB)
    const fd = openSync(join(dir, "x.db-journal"), "r+"); // "another process" rewrites it
    writeSync(fd, bytes(4096, 12), 0, 4096, 4096);
    closeSync(fd);
    db.lockChanged!(SQLITE_LOCK_SHARED);
    assert.equal(read(journal, 4096, 4096), bytes(4096, 12));
  } finally {
    db.close();
    journal.close();
  }
});

test("a write or truncate through another handle of the same file invalidates read-ahead", () => {
  const p = join(tmpDir("buf"), "shared.db");
  const a = openRaw(p);
  const b = openRaw(p);
  try {
    a.write(bytes(65536, 9), 0);
    a.lockChanged!(SQLITE_LOCK_SHARED);
    assert.equal(read(a, 0, 4096), bytes(4096, 9));
    b.lockChanged!(SQLITE_LOCK_SHARED);
    b.lockChanged!(SQLITE_LOCK_EXCLUSIVE);
    b.write(bytes(4096, 10), 8192); // buffered in b; a's read must flush it and skip its read-ahead
    assert.equal(read(a, 8192, 4096), bytes(4096, 10));
    b.truncate(4096);
    assert.is(a.read(new Uint8Array(4096), 8192), 0);
    assert.equal(read(a, 0, 4096), bytes(4096, 9));
  } finally {
    a.close();
    b.close();
  }
});

/** A file in memory that counts the reads reaching it (below the buffering layer). */
class CountingFile implements VfsFile {
  data = new Uint8Array(0);
  reads = 0;
  constructor(readonly lockKey: string) {}
  close() {}
  read(dst: Uint8Array, offset: number) {
    this.reads++;
    const got = this.data.subarray(offset, offset + dst.length);
    dst.set(got);
    return got.length;
  }
  write(src: Uint8Array, offset: number) {
    if (offset + src.length > this.data.length) {
      const grown = new Uint8Array(offset + src.length);
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(src, offset);
  }
  truncate(size: number) {
    this.data = this.data.slice(0, size);
  }
  sync() {}
  size() {
    return this.data.length;
  }
  sectorSize() {
    return 4096;
  }
  deviceCharacteristics() {
    return 0;
  }
}

test("a connection's own write outside its read-ahead keeps it; inside it, or through another handle, drops it", () => {
  const inner = new CountingFile("/counting");
  for (let i = 0; i < 64; i++) inner.write(bytes(4096, i), i * 4096);
  const f = new BufferedFile(inner);
  const other = new BufferedFile(new CountingFile("/counting")); // same lockKey: another handle of the file
  try {
    // Sequential reads: pages 0-15 come in one read-ahead, page 16 starts the next (pages 16-47).
    for (let i = 0; i <= 16; i++) assert.equal(read(f, i * 4096, 4096), bytes(4096, i));
    const filled = inner.reads;
    f.write(bytes(4096, 90), 0); // behind the window (a cache spill of a page read earlier)
    assert.equal(read(f, 17 * 4096, 4096), bytes(4096, 17));
    assert.is(inner.reads, filled, "served from the kept read-ahead");
    f.write(bytes(4096, 91), 18 * 4096); // inside the window
    assert.equal(read(f, 18 * 4096, 4096), bytes(4096, 91));
    assert.ok(inner.reads > filled, "the window was read again");
    const refilled = inner.reads;
    assert.equal(read(f, 19 * 4096, 4096), bytes(4096, 19));
    assert.is(inner.reads, refilled);
    other.write(bytes(4096, 92), 60 * 4096); // another handle, far from the window
    assert.equal(read(f, 20 * 4096, 4096), bytes(4096, 20));
    assert.ok(inner.reads > refilled, "another handle's write makes every other read-ahead stale");
    assert.equal(read(f, 0, 4096), bytes(4096, 90));
  } finally {
    f.close();
    other.close();
  }
});

test("read-ahead follows a backward scan, and two scans side by side, each from its own window", () => {
  const pages = 512;
  const inner = new CountingFile("/scans");
  for (let i = 0; i < pages; i++) inner.write(bytes(4096, i), i * 4096);
  const f = new BufferedFile(inner);
  try {
    // Backwards, as quick_check walks a table's b-tree, skipping a page now and then.
    for (let i = pages - 1; i >= 0; i--) if (i % 50 !== 7) assert.equal(read(f, i * 4096, 4096), bytes(4096, i));
    assert.ok(inner.reads <= 12, `a backward scan of ${pages} pages took ${inner.reads} reads`);
    // Two forward scans interleaved (a table's leaves and, ~100 pages on, their overflow pages),
    // with a page far from both read now and then (an index).
    const before = inner.reads;
    for (let i = 0; i < 256; i++) {
      assert.equal(read(f, i * 4096, 4096), bytes(4096, i));
      assert.equal(read(f, (i + 100) * 4096, 4096), bytes(4096, i + 100));
      if (i % 64 === 5) assert.equal(read(f, (pages - 1 - i) * 4096, 4096), bytes(4096, pages - 1 - i));
    }
    assert.ok(inner.reads - before <= 24, `two interleaved scans of 256 pages took ${inner.reads - before} reads`);
  } finally {
    f.close();
  }
});

test("a small read repeated between writes (each transaction's change counter) is not read ahead", () => {
  const inner = new CountingFile("/counter");
  for (let i = 0; i < 64; i++) inner.write(bytes(4096, i), i * 4096);
  const f = new BufferedFile(inner);
  try {
    let ahead = 0;
    const innerRead = inner.read.bind(inner);
    inner.read = (dst, offset) => {
      if (dst.length > 16) ahead++;
      return innerRead(dst, offset);
    };
    for (let t = 0; t < 20; t++) {
      assert.equal(read(f, 24, 16), bytes(4096, t === 0 ? 0 : 100 + t - 1).subarray(24, 40));
      f.write(bytes(4096, 100 + t), 0); // the commit rewrites page 1: what was read ahead is stale
      f.sync(0);
    }
    // The first reads may read ahead (a file's first pages are read together when it opens).
    assert.ok(ahead <= 2, `${ahead} of 20 change-counter reads were read ahead`);
  } finally {
    f.close();
  }
});

/** A file whose writes fail: how errors of deferred writes come out. */
class FailingFile implements VfsFile {
  readonly lockKey = "/failing";
  constructor(readonly error: Error & { code?: string }) {}
  close() {}
  read() {
    return 0;
  }
  write(): void {
    throw this.error;
  }
  truncate() {}
  sync() {}
  size() {
    return 0;
  }
  sectorSize() {
    return 4096;
  }
  deviceCharacteristics() {
    return 0;
  }
}

// A failure is a VfsError with its code (core/errors.ts errorCode): SQLITE_FULL for a full disk.
test("a failed flush fails the call that flushed it: IOERR_WRITE, or SQLITE_FULL for a full disk", async () => {
  const eio = new BufferedFile(new FailingFile(Object.assign(new Error("EIO: i/o error"), { code: "EIO" })));
  eio.write(bytes(512, 1), 0);
  try {
    eio.sync(0);
    assert.unreachable("sync should fail");
  } catch (e) {
    assert.instance(e, VfsError);
    assert.is((e as VfsError).code, SQLITE_IOERR_WRITE);
  }
  eio.close();
  const full = new BufferedFile(new FailingFile(Object.assign(new Error("ENOSPC: no space"), { code: "ENOSPC" })));
  full.write(bytes(512, 1), 0);
  await Promise.resolve(); // the end-of-task flush fails with no call to fail...
  assert.throws(() => full.size(), (e: unknown) => e instanceof VfsError && e.code === SQLITE_FULL && /ENOSPC/.test(e.message)); // ...so the next call reports it
  assert.is(full.size(), 0, "reported once");
  full.close();
});

test.run();
