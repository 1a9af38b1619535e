// restoreReplica() and verifyReplica(): the state of one sync, rebuilt from the last snapshot at
// or before it and the deltas after, every object's checksums and its link to the one before
// checked; a staging file gets the pages, passes PRAGMA integrity_check, and only then becomes
// the destination (renamed over it, or copied in with backup()). Anything that cannot be proven
// is a SqliteError and no database.
import { SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_IOERR, SQLITE_OPEN_CREATE, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READWRITE, SQLITE_SYNC_NORMAL } from "../../core/constants.js";
import { errorCode, SqliteError } from "../../core/errors.js";
import { checkKeys, DEFAULT_BUSY_TIMEOUT_MS } from "../../core/options.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import type { VfsFile } from "../../vfs/types.js";
import { backup } from "../backup.js";
import { checkSignal, type BackupResult } from "../options.js";
import { Scratch } from "../scratch.js";
import { removeTemp, tempName } from "../stream/temp.js";
import { checkIntegrity, type VerifyResult } from "../verify.js";
import {
  cipherOf, corrupt, dbHash, decodeHeader, decodePages, equalBytes, HASH_BYTES, hashPages, hex, mergesOf, parseName, readRuns, xorInto, ZERO_HASH,
  type Cipher, type ObjectHeader, type ObjectKind, type ParsedMerge, type ParsedName,
} from "./format.js";
import { readLease } from "./lease.js";
import { checkTarget, type ReplicaTarget } from "./target.js";

export interface RestoreReplicaOptions {
  /** A Date: the last sync at or before it; a number: a sync's seq (SyncInfo.seq). Default: the last sync. */
  at?: Date | number;
  /** The key the replica was written with (encryptionKey of replicate()). */
  encryptionKey?: CryptoKey | Uint8Array;
  signal?: AbortSignal;
  /** Where the staging file goes when it cannot go beside dest. Default: os.tmpdir() (browsers: the in-memory VFS). */
  tempDir?: string;
  /** How long a busy destination is waited for. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * The check of the rebuilt database before it becomes dest, besides every object's checksums,
   * the chain, and the database's hash (every page byte-for-byte what the sync uploaded): "hash"
   * (default) only those; "quick" adds PRAGMA quick_check (~0.15 s per 100 MiB here),
   * "integrity" PRAGMA integrity_check (also every index against its table: ~1.2 s).
   * verifyReplica() always runs integrity_check.
   */
  check?: "hash" | "quick" | "integrity";
}
export type VerifyReplicaOptions = Omit<RestoreReplicaOptions, "busyTimeoutMs" | "check">;

export interface RestoreResult extends BackupResult {
  /** The sync restored. */
  seq: number;
  /** When that sync read its source. */
  time: Date;
  pageSize: number;
  /** Objects read (a snapshot's parts and the deltas after it). */
  objects: number;
  bytesDownloaded: number;
}

export interface ReplicaVerifyResult extends VerifyResult {
  seq: number;
  time: Date;
  pageCount: number;
  pageSize: number;
  objects: number;
  /** The database hash the sync recorded, and the restored one's: equal when ok. */
  hash: string;
}

const KEYS = ["at", "encryptionKey", "signal", "tempDir", "busyTimeoutMs", "check"];

/** An object to read: its name, and what its header must say. */
interface Planned {
  name: string;
  seq: number;
  timeMs: number;
  part: number;
  parts: number;
  kind: ObjectKind;
  /** A merge: the sync it applies on. */
  from?: number;
}
interface Plan {
  /** The objects to apply, each sync's (or merge's) parts in order: a snapshot, then deltas and merges. */
  syncs: Planned[][];
  /** The chain hash the lease records for the last sync (hex), when that is the one restored. */
  leaseChain: string;
}

