/// <reference lib="esnext.disposable" preserve="true" />
// The types of the package's "default" export condition, which TypeScript's moduleResolution
// "bundler" resolves (it applies neither "browser" nor "node"): everything both entries export,
// with the browser's Sqlite (the core API plus opfsAvailable, openOpfs, backupToOpfs and
// restoreFromOpfs, which exist in browsers only) and a LoadOptions that takes both entries'
// options. The runtime code of that condition is the Node entry (dist/index.js); bundlers that
// apply "browser" load the browser entry.
import type { BrowserSqlite, LoadOptions as BrowserLoadOptions } from "./browser/sqlite.js";
import { loadSqlite as load } from "./index.js";
import type { LoadOptions as NodeLoadOptions } from "./node/load.js";

export * from "./index.js";
export { OpfsVfs } from "./browser/opfs-vfs.js";
export type { OpfsOpenOptions, RestoreOptions } from "./browser/opfs.js";

/** A SQLite instance; its OPFS methods (opfsAvailable, openOpfs, backupToOpfs, restoreFromOpfs) exist in browsers only. */
export type Sqlite = BrowserSqlite;
/** loadSqlite()'s options: `wasm` and `vfs` everywhere, `locking` in Node, Deno and Bun, `writerWorkerUrl` in browsers. */
export type LoadOptions = NodeLoadOptions & BrowserLoadOptions;
/**
 * Loads SQLite. Without options every call returns the same instance (one heap, so any two of
 * its databases can take part in one backup); with options each call makes a new one.
 */
export const loadSqlite = load as (options?: LoadOptions) => Promise<Sqlite>;
