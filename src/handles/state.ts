// The shared state behind the handles: a connection's, a backup's and a statement's C handle
// with what depends on it, shared by the handle objects and their finalizers. Types only.
import type { SqliteError } from "../core/errors.js";

/** A backup's C handle and what it depends on; shared with Backup and the finalizers. */
export interface BackupState {
  ptr: number;
  source: DbState;
  dest: DbState;
  error: SqliteError | null;
  remaining: number;
  pageCount: number;
  done: boolean;
  /** Why the handle is gone: set by finish(), by close() of either database, or by GC. */
  finishedBy: string | null;
}

/** A connection's C handle and what uses it: close() finishes and finalizes those first. */
export interface DbState {
  ptr: number;
  readonly backups: Set<BackupState>;
  readonly statements: Set<StmtState>;
  /** How many running operations turned the busy handler off, and the timeout they turn back on. */
  busySuspended: number;
  busySaved: number;
}

/** A statement's C handle, shared with its database (close() finalizes it) and the finalizer. */
export interface StmtState {
  ptr: number;
  readonly db: DbState;
  /** Why the handle is gone: set by finalize(), by close() of the database, or by GC. */
  finalizedBy: string | null;
  /** The heap buffer bound text and blobs pass through (0: none yet), and its size. */
  scratch: number;
  scratchSize: number;
}

