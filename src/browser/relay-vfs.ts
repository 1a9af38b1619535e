// The destination side of backupToOpfs() on a thread without sync access handles: a VFS whose
// main-database files forward every write to a sink, the writer worker. BufferedFile (the one
// buffering layer) merges SQLite's page writes into large ranges first.
//
// Only sqlite3_backup_step writes relay files (backupToOpfs opens them with journal_mode=OFF),
// and it reads nothing of the destination but page 1 (kept: the first 64 KiB, page 1 at any
// page size): every other page it fetches, when a restart copies the source again, it overwrites
// whole before writing it out. So a read of bytes already sent returns zeros instead of failing.
import { SQLITE_IOCAP_POWERSAFE_OVERWRITE, SQLITE_IOCAP_SEQUENTIAL, SQLITE_OPEN_MAIN_DB } from "../core/constants.js";
import { BufferedFile } from "../vfs/buffered.js";
import { MemoryVfs } from "../vfs/memory.js";
import type { OpenResult, Vfs, VfsFile } from "../vfs/types.js";

export interface RelaySink {
  /** Takes ownership of bytes (its buffer may be transferred). */
  write(at: number, bytes: Uint8Array): void;
  truncate(size: number): void;
  /** Waits until the sink has caught up enough; rejects with its first write failure. */
  settle(): Promise<void>;
}

const HEAD = 64 << 10;

class RelayFile implements VfsFile {
  readonly head = new Uint8Array(HEAD);
  #size = 0;

  constructor(readonly lockKey: string, readonly sink: RelaySink) {}

  read(dst: Uint8Array, offset: number): number {
    const n = Math.max(0, Math.min(dst.length, this.#size - offset));
    if (n === 0) return 0;
    const kept = Math.max(0, Math.min(n, HEAD - offset));
    if (kept > 0) dst.set(this.head.subarray(offset, offset + kept));
    dst.fill(0, kept, n); // sent: the backup overwrites these pages whole (see above)
    return n;
  }

  write(src: Uint8Array, offset: number): void {
    const n = src.length;
    if (offset < HEAD) this.head.set(src.subarray(0, Math.min(n, HEAD - offset)), offset);
    this.#size = Math.max(this.#size, offset + n);
    this.sink.write(offset, src.slice()); // src is a view of the heap or of the buffer's memory
  }

  truncate(size: number): void {
    if (size < HEAD) this.head.fill(0, size);
    this.#size = size;
    this.sink.truncate(size);
  }
  sync(): void {}
  size(): number {
    return this.#size;
  }
  close(): void {}
  sectorSize(): number {
    return 4096;
  }
  deviceCharacteristics(): number {
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_SEQUENTIAL;
  }
}

export class RelayVfs implements Vfs {
  readonly mxPathname = 1024;
  /** Only this realm writes relay files. */
  readonly exclusive = true;
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
    if (sink && flags & SQLITE_OPEN_MAIN_DB) return { file: new BufferedFile(new RelayFile(`${this.name}:${this.fullPathname(name!)}`, sink)), outFlags: flags };
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
  /** backup() awaits this after every step into a relay file: the writer keeps up. */
  async settle(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.settle()));
  }
}
