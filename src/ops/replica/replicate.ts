// replicate(): continuous incremental backups of a database into a ReplicaTarget; see
// docs/replicas.md. This module checks the options and returns the Replicator at the call; the
// replicator itself (replicator.ts: the shadow copy, the syncs, the lease, the object format) is
// imported then, so that apps that never replicate do not load it.
import { SQLITE_ERROR } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { checkKeys } from "../../core/options.js";
import { Database } from "../../handles/database.js";
import type { Runtime } from "../../runtime/runtime.js";
import { checkSignal } from "../options.js";
import { plainPath } from "../scratch.js";
import type { Kind } from "./format.js";
import { checkTarget, type ReplicaTarget } from "./target.js";

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
  /** gzip the pages. Default true. */
  compress?: boolean;
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

const KEYS = ["intervalMs", "snapshotIntervalMs", "retentionMs", "encryptionKey", "signal", "onSync", "onError", "compress",
  "shadowPath", "leaseTimeoutMs", "busyTimeoutMs"];
const WHERE = "replicate";

export function replicate(rt: Runtime, source: Database | string, target: ReplicaTarget, options: ReplicateOptions = {}): Replicator {
  checkKeys(options, KEYS, WHERE);
  checkTarget(target, WHERE);
  if (typeof source !== "string" && !(source instanceof Database)) throw new TypeError(`${WHERE}: source must be a Database or a filename`);
  const o = options ?? {};
  const num = (k: keyof ReplicateOptions, v: unknown, min: number) => {
    if (v !== undefined && (typeof v !== "number" || !(v >= min))) throw new TypeError(`${WHERE}: ${k} must be a number >= ${min}`);
  };
  num("intervalMs", o.intervalMs, 1);
  num("snapshotIntervalMs", o.snapshotIntervalMs, 0);
  num("retentionMs", o.retentionMs, 0);
  num("leaseTimeoutMs", o.leaseTimeoutMs, 1);
  num("busyTimeoutMs", o.busyTimeoutMs, 0);
  for (const k of ["onSync", "onError"] as const) if (o[k] !== undefined && typeof o[k] !== "function") throw new TypeError(`${WHERE}: ${k} must be a function`);
  if (o.compress !== undefined && typeof o.compress !== "boolean") throw new TypeError(`${WHERE}: compress must be a boolean`);
  if (o.shadowPath !== undefined && (typeof o.shadowPath !== "string" || !plainPath(o.shadowPath) || o.shadowPath.includes("\0"))) {
    throw new TypeError(`${WHERE}: shadowPath must be a file path`);
  }
  const key = o.encryptionKey;
  if (key !== undefined && !(key instanceof Uint8Array && key.length === 32) && !(typeof CryptoKey !== "undefined" && key instanceof CryptoKey)) {
    throw new TypeError(`${WHERE}: encryptionKey must be an AES-GCM CryptoKey or 32 bytes`);
  }
  checkSignal(o.signal);
  o.signal?.throwIfAborted();
  // What the lease names as the source; a closed Database throws here, at the call.
  const sourceName = typeof source === "string" ? source : rt.filename(source.state.ptr, "main") || "(in memory)";
  const started = import("./replicator.js").then(
    ({ ReplicatorImpl }) => new ReplicatorImpl(rt, source, sourceName, target, o),
    (e: unknown) => {
      const error = new SqliteError(`${WHERE}: ${(e as Error)?.message ?? e}`, SQLITE_ERROR);
      try {
        o.onError?.(error);
      } catch {
        // the application's handler failed: nothing to do here
      }
      throw error;
    },
  );
  return new LoadingReplicator(started);
}

/**
 * The Replicator replicate() returns: each call goes to the replicator once its module is loaded,
 * in the order made. A replicator whose module did not load closes at once; sync() rejects with
 * the cause.
 */
class LoadingReplicator implements Replicator {
  readonly #started: Promise<Replicator>;
  constructor(started: Promise<Replicator>) {
    this.#started = started;
    started.catch(() => {}); // onError heard it; sync() rejects with it
  }

  sync(): Promise<SyncInfo> {
    return this.#started.then((r) => r.sync());
  }

  close(): Promise<void> {
    return this.#started.then((r) => r.close(), () => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
