// The CLI with streams: "backup <source> -" to stdout and "restore - <database>" from stdin, as
// they are piped (gzip, ssh, an upload).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, integrity, tmpDir } from "./helpers.js";

const BIN = join(import.meta.dirname, "..", "dist", "cli.js");
const test = suite("cli streams");
const sha3 = (file: string) => cli(file, ".sha3sum").trim();

function source(file: string): string {
  cli(file, `PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) INSERT INTO t(b) SELECT randomblob(300) FROM n;`);
  return file;
}

test("backup <source> - writes the database to stdout, restore - <database> reads it from stdin", () => {
  const dir = tmpDir("clistream");
  const src = source(join(dir, "app.db"));
  const out = spawnSync(process.execPath, [BIN, "backup", src, "-"], { maxBuffer: 1 << 28, env: { ...process.env, TMPDIR: dir } });
  assert.is(out.status, 0, out.stderr.toString());
  assert.match(out.stderr.toString(), /backup: wrote \d+ pages .* to standard output/);
  writeFileSync(join(dir, "piped.db"), out.stdout);
  assert.is(integrity(join(dir, "piped.db")), "ok");
  assert.is(sha3(join(dir, "piped.db")), sha3(src));

  const restored = join(dir, "restored.db");
  const r = spawnSync(process.execPath, [BIN, "restore", "-", restored, "--json"], { input: out.stdout, encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const done = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).at(-1);
  assert.is(done.event, "done");
  assert.is(done.source, "-");
  assert.is(sha3(restored), sha3(src));
  assert.equal(readdirSync(dir).filter((f) => f.startsWith("sbw-")), [], "no spool left in TMPDIR");
});

test("restore - of a stream cut short fails (exit 1, SQLITE_CORRUPT) and leaves the database as it was", () => {
  const dir = tmpDir("clistream");
  const src = source(join(dir, "app.db"));
  const dest = join(dir, "dest.db");
  cli(dest, "CREATE TABLE keep(x); INSERT INTO keep VALUES (1)");
  const before = readFileSync(dest);
  const r = spawnSync(process.execPath, [BIN, "restore", "-", dest], { input: readFileSync(src).subarray(0, 100_000), encoding: "utf8" });
  assert.is(r.status, 1);
  assert.match(r.stderr, /SQLITE_CORRUPT/);
  assert.equal(readFileSync(dest), before);
});

test("backup <source> - whose reader goes away fails (exit 1) and leaves no spool", () => {
  const dir = tmpDir("clistream");
  const src = source(join(dir, "app.db"));
  const r = spawnSync("bash", ["-c", `'${process.execPath}' '${BIN}' backup '${src}' - | head -c 1000 > /dev/null; exit \${PIPESTATUS[0]}`],
    { encoding: "utf8", env: { ...process.env, TMPDIR: dir }, timeout: 60_000 });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /the reader of standard output went away/);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith("sbw-")), [], "no spool left in TMPDIR");
});

test.run();
