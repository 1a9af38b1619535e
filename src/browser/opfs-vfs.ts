// OPFS VFS for dedicated Workers: real files in the Origin Private File System, read and written
// through FileSystemSyncAccessHandle. Handles can only be created asynchronously, so
// OpfsVfs.prepare() opens them before sqlite3_open (the database, its rollback journal and its
// WAL); SQLite's synchronous calls then find them in a table.
// The handle is exclusive per file across tabs and workers, so one shared handle per path serves
// every connection of this worker, and the lock layer (applied by src/runtime/host.ts) orders
// those connections. Read-only handles ({ mode: "read-only" }) are shared across contexts where
// the browser has them; where it ignores the mode (Firefox: every handle is exclusive), a
// read-only open that finds the file's handle taken reads a snapshot of it (getFile() and
// FileReaderSync) instead: under the file's shared Web Lock nobody writes it meanwhile.
//
// Deleting a journal truncates it to 0 bytes instead of removing it: the handle stays open for
// the next transaction, and access(EXISTS) reports an empty file as absent (as os_unix.c does
// for an empty hot-journal candidate), so an empty journal is never mistaken for a hot one.
//
// OPFS costs per call, not per byte (4 KiB writes ~6 MiB/s, 1 MiB writes ~200 MiB/s): every open
// file is wrapped in BufferedFile (src/vfs/buffered.ts), which merges contiguous writes and reads
// ahead on sequential scans with the same ordering rules as for Node's files.
import {
  SQLITE_ACCESS_EXISTS, SQLITE_ACCESS_READWRITE, SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_FULL,
  SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN, SQLITE_IOERR_DELETE_NOENT,
  SQLITE_IOERR_FSTAT, SQLITE_IOERR_FSYNC, SQLITE_IOERR_READ, SQLITE_IOERR_TRUNCATE, SQLITE_IOERR_WRITE, SQLITE_READONLY,
  SQLITE_OPEN_CREATE, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READONLY, SQLITE_OPEN_READWRITE,
  SQLITE_OPEN_SUBJOURNAL, SQLITE_OPEN_TEMP_DB, SQLITE_OPEN_WAL, SQLITE_OPEN_TEMP_JOURNAL, SQLITE_OPEN_TRANSIENT_DB,
} from "../core/constants.js";
import { errorCode, SqliteError, VfsError } from "../core/errors.js";
import { DEFAULT_BUSY_TIMEOUT_MS } from "../core/options.js";
import { BufferedFile, flushPendingWrites } from "../vfs/buffered.js";
import { MemoryVfs } from "../vfs/memory.js";
import type { OpenResult, Vfs, VfsFile } from "../vfs/types.js";
import {
  errorText, opfsDirectory, splitOpfsPath, type OpfsFileHandle, type SyncAccessHandle,
} from "./dom.js";
import { lockOpfsFile, type HeldLock } from "./web-locks.js";

export interface OpfsVfsOptions {
  /** Bytes of contiguous writes gathered into one OPFS write; 0 writes each call through. Default 1 MiB, near OPFS's best rate. */
  writeBuffer?: number;
  /** Largest read-ahead on sequential reads (it starts at 64 KiB and doubles); 0 turns it off. Default 1 MiB. */
  readAhead?: number;
}

/** Whether this browser honours createSyncAccessHandle({ mode }) (Firefox ignores it: every handle is exclusive). */
function syncHandleModes(): boolean {
  const sah = (globalThis as { FileSystemSyncAccessHandle?: { prototype: object } }).FileSystemSyncAccessHandle;
  return sah !== undefined && "mode" in sah.prototype;
}

/**
 * A read-only stand-in for a sync access handle: reads of a File snapshot through FileReaderSync
 * (dedicated workers have it). Valid while nobody writes the file: the caller holds its shared
 * Web Lock.
 */
function snapshotHandle(file: File, path: string): SyncAccessHandle {
  const reader = new (globalThis as unknown as { FileReaderSync: new () => { readAsArrayBuffer(blob: Blob): ArrayBuffer } }).FileReaderSync();
  const refuse = (): never => {
    throw new DOMException(`${path} is open read-only (a snapshot)`, "NoModificationAllowedError");
  };
  return {
    read(buffer, options) {
      const at = options?.at ?? 0;
      if (at >= file.size) return 0;
      const bytes = new Uint8Array(reader.readAsArrayBuffer(file.slice(at, at + buffer.length)));
      buffer.set(bytes);
      return bytes.length;
    },
    write: refuse,
    truncate: refuse,
    getSize: () => file.size,
    flush() {},
    close() {},
  };
}

