// Replicas into a directory (fileTarget), written in this process: every sync restorable by seq
// and by time, byte-equal to the shadow copy it was uploaded from, judged by the native sqlite3;
// deltas that carry only the changed pages; idle syncs that upload nothing; corrupted, deleted,
// reordered and substituted objects refused; encryption (wrong key, flipped byte); two
// replicators on one target; resume without a new snapshot; retention; a page size change; an
// in-memory source.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileTarget, SqliteError, SQLITE_AUTH, SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_CORRUPT, type Database, type SyncInfo } from "../src/index.js";
import { cli, fill, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const test = suite("replica");

/** The bytes of a database file with page 1's bytes that every copy sets anew zeroed. */
function normalized(file: string): Uint8Array {
  const b = new Uint8Array(readFileSync(file));
  b.fill(0, 24, 28);
  b.fill(0, 40, 44);
  b.fill(0, 92, 100);
  return b;
}
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
const objects = (dir: string) => readdirSync(dir).filter((n) => n !== "lease.json").sort();

async function corruptError(p: Promise<unknown>, code = SQLITE_CORRUPT): Promise<SqliteError> {
  const e = await rejects(p);
  assert.instance(e, SqliteError, String(e));
  assert.is((e as SqliteError).code, code, (e as Error).message);
  return e as SqliteError;
}

/** A source with table t, a replicator with no timer syncs in the way (sync() drives it). */
function setup(tag: string, journal: "wal" | "delete" = "wal", rows = 2000) {
  const dir = tmpDir(tag);
  const db = sqlite.open(join(dir, "src.db"));
  db.exec(`PRAGMA journal_mode=${journal}`);
  fill(db, rows);
  const target = fileTarget(join(dir, "replica"));
  const shadow = join(dir, "shadow.db");
  return { dir, db, target, shadow, replicaDir: join(dir, "replica") };
}

test("every sync restores by seq and by time, byte-equal to the copy it was uploaded from", async () => {
  const { dir, db, target, shadow } = setup("seq");
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, shadowPath: shadow });
  const states: { info: SyncInfo; bytes: Uint8Array; rows: number }[] = [];
  const take = async () => {
    const info = await r.sync();
    states.push({ info, bytes: normalized(shadow), rows: Number(db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n) });
    return info;
  };
  const first = await take();
  assert.is(first.kind, "snapshot");
  assert.is(first.seq, 1);
  for (let i = 0; i < 5; i++) {
    db.run("UPDATE t SET v = randomblob(400) WHERE id % 97 = ?", [i]);
    db.run("INSERT INTO t(v, s) VALUES (randomblob(400), 'new')");
    await new Promise((res) => setTimeout(res, 5)); // distinct times
    const info = await take();
    assert.is(info.kind, "delta");
    assert.is(info.seq, first.seq + i + 1);
    // Only the changed pages (the ~21 leaves updated, the last leaf, interior pages, page 1).
    assert.ok(info.pagesUploaded < info.pageCount / 4, `${info.pagesUploaded} of ${info.pageCount} pages`);
  }
  // Nothing changed: nothing uploaded, the seq stays.
  const idle = await r.sync();
  assert.is(idle.kind, "none");
  assert.is(idle.seq, states.at(-1)!.info.seq);
  assert.is(idle.objects, 0);
  await r.close();

  for (const s of states) {
    for (const at of [s.info.seq, s.info.time]) {
      const out = join(dir, `out-${s.info.seq}-${typeof at}.db`);
      const res = await sqlite.restoreReplica(target, out, { at });
      assert.is(res.seq, s.info.seq);
      assert.is(integrity(out), "ok");
      assert.is(Number(cli(out, "SELECT count(*) FROM t").trim()), s.rows);
      assert.ok(same(normalized(out), s.bytes), `sync ${s.info.seq} restores byte-equal to its copy`);
    }
  }
  // The latest, and a time between two syncs gives the earlier one.
  const latest = await sqlite.restoreReplica(target, join(dir, "latest.db"));
  assert.is(latest.seq, states.at(-1)!.info.seq);
  const between = new Date(states[2]!.info.time.getTime() + 1);
  assert.is((await sqlite.restoreReplica(target, join(dir, "between.db"), { at: between })).seq, states[2]!.info.seq);
  await corruptError(sqlite.restoreReplica(target, join(dir, "x.db"), { at: 99 }), SQLITE_CANTOPEN);
  await corruptError(sqlite.restoreReplica(target, join(dir, "x.db"), { at: new Date(first.time.getTime() - 1000) }), SQLITE_CANTOPEN);
  assert.not.ok(existsSync(join(dir, "x.db")));
  const v = await sqlite.verifyReplica(target);
  assert.ok(v.ok);
  assert.is(v.seq, latest.seq);
  assert.equal(v.tables.map((t) => [t.name, t.rows]), [["t", states.at(-1)!.rows]]);
  db.close();
});

