// The core semantics under Deno 2, through its node:fs compatibility (the default "node-fs" VFS):
// open, stepped and one-shot backups, abort, failure cleanup, live-source restarts, BUSY,
// WAL, verify, streams, replicas to a directory, and the shared VFS conformance suite. The native sqlite3 CLI checks every file.
//   npm run test:deno   (deno run --sloppy-imports: src/ imports "./x.js" for "./x.ts", as under tsx)
// Prints "N passed, N failed" last and exits non-zero on failure.
// Locking: without --allow-ffi, locking must be "process" (and say why); with --allow-ffi it must
// be "os", and the real-lock checks (test/native/lock-checks.ts: native sqlite3 processes and
// processes of ours on the same files) run too. npm run test:deno runs the suite twice, without
// and with --allow-ffi; `deno run … --allow-ffi --allow-run … test/deno/run.ts locks` runs only
// the locking part.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Backup, type Database, fileTarget, loadSqlite, SqliteError } from "../../src/index.ts";
import { NodeFsVfs } from "../../src/node/fs-vfs.ts";
import { FaultVfs } from "../faults/fault-vfs.ts";
import { runVfsConformance } from "../vfs-conformance.ts";
import { lockChecks } from "../native/lock-checks.ts";

const sqlite = await loadSqlite();
const root = await Deno.makeTempDir({ prefix: "sbw-deno-" });
let seq = 0;
const file = (name: string) => join(root, `${++seq}-${name}`);

function native(path: string, sql: string): string {
  const out = new Deno.Command("sqlite3", { args: ["-batch", path, sql] }).outputSync();
  if (!out.success) throw new Error(`sqlite3 ${sql}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}
const dump = (path: string) => native(path, ".dump");
function nativeOk(copy: string, source: string): void {
  eq(native(copy, "PRAGMA integrity_check").trim(), "ok", `native integrity_check of ${copy}`);
  ok(dump(copy) === dump(source), `native .dump of ${copy} equals ${source}`);
}

function ok(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
function eq<T>(actual: T, expected: T, msg: string): void {
  if (actual !== expected) throw new Error(`${msg}: expected ${String(expected)}, got ${String(actual)}`);
}
async function rejects(p: Promise<unknown>, check: (e: unknown) => void): Promise<void> {
  try {
    await p;
  } catch (e) {
    check(e);
    return;
  }
  throw new Error("expected a rejection");
}

/** A database with `rows` rows of ~300 bytes (about 12 per 4 KiB page), an index and FTS5. */
function fill(db: Database, rows: number): void {
  db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB, s TEXT); CREATE INDEX IF NOT EXISTS t_s ON t(s)");
  db.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
          INSERT INTO t(v, s) SELECT randomblob(250), 'row ' || i FROM n`, [rows]);
}

const tests: [string, () => void | Promise<void>][] = [];
const onlyLocks = Deno.args.includes("locks");
const test = (name: string, fn: () => void | Promise<void>) => void (onlyLocks || tests.push([name, fn]));
const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

tests.push([`locking is "${ffi ? "os" : "process"}" (${ffi ? "with" : "without"} --allow-ffi) and says why`, async () => {
  eq(sqlite.locking, ffi ? "os" : "process", `locking (${sqlite.lockingReason})`);
  if (ffi) ok(/Deno\.dlopen/.test(sqlite.lockingReason), `reason: ${sqlite.lockingReason}`);
  else {
    ok(/--allow-ffi/.test(sqlite.lockingReason), `the reason names the remedy: ${sqlite.lockingReason}`);
    await rejects(loadSqlite({ locking: "os" }), (e) => ok(/--allow-ffi/.test(String(e)), `insisting on "os": ${String(e)}`));
  }
}]);
if (ffi) for (const c of lockChecks(sqlite)) tests.push([`real locks: ${c.name}`, c.fn]);

