// The command-line tool end to end: the built binary (node dist/cli.js), run as child processes
// against real files; every file it writes is checked with the native sqlite3 CLI. The bin
// installed from the packed tarball is test:pack's (test/pack/run-pack-tests.mjs).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { platform } from "node:process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { cli, integrity, tmpDir } from "./helpers.js";
import { runtime } from "./runtimes/index.mjs";

const BIN = join(import.meta.dirname, "..", "dist", "cli.js");
/** The native CLI's .dump (helpers' dump() caps output at 1 MiB; these databases are larger). */
const dump = (file: string) => execFileSync("sqlite3", ["-batch", file, ".dump"], { encoding: "utf8", maxBuffer: 1 << 28 });
const test = suite("cli");

interface Run { status: number | null; stdout: string; stderr: string }
function run(args: string[], cwd?: string): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", timeout: 60_000 }); // a hang fails, not stalls
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A source with the shapes verify must walk: rowid, WITHOUT ROWID, index, FTS5, blobs, reals. */
function makeSource(file: string, rows = 2000): void {
  cli(file, `PRAGMA user_version = 42;
    CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB, s TEXT, r REAL);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
      INSERT INTO t(b, s, r) SELECT randomblob(300), 'row ' || i, i / 7.0 FROM n;
    CREATE INDEX t_s ON t(s);
    CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    INSERT INTO kv VALUES ('a', 1), ('b', 2.5), ('c', x'00ff'), ('d', NULL);
    CREATE VIRTUAL TABLE doc USING fts5(body);
    INSERT INTO doc VALUES ('the quick brown fox'), ('jumps over the lazy dog');`);
}

/** A file SQLite cannot read back cleanly: a b-tree page in the middle overwritten with garbage. */
function corrupt(file: string): void {
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 20);
  closeSync(fd);
}

test("--help explains the commands and exits 0", () => {
  const r = run(["--help"]);
  assert.is(r.status, 0);
  for (const word of ["backup  <source> <destination>", "restore <backup> <database>", "verify  <source> <copy>", "--pages-per-step", "--pause", "--json", "Exit codes", "SIGHUP"]) {
    assert.ok(r.stdout.includes(word), `help mentions ${word}`);
  }
});

test("usage errors exit 2 with a hint, also as JSON", () => {
  for (const args of [[], ["copy", "a", "b"], ["backup", "a.db"], ["backup", "a", "b", "c"], ["backup", "a", "b", "--pause", "soon"],
    ["backup", "a", "b", "--pages-per-step", "0"], ["backup", "a", "b", "--pages-per-step", "1.5"], ["backup", "a", "b", "--pages-per-step", "-2"],
    ["backup", "a", "b", "--pages-per-step", "9007199254740992"], ["backup", "a", "b", "--pages-per-step=1e3"],
    ["backup", "a", "b", "--nope"], ["verify", "a", "b", "--force"]]) {
    const r = run(args);
    assert.is(r.status, 2, args.join(" "));
    assert.match(r.stderr, /--help/);
  }
  const r = run(["backup", "only-one.db", "--json"]);
  assert.is(r.status, 2);
  const [e] = jsonLines(r.stdout);
  assert.is(e!.event, "error");
  assert.is(e!.usage, true);
});

test("--version names the SQLite inside, the runtime, and which file locks are in effect", () => {
  const r = run(["--version"]);
  assert.is(r.status, 0);
  assert.match(r.stdout, /SQLite 3\.\d+\.\d+/);
  const [v] = jsonLines(run(["--version", "--json"]).stdout);
  const isBun = "Bun" in globalThis;
  assert.match(String(v!.runtime), isBun ? /^bun \d/ : new RegExp(`^node ${process.versions.node}$`));
  // FFI, and so real locks, come with Bun and with Node >= 26 (on Linux x86-64/arm64, where this runs).
  const ffi = isBun || Number(process.versions.node.split(".")[0]) >= 26;
  assert.is(v!.locking, ffi ? "os" : "process", String(v!.lockingReason));
  assert.match(r.stdout, ffi ? /file locks: real file locks/ : /file locks: this process only/);
});

test("backup writes a copy the native CLI reads as identical", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  const r = run(["backup", "src.db", "copy.db"], dir);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^backup: copied \d+ pages/);
  assert.match(r.stderr, /backup: \d+\/\d+ pages \(100%\)/); // plain progress lines when not a TTY
  assert.is(integrity(join(dir, "copy.db")), "ok");
  assert.is(dump(join(dir, "copy.db")), dump(join(dir, "src.db")));
  assert.is(cli(join(dir, "copy.db"), "PRAGMA user_version").trim(), "42");
});

