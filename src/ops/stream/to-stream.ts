// backupToStream(): one committed state of a database as the bytes of a database file, in a Web
// ReadableStream the consumer pulls (nothing is read before it asks, and one chunk at a time).
// Three routes, each a committed state:
// - snapshot: a WAL source whose other writers this runtime sees (real file locks, or
//   verifySource: false) is read page by page (sqlite_dbpage) inside one read transaction of a
//   connection of our own: the writers go on (WAL), the stream holds the snapshot until it ends.
// - held: a rollback-journal file whose other writers wait for our read lock (real file locks,
//   the source guard's OS read lock, or verifySource: false) is read straight from the file
//   while the rest is copied into a spool; the lock goes once the spool holds the rest (held.ts).
// - spool: anything else is first copied into a temporary file (temp.ts), which is then streamed
//   and removed: a rollback-journal file other processes may write unseen by a file copy, kept
//   when the source guard saw none of them write meanwhile (copied.ts); otherwise (an in-memory
//   source, a WAL file, a writer that keeps writing) by backup(), with all its guards.
// This module checks the options and returns the stream; its workings (to-stream-source.ts) are
// imported then, so that apps that never stream do not load them.
import { checkKeys } from "../../core/options.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import { BACKUP_OPTION_KEYS, checkOptions } from "../options.js";
import type { BackupToStreamOptions, StreamProgress } from "./stream-options.js";
import type { StreamSource } from "./to-stream-source.js";

export type { BackupToStreamOptions, StreamProgress };

const DEFAULT_CHUNK_SIZE = 1 << 20;
const OWN_KEYS = ["chunkSize", "onStreamProgress", "tempDir"] as const;
/** destName and incremental concern a destination database, which a stream is not. */
const STREAM_KEYS = [...BACKUP_OPTION_KEYS.filter((k) => k !== "destName" && k !== "incremental"), ...OWN_KEYS];

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

  // The stream's workings (to-stream-source.ts) are imported at once; a read waits for them.
  let body: StreamSource | null = null;
  let cancelled = false;
  const stream: ReadableStream<Uint8Array<ArrayBuffer>> = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start: async (c) => {
      const { StreamSource } = await import("./to-stream-source.js");
      if (!cancelled) body = new StreamSource(rt, source, backupOptions, { chunkSize, onStreamProgress, tempDir }, c, stream);
    },
    pull: (c) => body!.pull(c),
    cancel: () => {
      cancelled = true;
      return body?.cancel();
    },
  }, { highWaterMark: 0 });
  return stream;
}
