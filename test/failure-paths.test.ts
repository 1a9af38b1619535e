// What a failing or refused backup() leaves: a full disk, a callback that rejects, option values
// that would stall the loop, the same file on both sides, a read-only file system, a hot journal
// on a read-only source. Every case checks the destination byte for byte and the files beside it.
// The full-disk and read-only cases mount a small tmpfs (root on Linux); elsewhere they are
// skipped with the reason printed.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_FULL, SqliteError } from "../src/index.js";
import { cli, fill, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

/** A tmpfs of `size` at a fresh directory (read-only with ro), or the reason there is none. */
function mountTmpfs(size: string, ro = false): { dir: string; unmount(): void } | string {
  const dir = tmpDir("mnt");
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}${ro ? ",ro" : ""}`, "tmpfs", dir], { encoding: "utf8" });
  if (r.status !== 0) return `cannot mount a tmpfs here (${(r.stderr || r.error?.message || "").trim()})`;
  return { dir, unmount: () => void spawnSync("umount", ["-l", dir]) };
}

/** A native database of `pages` 4 KiB pages of random blobs at `file`. */
function nativeDb(file: string, rows: number): void {
  cli(file, `PRAGMA page_size=4096; CREATE TABLE t(x BLOB); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO t SELECT randomblob(4000) FROM c;`);
}

const besides = (dir: string, name: string) => readdirSync(dir).filter((f) => f !== name).sort();

test("disk full over an existing backup: SQLITE_FULL, the old backup byte for byte, no journal beside it (every route)", async () => {
  const sqlite = await sqlitePromise;
  const m = mountTmpfs("1500k");
  if (typeof m === "string") return void console.log(`  skipped: ${m}`);
  try {
    const src = join(tmpDir("full"), "src.db");
    nativeDb(src, 300); // 1.2 MiB: its copy over the 0.6 MiB backup does not fit beside a journal
    const source = sqlite.open(src, { readonly: true });
    for (const incremental of ["auto", true, false] as const) {
      const dest = join(m.dir, "b.db");
      nativeDb(dest, 150);
      const before = readFileSync(dest);
      const e = await rejects(sqlite.backup(source, dest, { incremental }));
      assert.instance(e, SqliteError, `incremental ${incremental}: ${String(e)}`);
      assert.is((e as SqliteError).code, SQLITE_FULL, `incremental ${incremental}: ${(e as SqliteError).message}`);
      assert.ok(readFileSync(dest).equals(before), `incremental ${incremental}: the old backup is unchanged`);
      assert.equal(besides(m.dir, "b.db"), [], `incremental ${incremental}: nothing beside it`);
      assert.is(execFileSync("sqlite3", ["-readonly", dest, "PRAGMA integrity_check"], { encoding: "utf8" }).trim(), "ok");
      execFileSync("rm", ["-f", dest]);
    }
    source.close();
  } finally {
    m.unmount();
  }
});

test("an async onProgress that rejects aborts like a throw: the old backup unchanged, a new file not left", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("cb");
  const src = join(dir, "src.db");
  nativeDb(src, 400);
  const source = sqlite.open(src, { readonly: true });
  const old = join(dir, "old.db");
  nativeDb(old, 100);
  const before = readFileSync(old);
  const boom = new Error("upload failed");
  for (const incremental of ["auto", false] as const) {
    for (const dest of [old, join(dir, "new.db")]) {
      let calls = 0;
      const e = await rejects(sqlite.backup(source, dest, {
        incremental, pagesPerStep: 50,
        onProgress: async () => {
          await new Promise((r) => setTimeout(r, 1));
          if (++calls === 2) throw boom;
        },
      }));
      assert.is(e, boom, `incremental ${incremental}, ${dest}: rejects with the callback's error`);
      assert.is(calls, 2, "no step after the rejection");
      if (dest === old) assert.ok(readFileSync(old).equals(before), "the old backup is unchanged");
      else assert.not.ok(existsSync(dest), "the new file is removed");
      assert.equal(besides(dir, "").filter((f) => !["src.db", "old.db"].includes(f)), [], "no journal, temporary or lock file left");
    }
  }
  // An awaited onProgress that returns a step size sets it, as a synchronous one does.
  const r = await sqlite.backup(source, join(dir, "sized.db"), { incremental: false, onProgress: async () => 100 });
  assert.ok(r.steps <= 5 + 2, `steps of 100 pages: ${r.steps} steps for ${r.pageCount} pages`);
  source.close();
});

