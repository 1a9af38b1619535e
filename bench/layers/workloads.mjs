// The workloads of the before/after benchmark (run.mjs), written against the public API only, so
// one copy runs on any checkout. `env` supplies open(name) and, in browsers, the OPFS calls.
//   full:  a ~MiB database copied with backup() into a new file (pagesPerStep -1)
//   txn:   600 small write transactions (5 inserts, 1 update) on a file, DELETE and WAL journals
//   read:  the file copied back into memory with backup()

/** @typedef {import("../../src/index.ts").Database} Database */

/**
 * Fills db with about `mib` MiB: rows of 1 KiB text and an index.
 * @param {Database} db
 * @param {number} mib
 */
export function fill(db, mib) {
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, n INTEGER); CREATE INDEX t_n ON t(n)");
  db.exec("BEGIN");
  const rows = Math.round((mib * 1024 * 1024) / 1200);
  for (let i = 0; i < rows; i++) db.run("INSERT INTO t(s, n) VALUES (?, ?)", [`${i}`.padEnd(1000, "x"), (i * 7919) % rows]);
  db.exec("COMMIT");
}

/**
 * `count` small write transactions on db (5 inserts and an update each).
 * @param {Database} db
 * @returns {number} their ms
 */
export function transactions(db, count = 600) {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    db.exec("BEGIN");
    for (let k = 0; k < 5; k++) db.run("INSERT INTO t(s, n) VALUES (?, ?)", [`txn ${i} ${k}`.padEnd(200, "y"), i * 5 + k]);
    db.run("UPDATE t SET n = n + 1 WHERE id = ?", [1 + ((i * 131) % 1000)]);
    db.exec("COMMIT");
  }
  return performance.now() - t0;
}

/**
 * The txn workload on a fresh file in each journal mode; open(name) gives a Database.
 * @param {(name: string) => Database | Promise<Database>} open
 * @returns {Promise<Record<string, number>>} ms by "txn_<mode>"
 */
export async function journalModes(open) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const mode of ["delete", "wal"]) {
    const db = await open(`${mode}.db`);
    db.exec(`PRAGMA journal_mode=${mode}`);
    fill(db, 2);
    out[`txn_${mode}`] = transactions(db);
    db.close();
  }
  return out;
}
