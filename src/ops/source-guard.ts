// The cross-process guard of backup() for file sources (docs/reliability.md). Where this runtime
// has no real file locks, another process (e.g. the native sqlite3 CLI) can write the source while
// we read it, and SQLite cannot see that. So the guard, through the source VFS's FileWatch:
// - holds a read transaction with the OS's own locks where the runtime can (node:sqlite): then a
//   rollback-journal source cannot change, and a WAL source's checkpoints stop short of it;
// - reads a stamp of the source's files around every step: the database header's change counter
//   and page count, its size, the WAL's size and header, whether a rollback journal is live, and
//   for a WAL source the WAL index in the -shm (its salts change at every WAL restart, and
//   nBackfillAttempted says how far a checkpoint writes into the database). A step is one
//   synchronous call in which nothing else of this process runs, so a stamp that differs across a
//   step was changed by someone else.
import {
  SQLITE_ACCESS_EXISTS, SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ,
  SQLITE_NOTADB, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_MAIN_JOURNAL, SQLITE_OPEN_READONLY, SQLITE_OPEN_WAL,
  SQLITE_BUSY_SNAPSHOT, SQLITE_READONLY_ROLLBACK,
} from "../core/constants.js";
import { errorCode, SqliteError } from "../core/errors.js";
import type { Database } from "../handles/database.js";
import type { Runtime } from "../runtime/runtime.js";
import { shmInvalidate } from "../vfs/heap-shm.js";
import type { FileWatch, Vfs } from "../vfs/types.js";

const JOURNAL_MAGIC = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/** What a stamp reads of the WAL index (walformat.html: two copies of a 48-byte header, then the checkpoint info). */
const SHM_HEAD_BYTES = 136;

/** The WAL index as the -shm holds it, when its two header copies agree. */
interface WalIndex {
  /** Both salts: new at every WAL restart (salt-1 counts up), so they never come back. */
  readonly salts: string;
  /** The last committed frame. */
  readonly mxFrame: number;
  /** How far the last checkpoint writes (or wrote) WAL frames into the database file; set before it writes. */
  readonly backfillAttempted: number;
}

export interface Stamp {
  /** Everything that changes when anyone commits to the file (what counts without a WAL index to read). */
  readonly key: string;
  /** A rollback journal is live, or a writer keeps the held read transaction out: a writer is inside a transaction. */
  readonly writerActive: boolean;
  readonly wal: boolean;
  /** A WAL source's index, when its -shm is readable. */
  readonly walIndex: WalIndex | null;
  /** The database header's read and write versions (2: WAL mode). */
  readonly mode: string;
  /** The FileWatch found a hot journal that needs a read-write open to be rolled back. */
  readonly hot: boolean;
}

/** A read-only source's hot journal: the error that names the cause and the remedy. */
export function hotJournalError(path: string, detail?: string): SqliteError {
  return new SqliteError(`backup: the source ${path} has a hot journal (${path}-journal), left by a writer that did not finish; ` +
    `rolling it back needs write access: read from the source once through a read-write connection (or run the sqlite3 CLI on it), then back up again` +
    `${detail ? ` (${detail})` : ""}. The destination was not touched.`, SQLITE_READONLY_ROLLBACK);
}

export class SourceGuard {
  private constructor(readonly vfs: Vfs, readonly path: string, readonly lockKey: string, readonly watch: FileWatch | null,
    readonly rt: Runtime, readonly db: Database, readonly schema: string) {}