test("option values that would stall or misdirect the copy are a TypeError at the call", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("opt");
  const source = sqlite.open(join(dir, "src.db"));
  fill(source, 200);
  const dest = join(dir, "d.db");
  for (const pagesPerStep of [0, -0, 1.5, 2 ** 53, Number.NaN, Infinity]) {
    const e = await rejects(sqlite.backup(source, dest, { pagesPerStep }));
    assert.instance(e, TypeError, `pagesPerStep ${pagesPerStep}`);
    assert.match((e as Error).message, /pagesPerStep/);
  }
  for (const pauseMs of [-1, 2 ** 31, Infinity, Number.NaN]) assert.instance(await rejects(sqlite.backup(source, dest, { pauseMs })), TypeError, `pauseMs ${pauseMs}`);
  for (const busyTimeoutMs of [-1, Number.NaN]) assert.instance(await rejects(sqlite.backup(source, dest, { busyTimeoutMs })), TypeError, `busyTimeoutMs ${busyTimeoutMs}`);
  const bad = await rejects(sqlite.backup(source, dest, { signal: {} as AbortSignal }));
  assert.instance(bad, TypeError);
  assert.match((bad as Error).message, /signal must be an AbortSignal/);
  assert.instance(await rejects(sqlite.backup(source, `${dest}\0.evil`)), TypeError, "a NUL in the destination path");
  assert.instance(await rejects(sqlite.backup(source, dest, { sourceName: "main\0x" })), TypeError, "a NUL in a schema name");
  assert.throws(() => sqlite.open(`${join(dir, "x.db")}\0y`), TypeError, "a NUL in open()'s path");
  assert.not.ok(existsSync(dest), "nothing was created");
  // Steps larger than the database (or than C's int) copy it all, on both routes.
  for (const pagesPerStep of [2 ** 32, 2 ** 40, 2 ** 53 - 1, -1]) {
    for (const incremental of ["auto", false] as const) {
      const r = await sqlite.backup(source, dest, { pagesPerStep, incremental });
      assert.is(r.pageCount > 0 && integrity(dest), "ok", `pagesPerStep ${pagesPerStep}, incremental ${incremental}`);
    }
  }
  source.close();
});

test("the same file on both sides is refused at once: same path, sub/.., a symlink, a hard link, an open Database", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("same");
  mkdirSync(join(dir, "sub"));
  const file = join(dir, "app.db");
  nativeDb(file, 20);
  symlinkSync(file, join(dir, "link.db"));
  linkSync(file, join(dir, "hard.db"));
  const before = readFileSync(file);
  const source = sqlite.open(file);
  for (const incremental of ["auto", true, false] as const) {
    for (const dest of [file, join(dir, "sub", "..", "app.db"), join(dir, "link.db"), join(dir, "hard.db")]) {
      const e = await rejects(sqlite.backup(source, dest, { incremental, busyTimeoutMs: 60_000 }));
      assert.instance(e, SqliteError, `${dest}: ${String(e)}`);
      assert.match((e as Error).message, /are the same file/);
    }
  }
  const other = sqlite.open(join(dir, "link.db"));
  assert.match(((await rejects(sqlite.backup(source, other))) as Error).message, /are the same file/);
  other.close();
  source.close();
  assert.ok(readFileSync(file).equals(before), "the file is unchanged");
});

test("a new destination on a read-only file system: SQLITE_CANTOPEN naming EROFS", async () => {
  const sqlite = await sqlitePromise;
  const m = mountTmpfs("1m", true);
  if (typeof m === "string") return void console.log(`  skipped: ${m}`);
  try {
    const source = sqlite.open(":memory:");
    fill(source, 10);
    const e = await rejects(sqlite.backup(source, join(m.dir, "new.db")));
    assert.instance(e, SqliteError);
    assert.match((e as Error).message, /EROFS/);
    source.close();
  } finally {
    m.unmount();
  }
});

test("a read-only source with a hot journal left by a killed writer: an error that names the journal, the destination untouched", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("hot");
  const src = join(dir, "src.db");
  nativeDb(src, 50);
  // A writer killed inside a transaction that spilled its cache into the file: a hot journal.
  spawnSync("sh", ["-c", `(echo "PRAGMA cache_size=2; BEGIN; UPDATE t SET x = randomblob(4000);"; echo ".shell kill -9 \\$PPID") | sqlite3 -batch "${src}"`]);
  assert.ok(existsSync(`${src}-journal`), "the killed writer left its journal");
  const dest = join(dir, "dest.db");
  nativeDb(dest, 5);
  const before = readFileSync(dest);
  const source = sqlite.open(src, { readonly: true });
  const e = await rejects(sqlite.backup(source, dest, { busyTimeoutMs: 300 }));
  assert.instance(e, SqliteError, String(e));
  assert.match((e as Error).message, /-journal/, "names the journal");
  assert.ok(readFileSync(dest).equals(before), "the destination is unchanged");
  source.close();
  // A read-write connection rolls it back at its first read; then the copy goes through.
  const rw = sqlite.open(src);
  rw.get("SELECT count(*) FROM sqlite_schema");
  await sqlite.backup(rw, dest);
  rw.close();
  assert.is(integrity(dest), "ok");
  assert.is(cli(dest, "SELECT count(*) FROM t").trim(), "50");
});

