// The default VFS in Node and Deno: real files through node:fs. NodeFile reads and writes
// straight between the file and the Uint8Array it is given; open() wraps it in BufferedFile,
// which merges contiguous page writes and reads ahead on sequential scans (one syscall per
// page is where a backup's time went).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  SQLITE_ACCESS_EXISTS, SQLITE_ACCESS_READWRITE, SQLITE_CANTOPEN, SQLITE_IOCAP_POWERSAFE_OVERWRITE,
  SQLITE_IOERR_DELETE_NOENT, SQLITE_IOERR_FSYNC, SQLITE_OPEN_CREATE, SQLITE_OPEN_DELETEONCLOSE, SQLITE_OPEN_EXCLUSIVE,
  SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_MAIN_JOURNAL, SQLITE_OPEN_READONLY, SQLITE_OPEN_READWRITE,
  SQLITE_OPEN_SUPER_JOURNAL, SQLITE_OPEN_WAL, SQLITE_SYNC_DATAONLY,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import { BufferedFile, flushPendingWrites } from "../vfs/buffered.js";
import type { FileWatch, OpenResult, Vfs, VfsFile } from "../vfs/types.js";
import { NodeFileWatch } from "./file-watch.js";

const errno = (e: unknown) => (e as NodeJS.ErrnoException)?.code;
const cantOpen = (name: string, e: unknown) =>
  new VfsError(SQLITE_CANTOPEN, `cannot open ${name}: ${(e as Error).message}`);

/** fsync a directory so that a created or deleted journal's name is durable (as os_unix.c). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    // Some file systems refuse fsync on directories; os_unix.c ignores that too.
    if (!["EINVAL", "EISDIR", "EBADF", "EPERM", "EACCES"].includes(errno(e) ?? "")) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Files with writes no sync has covered yet: what NodeFsVfs.writeBack() syncs. */
const unsynced = new Set<NodeFile>();
/**
 * Write-behind: after this many bytes written to a database, journal or WAL, an fdatasync starts
 * in libuv's thread pool, so the disk works while SQLite goes on and the final sync has little
 * left. 330 MiB file -> file backup (docs/performance.md "Why ~4 ms steps"): 248-269 ms without,
 * 196-261 ms at 16 MiB.
 */
const WRITE_BEHIND_BYTES = 16 << 20;
/** Write-backs under way (write-behind's too): NodeFsVfs.writeBack() waits for them as well. */
const running = new Set<Promise<void>>();

class NodeFile implements VfsFile {
  /** Set for a journal or WAL this open created: its directory is synced at the first sync. */
  #dirToSync: string | null;
  /** A failed write-back: the kernel reports an I/O error to one fsync only, so sync() must throw it. */
  #writeBackError: unknown = null;
  #sinceWriteBack = 0;
  #writeBacksRunning = 0;

  constructor(
    readonly fd: number,
    readonly lockKey: string,
    dirToSync: string | null,
    /** Write-behind for files that persist (temporary files may never need to reach the disk). */
    readonly writeBehind: boolean,
  ) {
    this.#dirToSync = dirToSync;
  }

  close(): void {
    unsynced.delete(this);
    fs.closeSync(this.fd);
  }

  /** fdatasync in libuv's thread pool; never rejects (a failure is kept for the next sync()). */
  writeBack(): Promise<void> {
    unsynced.delete(this); // writes from now on need another write-back
    this.#sinceWriteBack = 0;
    this.#writeBacksRunning++;
    const done: Promise<void> = new Promise((resolve) =>
      fs.fdatasync(this.fd, (e) => {
        if (e) this.#writeBackError ??= e;
        this.#writeBacksRunning--;
        running.delete(done);
        resolve();
      }));
    running.add(done);
    return done;
  }

  read(dst: Uint8Array, offset: number): number {
    let n = 0;
    while (n < dst.length) {
      const got = fs.readSync(this.fd, dst, n, dst.length - n, offset + n);
      if (got === 0) break;
      n += got;
    }
    return n;
  }

  readonly readAsync = (dst: Uint8Array, offset: number): Promise<number> =>
    new Promise((resolve, reject) => {
      let n = 0;
      const more = () => {
        try {
          fs.read(this.fd, dst, n, dst.length - n, offset + n, (e, got) => {
            // A view of WASM memory that grew meanwhile is detached (length 0): it ends here.
            if (e) reject(e);
            else if (got === 0 || (n += got) >= dst.length) resolve(n);
            else more();
          });
        } catch (e) {
          reject(e);
        }
      };
      more();
    });

