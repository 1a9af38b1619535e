// Bad input and soak. Fuzzed sources (bit flips, truncations, random headers, huge page-count and
// odd page-size fields) and garbage journals beside the destination: a backup either completes
// or rejects with SqliteError; never a WebAssembly trap, a hang or another exception; the
// destination stays sound; the instance stays usable. Soak: many backups with writers and aborts;
// memoryUsed() and open file descriptors return to their baselines.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSqlite, SqliteError, type Sqlite } from "../src/index.js";
import { assertOneOf, judge, knob, openFds, rng, SEED } from "./faults/util.js";
import { tmpDir } from "./helpers.js";

const FUZZ_CASES = knob("SBW_FUZZ_CASES", 400);
const SOAK_BACKUPS = knob("SBW_SOAK_BACKUPS", 300);
const dir = tmpDir("fuzz");
const stats = { cases: 0, completed: 0, rejected: 0, soak: 0, aborted: 0 };
let sqlite: Sqlite;

test.before(async () => {
  sqlite = await loadSqlite({ vfs: [] }); // a private heap, so the baselines are ours alone
});

type Mutation = "bitflip" | "truncate" | "header" | "pagecount" | "pagesize" | "journal" | "magic-journal";
const MUTATIONS: Mutation[] = ["bitflip", "truncate", "header", "pagecount", "pagesize", "journal", "magic-journal"];

