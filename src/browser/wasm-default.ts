// Where the browser entry finds sqlite3.wasm when loadSqlite() is given none: next to the
// package, resolved from this module's URL. rollup.config.mjs swaps this module for one that
// inlines the wasm (via @rollup/plugin-wasm), so bundles need no asset handling.
export function defaultWasm(): URL | Promise<WebAssembly.Module> {
  return new URL("../../wasm/sqlite3.wasm", import.meta.url);
}
