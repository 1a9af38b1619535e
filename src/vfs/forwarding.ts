// A VFS that forwards every call to another VFS: the base for a VFS that wraps one (counting,
// fault injection, encryption at the page level, …). Override the methods you change; everything
// else, optional hooks included, reaches the inner VFS unchanged. An optional hook exists on the
// wrapper exactly when the inner VFS (or file) has it, so SQLite and backup() treat the wrapper as
// they treat the VFS it wraps (write-back before a commit, reads off the thread, real file locks
// through `fd`, the source guard's FileWatch).
import type { FileWatch, OpenResult, Vfs, VfsFile } from "./types.js";

export class ForwardingVfs implements Vfs {
  readonly mxPathname: number;
  readonly exclusive?: boolean;
  readonly writeBack?: () => Promise<void>;
  readonly settle?: () => Promise<void>;
  readonly prefetch?: (path: string, from: number, to: number) => Promise<void>;
  readonly watch?: (path: string) => FileWatch;
  readonly fileId?: (path: string) => string | null;

  constructor(readonly inner: Vfs, readonly name = `forward-${inner.name}`) {
    this.mxPathname = inner.mxPathname;
    if (inner.exclusive !== undefined) this.exclusive = inner.exclusive;
    if (inner.writeBack) this.writeBack = () => this.forwardWriteBack();
    if (inner.settle) this.settle = () => this.forwardSettle();
    if (inner.prefetch) this.prefetch = (path, from, to) => this.forwardPrefetch(path, from, to);
    if (inner.watch) this.watch = (path) => this.forwardWatch(path);
    if (inner.fileId) this.fileId = (path) => inner.fileId!(path);
  }

  open(name: string | null, flags: number): OpenResult {
    const r = this.inner.open(name, flags);
    return { file: this.wrapFile(r.file, name, flags), outFlags: r.outFlags };
  }
  delete(name: string, syncDir: boolean): void {
    this.inner.delete(name, syncDir);
  }
  access(name: string, flags: number): boolean {
    return this.inner.access(name, flags);
  }
  fullPathname(name: string): string {
    return this.inner.fullPathname(name);
  }

  /** The file open() returns for an inner file: override to return a ForwardingFile of your own. */
  protected wrapFile(file: VfsFile, _name: string | null, _flags: number): VfsFile {
    return new ForwardingFile(file);
  }
  /** Called for writeBack() when the inner VFS has it. */
  protected forwardWriteBack(): Promise<void> {
    return this.inner.writeBack!();
  }
  /** Called for settle() when the inner VFS has it. */
  protected forwardSettle(): Promise<void> {
    return this.inner.settle!();
  }
  /** Called for watch() when the inner VFS has it. */
  protected forwardWatch(path: string): FileWatch {
    return this.inner.watch!(path);
  }
  /** Called for prefetch() when the inner VFS has it. */
  protected forwardPrefetch(path: string, from: number, to: number): Promise<void> {
    return this.inner.prefetch!(path, from, to);
  }
}

export class ForwardingFile implements VfsFile {
  readonly lockKey: string;
  readonly fd?: number;
  readonly readAsync?: (dst: Uint8Array, offset: number) => Promise<number>;
  readonly fileControl?: (op: number, arg: number) => number;
  readonly lockChanged?: (level: number) => void;
  readonly shmChanged?: () => void;

  constructor(readonly inner: VfsFile) {
    this.lockKey = inner.lockKey;
    if (inner.fd !== undefined) this.fd = inner.fd;
    if (inner.readAsync) this.readAsync = (dst, offset) => this.forwardReadAsync(dst, offset);
    if (inner.fileControl) this.fileControl = (op, arg) => inner.fileControl!(op, arg);
    if (inner.lockChanged) this.lockChanged = (level) => inner.lockChanged!(level);
    if (inner.shmChanged) this.shmChanged = () => inner.shmChanged!();
  }

  close(): void {
    this.inner.close();
  }
  read(dst: Uint8Array, offset: number): number {
    return this.inner.read(dst, offset);
  }
  write(src: Uint8Array, offset: number): void {
    this.inner.write(src, offset);
  }
  truncate(size: number): void {
    this.inner.truncate(size);
  }
  sync(flags: number): void {
    this.inner.sync(flags);
  }
  size(): number {
    return this.inner.size();
  }
  sectorSize(): number {
    return this.inner.sectorSize();
  }
  deviceCharacteristics(): number {
    return this.inner.deviceCharacteristics();
  }
  /** Called for readAsync() when the inner file has it. */
  protected forwardReadAsync(dst: Uint8Array, offset: number): Promise<number> {
    return this.inner.readAsync!(dst, offset);
  }
}
