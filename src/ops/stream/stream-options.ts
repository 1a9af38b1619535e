// The options of backupToStream() (to-stream.ts), which its workings (to-stream-source.ts) read too.
import type { BackupOptions } from "../options.js";

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
