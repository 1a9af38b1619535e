// Write-behind in the Node VFS (src/node/fs-vfs.ts) and backup()'s write-back before the step
// that commits: the destination's data goes to disk through fdatasync in libuv's thread pool, so
// the commit's own sync does not block the event loop. Observed at the fs calls themselves (the
// real node:fs functions, wrapped), never by timing; the native CLI reads every result.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { SQLITE_IOERR_FSYNC, SqliteError } from "../src/index.js";
import { cli, fill, integrity, sqlitePromise, tmpDir } from "./helpers.js";

type Event = { kind: "async-start" | "async-done" | "sync"; path: string };

/**
 * Runs fn with node:fs's fdatasync / fsyncSync / fdatasyncSync recorded by the path of the file
 * (and fdatasync failing with EIO if asked).
 */
async function withSyncCalls<T>(fn: (events: Event[]) => Promise<T>, failAsync = false): Promise<T> {
  const real = { openSync: fs.openSync, fdatasync: fs.fdatasync, fsyncSync: fs.fsyncSync, fdatasyncSync: fs.fdatasyncSync };
  const events: Event[] = [];
  const paths = new Map<number, string>();
  const path = (fd: number) => paths.get(fd) ?? `fd ${fd}`;
  fs.openSync = ((p: string, flags?: fs.OpenMode, mode?: fs.Mode) => {
    const fd = real.openSync(p, flags ?? "r", mode);
    paths.set(fd, p);
    return fd;
  }) as typeof fs.openSync;
  fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    events.push({ kind: "async-start", path: path(fd) });
    const done = (e: NodeJS.ErrnoException | null) => {
      events.push({ kind: "async-done", path: path(fd) });
      cb(e);
    };
    if (failAsync) setImmediate(() => done(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5 })));
    else real.fdatasync(fd, done);
  }) as typeof fs.fdatasync;
  fs.fsyncSync = (fd) => (events.push({ kind: "sync", path: path(fd) }), real.fsyncSync(fd));
  fs.fdatasyncSync = (fd) => (events.push({ kind: "sync", path: path(fd) }), real.fdatasyncSync(fd));
  syncBuiltinESMExports(); // the VFS imports node:fs as an ES namespace
  try {
    return await fn(events);
  } finally {
    Object.assign(fs, real);
    syncBuiltinESMExports();
  }
}

/** A ~40 MiB source: more than the 16 MiB write-behind threshold, and many adaptive steps. */
async function bigSource() {
  const sqlite = await sqlitePromise;
  const file = join(tmpDir("wb"), "src.db");
  const db = sqlite.open(file);
  fill(db, 90_000);
  return { sqlite, db, file };
}

test("backup() has the destination written back off the thread before the step that commits", async () => {
  const { sqlite, db } = await bigSource();
  const dest = join(tmpDir("wb"), "dest.db");
  const events = await withSyncCalls(async (events) => {
    const r = await sqlite.backup(db, dest);
    assert.ok(r.steps > 2, `adaptive steps: ${r.steps}`);
    return events;
  });
  db.close();
  const mine = events.filter((e) => e.path === dest);
  const firstSync = mine.findIndex((e) => e.kind === "sync");
  assert.ok(firstSync > 0, JSON.stringify(events));
  const before = mine.slice(0, firstSync);
  // write-behind during the copy, then the write-back awaited before the committing step
  assert.ok(before.filter((e) => e.kind === "async-start").length >= 2, JSON.stringify(before));
  assert.is(before.at(-1)!.kind, "async-done", "the last write-back had finished when the commit began");
  assert.is(integrity(dest), "ok");
  assert.is(cli(dest, "SELECT count(*) FROM t").trim(), "90000");
});

test("one step: write-behind starts while SQLite still writes, and the copy is whole", async () => {
  const { sqlite, db } = await bigSource();
  const dest = join(tmpDir("wb"), "dest.db");
  const events = await withSyncCalls(async (events) => {
    await sqlite.backup(db, dest, { pagesPerStep: -1 });
    return events;
  });
  db.close();
  const mine = events.filter((e) => e.path === dest);
  const firstSync = mine.findIndex((e) => e.kind === "sync");
  assert.ok(mine.slice(0, firstSync).some((e) => e.kind === "async-start"), JSON.stringify(events));
  assert.is(integrity(dest), "ok");
});

test("a failed write-back fails the commit's sync: SQLITE_IOERR_FSYNC, destination as it was", async () => {
  const { sqlite, db } = await bigSource();
  const dir = tmpDir("wb");
  const existing = join(dir, "existing.db");
  cli(existing, "CREATE TABLE old(x); INSERT INTO old VALUES (42);");
  const fresh = join(dir, "fresh.db");
  using destDb = sqlite.open(existing);
  await withSyncCalls(async () => {
    for (const dest of [destDb, fresh]) {
      const err = await sqlite.backup(db, dest).then(() => null, (e: unknown) => e);
      assert.instance(err, SqliteError, String(err));
      assert.is((err as SqliteError).extendedCode, SQLITE_IOERR_FSYNC, (err as Error).message);
      assert.match((err as Error).message, /EIO/);
    }
  }, true);
  db.close();
  destDb.close();
  // the lost write-back is not forgotten by a later, successful sync either
  assert.is(cli(existing, "SELECT x FROM old").trim(), "42");
  assert.is(integrity(existing), "ok");
  assert.not.ok(fs.existsSync(fresh), "a destination this call created is removed");
});

test.run();
