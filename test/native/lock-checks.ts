// The real-lock checks: native sqlite3 processes, processes of ours and connections of
// this process on the same files at once, in rollback-journal and WAL mode, with real file locks
// ("os" locking). Runtime-neutral (node:assert, node:child_process), so the uvu suite
// (test/native-locks.test.ts: Node 26, Bun) and the Deno runner (test/deno/run.ts with
// --allow-ffi) run the same checks.
//
// Every database holds application invariants that each transaction keeps: the balances of 50
// accounts sum to 5000, and meta.n equals the row count of log. The native CLI checks them on
// every copy, and native readers check them while we write. A test never asserts on timing:
// "the other side saw it" is proved by handshakes (one side commits, then asks the other).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteError, type Database, type Sqlite } from "../../src/index.js";
import { rng } from "../faults/rng.js";
import { Shell } from "./shell.js";

export interface Check {
  name: string;
  /** Also meaningful with the in-process lock table ("process" locking). */
  anyLocking?: boolean;
  fn: () => Promise<void>;
}

const ACCOUNTS = 50;
const TOTAL = ACCOUNTS * 100;
const LOG_ROWS = 600; // ~3 KB each: a ~2.5 MiB database, a multi-step backup at 8 pages a step

/** sum of balances | counter = row count | counter, as "5000|1|N" in the CLI. */
const CHECK = "SELECT (SELECT sum(bal) FROM acct) AS s, (SELECT n FROM meta) = (SELECT count(*) FROM log) AS c, (SELECT n FROM meta) AS n";
const GOOD = new RegExp(`^${TOTAL}\\|1\\|(\\d+)$`);

function schema(mode: "delete" | "wal", rows = LOG_ROWS): string {
  return `PRAGMA journal_mode=${mode};
    CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${ACCOUNTS}) INSERT INTO acct SELECT i, 100 FROM c;
    CREATE TABLE log(id INTEGER PRIMARY KEY, who TEXT, pad BLOB);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<${rows}) INSERT INTO log(who, pad) SELECT 'seed', randomblob(3000) FROM c;
    CREATE TABLE meta(k INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO meta VALUES (1, ${rows});`;
}

/** One transaction on one line: a transfer, a 3 KB log row, the counter, and a rewritten old row. */
function txnSql(r: () => number, who: string): string {
  const a = 1 + Math.floor(r() * ACCOUNTS);
  const b = 1 + Math.floor(r() * ACCOUNTS);
  const f = 1 + Math.floor(r() * LOG_ROWS);
  return `BEGIN IMMEDIATE; UPDATE acct SET bal=bal-7 WHERE id=${a}; UPDATE acct SET bal=bal+7 WHERE id=${b}; ` +
    `INSERT INTO log(who, pad) VALUES ('${who}', randomblob(3000)); UPDATE meta SET n=n+1; UPDATE log SET pad=randomblob(3000) WHERE id=${f}; COMMIT;`;
}

function native(file: string, ...sql: string[]): string {
  return execFileSync("sqlite3", ["-batch", file, ...sql], { encoding: "utf8" }).trim();
}

/** The native CLI's verdict on a file: "ok" and the invariants, as lines. */
function assertCommitted(file: string, what: string): number {
  const [integrity, check, ...rest] = native(file, "PRAGMA integrity_check", CHECK).split("\n");
  assert.equal(integrity, "ok", `${what}: native integrity_check`);
  assert.equal(rest.length, 0, `${what}: ${rest.join(" ")}`);
  const m = GOOD.exec(check ?? "");
  assert.ok(m, `${what}: invariants (sum ${TOTAL}, counter = rows), native CLI says ${check}`);
  return Number(m[1]);
}

/** Our view of the invariants; returns the counter. */
function ourCheck(db: Database, what: string): number {
  const row = db.get<{ s: number; c: number; n: number }>(CHECK)!;
  assert.deepEqual([row.s, row.c], [TOTAL, 1], `${what}: invariants as we read them (n ${row.n})`);
  return row.n;
}

