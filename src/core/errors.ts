import { codeNames, SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR_NOMEM, SQLITE_NOMEM } from "./constants.js";

/** An error reported by SQLite (or by a VFS on its behalf), with its result codes. */
export class SqliteError extends Error {
  /** Primary result code, e.g. 10 for every SQLITE_IOERR_*. */
  readonly code: number;
  /** Extended result code, e.g. 266 for SQLITE_IOERR_READ. */
  readonly extendedCode: number;
  /** Name of the extended code, e.g. "SQLITE_IOERR_READ". */
  readonly codeName: string;

  constructor(message: string, extendedCode: number) {
    super(message);
    this.name = "SqliteError";
    this.extendedCode = extendedCode;
    this.code = extendedCode & 0xff;
    this.codeName = codeName(extendedCode);
  }
}

export function codeName(code: number): string {
  return codeNames.get(code) ?? codeNames.get(code & 0xff) ?? `SQLITE_UNKNOWN(${code})`;
}

/** Thrown by VFS implementations to return a specific result code to SQLite. */
export class VfsError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "VfsError";
  }
}

/**
 * The one mapping from a thrown value to a SQLite result code, for every platform: a VfsError's
 * own code; the heap out of memory SQLITE_IOERR_NOMEM (which SQLite reports as SQLITE_NOMEM); a
 * full disk (Node's ENOSPC/EDQUOT, OPFS's QuotaExceededError) SQLITE_FULL; an OPFS file another
 * tab or worker holds (NoModificationAllowedError, InvalidModificationError) SQLITE_BUSY; a
 * missing OPFS file or directory (NotFoundError, TypeMismatchError) SQLITE_CANTOPEN; anything
 * else `fallback`.
 */
export function errorCode(e: unknown, fallback: number): number {
  if (e instanceof VfsError) return e.code;
  if (e instanceof SqliteError && e.code === SQLITE_NOMEM) return SQLITE_IOERR_NOMEM; // a heap allocation in a VFS method
  const err = e as { code?: unknown; name?: unknown } | null;
  if (err?.code === "ENOSPC" || err?.code === "EDQUOT") return SQLITE_FULL;
  switch (err?.name) {
    case "QuotaExceededError":
      return SQLITE_FULL;
    case "NoModificationAllowedError":
    case "InvalidModificationError":
      return SQLITE_BUSY;
    case "NotFoundError":
    case "TypeMismatchError":
      return SQLITE_CANTOPEN;
    default:
      return fallback;
  }
}
