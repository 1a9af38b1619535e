// Entry point for browsers (window and workers). The same API as the Node entry, with an
// in-memory VFS as the default for open(name), and OPFS on top:
//   sqlite.openOpfs(path)               a Database on an OPFS file (dedicated workers)
//   sqlite.backupToOpfs(db, path, opts) copy into OPFS, replaced atomically (any thread)
//   sqlite.restoreFromOpfs(path, opts)  an in-memory Database from an OPFS file (any thread)
// Nothing here imports node:* modules.
import type { BackupOptions, BackupResult } from "./backup-loop.js";
import type { Database } from "./database.js";
import { backupToOpfs, openOpfs, restoreFromOpfs, type OpfsOpenOptions, type RestoreOptions } from "./opfs/copy.js";
import { MemoryVfs } from "./opfs/memory-vfs.js";
import { RelayVfs } from "./opfs/relay.js";
import { defaultWasm } from "./opfs/wasm-default.js";
import { instantiate, type Sqlite } from "./sqlite.js";
import { OpfsVfs } from "./vfs/opfs.js";
import type { Vfs } from "./vfs/types.js";

export * from "./constants.js";
export { Backup, type StepResult } from "./backup.js";
export type { BackupOptions, BackupProgress, BackupResult } from "./backup-loop.js";
export { Database, type BindParams, type OpenOptions, type Row } from "./database.js";
export { SqliteError, VfsError } from "./errors.js";
export type { OpenResult, Vfs, VfsFile } from "./vfs/types.js";
export type { OpfsOpenOptions, RestoreOptions } from "./opfs/copy.js";
export { MemoryVfs } from "./opfs/memory-vfs.js";
export { OpfsVfs } from "./vfs/opfs.js";

/** A Sqlite instance of the browser entry: the core API plus the OPFS operations. */
export interface BrowserSqlite extends Sqlite {
  /** Opens the OPFS file at path (e.g. "dir/app.db") as a Database. Dedicated workers only. */
  openOpfs(path: string, options?: OpfsOpenOptions): Promise<Database>;
  /** Copies source into the OPFS file at path; the file is replaced atomically when done. */
  backupToOpfs(source: Database, path: string, options?: BackupOptions): Promise<BackupResult>;
  /** Reads the OPFS file at path into a new in-memory Database. */
  restoreFromOpfs(path: string, options?: RestoreOptions): Promise<Database>;
}
export type { BrowserSqlite as Sqlite };

export interface LoadOptions {
  /** The module: bytes, a compiled Module, or a URL to sqlite3.wasm. Default: the packaged one. */
  wasm?: BufferSource | WebAssembly.Module | URL | string;
  /** Extra VFSes to register after the built-in ones. */
  vfs?: readonly Vfs[];
}

let shared: Promise<BrowserSqlite> | undefined;

/**
 * Loads SQLite. Without options every call returns the same instance (one heap, so any two of
 * its databases can take part in one backup); with options each call makes a new one.
 * VFSes: "memory" (default), "opfs" (openOpfs), "opfs-relay" (backupToOpfs), then options.vfs.
 */
export function loadSqlite(options?: LoadOptions): Promise<BrowserSqlite> {
  if (options === undefined || (options.wasm === undefined && options.vfs === undefined)) return (shared ??= load(undefined, []));
  return load(options.wasm, options.vfs ?? []);
}

async function compile(wasm: LoadOptions["wasm"]): Promise<WebAssembly.Module> {
  const source: NonNullable<LoadOptions["wasm"]> = wasm ?? (await defaultWasm());
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source === "string" || (source as object) instanceof URL) {
    const res = await fetch(source as string | URL);
    if (!res.ok) throw new Error(`cannot load ${String(source)}: HTTP ${res.status}`);
    // compileStreaming insists on Content-Type application/wasm; fall back for other servers.
    if (res.headers.get("content-type")?.startsWith("application/wasm")) return WebAssembly.compileStreaming(res);
    return WebAssembly.compile(await res.arrayBuffer());
  }
  return WebAssembly.compile(source as BufferSource);
}

async function load(wasm: LoadOptions["wasm"], extra: readonly Vfs[]): Promise<BrowserSqlite> {
  const memory = new MemoryVfs("memory");
  const opfs = new OpfsVfs("opfs");
  const relay = new RelayVfs("opfs-relay");
  const sqlite = await instantiate(await compile(wasm), [memory, opfs, relay, ...extra]);
  return Object.assign(sqlite, {
    openOpfs: (path: string, options?: OpfsOpenOptions) => openOpfs(sqlite, opfs, path, options),
    backupToOpfs: (source: Database, path: string, options?: BackupOptions) => backupToOpfs(sqlite, relay, source, path, options),
    restoreFromOpfs: (path: string, options?: RestoreOptions) => restoreFromOpfs(sqlite, memory, path, options),
  });
}
