// A Vfs wrapper that simulates power loss, after SQLite's crash tests (test6.c): it remembers what
// every write or truncate since a file's last sync overwrote, and at the chosen moment (the N-th
// sync or the N-th write) "loses power": each unsynced change is undone ("drop"), or, in "garble"
// mode, each one independently survives, is undone, or becomes random bytes, and a file that grew
// since its last sync may keep or lose its tail. After the crash every call fails, as if the
// process were gone; close() still releases the descriptor. Deletes count as durable at once
// (node-fs syncs the directory).
import * as fs from "node:fs";
import { ForwardingFile, ForwardingVfs, type Vfs, type VfsFile } from "../../src/index.js";

export type CrashMode = "drop" | "garble";

interface FileState {
  syncedSize: number;
  /** What each unsynced write/truncate overwrote, oldest first. */
  undo: { offset: number; old: Uint8Array; len: number }[];
}

export class CrashVfs extends ForwardingVfs {
  readonly files = new Map<string, FileState>();
  crashed = false;
  /** Paths deleted before the crash (a deleted journal is the commit point). */
  deleted: string[] = [];
  syncs = 0;
  writes = 0;
  #at: { op: "sync" | "write"; n: number } | null = null;
  #mode: CrashMode = "drop";
  #rand: () => number = Math.random;

  constructor(inner: Vfs, name = `crash-${inner.name}`) {
    super(inner, name);
  }

  /** Crash at the n-th sync or write from now. */
  arm(op: "sync" | "write", n: number, mode: CrashMode, rand: () => number): void {
    this.#at = { op, n };
    this.#mode = mode;
    this.#rand = rand;
    this.crashed = false;
    this.deleted = [];
    this.syncs = 0;
    this.writes = 0;
  }

  disarm(): void {
    this.#at = null;
    this.crashed = false;
    this.files.clear();
  }

  /** Counts an operation; crashes (and throws) when it is the armed one. */
  tick(op: "sync" | "write"): void {
    this.alive();
    const n = op === "sync" ? ++this.syncs : ++this.writes;
    if (this.#at?.op === op && this.#at.n === n) {
      this.#powerLoss();
      throw new Error(`simulated power loss at ${op} #${n}`);
    }
  }

  alive(): void {
    if (this.crashed) throw new Error("the machine is off (simulated power loss)");
  }

  state(path: string, size: number): FileState {
    let s = this.files.get(path);
    if (!s) this.files.set(path, (s = { syncedSize: size, undo: [] }));
    return s;
  }

  #powerLoss(): void {
    this.crashed = true;
    for (const [path, s] of this.files) {
      if (!fs.existsSync(path)) continue;
      const fd = fs.openSync(path, "r+");
      try {
        for (const u of s.undo.toReversed()) {
          const r = this.#mode === "drop" ? 1 : this.#rand();
          if (r < 1 / 3) continue; // this write reached the disk after all
          if (r < 2 / 3) fs.writeSync(fd, u.old, 0, u.old.length, u.offset); // it did not
          else { // the sectors hold garbage
            const junk = new Uint8Array(u.len);
            for (let i = 0; i < junk.length; i++) junk[i] = (this.#rand() * 256) | 0;
            fs.writeSync(fd, junk, 0, junk.length, u.offset);
          }
        }
        const size = fs.fstatSync(fd).size;
        if (size > s.syncedSize && (this.#mode === "drop" || this.#rand() < 0.5)) fs.ftruncateSync(fd, s.syncedSize);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.files.clear();
  }

  override open(name: string | null, flags: number): ReturnType<Vfs["open"]> {
    this.alive();
    return super.open(name, flags);
  }
  protected override wrapFile(file: VfsFile, name: string | null): VfsFile {
    return new CrashFile(this, file, name);
  }
  override delete(name: string, syncDir: boolean): void {
    this.alive();
    super.delete(name, syncDir);
    this.files.delete(name);
    this.deleted.push(name);
  }
  override access(name: string, flags: number): boolean {
    this.alive();
    return super.access(name, flags);
  }
}

class CrashFile extends ForwardingFile {
  /** path: null for temp files, which do not survive a reboot and need no tracking. */
  constructor(readonly vfs: CrashVfs, inner: VfsFile, readonly path: string | null) {
    super(inner);
  }

  #track(offset: number, len: number): void {
    if (this.path === null) return;
    const s = this.vfs.state(this.path, this.inner.size());
    const old = new Uint8Array(len);
    const got = this.inner.read(old, offset);
    s.undo.push({ offset, old: old.subarray(0, got), len });
  }

  override read(dst: Uint8Array, offset: number): number {
    this.vfs.alive();
    return super.read(dst, offset);
  }
  override write(src: Uint8Array, offset: number): void {
    this.vfs.tick("write");
    this.#track(offset, src.length);
    super.write(src, offset);
  }
  override truncate(size: number): void {
    this.vfs.alive();
    const cur = this.inner.size();
    if (size < cur) this.#track(size, cur - size);
    super.truncate(size);
  }
  override sync(flags: number): void {
    this.vfs.tick("sync");
    super.sync(flags);
    if (this.path !== null) this.vfs.files.set(this.path, { syncedSize: this.inner.size(), undo: [] });
  }
  override size(): number {
    this.vfs.alive();
    return super.size();
  }
}
