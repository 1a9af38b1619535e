// What a failed write leaves behind, put right before the call returns.
import type { Database } from "../handles/database.js";

/**
 * A write that fails midway (a full disk, an I/O error) can leave the destination's pager in its
 * error state, which does not roll back when the transaction ends: the changed file and a hot
 * journal stay, and only a later read-write open would restore the old content (a copy of the file
 * alone, or a read-only open, sees a damaged database). The pager rolls the journal back at its
 * next read, so read now. Rolling back needs no new space. Never throws: the caller reports the
 * original failure.
 */
export function rollBackAfterFailure(db: Database, schema: string): void {
  if (!db.isOpen) return;
  try {
    db.get(`SELECT count(*) FROM "${schema.replace(/"/g, '""')}".sqlite_schema`);
  } catch {
    // the next open rolls back instead, as after a crash
  }
}
