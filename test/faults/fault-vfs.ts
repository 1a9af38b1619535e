// A Vfs wrapper that fails the N-th counted call, in the spirit of SQLite's test_vfs/ioerr tests.
// It wraps at the facade (types.ts), so it works over any Vfs, buffered or not.
//
//   transient: only call N fails;   persistent: call N and every later counted call fail.
//
// What a failure looks like is the `kind`:
//   "eio"    a plain Error: the bridge maps it to the method's IOERR code (IOERR_READ, _WRITE, …)
//   "enospc" an Error with code ENOSPC on writes/truncates (the bridge must map it to SQLITE_FULL)
//   "short"  a write that stores only the first half of its bytes, then throws (a torn write)
import type { OpenResult, Vfs, VfsFile } from "../../src/index.js";

export type FaultKind = "eio" | "enospc" | "short";
export type FaultOp = "open" | "delete" | "access" | "read" | "write" | "truncate" | "sync" | "size";

export class FaultVfs implements Vfs {
  readonly mxPathname: number;
  /** Counted calls since arm(). */
  calls = 0;
  /** Failures injected since arm(). */
  hits = 0;
  /** Failures injected over the life of this VFS (for the reported figures). */
  totalHits = 0;
  /** Reads off the thread (VfsFile.readAsync) over the life of this VFS, armed or not. */
  readsAhead = 0;
  /** Of those, the ones whose memory grew (detached) before they were over. */
  readsAheadDetached = 0;
  /** Files deleted since arm() before the first failure: a deleted journal marks a commit point. */
  deletedBeforeFault: string[] = [];
  #failAt = 0; // 0: disarmed
  #persistent = false;
  #kind: FaultKind = "eio";
  #ops: ReadonlySet<FaultOp> | null = null;

  constructor(readonly inner: Vfs, readonly name = `fault-${inner.name}`) {
    this.mxPathname = inner.mxPathname;
  }

  /** Fail the n-th counted call from now (n >= 1), only counting `ops` when given. */
  arm(n: number, opts: { persistent?: boolean; kind?: FaultKind; ops?: readonly FaultOp[] } = {}): void {
    this.calls = 0;
    this.hits = 0;
    this.deletedBeforeFault = [];
    this.#failAt = n;
    this.#persistent = opts.persistent ?? false;
    this.#kind = opts.kind ?? "eio";
    this.#ops = opts.ops ? new Set(opts.ops) : null;
  }

  disarm(): void {
    this.#failAt = 0;
  }

  /** Counts one call; true when it must fail. */
  shouldFail(op: FaultOp): boolean {
    if (this.#failAt === 0 || (this.#ops !== null && !this.#ops.has(op))) return false;
    const n = ++this.calls;
    if (n === this.#failAt || (this.#persistent && n > this.#failAt)) {
      this.hits++;
      this.totalHits++;
      return true;
    }
    return false;
  }

  /** Throws the armed kind of failure for `op`; `partial` performs a short write first. */
  fail(op: FaultOp, partial?: () => void): never {
    if (this.#kind === "short" && op === "write" && partial) {
      partial();
      throw new Error(`injected short write`);
    }
    if (this.#kind === "enospc" && (op === "write" || op === "truncate")) {
      throw Object.assign(new Error("injected ENOSPC: no space left on device"), { code: "ENOSPC" });
    }
    throw Object.assign(new Error(`injected EIO in ${op}`), { code: "EIO" });
  }

  open(name: string | null, flags: number): OpenResult {
    if (this.shouldFail("open")) this.fail("open");
    const r = this.inner.open(name, flags);
    return { file: new FaultFile(this, r.file), outFlags: r.outFlags };
  }
  delete(name: string, syncDir: boolean): void {
    if (this.shouldFail("delete")) this.fail("delete");
    this.inner.delete(name, syncDir);
    if (this.#failAt !== 0 && this.hits === 0) this.deletedBeforeFault.push(name);
  }
  access(name: string, flags: number): boolean {
    if (this.shouldFail("access")) this.fail("access");
    return this.inner.access(name, flags);
  }
  fullPathname(name: string): string {
    return this.inner.fullPathname(name);
  }
}

class FaultFile implements VfsFile {
  readonly lockKey: string;
  readonly lockChanged?: (level: number) => void;
  readonly fileControl?: (op: number, arg: number) => number;
  readonly readAsync?: (dst: Uint8Array, offset: number) => Promise<number>;

  constructor(readonly vfs: FaultVfs, readonly inner: VfsFile) {
    this.lockKey = inner.lockKey;
    // Optional hooks pass straight through, and exist only when the inner file has them.
    if (inner.lockChanged) this.lockChanged = (level) => inner.lockChanged!(level);
    if (inner.fileControl) this.fileControl = (op, arg) => inner.fileControl!(op, arg);
    if (inner.readAsync) {
      // Counted and failed as reads (rejecting, as a failed read off the thread does).
      this.readAsync = async (dst, offset) => {
        vfs.readsAhead++;
        if (vfs.shouldFail("read")) vfs.fail("read");
        try {
          return await inner.readAsync!(dst, offset);
        } finally {
          if (dst.byteLength === 0) vfs.readsAheadDetached++;
        }
      };
    }
  }

  close(): void {
    this.inner.close(); // never failed: SQLite ignores xClose errors and the fd must not leak
  }
  read(dst: Uint8Array, offset: number): number {
    if (this.vfs.shouldFail("read")) this.vfs.fail("read");
    return this.inner.read(dst, offset);
  }
  write(src: Uint8Array, offset: number): void {
    if (this.vfs.shouldFail("write")) {
      this.vfs.fail("write", () => this.inner.write(src.subarray(0, src.length >> 1), offset));
    }
    this.inner.write(src, offset);
  }
  truncate(size: number): void {
    if (this.vfs.shouldFail("truncate")) this.vfs.fail("truncate");
    this.inner.truncate(size);
  }
  sync(flags: number): void {
    if (this.vfs.shouldFail("sync")) this.vfs.fail("sync");
    this.inner.sync(flags);
  }
  size(): number {
    if (this.vfs.shouldFail("size")) this.vfs.fail("size");
    return this.inner.size();
  }
  sectorSize(): number {
    return this.inner.sectorSize();
  }
  deviceCharacteristics(): number {
    return this.inner.deviceCharacteristics();
  }
}