function checkOptions(options: RestoreReplicaOptions, where: string, keys = KEYS): void {
  checkKeys(options, keys, where);
  const { at, tempDir, busyTimeoutMs, signal } = options;
  if (at !== undefined && !(at instanceof Date && !Number.isNaN(at.getTime())) && !(Number.isSafeInteger(at) && (at as number) >= 1)) {
    throw new TypeError(`${where}: at must be a Date or a sync's seq (an integer >= 1)`);
  }
  if (tempDir !== undefined && typeof tempDir !== "string") throw new TypeError(`${where}: tempDir must be a string`);
  if (options.check !== undefined && options.check !== "hash" && options.check !== "quick" && options.check !== "integrity") {
    throw new TypeError(`${where}: check must be "hash", "quick" or "integrity"`);
  }
  if (busyTimeoutMs !== undefined && !(typeof busyTimeoutMs === "number" && busyTimeoutMs >= 0)) throw new TypeError(`${where}: busyTimeoutMs must be a number >= 0`);
  checkSignal(signal);
  signal?.throwIfAborted();
}

/** Which objects rebuild the sync `at` (see RestoreReplicaOptions.at). */
async function plan(target: ReplicaTarget, at: Date | number | undefined, useMerges: boolean): Promise<Plan> {
  const bySeq = new Map<number, ParsedName[]>();
  const names = await target.list();
  for (const n of names.map(parseName)) {
    if (n === null) continue;
    const l = bySeq.get(n.seq) ?? [];
    l.push(n);
    bySeq.set(n.seq, l);
  }
  const complete = [...bySeq.entries()].filter(([, l]) => l.length === l[0]!.parts && new Set(l.map((n) => n.part)).size === l.length
    && l.every((n) => n.parts === l[0]!.parts && n.kind === l[0]!.kind && n.timeMs === l[0]!.timeMs))
    .map(([seq, l]) => ({ seq, parts: l.sort((a, b) => a.part - b.part) }))
    .sort((a, b) => a.seq - b.seq);
  if (complete.length === 0) throw new SqliteError(`${target.url} holds no replica (no complete sync)`, SQLITE_CANTOPEN);
  const last = complete[complete.length - 1]!;
  let chosen: typeof last | undefined;
  let leaseChain = "";
  if (at === undefined) {
    chosen = last;
    const lease = await readLease(target);
    if (lease && lease.seq > last.seq) throw corrupt(`${target.url}: its last sync ${lease.seq} (as its lease records) is missing or incomplete; the last complete one is ${last.seq}`);
    if (lease && lease.seq === last.seq) leaseChain = lease.chain;
  } else if (typeof at === "number") {
    chosen = complete.find((c) => c.seq === at);
    if (!chosen) {
      const why = at > last.seq ? `the last is ${last.seq}` : bySeq.has(at) ? "it is incomplete" : `the replica holds syncs ${complete[0]!.seq} to ${last.seq}`;
      throw new SqliteError(`${target.url} has no sync ${at}: ${why}`, SQLITE_CANTOPEN);
    }
  } else {
    const t = at.getTime();
    chosen = complete.filter((c) => c.parts[0]!.timeMs <= t).pop();
    if (!chosen) throw new SqliteError(`${target.url} has no sync at or before ${at.toISOString()} (the first is of ${new Date(complete[0]!.parts[0]!.timeMs).toISOString()})`, SQLITE_CANTOPEN);
  }
  const snapshot = complete.filter((c) => c.seq <= chosen.seq && c.parts[0]!.kind === "snapshot").pop();
  if (!snapshot) throw corrupt(`${target.url}: no snapshot at or before sync ${chosen.seq}`);
  // From the snapshot to the sync chosen: the merge that reaches furthest from where the database
  // is, else the next sync.
  const mergeFrom = new Map<number, ParsedMerge[]>();
  for (const { parts: l, complete: whole } of useMerges ? mergesOf(names) : []) {
    const first = l[0]!;
    if (!whole || first.seq > chosen.seq) continue;
    const best = mergeFrom.get(first.from);
    if (!best || best[0]!.seq < first.seq) mergeFrom.set(first.from, l);
  }
  const bySeqComplete = new Map(complete.map((c) => [c.seq, c.parts]));
  const syncs: Planned[][] = [snapshot.parts];
  for (let at = snapshot.seq; at < chosen.seq;) {
    const m = mergeFrom.get(at);
    if (m && m[0]!.seq > at + 1) {
      syncs.push(m.map((x) => ({ ...x, kind: "merge" as const })));
      at = m[0]!.seq;
      continue;
    }
    const next = bySeqComplete.get(at + 1);
    if (!next) throw corrupt(`${target.url}: sync ${at + 1} is missing or incomplete (needed to restore sync ${chosen.seq})`);
    syncs.push(next);
    at++;
  }
  return { syncs, leaseChain };
}

