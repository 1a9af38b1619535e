// The public face of one SQLite instance: the factory for databases and backups, and the
// operations (backup(), verify()). It holds a Runtime (src/runtime/) and adds nothing of its own.
// The operations few apps use (streams, replicas, verify) are imported when first called, so that
// a browser app's bundle loads them only then: backupToStream() and replicate() check their
// options and return their stream or Replicator at the call, and import the rest meanwhile.
import type { BackupOptions, BackupResult } from "./ops/options.js";
import { Backup } from "./handles/backup.js";
import { Database, deserializeDatabase, type DeserializeOptions, type OpenOptions } from "./handles/database.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "./core/options.js";
import { backup } from "./ops/backup.js";
import type { ByteChunks, RestoreFromStreamOptions } from "./ops/stream/from-stream.js";
import { backupToStream, type BackupToStreamOptions } from "./ops/stream/to-stream.js";
import { replicate, type ReplicateOptions, type Replicator } from "./ops/replica/replicate.js";
import type { ReplicaVerifyResult, RestoreReplicaOptions, RestoreResult, VerifyReplicaOptions } from "./ops/replica/restore.js";
import type { ReplicaTarget } from "./ops/replica/target.js";
import type { VerifyResult } from "./ops/verify.js";
import type { Runtime } from "./runtime/runtime.js";

export class Sqlite {
  /** @internal */ readonly runtime: Runtime;

  /** @internal Use loadSqlite(). */
  constructor(runtime: Runtime) {
    this.runtime = runtime;
  }

  /** sqlite3_libversion(), e.g. "3.54.1". */
  get version(): string {
    return this.runtime.version;
  }

  /**
   * "os": SQLite's file locks are real OFD locks and the WAL-index is the real -shm file, so
   * native SQLite processes and this one see each other. "process": locks and WAL-index exist
   * only inside this JS realm (no FFI here); see `lockingReason`.
   */
  get locking(): "os" | "process" {
    return this.runtime.locking;
  }

  /** Why `locking` is what it is, e.g. "OFD locks through node:ffi". */
  get lockingReason(): string {
    return this.runtime.lockingReason;
  }

  /** Registered VFS names, the default first. */
  get vfsNames(): string[] {
    return this.runtime.host.vfses.map((v) => v.name);
  }

  /** Opens a database file (or ":memory:", or a file: URI); see OpenOptions and docs/database.md. */
  open(filename: string, options?: OpenOptions): Database {
    if (options === null || (options !== undefined && typeof options !== "object")) return new Database(this.runtime, filename, options); // its TypeError
    return new Database(this.runtime, filename, { ...options, busyTimeoutMs: options?.busyTimeoutMs === undefined ? DEFAULT_BUSY_TIMEOUT_MS : options.busyTimeoutMs });
  }

  /**
   * A new in-memory Database whose content is the database file image `data` (a file the user
   * picked, serialize()'s output, sql.js's export()). The bytes are copied: later changes to
   * either side do not reach the other. SQLITE_NOTADB when the bytes are not a database.
   */
  deserialize(data: ArrayBufferLike | ArrayBufferView, options?: DeserializeOptions): Database {
    return deserializeDatabase(this.runtime, data, options);
  }

  /** sqlite3_backup_init(D, N, S, M): destination first, as in C. */
  backupInit(dest: Database, destName: string, source: Database, sourceName: string): Backup {
    return new Backup(this.runtime, dest, destName, source, sourceName);
  }

  /** Copies source into dest (a Database or a filename) step by step; see BackupOptions. */
  backup(source: Database, dest: Database | string, options?: BackupOptions): Promise<BackupResult> {
    return backup(this.runtime, source, dest, options);
  }

  /**
   * One committed state of `source` as the bytes of a database file (what backup() into a new
   * file holds), in a stream the consumer pulls chunk by chunk: nothing is read before it asks,
   * and memory stays bounded whatever the size. A failure or an abort errors the stream (never a
   * clean end after part of the copy); cancelling it releases everything at once. A WAL source
   * this runtime can lock is read from a snapshot as the consumer pulls; any other source is
   * first copied into a temporary file (options.tempDir, default os.tmpdir(); the in-memory VFS
   * in browsers) that takes the database's size. See docs/streams.md.
   */
  backupToStream(source: Database, options?: BackupToStreamOptions): ReadableStream<Uint8Array<ArrayBuffer>> {
    return backupToStream(this.runtime, source, options);
  }

  /**
   * Makes the database file in `stream` (a ReadableStream or an (async) iterable of Uint8Array
   * chunks) the content of `dest` (a filename or an open Database), atomically: until the whole
   * stream has arrived, agrees with its header and passes PRAGMA quick_check, dest is untouched;
   * a stream that is cut short, too long or not a database rejects with a SqliteError
   * (SQLITE_CORRUPT, SQLITE_NOTADB) and leaves no temporary file. See docs/streams.md.
   */
  async restoreFromStream(stream: ByteChunks, dest: Database | string, options?: RestoreFromStreamOptions): Promise<BackupResult> {
    const { restoreFromStream } = await import("./ops/stream/from-stream.js");
    return restoreFromStream(this.runtime, stream, dest, options);
  }

  /**
   * Replicates `source` (a Database, or a filename opened and closed by the replicator) into
   * `target` continuously: a sync every intervalMs when it changed, each uploading only the pages
   * that changed since the last (a full snapshot at first and every snapshotIntervalMs), as
   * immutable, checksummed and chained objects; see ReplicateOptions and docs/replicas.md.
   */
  replicate(source: Database | string, target: ReplicaTarget, options?: ReplicateOptions): Replicator {
    return replicate(this.runtime, source, target, options);
  }

  /**
   * Makes the state of one sync in `target` (default: the last; options.at a Date or a seq) the
   * content of `dest`, atomically, after every object's checksums, the chain and PRAGMA
   * integrity_check passed. A replica that cannot prove the state rejects with a SqliteError
   * (SQLITE_CORRUPT; SQLITE_AUTH for a wrong key) and leaves dest as it was.
   */
  async restoreReplica(target: ReplicaTarget, dest: Database | string, options?: RestoreReplicaOptions): Promise<RestoreResult> {
    const { restoreReplica } = await import("./ops/replica/restore.js");
    return restoreReplica(this.runtime, target, dest, options);
  }

  /**
   * Restores a sync of `target` into a temporary file and checks it: every checksum and the
   * chain (a SqliteError when they fail, as in restoreReplica), the database hash the sync
   * recorded, and PRAGMA integrity_check (`ok`, `integrity`).
   */
  async verifyReplica(target: ReplicaTarget, options?: VerifyReplicaOptions): Promise<ReplicaVerifyResult> {
    const { verifyReplica } = await import("./ops/replica/restore.js");
    return verifyReplica(this.runtime, target, options);
  }

  /**
   * Checks that `copy` passes PRAGMA integrity_check and holds the same header values, schema
   * and rows as `source`, table by table (what the CLI's verify does). Changes neither.
   */
  async verify(source: Database, copy: Database): Promise<VerifyResult> {
    const { verify } = await import("./ops/verify.js");
    return verify(source, copy);
  }

  /** sqlite3_memory_used(): bytes SQLite (and this wrapper) have allocated in the heap. */
  memoryUsed(): number {
    return Number(this.runtime.capi.sqlite3_memory_used());
  }
}