for (const journal of ["delete", "wal"] as const) test(`a delta holds its pages XORed with the sync before, within a bound; snapshots are not gzipped (${journal})`, async () => {
  const { dir, db, target, shadow, replicaDir } = setup(`xor-${journal}`, journal);
  const flags = (seq: number) => {
    const names = objects(replicaDir).filter((n) => Number(n.slice(0, 16)) === seq);
    return names.map((n) => readFileSync(join(replicaDir, n)).readUint16BE(6));
  };
  const XOR = 8, GZIP = 2;
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, shadowPath: shadow });
  const states: { seq: number; bytes: Uint8Array }[] = [];
  const take = async () => {
    const info = await r.sync();
    states.push({ seq: info.seq, bytes: normalized(shadow) });
    return info;
  };
  const first = await take();
  assert.ok(flags(first.seq).every((f) => (f & (XOR | GZIP)) === 0), "a snapshot: neither XORed nor gzipped");
  // One row of ~400 random bytes changed: the page's other ~3.6 KB are zeros once XORed.
  db.run("UPDATE t SET v = randomblob(400) WHERE id = 1000");
  const small = await take();
  assert.is(small.kind, "delta");
  assert.equal(flags(small.seq), [XOR | GZIP]);
  assert.ok(small.bytesUploaded < 3000, `${small.bytesUploaded} bytes for ${small.pagesUploaded} pages`);
  // More pages than the compare keeps old bytes of (8 MiB): that delta holds them as they are.
  db.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000) INSERT INTO t(v, s) SELECT randomblob(400), 'big' FROM n`);
  const big = await take();
  assert.is(big.kind, "delta");
  assert.ok(big.pagesUploaded > 2048, `${big.pagesUploaded} pages`);
  assert.ok(flags(big.seq).every((f) => (f & XOR) === 0), "past the bound: plain pages");
  db.run("UPDATE t SET s = 'again' WHERE id % 50 = 0");
  const after = await take();
  assert.equal(flags(after.seq), [XOR | GZIP]);
  db.run("DELETE FROM t WHERE s = 'big' AND id % 3 = 0");
  db.exec("VACUUM");
  const shrunk = await take();
  assert.ok(shrunk.pageCount < after.pageCount);
  db.run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO t(v, s) SELECT randomblob(400), 'regrown' FROM n`);
  await take();
  await r.close();
  db.close();
  for (const s of states) {
    const out = join(dir, `out-${s.seq}.db`);
    await sqlite.restoreReplica(target, out, { at: s.seq });
    assert.ok(same(normalized(out), s.bytes), `sync ${s.seq} restores byte-equal to its copy`);
  }
  assert.ok((await sqlite.verifyReplica(target)).ok);
});

