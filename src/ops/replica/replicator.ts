// replicate(): continuous incremental backups of a database into a ReplicaTarget. A local shadow
// copy holds the state of the last sync; each sync brings it up to the source with backup()'s
// incremental compare (a consistent snapshot of a live source, with all of backup()'s guards),
// which names the pages it wrote (incremental.ts beforeCommit), and uploads those pages as one
// delta. A new or unprovable shadow, another page size, or snapshotIntervalMs uploads a full
// snapshot instead. docs/replicas.md describes the objects and the rules.
// replicate() (replicate.ts) checks the options and imports this module when it is called.
import type * as NodeFs from "node:fs";
import {
  SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_ERROR, SQLITE_MISUSE, SQLITE_OPEN_CREATE, SQLITE_OPEN_MAIN_JOURNAL, SQLITE_OPEN_READWRITE,
} from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../../core/options.js";
import { SBW_INFO_PAGE_SIZE, SBW_INFO_PAGES, SBW_WAL_WORDS } from "../../core/pagediff-constants.js";
import { Database } from "../../handles/database.js";
import { builtin } from "../../runtime/builtin.js";
import type { Runtime } from "../../runtime/runtime.js";
import { MemoryVfs } from "../../vfs/memory.js";
import type { VfsFile } from "../../vfs/types.js";
import { backup } from "../backup.js";
import { replicaHooks } from "../incremental.js";
import { removeTemp, tempName } from "../stream/temp.js";
import {
  cipherOf, dbHash, decodeHeader, encodeObject, equalBytes, HASH_BYTES, hashPages, hex, mergesOf, objectName, pageHash, PART_BYTES, parseMergeName, parseName,
  readRuns, runsOf, sha256, xorInto, ZERO_HASH, type Cipher, type Kind, type NewObject, type ParsedMerge, type ParsedName,
} from "./format.js";
import { holderGone, leaseHeld, processIdentity, readLease, writeLease, type Lease } from "./lease.js";
import type { ReplicateOptions, Replicator, SyncInfo } from "./replicate-options.js";
import type { ReplicaTarget } from "./target.js";

const WHERE = "replicate";
const DAY = 24 * 3600_000;
/**
 * How long the syncs that one merge stands for span, per level (mergeLevelsMs): a restore applies
 * one merge per hour and per minute instead of every sync (Litestream 0.5 compacts at 30 s, 5 min
 * and 1 h).
 */
const MERGE_LEVELS_MS = [60_000, 3600_000];
/** Retention runs at most this often. */
const RETENTION_EVERY_MS = 60_000;

/** The state of the last complete sync (or the one being uploaded). */
interface Synced {
  seq: number;
  chain: Uint8Array;
  dbHash: Uint8Array;
  timeMs: number;
  pageSize: number;
  pageCount: number;
}
interface Pending {
  /** Pages the compare that made it compared. */
  compared?: number;
  seq: number;
  kind: Kind;
  timeMs: number;
  prevSeq: number;
  prevChain: Uint8Array;
  pageSize: number;
  pageCount: number;
  /** Ascending page numbers to upload. */
  pages: Uint32Array;
  /** A delta's pages as the sync before had them (pageSize each, in the order of `pages`): the upload XORs with them. */
  old?: Uint8Array;
  dbHash: Uint8Array;
}
/** What a sync uploaded. */
type Stats = { bytes: number; objects: number };

/**
 * A merge being gathered: the pages that the syncs after `from` changed, each with its bytes as
 * of `from` (what the first of those syncs found, kept in a local file), so that at the end of
 * its span one object holds them XORed with the shadow's bytes then.
 */
interface Level {
  ms: number;
  from: Synced | null;
  syncs: number;
  path: string;
  file: VfsFile | null;
  /** Page number → its slot in the file. */
  slots: Map<number, number>;
}
/** What the shadow's state file says (JSON, hashes as hex). */
interface StateFile {
  version: 1;
  target: string;
  synced: { seq: number; chain: string; dbHash: string; timeMs: number } | null;
  /**
   * Written just before a sync's commit into the shadow: the pages it writes, and the hashes the
   * synced state had for them (and for pages past the new end). A replicator killed after that
   * commit, before the upload finished, left a shadow that differs from `synced` in these pages
   * only, which the next one proves (the old hashes put back give synced's database hash) and
   * uploads as the delta.
   */
  intent?: Intent;
}
interface Intent {
  timeMs: number;
  /** The pages written, and the page count after. */
  runs: number[];
  pageCount: number;
  old: { pageCount: number; runs: number[]; hashes: string };
}

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