/** Rethrows an OPFS failure as the VfsError SQLite should see. */
function rethrow(e: unknown, path: string, fallback: number): never {
  if (e instanceof VfsError) throw e;
  throw new VfsError(errorCode(e, fallback), `${path}: ${errorText(e)}`);
}

/** One OPFS file's sync access handle, shared by every open of that path in this worker. */
class SharedHandle {
  refs = 0;
  /** Set by xDelete: the file is logically gone (empty) until opened with CREATE again. */
  deleted = false;
  /** A main database's Web Lock (web-locks.ts), let go once the handle is closed. */
  lock: HeldLock | null = null;

  constructor(readonly path: string, readonly sah: SyncAccessHandle, readonly readonly: boolean) {}

  read(dst: Uint8Array, offset: number): number {
    try {
      let n = 0;
      while (n < dst.length) {
        const got = this.sah.read(dst.subarray(n), { at: offset + n });
        if (got <= 0) break;
        n += got;
      }
      return n;
    } catch (e) {
      rethrow(e, this.path, SQLITE_IOERR_READ);
    }
  }

  write(src: Uint8Array, offset: number): void {
    if (this.readonly) throw new VfsError(SQLITE_READONLY, `${this.path} is read-only`);
    try {
      let n = 0;
      while (n < src.length) {
        const put = this.sah.write(src.subarray(n), { at: offset + n });
        if (put <= 0) throw new VfsError(SQLITE_FULL, `${this.path}: short write (storage full?)`);
        n += put;
      }
    } catch (e) {
      rethrow(e, this.path, SQLITE_IOERR_WRITE);
    }
  }

  truncate(size: number): void {
    try {
      this.sah.truncate(size);
    } catch (e) {
      rethrow(e, this.path, SQLITE_IOERR_TRUNCATE);
    }
  }

  size(): number {
    try {
      return this.sah.getSize();
    } catch (e) {
      rethrow(e, this.path, SQLITE_IOERR_FSTAT);
    }
  }

  sync(): void {
    try {
      this.sah.flush();
    } catch (e) {
      rethrow(e, this.path, SQLITE_IOERR_FSYNC);
    }
  }

  /** xDelete: empty the file durably (the commit point of DELETE-mode journals). */
  markDeleted(): void {
    this.truncate(0);
    this.sync();
    this.deleted = true;
  }

  close(): void {
    try {
      this.sah.close();
    } finally {
      this.lock?.release();
    }
  }
}

class OpfsFile implements VfsFile {
  readonly lockKey: string;
  #closed = false;

  /** companions: the journal/WAL handles a main database keeps open for as long as it is open. */
  constructor(readonly h: SharedHandle, readonly companions: readonly SharedHandle[], readonly release: (h: SharedHandle) => void) {
    this.lockKey = `opfs:${h.path}`;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [this.h, ...this.companions]) this.release(c);
  }
  read(dst: Uint8Array, offset: number): number {
    return this.h.read(dst, offset);
  }
  write(src: Uint8Array, offset: number): void {
    this.h.write(src, offset);
  }
  truncate(size: number): void {
    this.h.truncate(size);
  }
  sync(): void {
    this.h.sync();
  }
  size(): number {
    return this.h.size();
  }
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN;
  }
}

export interface OpfsPrepareOptions {
  readonly?: boolean;
  create?: boolean;
  /** How long to wait for another tab or worker to let go of the file. Default 5000. */
  busyTimeoutMs?: number;
}

/** Keeps prepared handles open until sqlite3_open has taken its own references. */
export interface OpfsPin {
  readonly path: string;
  release(): void;
}

const TEMP_FILES = SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TRANSIENT_DB;

export class OpfsVfs implements Vfs {
  readonly mxPathname = 1024;
  /** Sync access handles are exclusive: no other tab or worker writes a file this worker has open. */
  readonly exclusive = true;
  readonly #handles = new Map<string, SharedHandle>();
  readonly #opening = new Map<string, Promise<SharedHandle | null>>();
  /** The prepare() calls per path, one after the other: the first takes the Web Lock, later ones share its handles. */
  readonly #preparing = new Map<string, Promise<unknown>>();
  /** Temporary files (sort spills, statement journals) stay in memory. */
  readonly #temp = new MemoryVfs("opfs-temp");

