// restoreFromStream(): the bytes of a database file, from a Web ReadableStream or any (async)
// iterable of byte chunks, become the destination, atomically. The bytes go to a staging file as
// they arrive (through a 1 MiB buffer: memory stays bounded whatever the chunk sizes); only once
// the whole stream has arrived, its length agrees with its header and PRAGMA quick_check passes
// does anything touch the destination: a rename of the staging file over it where that keeps
// everything a copy would (scratch.ts decides), else backup() from the staging file into it.
import { SQLITE_CORRUPT, SQLITE_NOTADB } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { checkKeys } from "../../core/options.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import { backup } from "../backup.js";
import { checkOptions, type BackupProgress, type BackupResult } from "../options.js";
import { Scratch } from "../scratch.js";
import { HEADER_BYTES, magicSoFar, notADatabase, parseHeader, wrongLength, type Header } from "./header.js";
import { removeTemp, tempName, TempWriter } from "./temp.js";

export interface RestoreFromStreamOptions {
  /** Pages received, as they arrive (remaining: pages still to come); once more with remaining 0 when dest is committed. */
  onProgress?: (p: BackupProgress) => void;
  /** Abort: the input stream is cancelled, dest stays as it was, the promise rejects with signal.reason. */
  signal?: AbortSignal;
  /** How long a busy destination is waited for. Default 5000. */
  busyTimeoutMs?: number;
  /** Directory of the staging file when it cannot go beside dest. Default: os.tmpdir() (browsers: the in-memory VFS). */
  tempDir?: string;
}

export type ByteChunks = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const RESTORE_KEYS = ["onProgress", "signal", "busyTimeoutMs", "tempDir"] as const;
/** The staging file's write buffer: the unit of memory, writes and progress reports. */
const BUFFER_BYTES = 1 << 20;
const WHERE = "restoreFromStream";

export async function restoreFromStream(rt: Runtime, input: ByteChunks, dest: Database | string, options: RestoreFromStreamOptions = {}): Promise<BackupResult> {
  const start = performance.now();
  checkKeys(options, RESTORE_KEYS, WHERE);
  const { onProgress, signal, busyTimeoutMs, tempDir } = options;
  checkOptions({ onProgress, signal, busyTimeoutMs }, WHERE);
  if (tempDir !== undefined && typeof tempDir !== "string") throw new TypeError("tempDir must be a string");
  if (typeof dest !== "string" && !(dest instanceof Database)) throw new TypeError("dest must be a Database or a filename");
  const chunks = readerOf(input);

  // Beside a destination file (same disk, and renamed over it when that is safe); else a
  // temporary file of the default VFS.
  const scratch = Scratch.beside(rt, dest);
  let path: string | null = null;
  let writer: TempWriter | null = null;
  let staged: Database | null = null;
  let renamed = false;
  let writtenBack: Promise<void> | null = null;
  const stopOnAbort = () => chunks.stop(signal!.reason);
  signal?.addEventListener("abort", stopOnAbort, { once: true });
  try {
    path = scratch?.path ?? tempName(rt, "restore", tempDir);
    writer = new TempWriter(rt, path, BUFFER_BYTES, scratch === null);
    const header = await receive(chunks, writer, signal, onProgress);
    const pageCount = writer.size / header.pageSize;
    writer.flush(); // every byte in the file before SQLite reads it
    // A file that may be renamed into place must be on disk first: it goes there off the thread
    // while quick_check reads it.
    writtenBack = scratch !== null ? writer.writeBack() : null;
    staged = new Database(rt, path);
    if (scratch !== null) scratch.db = staged; // closed and removed by scratch.discard()
    quickCheck(staged);
    await writtenBack;
    await writer.finish(scratch !== null);
    signal?.throwIfAborted();
    let result: BackupResult;
    if (scratch !== null && (renamed = await scratch.renameOver(dest, "main"))) {
      result = { pageCount, steps: 0, restarts: 0, elapsedMs: 0, pagesWritten: pageCount, pagesCompared: 0, incremental: false };
    } else {
      // Nobody else writes the staging file: no source guard.
      result = await backup(rt, staged, dest, { signal, busyTimeoutMs, verifySource: false });
    }
    result.elapsedMs = performance.now() - start;
    onProgress?.({ remaining: 0, pageCount });
    return result;
  } catch (e) {
    void chunks.stop(e); // the rest of the input is not wanted
    throw e;
  } finally {
    signal?.removeEventListener("abort", stopOnAbort);
    await writtenBack; // never rejects; the file stays open until its write-back is over
    writer?.abandon();
    staged?.close();
    scratch?.discard();
    if (path !== null && !renamed) removeTemp(rt, path);
  }
}

