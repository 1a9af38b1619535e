import { codeNames } from "./constants.js";

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

/** A "disk full" failure from Node (ENOSPC, EDQUOT) or OPFS (QuotaExceededError): SQLITE_FULL. */
export function isFullError(e: unknown): boolean {
  const err = e as { code?: unknown; name?: unknown } | null;
  return err?.code === "ENOSPC" || err?.code === "EDQUOT" || err?.name === "QuotaExceededError";
}
