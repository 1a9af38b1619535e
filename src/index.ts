// Entry point for Node, Deno and Bun: the node-fs VFS is the default, with real file locks where
// the runtime's FFI gives them (src/node/).
export * from "./exports.js";
export { loadSqlite, type LoadOptions } from "./node/load.js";
export { NodeFsVfs } from "./node/fs-vfs.js";
export { fileTarget } from "./node/file-target.js";
export type { Sqlite } from "./sqlite.js";