  readonly #buffers: { maxWrite?: number; maxReadAhead?: number };

  constructor(readonly name = "opfs", options: OpfsVfsOptions = {}) {
    this.#buffers = { maxWrite: options.writeBuffer, maxReadAhead: options.readAhead };
  }

  /**
   * Opens the sync access handles a database at `path` needs (itself, its journal, its WAL),
   * under the file's Web Lock (exclusive, or shared when read-only) when this worker does not
   * have it open yet. Throws SqliteError: SQLITE_BUSY when another tab or worker keeps the file
   * for longer than busyTimeoutMs, SQLITE_CANTOPEN when it is missing and create is false.
   */
  async prepare(path: string, options: OpfsPrepareOptions = {}): Promise<OpfsPin> {
    const { full } = splitOpfsPath(path);
    const before = this.#preparing.get(full) ?? Promise.resolve();
    const mine = before.catch(() => {}).then(() => this.#prepare(path, options));
    this.#preparing.set(full, mine);
    try {
      return await mine;
    } finally {
      if (this.#preparing.get(full) === mine) this.#preparing.delete(full);
    }
  }

  async #prepare(path: string, options: OpfsPrepareOptions): Promise<OpfsPin> {
    const { dirs, name, full } = splitOpfsPath(path);
    const readonly = options.readonly === true;
    const create = !readonly && options.create !== false;
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const held: SharedHandle[] = [];
    const release = () => {
      for (const h of held.splice(0)) this.#release(h);
    };
    let lock: HeldLock | null = null;
    try {
      const dir = await opfsDirectory(dirs, create).catch((e) => {
        throw new SqliteError(`cannot open ${full}: ${errorText(e)}`, errorCode(e, SQLITE_CANTOPEN));
      });
      // No await between this check and #acquire taking its reference on an existing handle,
      // so that handle (and the lock it carries) cannot close in between.
      if (!this.#handles.has(full)) lock = await lockOpfsFile(full, readonly ? "shared" : "exclusive", "openOpfs", busyTimeoutMs);
      const deadline = performance.now() + busyTimeoutMs;
      const db = await this.#acquire(dir, name, full, readonly, create, deadline);
      if (!db) throw new SqliteError(`cannot open ${full}: no such file`, SQLITE_CANTOPEN);
      held.push(db);
      if (lock) {
        db.lock = lock; // from now on closing the handle lets the lock go
        lock = null;
      }
      // Both companions, whatever the header says: SQLite opens the WAL whenever a non-empty
      // -wal exists, and PRAGMA journal_mode switches on an open connection need the other
      // file at once, in a synchronous xOpen that cannot create a handle. A read-only open
      // leaves a missing file missing rather than creating it. The two are opened at once
      // (creating a sync access handle is an asynchronous round trip of a few ms).
      const sides = await Promise.allSettled(["-journal", "-wal"].map((suffix) =>
        this.#acquire(dir, name + suffix, full + suffix, readonly, !readonly, deadline)));
      for (const side of sides) if (side.status === "fulfilled" && side.value) held.push(side.value);
      const failed = sides.find((side) => side.status === "rejected");
      if (failed) throw failed.reason;
      return { path: full, release };
    } catch (e) {
      release();
      lock?.release();
      throw e;
    }
  }

  /** Takes a reference on the shared handle for a path, opening it if needed; null if missing. */
  async #acquire(dir: FileSystemDirectoryHandle, name: string, full: string, readonly: boolean, create: boolean, deadline: number): Promise<SharedHandle | null> {
    for (;;) {
      const existing = this.#handles.get(full);
      if (existing) {
        if (existing.readonly && !readonly) {
          throw new SqliteError(`${full} is open read-only in this worker; close it before opening it read-write`, SQLITE_BUSY);
        }
        if (existing.deleted && !create) return null;
        existing.refs++;
        return existing;
      }
      const pending = this.#opening.get(full);
      if (!pending) break;
      await pending.catch(() => null); // someone else is opening it: take theirs
    }
    const opening = (async () => {
      let fh: OpfsFileHandle;
      try {
        fh = (await dir.getFileHandle(name, { create })) as OpfsFileHandle;
      } catch (e) {
        if ((e as { name?: string })?.name === "NotFoundError") return null;
        throw new SqliteError(`cannot open ${full}: ${errorText(e)}`, errorCode(e, SQLITE_CANTOPEN));
      }
      let sah: SyncAccessHandle;
      for (;;) {
        try {
          sah = await fh.createSyncAccessHandle(readonly ? { mode: "read-only" } : {});
          break;
        } catch (e) {
          const code = errorCode(e, SQLITE_CANTOPEN);
          // Another reader's exclusive handle, in a browser without read-only handles.
          if (code === SQLITE_BUSY && readonly && !syncHandleModes()) {
            sah = snapshotHandle(await fh.getFile(), full);
            break;
          }
          // Under the Web Lock, a handle still open elsewhere belongs to a context that let
          // go of the lock (a closed tab, a terminated worker) and is closing it, or to code
          // that does not take the lock: wait for it as long as for the lock.
          if (code === SQLITE_BUSY && performance.now() < deadline) {
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          const why = code === SQLITE_BUSY ? " (another tab or worker has it open)" : "";
          throw new SqliteError(`cannot open ${full}${why}: ${errorText(e)}`, code);
        }
      }
      const h = new SharedHandle(full, sah, readonly);
      this.#handles.set(full, h);
      return h;
    })();
    this.#opening.set(full, opening);
    try {
      const h = await opening;
      if (h) h.refs++;
      return h;
    } finally {
      this.#opening.delete(full);
    }
  }

  #release = (h: SharedHandle): void => {
    if (--h.refs > 0) return;
    this.#handles.delete(h.path);
    h.close();
  };

  open(name: string | null, flags: number): OpenResult {
    if (name === null || (flags & TEMP_FILES && !this.#handles.has(this.fullPathname(name)))) return this.#temp.open(null, flags);
    const full = this.fullPathname(name);
    const h = this.#handles.get(full);
    if (!h) {
      // A read-only open of a WAL database whose -wal is missing: the WAL is empty, and as
      // nobody may write the file meanwhile (our read-only handle excludes writers), an empty
      // in-memory one is the same file.
      if (flags & SQLITE_OPEN_WAL && this.#handles.get(full.slice(0, -4))?.readonly) return this.#temp.open(null, flags);
      throw new VfsError(SQLITE_CANTOPEN, `${full} was not prepared: open OPFS databases with sqlite.openOpfs()`);
    }
    if (h.deleted && !(flags & SQLITE_OPEN_CREATE)) throw new VfsError(SQLITE_CANTOPEN, `${full} does not exist`);
    let outFlags = flags;
    if (h.readonly && flags & SQLITE_OPEN_READWRITE) {
      // As os_unix.c does when it may only read: a read-only WAL is fine for a reader (it
      // never checkpoints), a read-only journal is not.
      if (!(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) throw new VfsError(SQLITE_CANTOPEN, `${full} is open read-only`);
      outFlags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    }
    h.deleted = false;
    const companions: SharedHandle[] = [];
    if (flags & SQLITE_OPEN_MAIN_DB) {
      for (const suffix of ["-journal", "-wal"]) {
        const c = this.#handles.get(full + suffix);
        if (c) companions.push(c);
      }
    }
    for (const c of [h, ...companions]) c.refs++;
    return { file: new BufferedFile(new OpfsFile(h, companions, this.#release), this.#buffers), outFlags };
  }

  delete(name: string): void {
    const h = this.#handles.get(this.fullPathname(name));
    if (!h || h.deleted) throw new VfsError(SQLITE_IOERR_DELETE_NOENT, `${name} does not exist`);
    // Deleting a journal is a commit: the database pages buffered behind it must land first
    // (with synchronous=OFF nothing else has written them yet).
    flushPendingWrites();
    h.markDeleted();
  }

  access(name: string, flags: number): boolean {
    const h = this.#handles.get(this.fullPathname(name));
    if (!h || h.deleted) return false;
    flushPendingWrites(); // e.g. a hot-journal check must see the journal's real size
    if (flags === SQLITE_ACCESS_EXISTS) return h.size() > 0;
    if (flags === SQLITE_ACCESS_READWRITE) return !h.readonly;
    return true;
  }

  fullPathname(name: string): string {
    return splitOpfsPath(name).full;
  }
}

