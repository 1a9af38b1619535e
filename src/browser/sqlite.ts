// The browser's Sqlite: the core API plus the OPFS operations, and loadSqlite() for browsers
// (window and workers). VFSes: "memory" (the default for open(name)), "opfs" (openOpfs, dedicated
// workers), "opfs-relay" (backupToOpfs from any thread), then LoadOptions.vfs.
import type { Database } from "../handles/database.js";
import type { BackupOptions, BackupResult } from "../ops/options.js";
import { instantiate, type Runtime } from "../runtime/runtime.js";
import { Sqlite } from "../sqlite.js";
import { MemoryVfs } from "../vfs/memory.js";
import type { Vfs } from "../vfs/types.js";
import { backupToOpfs, openOpfs, restoreFromOpfs, type OpfsOpenOptions, type RestoreOptions } from "./opfs.js";
import { OpfsVfs } from "./opfs-vfs.js";
import { RelayVfs } from "./relay-vfs.js";
import { defaultWasm } from "./wasm-default.js";

export class BrowserSqlite extends Sqlite {
  readonly #memory: MemoryVfs;
  readonly #opfs: OpfsVfs;
  readonly #relay: RelayVfs;

  /** @internal Use loadSqlite(). */
  constructor(runtime: Runtime, memory: MemoryVfs, opfs: OpfsVfs, relay: RelayVfs) {
    super(runtime);
    this.#memory = memory;
    this.#opfs = opfs;
    this.#relay = relay;
  }

  /** Opens the OPFS file at path (e.g. "dir/app.db") as a Database. Dedicated workers only. */
  openOpfs(path: string, options?: OpfsOpenOptions): Promise<Database> {
    return openOpfs(this.runtime, this.#opfs, path, options);
  }

  /** Copies source into the OPFS file at path; the file is replaced atomically when done. */
  backupToOpfs(source: Database, path: string, options?: BackupOptions): Promise<BackupResult> {
    return backupToOpfs(this.runtime, this.#relay, source, path, options);
  }

  /** Reads the OPFS file at path into a new in-memory Database. */
  restoreFromOpfs(path: string, options?: RestoreOptions): Promise<Database> {
    return restoreFromOpfs(this.runtime, this.#memory, path, options);
  }
}

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
  return new BrowserSqlite(await instantiate(await compile(wasm), [memory, opfs, relay, ...extra]), memory, opfs, relay);
}
