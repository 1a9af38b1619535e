// The types of replicate() (replicate.ts) and of the replicator it imports (replicator.ts).
import type { SqliteError } from "../../core/errors.js";
import type { Kind } from "./format.js";

export interface ReplicateOptions {
  /** A sync this often when the source changed, ms. Default 1000. */
  intervalMs?: number;
  /** A new full snapshot this often (at the next change), ms. Default 24 h. */
  snapshotIntervalMs?: number;
  /** How far back point-in-time restore reaches, ms: older objects are deleted. Default 24 h. */
  retentionMs?: number;
  /** Encrypts every object (AES-256-GCM): an AES-GCM CryptoKey or its 32 raw bytes. */
  encryptionKey?: CryptoKey | Uint8Array;
  /** Stops the replicator (as close() without a last sync). */
  signal?: AbortSignal;
  /** After every sync that uploaded something. */
  onSync?: (info: SyncInfo) => void;
  /** A sync of the timer failed (it is tried again at the next tick), or the replicator stopped (lost its lease). */
  onError?: (error: SqliteError) => void;
  /**
   * gzip the pages: "deltas" (default) gzips the deltas, whose XORed pages shrink to a few
   * percent, and stores snapshots as they are, which restore several times faster than gzipped
   * ones (inflating is most of a restore's time); true gzips snapshots too (about half the size
   * for text-heavy pages); false gzips nothing.
   */
  compress?: boolean | "deltas";
  /**
   * The local copy of the last synced state (a database file of the default VFS), kept for the
   * next replicator to resume from. Default: beside a file source, `<source>-replica-<tag>`;
   * else a temporary file, removed at close.
   */
  shadowPath?: string;
  /** A lease not renewed this long may be taken over by another replicator, ms. Default max(10 s, 10 × intervalMs). */
  leaseTimeoutMs?: number;
  /** How long a busy source is waited for in a sync. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * The spans of merges, ms, ascending: besides each sync, one object per span holds the pages
   * its syncs changed, so a restore applies one object per span instead of every sync. Default
   * [60 000, 3 600 000] (a minute, an hour); [] uploads no merges.
   */
  mergeLevelsMs?: number[];
}

export interface SyncInfo {
  /** The sync's sequence number: restoreReplica(target, dest, { at: seq }). */
  seq: number;
  /** When the sync read the source: restoreReplica(target, dest, { at: time }) reaches it. */
  time: Date;
  /** What was uploaded; "none": the source had not changed (seq is the last sync's). */
  kind: Kind | "none";
  pageCount: number;
  pageSize: number;
  pagesUploaded: number;
  /** Pages the sync compared with its local copy: every page, or (a WAL source) only those with new WAL frames. */
  pagesCompared: number;
  /** Bytes put to the target (objects and lease). */
  bytesUploaded: number;
  objects: number;
  elapsedMs: number;
}

export interface Replicator extends AsyncDisposable {
  /** A sync now; resolves when it is durable on the target. */
  sync(): Promise<SyncInfo>;
  /** Stops the timer, makes a last sync, releases the lease. Idempotent. */
  close(): Promise<void>;
}