test("loads SQLite 3.54.1 with node-fs as the default VFS", () => {
  eq(sqlite.version, "3.54.1", "version");
  eq(sqlite.vfsNames[0], "node-fs", "default VFS");
});

test("backup() file → new file, stepped, with progress; native reader agrees", async () => {
  const src = file("src.db");
  {
    using db = sqlite.open(src);
    fill(db, 3000);
    db.exec("CREATE VIRTUAL TABLE doc USING fts5(body); INSERT INTO doc VALUES ('deno node fs'); PRAGMA user_version = 5");
  }
  using db = sqlite.open(src, { readonly: true });
  const events: number[] = [];
  const dest = file("copy.db");
  const r = await sqlite.backup(db, dest, { pagesPerStep: 25, onProgress: (p) => void events.push(p.remaining) });
  const pages = Number(native(src, "PRAGMA page_count"));
  eq(r.pageCount, pages, "pageCount");
  eq(r.steps, Math.ceil(pages / 25), "steps");
  eq(events.at(-1), 0, "final progress event");
  eq(events.length, r.steps, "one progress event per step (the last with remaining 0)");
  nativeOk(dest, src);
});

test("Backup step by step: ok → done, counters, finish, use after finish, using", () => {
  const src = file("src.db");
  using source = sqlite.open(src);
  fill(source, 1000);
  const pages = source.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
  const dst = file("dst.db");
  using dest = sqlite.open(dst);
  let b: Backup;
  {
    using backup = sqlite.backupInit(dest, "main", source, "main");
    b = backup;
    try {
      backup.step(1.5);
      throw new Error("step(1.5) did not throw");
    } catch (e) {
      ok(e instanceof TypeError, `TypeError for a non-integer, got ${String(e)}`);
    }
    eq(backup.step(10), "ok", "first step");
    eq(backup.pageCount, pages, "pageCount");
    eq(backup.remaining, pages - 10, "remaining");
    eq(backup.step(-1), "done", "last step");
    eq(backup.done, true, "done");
    eq(backup.remaining, 0, "remaining after done");
  }
  try {
    b.step(1);
    throw new Error("step after dispose did not throw");
  } catch (e) {
    ok(e instanceof Error && /finished/.test(e.message), `finished error, got ${String(e)}`);
  }
  nativeOk(dst, src);
});

test("abort over an existing destination: rejects with the reason, destination unchanged", async () => {
  const src = file("src.db");
  using source = sqlite.open(src);
  fill(source, 20000); // ~1700 pages: more than the destination's page cache, so the file is written
  const dst = file("old.db");
  native(dst, "CREATE TABLE keep(x); INSERT INTO keep VALUES ('old'), ('content')");
  const before = dump(dst);
  const staged = () => readdirSync(dirname(dst)).filter((f) => f.endsWith(".sbw-tmp"));
  const controller = new AbortController();
  const reason = new Error("stop");
  let journalSeen = false;
  await rejects(sqlite.backup(source, dst, {
    pagesPerStep: 100,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.pageCount - p.remaining >= 1000) {
        // In place (its journal) or, without real file locks, a staged copy beside it to rename.
        journalSeen = existsSync(`${dst}-journal`) || staged().length > 0;
        controller.abort(reason);
      }
    },
  }), (e) => eq(e, reason, "rejection reason"));
  ok(journalSeen, "the destination was being written when the abort came");
  eq(native(dst, "PRAGMA integrity_check").trim(), "ok", "integrity");
  ok(dump(dst) === before, "old content intact");
  ok(!existsSync(`${dst}-journal`), "no journal left");
  eq(staged().length, 0, "no staged copy left");
});

