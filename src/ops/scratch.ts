// The staging file of a guarded copy (backup() of a file source without real file locks): a
// scratch database beside the destination file, renamed over it once the copy is verified; what
// a killed copy left there is removed by the next one. It reaches node:fs through builtin()
// (runtime/builtin.ts), so browser bundles import nothing of Node.
import type * as NodeFs from "node:fs";
import { SQLITE_ACCESS_EXISTS, SQLITE_ACCESS_READ, SQLITE_IOERR, SQLITE_IOERR_FSYNC, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READONLY } from "../core/constants.js";
import { SqliteError } from "../core/errors.js";
import { Database } from "../handles/database.js";
import { builtin } from "../runtime/builtin.js";
import { isOpenInRealm } from "../runtime/host.js";
import type { Runtime } from "../runtime/runtime.js";

/** A file name that is a path of the default VFS (not a URI, memory or a temporary database). */
export const plainPath = (name: string) => !name.startsWith("file:") && name !== ":memory:" && name !== "";
const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Where a guarded copy is built: a file beside the destination file (same directory, so it can
 * be renamed over it, and on the same disk), or a private temporary database (open("")) when the
 * destination is not a file of the default VFS. journal_mode=OFF: an attempt is never rolled back
 * but thrown away. The commit syncs the file through the VFS as for any destination, so a failed
 * write-back surfaces there (SQLITE_IOERR_FSYNC).
 */
export class Scratch {
  db: Database;
  #renamed = false;

  private constructor(readonly rt: Runtime, readonly path: string | null, readonly fs: typeof NodeFs | null) {
    this.db = this.#open();
  }

  /**
   * A scratch file beside a destination file for bytes written raw (a stream or a replica being
   * restored): its database connection closed, so SQLite opens the file again once the bytes are
   * in. Null when the destination is not a file of the default VFS.
   */
  static beside(rt: Runtime, dest: Database | string): Scratch | null {
    const scratch = Scratch.create(rt, dest, "main");
    if (scratch.path === null) {
      scratch.discard();
      return null;
    }
    scratch.db.close();
    return scratch;
  }

  static create(rt: Runtime, dest: Database | string, destName: string): Scratch {
    const fs = builtin<typeof NodeFs>("node:fs");
    const target = fs && destFile(rt, fs, dest, destName);
    if (fs && target) {
      removeStale(fs, target);
      const dir = dirOf(target);
      try {
        return new Scratch(rt, `${dir}.${target.slice(dir.length)}.${scratchId()}.sbw-tmp`, fs);
      } catch {
        // e.g. no write permission on the directory: build the copy in a private temporary file
      }
    }
    return new Scratch(rt, null, null);
  }

  #open(): Database {
    const db = new Database(this.rt, this.path ?? "");
    try {
      db.exec("PRAGMA journal_mode=OFF");
    } catch (e) {
      this.#remove(db);
      throw e;
    }
    return db;
  }

  #remove(db: Database): void {
    db.close();
    if (this.path !== null) removeCreated(this.rt, this.path);
  }

  /** Throws the current attempt away and starts an empty one. */
  reset(): void {
    this.#remove(this.db);
    this.db = this.#open();
  }

  /** Removes the scratch copy unless it was renamed into place. Never throws. */
  discard(): void {
    if (this.#renamed) return;
    try {
      this.#remove(this.db); // close() is idempotent: the db may be closed already
    } catch {
      // best effort: the caller's result or error is what matters
    }
  }

  /**
   * Renames the verified (committed and synced) copy over `dest` when that is safe, then syncs
   * the directory. False when the copy must be copied into `dest` instead.
   */
  async renameOver(dest: Database | string, destName: string): Promise<boolean> {
    const { fs, path } = this;
    if (fs === null || path === null || typeof dest !== "string" || destName !== "main") return false;
    const target = realTarget(fs, this.rt.vfs().fullPathname(dest));
    // Checked in the same synchronous run as the rename: nobody in this realm can open it between.
    if (!this.#replaceable(fs, target)) return false;
    this.db.close();
    try {
      const st = fs.statSync(target, { throwIfNoEntry: false });
      if (st) fs.chmodSync(path, st.mode & 0o7777);
      fs.renameSync(path, target);
    } catch (e) {
      throw new SqliteError(`backup: cannot rename ${path} to ${target}: ${(e as Error).message}`, SQLITE_IOERR);
    }
    this.#renamed = true;
    // Past the commit point: the new content is in place; only its name's durability is left.
    await syncDirectory(fs, dirOf(target));
    return true;
  }

  /**
   * Whether renaming over `target` keeps everything a copy into it would: nobody in this realm
   * has it open (their connections would keep the old file), no journal or WAL beside it (they
   * would be applied to the new file), a single link, our owner and group (a rename cannot keep
   * others), and it is empty or a rollback-journal database (a copy into anything else fails, and
   * into a WAL database keeps it in WAL mode).
   */
  #replaceable(fs: typeof NodeFs, target: string): boolean {
    if (isOpenInRealm(target)) return false;
    const vfs = this.rt.vfs();
    if (vfs.access(`${target}-journal`, SQLITE_ACCESS_EXISTS) || vfs.access(`${target}-wal`, SQLITE_ACCESS_EXISTS)) return false;
    const st = fs.statSync(target, { throwIfNoEntry: false });
    if (st === undefined) return true;
    const mine = fs.statSync(this.path!);
    if (!st.isFile() || st.nlink !== 1 || st.uid !== mine.uid || st.gid !== mine.gid) return false;
    if (st.size === 0) return true;
    const { file } = vfs.open(target, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB);
    try {
      const head = new Uint8Array(20);
      if (file.read(head, 0) < head.length) return false;
      return new TextDecoder().decode(head.subarray(0, 16)) === SQLITE_MAGIC && head[18] !== 2 && head[19] !== 2;
    } finally {
      file.close();
    }
  }
}