test("busyTimeoutMs covers the destination: another connection's write lock is waited for, and the error names the file", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("busy");
  const source = sqlite.open(join(dir, "src.db"));
  fill(source, 50);
  const dest = join(dir, "dest.db");
  await sqlite.backup(source, dest);
  fill(source, 10);
  for (const incremental of ["auto", true] as const) {
    const holder = sqlite.open(dest);
    holder.exec("BEGIN EXCLUSIVE");
    const t0 = performance.now();
    const e = await rejects(sqlite.backup(source, dest, { incremental, busyTimeoutMs: 300 }));
    const waited = performance.now() - t0;
    assert.instance(e, SqliteError, String(e));
    assert.is((e as SqliteError).code, SQLITE_BUSY);
    assert.match((e as Error).message, new RegExp(`dest\\.db.*busyTimeoutMs \\(300 ms\\)`), (e as Error).message);
    assert.ok(waited >= 300, `waited ${waited.toFixed(0)} ms`);
    // Released meanwhile: the same call goes through.
    setTimeout(() => holder.exec("ROLLBACK"), 100);
    await sqlite.backup(source, dest, { incremental, busyTimeoutMs: 10_000 });
    holder.close();
    assert.is(cli(dest, "SELECT count(*) FROM t").trim(), String(source.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n));
    fill(source, 1);
  }
  source.close();
});

test("a WAL source whose WAL another process deleted (its last connection closed): never a stale copy", async () => {
  const sqlite = await sqlitePromise;
  const dir = tmpDir("stale");
  const src = join(dir, "src.db");
  cli(src, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  let source = sqlite.open(src, { readonly: true });
  const copy = join(dir, "copy.db");
  let refused = 0;
  for (let i = 2; i <= 5; i++) {
    cli(src, `INSERT INTO t VALUES (${i});`); // a process of its own: its close checkpoints and deletes the WAL
    const e = await sqlite.backup(source, copy).then(() => null, (e: unknown) => e);
    if (e === null) {
      assert.is(cli(copy, "SELECT count(*) FROM t").trim(), String(i), "a resolved copy holds every commit");
      continue;
    }
    assert.instance(e, SqliteError, String(e));
    assert.is((e as SqliteError).extendedCode, SQLITE_BUSY_SNAPSHOT, (e as Error).message);
    assert.match((e as Error).message, /open it again/);
    refused++;
    // The remedy the message names: a new connection sees every commit.
    source.close();
    source = sqlite.open(src, { readonly: true });
    await sqlite.backup(source, copy);
    assert.is(cli(copy, "SELECT count(*) FROM t").trim(), String(i));
  }
  source.close();
  if (sqlite.locking === "process") assert.ok(refused > 0, "without real locks the deleted WAL is noticed");
});

test("two processes back up into one destination: each copy resolves whole, the destination is always a whole database", async () => {
  const dir = tmpDir("two");
  const a = join(dir, "a.db");
  const b = join(dir, "b.db");
  nativeDb(a, 300);
  nativeDb(b, 200);
  const dest = join(dir, "dest.db");
  const child = fileURLToPath(new URL("./faults/backup-loop-child.ts", import.meta.url));
  const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  const run = (src: string) => new Promise<string>((resolve, reject) => {
    const args = [...(isBun ? [] : ["--no-concurrent-recompilation", "--import", "tsx"]), child, src, dest, "8"];
    execFile(process.execPath, args, { encoding: "utf8" }, (e, out) => (e ? reject(e) : resolve(out)));
  });
  const outs = await Promise.all([run(a), run(b)]);
  const results = outs.flatMap((o) => o.trim().split("\n").map((l) => JSON.parse(l) as { ok: boolean; code?: string; message?: string }));
  assert.is(results.length, 16);
  const failed = results.filter((r) => !r.ok);
  assert.equal(failed, [], "every backup resolved (they took turns)");
  assert.is(integrity(dest), "ok");
  const sha = (f: string) => cli(f, ".sha3sum").trim();
  assert.ok([sha(a), sha(b)].includes(sha(dest)), "the destination is one of the two sources");
  assert.equal(besides(dir, "").filter((f) => !["a.db", "b.db", "dest.db"].includes(f)), [], "no lock, journal or temporary file left");
});

test.run();