/**
 * Rebuilds the sync `at` into `file`: through merges where there are some, and again from the
 * syncs alone if that fails its checks (a merge is a shortcut; the syncs are the replica).
 */
async function rebuild(target: ReplicaTarget, at: Date | number | undefined, cipher: Cipher | null, file: VfsFile, signal: AbortSignal | undefined): Promise<Applied> {
  const p = await plan(target, at, true);
  if (!p.syncs.some((l) => l[0]!.kind === "merge")) return apply(target, p, cipher, file, signal);
  try {
    return await apply(target, p, cipher, file, signal);
  } catch (e) {
    if (!(e instanceof SqliteError && e.code === SQLITE_CORRUPT)) throw e;
    try {
      file.truncate(0);
    } catch (t) {
      throw ioError(t, "cannot write the restored database");
    }
    return apply(target, await plan(target, at, false), cipher, file, signal);
  }
}

interface Applied {
  last: ObjectHeader;
  objects: number;
  bytes: number;
  /** The rebuilt database's hash (dbHash()), checked against the one the sync recorded. */
  hash: Uint8Array;
}

/** Objects decoded ahead of the one applied (their reads, checksums and inflation run meanwhile). */
const AHEAD = 3;

/**
 * Writes the planned syncs' pages into `file`, checking every object's header and the chain, and
 * at the end the database's hash (the chain covers it): the page hashes are taken of what is
 * written, as it is written. So the payloads' own checksums, which would hash every page a second
 * time, are checked only to name the object at fault when the database's hash differs
 * (corrupted gzip or encrypted payloads fail on their own as they are decoded).
 */
