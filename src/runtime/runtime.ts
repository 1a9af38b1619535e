// One WebAssembly instance: its C exports, its heap, the host bridge with its VFSes and locks,
// and the helpers that turn a result code into a SqliteError. Everything above (the handles,
// the operations, the public Sqlite facade) reaches C through a Runtime; nothing here knows them.
import type { CApi } from "../core/capi.js";
import { SQLITE_DONE, SQLITE_FCNTL_FILE_POINTER, SQLITE_FCNTL_JOURNAL_POINTER, SQLITE_FCNTL_VFS_POINTER, SQLITE_OK, SQLITE_ROW } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { Heap } from "../core/heap.js";
import type { Locking } from "../vfs/lock-layer.js";
import { processLocking } from "../vfs/process-locks.js";
import type { Vfs, VfsFile } from "../vfs/types.js";
import { HostBridge } from "./host.js";

/** Which locks an instance takes, and why (docs/runtimes.md). */
export interface LockingInfo {
  locking: Locking;
  /** e.g. "OFD locks through node:ffi", or why only the in-process table is used. */
  reason: string;
}

/** sqlite3_vfs.zName: after iVersion, szOsFile, mxPathname and pNext (wasm32; asserted in bridge.c). */
const VFS_ZNAME_OFFSET = 16;

export class Runtime {
  /** sqlite3_libversion(), e.g. "3.54.1". */
  readonly version: string;
  readonly capi: CApi;
  readonly heap: Heap;
  readonly host: HostBridge;
  readonly locking: "os" | "process";
  readonly lockingReason: string;

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
    if (rc !== SQLITE_OK) throw this.errorFromCode(rc, "sqlite3_initialize failed");
    this.version = this.heap.cstring(this.capi.sqlite3_libversion())!;
  }

  /** The JS implementation behind a VFS name (the default when undefined). */
  vfs(name?: string): Vfs {
    const vfs = name === undefined ? this.host.vfses[0] : this.host.vfses.find((v) => v.name === name);
    if (!vfs) throw new SqliteError(`no such vfs: ${name}`, 1);
    return vfs;
  }

  /** The host VFS a schema's file is open with, or null (e.g. memory, or a VFS built into C). */
  vfsOf(db: number, schema: string): Vfs | null {
    const { capi, heap } = this;
    return heap.scoped((s) => {
      const pp = s.out();
      if (capi.sqlite3_file_control(db, s.cstring(schema)[0], SQLITE_FCNTL_VFS_POINTER, pp) !== SQLITE_OK) return null;
      const name = heap.cstring(heap.i32(heap.i32(pp) + VFS_ZNAME_OFFSET));
      return this.host.vfses.find((v) => v.name === name) ?? null;
    });
  }

  /**
   * The host file behind a schema's database file, or its journal (the WAL in WAL mode), or null
   * (memory, a VFS built into C, a journal not open).
   */
  fileOf(db: number, schema: string, which: "db" | "journal" = "db"): VfsFile | null {
    const { capi, heap } = this;
    const op = which === "db" ? SQLITE_FCNTL_FILE_POINTER : SQLITE_FCNTL_JOURNAL_POINTER;
    return heap.scoped((s) => {
      const pp = s.out();
      if (capi.sqlite3_file_control(db, s.cstring(schema)[0], op, pp) !== SQLITE_OK) return null;
      return this.host.files.get(heap.i32(pp))?.file ?? null;
    });
  }

  /** The file name of a schema of a connection ("" for memory and temporary databases). */
  filename(db: number, schema: string): string {
    return this.heap.scoped((s) => this.heap.cstring(this.capi.sqlite3_db_filename(db, s.cstring(schema)[0])) ?? "");
  }

  /**
   * Marks the start of a C call whose failure may become a SqliteError: the VFS failure that
   * details it must be one of this call's (see HostBridge.lastError).
   */
  enter(): void {
    this.host.clearError();
  }

  /** An error from a result code, with the VFS's detail when it has one. */
  errorFromCode(rc: number, message?: string): SqliteError {
    const text = message ?? this.heap.cstring(this.capi.sqlite3_errstr(rc)) ?? `error ${rc}`;
    const detail = this.host.lastError;
    return new SqliteError(detail ? `${text} (${detail.message})` : text, rc);
  }

  /** An error from a connection's current error state. */
  errorFromDb(db: number): SqliteError {
    return this.errorFromCode(this.capi.sqlite3_extended_errcode(db), this.heap.cstring(this.capi.sqlite3_errmsg(db))!);
  }

  /**
   * The error of a call that returned `rc` for connection `db`: the connection's own when it
   * recorded one, else rc's (our C code can fail, e.g. on an allocation, without recording any).
   */
  errorFromCall(rc: number, db: number): SqliteError {
    const state = this.capi.sqlite3_extended_errcode(db) & 0xff;
    return state === SQLITE_OK || state === SQLITE_ROW || state === SQLITE_DONE ? this.errorFromCode(rc) : this.errorFromDb(db);
  }
}

/** Instantiates the module with the bridge's import object and returns a ready runtime. */
export async function instantiate(module: WebAssembly.Module, vfses: readonly Vfs[],
  locking: LockingInfo = { locking: processLocking, reason: "this JS realm only (no file locks in this runtime)" }): Promise<Runtime> {
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
  return new Runtime(instance, host, locking.reason);
}
