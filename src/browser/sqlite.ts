// The browser's Sqlite: the core API plus the OPFS operations, and loadSqlite() for browsers
// (window and workers). VFSes: "memory" (the default for open(name)), "opfs" (openOpfs, dedicated
// workers), "opfs-relay" (backupToOpfs from any thread), then LoadOptions.vfs.
import type { Database } from "../handles/database.js";
import type { BackupOptions, BackupResult } from "../ops/options.js";
import { instantiate, type Runtime } from "../runtime/runtime.js";
import { Sqlite } from "../sqlite.js";
import { MemoryVfs } from "../vfs/memory.js";
import type { Vfs } from "../vfs/types.js";
import { opfsUnavailable } from "./dom.js";
import { backupToOpfs, openOpfs, restoreFromOpfs, type OpfsOpenOptions, type RestoreOptions } from "./opfs.js";
import { OpfsVfs } from "./opfs-vfs.js";
import { RelayVfs } from "./relay-vfs.js";
import { defaultWasm } from "./wasm-default.js";

export class BrowserSqlite extends Sqlite {
  readonly #memory: MemoryVfs;
  readonly #opfs: OpfsVfs;
  readonly #relay: RelayVfs;
  readonly #writerWorkerUrl: string | undefined;

  /** @internal Use loadSqlite(). */
  constructor(runtime: Runtime, memory: MemoryVfs, opfs: OpfsVfs, relay: RelayVfs, writerWorkerUrl?: string) {
    super(runtime);
    this.#memory = memory;
    this.#opfs = opfs;
    this.#relay = relay;
    this.#writerWorkerUrl = writerWorkerUrl;
  }

  /**
   * Whether this context has OPFS (private windows in Firefox and Safari have none): when it is
   * false, every OPFS method rejects at once with SQLITE_CANTOPEN naming the cause.
   */
  async opfsAvailable(): Promise<boolean> {
    return (await opfsUnavailable()) === null;
  }

  /** Opens the OPFS file at path (e.g. "dir/app.db") as a Database. Dedicated workers only. */
  openOpfs(path: string, options?: OpfsOpenOptions): Promise<Database> {
    return openOpfs(this.runtime, this.#opfs, path, options);
  }

  /** Copies source into the OPFS file at path; the file is replaced atomically when done. */
  backupToOpfs(source: Database, path: string, options?: BackupOptions): Promise<BackupResult> {
    return backupToOpfs(this.runtime, this.#relay, source, path, options, this.#writerWorkerUrl);
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
  /**
   * Where backupToOpfs starts its writer worker: the URL of a copy of
   * sqlite-backup-wasm/opfs-writer.js served by the app (a classic script with no imports),
   * for a Content-Security-Policy whose worker-src does not allow blob:. Default: a blob: URL
   * made from the script inside this bundle.
   */
  writerWorkerUrl?: string | URL;
}

let shared: Promise<BrowserSqlite> | undefined;

/**
 * Loads SQLite. Without options every call returns the same instance (one heap, so any two of
 * its databases can take part in one backup); with options each call makes a new one.
 */
export function loadSqlite(options?: LoadOptions): Promise<BrowserSqlite> {
  if (options === undefined || (options.wasm === undefined && options.vfs === undefined && options.writerWorkerUrl === undefined)) {
    return (shared ??= load(undefined, [], undefined));
  }
  const { writerWorkerUrl } = options;
  if (writerWorkerUrl !== undefined && typeof writerWorkerUrl !== "string" && !(writerWorkerUrl instanceof URL)) {
    return Promise.reject(new TypeError("writerWorkerUrl must be a string or a URL"));
  }
  return load(options.wasm, options.vfs ?? [], writerWorkerUrl === undefined ? undefined : new URL(writerWorkerUrl, location.href).href);
}

/** What to do when the packaged sqlite3.wasm is not where the bundle expects it. */
const ASSET_HINT = ": the bundler did not emit the package's sqlite3.wasm beside the bundle (Vite, webpack and Rollup with an " +
  "asset plugin emit new URL(…, import.meta.url); esbuild does not): import \"sqlite-backup-wasm/inline\" (the wasm inlined), " +
  "copy wasm/sqlite3.wasm to where the URL points, or pass loadSqlite({ wasm: url })";

async function compile(wasm: LoadOptions["wasm"]): Promise<WebAssembly.Module> {
  const source: NonNullable<LoadOptions["wasm"]> = wasm ?? (await defaultWasm());
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source === "string" || (source as object) instanceof URL) {
    const hint = wasm === undefined ? ASSET_HINT : "";
    const res = await fetch(source as string | URL).catch((e: unknown) => {
      throw new Error(`cannot load ${String(source)}: ${String(e)}${hint}`);
    });
    if (!res.ok) throw new Error(`cannot load ${String(source)}: HTTP ${res.status}${hint}`);
    // compileStreaming insists on Content-Type application/wasm; fall back for other servers.
    const type = res.headers.get("content-type") ?? "";
    if (type.startsWith("application/wasm")) return WebAssembly.compileStreaming(res);
    const bytes = new Uint8Array(await res.arrayBuffer());
    // A dev server's fallback page (HTTP 200, text/html) where the file is missing.
    if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new Error(`cannot load ${String(source)}: not a WebAssembly module (Content-Type ${type || "none"})${hint}`);
    }
    return WebAssembly.compile(bytes);
  }
  return WebAssembly.compile(source as BufferSource);
}

async function load(wasm: LoadOptions["wasm"], extra: readonly Vfs[], writerWorkerUrl: string | undefined): Promise<BrowserSqlite> {
  const memory = new MemoryVfs("memory");
  const opfs = new OpfsVfs("opfs");
  const relay = new RelayVfs("opfs-relay");
  return new BrowserSqlite(await instantiate(await compile(wasm), [memory, opfs, relay, ...extra]), memory, opfs, relay, writerWorkerUrl);
}