test("over the previous backup, in chunks: only the changed pages are written, the next ones read in Deno's thread pool", async () => {
  const counting = new FaultVfs(new NodeFsVfs()); // never armed: it counts the reads ahead
  const fs = await loadSqlite({ vfs: [counting] });
  const src = file("inc-src.db");
  using source = fs.open(src, { vfs: counting.name });
  fill(source, 20000);
  const dst = file("inc-prev.db");
  await fs.backup(source, dst, { incremental: false });
  const size = 4096;
  const old = readFileSync(dst);
  source.run("UPDATE t SET v = randomblob(250) WHERE id % 97 = 0");
  using dest = fs.open(dst, { vfs: counting.name });
  const r = await fs.backup(source, dest, { pagesPerStep: 150 });
  ok(r.incremental && r.steps > 3, `incremental in chunks: ${JSON.stringify(r)}`);
  ok(counting.readsAhead > 0, "the destination's next pages were read off the thread");
  const now = readFileSync(dst);
  let differ = 1; // page 1 is always written
  for (let off = size; off < now.length; off += size) {
    if (!now.subarray(off, off + size).every((b, i) => b === old[off + i])) differ++;
  }
  eq(r.pagesWritten, differ, "pages written: exactly those that differ");
  nativeOk(dst, src);
});

test("a failed backup to a new file leaves no file; SqliteError carries the code", async () => {
  const bogus = file("text.db");
  writeFileSync(bogus, "not a database ".repeat(400));
  using source = sqlite.open(bogus, { readonly: true });
  const dst = file("never.db");
  await rejects(sqlite.backup(source, dst), (e) => {
    ok(e instanceof SqliteError, `SqliteError, got ${String(e)}`);
    eq(e.codeName, "SQLITE_NOTADB", "codeName");
    eq(e.code, 26, "code");
  });
  ok(!existsSync(dst), "destination removed");
  try {
    sqlite.open(join(root, "no", "such", "dir.db"));
    throw new Error("open did not throw");
  } catch (e) {
    ok(e instanceof SqliteError && e.codeName === "SQLITE_CANTOPEN", `CANTOPEN, got ${String(e)}`);
  }
});

test("a source written by another connection mid-backup restarts and the copy has the final content", async () => {
  const src = file("live.db");
  using source = sqlite.open(src);
  fill(source, 5000);
  using writer = sqlite.open(src);
  let writes = 0;
  const dst = file("live-copy.db");
  const r = await sqlite.backup(source, dst, {
    pagesPerStep: 20,
    onProgress: (p) => {
      if (p.remaining > 0 && writes < 3) writer.run("INSERT INTO t(v, s) VALUES (randomblob(250), ?)", [`live ${++writes}`]);
    },
  });
  ok(r.restarts >= 1, `restarts: ${r.restarts}`);
  eq(Number(native(dst, "SELECT count(*) FROM t WHERE s LIKE 'live %'")), 3, "every write is in the copy");
  nativeOk(dst, src);
});

test("a destination with an open read transaction is BUSY until it ends", async () => {
  const src = file("src.db");
  using source = sqlite.open(src);
  fill(source, 200);
  const dst = file("busy.db");
  native(dst, "CREATE TABLE x(y); INSERT INTO x VALUES (1)");
  using reader = sqlite.open(dst);
  reader.exec("BEGIN");
  reader.get("SELECT * FROM x");
  await rejects(sqlite.backup(source, dst, { busyTimeoutMs: 50 }), (e) => {
    ok(e instanceof SqliteError && e.code === 5, `SQLITE_BUSY, got ${String(e)}`);
  });
  reader.exec("COMMIT");
  await sqlite.backup(source, dst);
  nativeOk(dst, src);
});

test("WAL source: the copy holds committed WAL content", async () => {
  const src = file("wal.db");
  using source = sqlite.open(src);
  source.exec("PRAGMA journal_mode = WAL");
  fill(source, 500);
  source.run("UPDATE t SET s = 'changed' WHERE id <= 10");
  ok(existsSync(`${src}-wal`), "a WAL file exists");
  const dst = file("wal-copy.db");
  await sqlite.backup(source, dst);
  eq(Number(native(dst, "SELECT count(*) FROM t WHERE s = 'changed'")), 10, "WAL content copied");
  eq(native(dst, "PRAGMA integrity_check").trim(), "ok", "integrity");
});

