// An in-memory VFS in plain JS: the browser's default for open(name) (files live as long as
// the page), temporary files of the OPFS and relay VFSes, and the staging file of restoreFromOpfs().
import {
  SQLITE_ACCESS_EXISTS, SQLITE_CANTOPEN, SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOERR_DELETE_NOENT,
  SQLITE_OPEN_CREATE, SQLITE_OPEN_DELETEONCLOSE, SQLITE_OPEN_EXCLUSIVE,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import type { OpenResult, Vfs, VfsFile } from "./types.js";

/** A growable byte array; data.length is capacity, size the file size. */
class MemData {
  data: Uint8Array;
  size: number;
  constructor(initial?: Uint8Array) {
    this.data = initial ?? new Uint8Array(0);
    this.size = initial?.length ?? 0;
  }
  ensure(n: number): void {
    if (n <= this.data.length) return;
    const grown = new Uint8Array(Math.max(n, this.data.length * 2, 4096));
    grown.set(this.data.subarray(0, this.size));
    this.data = grown;
  }
}

class MemFile implements VfsFile {
  constructor(readonly lockKey: string, readonly d: MemData) {}
  close(): void {}
  read(dst: Uint8Array, offset: number): number {
    const n = Math.max(0, Math.min(dst.length, this.d.size - offset));
    if (n > 0) dst.set(this.d.data.subarray(offset, offset + n));
    return n;
  }
  write(src: Uint8Array, offset: number): void {
    const end = offset + src.length;
    this.d.ensure(end);
    if (offset > this.d.size) this.d.data.fill(0, this.d.size, offset); // a hole reads as zeros
    this.d.data.set(src, offset);
    this.d.size = Math.max(this.d.size, end);
  }
  truncate(size: number): void {
    if (size < this.d.size) this.d.size = size;
    else if (size > this.d.size) this.write(new Uint8Array(0), size);
  }
  sync(): void {}
  size(): number {
    return this.d.size;
  }
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
  }
}

let anonymous = 0;

export class MemoryVfs implements Vfs {
  readonly mxPathname = 1024;
  /** Only this realm can reach these files. */
  readonly exclusive = true;
  readonly #files = new Map<string, MemData>();

  constructor(readonly name = "memory") {}

  /** Places bytes under a name (no copy: the array is used as the file's storage). */
  put(name: string, bytes: Uint8Array): void {
    this.#files.set(this.fullPathname(name), new MemData(bytes));
  }
  /** The bytes of a file (no copy), or undefined; the file is forgotten as by remove(). */
  take(name: string): Uint8Array | undefined {
    const d = this.#files.get(this.fullPathname(name));
    this.remove(name);
    return d?.data.subarray(0, d.size);
  }
  /** Forgets a file; open connections keep their data until they close. */
  remove(name: string): void {
    this.#files.delete(this.fullPathname(name));
  }

  open(name: string | null, flags: number): OpenResult {
    if (name === null || flags & SQLITE_OPEN_DELETEONCLOSE) {
      // Anonymous: storage lives only in the open file.
      return { file: new MemFile(`${this.name}:temp#${++anonymous}`, new MemData()), outFlags: flags };
    }
    const full = this.fullPathname(name);
    let d = this.#files.get(full);
    if (d && flags & SQLITE_OPEN_EXCLUSIVE) throw new VfsError(SQLITE_CANTOPEN, `${full} exists`);
    if (!d) {
      if (!(flags & SQLITE_OPEN_CREATE)) throw new VfsError(SQLITE_CANTOPEN, `${full} does not exist`);
      this.#files.set(full, (d = new MemData()));
    }
    return { file: new MemFile(`${this.name}:${full}`, d), outFlags: flags };
  }

  delete(name: string): void {
    if (!this.#files.delete(this.fullPathname(name))) throw new VfsError(SQLITE_IOERR_DELETE_NOENT, `${name} does not exist`);
  }

  access(name: string, flags: number): boolean {
    const d = this.#files.get(this.fullPathname(name));
    if (!d) return false;
    return flags !== SQLITE_ACCESS_EXISTS || d.size > 0; // an empty journal is no journal
  }

  fullPathname(name: string): string {
    return name.startsWith("/") ? name : `/${name}`;
  }
}
