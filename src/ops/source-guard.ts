// The cross-process guard of backup() for file sources (docs/reliability.md). Node has no
// advisory locks, so another process (e.g. the native sqlite3 CLI) can write the source while we
// read it, and SQLite cannot see that. The guard reads a stamp of the source's files straight
// through its VFS: the database header's change counter and page count (bytes 24..39), the file
// size, the WAL's size and header (salts change on every restart) and whether a rollback journal
// is live (starts with its magic). A backup step is one synchronous call in which nothing else of
// this process runs, so a stamp that differs across a step was changed by someone else.
import {
  SQLITE_ACCESS_EXISTS, SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ,
  SQLITE_NOTADB, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_MAIN_JOURNAL, SQLITE_OPEN_READONLY, SQLITE_OPEN_WAL,
} from "../core/constants.js";
import { errorCode, SqliteError } from "../core/errors.js";
import type { Database } from "../handles/database.js";
import type { Runtime } from "../runtime/runtime.js";
import { shmInvalidate } from "../vfs/heap-shm.js";
import type { Vfs } from "../vfs/types.js";

const JOURNAL_MAGIC = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

export interface Stamp {
  /** Everything that changes when anyone commits to the file. */
  readonly key: string;
  /** A rollback journal is live: a writer (maybe in another process) is inside a transaction. */
  readonly writerActive: boolean;
  readonly wal: boolean;
}

export class SourceGuard {
  private constructor(readonly vfs: Vfs, readonly path: string, readonly lockKey: string) {}

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
      return new SourceGuard(vfs, path, file.lockKey);
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
    const db = this.#head(this.path, SQLITE_OPEN_MAIN_DB, 24, 16);
    const wal = this.#head(`${this.path}-wal`, SQLITE_OPEN_WAL, 0, 32);
    const journal = this.#head(`${this.path}-journal`, SQLITE_OPEN_MAIN_JOURNAL, 0, 8);
    const writerActive = journal !== null && JOURNAL_MAGIC.every((b, i) => journal.bytes[i] === b);
    const key = [db, wal].map((h) => (h ? `${h.size}:${Array.from(h.bytes).join(",")}` : "-")).join("|");
    return { key, writerActive, wal: wal !== null && wal.size > 0 };
  }

  /** Whether another process committed since `start`, or is inside a transaction now. */
  changedSince(start: Stamp): boolean {
    const now = this.stamp();
    return now.key !== start.key || now.writerActive;
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
      `file ${this.path}, and this runtime has no real file locks to make it wait (sqlite.locking is "process"). Run on Node >= 26, ` +
      `Bun, or Deno with --allow-ffi for real file locks, or put the source in WAL mode (PRAGMA journal_mode=WAL). ` +
      `The destination was not touched.`, SQLITE_BUSY);
  }

  /**
   * Makes this instance's next reader rebuild the WAL index from the WAL file, which another
   * process may have changed (our index lives in the heap and sees only our own writers).
   */
  refreshWalIndex(): void {
    shmInvalidate(this.lockKey);
  }

  /** Size and the first n bytes at offset of a file, or null when it does not exist. */
  #head(path: string, kind: number, offset: number, n: number): { size: number; bytes: Uint8Array } | null {
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
