// One WebAssembly instance: its heap, its VFSes, and the factory for databases and backups.
import type { CApi } from "./capi.js";
import { Backup } from "./backup.js";
import { runBackup, type BackupOptions, type BackupResult } from "./backup-loop.js";
import { SQLITE_OK } from "./constants.js";
import { Database, type OpenOptions } from "./database.js";
import { SqliteError } from "./errors.js";
import { Heap } from "./heap.js";
import { HostBridge } from "./vfs/host.js";
import type { Locking } from "./vfs/lock-layer.js";
import { processLocking } from "./vfs/locks.js";
import type { Vfs } from "./vfs/types.js";

/** Which locks an instance takes, and why (see README "Locking"). */
export interface LockingInfo {
  locking: Locking;
  /** e.g. "OFD locks through node:ffi", or why only the in-process table is used. */
  reason: string;
}

export class Sqlite {
  /** sqlite3_libversion(), e.g. "3.54.1". */
  readonly version: string;
  /** @internal */ readonly capi: CApi;
  /** @internal */ readonly heap: Heap;
  /** @internal */ readonly host: HostBridge;
  /**
   * "os": SQLite's file locks are real OFD locks and the WAL-index is the real -shm file, so
   * native SQLite processes and this one see each other. "process": locks and WAL-index exist
   * only inside this JS realm (no FFI here); see `lockingReason`.
   */
  readonly locking: "os" | "process";
  /** Why `locking` is what it is, e.g. "OFD locks through node:ffi". */
  readonly lockingReason: string;

  /** @internal Use loadSqlite(). */
  constructor(instance: WebAssembly.Instance, host: HostBridge, lockingReason: string) {
    this.locking = host.locking.kind;
    this.lockingReason = lockingReason;
    this.capi = instance.exports as unknown as CApi;
    this.heap = new Heap(this.capi);
    this.host = host;
    host.heap = this.heap;
    host.register = (name, id, makeDefault, mxPathname) =>
      this.heap.scoped((s) => this.capi.sbw_vfs_register(s.cstring(name)[0], id, makeDefault ? 1 : 0, mxPathname));
    this.capi._initialize(); // emscripten's reactor entry: libc constructors
    const rc = this.capi.sqlite3_initialize();
    if (rc !== SQLITE_OK) throw new SqliteError(`sqlite3_initialize failed: ${this.host.lastError?.message ?? rc}`, rc);
    this.version = this.heap.cstring(this.capi.sqlite3_libversion())!;
  }

  /** Registered VFS names, the default first. */
  get vfsNames(): string[] {
    return this.host.vfses.map((v) => v.name);
  }

  /** @internal The JS implementation behind a VFS name (default when undefined). */
  vfs(name?: string): Vfs {
    const vfs = name === undefined ? this.host.vfses[0] : this.host.vfses.find((v) => v.name === name);
    if (!vfs) throw new SqliteError(`no such vfs: ${name}`, 1);
    return vfs;
  }

  open(filename: string, options?: OpenOptions): Database {
    return new Database(this, filename, options);
  }

  /** sqlite3_backup_init(D, N, S, M): destination first, as in C. */
  backupInit(dest: Database, destName: string, source: Database, sourceName: string): Backup {
    return new Backup(this, dest, destName, source, sourceName);
  }

  /** Copies source into dest (a Database or a filename) step by step; see BackupOptions. */
  backup(source: Database, dest: Database | string, options?: BackupOptions): Promise<BackupResult> {
    return runBackup(this, source, dest, options);
  }

  /** sqlite3_memory_used(): bytes SQLite (and this wrapper) have allocated in the heap. */
  memoryUsed(): number {
    return Number(this.capi.sqlite3_memory_used());
  }

  /** @internal An error from a result code, with the VFS's detail when it has one. */
  errorFromCode(rc: number, message?: string): SqliteError {
    const text = message ?? this.heap.cstring(this.capi.sqlite3_errstr(rc)) ?? `error ${rc}`;
    const detail = this.host.lastError;
    return new SqliteError(detail ? `${text} (${detail.message})` : text, rc);
  }

  /** @internal An error from a connection's current error state. */
  errorFromDb(db: number): SqliteError {
    return this.errorFromCode(this.capi.sqlite3_extended_errcode(db), this.heap.cstring(this.capi.sqlite3_errmsg(db))!);
  }
}

/** Instantiates the module with our import object and returns a ready instance. */
export async function instantiate(module: WebAssembly.Module, vfses: readonly Vfs[],
  locking: LockingInfo = { locking: processLocking, reason: "this JS realm only (no file locks in this runtime)" }): Promise<Sqlite> {
  const host = new HostBridge(vfses, locking.locking);
  let memory: WebAssembly.Memory | undefined;
  const imports: WebAssembly.Imports = {
    host: host.imports(),
    env: {
      // The standalone sbrk grows the heap by just what one allocation lacks (64 KiB steps), and
      // each grow is costly in the engine: a 330 MiB restore into memory spent ~70% of its time
      // there. Top each grow up to 1/8 of the heap (at least 16 MiB); untouched pages cost no RSS.
      // The Heap refreshes its views lazily.
      emscripten_notify_memory_growth: () => {
        const pages = memory!.buffer.byteLength >>> 16;
        try {
          memory!.grow(Math.max(256, pages >>> 3));
        } catch {
          // at the maximum size: the exact grow that just happened is all there is
        }
      },
    },
    wasi_snapshot_preview1: {
      // libc asks for the environment; the module gets an empty one.
      environ_sizes_get: (pCount: number, pSize: number) => {
        const dv = new DataView(memory!.buffer);
        dv.setInt32(pCount, 0, true);
        dv.setInt32(pSize, 0, true);
        return 0;
      },
      environ_get: () => 0,
    },
  };
  const instance = await WebAssembly.instantiate(module, imports);
  memory = instance.exports.memory as WebAssembly.Memory;
  return new Sqlite(instance, host, locking.reason);
}