export class ReplicatorImpl implements Replicator {
  readonly #rt: Runtime;
  readonly #target: ReplicaTarget;
  readonly #o: ReplicateOptions;
  readonly #interval: number;
  readonly #leaseTimeout: number;
  readonly #id = hex(crypto.getRandomValues(new Uint8Array(8)));
  #source: Database | null = null;
  #ownSource: boolean;
  #sourceArg: Database | string;
  #shadow: Database | null = null;
  #shadowPath = "";
  #tempShadow = false;
  #stateFile: string | null = null;
  #cipher: Cipher | null = null;
  /** SHA-256 of every page of the shadow as of the last sync (or pending), page 1 normalized. */
  #hashes = new Uint8Array(0);
  #synced: Synced | null = null;
  #pending: Pending | null = null;
  #needSnapshot = true;
  #lastSnapshotMs = 0;
  #lastRetentionMs = 0;
  #lastLeaseMs = 0;
  /** The target's objects by sequence number (names parsed), as listed at start and uploaded since. */
  #objects = new Map<number, ParsedName[]>();
  /** The target's merges, as listed at start and uploaded since. */
  #merges: ParsedMerge[] = [];
  #levels: Level[] = [];
  #ready: Promise<void>;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closing: Promise<void> | null = null;
  #stopped: SqliteError | null = null;
  #holder: string;
  #started = false;
  #shadowPageSize = 0;
  /** The source's WAL position (SBW_WAL_WORDS words, wasm/pagediff.c) that the shadow holds, from the last compare. */
  #walHint: Uint32Array | null = null;
  #lastCompared = 0;
  #shadowPageCount = 0;
  #leased = false;

