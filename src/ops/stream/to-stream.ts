// backupToStream(): one committed state of a database as the bytes of a database file, in a Web
// ReadableStream the consumer pulls (nothing is read before it asks, and one chunk at a time).
// Two routes, both a committed state:
// - snapshot: a WAL source whose other writers this runtime sees (real file locks, or
//   verifySource: false) is read page by page (sqlite_dbpage) inside one read transaction of a
//   connection of our own: the writers go on (WAL), the stream holds the snapshot until it ends.
// - spool: anything else (a rollback-journal source, whose writers a long read would hold up; an
//   in-memory source; a source other processes may write unseen) is first copied by backup(),
//   with all its guards, into a temporary file (temp.ts), which is then streamed and removed.
import { SQLITE_DONE, SQLITE_IOERR_SHORT_READ, SQLITE_OK, SQLITE_ROW } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { checkKeys } from "../../core/options.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import { backup } from "../backup.js";
import { BACKUP_OPTION_KEYS, checkOptions, type BackupOptions } from "../options.js";
import { removeTemp, TempReader, tempName } from "./temp.js";

export interface StreamProgress {
  /** Bytes handed to the stream so far. */
  bytes: number;
  /** The size of the whole database file the stream carries. */
  totalBytes: number;
}

/** backup()'s options without the destination's (the stream is the destination), and the stream's own. */
export interface BackupToStreamOptions extends Omit<BackupOptions, "destName" | "incremental"> {
  /** Bytes per chunk (whole pages on the snapshot route). Default 1 MiB. */
  chunkSize?: number;
  /** Called after every chunk handed to the stream, and so as fast as the consumer takes them. */
  onStreamProgress?: (p: StreamProgress) => void;
  /** Directory of the spool file. Default: os.tmpdir() (browsers: the in-memory VFS). */
  tempDir?: string;
}

export const DEFAULT_CHUNK_SIZE = 1 << 20;
const OWN_KEYS = ["chunkSize", "onStreamProgress", "tempDir"] as const;
/** destName and incremental concern a destination database, which a stream is not. */
const STREAM_KEYS = [...BACKUP_OPTION_KEYS.filter((k) => k !== "destName" && k !== "incremental"), ...OWN_KEYS];

/** What a stream reads its chunks from: the snapshot or the spool. */
interface ChunkSource {
  readonly totalBytes: number;
  /** Bytes handed out so far. */
  readonly offset: number;
  /** The next chunk of at most `max` bytes; null when all totalBytes were handed out. */
  next(max: number): Promise<Uint8Array<ArrayBuffer> | null>;
  /** Idempotent; never throws. */
  close(): void;
}

/**
 * The state behind one stream, apart from the stream itself, so that a stream its consumer
 * dropped without cancelling still releases it (the finalizer below, a last resort).
 */
class StreamState {
  from: ChunkSource | null = null;
  spool: string | null = null;
  finished = false;
  constructor(readonly rt: Runtime) {}

  /**
   * Removes the spool's name at once, before a read in flight ends (the open file stays
   * readable): a program that exits right after an abort or a cancel leaves no spool behind.
   */
  unlink(): void {
    if (this.spool !== null) removeTemp(this.rt, this.spool);
  }

  /** Closes the source and removes the spool; idempotent, never throws. */
  release(): void {
    this.finished = true;
    this.from?.close();
    this.from = null;
    if (this.spool !== null) removeTemp(this.rt, this.spool);
    this.spool = null;
  }
}
const leaked = new FinalizationRegistry<StreamState>((s) => s.release());