test("backup refuses to replace an existing file without --force", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  cli(join(dir, "old.db"), "CREATE TABLE old(x); INSERT INTO old VALUES (1)");
  const before = dump(join(dir, "old.db"));
  const r = run(["backup", "src.db", "old.db"], dir);
  assert.is(r.status, 1);
  assert.match(r.stderr, /exists; pass --force/);
  assert.is(dump(join(dir, "old.db")), before);
  const forced = run(["backup", "src.db", "old.db", "--force"], dir);
  assert.is(forced.status, 0, forced.stderr);
  assert.is(dump(join(dir, "old.db")), dump(join(dir, "src.db")));
});

test("--json: one object per line, progress then done; --pages-per-step sets the step", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  const pageCount = Number(cli(join(dir, "src.db"), "PRAGMA page_count"));
  const r = run(["backup", "src.db", "copy.db", "--json", "--pages-per-step", "10", "--pause", "1"], dir);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, "");
  const events = jsonLines(r.stdout);
  const progress = events.filter((e) => e.event === "progress");
  assert.ok(progress.length >= 2);
  assert.is(progress[0]!.copied, 10);
  const copied = progress.map((e) => e.copied as number);
  assert.equal(copied, [...copied].sort((a, b) => a - b), "copied only grows");
  assert.is(progress.at(-1)!.remaining, 0);
  const done = events.at(-1)!;
  assert.is(done.event, "done");
  assert.is(done.pageCount, pageCount);
  assert.is(done.steps, Math.ceil(pageCount / 10));
  assert.is(done.bytes, pageCount * 4096);
  assert.is(integrity(join(dir, "copy.db")), "ok");
});

test("--pages-per-step all, -1, =-1 or more pages than the database copies in one step", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  for (const args of [["--pages-per-step", "all"], ["--pages-per-step", "-1"], ["--pages-per-step=-1"], ["--pages-per-step", "4294967296"],
    ["--pages-per-step", "9007199254740991"]]) {
    const r = run(["backup", "src.db", "copy.db", "--force", "--full", "--json", ...args], dir);
    assert.is(r.status, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.is(jsonLines(r.stdout).at(-1)!.steps, 1, args.join(" "));
  }
});

test("positionals after -- are files, even ones that look like options", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  const r = run(["backup", "--json", "--pages-per-step", "-1", "--", "src.db", "--full"], dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(jsonLines(r.stdout).at(-1)!.destination, "--full");
  assert.is(integrity(join(dir, "--full")), "ok");
  assert.is(run(["backup", "--", "src.db", "-1"], dir).status, 0);
  assert.ok(existsSync(join(dir, "-1")));
});

test("a missing source or one that is not a database fails with 1 and creates nothing", () => {
  const dir = tmpDir("cli");
  const missing = run(["backup", "nope.db", "copy.db"], dir);
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /does not exist/);
  writeFileSync(join(dir, "text.db"), "this is not a database, just text that is long enough to have a header ".repeat(100));
  const notDb = run(["backup", "text.db", "copy.db", "--json"], dir);
  assert.is(notDb.status, 1);
  const e = jsonLines(notDb.stdout).at(-1)!;
  assert.is(e.event, "error");
  assert.is(e.code, "SQLITE_NOTADB");
  assert.not.ok(existsSync(join(dir, "copy.db")));
});

test("restore puts a backup back over a changed database", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "app.db"));
  assert.is(run(["backup", "app.db", "app.bak"], dir).status, 0);
  cli(join(dir, "app.db"), "DELETE FROM t WHERE id % 3 = 0; DROP TABLE kv; PRAGMA user_version = 1");
  const r = run(["restore", "app.bak", "app.db"], dir);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^restore: copied/);
  assert.is(integrity(join(dir, "app.db")), "ok");
  assert.is(dump(join(dir, "app.db")), dump(join(dir, "app.bak")));
  assert.is(cli(join(dir, "app.db"), "PRAGMA user_version").trim(), "42");
});

test("restore refuses a damaged backup and leaves the database alone", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "app.db"));
  copyFileSync(join(dir, "app.db"), join(dir, "bad.bak"));
  corrupt(join(dir, "bad.bak"));
  cli(join(dir, "app.db"), "UPDATE t SET s = 'changed' WHERE id = 1");
  const before = readFileSync(join(dir, "app.db"));
  const r = run(["restore", "bad.bak", "app.db"], dir);
  assert.is(r.status, 1);
  assert.match(r.stderr, /restore failed/);
  assert.ok(readFileSync(join(dir, "app.db")).equals(before));
});

