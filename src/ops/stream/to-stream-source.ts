// The workings of backupToStream()'s stream (to-stream.ts checks the options and makes the stream,
// then imports this): its pulls, cancel and abort, and the routes a stream's bytes come from: the
// snapshot, the held file (held.ts) and the spool, filled by a file copy (copied.ts) or backup()
// (to-stream.ts describes them).
import { SQLITE_DONE, SQLITE_IOERR_SHORT_READ, SQLITE_OK, SQLITE_ROW } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import { backup } from "../backup.js";
import type { BackupOptions } from "../options.js";
import { copyIntoSpool } from "./copied.js";
import { stampPageCount } from "./header.js";
import { Held } from "./held.js";
import { removeTemp, TempReader, tempName } from "./temp.js";
import type { BackupToStreamOptions } from "./stream-options.js";

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
  /** Removes the spool (set once the spool has a name). */
  removeSpool: (() => void) | null = null;
  finished = false;

  /**
   * Removes the spool's name at once, before a read in flight ends (the open file stays
   * readable): a program that exits right after an abort or a cancel leaves no spool behind.
   */
  unlink(): void {
    this.removeSpool?.();
  }

  /** Closes the source and removes the spool; idempotent, never throws. */
  release(): void {
    this.finished = true;
    this.from?.close();
    this.from = null;
    this.removeSpool?.();
    this.removeSpool = null;
  }
}
const leaked = new FinalizationRegistry<StreamState>((s) => s.release());

/** What backupToStream() checked, for its stream. */
export interface StreamOptions {
  chunkSize: number;
  onStreamProgress: BackupToStreamOptions["onStreamProgress"];
  tempDir: string | undefined;
}

/** The underlying source of one stream of backupToStream(). */
export class StreamSource {
  readonly pull: (c: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>) => Promise<void>;
  readonly cancel: () => Promise<void>;

  constructor(rt: Runtime, source: Database, backupOptions: BackupOptions, { chunkSize, onStreamProgress, tempDir }: StreamOptions,
    controller: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>, stream: ReadableStream<Uint8Array<ArrayBuffer>>) {
    const { signal } = backupOptions;
    const state = new StreamState();
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

    const open = (): Promise<ChunkSource> => openChunkSource(rt, source, backupOptions, tempDir, inner.signal, (remove) => {
      state.removeSpool = remove;
    });

    this.pull = (c) => inTurn(async () => {
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
    });
    this.cancel = () => {
      inner.abort(new DOMException("the stream was cancelled", "AbortError"));
      state.unlink();
      return inTurn(finish);
    };
    leaked.register(stream, state, state);
    // Aborted before: errors the stream now.
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  }
}

/**
 * The snapshot of `source` where it can be had, else the held file, else the spool: a temporary
 * file that a file copy checked by the source guard, or backup() (stopped by `signal`), fills first. `onSpool` gets the spool's removal as soon as
 * the spool has a name, so that a cancel during the copy removes it at once.
 */
async function openChunkSource(rt: Runtime, source: Database, backupOptions: BackupOptions, tempDir: string | undefined,
  signal: AbortSignal, onSpool: (remove: () => void) => void): Promise<ChunkSource> {
  const snapshot = Snapshot.open(rt, source, backupOptions.sourceName ?? "main", backupOptions);
  if (snapshot !== null) return snapshot;
  const held = await Held.open(rt, source, backupOptions.sourceName ?? "main", backupOptions, tempDir);
  if (held !== null) return held;
  const copied = await copyIntoSpool(rt, source, backupOptions.sourceName ?? "main", backupOptions, tempDir, signal, onSpool);
  if (copied !== null) return new Spool(rt, copied.path, copied.pageCount);
  const path = tempName(rt, "spool", tempDir);
  onSpool(() => removeTemp(rt, path));
  const result = await backup(rt, source, path, { ...backupOptions, signal });
  return new Spool(rt, path, result.pageCount);
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