test("verify through the library: integrity_check and row-by-row equality of a copy", async () => {
  const src = file("v.db");
  using source = sqlite.open(src);
  fill(source, 800);
  const dst = file("v-copy.db");
  await sqlite.backup(source, dst);
  using copy = sqlite.open(dst, { readonly: true });
  eq(copy.get<{ integrity_check: string }>("PRAGMA integrity_check")!.integrity_check, "ok", "integrity");
  const rows = (db: Database) => db.all<{ id: number; v: Uint8Array; s: string }>("SELECT id, v, s FROM t ORDER BY id");
  const [a, b] = [rows(source), rows(copy)];
  eq(b.length, a.length, "row count");
  for (let i = 0; i < a.length; i++) {
    ok(a[i]!.id === b[i]!.id && a[i]!.s === b[i]!.s && a[i]!.v.every((x, j) => x === b[i]!.v[j]), `row ${a[i]!.id}`);
  }
  ok(readFileSync(dst).subarray(0, 16).toString() === "SQLite format 3\0", "a plain SQLite file");
});

/** Every chunk of a byte stream, concatenated. */
async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

test("backupToStream of a file database (rollback journal and WAL) into bytes; restoreFromStream into a new file and over an open one; the native reader agrees", async () => {
  for (const mode of ["delete", "wal"]) {
    const src = file(`stream-${mode}.db`);
    using source = sqlite.open(src);
    source.exec(`PRAGMA journal_mode = ${mode}`);
    fill(source, 2000);
    // The reference for the native reader: without real locks a native connection to the live
    // WAL source would checkpoint and delete its WAL when it closes.
    const ref = file(`stream-${mode}-ref.db`);
    await sqlite.backup(source, ref);
    let progress = { bytes: 0, totalBytes: -1 };
    const bytes = await bytesOf(sqlite.backupToStream(source, { chunkSize: 100_000, onStreamProgress: (p) => void (progress = p) }));
    eq(progress.bytes, bytes.length, `${mode}: progress ends at the length`);
    eq(progress.totalBytes, bytes.length, `${mode}: totalBytes`);
    const copy = file(`stream-${mode}-copy.db`);
    writeFileSync(copy, bytes);
    nativeOk(copy, ref);
    // Back from a file stream into a new file, and into an open database that holds other rows.
    const restored = file(`stream-${mode}-restored.db`);
    using input = await Deno.open(copy);
    const r = await sqlite.restoreFromStream(input.readable, restored);
    eq(r.pageCount * 4096, bytes.length, `${mode}: pageCount`);
    nativeOk(restored, ref);
    const over = file(`stream-${mode}-over.db`);
    using dest = sqlite.open(over);
    dest.exec("CREATE TABLE other(x); INSERT INTO other VALUES (1)");
    await sqlite.restoreFromStream(sqlite.backupToStream(source).pipeThrough(new CompressionStream("gzip")).pipeThrough(new DecompressionStream("gzip")), dest);
    eq(dest.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 2000, `${mode}: rows through the open connection`);
    dest.close();
    nativeOk(over, ref);
  }
});