/** Checks the lines a native reader printed: all invariant rows, counters never going back. */
function assertReaderLines(lines: string[], what: string): number[] {
  const ns: number[] = [];
  for (const l of lines) {
    const m = GOOD.exec(l);
    assert.ok(m, `${what}: the native reader printed ${JSON.stringify(l)}`);
    const n = Number(m[1]);
    if (ns.length) assert.ok(n >= ns.at(-1)!, `${what}: the counter went back from ${ns.at(-1)} to ${n}`);
    ns.push(n);
  }
  return ns;
}

/** No error text among a shell's lines. */
function assertNoErrors(lines: string[], what: string): void {
  const bad = lines.filter((l) => /error|locked|malformed|not a database|disk i\/o/i.test(l));
  assert.deepEqual(bad, [], `${what}: errors`);
}

/**
 * Keeps a shell busy with `next()` items, each of which prints exactly one line, with at most
 * `depth` of them queued (so stop() returns soon). stop() waits until all queued ones ran and
 * returns the lines they printed.
 */
function pump(shell: Shell, next: () => string, depth = 8): { readonly sent: number; stop(): Promise<string[]> } {
  const from = shell.lines.length;
  let sent = 0;
  const fill = () => {
    while (sent - (shell.lines.length - from) < depth) {
      shell.queue(next());
      sent++;
    }
  };
  fill();
  const timer = setInterval(fill, 1);
  return {
    get sent() {
      return sent;
    },
    async stop() {
      clearInterval(timer);
      await shell.run("SELECT 1");
      const out = shell.lines.slice(from);
      assert.equal(out.pop(), "1", "pump marker");
      return out;
    },
  };
}

const tick = () => new Promise<void>((r) => setTimeout(r, 2));
const isBusy = (e: unknown) => e instanceof SqliteError && e.code === 5;

function assertBusy(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isBusy(e), `${what}: expected SQLITE_BUSY, got ${String(e)}`);
    return;
  }
  assert.fail(`${what}: expected SQLITE_BUSY, it succeeded`);
}