test("merges: a restore applies one object per span, byte-equal at every sync; a shrink ends a span", async () => {
  const { dir, db, target, shadow, replicaDir } = setup("merge", "wal");
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, shadowPath: shadow, mergeLevelsMs: [40, 150] });
  const states: { seq: number; bytes: Uint8Array }[] = [];
  const take = async () => {
    const info = await r.sync();
    states.push({ seq: info.seq, bytes: normalized(shadow) });
  };
  await take();
  for (let i = 0; i < 14; i++) {
    db.run("UPDATE t SET v = randomblob(400) WHERE id % 37 = ?", [i]);
    db.run("INSERT INTO t(v, s) VALUES (randomblob(3000), 'new')");
    if (i === 6) {
      db.run("DELETE FROM t WHERE id % 3 = 0");
      db.exec("VACUUM");
    }
    await new Promise((res) => setTimeout(res, 15));
    await take();
  }
  await r.close();
  db.close();
  const merges = readdirSync(replicaDir).filter((n) => n.includes(".merge-"));
  assert.ok(merges.length >= 3, merges.join(" "));
  for (const s of states) {
    const out = join(dir, `out-${s.seq}.db`);
    await sqlite.restoreReplica(target, out, { at: s.seq });
    assert.ok(same(normalized(out), s.bytes), `sync ${s.seq} restores byte-equal to its copy`);
  }
  const latest = await sqlite.restoreReplica(target, join(dir, "latest.db"));
  assert.ok(latest.objects < states.length, `${latest.objects} objects for ${states.length} syncs`);
  assert.ok((await sqlite.verifyReplica(target)).ok);
  // Merges damaged: the restore goes through the syncs instead, to the same bytes.
  for (const m of merges) {
    const bytes = readFileSync(join(replicaDir, m));
    bytes[bytes.length - 5]! ^= 1;
    writeFileSync(join(replicaDir, m), bytes);
  }
  const around = await sqlite.restoreReplica(target, join(dir, "around.db"));
  assert.is(around.objects, states.length);
  assert.ok(same(normalized(join(dir, "around.db")), states.at(-1)!.bytes));
});

test("a restore into an open Database and over an existing file", async () => {
  const { dir, db, target } = setup("into", "delete", 500);
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000 });
  await r.sync();
  await r.close();
  const other = sqlite.open(join(dir, "other.db"));
  other.exec("CREATE TABLE x(a); INSERT INTO x VALUES (1)");
  await sqlite.restoreReplica(target, other);
  assert.is(other.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n, 500);
  other.close();
  const file = sqlite.open(join(dir, "file.db"));
  file.exec("PRAGMA page_size=1024; CREATE TABLE y(b); INSERT INTO y VALUES (2)");
  file.close();
  await sqlite.restoreReplica(target, join(dir, "file.db"));
  assert.is(cli(join(dir, "file.db"), "SELECT count(*) FROM t").trim(), "500");
  db.close();
});

/** A replica with a snapshot and four deltas. */
async function fiveSyncs(tag: string, encryptionKey?: Uint8Array) {
  const s = setup(tag, "wal", 1000);
  const r = sqlite.replicate(s.db, s.target, { intervalMs: 3_600_000, encryptionKey });
  for (let i = 0; i < 5; i++) {
    if (i > 0) s.db.run("INSERT INTO t(v, s) VALUES (randomblob(3000), 'more')");
    await r.sync();
  }
  await r.close();
  s.db.close();
  return s;
}