/**
 * Writes the input to `writer` as it arrives, checking the header as soon as it is in and the
 * length against it throughout; resolves with the header once the input ended where it says.
 */
async function receive(chunks: ChunkReader, writer: TempWriter, signal: AbortSignal | undefined,
  onProgress: ((p: BackupProgress) => void) | undefined): Promise<Header> {
  const head = new Uint8Array(HEADER_BYTES);
  let headLength = 0;
  let header: Header | null = null;
  let limit = Infinity;
  let reported = 0;
  for (;;) {
    signal?.throwIfAborted();
    const bytes = await chunks.next(signal);
    if (bytes === null) break;
    if (header === null) {
      const n = Math.min(bytes.length, HEADER_BYTES - headLength);
      head.set(bytes.subarray(0, n), headLength);
      headLength += n;
      if (!magicSoFar(head.subarray(0, headLength))) throw notADatabase(WHERE);
      if (headLength === HEADER_BYTES) {
        header = parseHeader(head, WHERE);
        if (header.pageCount !== null) limit = header.pageCount * header.pageSize;
      }
    }
    if (writer.size + bytes.length > limit) throw wrongLength(WHERE, writer.size + bytes.length, header!, true);
    writer.append(bytes);
    if (header !== null && onProgress && writer.size - reported >= BUFFER_BYTES) {
      reported = writer.size;
      const pageCount = header.pageCount ?? Math.ceil(writer.size / header.pageSize);
      const remaining = pageCount - Math.floor(writer.size / header.pageSize);
      // remaining 0 is said once, when dest is committed
      if (remaining > 0) onProgress({ remaining, pageCount });
    }
  }
  if (writer.size === 0) throw new SqliteError(`${WHERE}: the stream is empty`, SQLITE_NOTADB);
  if (header === null) {
    throw new SqliteError(`${WHERE}: the stream ends after ${writer.size} bytes, inside the database header: cut short`, SQLITE_CORRUPT);
  }
  const complete = header.pageCount !== null ? writer.size === limit : writer.size % header.pageSize === 0;
  if (!complete) throw wrongLength(WHERE, writer.size, header, false);
  return header;
}

/** PRAGMA quick_check of the staged copy: SQLITE_CORRUPT with its first findings unless "ok". */
function quickCheck(db: Database): void {
  const rows = db.all<{ quick_check: string }>("PRAGMA quick_check(5)");
  if (rows.length === 1 && rows[0]!.quick_check === "ok") return;
  throw new SqliteError(`${WHERE}: the database in the stream is damaged: ${rows.map((r) => r.quick_check).join("; ")}`, SQLITE_CORRUPT);
}

interface ChunkReader {
  /** The next chunk, or null at the end; rejects with signal.reason as soon as it aborts. */
  next(signal: AbortSignal | undefined): Promise<Uint8Array | null>;
  /** Stops reading: the stream is cancelled (an iterator returned) with `reason`. Never throws. */
  stop(reason: unknown): Promise<void>;
}

function readerOf(input: ByteChunks): ChunkReader {
  const i = input as Partial<ReadableStream<Uint8Array>> & Partial<AsyncIterable<Uint8Array>> & Partial<Iterable<Uint8Array>>;
  let stopped = false;
  if (typeof i?.getReader === "function") {
    const reader = i.getReader();
    return {
      next: (signal) => untilAborted(reader.read().then((r) => (r.done ? null : bytesOf(r.value))), signal),
      async stop(reason) {
        if (stopped) return;
        stopped = true;
        await reader.cancel(reason).catch(() => {});
      },
    };
  }
  const it = typeof i?.[Symbol.asyncIterator] === "function" ? i[Symbol.asyncIterator]!()
    : typeof i?.[Symbol.iterator] === "function" ? i[Symbol.iterator]!() : null;
  if (it === null) throw new TypeError("stream must be a ReadableStream or an (async) iterable of Uint8Array chunks");
  let ended = false;
  return {
    next: (signal) => untilAborted(Promise.resolve(it.next()).then((r) => {
      ended = r.done === true;
      return r.done ? null : bytesOf(r.value);
    }), signal),
    async stop() {
      if (stopped || ended) return;
      stopped = true;
      try {
        await it.return?.();
      } catch {
        // the iterator's own cleanup failed: nothing more to do here
      }
    },
  };
}

/** `p`, or a rejection with signal.reason as soon as the signal aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (Object.prototype.toString.call(chunk) === "[object ArrayBuffer]") return new Uint8Array(chunk as ArrayBuffer);
  throw new TypeError(`${WHERE}: a chunk must be a Uint8Array, not ${chunk === null ? "null" : typeof chunk}`);
}