async function apply(target: ReplicaTarget, p: Plan, cipher: Cipher | null, file: VfsFile, signal: AbortSignal | undefined): Promise<Applied> {
  const all = p.syncs.flat();
  let prev: ObjectHeader | null = null;
  let prevName = "";
  let bytes = 0;
  let hashes = new Uint8Array(0);
  /** An object read and decoded: its header (checked on its own) and pages (checksum checked with `content`). */
  const load = async (n: Planned, content = false) => {
    const obj = await target.get(n.name);
    if (obj === null) throw corrupt(`${target.url}: object ${n.name} disappeared during the restore`);
    const h = await decodeHeader(obj, n.name);
    if (h.seq !== n.seq || h.timeMs !== n.timeMs || h.part !== n.part || h.parts !== n.parts || h.kind !== n.kind || (n.from !== undefined && h.prevSeq !== n.from)) {
      throw corrupt(`${target.url}: object ${n.name} holds sync ${h.seq} part ${h.part} of ${h.parts} (${h.kind}): renamed or substituted`);
    }
    return { h, size: obj.length, pages: await decodePages(obj, h, n.name, cipher, content) };
  };
  const queue: Promise<Awaited<ReturnType<typeof load>>>[] = [];
  const more = (i: number) => {
    if (i >= all.length) return;
    const q = load(all[i]!);
    q.catch(() => {}); // awaited in turn, or dropped after an earlier failure
    queue.push(q);
  };
  for (let i = 0; i < Math.min(AHEAD, all.length); i++) more(i);
  for (let i = 0; i < all.length; i++) {
    signal?.throwIfAborted();
    const n = all[i]!;
    const { h, size, pages } = await queue.shift()!;
    more(i + AHEAD);
    bytes += size;
    if (prev === null) {
      if (h.kind !== "snapshot" || h.part !== 0) throw corrupt(`${target.url}: the restore must begin with a snapshot, not ${n.name}`);
    } else {
      if (!equalBytes(h.prevChain, prev.chain)) throw corrupt(`${target.url}: the chain is broken at ${n.name}: it does not follow ${prevName} (an object missing, reordered or replaced)`);
      if (h.part === 0 && h.prevSeq !== prev.seq) throw corrupt(`${target.url}: ${n.name} follows sync ${h.prevSeq}, but the one before it here is ${prev.seq} (an object missing)`);
      if (h.pageSize !== prev.pageSize && h.kind !== "snapshot") throw corrupt(`${target.url}: ${n.name} has page size ${h.pageSize} after ${prev.pageSize}`);
    }
    try {
      if (h.xor) {
        // The pages as the sync before left them (zeros past its end, where the file ends), all
        // read before any is written: a write between two reads would drop the read-ahead.
        const base = new Uint8Array(pages.length);
        readRuns(file, h.runs, h.pageSize, base);
        xorInto(pages, base);
      }
      for (let r = 0, at = 0; r < h.runs.length; r += 2) {
        const len = h.runs[r + 1]! * h.pageSize;
        const run = pages.subarray(at, at + len);
        file.write(run, (h.runs[r]! - 1) * h.pageSize);
        const end = (h.runs[r]! + h.runs[r + 1]! - 1) * HASH_BYTES;
        if (hashes.length < end) {
          const grown = new Uint8Array(Math.max(end, h.pageCount * HASH_BYTES));
          grown.set(hashes);
          hashes = grown;
        }
        await hashPages(hashes, h.runs[r]!, h.runs[r + 1]!, run, h.pageSize);
        at += len;
      }
      if (h.part === h.parts - 1) file.truncate(h.pageCount * h.pageSize);
    } catch (e) {
      throw ioError(e, "cannot write the restored database");
    }
    // The sync after a merge follows the last sync the merge stands for.
    prev = h.kind === "merge" && h.part === h.parts - 1 ? { ...h, chain: h.toChain! } : h;
    prevName = n.name;
  }
  const last = prev!;
  if (p.leaseChain !== "" && hex(last.chain) !== p.leaseChain) throw corrupt(`${target.url}: the last sync ${last.seq} is not the one its lease records (replaced)`);
  const hash = await dbHash(hashes, last.pageCount);
  if (hashes.length < last.pageCount * HASH_BYTES || equalBytes(last.dbHash, ZERO_HASH) || !equalBytes(hash, last.dbHash)) {
    for (const n of all) await load(n, true); // throws naming the object whose pages do not match their checksum
    throw corrupt(`${target.url}: the database rebuilt for sync ${last.seq} does not have the hash that sync recorded`);
  }
  return { last, objects: all.length, bytes, hash };
}

function ioError(e: unknown, what: string): SqliteError {
  if (e instanceof SqliteError) return e;
  return new SqliteError(`${what}: ${(e as Error)?.message ?? e}`, errorCode(e, SQLITE_IOERR));
}

function openRaw(rt: Runtime, path: string): VfsFile {
  try {
    return rt.vfs().open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB).file;
  } catch (e) {
    throw ioError(e, `cannot create ${path}`);
  }
}

function integrityOrThrow(db: Database, where: string, check: "quick" | "integrity"): void {
  const problems = checkIntegrity(db, check === "quick" ? "quick_check" : "integrity_check");
  if (problems.length > 0) throw corrupt(`${where}: the restored database fails PRAGMA ${check}_check: ${problems.slice(0, 5).join("; ")}`);
}