test("a corrupted, deleted, reordered or substituted object: rejected, no database", async () => {
  const { dir, target, replicaDir } = await fiveSyncs("corrupt");
  const names = objects(replicaDir);
  assert.is(names.length, 5);
  const out = join(dir, "out.db");
  const backupOf = (n: string) => readFileSync(join(replicaDir, n));
  const check = async (what: string, code = SQLITE_CORRUPT) => {
    const e = await corruptError(sqlite.restoreReplica(target, out), code);
    assert.not.ok(existsSync(out), `${what}: no database`);
    assert.equal(readdirSync(dir).filter((n) => n.includes("sbw-tmp") || n.startsWith("sbw-")), [], "no staging file left");
    return e;
  };
  // A flipped byte in the pages of a delta, then in a header.
  const mid = names[2]!;
  const orig = backupOf(mid);
  for (const at of [orig.length - 10, 30]) {
    const bad = Buffer.from(orig);
    bad[at]! ^= 1;
    writeFileSync(join(replicaDir, mid), bad);
    await check(`byte ${at} flipped`);
  }
  writeFileSync(join(replicaDir, mid), orig);
  // A flipped byte in the snapshot's pages (stored as they are): named by its checksum.
  const snapshot = backupOf(names[0]!);
  const badSnapshot = Buffer.from(snapshot);
  badSnapshot[badSnapshot.length - 100]! ^= 1;
  writeFileSync(join(replicaDir, names[0]!), badSnapshot);
  const flipped = await check("a snapshot's byte flipped");
  assert.ok(flipped.message.includes(names[0]!) && flipped.message.includes("checksum"), flipped.message);
  writeFileSync(join(replicaDir, names[0]!), snapshot);
  assert.ok((await sqlite.restoreReplica(target, out)).seq === 5);
  rmSync(out);
  // A delta deleted: the next one does not follow the one before.
  unlinkSync(join(replicaDir, mid));
  assert.match((await check("deleted")).message, /missing|broken/);
  writeFileSync(join(replicaDir, mid), orig);
  // Two deltas swapped (their names exchanged).
  const [a, b] = [names[2]!, names[3]!];
  renameSync(join(replicaDir, a), join(replicaDir, "tmp"));
  renameSync(join(replicaDir, b), join(replicaDir, a));
  renameSync(join(replicaDir, "tmp"), join(replicaDir, b));
  await check("reordered");
  renameSync(join(replicaDir, b), join(replicaDir, "tmp"));
  renameSync(join(replicaDir, a), join(replicaDir, b));
  renameSync(join(replicaDir, "tmp"), join(replicaDir, a));
  // The last sync deleted: its lease says it was there.
  const last = names[4]!;
  const lastBytes = backupOf(last);
  unlinkSync(join(replicaDir, last));
  assert.match((await check("last deleted")).message, /lease/);
  // Substituted by the same sync of another replica (same names, another chain).
  const other = await fiveSyncs("corrupt-other");
  const otherLast = objects(other.replicaDir)[4]!;
  writeFileSync(join(replicaDir, last), readFileSync(join(other.replicaDir, otherLast)));
  renameSync(join(replicaDir, last), join(replicaDir, otherLast === last ? last : otherLast));
  await check("substituted");
  rmSync(join(replicaDir, otherLast));
  writeFileSync(join(replicaDir, last), lastBytes);
  assert.is((await sqlite.restoreReplica(target, out)).seq, 5);
  assert.is(integrity(out), "ok");
});

test("encryption: unreadable without the key, wrong key and flipped byte rejected", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const { dir, target, replicaDir } = await fiveSyncs("crypt", key);
  const out = join(dir, "out.db");
  const names = objects(replicaDir);
  // No page in the clear (the source's rows say "row N").
  for (const n of names) assert.not.ok(readFileSync(join(replicaDir, n)).includes("row 1"), `${n} is encrypted`);
  await corruptError(sqlite.restoreReplica(target, out), SQLITE_AUTH);
  await corruptError(sqlite.restoreReplica(target, out, { encryptionKey: crypto.getRandomValues(new Uint8Array(32)) }), SQLITE_AUTH);
  const asKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
  assert.is((await sqlite.restoreReplica(target, out, { encryptionKey: asKey })).seq, 5);
  assert.is(integrity(out), "ok");
  rmSync(out);
  const mid = join(replicaDir, names[3]!);
  const orig = readFileSync(mid);
  const bad = Buffer.from(orig);
  bad[bad.length - 100]! ^= 0x80;
  writeFileSync(mid, bad);
  await corruptError(sqlite.restoreReplica(target, out, { encryptionKey: key }));
  assert.not.ok(existsSync(out));
  writeFileSync(mid, orig);
  assert.ok((await sqlite.verifyReplica(target, { encryptionKey: key })).ok);
  assert.throws(() => sqlite.replicate(sqlite.open(":memory:"), target, { encryptionKey: new Uint8Array(16) }), /32 bytes/);
});

