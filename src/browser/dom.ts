// OPFS pieces that TypeScript's DOM lib does not declare (they live in the WebWorker lib), and
// the path conventions and error text every OPFS module here shares (codes: core/errors.ts errorCode).
import { SQLITE_CANTOPEN } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";

export interface SyncAccessHandle {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

export type SyncAccessMode = "readwrite" | "read-only";

export interface OpfsFileHandle extends FileSystemFileHandle {
  createSyncAccessHandle(options?: { mode?: SyncAccessMode }): Promise<SyncAccessHandle>;
}

/** "dir/./sub/../app.db" → { dirs: ["dir"], name: "app.db", full: "/dir/app.db" }. */
export function splitOpfsPath(path: string): { dirs: string[]; name: string; full: string } {
  if (typeof path !== "string") throw new TypeError("path must be a string");
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  const name = parts.pop();
  if (name === undefined) throw new TypeError(`not a file path: "${path}"`);
  return { dirs: parts, name, full: `/${[...parts, name].join("/")}` };
}

/** The directory holding an OPFS path, created on the way when asked. */
export async function opfsDirectory(dirs: readonly string[], create: boolean): Promise<FileSystemDirectoryHandle> {
  let dir = await navigator.storage.getDirectory();
  for (const d of dirs) dir = await dir.getDirectoryHandle(d, { create });
  return dir;
}

let probe: Promise<unknown> | undefined;

/**
 * Why this context has no OPFS, or null when it has one; asked once per realm. Private windows
 * (Firefox, Safari) throw SecurityError from getDirectory(); insecure contexts have no
 * navigator.storage.getDirectory at all.
 */
export function opfsUnavailable(): Promise<unknown> {
  return (probe ??= (async () => {
    const storage = (globalThis as { navigator?: { storage?: Partial<StorageManager> } }).navigator?.storage;
    if (typeof storage?.getDirectory !== "function") {
      return new Error("navigator.storage.getDirectory does not exist here (OPFS needs a secure context: https or localhost)");
    }
    try {
      await storage.getDirectory();
      return null;
    } catch (e) {
      return e ?? new Error("navigator.storage.getDirectory() failed");
    }
  })());
}

/** Rejects with one SqliteError (SQLITE_CANTOPEN) naming the cause when this context has no OPFS. */
export async function requireOpfs(what: string): Promise<void> {
  const why = await opfsUnavailable();
  if (why === null) return;
  throw new SqliteError(`${what}: OPFS is not available in this context: navigator.storage.getDirectory() failed with ${errorText(why)} ` +
    "(private windows in Firefox and Safari have no OPFS; sqlite.opfsAvailable() tells beforehand)", SQLITE_CANTOPEN);
}

export function errorText(e: unknown): string {
  const err = e as { name?: unknown; message?: unknown };
  return err?.message !== undefined ? `${String(err.name ?? "Error")}: ${String(err.message)}` : String(e);
}