test("verify: a good copy passes; a copy by VACUUM INTO (other layout, same content) passes", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  assert.is(run(["backup", "src.db", "copy.db"], dir).status, 0);
  const r = run(["verify", "src.db", "copy.db", "--json"], dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const events = jsonLines(r.stdout);
  assert.is(events[0]!.event, "integrity");
  assert.is(events[0]!.ok, true);
  const tables = events.filter((e) => e.event === "table").map((e) => e.name);
  for (const t of ["t", "kv", "doc_content", "doc_data"]) assert.ok(tables.includes(t), `compared ${t}`);
  assert.equal(events.at(-1), { event: "result", command: "verify", ok: true, differences: 0 });

  cli(join(dir, "src.db"), `DELETE FROM t WHERE id % 2 = 0; VACUUM INTO '${join(dir, "vac.db")}'`);
  const v = run(["verify", "src.db", "vac.db"], dir);
  assert.is(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /matches/);
});

test("verify finds a changed row, an extra row, a schema change and a changed user_version", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  const cases: [string, string, RegExp][] = [
    ["UPDATE t SET r = r + 1e-9 WHERE id = 1500", "rows", /table t differs from row key 1500/],
    ["INSERT INTO kv VALUES ('e', 5)", "rows", /table kv differs from row key e/],
    ["UPDATE t SET b = CAST(b AS TEXT) WHERE id = 7", "rows", /table t differs from row key 7/],
    ["CREATE INDEX extra ON t(r)", "schema", /index extra is only in the copy/],
    ["PRAGMA user_version = 43", "user_version", /user_version is 42 in the source, 43/],
  ];
  for (const [sql, what, text] of cases) {
    copyFileSync(join(dir, "src.db"), join(dir, "copy.db"));
    cli(join(dir, "copy.db"), sql);
    const plain = run(["verify", "src.db", "copy.db"], dir);
    assert.is(plain.status, 1, sql);
    assert.match(plain.stdout, text);
    assert.match(plain.stderr, /verify failed/);
    const events = jsonLines(run(["verify", "src.db", "copy.db", "--json"], dir).stdout);
    assert.ok(events.some((e) => e.event === "difference" && e.what === what), sql);
    assert.is(events.at(-1)!.ok, false);
  }
});

test("verify of a copy left with a hot journal checks what its next read-write open gives, and writes nothing", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  assert.is(run(["backup", "src.db", "copy.db"], dir).status, 0);
  // A writer killed inside a transaction that spilled into the copy: a hot journal beside it.
  const copy = join(dir, "copy.db");
  spawnSync("sh", ["-c", `(echo "PRAGMA cache_size=2; BEGIN; UPDATE t SET b = randomblob(300);"; echo ".shell kill -9 \\$PPID") | sqlite3 -batch "${copy}"`]);
  assert.ok(existsSync(`${copy}-journal`), "the killed writer left its journal");
  const before = [readFileSync(copy), readFileSync(`${copy}-journal`)];
  const r = run(["verify", "src.db", "copy.db", "--json"], dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
  const events = jsonLines(r.stdout);
  assert.equal(events[0], { event: "hot-journal", file: "copy.db" });
  assert.equal(events.at(-1), { event: "result", command: "verify", ok: true, differences: 0 });
  assert.ok(readFileSync(copy).equals(before[0]!) && readFileSync(`${copy}-journal`).equals(before[1]!), "the copy and its journal are untouched");
});

test("verify fails on a damaged copy", () => {
  const dir = tmpDir("cli");
  makeSource(join(dir, "src.db"));
  copyFileSync(join(dir, "src.db"), join(dir, "copy.db"));
  corrupt(join(dir, "copy.db"));
  const r = run(["verify", "src.db", "copy.db"], dir);
  assert.is(r.status, 1);
  assert.match(r.stdout + r.stderr, /integrity_check of copy\.db failed|malformed/);
});

/** backup()'s temporary copies beside a destination (src/ops/scratch.ts: `.<name>.<hex>.sbw-tmp`). */
const stagedCopies = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".sbw-tmp"));

/**
 * Starts a slow backup (~40 MiB source, 256 pages per step, 200 ms pauses: ~8 s if left alone),
 * waits until it has copied more than the destination's page cache holds (so the destination file
 * and its rollback journal really are being written), then sends `signal`.
 */
async function interruptedBackup(dir: string, dest: string, signal: NodeJS.Signals = "SIGINT"): Promise<{ status: number | null; events: Record<string, unknown>[]; journalSeen: boolean }> {
  const child = spawn(process.execPath, [BIN, "backup", "big.db", dest, "--force", "--json", "--pages-per-step", "256", "--pause", "200"], { cwd: dir });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code))); // null: killed by a signal
  const events: Record<string, unknown>[] = [];
  let journalSeen = false;
  let sent = false;
  for await (const line of createInterface({ input: child.stdout })) {
    const e = JSON.parse(line) as Record<string, unknown>;
    events.push(e);
    if (!sent && e.event === "progress" && (e.copied as number) >= 2048) {
      // In place (its rollback journal) or, without real file locks, a copy beside it to rename.
      journalSeen = existsSync(join(dir, `${dest}-journal`)) || stagedCopies(dir).length > 0;
      child.kill(signal);
      sent = true;
    }
  }
  const status = await exited;
  return { status, events, journalSeen };
}