test("two replicators on one target: the second is refused, naming the first", async () => {
  const { db, target, dir } = setup("two", "wal", 300);
  const errors: SqliteError[] = [];
  const r1 = sqlite.replicate(db, target, { intervalMs: 3_600_000 });
  await r1.sync();
  const db2 = sqlite.open(join(dir, "src.db"));
  const r2 = sqlite.replicate(db2, target, { intervalMs: 3_600_000, shadowPath: join(dir, "other-shadow.db"), onError: (e) => errors.push(e) });
  const e = await corruptError(r2.sync(), SQLITE_BUSY);
  assert.match(e.message, new RegExp(`process ${process.pid}`));
  await r2.close();
  assert.ok(errors.length >= 1 && errors[0]!.code === SQLITE_BUSY);
  // The first goes on; once it closed, the lease is free.
  db.run("INSERT INTO t(v) VALUES (1)");
  assert.is((await r1.sync()).kind, "delta");
  await r1.close();
  const r3 = sqlite.replicate(db2, target, { intervalMs: 3_600_000, shadowPath: join(dir, "other-shadow.db") });
  assert.is((await r3.sync()).kind, "snapshot"); // its own shadow never held the target's state
  await r3.close();
  db.close();
  db2.close();
});

test("a new replicator resumes from its shadow: a delta, not a snapshot", async () => {
  const { db, target, dir } = setup("resume", "delete", 800);
  const r1 = sqlite.replicate(db, target, { intervalMs: 3_600_000 });
  await r1.sync();
  db.run("DELETE FROM t WHERE id % 3 = 0");
  const s2 = await r1.sync();
  await r1.close();
  assert.equal(readdirSync(dir).filter((n) => n.startsWith("src.db-replica-")).length, 2, "the shadow and its state stay");
  db.run("INSERT INTO t(v) VALUES (randomblob(100))");
  const r2 = sqlite.replicate(join(dir, "src.db"), target, { intervalMs: 3_600_000 });
  const s3 = await r2.sync();
  assert.is(s3.kind, "delta");
  assert.is(s3.seq, s2.seq + 1);
  await r2.close();
  const out = join(dir, "out.db");
  await sqlite.restoreReplica(target, out);
  assert.is(cli(out, "SELECT count(*) FROM t").trim(), String(db.get<{ n: number }>("SELECT count(*) AS n FROM t")!.n));
  // A shadow that does not hold the target's last state: a snapshot.
  const shadow = readdirSync(dir).find((n) => n.startsWith("src.db-replica-") && !n.endsWith(".json"))!;
  const torn = readFileSync(join(dir, shadow));
  torn.fill(7, 2 * 4096 + 100, 2 * 4096 + 200); // a page the last sync did not write
  writeFileSync(join(dir, shadow), torn);
  const r3 = sqlite.replicate(db, target, { intervalMs: 3_600_000 });
  assert.is((await r3.sync()).kind, "snapshot");
  await r3.close();
  assert.ok((await sqlite.verifyReplica(target)).ok);
  db.close();
});