test("restoreFromStream of a cut-short or non-database stream: SqliteError, the destination file byte for byte as it was, nothing left beside it", async () => {
  const src = file("good.db");
  using source = sqlite.open(src);
  fill(source, 1000);
  const good = await bytesOf(sqlite.backupToStream(source));
  const dest = file("kept.db");
  {
    using d = sqlite.open(dest);
    fill(d, 100);
  }
  const before = readFileSync(dest);
  const files = readdirSync(root).length;
  const cases: [string, Uint8Array, string][] = [
    ["cut short", good.subarray(0, good.length - 4096), "SQLITE_CORRUPT"],
    ["not a database", crypto.getRandomValues(new Uint8Array(8192)), "SQLITE_NOTADB"],
  ];
  for (const [what, bytes, code] of cases) {
    await rejects(sqlite.restoreFromStream([bytes], dest), (e) => {
      ok(e instanceof SqliteError, `${what}: a SqliteError: ${String(e)}`);
      eq(e.codeName, code, what);
    });
    ok(readFileSync(dest).equals(before), `${what}: the destination is unchanged`);
    eq(readdirSync(root).length, files, `${what}: no staging file left`);
  }
  eq(native(dest, "PRAGMA integrity_check").trim(), "ok", "integrity");
});

test("replicate() to fileTarget: three syncs, restoreReplica latest and at the first sync, each equal (native .dump) to a backup() taken at that sync; verifyReplica ok", async () => {
  const src = file("rep.db");
  const dir = file("replica");
  using source = sqlite.open(src);
  fill(source, 1500);
  const target = fileTarget(dir);
  const replica = sqlite.replicate(source, target, { intervalMs: 3_600_000 });
  const at: { seq: number; copy: string }[] = [];
  try {
    for (const change of ["", "UPDATE t SET s = 'second' WHERE id % 10 = 0; DELETE FROM t WHERE id % 7 = 0", "INSERT INTO t(v, s) SELECT v, 'third' FROM t WHERE id < 300"]) {
      if (change) source.exec(change);
      const info = await replica.sync();
      const copy = file(`rep-at-${info.seq}.db`);
      await sqlite.backup(source, copy);
      at.push({ seq: info.seq, copy });
    }
  } finally {
    await replica.close();
  }
  eq(at[2]!.seq, at[0]!.seq + 2, "one sync per change");
  const latest = file("rep-latest.db");
  eq((await sqlite.restoreReplica(fileTarget(dir), latest)).seq, at[2]!.seq, "the last sync");
  nativeOk(latest, at[2]!.copy);
  nativeOk(latest, src);
  const first = file("rep-first.db");
  eq((await sqlite.restoreReplica(fileTarget(dir), first, { at: at[0]!.seq })).seq, at[0]!.seq, "the first sync");
  nativeOk(first, at[0]!.copy);
  ok(dump(first) !== dump(latest), "the first sync's state is not the last's");
  const v = await sqlite.verifyReplica(fileTarget(dir));
  ok(v.ok, `verifyReplica: ${JSON.stringify(v)}`);
  eq(v.seq, at[2]!.seq, "verified the last sync");
});

test("node-fs passes the VFS conformance suite under Deno", async () => {
  let n = 0;
  const results = await runVfsConformance(new NodeFsVfs(), () => join(root, `conf-${++n}.db`));
  ok(results.length >= 10, `only ${results.length} checks ran`);
  const failures = results.filter((r) => r.error !== null);
  ok(failures.length === 0, failures.map((f) => `${f.name}: ${f.error}`).join("\n"));
  console.log(`    (${results.length} conformance checks)`);
});

test("no heap leak: memory returns to the baseline once everything is closed", async () => {
  const base = sqlite.memoryUsed();
  for (let i = 0; i < 3; i++) {
    const src = file("leak.db");
    using db = sqlite.open(src);
    fill(db, 300);
    await sqlite.backup(db, file("leak-copy.db"), { pagesPerStep: 7 });
  }
  eq(sqlite.memoryUsed(), base, "memoryUsed");
});

let passed = 0;
let failed = 0;
for (const [name, fn] of tests) {
  try {
    await fn();
    passed++;
    console.log(`✓ ${name}`);
  } catch (e) {
    failed++;
    console.log(`✘ ${name}\n    ${String((e as Error)?.stack ?? e).split("\n").slice(0, 5).join("\n    ")}`);
  }
}
await Deno.remove(root, { recursive: true });
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
