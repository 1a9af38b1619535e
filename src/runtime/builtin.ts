// Node's built-in modules, reached at run time through process.getBuiltinModule so that browser
// bundles import nothing of Node. Node, Bun and Deno have it; browsers, and runtimes without
// getBuiltinModule, get undefined.

/** The built-in module `id` (e.g. "node:fs") of this runtime, or undefined where it has none. */
export function builtin<T>(id: `node:${string}`): T | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return p?.getBuiltinModule?.(id) as T | undefined;
}
