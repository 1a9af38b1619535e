// Entry point for Node and Deno: the node-fs VFS is the default.
import { readFile } from "node:fs/promises";
import { instantiate, type Sqlite } from "./sqlite.js";
import type { Vfs } from "./vfs/types.js";
import { NodeFsVfs } from "./vfs/node-fs.js";

export * from "./constants.js";
export { Backup, type StepResult } from "./backup.js";
export type { BackupOptions, BackupProgress, BackupResult } from "./backup-loop.js";
export { Database, type BindParams, type OpenOptions, type Row } from "./database.js";
export { SqliteError, VfsError } from "./errors.js";
export type { Sqlite } from "./sqlite.js";
export type { OpenResult, Vfs, VfsFile } from "./vfs/types.js";

export interface LoadOptions {
  /** The module: bytes, a compiled Module, or a URL/path to sqlite3.wasm. Default: the packaged one. */
  wasm?: BufferSource | WebAssembly.Module | URL | string;
  /** Extra VFSes to register after the default one (e.g. a fault-injecting wrapper in tests). */
  vfs?: readonly Vfs[];
}

let shared: Promise<Sqlite> | undefined;

/**
 * Loads SQLite. Without options every call returns the same instance (one heap, so any two of
 * its databases can take part in one backup); with options each call makes a new one.
 */
export function loadSqlite(options?: LoadOptions): Promise<Sqlite> {
  const wasm = options?.wasm ?? new URL("../wasm/sqlite3.wasm", import.meta.url);
  if (options === undefined || (options.wasm === undefined && options.vfs === undefined)) return (shared ??= load(wasm, []));
  return load(wasm, options.vfs ?? []);
}

async function load(wasm: NonNullable<LoadOptions["wasm"]>, extra: readonly Vfs[]): Promise<Sqlite> {
  let module: WebAssembly.Module;
  if (wasm instanceof WebAssembly.Module) module = wasm;
  else if (typeof wasm === "string" || wasm instanceof URL) {
    const url = wasm instanceof URL ? wasm : /^[a-z][a-z0-9+.-]+:/i.test(wasm) && !/^[a-z]:[\\/]/i.test(wasm) ? new URL(wasm) : null;
    const bytes = url === null || url.protocol === "file:" ? await readFile(url ?? (wasm as string)) : new Uint8Array(await (await fetch(url)).arrayBuffer());
    module = await WebAssembly.compile(bytes);
  } else module = await WebAssembly.compile(wasm);
  return instantiate(module, [new NodeFsVfs(), ...extra]);
}