  write(src: Uint8Array, offset: number): void {
    let n = 0;
    while (n < src.length) n += fs.writeSync(this.fd, src, n, src.length - n, offset + n);
    unsynced.add(this);
    this.#sinceWriteBack += n;
    // One at a time per file: its callback cannot run while SQLite holds this thread anyway.
    if (this.writeBehind && this.#sinceWriteBack >= WRITE_BEHIND_BYTES && this.#writeBacksRunning === 0) void this.writeBack();
  }

  truncate(size: number): void {
    fs.ftruncateSync(this.fd, size);
    unsynced.add(this);
  }

  sync(flags: number): void {
    if (this.#writeBackError !== null) {
      const e = this.#writeBackError;
      this.#writeBackError = null;
      throw new VfsError(SQLITE_IOERR_FSYNC, `write-back of ${this.lockKey} failed: ${(e as Error).message}`);
    }
    if (flags & SQLITE_SYNC_DATAONLY) fs.fdatasyncSync(this.fd);
    else fs.fsyncSync(this.fd);
    unsynced.delete(this);
    if (this.#dirToSync !== null) {
      syncDirectory(this.#dirToSync);
      this.#dirToSync = null;
    }
  }

  size(): number {
    return fs.fstatSync(this.fd).size;
  }

  sectorSize(): number {
    return 4096;
  }

  deviceCharacteristics(): number {
    // The same assumption os_unix.c makes by default.
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
  }
}

let tempCounter = 0;

export class NodeFsVfs implements Vfs {
  readonly name = "node-fs";
  readonly mxPathname = 1024;

  open(name: string | null, flags: number): OpenResult {
    const file = name ?? path.join(os.tmpdir(), `sbw-${process.pid}-${++tempCounter}-${Date.now()}.tmp`);
    const rw = (flags & SQLITE_OPEN_READWRITE) !== 0;
    let oflags = rw ? fs.constants.O_RDWR : fs.constants.O_RDONLY;
    if (flags & SQLITE_OPEN_CREATE) oflags |= fs.constants.O_CREAT;
    if (flags & SQLITE_OPEN_EXCLUSIVE || name === null) oflags |= fs.constants.O_EXCL;
    let fd: number;
    let outFlags = flags;
    try {
      fd = fs.openSync(file, oflags, 0o644);
    } catch (e) {
      // Like os_unix.c: a database we may not write is opened read-only, and SQLite is told so.
      const denied = ["EACCES", "EPERM", "EROFS"].includes(errno(e) ?? "");
      if (!(rw && denied && flags & SQLITE_OPEN_MAIN_DB)) throw cantOpen(file, e);
      try {
        fd = fs.openSync(file, fs.constants.O_RDONLY);
      } catch (e2) {
        // A file that does not exist could not be made: the first error says why (EROFS, EACCES).
        throw cantOpen(file, errno(e2) === "ENOENT" ? e : e2);
      }
      outFlags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    }
    try {
      if (flags & SQLITE_OPEN_DELETEONCLOSE || name === null) fs.unlinkSync(file); // gone even after a crash
      const key = name === null ? file : fs.realpathSync(file);
      const created = (flags & SQLITE_OPEN_CREATE) !== 0 &&
        (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL)) !== 0;
      const persistent = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL)) !== 0 && name !== null;
      return { file: new BufferedFile(new NodeFile(fd, key, created ? path.dirname(key) : null, persistent)), outFlags };
    } catch (e) {
      fs.closeSync(fd);
      throw cantOpen(file, e);
    }
  }

  delete(name: string, syncDir: boolean): void {
    flushPendingWrites(); // deleting a journal commits: buffered database pages must land first
    try {
      fs.unlinkSync(name);
    } catch (e) {
      if (errno(e) === "ENOENT") throw new VfsError(SQLITE_IOERR_DELETE_NOENT, `${name} does not exist`);
      throw e;
    }
    if (syncDir) syncDirectory(path.dirname(name));
  }

  access(name: string, flags: number): boolean {
    flushPendingWrites(); // e.g. a hot-journal check must see the journal's real size
    if (flags === SQLITE_ACCESS_EXISTS) {
      const st = fs.statSync(name, { throwIfNoEntry: false });
      // An empty journal is not a hot journal: os_unix.c reports it as absent, and so do we.
      return st !== undefined && (!st.isFile() || st.size > 0);
    }
    try {
      fs.accessSync(name, flags === SQLITE_ACCESS_READWRITE ? fs.constants.W_OK | fs.constants.R_OK : fs.constants.R_OK);
      return true;
    } catch (e) {
      // "No" is an errno; anything else (e.g. Deno without --allow-sys) must not read as "absent",
      // or a failed backup() would think it created a file that was there before.
      if (["ENOENT", "EACCES", "EPERM", "EROFS", "ENOTDIR"].includes(errno(e) ?? "")) return false;
      throw e;
    }
  }

  fullPathname(name: string): string {
    return path.resolve(name);
  }

  watch(name: string): FileWatch {
    return new NodeFileWatch(name);
  }

  fileId(name: string): string | null {
    const st = fs.statSync(name, { throwIfNoEntry: false, bigint: true });
    return st === undefined ? null : `${st.dev}:${st.ino}`;
  }

  /**
   * Syncs every file with unsynced writes in the thread pool: the event loop stays free. Also
   * waits for a write-behind already under way, which covers writes no file lists as unsynced
   * any more (without that, the commit's own sync sometimes started while one still ran).
   */
  async writeBack(): Promise<void> {
    flushPendingWrites();
    for (const f of [...unsynced]) void f.writeBack();
    await Promise.all([...running]);
  }
}
