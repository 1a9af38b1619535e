// backupToOpfs / restoreFromOpfs / openOpfs: the OPFS operations of the browser entry.
import {
  SQLITE_CANTOPEN, SQLITE_DESERIALIZE_FREEONCLOSE, SQLITE_DESERIALIZE_RESIZEABLE, SQLITE_ERROR, SQLITE_IOERR, SQLITE_OK,
} from "../core/constants.js";
import { errorCode, SqliteError } from "../core/errors.js";
import { checkKeys } from "../core/options.js";
import { Database, type OpenOptions } from "../handles/database.js";
import { backup, sourceGuard } from "../ops/backup.js";
import { incrementalBackup } from "../ops/incremental.js";
import { checkOptions, checkPages, type BackupOptions, type BackupResult } from "../ops/options.js";
import type { Runtime } from "../runtime/runtime.js";
import type { MemoryVfs } from "../vfs/memory.js";
import { errorText, opfsDirectory, requireOpfs, splitOpfsPath } from "./dom.js";
import type { OpfsVfs } from "./opfs-vfs.js";
import type { InPlaceTarget, RelaySink, RelayVfs } from "./relay-vfs.js";
import { lockOpfsFile } from "./web-locks.js";
import { writerScript, type WriterReply, type WriterRequest } from "./writer-worker.js";

/** Unacknowledged bytes allowed in flight to the writer before the copy waits for it. */
const MAX_IN_FLIGHT = 8 << 20;
/** The largest write a relay file issues (BufferedFile merges up to 1 MiB; the fresh copy writes 1 MiB). */
const BUFFER_MAX = 1 << 20;
/** Writes smaller than this wait in a batch and go to the worker together (see OpfsWriter.write). */
const BATCH_BELOW = 64 << 10;
/** Writes go into pooled buffers of a power-of-two size, at least 4 KiB. */
const capacity = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 4096)));

let blobUrl: string | undefined;
let serial = 0;

/** What a failure to start the writer from a blob: URL most likely means. */
const CSP_HINT = " (a Content-Security-Policy whose worker-src does not allow blob: forbids the default writer: " +
  "serve sqlite-backup-wasm/opfs-writer.js from your origin and pass its URL as loadSqlite({ writerWorkerUrl }))";

/**
 * A writer worker that finished a copy cleanly waits here for the next one: starting a worker
 * costs ~20 ms, a fifth of a 100 MiB copy. It holds no handle and no lock while idle, and is
 * terminated after IDLE_MS (or when another finishes while it waits).
 */
const IDLE_MS = 10_000;
let idle: { worker: Worker; url: string | undefined; timer: ReturnType<typeof setTimeout> } | null = null;
const workerUrls = new WeakMap<Worker, string | undefined>();

/** A writer worker started from `url` (default: a blob: URL of the script in this bundle). */
function takeWorker(url: string | undefined): Worker {
  if (idle && idle.url === url) {
    const { worker, timer } = idle;
    clearTimeout(timer);
    idle = null;
    return worker;
  }
  let worker: Worker;
  try {
    worker = new Worker(url ?? (blobUrl ??= URL.createObjectURL(new Blob([writerScript()], { type: "text/javascript" }))), { name: "sqlite-backup-wasm opfs writer" });
  } catch (e) {
    throw new SqliteError(`backupToOpfs: cannot start the writer worker from ${url ?? "a blob: URL"}: ${errorText(e)}${url ? "" : CSP_HINT}`, SQLITE_CANTOPEN);
  }
  workerUrls.set(worker, url);
  return worker;
}

function keepIdle(worker: Worker): void {
  const url = workerUrls.get(worker);
  if (idle) {
    worker.terminate();
    return;
  }
  const drop = () => {
    if (idle?.worker === worker) {
      clearTimeout(idle.timer);
      idle = null;
    }
    worker.terminate();
  };
  worker.onerror = drop; // one that fails while it waits is not handed out
  idle = { worker, url, timer: setTimeout(drop, IDLE_MS) };
}