/** Applies one mutation; returns the source bytes, and the destination's journal when there is one. */
function mutate(base: Uint8Array, m: Mutation, r: () => number): { src: Uint8Array; journal?: Uint8Array } {
  const src = base.slice();
  const int = (n: number) => Math.floor(r() * n);
  const dv = new DataView(src.buffer);
  switch (m) {
    case "bitflip":
      for (let i = 1 + int(32); i > 0; i--) src[int(src.length)]! ^= 1 << int(8);
      return { src };
    case "truncate":
      return { src: src.subarray(0, int(src.length)) };
    case "header":
      for (let i = int(100); i < 100; i += 1 + int(8)) src[i] = int(256);
      return { src };
    case "pagecount":
      dv.setUint32(28, [0xffffffff, 0x7fffffff, 0x10000000, 1 + int(1 << 30)][int(4)]!);
      return { src };
    case "pagesize":
      dv.setUint16(16, [0, 1, 3, 256, 511, 513, 0xffff, 1 << int(16)][int(8)]!);
      return { src };
    case "journal":
    case "magic-journal": {
      const journal = new Uint8Array(512 + int(8192)).map(() => int(256));
      if (m === "magic-journal") journal.set([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
      return { src, journal };
    }
  }
}

/** Resolves the promise or fails the test if it does not settle (a hang) within a generous bound. */
async function settles<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: hung`)), 30_000); });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** One backup between two files. (Not `using` in the loop body: esbuild's lowering of `using`
 * inside a loop of an async function carries a caught error over into the next iteration.) */
async function backupFiles(src: string, dest: string, ctx: string): Promise<void> {
  using source = sqlite.open(src, { readonly: true });
  using d = sqlite.open(dest);
  await settles(sqlite.backup(source, d, { pagesPerStep: 7 }), ctx);
}

test(`fuzzed sources and garbage journals (${FUZZ_CASES} cases)`, async () => {
  const base = join(dir, "base.db");
  execFileSync("sqlite3", ["-batch", base, `PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, v BLOB);
    CREATE INDEX ts ON t(s); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<40)
    INSERT INTO t(s, v) SELECT hex(randomblob(20)), randomblob(300) FROM c;`]);
  const old = join(dir, "old.db");
  execFileSync("sqlite3", ["-batch", old, "CREATE TABLE old(x); INSERT INTO old VALUES (1);"]);
  const oldSha = judge(old).sha;
  const baseSha = judge(base).sha;
  const bytes = new Uint8Array(readFileSync(base));
  const src = join(dir, "src.db");
  const dest = join(dir, "dest.db");
  const r = rng(SEED);
  const memBaseline = sqlite.memoryUsed();
  const fdBaseline = openFds();
  for (let i = 0; i < FUZZ_CASES; i++) {
    const m = MUTATIONS[i % MUTATIONS.length]!;
    const ctx = `case ${i} (${m}, seed ${SEED})`;
    const { src: srcBytes, journal } = mutate(bytes, m, r);
    writeFileSync(src, srcBytes);
    copyFileSync(old, dest);
    rmSync(`${dest}-journal`, { force: true });
    if (journal) writeFileSync(`${dest}-journal`, journal);
    stats.cases++;
    let rejected = false;
    try {
      await backupFiles(src, dest, ctx);
      stats.completed++;
    } catch (e) {
      // Never a RuntimeError (wasm trap), TypeError or RangeError: only SQLite's own verdict.
      assert.instance(e, SqliteError, `${ctx}: ${(e as Error)?.stack ?? e}`);
      stats.rejected++;
      rejected = true;
    }
    // A rejected backup leaves the old database; a garbage journal beside it changes nothing.
    // (A completed copy of a corrupt source is a faithful, equally corrupt page copy.)
    if (rejected) assertOneOf(dest, { old: oldSha }, `${ctx}: rejected`);
    else if (journal) assertOneOf(dest, { new: baseSha }, `${ctx}: copied past a garbage journal`);
    if (i % 50 === 0) { // the instance remains usable
      using probe = sqlite.open(":memory:");
      assert.equal(probe.get("SELECT 6 * 7 AS x"), { x: 42 }, ctx);
    }
  }
  assert.is(sqlite.memoryUsed(), memBaseline, "memoryUsed back to baseline after fuzzing");
  // None left open (the runtime itself may close one of its own meanwhile: Bun did).
  assert.ok(openFds() <= fdBaseline, `open file descriptors back to baseline after fuzzing: ${openFds()} > ${fdBaseline}`);
  assert.ok(stats.completed > 0 && stats.rejected > 0, "the fuzz cases reach both outcomes");
});

test(`soak: ${SOAK_BACKUPS} backups with writers and aborts`, async () => {
  const r = rng(SEED + 7);
  const file = join(dir, "soak-src.db");
  const memBaseline = sqlite.memoryUsed();
  const fdBaseline = openFds();
  {
    using mem = sqlite.open(":memory:");
    mem.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
      WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<120) INSERT INTO t(v) SELECT randomblob(500) FROM c;`);
    using disk = sqlite.open(file);
    await sqlite.backup(mem, disk);
    using writer = sqlite.open(file);
    const timer = setInterval(() => {
      mem.run("UPDATE t SET v=randomblob(500) WHERE id=?", [1 + Math.floor(r() * 120)]);
      writer.run("UPDATE t SET v=randomblob(500) WHERE id=?", [1 + Math.floor(r() * 120)]);
    }, 1);
    try {
      for (let i = 0; i < SOAK_BACKUPS; i++) {
        const source = i % 2 === 0 ? mem : disk;
        const toFile = i % 3 !== 0;
        const dest = toFile ? join(dir, `soak-${i % 4}.db`) : ":memory:";
        const ac = new AbortController();
        const abortAfter = r() < 0.3 ? Math.floor(r() * 6) : -1;
        let steps = 0;
        try {
          await sqlite.backup(source, dest, {
            pagesPerStep: 5, signal: ac.signal,
            onProgress: () => { if (steps++ === abortAfter) ac.abort(new Error("soak abort")); },
          });
        } catch (e) {
          assert.is((e as Error).message, "soak abort", `soak ${i}: ${String(e)}`);
          stats.aborted++;
        }
        stats.soak++;
      }
    } finally {
      clearInterval(timer);
    }
  }
  assert.ok(stats.aborted > 0, "some backups were aborted");
  assert.is(sqlite.memoryUsed(), memBaseline, "memoryUsed back to baseline after the soak");
  // None left open (the runtime itself may close one of its own meanwhile: Bun did).
  assert.ok(openFds() <= fdBaseline, `open file descriptors back to baseline after the soak: ${openFds()} > ${fdBaseline}`);
});

test.after(() => {
  console.log(`  bad input: ${stats.cases} fuzz cases (${stats.completed} copied, ${stats.rejected} rejected with SqliteError), ` +
    `0 traps/hangs; soak: ${stats.soak} backups (${stats.aborted} aborted), heap and fds back to baseline`);
});

test.run();
