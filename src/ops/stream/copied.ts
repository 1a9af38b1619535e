// backupToStream()'s copied route: a rollback-journal file source (Node, Deno, Bun) whose other
// processes' writers no lock of ours keeps out (no real file locks, no node:sqlite read lock) is
// copied whole into the spool in the thread pool, under a read transaction that this process's
// writers wait for, and kept when the source guard's stamps before and after the copy agree and
// no writer was inside a transaction: another process's commit meanwhile changes the stamp, and
// one under way leaves its journal live. Otherwise backup() copies it with its guard, step by
// step. One file copy takes a fraction of what backup() into the spool takes.
import type * as NodeFs from "node:fs";
import { Database } from "../../handles/database.js";
import { builtin } from "../../runtime/builtin.js";
import type { Runtime } from "../../runtime/runtime.js";
import type { BackupOptions } from "../options.js";
import { SourceGuard } from "../source-guard.js";
import { stampPageCount } from "./header.js";
import { tempName } from "./temp.js";

/** Copies tried before backup() takes over, and the pause between them: a writer's commit is short. */
const ATTEMPTS = 5;
const RETRY_MS = 10;

/**
 * Copies `schema` of `source` into a new spool and resolves with its name and page count, or
 * with null where the route does not apply or another process kept writing the source (the
 * spool is then removed). `onSpool` gets the spool's removal as soon as it has a name.
 */
export async function copyIntoSpool(rt: Runtime, source: Database, schema: string, options: BackupOptions, tempDir: string | undefined,
  signal: AbortSignal, onSpool: (remove: () => void) => void): Promise<{ path: string; pageCount: number } | null> {
  const fs = builtin<typeof NodeFs>("node:fs");
  const ptr = source.state.ptr; // a closed source throws here, and errors the stream
  const path = rt.filename(ptr, schema);
  const vfs = rt.vfsOf(ptr, schema);
  if (!fs || !path || vfs !== rt.vfs() || rt.fileOf(ptr, schema)?.fd === undefined || options.verifySource === false) return null;
  const guard = SourceGuard.for(rt, source, schema);
  if (guard === null) return null;
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_MS));
      const copied = await copyOnce(fs, rt, path, vfs.name, tempDir, signal, onSpool, guard);
      if (copied !== "retry") return copied;
    }
    return null;
  } finally {
    guard.close();
  }
}

/** One attempt: the copy, null where the route does not apply, "retry" where another process wrote meanwhile. */
async function copyOnce(fs: typeof NodeFs, rt: Runtime, path: string, vfsName: string, tempDir: string | undefined,
  signal: AbortSignal, onSpool: (remove: () => void) => void, guard: SourceGuard): Promise<{ path: string; pageCount: number } | null | "retry"> {
  let db: Database | null = null;
  let spool: string | null = null;
  try {
    db = new Database(rt, path, { readonly: true, vfs: vfsName });
    db.exec("BEGIN");
    // This process's writers wait from here on; other processes' are what the stamps are for.
    const { page_count: pageCount } = db.get<{ page_count: number }>("PRAGMA page_count")!;
    const { journal_mode: mode } = db.get<{ journal_mode: string }>("PRAGMA journal_mode")!;
    const { page_size: pageSize } = db.get<{ page_size: number }>("PRAGMA page_size")!;
    const start = guard.stamp();
    if (mode === "wal" || pageCount === 0 || start.hot || start.wal) return null;
    if (start.writerActive) return "retry";
    const to = tempName(rt, "spool", tempDir);
    spool = to;
    onSpool(() => fs.rmSync(to, { force: true }));
    await fs.promises.copyFile(path, to, fs.constants.COPYFILE_EXCL);
    signal.throwIfAborted();
    if (guard.changedSince(start)) {
      fs.rmSync(to, { force: true });
      return "retry";
    }
    // As backup() leaves its copy: exactly the pages, the page count in the header trusted.
    const fh = await fs.promises.open(to, "r+");
    try {
      if ((await fh.stat()).size < pageSize * pageCount) throw new Error("the copy is shorter than its pages");
      await fh.truncate(pageSize * pageCount);
      const head = new Uint8Array(100);
      await fh.read(head, 0, 100, 0);
      stampPageCount(head, pageCount);
      await fh.write(head, 0, 100, 0);
    } finally {
      await fh.close();
    }
    return { path: to, pageCount };
  } catch (e) {
    if (spool !== null) fs.rmSync(spool, { force: true });
    if (signal.aborted) throw e;
    return null; // backup() copies it, and says what is wrong if anything is
  } finally {
    db?.close(); // ends the read transaction
  }
}