/** The main-thread end of the writer worker (see writer-worker.ts). */
export class OpfsWriter implements RelaySink {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: WriterReply) => void; reject: (e: SqliteError) => void }>();
  readonly #writes: Promise<void>[] = [];
  #next = 1;
  #inFlight = 0;
  /** Buffers the worker gave back, by capacity (see #recycle()). */
  readonly #spare = new Map<number, ArrayBuffer[]>();
  /** Small writes not yet sent, for one file: their bytes back to back, and [at, length] of each. */
  #batch: { file?: "db" | "journal"; data: ArrayBuffer; used: number; ranges: number[] } | null = null;
  /** The first failure of a write: the copy stops at its next step. */
  error: SqliteError | null = null;
  /** The worker failed (maybe while starting, before any request): every request after is refused. */
  #failed: SqliteError | null = null;

  /** `worker`: a writer worker, or what stands for one (tests). */
  constructor(readonly path: string, worker: Worker = takeWorker(undefined)) {
    this.#worker = worker;
    this.#worker.onmessage = (e: MessageEvent<WriterReply>) => {
      const p = this.#pending.get(e.data.id);
      this.#pending.delete(e.data.id);
      if (!p) return;
      const err = e.data.error;
      if (err) p.reject(new SqliteError(`OPFS copy to ${path}: ${err.name}: ${err.message}`, errorCode(err, SQLITE_IOERR)));
      else p.resolve(e.data);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      const blob = workerUrls.has(this.#worker) && workerUrls.get(this.#worker) === undefined;
      const err = new SqliteError(`OPFS copy to ${path}: the writer worker failed: ${e.message || "(no message: it may not have started)"}${blob ? CSP_HINT : ""}`, SQLITE_IOERR);
      this.#failed ??= err;
      this.error ??= err;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
  }

  request(m: Omit<WriterRequest, "id">, transfer: Transferable[] = []): Promise<WriterReply> {
    if (this.#failed) return Promise.reject(this.#failed); // nobody would answer
    this.#sendBatch(); // the worker carries requests out in the order they were made
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...m, id }, transfer);
    });
  }

  /** A request nobody awaits but drain(): its failure becomes `error`; `n` bytes count as in flight. */
  #post(m: Omit<WriterRequest, "id">, n = 0, transfer: Transferable[] = []): void {
    this.#inFlight += n;
    this.#writes.push(this.request(m, transfer).then(
      (r) => { this.#inFlight -= n; if (r.data) this.#recycle(r.data); },
      (e: SqliteError) => { this.#inFlight -= n; this.error ??= e; },
    ));
  }

  /**
   * Copies bytes (a view of the heap) into a buffer of the pool and hands that to the worker.
   * Small writes are batched: an incremental backup's commit writes each changed page and its
   * journal record (4 + page + 4 bytes) on its own, and a message per write was ~660 messages
   * for 1% of a 56 MiB database, most of the commit's time on the main thread.
   */
  write(at: number, bytes: Uint8Array, file?: "db" | "journal"): void {
    const n = bytes.byteLength;
    if (n >= BATCH_BELOW) {
      const data = this.#buffer(n);
      new Uint8Array(data, 0, n).set(bytes);
      this.#post({ op: "write", at, data, size: n, file }, n, [data]);
      return;
    }
    if (this.#batch && (this.#batch.file !== file || this.#batch.used + n > BUFFER_MAX)) this.#sendBatch();
    const b = (this.#batch ??= { file, data: this.#buffer(BUFFER_MAX), used: 0, ranges: [] });
    new Uint8Array(b.data, b.used, n).set(bytes);
    b.ranges.push(at, n);
    b.used += n;
  }

  #sendBatch(): void {
    const b = this.#batch;
    if (!b) return;
    this.#batch = null;
    this.#post({ op: "write", data: b.data, size: b.used, ranges: b.ranges, file: b.file }, b.used, [b.data]);
  }

  /** A buffer of at least n bytes, from the pool if it has one. */
  #buffer(n: number): ArrayBuffer {
    return this.#spareBuffer(n) ?? new ArrayBuffer(capacity(n));
  }

  /** A buffer of at least n bytes from the pool, if it has one. */
  #spareBuffer(n: number): ArrayBuffer | undefined {
    return this.#spare.get(capacity(n))?.pop();
  }

  /**
   * The worker sends each written buffer back, and the relay each block it has compared: a
   * fresh 1 MiB ArrayBuffer per write cost ~0.5 ms (allocating and zeroing it), about half of
   * the main thread's time in a copy. The pool keeps at most MAX_IN_FLIGHT + BUFFER_MAX bytes of
   * each buffer size.
   */
  #recycle(data: ArrayBuffer): void {
    const list = this.#spare.get(data.byteLength) ?? [];
    if ((list.length + 1) * data.byteLength > MAX_IN_FLIGHT + BUFFER_MAX) return;
    list.push(data);
    this.#spare.set(data.byteLength, list);
  }

  truncate(size: number, file?: "db" | "journal"): void {
    this.#post({ op: "truncate", size, file });
  }

  /** A request the copy goes on without waiting for: its failure stops the copy at its next step (see error). */
  send(m: Omit<WriterRequest, "id">): void {
    this.#post(m);
  }

  /**
   * Opens the target itself for an incremental backup: null when it is missing or empty or a
   * -journal or -wal beside it is not empty (then the full copy replaces it).
   */
  async openInPlace(dirs: string[], name: string): Promise<InPlaceTarget | null> {
    const r = await this.request({ op: "openInPlace", dirs, name });
    if (!r.size || r.sides) return null;
    const sink = (file: "db" | "journal") => ({
      write: (at: number, bytes: Uint8Array) => this.write(at, bytes, file),
      truncate: (size: number) => this.truncate(size, file),
      sync: () => this.#post({ op: "flush", file }),
      settle: () => this.settle(),
    });
    return {
      size: r.size,
      head: new Uint8Array(r.data!),
      db: {
        ...sink("db"),
        read: async (at, size) => {
          // A spare buffer if there is one; else the worker makes one: allocating (and zeroing)
          // it here cost the compare's thread ~0.5 ms per MiB, more than comparing the block.
          const data = this.#spareBuffer(size);
          const got = await this.request({ op: "read", at, size, data }, data ? [data] : []);
          return new Uint8Array(got.data!, 0, got.size);
        },
        recycle: (data) => this.#recycle(data),
      },
      journal: { ...sink("journal"), remove: () => this.#post({ op: "removeJournal" }) },
    };
  }

  /** After every backup step: never run far ahead of OPFS. */
  settle(): Promise<void> {
    return this.drain(MAX_IN_FLIGHT);
  }

  /** Sends the batch, then waits until at most `limit` bytes are in flight; throws the first write failure. */
  async drain(limit: number): Promise<void> {
    this.#sendBatch();
    while (this.#writes.length > 0 && (this.#inFlight > limit || limit === 0)) await this.#writes.shift();
    if (this.error) throw this.error;
  }

  /** Ends this copy's use of the worker: kept for the next copy after a clean finish (nothing pending, no failure), else terminated. */
  release(clean: boolean): void {
    if (clean && this.#pending.size === 0 && this.error === null) {
      this.#worker.onmessage = this.#worker.onerror = null;
      keepIdle(this.#worker);
      return;
    }
    this.#worker.terminate();
    const err = new SqliteError(`OPFS copy to ${this.path}: the writer was stopped`, SQLITE_IOERR);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

/** restoreFromOpfs reads one file into a new database: no schemas to choose, no source to guard. */
const RESTORE_KEYS = ["pagesPerStep", "pauseMs", "onProgress", "signal", "busyTimeoutMs"] as const;
export type RestoreOptions = Pick<BackupOptions, (typeof RESTORE_KEYS)[number]>;

/**
 * Copies `source` into the OPFS file at `path` from any thread (the main thread included), as
 * backup() into a database of the relay VFS whose writes the writer worker carries out. Over an
 * existing database of the source's page size only the differing pages are written, in place
 * under a rollback journal (an incremental backup: see inPlace()); otherwise the copy goes into a
 * temporary file beside the target, which then replaces it in one rename. Every option does what
 * it does in backup(). Rejects (leaving the previous content) on abort, on any failure, or when
 * the target is open in another tab or worker for longer than busyTimeoutMs (SQLITE_BUSY).
 */
export async function backupToOpfs(rt: Runtime, relay: RelayVfs, source: Database, path: string, options: BackupOptions = {},
  writerWorkerUrl?: string): Promise<BackupResult> {
  const start = performance.now();
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  checkOptions(options, "backupToOpfs");
  // The OPFS file is a database of its own: it has no other schema to copy into.
  const { destName = "main" } = options;
  if (destName !== "main") throw new TypeError(`backupToOpfs: destName must be "main" (the OPFS file is the destination database), not ${JSON.stringify(destName)}`);
  const target = splitOpfsPath(path);
  await requireOpfs("backupToOpfs");
  // The writer worker starts (~15-30 ms when none is idle) while the lock is taken: it touches
  // no file before a request comes, and requests come only under the lock. A look at the target
  // from here runs meanwhile too (a page's first OPFS call can take ~20 ms); it decides nothing
  // but to skip asking the worker about a new file (see inPlace()).
  const writer = new OpfsWriter(target.full, takeWorker(writerWorkerUrl));
  const absent = (options.incremental ?? "auto") === "auto" ? missingOrEmpty(target) : Promise.resolve(false);
  // Before anything is copied: the target may be open in another tab or worker.
  const lock = await lockOpfsFile(target.full, "exclusive", "backupToOpfs", options.busyTimeoutMs, options.signal).catch((e) => {
    writer.release(true); // nothing was sent: the worker waits idle for the next call
    throw e;
  });
  let clean = false;
  try {
    const result = (await inPlace(rt, relay, writer, source, target, options, absent)) ?? (await freshCopy(rt, relay, writer, source, target, options));
    clean = true;
    return { ...result, elapsedMs: performance.now() - start };
  } finally {
    writer.release(clean);
    lock.release();
  }
}

type OpfsTarget = ReturnType<typeof splitOpfsPath>;

/**
 * The incremental backup into the existing file, which the writer opens in place: the relay
 * serves the compare's reads from blocks the writer reads ahead, and SQLite's rollback journal
 * goes to OPFS beside the file (written and flushed before any page of the file). Null when
 * options.incremental is false or (with "auto") the file does not qualify: the caller makes the
 * full copy, which replaces the file. `absent`: the target was seen missing or empty from this
 * thread (with "auto" only, just before the lock: if another context wrote it meanwhile, the
 * full copy is still right).
 */
async function inPlace(rt: Runtime, relay: RelayVfs, writer: OpfsWriter, source: Database, { dirs, name, full }: OpfsTarget,
  options: BackupOptions, absent: Promise<boolean>): Promise<BackupResult | null> {
  const mode = options.incremental ?? "auto";
  if (mode === false || (await absent)) return null;
  const decline = async (why: string) => {
    await writer.request({ op: "close" });
    if (mode === true) throw new SqliteError(`backupToOpfs: incremental: true, but ${why}`, SQLITE_ERROR);
    return null;
  };
  const existing = await writer.openInPlace(dirs, name);
  if (!existing) return decline(`${full} is missing or empty, or a -journal or -wal beside it is not empty`);
  // Anything else the full copy replaces, as it replaces a missing file.
  if (new TextDecoder().decode(existing.head.subarray(0, 16)) !== "SQLite format 3\0") return decline(`${full} is not a database`);
  // The relay has no WAL-index: a WAL file is replaced by the full copy (as rollback mode).
  if (existing.head[18] === 2 || existing.head[19] === 2) return decline(`${full} is in WAL mode`);
  const relayName = `/backup-${++serial}.db`;
  relay.expectInPlace(relayName, existing);
  let dest: Database | undefined;
  try {
    dest = new Database(rt, relayName, { vfs: relay.name });
    const guard = sourceGuard(rt, source, options);
    const result = await incrementalBackup(rt, source, options.sourceName ?? "main", dest, "main", guard, options).finally(() => guard?.close());
    dest.close();
    dest = undefined;
    await writer.drain(0);
    await writer.request({ op: "close" });
    return result;
  } catch (e) {
    // SQLite rolled the file back through the relay (after a write failure the writer refuses
    // that too: the hot journal it flushed first is rolled back by the next open).
    dest?.close();
    await writer.drain(0).catch(() => {});
    await writer.request({ op: "close" }).catch(() => {});
    throw e;
  } finally {
    relay.forget(relayName);
  }
}

/** Whether the OPFS file is missing or empty; false when this thread cannot tell (the writer then looks). */
async function missingOrEmpty({ dirs, name }: OpfsTarget): Promise<boolean> {
  try {
    const file = await (await opfsDirectory(dirs, false)).getFileHandle(name);
    return (await file.getFile()).size === 0;
  } catch (e) {
    return (e as { name?: string })?.name === "NotFoundError";
  }
}

/** The full copy into a temporary file beside the target, renamed over it at the end. */
async function freshCopy(rt: Runtime, relay: RelayVfs, writer: OpfsWriter, source: Database, { dirs, name }: OpfsTarget,
  options: BackupOptions): Promise<BackupResult> {
  const relayName = `/backup-${++serial}.db`;
  let dest: Database | undefined;
  try {
    // Not awaited: the copy starts while the worker (maybe still starting) creates the file, and
    // stops at its next step if that fails.
    writer.send({ op: "open", dirs, name, temp: `.${name}.${Date.now().toString(36)}${++serial}.sbw-tmp` });
    relay.expect(relayName, writer);
    dest = new Database(rt, relayName, { vfs: relay.name });
    // The temporary file and the rename are the rollback; a journal in memory lets a restart of
    // the fresh copy (wasm/pagediff.c) truncate what it wrote, as journal_mode=OFF could not.
    dest.exec("PRAGMA journal_mode=MEMORY");
    // incremental "auto" (true never gets here: inPlace() took it or threw): the fresh copy into the empty file.
    const result = await backup(rt, source, dest, options);
    dest.close();
    await writer.drain(0);
    await writer.request({ op: "commit" });
    return result;
  } catch (e) {
    dest?.close();
    await writer.request({ op: "abort" }).catch(() => {});
    throw e;
  } finally {
    relay.forget(relayName);
  }
}

/** What restoreFromOpfs copies into the heap: the OPFS file, or its recovered staged copy. */
interface ImageSource {
  size: number;
  head(): Promise<Uint8Array>;
  /** Hands the bytes [at, at + n) to put, in pieces, each with its offset. */
  copy(at: number, n: number, put: (piece: Uint8Array, offset: number) => void): Promise<void>;
}

/**
 * A File read in pieces through one reused buffer (a BYOB reader), so a whole restore leaves
 * no trail of garbage buffers: slice(…).arrayBuffer() per step left ~100 MiB of them for the
 * collector in a 147 MiB restore (renderer peak +250 MiB; +168 MiB with this reader).
 */
function blobSource(file: Blob): ImageSource {
  let buf = new ArrayBuffer(1 << 20);
  return {
    size: file.size,
    head: async () => new Uint8Array(await file.slice(0, 100).arrayBuffer()),
    async copy(at, n, put) {
      const reader = file.slice(at, at + n).stream().getReader({ mode: "byob" });
      try {
        for (let off = at; ;) {
          const { value, done } = await reader.read(new Uint8Array(buf));
          if (value) buf = value.buffer as ArrayBuffer; // the read transferred it: take it back
          if (done || !value) break;
          put(value, off);
          off += value.length;
        }
      } finally {
        reader.releaseLock();
      }
    },
  };
}

/** Default bytes read per restore step: 8 MiB copies into the heap in a few ms. */
const RESTORE_CHUNK = 8 << 20;

/**
 * Reads the OPFS file at `path` into a new in-memory Database, under the file's shared Web
 * Lock (so no other context writes it meanwhile). The file is streamed in steps straight into
 * one heap buffer that becomes the database (sqlite3_deserialize): the extra memory is the
 * database's size and a 1 MiB buffer. A non-empty -wal or -journal beside it (a writer that crashed,
 * or files copied in from elsewhere) is read with it: SQLite replays the WAL or rolls the
 * journal back in a staged in-memory copy, as it would on disk (this costs the file's size once
 * more); the OPFS files are not changed. SQLITE_CANTOPEN when the file does not exist.
 */
export async function restoreFromOpfs(rt: Runtime, mem: MemoryVfs, path: string, options: RestoreOptions = {}): Promise<Database> {
  checkKeys(options, RESTORE_KEYS, "restoreFromOpfs");
  checkOptions(options, "restoreFromOpfs");
  const { pauseMs = 0, onProgress, signal } = options;
  const { dirs, name, full } = splitOpfsPath(path);
  await requireOpfs("restoreFromOpfs");
  const lock = await lockOpfsFile(full, "shared", "restoreFromOpfs", options.busyTimeoutMs, signal);
  const staged = `/restore-${++serial}.db`;
  const names = [staged, `${staged}-journal`, `${staged}-wal`] as const;
  const { heap, capi } = rt;
  let image = 0;
  let dest: Database | undefined;
  try {
    let source: ImageSource;
    try {
      const dir = await opfsDirectory(dirs, false);
      const file = await (await dir.getFileHandle(name)).getFile();
      let sides = false;
      for (const [i, suffix] of [[1, "-journal"], [2, "-wal"]] as const) {
        const side = await dir.getFileHandle(name + suffix).then((h) => h.getFile(), () => null);
        if (!side || side.size === 0) continue;
        mem.put(names[i], new Uint8Array(await side.arrayBuffer()));
        sides = true;
      }
      source = blobSource(file);
      if (sides) {
        mem.put(staged, new Uint8Array(await file.arrayBuffer()));
        // Read-write, so that SQLite recovers the staged copy (rolls a hot journal back, or
        // reads the WAL), then moves the WAL's frames into the file and drops it.
        const db = new Database(rt, staged, { vfs: mem.name });
        try {
          db.exec("SELECT count(*) FROM sqlite_schema; PRAGMA journal_mode=DELETE");
        } finally {
          db.close();
        }
        const bytes = mem.take(staged)!;
        source = { size: bytes.length, head: async () => bytes.subarray(0, 100), copy: async (at, n, put) => put(bytes.subarray(at, at + n), at) };
      }
    } catch (e) {
      if (e instanceof SqliteError) throw e;
      throw new SqliteError(`cannot read ${full}: ${errorText(e)}`, errorCode(e, SQLITE_CANTOPEN));
    } finally {
      for (const n of names) mem.remove(n);
    }

    const { size } = source;
    image = heap.alloc(size);
    const head = await source.head();
    const rawPageSize = head.length >= 18 ? (head[16]! << 8) | head[17]! : 0;
    // Progress counts pages; a header that is no database's still copies (and fails below).
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize >= 512 && (rawPageSize & (rawPageSize - 1)) === 0 ? rawPageSize : 4096;
    const pageCount = Math.ceil(size / pageSize);
    let pages = options.pagesPerStep || RESTORE_CHUNK / pageSize;
    let done = 0;
    while (done < pageCount) {
      signal?.throwIfAborted();
      const n = pages < 0 ? pageCount - done : Math.min(pages, pageCount - done);
      const at = done * pageSize;
      await source.copy(at, n * pageSize, (piece, offset) => heap.u8.set(piece, image + offset));
      done += n;
      let wanted = onProgress?.({ remaining: pageCount - done, pageCount });
      if (typeof (wanted as Promise<unknown> | undefined)?.then === "function") wanted = await wanted;
      if (typeof wanted === "number") {
        checkPages(wanted, "the step size onProgress returned"); // as in backup()
        pages = wanted;
      }
      if (done < pageCount && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    signal?.throwIfAborted();
    if (pageCount === 0) await onProgress?.({ remaining: 0, pageCount });
    // The image has no WAL (it was empty, or was checkpointed into it above), and a memory
    // database cannot have one: the copy is in rollback mode.
    const u8 = heap.u8;
    if (size >= 20 && u8[image + 18] === 2 && u8[image + 19] === 2) u8[image + 18] = u8[image + 19] = 1;
    dest = new Database(rt, ":memory:");
    const p = image;
    image = 0; // SQLite owns it now, and frees it even when deserialize fails
    const rc = heap.scoped((sc) => capi.sqlite3_deserialize(dest!.state.ptr, sc.cstring("main")[0], p, BigInt(size), BigInt(size),
      SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE));
    if (rc !== SQLITE_OK) throw rt.errorFromDb(dest.state.ptr);
    dest.get("SELECT count(*) FROM sqlite_schema"); // SQLITE_NOTADB for a file that is no database
    return dest;
  } catch (e) {
    heap.free(image);
    dest?.close();
    throw e;
  } finally {
    lock.release();
  }
}

/** openOpfs picks the VFS itself. */
const OPFS_OPEN_KEYS = ["readonly", "create", "busyTimeoutMs"] as const;
export interface OpfsOpenOptions extends Omit<OpenOptions, "vfs"> {
  /** How long to wait for another tab or worker to let go of the file. Default 5000. */
  busyTimeoutMs?: number;
}

/** Opens an OPFS file as a Database in a dedicated worker (sync access handles exist only there). */
export async function openOpfs(rt: Runtime, vfs: OpfsVfs, path: string, options: OpfsOpenOptions = {}): Promise<Database> {
  checkKeys(options, OPFS_OPEN_KEYS, "openOpfs");
  const { busyTimeoutMs } = options;
  // Checked here too: a second open of a file this worker has open takes no lock.
  if (busyTimeoutMs !== undefined && (typeof busyTimeoutMs !== "number" || !(busyTimeoutMs >= 0))) throw new TypeError("busyTimeoutMs must be a number >= 0");
  splitOpfsPath(path);
  await requireOpfs("openOpfs");
  if (typeof (globalThis as { FileSystemSyncAccessHandle?: unknown }).FileSystemSyncAccessHandle === "undefined") {
    throw new Error("openOpfs() needs FileSystemSyncAccessHandle, which exists only in dedicated Workers; from the main thread use backupToOpfs()/restoreFromOpfs()");
  }
  const pin = await vfs.prepare(path, options);
  try {
    return new Database(rt, pin.path, { readonly: options.readonly, create: options.create, vfs: vfs.name });
  } finally {
    pin.release(); // the open database holds its own references now
  }
}
