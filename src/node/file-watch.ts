// FileWatch for node:fs (see src/vfs/types.ts): fresh reads of a source file's heads for the
// source guard, and a read transaction held through the runtime's built-in native SQLite
// (node:sqlite: Node >= 22.5, Deno), whose POSIX locks other processes' writers and checkpoints
// respect. Where this runtime has no real file locks of its own, that hold is what makes them wait.
//
// POSIX locks belong to the process and die when ANY descriptor of the file is closed, so the
// database and its -shm (the files SQLite locks) stay open here until close(), which ends the
// native transaction first.
import * as fs from "node:fs";
import { builtin } from "../runtime/builtin.js";
import type { FileWatch, HoldResult } from "../vfs/types.js";

type Suffix = "" | "-wal" | "-shm" | "-journal";

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;

/** The part of node:sqlite used here (its types are not in every @types/node this builds with). */
interface NativeDatabase {
  exec(sql: string): void;
  prepare(sql: string): { get(): unknown };
  close(): void;
}
interface NodeSqlite {
  DatabaseSync: new (path: string, options: { readOnly: boolean }) => NativeDatabase;
}

let nativeModule: NodeSqlite | null | undefined;

/**
 * node:sqlite where the runtime has it. Node 22 flags it experimental and prints a warning on
 * load that would reach every user of this package: that one warning is held back.
 */
function nativeSqlite(): NodeSqlite | null {
  if (nativeModule !== undefined) return nativeModule;
  const p = (globalThis as { process?: NodeJS.Process }).process;
  const emit = p?.emitWarning;
  try {
    if (p && emit) {
      p.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
        const text = typeof warning === "string" ? warning : warning?.message;
        if (text?.includes("SQLite is an experimental feature")) return;
        return (emit as (...a: unknown[]) => void).call(this, warning, ...rest);
      } as NodeJS.Process["emitWarning"];
    }
    // Before 22.12 node:sqlite ignores readOnly: a read-write connection could checkpoint at its
    // close, under this process's own writers (whose WAL index it cannot see).
    const [major = 0, minor = 0] = (p?.versions?.node ?? "0").split(".").map(Number);
    const readOnlyWorks = "deno" in (p?.versions ?? {}) || major > 22 || (major === 22 && minor >= 12);
    nativeModule = readOnlyWorks ? (builtin<NodeSqlite>("node:sqlite") ?? null) : null;
  } catch {
    nativeModule = null;
  } finally {
    if (p && emit) p.emitWarning = emit;
  }
  return nativeModule;
}

export class NodeFileWatch implements FileWatch {
  /** Descriptors of the database and its -shm, open until close(); older ones of replaced files too. */
  readonly #kept = new Map<Suffix, number>();
  readonly #retired: number[] = [];
  #native: NativeDatabase | null = null;
  #state: "none" | "held" | "unavailable" = "none";

  constructor(readonly path: string) {}

  head(suffix: Suffix, offset: number, n: number): { size: number; bytes: Uint8Array } | null {
    const name = this.path + suffix;
    const keep = suffix === "" || suffix === "-shm";
    let fd = keep ? this.#kept.get(suffix) : undefined;
    if (fd !== undefined) {
      // A file replaced under its name (deleted and made anew, renamed over) is read anew.
      const now = fs.statSync(name, { throwIfNoEntry: false });
      const mine = fs.fstatSync(fd);
      if (now === undefined || now.ino !== mine.ino || now.dev !== mine.dev) {
        this.#retired.push(fd); // closed only by close(): it may carry the native hold's locks
        this.#kept.delete(suffix);
        fd = undefined;
        if (now === undefined) return null;
      }
    }
    if (fd === undefined) {
      try {
        fd = fs.openSync(name, "r");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
      if (keep) this.#kept.set(suffix, fd);
    }
    try {
      const bytes = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = fs.readSync(fd, bytes, got, n - got, offset + got);
        if (r === 0) break;
        got += r;
      }
      return { size: fs.fstatSync(fd).size, bytes };
    } finally {
      if (!keep) fs.closeSync(fd);
    }
  }

  replaced(suffix: "-wal", fd: number): boolean {
    const now = fs.statSync(this.path + suffix, { throwIfNoEntry: false });
    const mine = fs.fstatSync(fd);
    return now === undefined || now.ino !== mine.ino || now.dev !== mine.dev;
  }

  hold(): HoldResult {
    if (this.#state !== "none") return this.#state;
    const sqlite = nativeSqlite();
    if (sqlite === null) return (this.#state = "unavailable");
    // The database stays open here first, so that the native connection's close (on a failure
    // below) is never the last descriptor of the file this process had.
    this.head("", 0, 0);
    let db: NativeDatabase | null = null;
    try {
      db = new sqlite.DatabaseSync(this.path, { readOnly: true });
      db.exec("BEGIN");
      db.prepare("SELECT count(*) FROM sqlite_schema").get(); // the read transaction starts here
      this.#native = db;
      return (this.#state = "held");
    } catch (e) {
      try {
        db?.close();
      } catch {
        // nothing held
      }
      const code = ((e as { errcode?: number }).errcode ?? 0) & 0xff;
      if (code === SQLITE_BUSY || code === SQLITE_LOCKED) return "busy";
      if (code === SQLITE_READONLY) return "hot";
      return (this.#state = "unavailable");
    }
  }

  close(): void {
    try {
      this.#native?.exec("COMMIT");
      this.#native?.close();
    } catch {
      // a read transaction has nothing to lose
    }
    this.#native = null;
    for (const fd of [...this.#kept.values(), ...this.#retired]) {
      try {
        fs.closeSync(fd);
      } catch {
        // already gone
      }
    }
    this.#kept.clear();
    this.#retired.length = 0;
  }
}