test("retention deletes what no point inside it needs; snapshots every snapshotIntervalMs", async () => {
  const { db, target, replicaDir, dir } = setup("retain", "wal", 300);
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, snapshotIntervalMs: 150, retentionMs: 150 });
  const infos: SyncInfo[] = [];
  for (let i = 0; i < 8; i++) {
    db.run("INSERT INTO t(v) VALUES (randomblob(100))");
    infos.push(await r.sync());
    // The last sync comes more than retentionMs after the others, however slow the machine: its
    // retention runs, and finds every earlier sync past retentionMs, a second snapshot among them.
    await new Promise((res) => setTimeout(res, i === 6 ? 200 : 60));
  }
  await r.close();
  assert.ok(infos.filter((i) => i.kind === "snapshot").length >= 3, infos.map((i) => i.kind).join());
  const left = objects(replicaDir);
  assert.ok(left.length < 8, `${left.length} objects left`);
  const oldest = Number(left[0]!.slice(0, 16));
  assert.ok(left[0]!.endsWith(".snapshot"));
  await corruptError(sqlite.restoreReplica(target, join(dir, "old.db"), { at: 1 }), SQLITE_CANTOPEN);
  assert.is((await sqlite.restoreReplica(target, join(dir, "new.db"), { at: oldest })).seq, oldest);
  assert.is((await sqlite.restoreReplica(target, join(dir, "last.db"))).seq, 8);
  db.close();
});

test("a page size change uploads a snapshot; an in-memory source replicates", async () => {
  const { db, target, dir } = setup("pagesize", "delete", 300);
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000 });
  await r.sync();
  db.exec("PRAGMA page_size=8192; VACUUM");
  const s = await r.sync();
  assert.is(s.kind, "snapshot");
  assert.is(s.pageSize, 8192);
  db.run("INSERT INTO t(v) VALUES (1)");
  assert.is((await r.sync()).kind, "delta");
  await r.close();
  const out = join(dir, "out.db");
  await sqlite.restoreReplica(target, out);
  assert.is(cli(out, "PRAGMA page_size").trim(), "8192");
  assert.is(integrity(out), "ok");

  const mem: Database = sqlite.open(":memory:");
  fill(mem, 200);
  const memTarget = fileTarget(join(dir, "mem-replica"));
  const m = sqlite.replicate(mem, memTarget, { intervalMs: 3_600_000, compress: false });
  await m.sync();
  mem.run("DELETE FROM t WHERE id < 50");
  assert.is((await m.sync()).kind, "delta");
  await m.close();
  const memOut = join(dir, "mem-out.db");
  await sqlite.restoreReplica(memTarget, memOut);
  assert.is(cli(memOut, "SELECT count(*) FROM t").trim(), "151");
  mem.close();
  db.close();
});

test("a WAL source: syncs compare only the pages of new frames, exact across checkpoints, a WAL restart and VACUUM", async () => {
  const { dir, db, target, shadow } = setup("walhint", "wal", 3000);
  db.exec("PRAGMA wal_autocheckpoint=0");
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, shadowPath: shadow });
  await r.sync();
  const exact = async (what: string) => {
    const fresh = join(dir, `fresh-${what}.db`);
    await sqlite.backup(db, fresh);
    assert.ok(same(normalized(shadow), normalized(fresh)), `${what}: the shadow is the source`);
  };
  const steps: [string, string][] = [
    ["update", "UPDATE t SET v = randomblob(400) WHERE id % 50 = 1"],
    ["insert", "INSERT INTO t(v, s) SELECT randomblob(400), 'x' FROM t LIMIT 30"],
    ["passive checkpoint", "PRAGMA wal_checkpoint(PASSIVE)"],
    ["after checkpoint", "UPDATE t SET v = randomblob(400) WHERE id % 70 = 2"],
    ["restart", "PRAGMA wal_checkpoint(RESTART)"],
    ["after restart", "DELETE FROM t WHERE id % 9 = 0"],
    ["vacuum", "VACUUM"],
    ["after vacuum", "UPDATE t SET s = 'y' WHERE id % 40 = 3"],
  ];
  const compared: number[] = [];
  for (const [what, sql] of steps) {
    db.exec(sql);
    const info = await r.sync();
    compared.push(info.pagesCompared);
    await exact(what);
  }
  await r.close();
  // Updates in an unchanged WAL compare a few pages; the restarted WAL and VACUUM compare all.
  assert.ok(compared[0]! < 200 && compared[1]! < 200, compared.join());
  await sqlite.restoreReplica(target, join(dir, "out.db"));
  assert.is(integrity(join(dir, "out.db")), "ok");
  assert.is(cli(join(dir, "out.db"), ".sha3sum").trim(), cli(join(dir, "src.db"), ".sha3sum").trim());
  db.close();
});