function makeBig(dir: string): void {
  cli(join(dir, "big.db"), `CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
      INSERT INTO big(b) SELECT randomblob(4000) FROM n;`);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  test(`${signal} mid-backup over an existing destination: exit 130, old destination intact`, async () => {
    const dir = tmpDir("cli");
    makeBig(dir);
    cli(join(dir, "dest.db"), `CREATE TABLE keep(id INTEGER PRIMARY KEY, s TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
        INSERT INTO keep(s) SELECT 'old row ' || i || printf('%.500c', '.') FROM n;`);
    const before = dump(join(dir, "dest.db"));
    const { status, events, journalSeen } = await interruptedBackup(dir, "dest.db", signal);
    assert.ok(journalSeen, `the destination was being written when ${signal} arrived`);
    assert.is(status, 130);
    const last = events.at(-1)!;
    assert.is(last.event, "error");
    assert.is(last.interrupted, signal);
    assert.ok(!events.some((e) => e.event === "done"));
    assert.is(integrity(join(dir, "dest.db")), "ok");
    assert.is(dump(join(dir, "dest.db")), before);
    assert.not.ok(existsSync(join(dir, "dest.db-journal")), "no journal left behind");
    assert.equal(stagedCopies(dir), [], "no staged copy left behind");
  });
}

test("Ctrl-C mid-backup to a new file leaves no file behind", async () => {
  const dir = tmpDir("cli");
  makeBig(dir);
  const { status } = await interruptedBackup(dir, "new.db");
  assert.is(status, 130);
  assert.not.ok(existsSync(join(dir, "new.db")));
  assert.not.ok(existsSync(join(dir, "new.db-journal")));
});

/** Linux: the pids of the processes whose parent is `pid`, and of those whose command line mentions `text`. */
function processes(pid: number, text: string): { children: number[]; mentioning: number[] } {
  const children: number[] = [];
  const mentioning: number[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) mentioning.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return { children, mentioning };
}

test("Node 20: the CLI is one process, and after a SIGKILL nothing goes on copying", async () => {
  if (platform !== "linux") return; // reads /proc
  const dir = tmpDir("cli");
  makeBig(dir);
  cli(join(dir, "dest.db"), "CREATE TABLE keep(x); INSERT INTO keep VALUES ('old')");
  const before = dump(join(dir, "dest.db"));
  const child = spawn(runtime("node20"), [BIN, "backup", join(dir, "big.db"), join(dir, "dest.db"), "--force", "--full", "--json", "--pages-per-step", "256", "--pause", "200"]);
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on("exit", (_code, signal) => r(signal)));
  let children: number[] | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if ((JSON.parse(line) as { event: string }).event !== "progress") continue;
    children = processes(child.pid!, dir).children;
    child.kill("SIGKILL");
    break;
  }
  assert.equal(children, [], "the CLI started no other process");
  assert.is(await exited, "SIGKILL");
  await sleep(500); // a few more steps' time
  assert.equal(processes(child.pid!, dir).mentioning, [], "no process is left working on the backup");
  assert.is(dump(join(dir, "dest.db")), before);
});

test("the scratch file of a backup killed mid-copy is removed by the next backup to that destination", async () => {
  const dir = tmpDir("cli");
  makeBig(dir);
  cli(join(dir, "dest.db"), "CREATE TABLE keep(x); INSERT INTO keep VALUES ('old')");
  const node20 = runtime("node20"); // no real file locks: a --full copy is built in a scratch file
  const args = [BIN, "backup", "big.db", "dest.db", "--force", "--full", "--json"];
  const child = spawn(node20, [...args, "--pages-per-step", "256", "--pause", "200"], { cwd: dir });
  const exited = new Promise((r) => child.on("exit", r));
  for await (const line of createInterface({ input: child.stdout })) {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.event === "progress" && (e.copied as number) >= 2048) {
      child.kill("SIGKILL");
      break;
    }
  }
  await exited;
  assert.is(stagedCopies(dir).length, 1, "the killed copy left its scratch file");
  const r = spawnSync(node20, args, { cwd: dir, encoding: "utf8", timeout: 60_000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.equal(stagedCopies(dir), []);
  assert.is(dump(join(dir, "dest.db")), dump(join(dir, "big.db")));
});

test.run();
