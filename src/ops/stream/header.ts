// The database header as restoreFromStream() checks it before anything touches the destination
// (https://sqlite.org/fileformat.html#the_database_header): the magic string, the page size, and
// the page count, which must agree with the number of bytes that arrived.
import { SQLITE_CORRUPT, SQLITE_NOTADB } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";

/** The first 100 bytes of a database file. */
export const HEADER_BYTES = 100;
const MAGIC = new TextEncoder().encode("SQLite format 3\0");

export interface Header {
  pageSize: number;
  /** The page count the header states, or null where SQLite would not trust it either. */
  pageCount: number | null;
}

/** Whether `bytes` (any prefix of a stream) can still be the start of a database file. */
export function magicSoFar(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/** Reads the header; a SqliteError (SQLITE_NOTADB) when the bytes are not a database's. */
export function parseHeader(head: Uint8Array, where: string): Header {
  if (head.length < HEADER_BYTES || !magicSoFar(head)) throw notADatabase(where);
  const dv = new DataView(head.buffer, head.byteOffset, HEADER_BYTES);
  const raw = dv.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new SqliteError(`${where}: the header's page size (${raw}) is not a valid one`, SQLITE_NOTADB);
  }
  // As SQLite itself: the in-header size is valid when non-zero and written by the same
  // transaction as the change counter (the version-valid-for number at 92 equals it).
  const count = dv.getUint32(28);
  return { pageSize, pageCount: count > 0 && dv.getUint32(24) === dv.getUint32(92) ? count : null };
}

export function notADatabase(where: string): SqliteError {
  return new SqliteError(`${where}: the stream is not an SQLite database (no "SQLite format 3" header)`, SQLITE_NOTADB);
}

/** SQLITE_CORRUPT: the stream's length disagrees with its header (`over`: it went on past it). */
export function wrongLength(where: string, got: number, header: Header, over: boolean): SqliteError {
  const { pageSize, pageCount } = header;
  const want = pageCount === null ? `a multiple of its page size ${pageSize}` : `${pageCount} pages of ${pageSize} bytes (${pageCount * pageSize} bytes)`;
  const what = over ? "goes on past that" : `ends after ${got} bytes`;
  return new SqliteError(`${where}: the header says ${want}, the stream ${what}: cut short, or not one database`, SQLITE_CORRUPT);
}

/**
 * Page 1 as a commit of the copied state writes it: the page count at 28 and, equal to the change
 * counter, the version-valid-for number at 92 that makes it trusted (as backup() leaves its copy).
 */
export function stampPageCount(page1: Uint8Array, pageCount: number): void {
  const dv = new DataView(page1.buffer, page1.byteOffset, 100);
  dv.setUint32(28, pageCount);
  dv.setUint32(92, dv.getUint32(24));
}
