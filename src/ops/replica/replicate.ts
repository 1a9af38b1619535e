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
import type { ReplicateOptions, Replicator, SyncInfo } from "./replicate-options.js";
import { checkTarget, type ReplicaTarget } from "./target.js";

export type { ReplicateOptions, Replicator, SyncInfo };

const KEYS = ["intervalMs", "snapshotIntervalMs", "retentionMs", "encryptionKey", "signal", "onSync", "onError", "compress",
  "shadowPath", "leaseTimeoutMs", "busyTimeoutMs", "mergeLevelsMs"];
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
  if (o.compress !== undefined && typeof o.compress !== "boolean" && o.compress !== "deltas") throw new TypeError(`${WHERE}: compress must be a boolean or "deltas"`);
  const levels = o.mergeLevelsMs;
  if (levels !== undefined && !(Array.isArray(levels) && levels.length <= 4 && levels.every((v, i) => typeof v === "number" && v >= 1 && Number.isFinite(v) && (i === 0 || v > levels[i - 1]!)))) {
    throw new TypeError(`${WHERE}: mergeLevelsMs must be up to 4 ascending numbers >= 1 (ms)`);
  }
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
