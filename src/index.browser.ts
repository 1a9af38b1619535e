/// <reference lib="esnext.disposable" preserve="true" />
// Entry point for browsers (window and workers): the same API as the Node entry, with an
// in-memory VFS as the default for open(name), and OPFS on top:
//   sqlite.openOpfs(path)               a Database on an OPFS file (dedicated workers)
//   sqlite.backupToOpfs(db, path, opts) copy into OPFS, replaced atomically (any thread)
//   sqlite.restoreFromOpfs(path, opts)  an in-memory Database from an OPFS file (any thread)
//   opfsTarget(dir)                     a replica target in an OPFS directory (any thread)
// Nothing here imports node:* modules.
export * from "./exports.js";
export { loadSqlite, type BrowserSqlite, type BrowserSqlite as Sqlite, type LoadOptions } from "./browser/sqlite.js";
export type { OpfsOpenOptions, RestoreOptions } from "./browser/opfs.js";
export { OpfsVfs } from "./browser/opfs-vfs.js";
export { opfsTarget } from "./browser/opfs-target.js";