  /** `sourceName`: the source as the lease names it. */
  constructor(rt: Runtime, source: Database | string, sourceName: string, target: ReplicaTarget, o: ReplicateOptions) {
    this.#rt = rt;
    this.#target = target;
    this.#o = o;
    this.#interval = o.intervalMs ?? 1000;
    this.#leaseTimeout = o.leaseTimeoutMs ?? Math.max(10_000, 10 * this.#interval);
    this.#sourceArg = source;
    this.#ownSource = typeof source === "string";
    const proc = (globalThis as { process?: { pid?: number } }).process;
    const host = (globalThis as { location?: { host?: string } }).location?.host;
    this.#holder = `${proc?.pid !== undefined ? `process ${proc.pid}` : host ? `a page of ${host}` : "a replicator"}, id ${this.#id}, source ${sourceName}`;
    this.#ready = this.#start();
    // A replicator that cannot start (its lease held by another, the target unreachable) stops:
    // onError hears it once, and every sync() rejects with it.
    this.#ready.catch((e) => {
      if (this.#closing) return;
      this.#stopped = this.#asError(e);
      this.#report(e);
      void this.#shutdown(false).catch(() => {}); // what it opened (and its lease, if it got it) goes
    });
    o.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#schedule(0);
    // Aborted while this module loaded (replicate() checked the signal at the call).
    if (o.signal?.aborted) this.#onAbort();
  }

  #onAbort = () => {
    void this.#shutdown(false).catch(() => {});
  };

  /** The next timer sync in `ms` (replacing one already due). */
  #schedule(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#closing || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const started = performance.now();
      this.#enqueue(() => this.#syncOnce()).then(
        (info) => {
          this.#schedule(Math.max(0, this.#interval - (performance.now() - started))); // intervalMs apart, start to start
          if (info.kind !== "none") this.#o.onSync?.(info);
        },
        (e) => {
          if (e !== this.#stopped) this.#report(e);
          this.#schedule(this.#interval);
        },
      );
    }, ms);
  }

  #asError(e: unknown): SqliteError {
    return e instanceof SqliteError ? e : new SqliteError(`${WHERE}: ${(e as Error)?.message ?? e}`, SQLITE_ERROR);
  }

  #report(e: unknown): void {
    if (this.#o.signal?.aborted && e === this.#o.signal.reason) return;
    const err = this.#asError(e);
    try {
      this.#o.onError?.(err);
    } catch {
      // the application's handler failed: nothing to do here
    }
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn);
    this.#queue = p.catch(() => {});
    return p;
  }

  sync(): Promise<SyncInfo> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (this.#closing) return Promise.reject(new SqliteError(`${WHERE}: the replicator is closed`, SQLITE_MISUSE));
    // The timer's next sync comes intervalMs after this one.
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const p = this.#enqueue(() => this.#syncOnce());
    p.catch(() => {}).finally(() => {
      if (this.#timer === null) this.#schedule(this.#interval);
    });
    return p;
  }

  close(): Promise<void> {
    return this.#shutdown(true);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(lastSync: boolean): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#o.signal?.removeEventListener("abort", this.#onAbort);
    this.#closing = (async () => {
      let error: unknown = null;
      try {
        await this.#queue;
        await this.#ready.catch(() => {});
        if (lastSync && this.#started && !this.#stopped && this.#source?.isOpen) {
          try {
            await this.#syncOnce();
          } catch (e) {
            error = e;
          }
        }
        // The lease is released for the next replicator, keeping the last sync it records.
        if (this.#leased) {
          try {
            const l = await readLease(this.#target);
            if (l?.owner === this.#id) await writeLease(this.#target, { ...l, owner: null, heartbeat: Date.now() });
          } catch (e) {
            error ??= e;
          }
        }
      } finally {
        this.#release();
      }
      if (error !== null) throw error;
    })();
    return this.#closing;
  }

  /** Closes what this replicator opened; the shadow stays for the next one unless it is temporary. */
  #release(): void {
    try {
      this.#shadow?.close();
    } catch {
      // closing a connection with nothing open does not fail
    }
    this.#shadow = null;
    for (const l of this.#levels) {
      try {
        l.file?.close();
      } catch {
        // a file it only wrote: nothing to lose
      }
      removeTemp(this.#rt, l.path);
      if (this.#rt.vfs() instanceof MemoryVfs) (this.#rt.vfs() as MemoryVfs).remove(l.path);
    }
    this.#levels = [];
    if (this.#tempShadow) {
      removeTemp(this.#rt, this.#shadowPath);
      if (this.#rt.vfs() instanceof MemoryVfs) (this.#rt.vfs() as MemoryVfs).remove(this.#shadowPath);
    }
    if (this.#ownSource) this.#source?.close();
    this.#source = null;
  }

  // ---- start: the lease, the target's last sync, the shadow ----

  async #start(): Promise<void> {
    const rt = this.#rt;
    this.#cipher = await cipherOf(this.#o.encryptionKey, WHERE);
    // Read-only: a connection that could write would roll back what it takes for a hot journal,
    // which, without real file locks, may be another process's live one.
    this.#source = typeof this.#sourceArg === "string" ? new Database(rt, this.#sourceArg, { readonly: true }) : this.#sourceArg;
    await this.#acquireLease();
    // The target's complete syncs; incomplete ones after the last (an upload cut short) go.
    const listed = await this.#target.list();
    const names = listed.map(parseName).filter((n): n is ParsedName => n !== null);
    for (const n of names) {
      const list = this.#objects.get(n.seq) ?? [];
      list.push(n);
      this.#objects.set(n.seq, list);
    }
    const complete = (seq: number) => {
      const l = this.#objects.get(seq)!;
      return l.length === l[0]!.parts && new Set(l.map((x) => x.part)).size === l[0]!.parts;
    };
    const seqs = [...this.#objects.keys()].sort((a, b) => a - b);
    const last = seqs.filter(complete).pop() ?? 0;
    for (const seq of seqs) {
      if (seq > last) {
        for (const n of this.#objects.get(seq)!) await this.#target.delete(n.name);
        this.#objects.delete(seq);
      }
    }
    // Merges: those of a sync not complete, or cut short (the lease keeps any other writer out), go.
    for (const { parts, complete: whole } of mergesOf(listed)) {
      if (!whole || parts[0]!.seq > last) {
        for (const m of parts) await this.#target.delete(m.name);
      } else this.#merges.push(...parts);
    }
    const snapshots = [...this.#objects.values()].filter((l) => l[0]!.kind === "snapshot" && complete(l[0]!.seq));
    this.#lastSnapshotMs = Math.max(0, ...snapshots.map((l) => l[0]!.timeMs));
    let head: Synced | null = null;
    if (last > 0) {
      const lastPart = this.#objects.get(last)!.reduce((a, b) => (b.part > a.part ? b : a));
      try {
        const bytes = await this.#target.get(lastPart.name);
        const h = bytes && await decodeHeader(bytes, lastPart.name);
        if (h && h.seq === last) head = { seq: last, chain: h.chain, dbHash: h.dbHash, timeMs: h.timeMs, pageSize: h.pageSize, pageCount: h.pageCount };
      } catch {
        // unreadable: the next sync is a snapshot that does not continue it
      }
    }
    const lease = await readLease(this.#target);
    const nextSeq = Math.max(last, lease?.seq ?? 0) + 1;

    // The shadow.
    const sourceFile = rt.filename(this.#source.state.ptr, "main");
    const tag = hex(await sha256(new TextEncoder().encode(this.#target.url))).slice(0, 8);
    const fs = builtin<typeof NodeFs>("node:fs");
    if (this.#o.shadowPath !== undefined) this.#shadowPath = rt.vfs().fullPathname(this.#o.shadowPath);
    else if (sourceFile !== "" && rt.vfsOf(this.#source.state.ptr, "main") === rt.vfs() && !(rt.vfs() instanceof MemoryVfs)) {
      this.#shadowPath = `${sourceFile}-replica-${tag}`;
    } else {
      this.#shadowPath = tempName(rt, "replica");
      this.#tempShadow = true;
    }
    if (fs && !this.#tempShadow && !(rt.vfs() instanceof MemoryVfs)) this.#stateFile = `${this.#shadowPath}.json`;
    // What it holds is proven by its hash before it is used.
    this.#shadow = this.#openShadow();

    // Resume: the shadow holds the target's last sync (or the one whose upload was cut short).
    const state = this.#readState();
    if (head !== null) {
      const shadowHash = await this.#hashShadow();
      // It holds the target's last sync (whatever the state file says: a kill may have come
      // after the upload, before the state was written).
      if (shadowHash !== null && !equalBytes(head.dbHash, ZERO_HASH) && equalBytes(shadowHash, head.dbHash)) {
        this.#synced = head;
        this.#needSnapshot = false;
      } else if (state !== null && state.target === this.#target.url && state.intent && state.synced && state.synced.seq === head.seq && state.synced.chain === hex(head.chain)
        && shadowHash !== null && this.#shadowPageSize === head.pageSize && await this.#intentHolds(state.intent, head)) {
        // Killed after the commit into the shadow, before the sync was uploaded.
        const pages = pagesOfRuns(state.intent.runs).filter((n) => n <= this.#shadowPageCount);
        this.#synced = head;
        this.#pending = {
          seq: nextSeq, kind: "delta", timeMs: state.intent.timeMs, prevSeq: head.seq, prevChain: head.chain, pageSize: head.pageSize,
          pageCount: this.#shadowPageCount, pages: pages.length > 0 ? pages : Uint32Array.of(1), dbHash: shadowHash,
        };
        this.#needSnapshot = false;
      }
    }
    this.#levels = (this.#o.mergeLevelsMs ?? MERGE_LEVELS_MS).map((ms, i) => ({ ms, from: null, syncs: 0, path: `${this.#shadowPath}-merge${i + 1}`, file: null, slots: new Map() }));
    if (this.#synced === null) {
      // A new chain: the next sync is a snapshot (into a new shadow: the fresh copy, no compare);
      // it links to the target's last sync when that one is readable.
      this.#shadow.close();
      removeTemp(rt, this.#shadowPath);
      this.#shadow = this.#openShadow();
      this.#synced = head ?? { seq: nextSeq - 1, chain: ZERO_HASH, dbHash: ZERO_HASH, timeMs: 0, pageSize: 0, pageCount: 0 };
      this.#needSnapshot = true;
    }
    this.#started = true;
  }

  /** Whether the shadow is the synced state but for the intent's pages: their old hashes put back give its hash. */
  async #intentHolds(intent: Intent, head: Synced): Promise<boolean> {
    const old = new Uint8Array(intent.old.pageCount * HASH_BYTES);
    old.set(this.#hashes.subarray(0, Math.min(old.length, this.#shadowPageCount * HASH_BYTES)));
    const hashes = unhex(intent.old.hashes);
    let k = 0;
    for (const n of pagesOfRuns(intent.old.runs)) {
      if (n > intent.old.pageCount || (k + 1) * HASH_BYTES > hashes.length) return false;
      old.set(hashes.subarray(k * HASH_BYTES, (k + 1) * HASH_BYTES), (n - 1) * HASH_BYTES);
      k++;
    }
    // Pages past the old end are new: the intent must have written every one of them.
    const written = new Set(pagesOfRuns(intent.runs));
    for (let n = intent.old.pageCount + 1; n <= intent.pageCount; n++) if (!written.has(n)) return false;
    return intent.old.pageCount === head.pageCount && intent.pageCount === this.#shadowPageCount
      && equalBytes(await dbHash(old, intent.old.pageCount), head.dbHash);
  }

  #openShadow(): Database {
    const db = new Database(this.#rt, this.#shadowPath);
    try {
      // Not synced: after a crash its hash (and the intent's proof) decides what it holds.
      db.exec("PRAGMA synchronous=OFF");
      this.#checkpointShadow(db);
    } catch {
      // not a database (a torn shadow): its hash does not match, and it is replaced
    }
    return db;
  }

  /** A shadow in WAL mode (a WAL source's copy is one) has every page in its file, where they are read. */
  #checkpointShadow(db: Database): void {
    if (db.get<{ journal_mode: string }>("PRAGMA journal_mode")?.journal_mode !== "wal") return;
    const r = db.get<{ busy: number }>("PRAGMA wal_checkpoint(TRUNCATE)");
    if (r?.busy !== 0) throw new SqliteError(`${WHERE}: the shadow copy ${this.#shadowPath} is in use by another connection`, SQLITE_BUSY);
  }

  async #acquireLease(): Promise<void> {
    const now = Date.now();
    const l = await readLease(this.#target);
    // Held by another, renewed lately, and (on this host) by a process that still runs.
    if (l && l.owner !== null && l.owner !== this.#id && now - l.heartbeat < this.#leaseTimeout && !holderGone(l)) throw leaseHeld(this.#target, l, now);
    const mine: Lease = { owner: this.#id, holder: this.#holder, heartbeat: now, seq: l?.seq ?? 0, chain: l?.chain ?? "", ...processIdentity() };
    await writeLease(this.#target, mine);
    // Two that started at once: the last write wins, the other sees it here.
    const again = await readLease(this.#target);
    if (again?.owner !== this.#id) throw leaseHeld(this.#target, again ?? mine, Date.now());
    this.#lastLeaseMs = now;
    this.#leased = true;
  }

  /** Fences an upload: the lease must still be ours. A lost lease stops this replicator. */
  async #checkLease(): Promise<void> {
    const l = await readLease(this.#target);
    if (l?.owner !== this.#id) {
      this.#stopped = l ? leaseHeld(this.#target, l, Date.now()) : new SqliteError(`${WHERE}: the lease in ${this.#target.url} is gone: stopped`, SQLITE_ERROR);
      if (this.#timer) clearTimeout(this.#timer);
      throw this.#stopped;
    }
  }

  #readState(): StateFile | null {
    const fs = builtin<typeof NodeFs>("node:fs");
    if (this.#stateFile === null || !fs) return null;
    try {
      const s = JSON.parse(fs.readFileSync(this.#stateFile, "utf8")) as StateFile;
      return s?.version === 1 ? s : null;
    } catch {
      return null;
    }
  }

  /**
   * Written whole (temporary name, rename), not synced: whatever version a crash leaves, the
   * shadow's hash and the target's last sync decide whether it applies. A failure to write only
   * costs a snapshot at the next start.
   */
  #writeState(intent?: Intent): void {
    const fs = builtin<typeof NodeFs>("node:fs");
    if (this.#stateFile === null || !fs) return;
    const s = this.#synced;
    const state: StateFile = {
      version: 1, target: this.#target.url,
      synced: s && !this.#needSnapshot ? { seq: s.seq, chain: hex(s.chain), dbHash: hex(s.dbHash), timeMs: s.timeMs } : null,
      intent,
    };
    const temp = `${this.#stateFile}.tmp`;
    try {
      const fd = fs.openSync(temp, "w");
      try {
        fs.writeSync(fd, JSON.stringify(state));
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temp, this.#stateFile);
    } catch {
      try {
        fs.rmSync(temp, { force: true });
        fs.rmSync(this.#stateFile, { force: true });
      } catch {
        // nothing more to do: the next start hashes the shadow and finds no match
      }
    }
  }

  // ---- a sync ----

  async #syncOnce(): Promise<SyncInfo> {
    const t0 = performance.now();
    await this.#ready;
    if (this.#stopped) throw this.#stopped;
    const source = this.#source!;
    if (!source.isOpen) throw new SqliteError(`${WHERE}: the source database is closed`, SQLITE_MISUSE);
    const stats: Stats = { bytes: 0, objects: 0 };
    if (this.#pending === null) {
      const p = await this.#takeState();
      if (p === null) {
        await this.#heartbeat();
        const s = this.#synced!;
        return { seq: s.seq, time: new Date(s.timeMs), kind: "none", pageCount: s.pageCount, pageSize: s.pageSize, pagesUploaded: 0, pagesCompared: this.#lastCompared, bytesUploaded: stats.bytes, objects: 0, elapsedMs: performance.now() - t0 };
      }
      this.#pending = p;
    }
    const p = this.#pending;
    await this.#checkLease();
    await this.#upload(p, stats);
    const before = this.#synced!;
    this.#synced = { seq: p.seq, chain: this.#lastChain!, dbHash: p.dbHash, timeMs: p.timeMs, pageSize: p.pageSize, pageCount: p.pageCount };
    this.#pending = null;
    this.#needSnapshot = false;
    if (p.kind === "snapshot") this.#lastSnapshotMs = p.timeMs;
    await this.#gather(p, before, stats);
    this.#writeState();
    const lease: Lease = { owner: this.#id, holder: this.#holder, heartbeat: Date.now(), seq: p.seq, chain: hex(this.#lastChain!), ...processIdentity() };
    await writeLease(this.#target, lease);
    this.#lastLeaseMs = lease.heartbeat;
    await this.#retain();
    return {
      seq: p.seq, time: new Date(p.timeMs), kind: p.kind, pageCount: p.pageCount, pageSize: p.pageSize, pagesUploaded: p.pages.length, pagesCompared: p.compared ?? 0,
      bytesUploaded: stats.bytes, objects: stats.objects, elapsedMs: performance.now() - t0,
    };
  }

  #lastChain: Uint8Array | null = null;

  /** Renews the lease while nothing is uploaded. */
  async #heartbeat(): Promise<void> {
    if (Date.now() - this.#lastLeaseMs < this.#leaseTimeout / 3) return;
    await this.#checkLease();
    const s = this.#synced!;
    const lease: Lease = { owner: this.#id, holder: this.#holder, heartbeat: Date.now(), seq: s.seq, chain: equalBytes(s.chain, ZERO_HASH) ? "" : hex(s.chain), ...processIdentity() };
    await writeLease(this.#target, lease);
    this.#lastLeaseMs = lease.heartbeat;
  }

  /** Brings the shadow up to the source; the sync to upload, or null when nothing changed. */
  async #takeState(): Promise<Pending | null> {
    const rt = this.#rt;
    const shadow = this.#shadow!;
    const timeMs = Date.now();
    let written: Uint32Array | null = null;
    let writtenOld: Uint8Array | null = null;
    let snapshot: Uint32Array | null = null;
    const beforeCommit = (p: number) => {
      snapshot = Uint32Array.from({ length: SBW_WAL_WORDS }, (_, i) => rt.capi.sbw_pagediff_snapshot(p, i));
      const list = rt.heap.scoped((s) => {
        const pn = s.out();
        const ptr = rt.capi.sbw_pagediff_pgnos(p, pn);
        const n = rt.heap.i32(pn);
        return n > 0 ? new Uint32Array(rt.heap.u8.buffer, ptr, n).slice() : new Uint32Array(0);
      });
      written = list;
      const old = rt.capi.sbw_pagediff_old(p);
      if (old !== 0 && list.length > 0) writtenOld = rt.heap.u8.slice(old, old + list.length * (rt.capi.sbw_pagediff_info(p, SBW_INFO_PAGE_SIZE) >>> 0));
      if (!this.#needSnapshot) this.#writeState(this.#intentOf(list, rt.capi.sbw_pagediff_info(p, SBW_INFO_PAGES) >>> 0, timeMs));
    };
    // The shadow holds the source as of the last compare's WAL snapshot: this one compares only
    // the pages with later frames when it can (wasm/pagediff.c build_candidates()).
    const hint = this.#walHint;
    const needSnapshot = this.#needSnapshot;
    const opened = (p: number) => {
      if (hint !== null) rt.heap.scoped((s) => rt.capi.sbw_pagediff_hint(p, s.bytes(new Uint8Array(hint.buffer, hint.byteOffset, hint.byteLength))));
      // A delta ships each page XORed with its old bytes (see format.ts).
      rt.capi.sbw_pagediff_keep_old(p, needSnapshot ? 0 : 1);
    };
    replicaHooks.set(shadow, { opened, beforeCommit });
    let result;
    const options = { incremental: "auto" as const, busyTimeoutMs: this.#o.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, signal: this.#o.signal };
    try {
      result = await backup(rt, this.#source!, shadow, options).catch(async (e: unknown) => {
        // Another process removed the WAL this connection reads (source-guard.ts): a source opened
        // here is opened again, which sees every commit; the user's own connection is theirs to reopen.
        if (!(this.#ownSource && e instanceof SqliteError && e.extendedCode === SQLITE_BUSY_SNAPSHOT)) throw e;
        this.#source!.close();
        this.#source = new Database(rt, this.#sourceArg as string, { readonly: true });
        return backup(rt, this.#source, shadow, options);
      });
    } finally {
      replicaHooks.delete(shadow);
    }
    this.#lastCompared = result.pagesCompared;
    const snap = snapshot as Uint32Array | null;
    this.#walHint = snap !== null && snap.some((w) => w !== 0) ? snap : null;
    this.#checkpointShadow(shadow);
    const pageSize = shadow.get<{ page_size: number }>("PRAGMA page_size")!.page_size;
    const pageCount = shadow.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
    const s = this.#synced!;
    const snapshotDue = timeMs - this.#lastSnapshotMs >= Math.min(this.#o.snapshotIntervalMs ?? DAY, this.#o.retentionMs ?? DAY);
    const list = written as Uint32Array | null;
    const delta = !this.#needSnapshot && result.incremental && list !== null && pageSize === s.pageSize;
    let pages: Uint32Array;
    let old: Uint8Array | undefined;
    if (delta) {
      pages = Uint32Array.from(new Set(list)).sort();
      if (pages.every((n) => n > pageCount)) pages = Uint32Array.of(1);
      pages = pages.filter((n) => n <= pageCount);
      old = await this.#oldOf(pages, list, writtenOld as Uint8Array | null, pageSize, s.pageCount);
    } else {
      pages = new Uint32Array(pageCount);
      for (let i = 0; i < pageCount; i++) pages[i] = i + 1;
    }
    // The page hashes of the new state: of the pages written (or all).
    if (this.#hashes.length < pageCount * HASH_BYTES) {
      const grown = new Uint8Array(Math.max(pageCount * HASH_BYTES, this.#hashes.length * 2));
      grown.set(this.#hashes);
      this.#hashes = grown;
    }
    const before = this.#hashes.slice(0, HASH_BYTES);
    await this.#forPages(pages.filter((n) => n <= pageCount), pageSize, (first, count, bytes) => hashPages(this.#hashes, first, count, bytes, pageSize));
    const hash = await dbHash(this.#hashes, pageCount);
    // Only page 1 written, and equal but for what every copy sets anew: the source did not change.
    if (delta && pages.length === 1 && pages[0] === 1 && pageCount === s.pageCount && equalBytes(before, this.#hashes.subarray(0, HASH_BYTES))) {
      return null;
    }
    const kind: Kind = delta && !snapshotDue ? "delta" : "snapshot";
    if (kind === "snapshot" && delta) {
      pages = new Uint32Array(pageCount);
      for (let i = 0; i < pageCount; i++) pages[i] = i + 1;
      old = undefined;
    }
    return {
      compared: result.pagesCompared, seq: s.seq + 1, kind, timeMs, prevSeq: s.seq, prevChain: s.chain, pageSize, pageCount,
      pages: pages.filter((n) => n <= pageCount), old, dbHash: hash,
    };
  }

  /**
   * The old bytes of `pages` (what the compare kept, in the order of `list`), when every one of
   * them is what the last sync holds: its page hash (zeros past its end) is the recorded one.
   * Read before the hashes of the new state replace those.
   */
  async #oldOf(pages: Uint32Array, list: Uint32Array, kept: Uint8Array | null, pageSize: number, syncedCount: number): Promise<Uint8Array | undefined> {
    if (kept === null || kept.length !== list.length * pageSize) return undefined;
    const at = new Map<number, number>();
    list.forEach((n, i) => at.has(n) || at.set(n, i));
    const old = new Uint8Array(pages.length * pageSize);
    for (let i = 0; i < pages.length; i++) {
      const n = pages[i]!;
      const k = at.get(n);
      if (k === undefined) return undefined;
      const page = kept.subarray(k * pageSize, (k + 1) * pageSize);
      const holds = n <= syncedCount ? equalBytes(await pageHash(n, page), this.#hashes.subarray((n - 1) * HASH_BYTES, n * HASH_BYTES)) : page.every((b) => b === 0);
      if (!holds) return undefined;
      old.set(page, i * pageSize);
    }
    return old;
  }

  /** The intent of a commit into the shadow that writes `list` and leaves `pageCount` pages. */
  #intentOf(list: Uint32Array, pageCount: number, timeMs: number): Intent {
    const s = this.#synced!;
    const pages = Uint32Array.from(new Set(list)).sort();
    const old = [...new Set([...pages.filter((n) => n <= s.pageCount), ...Array.from({ length: Math.max(0, s.pageCount - pageCount) }, (_, i) => pageCount + 1 + i)])].sort((a, b) => a - b);
    return {
      timeMs, runs: Array.from(runsOf(pages)), pageCount,
      old: { pageCount: s.pageCount, runs: Array.from(runsOf(old)), hashes: old.map((n) => hex(this.#hashes.subarray((n - 1) * HASH_BYTES, n * HASH_BYTES))).join("") },
    };
  }

  /**
   * One buffer of PART_BYTES for the pages a sync reads from the shadow (to hash them, to upload
   * them), reused: syncs run one at a time, and a new buffer per part left a gigabyte's snapshot
   * ~100 MiB of garbage ahead of the collector.
   */
  #part(bytes: number): Uint8Array {
    if (this.#partBuf === null || this.#partBuf.length < bytes) this.#partBuf = new Uint8Array(Math.max(PART_BYTES, bytes));
    return this.#partBuf.subarray(0, bytes);
  }
  #partBuf: Uint8Array | null = null;

  /** The shadow's file, which the pages of a sync are read from. */
  #shadowFile(): VfsFile {
    const file = this.#rt.fileOf(this.#shadow!.state.ptr, "main");
    if (file === null) throw new SqliteError(`${WHERE}: the shadow copy ${this.#shadowPath} has no file`, SQLITE_ERROR);
    return file;
  }

  /**
   * Calls fn with runs of the shadow's pages (at most PART_BYTES at a time), in order. The bytes
   * are the part buffer's: fn is done with them when its promise resolves.
   */
  async #forPages(pages: Uint32Array, pageSize: number, fn: (first: number, count: number, bytes: Uint8Array) => Promise<void>): Promise<void> {
    const max = Math.max(1, Math.floor(PART_BYTES / pageSize));
    const runs = runsOf(pages);
    for (let i = 0; i < runs.length; i += 2) {
      for (let done = 0; done < runs[i + 1]!; done += max) {
        const first = runs[i]! + done;
        const count = Math.min(max, runs[i + 1]! - done);
        const bytes = this.#part(count * pageSize);
        readRuns(this.#shadowFile(), [first, count], pageSize, bytes);
        await fn(first, count, bytes);
      }
    }
  }

  /** Hashes the whole shadow (at start); null when it is no database. */
  async #hashShadow(): Promise<Uint8Array | null> {
    const shadow = this.#shadow!;
    let pageSize: number, pageCount: number;
    try {
      pageSize = shadow.get<{ page_size: number }>("PRAGMA page_size")!.page_size;
      pageCount = shadow.get<{ page_count: number }>("PRAGMA page_count")!.page_count;
    } catch {
      return null;
    }
    if (pageCount === 0) return null;
    this.#shadowPageSize = pageSize;
    this.#shadowPageCount = pageCount;
    this.#hashes = new Uint8Array(pageCount * HASH_BYTES);
    const all = new Uint32Array(pageCount);
    for (let i = 0; i < pageCount; i++) all[i] = i + 1;
    await this.#forPages(all, pageSize, (first, count, bytes) => hashPages(this.#hashes, first, count, bytes, pageSize));
    return dbHash(this.#hashes, pageCount);
  }

  /** Uploads a sync's parts, in order; the chain hash of the last is kept in #lastChain. */
  async #upload(p: Pending, stats: Stats): Promise<void> {
    const compress = this.#o.compress ?? "deltas";
    const old = p.old;
    this.#lastChain = await this.#putParts(p.pages, p.pageSize, p.prevChain, compress === true || (compress === "deltas" && p.kind === "delta"), stats,
      old && ((at, bytes) => xorInto(bytes, old.subarray(at * p.pageSize, at * p.pageSize + bytes.length))),
      (part, parts, runs, prevChain) => ({
        kind: p.kind, seq: p.seq, prevSeq: p.prevSeq, timeMs: p.timeMs, part, parts, pageSize: p.pageSize, pageCount: p.pageCount,
        runs, xor: old !== undefined, prevChain, dbHash: part === parts - 1 ? p.dbHash : ZERO_HASH,
      }),
      (name) => {
        const list = this.#objects.get(p.seq) ?? [];
        if (!list.some((n) => n.name === name)) list.push(parseName(name)!);
        this.#objects.set(p.seq, list);
      });
  }

  /**
   * Uploads the shadow's `pages` as the objects of one sync or merge, a part (PART_BYTES of
   * pages) each: the part's pages read, XORed with their old bytes by `xor` (given the part's
   * first index into `pages`), under the header `header` makes, chained from `prevChain`;
   * `uploaded` hears each object's name. Returns the last part's chain hash.
   */
  async #putParts(
    pages: Uint32Array, pageSize: number, prevChain: Uint8Array, gzip: boolean, stats: Stats,
    xor: ((at: number, bytes: Uint8Array) => void) | undefined,
    header: (part: number, parts: number, runs: Uint32Array, prevChain: Uint8Array) => NewObject,
    uploaded: (name: string) => void,
  ): Promise<Uint8Array> {
    const perPart = Math.max(1, Math.floor(PART_BYTES / pageSize));
    const parts = Math.max(1, Math.ceil(pages.length / perPart));
    for (let part = 0; part < parts; part++) {
      this.#o.signal?.throwIfAborted();
      const some = pages.subarray(part * perPart, (part + 1) * perPart);
      const bytes = this.#part(some.length * pageSize);
      readRuns(this.#shadowFile(), runsOf(some), pageSize, bytes);
      xor?.(part * perPart, bytes);
      const h = header(part, parts, runsOf(some), prevChain);
      const obj = await encodeObject(h, bytes, gzip, this.#cipher);
      const name = objectName(h);
      await this.#target.put(name, obj.bytes);
      stats.bytes += obj.bytes.length;
      stats.objects++;
      uploaded(name);
      prevChain = obj.chain;
    }
    return prevChain;
  }

  /**
   * Adds a sync to every level's merge: the old bytes of the pages it changed first since the
   * merge's start go to the level's file. A level starts again at a snapshot, at a delta whose
   * old bytes were not kept, and after uploading its merge: at the end of its span, or at a sync
   * that shrank the database (a page truncated and grown again would have no bytes as of the
   * start to XOR with). A merge that fails to upload is reported, not retried: the syncs it
   * would stand for are there.
   */
  async #gather(p: Pending, before: Synced, stats: Stats): Promise<void> {
    for (const l of this.#levels) {
      if (p.kind === "snapshot" || p.old === undefined || l.from === null || l.from.pageSize !== p.pageSize) {
        this.#startLevel(l);
        continue;
      }
      try {
        const fresh = [];
        for (let i = 0; i < p.pages.length; i++) if (!l.slots.has(p.pages[i]!)) fresh.push(i);
        if (fresh.length > 0) {
          const bytes = new Uint8Array(fresh.length * p.pageSize);
          fresh.forEach((i, k) => bytes.set(p.old!.subarray(i * p.pageSize, (i + 1) * p.pageSize), k * p.pageSize));
          l.file ??= this.#rt.vfs().open(l.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_JOURNAL).file;
          l.file.write(bytes, l.slots.size * p.pageSize);
          for (const i of fresh) l.slots.set(p.pages[i]!, l.slots.size);
        }
        l.syncs++;
        if (p.pageCount < before.pageCount || p.timeMs - l.from.timeMs >= l.ms) {
          if (l.syncs >= 2) await this.#uploadMerge(l, p, stats);
          this.#startLevel(l);
        }
      } catch (e) {
        this.#startLevel(l);
        this.#report(e);
      }
    }
  }

  #startLevel(l: Level): void {
    l.from = this.#synced!;
    l.syncs = 0;
    l.slots.clear();
  }

  /** Uploads a level's merge: its pages XORed with their bytes at its start, up to sync p. */
  async #uploadMerge(l: Level, p: Pending, stats: Stats): Promise<void> {
    const from = l.from!;
    const pages = Uint32Array.from([...l.slots.keys()].filter((n) => n <= p.pageCount)).sort();
    const names: ParsedMerge[] = [];
    const base = new Uint8Array(p.pageSize);
    await this.#putParts(pages, p.pageSize, from.chain, this.#o.compress !== false, stats,
      (at, bytes) => {
        for (let i = 0; i < bytes.length / p.pageSize; i++) {
          l.file!.read(base, l.slots.get(pages[at + i]!)! * p.pageSize);
          xorInto(bytes.subarray(i * p.pageSize, (i + 1) * p.pageSize), base);
        }
      },
      (part, parts, runs, prevChain) => ({
        kind: "merge", seq: p.seq, prevSeq: from.seq, timeMs: p.timeMs, part, parts, pageSize: p.pageSize, pageCount: p.pageCount,
        runs, xor: true, prevChain, toChain: this.#synced!.chain, dbHash: part === parts - 1 ? p.dbHash : ZERO_HASH,
      }),
      (name) => names.push(parseMergeName(name)!));
    this.#merges.push(...names);
  }

  /**
   * Deletes what restores no point inside retentionMs any more: every object before the newest
   * snapshot that is older than the retention's start.
   */
  async #retain(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastRetentionMs < Math.min(RETENTION_EVERY_MS, this.#o.retentionMs ?? DAY)) return;
    this.#lastRetentionMs = now;
    const cutoff = now - (this.#o.retentionMs ?? DAY);
    const seqs = [...this.#objects.keys()].sort((a, b) => a - b);
    let keepFrom = 0;
    for (const seq of seqs) {
      const l = this.#objects.get(seq)!;
      if (l[0]!.timeMs > cutoff) break;
      if (l[0]!.kind === "snapshot" && l.length === l[0]!.parts) keepFrom = seq;
    }
    for (const seq of seqs) {
      if (seq >= keepFrom) break;
      for (const n of this.#objects.get(seq)!) await this.#target.delete(n.name);
      this.#objects.delete(seq);
    }
    // A merge from before the kept snapshot applies to no state a restore starts from.
    for (const m of this.#merges.filter((x) => x.from < keepFrom)) await this.#target.delete(m.name);
    this.#merges = this.#merges.filter((x) => x.from >= keepFrom);
  }
}

function pagesOfRuns(runs: number[]): Uint32Array {
  const out: number[] = [];
  for (let i = 0; i < runs.length; i += 2) for (let k = 0; k < runs[i + 1]!; k++) out.push(runs[i]! + k);
  return Uint32Array.from(out);
}
