// sqlite3_backup_*, one to one. The C handle lives in a BackupState shared with both databases,
// so closing either one finishes the backup before the connection goes away.
import { SQLITE_BUSY, SQLITE_DONE, SQLITE_LOCKED, SQLITE_OK } from "../core/constants.js";
import type { Runtime } from "../runtime/runtime.js";
import { Database, finishBackupState, type BackupState } from "./database.js";

export type StepResult = "ok" | "done" | "busy" | "locked";

// Last resort for a Backup the program dropped without finish().
const finalizer = new FinalizationRegistry<{ rt: Runtime; state: BackupState }>(({ rt, state }) => {
  finishBackupState(rt, state, "it was garbage-collected");
});

const INT32_MAX = 0x7fffffff;

export class Backup implements Disposable {
  readonly #rt: Runtime;
  readonly #s: BackupState;
  /** Keeps both databases reachable, so their finalizers cannot close them under a live backup. */
  readonly #dbs: readonly [Database, Database];

  /** @internal Use sqlite.backupInit(). */
  constructor(rt: Runtime, dest: Database, destName: string, source: Database, sourceName: string) {
    for (const [what, db] of [["dest", dest], ["source", source]] as const) {
      if (!(db instanceof Database)) throw new TypeError(`${what} must be a Database`);
      if (db.runtime !== rt) throw new Error(`${what} belongs to another Sqlite instance; a backup needs both in one heap`);
    }
    if (typeof destName !== "string" || typeof sourceName !== "string") throw new TypeError("schema names must be strings");
    const { capi, heap } = rt;
    const d = dest.state;
    const src = source.state;
    rt.enter();
    const ptr = heap.scoped((s) => capi.sqlite3_backup_init(d.ptr, s.cstring(destName)[0], src.ptr, s.cstring(sourceName)[0]));
    if (!ptr) throw rt.errorFromDb(d.ptr); // C stores the reason on the destination
    this.#rt = rt;
    this.#dbs = [dest, source];
    this.#s = { ptr, source: src, dest: d, error: null, remaining: 0, pageCount: 0, done: false, finishedBy: null };
    d.backups.add(this.#s);
    src.backups.add(this.#s);
    finalizer.register(this, { rt, state: this.#s }, this);
  }

  /**
   * Copies up to `pages` pages (negative: all that remain). "ok": more remain; "done": all copied
   * and committed; "busy"/"locked": nothing lost, try again later. Fatal errors throw.
   */
  step(pages = 5): StepResult {
    if (!Number.isInteger(pages)) throw new TypeError(`pages must be an integer, got ${String(pages)}`);
    const s = this.#live();
    if (s.error) throw s.error; // after a fatal error only finish() is meaningful
    const { capi } = this.#rt;
    this.#rt.enter();
    const rc = capi.sqlite3_backup_step(s.ptr, pages < 0 ? -1 : Math.min(pages, INT32_MAX));
    s.remaining = capi.sqlite3_backup_remaining(s.ptr);
    s.pageCount = capi.sqlite3_backup_pagecount(s.ptr);
    switch (rc) {
      case SQLITE_OK: return "ok";
      case SQLITE_DONE: s.done = true; return "done";
      case SQLITE_BUSY: return "busy";
      case SQLITE_LOCKED: return "locked";
    }
    s.error = this.#rt.errorFromCode(rc);
    throw s.error;
  }

  /** sqlite3_backup_remaining(), as of the last step. */
  get remaining(): number {
    return this.#s.ptr ? this.#rt.capi.sqlite3_backup_remaining(this.#s.ptr) : this.#s.remaining;
  }
  /** sqlite3_backup_pagecount(), as of the last step. */
  get pageCount(): number {
    return this.#s.ptr ? this.#rt.capi.sqlite3_backup_pagecount(this.#s.ptr) : this.#s.pageCount;
  }
  /** True once a step returned "done". */
  get done(): boolean {
    return this.#s.done;
  }

  /**
   * sqlite3_backup_finish(). Before "done" this rolls the destination back. Throws the fatal
   * error a step hit, if any.
   */
  finish(): void {
    const s = this.#live();
    finalizer.unregister(this);
    this.#rt.enter();
    const rc = finishBackupState(this.#rt, s, "finish() was called");
    if (rc === SQLITE_OK || rc === SQLITE_BUSY || rc === SQLITE_LOCKED) return; // not fatal
    throw s.error ?? (s.error = this.#rt.errorFromCode(rc));
  }

  [Symbol.dispose](): void {
    if (this.#s.finishedBy !== null) return;
    try {
      this.finish();
    } catch {
      // dispose never throws
    }
  }

  #live(): BackupState {
    const s = this.#s;
    if (s.finishedBy !== null) throw new Error(`the backup is finished (${s.finishedBy})`);
    return s;
  }
}