export function backupToStream(rt: Runtime, source: Database, options: BackupToStreamOptions = {}): ReadableStream<Uint8Array<ArrayBuffer>> {
  checkKeys(options, STREAM_KEYS, "backupToStream");
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  const { chunkSize = DEFAULT_CHUNK_SIZE, onStreamProgress, tempDir, ...backupOptions } = options;
  // The shared checks, without the signal: an aborted one errors the stream like a later abort.
  checkOptions({ ...backupOptions, signal: undefined }, "backupToStream");
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new TypeError("chunkSize must be an integer >= 1");
  if (onStreamProgress !== undefined && typeof onStreamProgress !== "function") throw new TypeError("onStreamProgress must be a function");
  if (tempDir !== undefined && typeof tempDir !== "string") throw new TypeError("tempDir must be a string");
  const { signal } = backupOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");

  const state = new StreamState(rt);
  // Stops the spool's backup() when the stream is cancelled or aborted.
  const inner = new AbortController();
  // pull, cancel and abort take turns: the source is never closed under a read in flight.
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const p = turn.then(fn);
    turn = p.catch(() => {});
    return p;
  };
  const finish = () => {
    signal?.removeEventListener("abort", onAbort);
    state.release();
    leaked.unregister(state);
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const onAbort = () => {
    const reason = signal!.reason;
    try {
      controller.error(reason);
    } catch {
      // closed already
    }
    inner.abort(reason);
    state.unlink();
    void inTurn(finish);
  };

  const open = async (): Promise<ChunkSource> => {
    const sourceName = backupOptions.sourceName ?? "main";
    const snapshot = Snapshot.open(rt, source, sourceName, backupOptions);
    if (snapshot !== null) return snapshot;
    const path = (state.spool = tempName(rt, "spool", tempDir));
    const result = await backup(rt, source, path, { ...backupOptions, signal: inner.signal });
    return new Spool(rt, path, result.pageCount);
  };

  const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(c) {
      controller = c;
    },
    pull: (c) => inTurn(async () => {
      if (state.finished) return;
      try {
        signal?.throwIfAborted();
        const from = (state.from ??= await open());
        const chunk = await from.next(chunkSize);
        if (state.finished) return; // cancelled or aborted meanwhile
        // Never a clean end unless every byte went out: null before that is a short read.
        if (chunk === null) throw new SqliteError(`backupToStream: the copy ended at ${from.offset} of ${from.totalBytes} bytes`, SQLITE_IOERR_SHORT_READ);
        c.enqueue(chunk);
        onStreamProgress?.({ bytes: from.offset, totalBytes: from.totalBytes });
        if (from.offset === from.totalBytes) {
          finish();
          c.close();
        }
      } catch (e) {
        finish();
        throw e; // errors the stream
      }
    }),
    cancel: () => {
      inner.abort(new DOMException("the stream was cancelled", "AbortError"));
      state.unlink();
      return inTurn(finish);
    },
  }, { highWaterMark: 0 });
  leaked.register(stream, state, state);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  return stream;
}

/** The spool route's file, read in chunks and removed by the stream's release. */
class Spool implements ChunkSource {
  readonly #reader: TempReader;
  constructor(rt: Runtime, path: string, pageCount: number) {
    this.#reader = new TempReader(rt, path);
    if (pageCount > 0 && this.#reader.size % pageCount !== 0) {
      this.#reader.close();
      throw new SqliteError(`backupToStream: the spool ${path} has ${this.#reader.size} bytes for ${pageCount} pages`, SQLITE_IOERR_SHORT_READ);
    }
  }
  get totalBytes(): number {
    return this.#reader.size;
  }
  get offset(): number {
    return this.#reader.offset;
  }
  next(max: number): Promise<Uint8Array<ArrayBuffer> | null> {
    return this.#reader.next(max);
  }
  close(): void {
    this.#reader.close();
  }
}

const DBPAGE_SQL = "SELECT data FROM sqlite_dbpage";

/**
 * A read transaction of our own connection to a WAL source, read page by page in order by one
 * statement over sqlite_dbpage that stays open between chunks (its xBestIndex uses only pgno =,
 * so a range query per chunk would scan from page 1 each time).
 */
class Snapshot implements ChunkSource {
  readonly totalBytes: number;
  #pagesRead = 0;
  #stmt: number;

  private constructor(readonly rt: Runtime, readonly db: Database, stmt: number, readonly pageSize: number, readonly pageCount: number,
    readonly onProgress: BackupOptions["onProgress"]) {
    this.#stmt = stmt;
    this.totalBytes = pageSize * pageCount;
  }