/** The file of the default VFS that `dest` names, through symlinks; null for any other destination. */
function destFile(rt: Runtime, fs: typeof NodeFs, dest: Database | string, destName: string): string | null {
  let file: string | null = null;
  if (typeof dest === "string") file = plainPath(dest) ? rt.vfs().fullPathname(dest) : null;
  else if (rt.vfsOf(dest.state.ptr, destName) === rt.vfs()) file = rt.filename(dest.state.ptr, destName) || null;
  return file === null ? null : realTarget(fs, file);
}

/** Pids that fit the 8 hex digits of a scratch name (Linux's limit is 2^22); 0 for none. */
const MAX_PID = 0x3fffffff;
const ownPid = (): number => {
  const pid = (globalThis as { process?: { pid?: unknown } }).process?.pid;
  return typeof pid === "number" && pid > 0 && pid <= MAX_PID ? pid : 0;
};

/** The 16 hex digits of a scratch name: the creating process's pid, then 32 random bits. */
function scratchId(): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("");
  return ownPid().toString(16).padStart(8, "0") + random;
}

/**
 * How long a leftover whose creator cannot be shown gone (its pid in use again, or no pid in the
 * name) is kept after its last change. A live copy changes its file as it goes.
 */
export const STALE_SCRATCH_MS = 24 * 60 * 60 * 1000;

/** Whether process `pid` has ended: false when it runs, is this process, or cannot be asked. */
function processGone(pid: number): boolean {
  const p = (globalThis as { process?: { pid?: number; kill?: (pid: number, signal: number) => void } }).process;
  if (!(pid > 0 && pid <= MAX_PID) || pid === p?.pid || typeof p?.kill !== "function") return false;
  // Deno asks the user for run permission (kill) it was not given: do not ask.
  const deno = (globalThis as { Deno?: { permissions?: { querySync?: (d: { name: string }) => { state: string } } } }).Deno;
  if (deno && deno.permissions?.querySync?.({ name: "run" }).state !== "granted") return false;
  try {
    p.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "ESRCH"; // EPERM: it runs, as another user
  }
}

/**
 * Removes the scratch files that killed copies left beside `target`: exactly
 * `.<name>.<16 hex>.sbw-tmp`, with their -journal and -wal, when the pid in the name has no
 * process or nothing changed them for STALE_SCRATCH_MS; never one open in this realm. Best
 * effort: never throws.
 */
function removeStale(fs: typeof NodeFs, target: string): void {
  const dir = dirOf(target);
  const name = target.slice(dir.length).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^\\.${name}\\.([0-9a-f]{16})\\.sbw-tmp(?:-journal|-wal)?$`);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  const ids = new Set(entries.map((e) => pattern.exec(e)?.[1]).filter((id) => id !== undefined));
  for (const id of ids) {
    const path = `${dir}.${target.slice(dir.length)}.${id}.sbw-tmp`;
    const files = [path, `${path}-journal`, `${path}-wal`];
    try {
      if (isOpenInRealm(realTarget(fs, path))) continue;
      if (!processGone(parseInt(id.slice(0, 8), 16))) {
        const changed = Math.max(...files.map((f) => fs.statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0));
        if (Date.now() - changed < STALE_SCRATCH_MS) continue;
      }
      for (const f of files.reverse()) fs.rmSync(f, { force: true });
    } catch {
      // best effort: a leftover kept costs disk space only
    }
  }
}

/**
 * Removes what killed backups left beside `dest`'s file (see removeStale()); for every route of
 * backup(), before it writes. Nothing for a destination that is not a file of the default VFS.
 */
export function removeStaleScratch(rt: Runtime, dest: Database | string, destName = "main"): void {
  const fs = builtin<typeof NodeFs>("node:fs");
  const target = fs && destFile(rt, fs, dest, destName);
  if (fs && target) removeStale(fs, target);
}

/** The directory part of an absolute path, with its trailing separator. */
const dirOf = (path: string) => path.slice(0, Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);

/** The file a path names, through symlinks (rename replaces the target, not the link). */
function realTarget(fs: typeof NodeFs, path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path; // does not exist (yet)
  }
}

/** fsync a directory so a renamed-in name is durable; file systems that refuse are ignored, as in node-fs.ts. */
async function syncDirectory(fs: typeof NodeFs, dir: string): Promise<void> {
  let fh: NodeFs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, "r");
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? "";
    if (!["EINVAL", "EISDIR", "EBADF", "EPERM", "EACCES"].includes(code)) {
      throw new SqliteError(`backup: the copy is in place, but syncing ${dir} failed: ${(e as Error).message}`, SQLITE_IOERR_FSYNC);
    }
  } finally {
    await fh?.close();
  }
}

/** Removes a database this call created, with its journal and WAL; best effort. */
export function removeCreated(rt: Runtime, path: string): void {
  const vfs = rt.vfs();
  for (const p of [path, `${path}-journal`, `${path}-wal`]) {
    try {
      if (vfs.access(p, SQLITE_ACCESS_READ)) vfs.delete(p, false);
    } catch {
      // best effort: the main error is what the caller needs
    }
  }
}
