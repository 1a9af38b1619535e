// The JS half of wasm/bridge.c: the "host" import object. It owns the table of open files
// (sqlite3_file pointer → JS file), applies the lock layer (src/vfs/lock-layer.ts: file locks and
// WAL shared memory) to every VFS, and is the one place where a JS exception turns into a SQLite
// result code, and the one owner of the last VFS failure that details a SqliteError.
import {
  SQLITE_IOERR, SQLITE_IOERR_CHECKRESERVEDLOCK, SQLITE_IOERR_CLOSE, SQLITE_IOERR_DELETE,
  SQLITE_IOERR_FSTAT, SQLITE_IOERR_FSYNC, SQLITE_IOERR_LOCK, SQLITE_IOERR_READ, SQLITE_IOERR_SHMMAP,
  SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_TRUNCATE, SQLITE_IOERR_UNLOCK, SQLITE_IOERR_WRITE,
  SQLITE_CANTOPEN, SQLITE_NOTFOUND, SQLITE_OK, SQLITE_IOERR_ACCESS, SQLITE_IOERR_SHMLOCK,
} from "../core/constants.js";
import { errorCode, VfsError } from "../core/errors.js";
import type { Heap } from "../core/heap.js";
import type { FileLock, Locking, SharedMemory } from "../vfs/lock-layer.js";
import type { Vfs, VfsFile } from "../vfs/types.js";

interface OpenFile {
  readonly vfs: Vfs;
  readonly file: VfsFile;
  readonly lock: FileLock;
  shm: SharedMemory | null;
}

/** Open handles per file identity, over every instance of this realm. */
const openCount = new Map<string, number>();

/** True when a connection of this JS realm (any instance) has the file open. */
export function isOpenInRealm(lockKey: string): boolean {
  return openCount.has(lockKey);
}

/** For a real sleep: Atomics.wait on a word nobody changes (Node, Deno, Bun, workers). */
let sleepWord: Int32Array | null = null;

export interface LastError {
  code: number;
  message: string;
}

export class HostBridge {
  readonly files = new Map<number, OpenFile>();
  #lastError: LastError | null = null;
  heap!: Heap;
  register!: (name: string, id: number, makeDefault: boolean, mxPathname: number) => number;

  constructor(readonly vfses: readonly Vfs[], readonly locking: Locking) {}

  /**
   * The most recent VFS failure since clearError(), for xGetLastError and SqliteError messages.
   * Runtime.enter() clears it before every C call whose error it may detail, so a failure SQLite
   * recovered from earlier never details a later, unrelated error.
   */
  get lastError(): LastError | null {
    return this.#lastError;
  }

  clearError(): void {
    this.#lastError = null;
  }

  /** Records a failure and returns the code SQLite should see. */
  fail(where: string, e: unknown, fallback: number): number {
    const code = errorCode(e, fallback);
    const err = e as { message?: unknown };
    this.#lastError = { code, message: `${where}: ${String(err?.message ?? e)}` };
    return code;
  }