  /**
   * The snapshot of `schema` of `source` when the source is in WAL mode and every writer that
   * could change it respects our read mark: this runtime takes real file locks, or the caller
   * said no other process writes it (verifySource: false). Null otherwise, and whenever the
   * connection cannot be made (the spool then does what backup() does, busy waits included).
   */
  static open(rt: Runtime, source: Database, schema: string, options: BackupOptions): Snapshot | null {
    if (rt.locking !== "os" && options.verifySource !== false) return null;
    const ptr = source.state.ptr; // a closed source throws here, and errors the stream
    const path = rt.filename(ptr, schema);
    const vfs = rt.vfsOf(ptr, schema);
    if (!path || !vfs) return null;
    let db: Database;
    try {
      db = new Database(rt, path, { readonly: true, vfs: vfs.name });
    } catch {
      return null;
    }
    let stmt = 0;
    try {
      db.exec("BEGIN");
      const { page_count: pageCount } = db.get<{ page_count: number }>("PRAGMA page_count")!; // starts the read transaction
      const { journal_mode: mode } = db.get<{ journal_mode: string }>("PRAGMA journal_mode")!;
      if (mode !== "wal" || pageCount === 0) throw new Error("not a WAL database");
      const { page_size: pageSize } = db.get<{ page_size: number }>("PRAGMA page_size")!;
      stmt = prepare(rt, db, DBPAGE_SQL);
      return new Snapshot(rt, db, stmt, pageSize, pageCount, options.onProgress);
    } catch {
      if (stmt) rt.capi.sqlite3_finalize(stmt);
      db.close(); // ends the read transaction
      return null;
    }
  }

  get offset(): number {
    return this.#pagesRead * this.pageSize;
  }

  async next(max: number): Promise<Uint8Array<ArrayBuffer> | null> {
    const { rt, pageSize } = this;
    const { capi } = rt;
    const pages = Math.min(Math.max(1, Math.floor(max / pageSize)), this.pageCount - this.#pagesRead);
    if (pages <= 0) return null;
    const chunk = new Uint8Array(pages * pageSize);
    const db = this.db.state.ptr;
    rt.enter();
    for (let i = 0; i < pages; i++) {
      const rc = capi.sqlite3_step(this.#stmt);
      if (rc !== SQLITE_ROW) {
        if (rc === SQLITE_DONE) throw new SqliteError(`backupToStream: the snapshot ended at page ${this.#pagesRead + i} of ${this.pageCount}`, SQLITE_IOERR_SHORT_READ);
        throw rt.errorFromCall(rc, db);
      }
      const p = capi.sqlite3_column_blob(this.#stmt, 0);
      const n = capi.sqlite3_column_bytes(this.#stmt, 0);
      if (n !== pageSize) throw new SqliteError(`backupToStream: page ${this.#pagesRead + i + 1} has ${n} bytes, not ${pageSize}`, SQLITE_IOERR_SHORT_READ);
      chunk.set(rt.heap.u8.subarray(p, p + n), i * pageSize);
    }
    if (this.#pagesRead === 0) stampPageCount(chunk, this.pageCount);
    this.#pagesRead += pages;
    // As in backup(): awaited when it returns a promise; a throw fails the copy (the stream errors).
    await this.onProgress?.({ remaining: this.pageCount - this.#pagesRead, pageCount: this.pageCount });
    return chunk;
  }

  close(): void {
    if (this.#stmt) this.rt.capi.sqlite3_finalize(this.#stmt);
    this.#stmt = 0;
    this.db.close(); // ends the read transaction
  }
}

/**
 * Page 1 as a commit of the snapshot writes it: the page count at 28 and, equal to the change
 * counter, the version-valid-for number at 92 that makes it trusted (as backup() leaves its copy).
 */
function stampPageCount(page1: Uint8Array, pageCount: number): void {
  const dv = new DataView(page1.buffer, page1.byteOffset, 100);
  dv.setUint32(28, pageCount);
  dv.setUint32(92, dv.getUint32(24));
}

function prepare(rt: Runtime, db: Database, sql: string): number {
  const { capi, heap } = rt;
  return heap.scoped((s) => {
    const [p, n] = s.cstring(sql);
    const pp = s.out();
    rt.enter();
    const rc = capi.sqlite3_prepare_v3(db.state.ptr, p, n, 0, pp, 0);
    if (rc !== SQLITE_OK) throw rt.errorFromCall(rc, db.state.ptr);
    return heap.i32(pp);
  });
}