export function lockChecks(sqlite: Sqlite): Check[] {
  const checks: Check[] = [];
  const check = (name: string, fn: () => Promise<void>, anyLocking = false) => checks.push({ name, fn, anyLocking });
  let dir: string | null = null;
  let seq = 0;
  const newFile = (name: string) => join((dir ??= mkdtempSync(join(tmpdir(), "sbw-locks-"))), `${++seq}-${name}.db`);
  const seeded = (name: string, mode: "delete" | "wal") => {
    const f = newFile(name);
    native(f, schema(mode));
    return f;
  };
  const shells: Shell[] = [];
  const track = (s: Shell) => (shells.push(s), s);
  const nativeShell = (f: string, timeoutMs?: number) => track(Shell.native(f, timeoutMs));
  const ourShell = (f: string, timeoutMs?: number) => track(Shell.ours(f, timeoutMs));
  const open = (f: string, opts?: { readonly?: boolean }, busyMs = 5000) => {
    const db = sqlite.open(f, opts);
    db.exec(`PRAGMA busy_timeout = ${busyMs}`);
    return db;
  };

  // ---------------------------------------------------------------- rollback journal
  for (const paced of [true, false]) {
    check(`rollback journal: backups while a native writer commits (${paced ? "~100 commits/s" : "unpaced"}): every copy is a committed state`, async () => {
      const file = seeded(`rj-src-${paced}`, "delete");
      const source = open(file, { readonly: true });
      const first = ourCheck(source, "source before");
      const writer = nativeShell(file);
      const r = rng(paced ? 1 : 2);
      const w = pump(writer, () => `${txnSql(r, "native")} SELECT 'n=' || n FROM meta;${paced ? "\n.shell sleep 0.01" : ""}`, 4);
      const counters: number[] = [];
      try {
        const over = newFile("rj-over"); // backed up onto again and again: the previous copy is the destination
        for (let i = 0; i < 6; i++) {
          const dest = i < 3 ? newFile(`rj-copy-${i}`) : over;
          await sqlite.backup(source, dest, { pagesPerStep: 8, pauseMs: 1 });
          counters.push(assertCommitted(dest, `copy ${i}`));
        }
      } finally {
        source.close();
      }
      const lines = await w.stop();
      assertNoErrors(lines, "native writer");
      assert.equal(await writer.close().then((e) => e.code), 0, "native writer exit");
      const last = assertCommitted(file, "source after");
      assert.equal(last, first + w.sent, "every native commit is in the source");
      assert.ok(counters.at(-1)! > first, `the copies saw native commits (counters ${counters.join(",")} from ${first})`);
    });
  }

  check("rollback journal: our writes while a native reader polls: it never rolls back our journal, sees only committed states and every commit", async () => {
    const file = seeded("rj-ours", "delete");
    const db = open(file);
    const reader = nativeShell(file);
    const checker = nativeShell(file);
    const rd = pump(reader, () => `${CHECK};`);
    const r = rng(3);
    let n = ourCheck(db, "before");
    try {
      for (let i = 1; i <= 200; i++) {
        if (i % 50 === 0) {
          // A transaction held open (RESERVED, a live journal) while the reader polls 3 times:
          // the reader must see our RESERVED lock and leave the journal alone.
          const txn = txnSql(r, "ours").replace(/ COMMIT;$/, "");
          db.exec(txn);
          assert.ok(existsSync(`${file}-journal`), "a live journal");
          const until = reader.lines.length + 3;
          while (reader.lines.length < until) await tick();
          db.exec("COMMIT");
        } else {
          db.exec(txnSql(r, "ours")); // a commit failing (e.g. IOERR: journal deleted by the reader) throws
        }
        n++;
        if (i % 40 === 0) {
          // Handshake: committed here, so a native process must see it now.
          assert.match((await checker.run(`${CHECK};`))[0] ?? "", new RegExp(`^${TOTAL}\\|1\\|${n}$`), `native sees our commit ${i}`);
        }
        await new Promise((res) => setImmediate(res));
      }
    } finally {
      db.close();
    }
    const seen = assertReaderLines(await rd.stop(), "native reader");
    assert.ok(seen.length > 0, "the native reader read");
    assert.equal(assertCommitted(file, "after"), n, "every commit of ours");
    assert.ok(!existsSync(`${file}-journal`), "no journal left");
  });

  check("rollback journal: a restore (backup(memory, live file)) while a native reader polls: never a torn state", async () => {
    const file = seeded("rj-restore", "delete");
    const reader = nativeShell(file);
    const checker = nativeShell(file);
    const rd = pump(reader, () => `${CHECK};`);
    for (let i = 0; i < 4; i++) {
      const rows = 700 + 10 * i;
      using mem = sqlite.open(":memory:");
      mem.exec(schema("delete", rows).replace(/^PRAGMA journal_mode=delete;/, ""));
      await sqlite.backup(mem, file, { pagesPerStep: 16, pauseMs: 1 });
      assert.deepEqual(await checker.run(`${CHECK};`), [`${TOTAL}|1|${rows}`], `native sees restore ${i}`);
    }
    const seen = assertReaderLines(await rd.stop(), "native reader");
    assert.ok(seen.length > 0, "the native reader read");
    assert.equal(assertCommitted(file, "after"), 730);
  });

  // ---------------------------------------------------------------- WAL
  check("WAL: a native writer and our reader, writer and backups see each other's commits", async () => {
    const file = seeded("wal-native-writer", "wal");
    const db = open(file);
    const source = open(file, { readonly: true });
    const first = ourCheck(db, "before");
    const writer = nativeShell(file);
    const r = rng(4);
    const w = pump(writer, () => `${txnSql(r, "native")} SELECT 'n=' || n FROM meta;\n.shell sleep 0.01`, 4);
    let ours = 0;
    let last = first;
    let handshakes = 0;
    try {
      for (let i = 0; i < 60; i++) {
        // The writer printed n=K after committing K: we must see at least K now.
        const printed = writer.lines.filter((l) => l.startsWith("n=")).at(-1);
        const n = ourCheck(db, `read ${i}`);
        assert.ok(n >= last, `our counter went back from ${last} to ${n}`);
        if (printed) {
          assert.ok(n >= Number(printed.slice(2)), `we see the native commit ${printed} (we read n=${n})`);
          handshakes++;
        }
        last = n;
        if (i % 10 === 5) {
          db.exec(txnSql(r, "ours"));
          ours++;
        }
        if (i % 20 === 10) {
          const dest = newFile(`wal-copy-${i}`);
          await sqlite.backup(source, dest, { pagesPerStep: 8, pauseMs: 1 });
          assertCommitted(dest, `copy at ${i}`);
        }
        await tick();
      }
    } finally {
      db.close();
      source.close();
    }
    const lines = await w.stop();
    assertNoErrors(lines, "native writer");
    assert.ok(handshakes > 0, "handshakes");
    // The native writer's counters include our commits: it saw them.
    assert.equal(assertCommitted(file, "after"), first + w.sent + ours, "every commit of both sides");
  });

  check("WAL: our writer and a native reader: it sees our commits while we write", async () => {
    const file = seeded("wal-ours", "wal");
    const db = open(file);
    const reader = nativeShell(file);
    const checker = nativeShell(file);
    const rd = pump(reader, () => `${CHECK};`);
    const r = rng(5);
    let n = ourCheck(db, "before");
    try {
      for (let i = 1; i <= 200; i++) {
        db.exec(txnSql(r, "ours"));
        n++;
        if (i % 25 === 0) {
          assert.deepEqual(await checker.run(`${CHECK};`), [`${TOTAL}|1|${n}`], `native sees our commit ${i}`);
        }
        await new Promise((res) => setImmediate(res));
      }
    } finally {
      db.close();
    }
    const seen = assertReaderLines(await rd.stop(), "native reader");
    assert.ok(seen.length > 0, "the native reader read");
    assert.deepEqual(await reader.run(`${CHECK};`), [`${TOTAL}|1|${n}`], "a read after our last commit has every commit");
    assert.equal(assertCommitted(file, "after"), n);
  });

  check("WAL: native checkpoints (TRUNCATE) while we read and back up", async () => {
    const file = seeded("wal-native-ckpt", "wal");
    const writer = nativeShell(file);
    const r = rng(6);
    let k = 0;
    const w = pump(writer, () => (++k % 8 === 0 ? "PRAGMA wal_checkpoint(TRUNCATE);" : `${txnSql(r, "native")} SELECT 'n=' || n FROM meta;`), 4);
    const db = open(file);
    const source = open(file, { readonly: true });
    let last = ourCheck(db, "before");
    try {
      for (let i = 0; i < 60; i++) {
        const printed = writer.lines.filter((l) => l.startsWith("n=")).at(-1);
        const n = ourCheck(db, `read ${i}`);
        assert.ok(n >= last, `our counter went back from ${last} to ${n}`);
        if (printed) assert.ok(n >= Number(printed.slice(2)), `we see ${printed} (we read n=${n})`);
        last = n;
        if (i % 10 === 0) assert.equal(db.get<{ quick_check: string }>("PRAGMA quick_check")!.quick_check, "ok", `quick_check ${i}`);
        if (i % 20 === 10) {
          const dest = newFile(`wal-ckpt-copy-${i}`);
          await sqlite.backup(source, dest, { pagesPerStep: 8, pauseMs: 1 });
          assertCommitted(dest, `copy at ${i}`);
        }
        await tick();
      }
    } finally {
      db.close();
      source.close();
    }
    const lines = await w.stop();
    assertNoErrors(lines, "native writer");
    const ckpts = lines.filter((l) => !l.startsWith("n="));
    assert.ok(ckpts.length > 0, "the native side checkpointed");
    // TRUNCATE waits (busy handler) for readers; with our reads short, each one completes.
    assert.deepEqual([...new Set(ckpts)], ["0|0|0"], "native checkpoints complete and truncate the WAL");
    assertCommitted(file, "after");
  });

  check("WAL: our checkpoints (TRUNCATE) while a native reader reads", async () => {
    const file = seeded("wal-our-ckpt", "wal");
    const db = open(file);
    const reader = nativeShell(file);
    const rd = pump(reader, () => `${CHECK};`);
    const r = rng(7);
    let n = ourCheck(db, "before");
    const results: string[] = [];
    try {
      for (let i = 1; i <= 120; i++) {
        db.exec(txnSql(r, "ours"));
        n++;
        if (i % 15 === 0) {
          const c = db.get<{ busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!;
          results.push(`${c.busy}|${c.log}|${c.checkpointed}`);
        }
        await new Promise((res) => setImmediate(res));
      }
    } finally {
      db.close();
    }
    const seen = assertReaderLines(await rd.stop(), "native reader");
    assert.ok(seen.length > 0, "the native reader read");
    assert.deepEqual(await reader.run(`${CHECK};`), [`${TOTAL}|1|${n}`], "a read after our last commit has every commit");
    assert.deepEqual([...new Set(results)], ["0|0|0"], "our checkpoints complete and truncate the WAL");
    assert.equal(assertCommitted(file, "after"), n);
  });

  check("WAL: read marks: a native long read transaction keeps its snapshot while we write and checkpoint", async () => {
    const file = seeded("wal-readmark", "wal");
    const db = open(file, undefined, 100);
    const r = rng(8);
    for (let i = 0; i < 5; i++) db.exec(txnSql(r, "ours")); // frames in the WAL: the reader's snapshot uses them
    const reader = nativeShell(file);
    const [snap] = await reader.run(`BEGIN; ${CHECK};`);
    const n0 = Number(GOOD.exec(snap ?? "")?.[1]);
    assert.equal(n0, LOG_ROWS + 5, `the reader's snapshot: ${snap}`);
    for (let i = 0; i < 40; i++) db.exec(txnSql(r, "ours"));
    const c = db.get<{ busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!;
    assert.equal(c.busy, 1, `a TRUNCATE checkpoint cannot finish past a reader (${JSON.stringify(c)})`);
    assert.ok(c.checkpointed < c.log, `it backfills only what the reader's mark allows (${JSON.stringify(c)})`);
    assert.deepEqual(await reader.run(`${CHECK}; PRAGMA quick_check;`), [`${TOTAL}|1|${n0}`, "ok"], "the reader keeps its snapshot");
    assert.deepEqual(await reader.run(`COMMIT; ${CHECK};`), [`${TOTAL}|1|${n0 + 40}`], "after its transaction it sees ours");
    const c2 = db.get<{ busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(TRUNCATE)")!;
    assert.deepEqual([c2.busy, c2.log, c2.checkpointed], [0, 0, 0], "with the reader gone the checkpoint completes");
    assert.equal(statSync(`${file}-wal`).size, 0, "the WAL is truncated");
    db.close();
    assert.equal(assertCommitted(file, "after"), n0 + 40);
    await reader.close();
  });

  check("WAL: index entries of a native writer that we saw and that it rolled back do not hide our next commit", async () => {
    // A writer's uncommitted (spilled) frames have entries in the WAL-index. A checkpoint by a
    // third process changes the header area meanwhile, so our next read copies everything in,
    // those entries included. The writer rolls back (which clears them in the -shm); our next
    // commit writes the same page to the same frame, so our copy equals what we last saw: only
    // a writer that compares every word with the -shm (not just the header) publishes it.
    const file = seeded("wal-undo", "wal");
    const db = open(file, undefined, 0);
    db.exec("UPDATE log SET pad=randomblob(3000) WHERE id=5"); // frame 1
    const old = nativeShell(file);
    await old.run("BEGIN; SELECT count(*) FROM acct;"); // a snapshot at frame 1: checkpoints stop there, the WAL is not restarted
    db.exec("UPDATE log SET pad=randomblob(3000) WHERE id=6"); // frame 2
    const writer = nativeShell(file);
    // The acct page is dirtied first, so it is the first to spill (frame 3).
    await writer.run("PRAGMA cache_size=5; BEGIN; UPDATE acct SET bal=bal+1 WHERE id=1; UPDATE acct SET bal=bal-1 WHERE id=2; UPDATE log SET pad=randomblob(3000) WHERE id<200;");
    const ckpt = nativeShell(file);
    assert.deepEqual(await ckpt.run("PRAGMA wal_checkpoint(PASSIVE);"), ["0|2|1"], "a passive checkpoint up to the old snapshot");
    ourCheck(db, "a read after the checkpoint (copies in the writer's entries)");
    assert.deepEqual(await writer.run("ROLLBACK;"), []);
    const [b1, b2] = db.all<{ bal: number }>("SELECT bal FROM acct WHERE id IN (1, 2) ORDER BY id").map((r) => r.bal);
    db.exec("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+1000 WHERE id=1; UPDATE acct SET bal=bal-1000 WHERE id=2; COMMIT"); // frame 3
    assert.deepEqual(await ckpt.run("SELECT bal FROM acct WHERE id IN (1, 2) ORDER BY id;"), [`${b1! + 1000}`, `${b2! - 1000}`], "a native reader sees our commit");
    await old.run("COMMIT;");
    db.close();
    assertCommitted(file, "after");
  });

  // ---------------------------------------------------------------- lock visibility
  check("rollback journal: our SHARED lock blocks a native COMMIT; a native RESERVED/EXCLUSIVE lock makes ours BUSY", async () => {
    const file = seeded("rj-vis", "delete");
    const db = open(file, undefined, 0);
    const nat = nativeShell(file, 200);
    db.exec("BEGIN");
    ourCheck(db, "our read transaction"); // SHARED until COMMIT
    const out = await nat.run("BEGIN IMMEDIATE; UPDATE acct SET bal=bal-1 WHERE id=1; UPDATE acct SET bal=bal+1 WHERE id=2; COMMIT;");
    assert.ok(out.some((l) => /database is locked/.test(l)), `native COMMIT under our SHARED: ${JSON.stringify(out)}`);
    db.exec("COMMIT");
    assert.deepEqual(await nat.run("COMMIT;"), [], "native COMMIT once we are done");
    assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 99, "we see that commit");
    // Native RESERVED: we can read (old state), not write.
    await nat.run("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+501 WHERE id=1; UPDATE acct SET bal=bal-501 WHERE id=2;");
    assertBusy(() => db.exec("BEGIN IMMEDIATE"), "our BEGIN IMMEDIATE under a native RESERVED");
    assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 99, "we read the committed state under RESERVED");
    assertBusy(() => db.exec("UPDATE acct SET bal=bal WHERE id=3"), "our write under a native RESERVED");
    // Native EXCLUSIVE: not even a read.
    assert.deepEqual(await nat.run("COMMIT; BEGIN EXCLUSIVE;"), []);
    assertBusy(() => db.get("SELECT count(*) FROM acct"), "our read under a native EXCLUSIVE");
    assert.deepEqual(await nat.run("COMMIT;"), []);
    assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "we see the native commit");
    // Our RESERVED: a native writer cannot start, a native reader reads the last commit.
    db.exec("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+1 WHERE id=3");
    const begin = await nat.run("BEGIN IMMEDIATE;");
    assert.ok(begin.some((l) => /database is locked/.test(l)), `a native BEGIN IMMEDIATE under our RESERVED: ${JSON.stringify(begin)}`);
    assert.deepEqual(await nat.run("SELECT bal FROM acct WHERE id=3;"), ["100"], "a native read under our RESERVED");
    db.exec("ROLLBACK");
    // Our EXCLUSIVE (a transaction larger than the cache spills into the database file): native
    // readers are kept out rather than shown our uncommitted pages.
    db.exec("PRAGMA cache_size=5; BEGIN; UPDATE acct SET bal=bal+1000 WHERE id=1; UPDATE log SET pad=randomblob(3000) WHERE id<300");
    const read = await nat.run(`${CHECK};`);
    assert.ok(read.some((l) => /database is locked/.test(l)), `a native read under our EXCLUSIVE: ${JSON.stringify(read)}`);
    db.exec("ROLLBACK; PRAGMA cache_size=-2000");
    assert.deepEqual(await nat.run(`${CHECK};`), [`${TOTAL}|1|${LOG_ROWS}`], "and reads once we rolled back");
    db.exec("UPDATE acct SET bal=bal-500 WHERE id=1; UPDATE acct SET bal=bal+500 WHERE id=2");
    db.close();
    await nat.close();
    assertCommitted(file, "after");
  });

  check("WAL: the write lock is seen both ways (native BEGIN IMMEDIATE vs ours)", async () => {
    const file = seeded("wal-vis", "wal");
    const db = open(file, undefined, 0);
    const nat = nativeShell(file, 200);
    await nat.run("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+500 WHERE id=1; UPDATE acct SET bal=bal-500 WHERE id=2;");
    assertBusy(() => db.exec("BEGIN IMMEDIATE"), "our BEGIN IMMEDIATE under the native write lock");
    assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 100, "we read the last commit meanwhile");
    assert.deepEqual(await nat.run("COMMIT;"), []);
    assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "we see the native commit");
    db.exec("BEGIN IMMEDIATE; UPDATE acct SET bal=bal-500 WHERE id=1");
    const out = await nat.run("BEGIN IMMEDIATE;");
    assert.ok(out.some((l) => /database is locked/.test(l)), `native BEGIN IMMEDIATE under our write lock: ${JSON.stringify(out)}`);
    assert.deepEqual(await nat.run("SELECT bal FROM acct WHERE id=1;"), ["600"], "the native side reads the last commit meanwhile");
    db.exec("UPDATE acct SET bal=bal+500 WHERE id=2; COMMIT");
    assert.deepEqual(await nat.run("SELECT bal FROM acct WHERE id=1;"), ["100"], "the native side sees our commit");
    db.close();
    await nat.close();
    assertCommitted(file, "after");
  });

  // ---------------------------------------------------------------- killed processes
  for (const mode of ["delete", "wal"] as const) {
    check(`${mode === "wal" ? "WAL" : "rollback journal"}: a native writer SIGKILLed mid-transaction loses its locks; our next read recovers and succeeds`, async () => {
      const file = seeded(`kill-native-${mode}`, mode);
      const db = open(file, undefined, 0);
      const nat = nativeShell(file);
      // A transaction larger than the cache: pages spill to the file (rollback: EXCLUSIVE, a hot journal).
      await nat.run("PRAGMA cache_size=10; BEGIN; UPDATE acct SET bal=bal+1000 WHERE id=1; UPDATE log SET pad=randomblob(3000);");
      if (mode === "delete") {
        assert.ok(existsSync(`${file}-journal`), "a journal");
        assertBusy(() => db.get("SELECT count(*) FROM acct"), "our read under its EXCLUSIVE");
      } else {
        assertBusy(() => db.exec("BEGIN IMMEDIATE"), "our write under its write lock");
      }
      const exit = await nat.kill();
      assert.equal(exit.signal, "SIGKILL");
      assert.equal(ourCheck(db, "after the kill"), LOG_ROWS, "the killed transaction is not there");
      if (mode === "delete") assert.ok(!existsSync(`${file}-journal`), "we rolled back its hot journal");
      db.exec(txnSql(rng(9), "ours"));
      db.close();
      assert.equal(assertCommitted(file, "after"), LOG_ROWS + 1);
    });

    check(`${mode === "wal" ? "WAL" : "rollback journal"}: a process of ours SIGKILLed holding the write lock: a native writer proceeds`, async () => {
      const file = seeded(`kill-ours-${mode}`, mode);
      const child = ourShell(file, 0);
      await child.run("PRAGMA cache_size=10; BEGIN IMMEDIATE; UPDATE acct SET bal=bal+1000 WHERE id=1; UPDATE log SET pad=randomblob(3000)");
      const blocked = nativeShell(file, 200);
      const out = await blocked.run("BEGIN IMMEDIATE;");
      assert.ok(out.some((l) => /database is locked/.test(l)), `a native writer waits for our child: ${JSON.stringify(out)}`);
      await blocked.close();
      assert.equal((await child.kill()).signal, "SIGKILL");
      const nat = nativeShell(file);
      assert.deepEqual(await nat.run(`${txnSql(rng(10), "native")} ${CHECK};`), [`${TOTAL}|1|${LOG_ROWS + 1}`], "the native writer commits; the killed transaction is gone");
      await nat.close();
      assert.equal(assertCommitted(file, "after"), LOG_ROWS + 1);
    });
  }

  // ---------------------------------------------------------------- our own processes and connections
  for (const mode of ["delete", "wal"] as const) {
    check(`${mode === "wal" ? "WAL" : "rollback journal"}: two processes of ours on one file conflict as SQLite says and see each other's commits`, async () => {
      const file = seeded(`two-procs-${mode}`, mode);
      const db = open(file, undefined, 0);
      const child = ourShell(file, 0);
      // The child writes; we cannot write meanwhile, we read the last commit.
      assert.deepEqual(await child.run("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+500 WHERE id=1; UPDATE acct SET bal=bal-500 WHERE id=2"), []);
      assertBusy(() => db.exec("BEGIN IMMEDIATE"), "our write under the child's write lock");
      assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 100, "we read the last commit");
      assert.deepEqual(await child.run("COMMIT"), []);
      assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "we see the child's commit");
      // We read (in a transaction); the child writes: rollback journal: its COMMIT is BUSY; WAL: it commits.
      db.exec("BEGIN");
      ourCheck(db, "our read transaction");
      const out = await child.run("BEGIN IMMEDIATE; UPDATE acct SET bal=bal-500 WHERE id=1; UPDATE acct SET bal=bal+500 WHERE id=2; COMMIT");
      if (mode === "delete") {
        assert.ok(out.some((l) => /database is locked/.test(l)), `the child's COMMIT under our SHARED: ${JSON.stringify(out)}`);
        db.exec("COMMIT");
        assert.deepEqual(await child.run("COMMIT"), []);
      } else {
        assert.deepEqual(out, [], "a WAL writer commits beside our reader");
        assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "our snapshot stays");
        db.exec("COMMIT");
      }
      assert.equal(db.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 100, "we see the child's second commit");
      // We write; the child sees it.
      db.exec(txnSql(rng(11), "parent"));
      assert.deepEqual(await child.run(CHECK), [`${TOTAL}|1|${LOG_ROWS + 1}`], "the child sees our commit");
      db.close();
      assert.equal((await child.close()).code, 0, "child exit");
      assertCommitted(file, "after");
    });
  }

  for (const mode of ["delete", "wal"] as const) {
    check(`${mode === "wal" ? "WAL" : "rollback journal"}: two connections in one process conflict as SQLite says`, async () => {
      const file = seeded(`two-conns-${mode}`, mode);
      const a = open(file, undefined, 0);
      const b = open(file, undefined, 0);
      a.exec("BEGIN IMMEDIATE; UPDATE acct SET bal=bal+500 WHERE id=1; UPDATE acct SET bal=bal-500 WHERE id=2");
      assertBusy(() => b.exec("BEGIN IMMEDIATE"), "b's write under a's write lock");
      assert.equal(b.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 100, "b reads the last commit");
      a.exec("COMMIT");
      assert.equal(b.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "b sees a's commit");
      b.exec("BEGIN");
      ourCheck(b, "b's read transaction");
      a.exec("BEGIN IMMEDIATE; UPDATE acct SET bal=bal-500 WHERE id=1; UPDATE acct SET bal=bal+500 WHERE id=2");
      if (mode === "delete") {
        assertBusy(() => a.exec("COMMIT"), "a's COMMIT under b's SHARED");
        assertBusy(() => b.exec("UPDATE acct SET bal=bal WHERE id=3"), "b cannot write under a's RESERVED/PENDING");
        b.exec("COMMIT");
        a.exec("COMMIT");
      } else {
        a.exec("COMMIT");
        assert.equal(b.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 600, "b's snapshot stays");
        assertBusy(() => b.exec("UPDATE acct SET bal=bal WHERE id=3"), "b cannot write from an old snapshot (BUSY_SNAPSHOT)");
        b.exec("COMMIT");
      }
      assert.equal(b.get<{ bal: number }>("SELECT bal FROM acct WHERE id=1")!.bal, 100, "b sees a's second commit");
      a.close();
      b.close();
      assertCommitted(file, "after");
    }, true);
  }

  return checks.map((c) => ({
    ...c,
    fn: async () => {
      try {
        await c.fn();
      } finally {
        await Promise.all(shells.splice(0).map((s) => s.kill()));
      }
    },
  })).concat([{
    name: "(cleanup)",
    anyLocking: true,
    fn: async () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  }]);
}
