// The destination side of backupToOpfs() on a thread without sync access handles: a VFS whose
// main-database files forward every write (coalesced into large ranges) to a sink, the writer
// worker. SQLite's backup writes a fresh destination and keeps page 1 referenced for the whole
// transaction, so it does not read back what it wrote; the file still keeps the first 64 KiB
// (page 1 at any page size) and its unsent buffer to answer reads, and any other read of
// written data fails with SQLITE_IOERR_READ: a clear error, never a torn copy.
import {
  SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOCAP_SEQUENTIAL, SQLITE_IOERR_READ, SQLITE_OPEN_MAIN_DB,
} from "../constants.js";
import { VfsError } from "../errors.js";
import type { OpenResult, Vfs, VfsFile } from "../vfs/types.js";
import { MemoryVfs } from "./memory-vfs.js";

export interface RelaySink {
  /** Takes ownership of bytes (its buffer may be transferred). */
  write(at: number, bytes: Uint8Array): void;
  truncate(size: number): void;
}

const HEAD = 64 << 10;
const CHUNK = 1 << 20;

class RelayFile implements VfsFile {
  readonly head = new Uint8Array(HEAD);
  #size = 0;
  #buf: Uint8Array | null = null;
  #start = 0;
  #len = 0;

  constructor(readonly lockKey: string, readonly sink: RelaySink) {}

  read(dst: Uint8Array, offset: number): number {
    const n = Math.max(0, Math.min(dst.length, this.#size - offset));
    if (n === 0) return 0;
    if (offset + n <= HEAD) dst.set(this.head.subarray(offset, offset + n));
    else if (this.#len > 0 && offset >= this.#start && offset + n <= this.#start + this.#len) {
      dst.set(this.#buf!.subarray(offset - this.#start, offset - this.#start + n));
    } else throw new VfsError(SQLITE_IOERR_READ, `backupToOpfs: SQLite read back page data at ${offset} that was already sent`);
    return n;
  }

  write(src: Uint8Array, offset: number): void {
    const n = src.length;
    if (offset < HEAD) this.head.set(src.subarray(0, Math.min(n, HEAD - offset)), offset);
    this.#size = Math.max(this.#size, offset + n);
    if (this.#len > 0) {
      const rel = offset - this.#start;
      if (rel >= 0 && rel <= this.#len && rel + n <= CHUNK) {
        this.#buf!.set(src, rel);
        this.#len = Math.max(this.#len, rel + n);
        return;
      }
      this.flush();
    }
    if (n >= CHUNK) {
      this.sink.write(offset, src.slice());
      return;
    }
    this.#buf = new Uint8Array(CHUNK);
    this.#buf.set(src);
    this.#start = offset;
    this.#len = n;
  }

  flush(): void {
    if (this.#len === 0) return;
    const buf = this.#buf!;
    const bytes = this.#len === buf.length ? buf : buf.slice(0, this.#len);
    this.#buf = null;
    this.#len = 0;
    this.sink.write(this.#start, bytes);
  }

  truncate(size: number): void {
    this.flush();
    if (size < HEAD) this.head.fill(0, size);
    this.#size = size;
    this.sink.truncate(size);
  }
  sync(): void {
    this.flush();
  }
  size(): number {
    return this.#size;
  }
  lockChanged(): void {
    this.flush();
  }
  close(): void {
    this.flush();
  }
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_SEQUENTIAL;
  }
}

export class RelayVfs implements Vfs {
  readonly mxPathname = 1024;
  readonly #sinks = new Map<string, RelaySink>();
  /** Journals and temporary files of relay databases are small and stay in memory. */
  readonly #side = new MemoryVfs("opfs-relay-side");

  constructor(readonly name = "opfs-relay") {}

  /** Routes the main database named `name` to sink until forget(name). */
  expect(name: string, sink: RelaySink): void {
    this.#sinks.set(this.fullPathname(name), sink);
  }
  forget(name: string): void {
    this.#sinks.delete(this.fullPathname(name));
  }

  open(name: string | null, flags: number): OpenResult {
    const sink = name === null ? undefined : this.#sinks.get(this.fullPathname(name));
    if (sink && flags & SQLITE_OPEN_MAIN_DB) return { file: new RelayFile(`${this.name}:${this.fullPathname(name!)}`, sink), outFlags: flags };
    return this.#side.open(name, flags);
  }
  delete(name: string): void {
    this.#side.delete(name);
  }
  access(name: string, flags: number): boolean {
    return this.#side.access(name, flags);
  }
  fullPathname(name: string): string {
    return this.#side.fullPathname(name);
  }
}
