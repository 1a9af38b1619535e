// loadSqlite() for Node, Deno and Bun: the module read from the package (or the given bytes,
// Module or URL), the node-fs VFS as the default, and the lock layer the runtime allows.
import { readFile } from "node:fs/promises";
import { yieldToEventLoop } from "../ops/driver.js";
import { instantiate, type LockingInfo } from "../runtime/runtime.js";
import { Sqlite } from "../sqlite.js";
import { processLocking } from "../vfs/process-locks.js";
import type { Vfs } from "../vfs/types.js";
import { NodeFsVfs } from "./fs-vfs.js";
import { loadLibc } from "./libc.js";
import { ofdLocking } from "./ofd-locks.js";

export interface LoadOptions {
  /** The module: bytes, a compiled Module, or a URL/path to sqlite3.wasm. Default: the packaged one. */
  wasm?: BufferSource | WebAssembly.Module | URL | string;
  /** Extra VFSes to register after the default one (e.g. a fault-injecting wrapper in tests). */
  vfs?: readonly Vfs[];
  /**
   * "auto" (default): real file locks (OFD, through the runtime's FFI) where available, else the
   * in-process table. "os": insist (rejects where unavailable). "process": the in-process table.
   */
  locking?: "auto" | "os" | "process";
}

let shared: Promise<Sqlite> | undefined;

/**
 * Loads SQLite. Without options every call returns the same instance (one heap, so any two of
 * its databases can take part in one backup); with options each call makes a new one.
 */
export function loadSqlite(options?: LoadOptions): Promise<Sqlite> {
  const wasm = options?.wasm ?? new URL("../../wasm/sqlite3.wasm", import.meta.url); // from src/node/ or dist/node/
  const { vfs, locking = "auto" } = options ?? {};
  if (!["auto", "os", "process"].includes(locking)) throw new TypeError(`locking must be "auto", "os" or "process"`);
  if (options === undefined || (options.wasm === undefined && vfs === undefined && locking === "auto")) return (shared ??= load(wasm, [], locking));
  return load(wasm, vfs ?? [], locking);
}

let libc: ReturnType<typeof loadLibc> | undefined;

async function lockingFor(wanted: "auto" | "os" | "process"): Promise<LockingInfo> {
  if (wanted === "process") return { locking: processLocking, reason: "this JS realm only (locking: \"process\" was asked for)" };
  const { libc: c, whyNot } = await (libc ??= loadLibc());
  if (c) return { locking: ofdLocking(c), reason: `OFD locks and the -shm file through ${c.via}` };
  if (wanted === "os") throw new Error(`real file locks are not available here: ${whyNot}`);
  return { locking: processLocking, reason: `this JS realm only: ${whyNot}` };
}

async function load(wasm: NonNullable<LoadOptions["wasm"]>, extra: readonly Vfs[], locking: "auto" | "os" | "process"): Promise<Sqlite> {
  let module: WebAssembly.Module;
  if (wasm instanceof WebAssembly.Module) module = wasm;
  else if (typeof wasm === "string" || wasm instanceof URL) {
    const url = wasm instanceof URL ? wasm : /^[a-z][a-z0-9+.-]+:/i.test(wasm) && !/^[a-z]:[\\/]/i.test(wasm) ? new URL(wasm) : null;
    const bytes = url === null || url.protocol === "file:" ? await readFile(url ?? (wasm as string)) : new Uint8Array(await (await fetch(url)).arrayBuffer());
    module = await WebAssembly.compile(bytes);
  } else module = await WebAssembly.compile(wasm);
  const sqlite = new Sqlite(await instantiate(module, [new NodeFsVfs(), ...extra], await lockingFor(locking)));
  // The instantiation settles in a V8 task that Node runs while it waits, with the event loop
  // idle, for every background task (NodePlatform::DrainTasks): a caller that went straight on
  // to backup() waited there for the optimizing compiles its first calls started (100-150 ms of
  // a first backup). Resolving from a turn of the event loop lets them run in the background.
  await yieldToEventLoop();
  return sqlite;
}