  /**
   * A guard for a file-backed schema, or null: memory and temporary databases, files no other
   * process can write while this realm has them open (Vfs.exclusive: OPFS), or a VFS that cannot
   * open the file a second time.
   */
  static for(rt: Runtime, db: Database, schema: string): SourceGuard | null {
    const path = rt.filename(db.state.ptr, schema);
    if (!path) return null;
    const vfs = rt.vfsOf(db.state.ptr, schema);
    if (!vfs || vfs.exclusive) return null;
    try {
      const { file } = vfs.open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB);
      file.close();
      return new SourceGuard(vfs, path, file.lockKey, vfs.watch?.(path) ?? null, rt, db, schema);
    } catch {
      return null;
    }
  }

  /** The current stamp; an I/O failure is a SqliteError like any other read of the source. */
  stamp(): Stamp {
    try {
      return this.#stamp();
    } catch (e) {
      const code = errorCode(e, SQLITE_IOERR_READ);
      throw new SqliteError(`backup: cannot check the source file ${this.path}: ${(e as Error)?.message ?? e}`, code);
    }
  }

  #stamp(): Stamp {
    const held = this.watch?.hold() ?? "unavailable";
    const db = this.#head("", SQLITE_OPEN_MAIN_DB, 0, 40);
    const wal = this.#head("-wal", SQLITE_OPEN_WAL, 0, 32);
    const journal = this.#head("-journal", SQLITE_OPEN_MAIN_JOURNAL, 0, 8);
    const writerActive = held === "busy" || (journal !== null && JOURNAL_MAGIC.every((b, i) => journal.bytes[i] === b));
    const walMode = db !== null && db.bytes[18] === 2;
    const key = [db && { size: db.size, bytes: db.bytes.subarray(24, 40) }, wal]
      .map((h) => (h ? `${h.size}:${Array.from(h.bytes).join(",")}` : "-")).join("|");
    return {
      key, writerActive, wal: wal !== null && wal.size > 0, hot: held === "hot",
      walIndex: walMode ? this.#walIndex() : null, mode: db ? `${db.bytes[18]},${db.bytes[19]}` : "-",
    };
  }

  /** The -shm's WAL index header, read until its two copies agree (a writer may be updating it). */
  #walIndex(): WalIndex | null {
    if (this.watch === null) return null;
    for (let tries = 0; tries < 100; tries++) {
      const shm = this.watch.head("-shm", 0, SHM_HEAD_BYTES);
      if (shm === null || shm.size < SHM_HEAD_BYTES) return null;
      const b = shm.bytes;
      let same = b[12] === 1; // isInit
      for (let i = 0; i < 48 && same; i++) same = b[i] === b[48 + i];
      if (!same) continue;
      // Native byte order: the -shm is a memory image (little-endian on every platform this runs on).
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return { salts: `${v.getUint32(32, true)}:${v.getUint32(36, true)}`, mxFrame: v.getUint32(16, true), backfillAttempted: v.getUint32(128, true) };
    }
    return null;
  }

  /**
   * Whether another process changed what a copy that began at `start` reads, or is inside a
   * transaction now. For a WAL source whose index is readable, commits that only append frames
   * do not count (the copy's snapshot ends before them): a WAL restart (new salts) does, and so
   * does a checkpoint that writes frames past the snapshot into the database.
   */
  changedSince(start: Stamp): boolean {
    const now = this.stamp();
    if (now.writerActive) return true;
    if (start.walIndex !== null && now.walIndex !== null) {
      return now.mode !== start.mode || now.walIndex.salts !== start.walIndex.salts ||
        now.walIndex.backfillAttempted > start.walIndex.mxFrame;
    }
    return now.key !== start.key;
  }

  /** The error for a source whose hot journal needs write access to be rolled back. */
  hotJournal(): SqliteError {
    return hotJournalError(this.path);
  }

  /** Whether the source's read lock is (or can be) taken through the OS's own locks. */
  osReadLock(): boolean {
    return this.watch !== null && this.watch.hold() !== "unavailable";
  }

  /** Ends the read transaction held for the copy and closes the files the stamps kept open. */
  close(): void {
    this.watch?.close();
  }

  /**
   * Whether a read of the source that failed with `e` is what pages another process was
   * rewriting look like (SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR_SHORT_READ) while the source
   * did change since `start`: then copy again. Otherwise nobody wrote and the error is real.
   */
  tornRead(e: unknown, start: Stamp): boolean {
    if (!(e instanceof SqliteError)) return false;
    const looksTorn = e.code === SQLITE_CORRUPT || e.code === SQLITE_NOTADB || e.extendedCode === SQLITE_IOERR_SHORT_READ;
    return looksTorn && this.changedSince(start);
  }

  /** The error when no consistent copy was possible within busyTimeoutMs: the cause and the remedy. */
  gaveUp(busyTimeoutMs: number, what: "kept writing" | "stayed inside a write transaction on"): SqliteError {
    return new SqliteError(`backup: no consistent copy within busyTimeoutMs (${busyTimeoutMs} ms): another process ${what} the source ` +
      `file ${this.path}${what === "stayed inside a write transaction on" ? ` (or died and left its journal ${this.path}-journal, which the next read-write open rolls back)` : ""}, ` +
      `and this runtime has no real file locks to make it wait (sqlite.locking is "process"). ${this.#remedy()} ` +
      `The destination was not touched.`, SQLITE_BUSY);
  }

  /** What would let the next copy through: real locks, the held read transaction, WAL mode. */
  #remedy(): string {
    const remedies = ["run on Node >= 26, Bun, or Deno with --allow-ffi for real file locks"];
    if (this.watch?.hold() !== "held") remedies.push("on Node >= 22.12 or Deno, whose built-in node:sqlite holds the source's read lock for the copy");
    if (this.stamp().walIndex === null) remedies.push("put the source in WAL mode (PRAGMA journal_mode=WAL), whose writers only append while a copy reads");
    return `Remedy: ${remedies.join("; or ")}.`;
  }

  /**
   * Makes this instance's next reader rebuild the WAL index from the WAL file, which another
   * process may have changed (our index lives in the heap and sees only our own writers).
   */
  refreshWalIndex(): void {
    // The index is rebuilt from the WAL this connection has open. When another process's last
    // connection closed, it deleted that WAL (and the next made a new one): the open descriptor
    // then holds frames the database file has moved past, and would mix them into the copy.
    const wal = this.db.isOpen ? this.rt.fileOf(this.db.state.ptr, this.schema, "journal") : null;
    // (The journal pointer names the rollback journal when the pager has no WAL: only a WAL counts.)
    if (wal?.fd !== undefined && wal.lockKey === `${this.lockKey}-wal` && this.watch?.replaced("-wal", wal.fd)) {
      throw new SqliteError(`backup: the WAL of the source ${this.path} was deleted or replaced by another process after this ` +
        `connection opened it (a process's last connection removes it), so this connection cannot see the commits since. ` +
        `Close the source Database and open it again, then back up. The destination was not touched.`, SQLITE_BUSY_SNAPSHOT);
    }
    shmInvalidate(this.lockKey);
  }

  /** Size and the first n bytes at offset of the source's file with `suffix`, or null when it does not exist. */
  #head(suffix: "" | "-wal" | "-journal", kind: number, offset: number, n: number): { size: number; bytes: Uint8Array } | null {
    if (this.watch !== null) return this.watch.head(suffix, offset, n);
    const path = this.path + suffix;
    if (!this.vfs.access(path, SQLITE_ACCESS_EXISTS)) return null;
    let file;
    try {
      file = this.vfs.open(path, SQLITE_OPEN_READONLY | kind).file;
    } catch {
      return null; // deleted between access() and open()
    }
    try {
      const bytes = new Uint8Array(n);
      bytes.fill(0, file.read(bytes, offset));
      return { size: file.size(), bytes };
    } finally {
      file.close();
    }
  }
}
