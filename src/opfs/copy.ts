// backupToOpfs / restoreFromOpfs / openOpfs: the OPFS operations of the browser entry.
import type { Backup } from "../backup.js";
import { checkOptions, stepLoop, type BackupOptions, type BackupResult } from "../backup-loop.js";
import { SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_IOERR } from "../constants.js";
import { Database, type OpenOptions } from "../database.js";
import { SqliteError } from "../errors.js";
import { checkKeys } from "../options.js";
import { SourceGuard } from "../source-guard.js";
import type { Sqlite } from "../sqlite.js";
import type { OpfsVfs } from "../vfs/opfs.js";
import { domErrorCode, errorText, opfsDirectory, splitOpfsPath } from "./dom.js";
import type { MemoryVfs } from "./memory-vfs.js";
import type { RelaySink, RelayVfs } from "./relay.js";
import { writerMain, type WriterReply, type WriterRequest } from "./writer-worker.js";

/** Unacknowledged bytes allowed in flight to the writer before the copy waits for it. */
const MAX_IN_FLIGHT = 8 << 20;

let writerUrl: string | undefined;
let serial = 0;

/** The main-thread end of the writer worker (see writer-worker.ts). */
class OpfsWriter implements RelaySink {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: SqliteError) => void }>();
  readonly #writes: Promise<void>[] = [];
  #next = 1;
  #inFlight = 0;
  /** The first failure of a write: the copy stops at its next step. */
  error: SqliteError | null = null;

  constructor(readonly path: string) {
    writerUrl ??= URL.createObjectURL(new Blob([`(${writerMain.toString()})()`], { type: "text/javascript" }));
    this.#worker = new Worker(writerUrl, { name: "sqlite-backup-wasm opfs writer" });
    this.#worker.onmessage = (e: MessageEvent<WriterReply>) => {
      const p = this.#pending.get(e.data.id);
      this.#pending.delete(e.data.id);
      if (!p) return;
      const err = e.data.error;
      if (err) p.reject(new SqliteError(`OPFS copy to ${path}: ${err.name}: ${err.message}`, domErrorCode(err, SQLITE_IOERR)));
      else p.resolve();
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      const err = new SqliteError(`OPFS copy to ${path}: the writer worker failed: ${e.message}`, SQLITE_IOERR);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
  }

  request(m: Omit<WriterRequest, "id">, transfer: Transferable[] = []): Promise<void> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...m, id }, transfer);
    });
  }

  write(at: number, bytes: Uint8Array): void {
    const n = bytes.byteLength;
    this.#inFlight += n;
    const data = bytes.byteOffset === 0 && n === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
    this.#writes.push(this.request({ op: "write", at, data: data as ArrayBuffer }, [data as ArrayBuffer]).then(
      () => { this.#inFlight -= n; },
      (e: SqliteError) => { this.#inFlight -= n; this.error ??= e; },
    ));
  }

  truncate(size: number): void {
    this.#writes.push(this.request({ op: "truncate", size }).catch((e: SqliteError) => { this.error ??= e; }));
  }

  /** Waits until at most `limit` bytes are in flight; throws the first write failure. */
  async drain(limit: number): Promise<void> {
    while (this.#writes.length > 0 && (this.#inFlight > limit || limit === 0)) await this.#writes.shift();
    if (this.error) throw this.error;
  }

  terminate(): void {
    this.#worker.terminate();
    const err = new SqliteError(`OPFS copy to ${this.path}: the writer was stopped`, SQLITE_IOERR);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

/** backupToOpfs takes every option of backup(); each one does what it does there. */
const BACKUP_KEYS = ["sourceName", "destName", "pagesPerStep", "pauseMs", "onProgress", "signal", "busyTimeoutMs", "verifySource"] as const;
/** restoreFromOpfs reads one file into a new database: no schemas to choose, no source to guard. */
const RESTORE_KEYS = ["pagesPerStep", "pauseMs", "onProgress", "signal", "busyTimeoutMs"] as const;
export type RestoreOptions = Pick<BackupOptions, (typeof RESTORE_KEYS)[number]>;

/**
 * Copies `source` into the OPFS file at `path` from any thread (the main thread included): the
 * pages go to a temporary file beside the target, which then replaces the target in one rename.
 * Rejects (leaving the previous file intact) on abort, on any failure, or when the target is
 * held open by a worker (SQLITE_BUSY).
 */
export async function backupToOpfs(sqlite: Sqlite, relay: RelayVfs, source: Database, path: string, options: BackupOptions = {}): Promise<BackupResult> {
  const start = performance.now();
  if (!(source instanceof Database)) throw new TypeError("source must be a Database");
  checkKeys(options, BACKUP_KEYS, "backupToOpfs");
  checkOptions(options);
  const { sourceName = "main", destName = "main" } = options;
  // The OPFS file is a database of its own: it has no other schema to copy into.
  if (destName !== "main") throw new TypeError(`backupToOpfs: destName must be "main" (the OPFS file is the destination database), not ${JSON.stringify(destName)}`);
  const { dirs, name, full } = splitOpfsPath(path);
  const writer = new OpfsWriter(full);
  let relayName: string | null = null;
  let dest: Database | undefined;
  let backup: Backup | undefined;
  let opened = false;
  // A fresh relay database each time, so a copy the source guard abandons leaves nothing
  // behind in the temporary file (the truncate cuts off its pages).
  const init = () => {
    backup?.[Symbol.dispose]();
    dest?.close();
    if (relayName !== null) {
      relay.forget(relayName);
      writer.truncate(0);
    }
    relayName = `/backup-${++serial}.db`;
    relay.expect(relayName, writer);
    dest = sqlite.open(relayName, { vfs: relay.name });
    dest.exec("PRAGMA journal_mode=OFF"); // the temporary file and the rename are the rollback
    backup = sqlite.backupInit(dest, "main", source, sourceName);
  };
  try {
    await writer.request({ op: "open", dirs, name, temp: `.${name}.${Date.now().toString(36)}${++serial}.sbw-tmp` });
    opened = true;
    init();
    const guard = options.verifySource === false ? null : SourceGuard.for(sqlite, source, sourceName);
    const result = await stepLoop({
      current: () => backup!,
      restart: init,
      guard,
      afterStep: () => writer.drain(MAX_IN_FLIGHT), // never run far ahead of OPFS
    }, options);
    backup!.finish();
    dest!.close();
    await writer.drain(0);
    await writer.request({ op: "commit" });
    return { ...result, elapsedMs: performance.now() - start };
  } catch (e) {
    backup?.[Symbol.dispose]();
    dest?.close();
    if (opened) await writer.request({ op: "abort" }).catch(() => {});
    throw e;
  } finally {
    if (relayName !== null) relay.forget(relayName);
    writer.terminate();
  }
}

/**
 * Reads the OPFS file at `path` into a new in-memory Database (through the backup API, so the
 * copy is stepped and can report progress). SQLITE_BUSY when a writer is mid-transaction (a
 * non-empty journal or WAL beside it); SQLITE_CANTOPEN when it does not exist.
 */
export async function restoreFromOpfs(sqlite: Sqlite, mem: MemoryVfs, path: string, options: RestoreOptions = {}): Promise<Database> {
  checkKeys(options, RESTORE_KEYS, "restoreFromOpfs");
  checkOptions(options);
  const { dirs, name, full } = splitOpfsPath(path);
  const fail = (e: unknown, code: number) => new SqliteError(`cannot read ${full}: ${errorText(e)}`, domErrorCode(e, code));
  let bytes: Uint8Array;
  try {
    const dir = await opfsDirectory(dirs, false);
    for (const extra of ["-journal", "-wal"]) {
      const size = await dir.getFileHandle(name + extra).then((h) => h.getFile()).then((f) => f.size, () => 0);
      if (size > 0) throw new SqliteError(`cannot read ${full}: ${name}${extra} is not empty (a write is in progress or was interrupted)`, SQLITE_BUSY);
    }
    bytes = new Uint8Array(await (await (await dir.getFileHandle(name)).getFile()).arrayBuffer());
  } catch (e) {
    throw e instanceof SqliteError ? e : fail(e, SQLITE_CANTOPEN);
  }
  // The WAL is empty (checked above), so the file reads correctly in rollback mode.
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
  const staged = `/restore-${++serial}.db`;
  mem.put(staged, bytes);
  let src: Database | undefined;
  let dest: Database | undefined;
  try {
    src = sqlite.open(staged, { vfs: mem.name, readonly: true });
    dest = sqlite.open(":memory:");
    await sqlite.backup(src, dest, options);
    return dest;
  } catch (e) {
    dest?.close();
    throw e;
  } finally {
    src?.close();
    mem.remove(staged);
  }
}

/** openOpfs picks the VFS itself. */
const OPFS_OPEN_KEYS = ["readonly", "create"] as const;
export type OpfsOpenOptions = Omit<OpenOptions, "vfs">;

/** Opens an OPFS file as a Database in a dedicated worker (sync access handles exist only there). */
export async function openOpfs(sqlite: Sqlite, vfs: OpfsVfs, path: string, options: OpfsOpenOptions = {}): Promise<Database> {
  checkKeys(options, OPFS_OPEN_KEYS, "openOpfs");
  if (typeof (globalThis as { FileSystemSyncAccessHandle?: unknown }).FileSystemSyncAccessHandle === "undefined") {
    throw new Error("openOpfs() needs FileSystemSyncAccessHandle, which exists only in dedicated Workers; from the main thread use backupToOpfs()/restoreFromOpfs()");
  }
  const pin = await vfs.prepare(path, options);
  try {
    return sqlite.open(pin.path, { readonly: options.readonly, create: options.create, vfs: vfs.name });
  } finally {
    pin.release(); // the open database holds its own references now
  }
}
