// The facade a VFS implementation programs against: plain JS types, no pointers (the bridge in
// src/runtime/host.ts translates). A method reports failure by throwing a VfsError with the exact result
// code; any other exception becomes the method's default IOERR code. Nothing reaches C as an
// exception.

/** One open file. `lockKey` is the identity used for locks and WAL shared memory. */
export interface VfsFile {
  /** Canonical identity of the file (e.g. its real path); files with equal keys share locks, shm and write buffering. */
  readonly lockKey: string;
  /**
   * Optional: the file's OS descriptor. Where the runtime has FFI (src/node/libc.ts), SQLite's
   * locks are taken on it as OFD locks and the WAL-index is mapped from `${lockKey}-shm`, so
   * native processes see them; files without one use the in-process lock table.
   */
  readonly fd?: number;
  close(): void;
  /** Reads into dst (a view of WASM memory) at offset; returns bytes read (short at EOF). */
  read(dst: Uint8Array, offset: number): number;
  /**
   * Optional: the same read off the calling thread (Node: libuv's thread pool), resolving with
   * the bytes read; the caller keeps dst's memory alive until it settles. The file's bytes only:
   * for ranges nothing writes meanwhile (an incremental backup reads the destination's next pages
   * ahead with it, see wasm/pagediff.c sbw_pagediff_ahead()).
   */
  readonly readAsync?: (dst: Uint8Array, offset: number) => Promise<number>;
  write(src: Uint8Array, offset: number): void;
  truncate(size: number): void;
  sync(flags: number): void;
  size(): number;
  /** Optional: SQLite file-control ops the VFS understands; return SQLITE_NOTFOUND otherwise. */
  fileControl?(op: number, arg: number): number;
  sectorSize(): number;
  deviceCharacteristics(): number;
  /**
   * Optional: told after every lock change the lock layer granted (SQLITE_LOCK_*),
   * e.g. to flush buffered writes before others may read, or drop read-ahead on a new
   * transaction. Throwing fails the xLock/xUnlock call.
   */
  lockChanged?(level: number): void;
  /**
   * Optional: told before every WAL-index lock change and barrier on this (database) file. Writes
   * buffered anywhere must reach their files first (another process reads the WAL as soon as the
   * index says a frame exists), and data cached from before may be stale (a new read snapshot).
   */
  shmChanged?(): void;
}

export interface OpenResult {
  file: VfsFile;
  /** Flags to report back (e.g. SQLITE_OPEN_READONLY when a read-write open fell back). */
  outFlags: number;
}

/** What FileWatch.hold() achieved. */
export type HoldResult =
  /** A read transaction is held with the OS's own locks until close(). */
  | "held"
  /** A writer holds the file now: try again. */
  | "busy"
  /** A hot journal, left by a writer that died, needs a read-write open to be rolled back. */
  | "hot"
  /** This runtime cannot take such locks (or the file cannot be opened so). */
  | "unavailable";

/**
 * A file that another process may write while it is copied (src/ops/source-guard.ts): fresh
 * reads of its files' heads, and, where the runtime can, a read transaction held with the OS's
 * own locks, so other processes' writers and checkpoints wait for it.
 */
export interface FileWatch {
  /** Size and bytes [offset, offset + n) of `${path}${suffix}` as the file holds them now (never cached); null when it does not exist. */
  head(suffix: "" | "-wal" | "-shm" | "-journal", offset: number, n: number): { size: number; bytes: Uint8Array } | null;
  /** Whether the descriptor `fd` is of another file than the one now at `${path}${suffix}` (or none is there). */
  replaced(suffix: "-wal", fd: number): boolean;
  /** Takes the read transaction once and keeps it until close(); see HoldResult. */
  hold(): HoldResult;
  /** Ends the read transaction, then closes every file it kept open. Never throws. */
  close(): void;
}

export interface Vfs {
  readonly name: string;
  readonly mxPathname: number;
  /**
   * Optional: true when no other process can write this VFS's files while this realm has them
   * open (memory; OPFS, whose sync access handles are exclusive). backup() then needs no source
   * guard for them (src/ops/source-guard.ts).
   */
  readonly exclusive?: boolean;
  /** name is null for a temporary file that SQLite wants deleted on close. */
  open(name: string | null, flags: number): OpenResult;
  delete(name: string, syncDir: boolean): void;
  /** flags: SQLITE_ACCESS_EXISTS (exists and, for regular files, non-empty) or _READWRITE. */
  access(name: string, flags: number): boolean;
  fullPathname(name: string): string;
  /**
   * Optional: make everything written through this VFS so far durable without blocking the
   * calling thread (Node: fdatasync in libuv's thread pool). backup() awaits it before the step
   * that commits, so the commit's own sync finds little left and the event loop is not held up.
   * Must not reject: a failure is thrown by the next sync() of the file it concerns.
   */
  writeBack?(): Promise<void>;
  /**
   * Optional: awaited by backup() after every step into a file of this VFS, so that a VFS that
   * hands its writes on asynchronously (the browser relay) is never far behind. Rejects with the
   * first write failure, which fails the backup.
   */
  settle?(): Promise<void>;
  /**
   * Optional: awaited by an incremental backup before each chunk of its compare, with the byte
   * range [from, to) of the destination file `path` (its full pathname) that the chunk reads, so
   * that a VFS whose files cannot be read synchronously (the browser relay over an existing OPFS
   * file) fetches it ahead. Reads below `from` do not come again, except of page 1.
   */
  prefetch?(path: string, from: number, to: number): Promise<void>;
  /** Optional: a FileWatch of the file `path` (its full pathname), for the source guard. */
  watch?(path: string): FileWatch;
  /**
   * Optional: the identity of the file `path` names (e.g. device and inode), the same for every
   * path, link or hard link to it; null when it does not exist. backup() refuses a source and a
   * destination that are one file.
   */
  fileId?(path: string): string | null;
}
