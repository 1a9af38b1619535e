// Under a Content-Security-Policy that forbids blob: workers (csp.html): backupToOpfs with the
// default writer (a blob: URL) and with the writer script served from this origin
// (loadSqlite({ writerWorkerUrl })), each memory → OPFS → memory.
import { loadSqlite } from "/dist/browser/index.js";

const violations = [];
document.addEventListener("securitypolicyviolation", (e) => violations.push(`${e.effectiveDirective} ${e.blockedURI}`));

async function attempt(sqlite, path) {
  try {
    const db = sqlite.open(":memory:");
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (42)");
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 20 s")), 20_000));
    await Promise.race([sqlite.backupToOpfs(db, path), timeout]);
    const back = await sqlite.restoreFromOpfs(path);
    return { ok: true, x: back.get("SELECT x FROM t").x };
  } catch (e) {
    return { ok: false, name: e?.name, message: String(e?.message ?? e), code: e?.code };
  }
}

const dir = `csp-${Date.now().toString(36)}`;
const blob = await attempt(await loadSqlite(), `${dir}/blob.db`);
const served = await attempt(await loadSqlite({ writerWorkerUrl: "/dist/browser/opfs-writer.js" }), `${dir}/served.db`);
globalThis.cspResult = { blob, served, violations };