test("a WAL restarted once between syncs: the old WAL's frames left in the file name the changed pages; anything unproven compares all", async () => {
  const { dir, db, target, shadow } = setup("walfollow", "wal", 30000);
  db.exec("PRAGMA wal_autocheckpoint=0");
  const wal = join(dir, "src.db-wal");
  const salt1 = () => readFileSync(wal).readUInt32BE(16);
  const walFrames = () => db.get<{ log: number }>("PRAGMA wal_checkpoint(PASSIVE)")!.log; // every frame checkpointed: the next write restarts the WAL
  // ~30 rows 997 apart, one page each (of ~3,300): ~30 frames per call.
  let k = 0;
  const update = () => db.run("UPDATE t SET v = randomblob(400) WHERE id % 997 = ?", [k++ % 997]);
  // A long WAL first: the shorter ones after it end at its stale frames, not at the end of the file.
  for (let i = 0; i < 40; i++) update();
  walFrames();
  const r = sqlite.replicate(db, target, { intervalMs: 3_600_000, shadowPath: shadow });
  await r.sync();
  const pages = db.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
  /** The sync after `change`: the restarts it made, whether it compared a few pages only, and the shadow is the source. */
  const check = async (what: string, restarts: number, few: boolean, change: () => void) => {
    for (let i = 0; i < 3; i++) update(); // the sync's WAL position ~93 frames in
    assert.ok((await r.sync()).pagesCompared < pages / 4, `${what}: same WAL`);
    const before = salt1();
    change();
    assert.is(salt1() - before, restarts, `${what}: restarts`);
    const info = await r.sync();
    assert.is(info.pagesCompared < pages / 4, few, `${what}: compared ${info.pagesCompared} of ${pages}`);
    const fresh = join(dir, `fresh-${what}.db`);
    await sqlite.backup(db, fresh);
    assert.ok(same(normalized(shadow), normalized(fresh)), `${what}: the shadow is the source`);
  };
  const restart = () => { walFrames(); update(); };
  await check("one restart", 1, true, () => { update(); restart(); });
  await check("one restart, nothing after the sync's frame", 1, true, () => restart());
  await check("two restarts", 2, false, () => { update(); restart(); restart(); });
  await check("the new WAL past the sync's frame", 1, false, () => { update(); restart(); for (let i = 0; i < 4; i++) update(); });
  await check("truncated by a checkpoint", 1, false, () => { update(); db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); update(); });
  // The first commit after the restart cuts the WAL file to the limit: mid-way through the old frames after the sync's.
  await check("cut by journal_size_limit", 1, false, () => {
    update(); update();
    db.exec(`PRAGMA journal_size_limit=${32 + (walFrames() - 20) * (24 + 4096) + 100}`);
    update();
    db.exec("PRAGMA journal_size_limit=-1");
  });
  await r.close();
  await sqlite.restoreReplica(target, join(dir, "out.db"));
  assert.is(cli(join(dir, "out.db"), ".sha3sum").trim(), cli(join(dir, "src.db"), ".sha3sum").trim());
  db.close();
});

test("options are checked at the call", () => {
  const db = sqlite.open(":memory:");
  const t = fileTarget(tmpDir("opts"));
  assert.throws(() => sqlite.replicate(db, t, { intervalMs: 0 }), /intervalMs/);
  assert.throws(() => sqlite.replicate(db, t, { nope: 1 } as never), /unknown option/);
  assert.throws(() => sqlite.replicate(db, {} as never), /ReplicaTarget/);
  assert.throws(() => fileTarget(""), /dir/);
  db.close();
});

test.run();