  #file(p: number): OpenFile {
    const f = this.files.get(p);
    if (!f) throw new Error(`unknown sqlite3_file 0x${p.toString(16)}`);
    return f;
  }

  imports(): WebAssembly.ModuleImports {
    const heap = () => this.heap;
    const guard = <A extends unknown[]>(where: string, fallback: number, fn: (...a: A) => number) =>
      (...a: A): number => {
        try {
          return fn(...a);
        } catch (e) {
          return this.fail(where, e, fallback);
        }
      };
    const io = <A extends unknown[]>(where: string, fallback: number, fn: (f: OpenFile, ...a: A) => number) =>
      guard(where, fallback, (p: number, ...a: A) => fn(this.#file(p), ...a));
    const name = (p: number) => heap().cstring(p);

    return {
      osInit: () => {
        for (const [i, vfs] of this.vfses.entries()) {
          const rc = this.register(vfs.name, i, i === 0, vfs.mxPathname);
          if (rc !== SQLITE_OK) return rc;
        }
        return SQLITE_OK;
      },
      xOpen: guard("open", SQLITE_CANTOPEN, (vfsId: number, zName: number, pFile: number, flags: number, pOutFlags: number) => {
        const vfs = this.vfses[vfsId]!;
        const { file, outFlags } = vfs.open(name(zName), flags);
        let lock: FileLock;
        try {
          lock = this.locking.open(file);
        } catch (e) {
          file.close();
          throw e;
        }
        this.files.set(pFile, { vfs, file, lock, shm: null });
        openCount.set(file.lockKey, (openCount.get(file.lockKey) ?? 0) + 1);
        heap().setI32(pOutFlags, outFlags);
        return SQLITE_OK;
      }),
      xDelete: guard("delete", SQLITE_IOERR_DELETE, (vfsId: number, zName: number, syncDir: number) => {
        this.vfses[vfsId]!.delete(name(zName)!, syncDir !== 0);
        return SQLITE_OK;
      }),
      xAccess: guard("access", SQLITE_IOERR_ACCESS, (vfsId: number, zName: number, flags: number, pRes: number) => {
        heap().setI32(pRes, this.vfses[vfsId]!.access(name(zName)!, flags) ? 1 : 0);
        return SQLITE_OK;
      }),
      xFullPathname: guard("fullPathname", SQLITE_CANTOPEN, (vfsId: number, zName: number, nOut: number, zOut: number) => {
        const full = this.vfses[vfsId]!.fullPathname(name(zName)!);
        if (!heap().writeCString(full, zOut, nOut)) throw new VfsError(SQLITE_CANTOPEN, `path too long: ${full}`);
        return SQLITE_OK;
      }),
      xGetLastError: (_vfsId: number, nBuf: number, zBuf: number) => {
        const e = this.#lastError;
        if (e && nBuf > 0) heap().writeCString(e.message.slice(0, Math.floor((nBuf - 1) / 3)), zBuf, nBuf);
        return e?.code ?? 0;
      },
      xRandomness: (n: number, p: number) => {
        crypto.getRandomValues(heap().u8.subarray(p, p + n));
        return n;
      },
      xCurrentTimeMs: () => Date.now(),
      // With real file locks another process can release a lock while we wait, so SQLite's busy
      // handler (PRAGMA busy_timeout) sleeps for real. With the in-process table no connection
      // of this thread can release one meanwhile: return at once (backup() retries asynchronously).
      xSleep: (us: number) => {
        if (this.locking.kind === "os" && us > 0) {
          sleepWord ??= new Int32Array(new SharedArrayBuffer(4));
          Atomics.wait(sleepWord, 0, 0, us / 1000);
        }
        return us;
      },

      xClose: guard("close", SQLITE_IOERR_CLOSE, (p: number) => {
        const f = this.files.get(p);
        if (!f) return SQLITE_OK;
        this.files.delete(p); // whatever happens below, SQLite will not use this file again
        const key = f.file.lockKey;
        const n = openCount.get(key) ?? 1;
        if (n > 1) openCount.set(key, n - 1);
        else openCount.delete(key);
        try {
          f.shm?.close(false);
        } finally {
          f.lock.close();
          f.file.close();
        }
        return SQLITE_OK;
      }),
      xRead: io("read", SQLITE_IOERR_READ, (f, p: number, n: number, off: bigint) => {
        const dst = heap().u8.subarray(p, p + n);
        const got = f.file.read(dst, Number(off));
        if (got < n) {
          dst.fill(0, got); // SQLite relies on the zero fill of a short read
          return SQLITE_IOERR_SHORT_READ;
        }
        return SQLITE_OK;
      }),
      xWrite: io("write", SQLITE_IOERR_WRITE, (f, p: number, n: number, off: bigint) => {
        f.file.write(heap().u8.subarray(p, p + n), Number(off));
        return SQLITE_OK;
      }),
      xTruncate: io("truncate", SQLITE_IOERR_TRUNCATE, (f, size: bigint) => {
        f.file.truncate(Number(size));
        return SQLITE_OK;
      }),
      xSync: io("sync", SQLITE_IOERR_FSYNC, (f, flags: number) => {
        f.file.sync(flags);
        return SQLITE_OK;
      }),
      xFileSize: io("fileSize", SQLITE_IOERR_FSTAT, (f, pSize: number) => {
        heap().setI64(pSize, BigInt(f.file.size()));
        return SQLITE_OK;
      }),
      xLock: io("lock", SQLITE_IOERR_LOCK, (f, level: number) => {
        const rc = f.lock.lock(level);
        if (rc === SQLITE_OK) f.file.lockChanged?.(f.lock.level);
        return rc;
      }),
      xUnlock: io("unlock", SQLITE_IOERR_UNLOCK, (f, level: number) => {
        f.lock.unlock(level);
        f.file.lockChanged?.(f.lock.level);
        return SQLITE_OK;
      }),
      xCheckReservedLock: io("checkReservedLock", SQLITE_IOERR_CHECKRESERVEDLOCK, (f, pRes: number) => {
        heap().setI32(pRes, f.lock.checkReserved() ? 1 : 0);
        return SQLITE_OK;
      }),
      xFileControl: io("fileControl", SQLITE_IOERR, (f, op: number, arg: number) =>
        f.file.fileControl ? f.file.fileControl(op, arg) : SQLITE_NOTFOUND),
      xSectorSize: (p: number) => this.files.get(p)?.file.sectorSize() ?? 4096,
      xDeviceCharacteristics: (p: number) => this.files.get(p)?.file.deviceCharacteristics() ?? 0,
      xShmMap: io("shmMap", SQLITE_IOERR_SHMMAP, (f, region: number, size: number, extend: number, pp: number) => {
        f.shm ??= this.locking.shm(f.file, heap());
        heap().setI32(pp, f.shm.map(region, size, extend !== 0));
        return SQLITE_OK;
      }),
      xShmLock: io("shmLock", SQLITE_IOERR_SHMLOCK, (f, offset: number, n: number, flags: number) => {
        if (!f.shm) return SQLITE_IOERR_SHMLOCK;
        f.file.shmChanged?.();
        return f.shm.lock(offset, n, flags);
      }),
      xShmBarrier: (p: number) => {
        try {
          const f = this.files.get(p);
          f?.file.shmChanged?.();
          f?.shm?.barrier();
        } catch (e) {
          this.fail("shmBarrier", e, SQLITE_IOERR_SHMLOCK); // xShmBarrier returns nothing
        }
      },
      xShmUnmap: io("shmUnmap", SQLITE_IOERR_SHMMAP, (f, deleteFlag: number) => {
        const shm = f.shm;
        f.shm = null;
        shm?.close(deleteFlag !== 0);
        return SQLITE_OK;
      }),
    };
  }
}
