// The CLI's replica commands end to end (the built binary, node dist/cli.js): replicate runs
// until SIGINT and stops cleanly with its last sync on the target; replica ls lists the syncs;
// restore <target-url> brings back the last one and one by number; replica verify checks it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { cli, integrity, tmpDir } from "./helpers.js";

const BIN = join(import.meta.dirname, "..", "dist", "cli.js");
const test = suite("replica-cli");

function run(args: string[], env?: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000, env: env ?? process.env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, events: r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test("replicate until SIGINT, ls, restore (last and by number), verify", async () => {
  const dir = tmpDir("rcli");
  const db = join(dir, "app.db");
  // Rollback journal: each native sqlite3 run below closes the database (without real file locks,
  // Node < 26, a WAL that the last native connection deletes on close goes unseen by the next sync).
  cli(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t(v) VALUES (randomblob(3000)), (randomblob(3000));");
  const url = pathToFileURL(join(dir, "replica")).href;
  const p = spawn(process.execPath, [BIN, "replicate", db, url, "--interval", "100ms", "--json"], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((res) => p.once("exit", (code) => res(code)));
  const events: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: p.stdout }).on("line", (l) => {
    events.push(JSON.parse(l));
    waiters.splice(0).forEach((w) => w());
  });
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise<void>((res) => waiters.push(res));
  };
  const syncs = () => events.filter((e) => e.event === "sync" && e.kind !== "none");
  await until(() => syncs().length >= 1);
  cli(db, "INSERT INTO t(v) VALUES (randomblob(3000));");
  await until(() => syncs().length >= 2);
  cli(db, "INSERT INTO t(v) VALUES (4);");
  p.kill("SIGINT");
  assert.is(await exited, 0);
  assert.ok(events.some((e) => e.event === "stopped"), JSON.stringify(events));
  assert.is(syncs()[0]!.kind, "snapshot");
  assert.is(syncs()[1]!.kind, "delta");

  const ls = run(["replica", "ls", url, "--json"]);
  assert.is(ls.status, 0, ls.stderr);
  const listed = ls.events.filter((e) => e.event === "sync");
  assert.ok(listed.length >= 3, ls.stdout); // the last sync on stop took the last insert
  assert.ok(listed.every((e) => e.complete === true));

  const out = join(dir, "out.db");
  const r = run(["restore", url, out, "--json"]);
  assert.is(r.status, 0, r.stderr);
  assert.is(integrity(out), "ok");
  assert.is(cli(out, "SELECT count(*) FROM t").trim(), "4");
  const first = join(dir, "first.db");
  assert.is(run(["restore", url, first, "--at", "1", "--json"]).status, 0);
  assert.is(cli(first, "SELECT count(*) FROM t").trim(), "2");

  const v = run(["replica", "verify", url, "--json"]);
  assert.is(v.status, 0, v.stdout + v.stderr);
  assert.ok(v.events.some((e) => e.event === "result" && e.ok === true));
});

test("usage errors", () => {
  assert.is(run(["replica", "rm", "file:///tmp/x", "--json"]).status, 2);
  assert.is(run(["replicate", "a.db", "--json"]).status, 2);
  assert.is(run(["backup", "a.db", "b.db", "--interval", "1s", "--json"]).status, 2);
  const env = { ...process.env, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" };
  const s3 = run(["replica", "ls", "s3://bucket/prefix", "--json"], env);
  assert.is(s3.status, 2);
  assert.match(s3.stdout, /AWS_ACCESS_KEY_ID/);
});

test.run();
