// A Vfs wrapper that fails the N-th counted call, in the spirit of SQLite's test_vfs/ioerr tests.
// It wraps at the facade (types.ts), so it works over any Vfs, buffered or not; every hook it does
// not count reaches the inner VFS through ForwardingVfs, as in production.
//
//   transient: only call N fails;   persistent: call N and every later counted call fail.
//
// What a failure looks like is the `kind`:
//   "eio"    a plain Error: the bridge maps it to the method's IOERR code (IOERR_READ, _WRITE, …)
//   "enospc" an Error with code ENOSPC on writes/truncates (the bridge must map it to SQLITE_FULL)
//   "short"  a write that stores only the first half of its bytes, then throws (a torn write)
import { ForwardingFile, ForwardingVfs, type FileWatch, type Vfs, type VfsFile } from "../../src/index.js";

export type FaultKind = "eio" | "enospc" | "short";
export type FaultOp = "open" | "delete" | "access" | "read" | "write" | "truncate" | "sync" | "size";

export class FaultVfs extends ForwardingVfs {
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

  constructor(inner: Vfs, name = `fault-${inner.name}`) {
    super(inner, name);
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

  protected override wrapFile(file: VfsFile): VfsFile {
    if (this.shouldFail("open")) {
      file.close();
      this.fail("open");
    }
    return new FaultFile(this, file);
  }
  override delete(name: string, syncDir: boolean): void {
    if (this.shouldFail("delete")) this.fail("delete");
    super.delete(name, syncDir);
    if (this.#failAt !== 0 && this.hits === 0) this.deletedBeforeFault.push(name);
  }
  override access(name: string, flags: number): boolean {
    if (this.shouldFail("access")) this.fail("access");
    return super.access(name, flags);
  }
  /** The source guard's reads of a file's head count and fail as reads. */
  protected override forwardWatch(path: string): FileWatch {
    const watch = super.forwardWatch(path);
    return {
      head: (suffix, offset, n) => {
        if (this.shouldFail("read")) this.fail("read");
        return watch.head(suffix, offset, n);
      },
      replaced: (suffix, fd) => watch.replaced(suffix, fd),
      hold: () => watch.hold(),
      close: () => watch.close(),
    };
  }
}

class FaultFile extends ForwardingFile {
  constructor(readonly vfs: FaultVfs, inner: VfsFile) {
    super(inner);
  }

  /** Counted and failed as reads (rejecting, as a failed read off the thread does). */
  protected override async forwardReadAsync(dst: Uint8Array, offset: number): Promise<number> {
    this.vfs.readsAhead++;
    if (this.vfs.shouldFail("read")) this.vfs.fail("read");
    try {
      return await super.forwardReadAsync(dst, offset);
    } finally {
      if (dst.byteLength === 0) this.vfs.readsAheadDetached++;
    }
  }
  // close() is never failed: SQLite ignores xClose errors and the fd must not leak.
  override read(dst: Uint8Array, offset: number): number {
    if (this.vfs.shouldFail("read")) this.vfs.fail("read");
    return super.read(dst, offset);
  }
  override write(src: Uint8Array, offset: number): void {
    if (this.vfs.shouldFail("write")) {
      this.vfs.fail("write", () => super.write(src.subarray(0, src.length >> 1), offset));
    }
    super.write(src, offset);
  }
  override truncate(size: number): void {
    if (this.vfs.shouldFail("truncate")) this.vfs.fail("truncate");
    super.truncate(size);
  }
  override sync(flags: number): void {
    if (this.vfs.shouldFail("sync")) this.vfs.fail("sync");
    super.sync(flags);
  }
  override size(): number {
    if (this.vfs.shouldFail("size")) this.vfs.fail("size");
    return super.size();
  }
}
