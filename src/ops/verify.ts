// verify(): is a copy sound, and does it hold what the source holds? PRAGMA integrity_check of
// the copy, then the header values a backup carries, the schema, and every stored table row by
// row. Content, not layout: a copy made by VACUUM INTO or .dump verifies as equal too.
import { Database } from "../handles/database.js";
import { yieldToEventLoop } from "./driver.js";

export interface VerifyDifference {
  /** What differs: a header value, a schema object, or a table's rows. */
  what: "user_version" | "application_id" | "schema" | "rows";
  /** A sentence for people, e.g. "table t differs from row key 42". */
  message: string;
  /** The schema object ("table t"), or the table whose rows differ. */
  object?: string;
  /** For rows: the key (rowid or primary key, comma-separated) of the first differing row. */
  at?: string;
  source?: unknown;
  copy?: unknown;
}

export interface VerifyTable {
  name: string;
  /** Rows compared (up to the first difference). */
  rows: number;
  same: boolean;
}

export interface VerifyResult {
  /** Sound and equal: integrity is empty and there are no differences. */
  ok: boolean;
  /** PRAGMA integrity_check(20) of the copy: empty when it is sound, else its messages. */
  integrity: string[];
  differences: VerifyDifference[];
  /** Every table that stores rows, in name order (none when the copy is damaged or the schemas differ). */
  tables: VerifyTable[];
}

const q = (id: string) => `"${id.replaceAll('"', '""')}"`;
/** Rows per query in the table walk: memory stays flat, and the event loop runs between batches. */
const BATCH = 500;

/** PRAGMA integrity_check / quick_check: [] when sound, else up to 20 messages. */
export function checkIntegrity(db: Database, pragma: "integrity_check" | "quick_check" = "integrity_check"): string[] {
  const rows = db.all<Record<string, string>>(`PRAGMA ${pragma}(20)`).map((r) => String(Object.values(r)[0]));
  return rows.length === 1 && rows[0] === "ok" ? [] : rows;
}

export async function verify(source: Database, copy: Database): Promise<VerifyResult> {
  for (const [what, db] of [["source", source], ["copy", copy]] as const) {
    if (!(db instanceof Database)) throw new TypeError(`${what} must be a Database`);
  }
  const result: VerifyResult = { ok: false, integrity: checkIntegrity(copy), differences: [], tables: [] };
  if (result.integrity.length > 0) return result; // rows of a damaged file prove nothing
  const differ = (d: VerifyDifference) => result.differences.push(d);

  for (const pragma of ["user_version", "application_id"] as const) {
    const a = Object.values(source.get(`PRAGMA ${pragma}`)!)[0];
    const b = Object.values(copy.get(`PRAGMA ${pragma}`)!)[0];
    if (a !== b) differ({ what: pragma, source: a, copy: b, message: `PRAGMA ${pragma} is ${a} in the source, ${b} in the copy` });
  }

  // rootpage is left out: a copy made by VACUUM INTO or .dump is equal in content, not in layout.
  const schemaSql = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name";
  const schemaOf = (db: Database) => new Map(db.all<Record<string, string>>(schemaSql).map((r) => [`${r.type} ${r.name}`, JSON.stringify(r)]));
  const [sa, sb] = [schemaOf(source), schemaOf(copy)];
  for (const key of new Set([...sa.keys(), ...sb.keys()])) {
    if (sa.get(key) !== sb.get(key)) {
      const where = !sb.has(key) ? "missing in the copy" : !sa.has(key) ? "only in the copy" : "defined differently";
      differ({ what: "schema", object: key, message: `${key} is ${where}` });
    }
  }
  if (result.differences.some((d) => d.what === "schema")) return result; // differently shaped tables cannot be compared

  // Every table that stores rows, FTS5/R*Tree shadow tables included; virtual tables keep no rows of their own.
  const tables = source.all<{ name: string; wr: number }>(
    "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') AND name <> 'sqlite_schema' ORDER BY name");
  for (const { name, wr } of tables) {
    const r = await compareTable(source, copy, name, wr === 1);
    result.tables.push({ name, rows: r.rows, same: r.firstDifference === null });
    if (r.firstDifference !== null) {
      differ({ what: "rows", object: name, at: r.firstDifference, message: `table ${name} differs from row key ${r.firstDifference}` });
    }
  }
  result.ok = result.differences.length === 0;
  return result;
}

/**
 * Walks both tables in key order in batches (keyset pagination, so memory stays flat) and
 * compares each row as SQL literals (quote(): exact for reals, hex for blobs, typed).
 */
async function compareTable(a: Database, b: Database, table: string, withoutRowid: boolean): Promise<{ rows: number; firstDifference: string | null }> {
  const cols = a.all<{ name: string }>("SELECT name FROM pragma_table_xinfo(?)", [table]).map((c) => c.name);
  let keys: string[];
  if (withoutRowid) {
    keys = a.all<{ name: string }>("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", [table]).map((c) => q(c.name));
  } else {
    const rowid = ["rowid", "_rowid_", "oid"].find((r) => !cols.some((c) => c.toLowerCase() === r));
    if (rowid === undefined) throw new Error(`verify: table ${table}: every rowid alias is a column name; cannot compare it`);
    keys = [rowid];
  }
  const value = cols.map((c) => `quote(${q(c)})`).join(" || ',' || ");
  const keyList = keys.map((k, i) => `${k} AS k${i}`).join(", ");
  const order = keys.join(", ");
  const first = `SELECT ${keyList}, ${value} AS v FROM main.${q(table)} ORDER BY ${order} LIMIT ${BATCH}`;
  const next = `SELECT ${keyList}, ${value} AS v FROM main.${q(table)} WHERE (${order}) > (${keys.map(() => "?").join(", ")}) ORDER BY ${order} LIMIT ${BATCH}`;
  const keyOf = (r: Record<string, unknown>) => keys.map((_, j) => String(r[`k${j}`])).join(",");

  let after: unknown[] | null = null;
  let rows = 0;
  for (;;) {
    const ra: Record<string, unknown>[] = after === null ? a.all(first) : a.all(next, after);
    const rb: Record<string, unknown>[] = after === null ? b.all(first) : b.all(next, after);
    const n = Math.max(ra.length, rb.length);
    for (let i = 0; i < n; i++) {
      const x = ra[i];
      const y = rb[i];
      if (x === undefined || y === undefined || keyOf(x) !== keyOf(y) || x.v !== y.v) {
        return { rows, firstDifference: keyOf((x ?? y)!) };
      }
      rows++;
    }
    if (ra.length < BATCH) return { rows, firstDifference: null };
    const last = ra[ra.length - 1]!;
    after = keys.map((_, j) => last[`k${j}`]);
    await yieldToEventLoop();
  }
}