export async function restoreReplica(rt: Runtime, target: ReplicaTarget, dest: Database | string, options: RestoreReplicaOptions = {}): Promise<RestoreResult> {
  const where = "restoreReplica";
  const start = performance.now();
  checkTarget(target, where);
  checkOptions(options, where);
  if (typeof dest !== "string" && !(dest instanceof Database)) throw new TypeError(`${where}: dest must be a Database or a filename`);
  const { signal, tempDir, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS } = options;
  const cipher = await cipherOf(options.encryptionKey, where);

  // Beside a destination file (renamed over it when that is safe); else a temporary file.
  const scratch = Scratch.beside(rt, dest);
  let path: string | null = null;
  let file: VfsFile | null = null;
  let staged: Database | null = null;
  let renamed = false;
  try {
    path = scratch?.path ?? tempName(rt, "restore", tempDir);
    file = openRaw(rt, path);
    const applied = await rebuild(target, options.at, cipher, file, signal);
    try {
      await rt.vfs().writeBack?.();
      file.sync(SQLITE_SYNC_NORMAL);
      file.close();
    } catch (e) {
      throw ioError(e, `cannot write ${path}`);
    } finally {
      file = null;
    }
    staged = new Database(rt, path);
    if (scratch !== null) scratch.db = staged; // closed and removed by scratch.discard()
    if (options.check !== undefined && options.check !== "hash") integrityOrThrow(staged, where, options.check);
    signal?.throwIfAborted();
    const h = applied.last;
    const result: RestoreResult = {
      pageCount: h.pageCount, steps: 0, restarts: 0, elapsedMs: 0, pagesWritten: h.pageCount, pagesCompared: 0, incremental: false,
      seq: h.seq, time: new Date(h.timeMs), pageSize: h.pageSize, objects: applied.objects, bytesDownloaded: applied.bytes,
    };
    if (scratch !== null && (renamed = await scratch.renameOver(dest, "main"))) {
      // in place
    } else {
      const r = await backup(rt, staged, dest, { signal, busyTimeoutMs, verifySource: false });
      Object.assign(result, { steps: r.steps, restarts: r.restarts, pagesWritten: r.pagesWritten, pagesCompared: r.pagesCompared, incremental: r.incremental });
    }
    result.elapsedMs = performance.now() - start;
    return result;
  } finally {
    try {
      file?.close();
    } catch {
      // thrown away below
    }
    staged?.close();
    scratch?.discard();
    if (path !== null && !renamed) removeTemp(rt, path);
  }
}

export async function verifyReplica(rt: Runtime, target: ReplicaTarget, options: VerifyReplicaOptions = {}): Promise<ReplicaVerifyResult> {
  const where = "verifyReplica";
  checkTarget(target, where);
  checkOptions(options, where, KEYS.filter((k) => k !== "busyTimeoutMs" && k !== "check"));
  const { signal, tempDir } = options;
  const cipher = await cipherOf(options.encryptionKey, where);
  const path = tempName(rt, "verify", tempDir);
  let file: VfsFile | null = null;
  let db: Database | null = null;
  try {
    file = openRaw(rt, path);
    const applied = await rebuild(target, options.at, cipher, file, signal);
    const h = applied.last;
    file.close();
    file = null;
    db = new Database(rt, path);
    const integrity = checkIntegrity(db);
    const tables = integrity.length > 0 ? [] : db.all<{ name: string }>(
      "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') AND name <> 'sqlite_schema' ORDER BY name")
      .map(({ name }) => ({ name, rows: Number(db!.get<{ n: number }>(`SELECT count(*) AS n FROM main."${name.replaceAll('"', '""')}"`)!.n), same: true }));
    return {
      ok: integrity.length === 0, integrity, differences: [], tables,
      seq: h.seq, time: new Date(h.timeMs), pageCount: h.pageCount, pageSize: h.pageSize, objects: applied.objects, hash: hex(applied.hash),
    };
  } finally {
    try {
      file?.close();
    } catch {
      // thrown away below
    }
    db?.close();
    removeTemp(rt, path);
  }
}
