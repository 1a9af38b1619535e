// ForwardingVfs forwards every hook of the VFS facade, and so do the test wrappers built on it
// (FaultVfs, CrashVfs): a hook a wrapper dropped would silently change what production code does
// under it (e.g. without writeBack an incremental backup skips its mid-compare flush). The lists
// below are checked against the facade's types (`npm test` type-checks test/): a new hook in
// src/vfs/types.ts fails the type check until it is listed here, and then this test until it is
// forwarded.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ForwardingVfs, loadSqlite, NodeFsVfs, type FileWatch, type OpenResult, type Vfs, type VfsFile } from "../src/index.js";
import { CrashVfs } from "./faults/crash-vfs.js";
import { FaultVfs } from "./faults/fault-vfs.js";
import { tmpDir } from "./helpers.js";

/** Every member of a type, listed once: a missing one is a type error. */
type Exhaustive<T> = { [K in keyof Required<T>]: true };
const VFS_HOOKS: Exhaustive<Vfs> = {
  name: true, mxPathname: true, exclusive: true, open: true, delete: true, access: true, fullPathname: true,
  writeBack: true, settle: true, prefetch: true, watch: true, fileId: true,
};
const FILE_HOOKS: Exhaustive<VfsFile> = {
  lockKey: true, fd: true, close: true, read: true, readAsync: true, write: true, truncate: true, sync: true, size: true,
  fileControl: true, sectorSize: true, deviceCharacteristics: true, lockChanged: true, shmChanged: true,
};

/** A VFS with every hook, recording which were called. */
class ProbeVfs implements Vfs {
  readonly calls = new Set<string>();
  readonly name = "probe";
  readonly mxPathname = 512;
  readonly exclusive = true;
  open(_name: string | null, flags: number): OpenResult {
    this.calls.add("open");
    return { file: new ProbeFile(this.calls), outFlags: flags };
  }
  delete(): void {
    this.calls.add("delete");
  }
  access(): boolean {
    this.calls.add("access");
    return true;
  }
  fullPathname(name: string): string {
    this.calls.add("fullPathname");
    return name;
  }
  async writeBack(): Promise<void> {
    this.calls.add("writeBack");
  }
  async settle(): Promise<void> {
    this.calls.add("settle");
  }
  async prefetch(): Promise<void> {
    this.calls.add("prefetch");
  }
  watch(): FileWatch {
    this.calls.add("watch");
    return { head: () => null, replaced: () => false, hold: () => "unavailable", close: () => {} };
  }
  fileId(): string {
    this.calls.add("fileId");
    return "id";
  }
}

class ProbeFile implements VfsFile {
  readonly lockKey = "probe-file";
  readonly fd = 99;
  constructor(readonly calls: Set<string>) {}
  close(): void {
    this.calls.add("close");
  }
  read(): number {
    this.calls.add("read");
    return 0;
  }
  readonly readAsync = async (): Promise<number> => {
    this.calls.add("readAsync");
    return 0;
  };
  write(): void {
    this.calls.add("write");
  }
  truncate(): void {
    this.calls.add("truncate");
  }
  sync(): void {
    this.calls.add("sync");
  }
  size(): number {
    this.calls.add("size");
    return 0;
  }
  fileControl(): number {
    this.calls.add("fileControl");
    return 12;
  }
  sectorSize(): number {
    this.calls.add("sectorSize");
    return 4096;
  }
  deviceCharacteristics(): number {
    this.calls.add("deviceCharacteristics");
    return 0;
  }
  lockChanged(): void {
    this.calls.add("lockChanged");
  }
  shmChanged(): void {
    this.calls.add("shmChanged");
  }
}

const wrappers: [string, (inner: Vfs) => Vfs][] = [
  ["ForwardingVfs", (inner) => new ForwardingVfs(inner)],
  ["FaultVfs", (inner) => new FaultVfs(inner)],
  ["CrashVfs", (inner) => new CrashVfs(inner)],
];

for (const [label, wrap] of wrappers) {
  test(`${label} forwards every hook of the VFS and of its files`, async () => {
    const probe = new ProbeVfs();
    const vfs = wrap(probe) as unknown as Record<string, unknown>;
    const call = async (obj: Record<string, unknown>, key: string) => {
      const v = obj[key];
      return typeof v === "function" ? await (v as (...a: unknown[]) => unknown).call(obj, "x", 0, 0) : v;
    };
    for (const key of Object.keys(VFS_HOOKS)) {
      if (key === "name") continue; // a wrapper has a name of its own
      assert.ok(vfs[key] !== undefined, `${label}.${key} exists`);
      const value = await call(vfs, key);
      if (typeof (probe as unknown as Record<string, unknown>)[key] === "function") assert.ok(probe.calls.has(key), `${label}.${key} reaches the inner VFS`);
      else assert.equal(value, (probe as unknown as Record<string, unknown>)[key], `${label}.${key} is the inner VFS's`);
    }
    const file = (vfs.open as Vfs["open"]).call(vfs, "f", 0).file as unknown as Record<string, unknown>;
    for (const key of Object.keys(FILE_HOOKS)) {
      assert.ok(file[key] !== undefined, `${label} file.${key} exists`);
      const value = await call(file, key);
      if (key === "lockKey" || key === "fd") assert.equal(value, key === "fd" ? 99 : "probe-file", `${label} file.${key}`);
      else assert.ok(probe.calls.has(key), `${label} file.${key} reaches the inner file`);
    }
  });

  test(`${label} adds no optional hook the inner VFS lacks`, () => {
    const bare: Vfs = { name: "bare", mxPathname: 512, open: () => { throw new Error("unused"); }, delete() {}, access: () => false, fullPathname: (n) => n };
    const vfs = wrap(bare) as unknown as Record<string, unknown>;
    for (const key of ["exclusive", "writeBack", "settle", "prefetch", "watch", "fileId"]) assert.is(vfs[key], undefined, `${label}.${key}`);
  });
}

test("an incremental backup through FaultVfs over the fs VFS writes back before it commits (the path production runs)", async () => {
  let writeBacks = 0;
  class Counting extends FaultVfs {
    protected override forwardWriteBack(): Promise<void> {
      writeBacks++;
      return super.forwardWriteBack();
    }
  }
  const vfs = new Counting(new NodeFsVfs(), "counting-writeback");
  const own = await loadSqlite({ vfs: [vfs] });
  const dir = tmpDir("fwd");
  const source = own.open(`${dir}/src.db`);
  source.exec("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(50000))");
  await own.backup(source, `file:${dir}/dst.db?vfs=${vfs.name}`, { incremental: false });
  source.exec("INSERT INTO t VALUES (randomblob(50000))");
  const dest = own.open(`${dir}/dst.db`, { vfs: vfs.name });
  const before = writeBacks;
  const r = await own.backup(source, dest);
  dest.close();
  source.close();
  assert.ok(r.incremental, "the incremental route ran");
  assert.ok(writeBacks > before, `writeBack reached the fs VFS through the wrapper (${writeBacks - before} calls)`);
});

test.run();
