// The browser side of one before/after sample (bundled per checkout by browser.ts): in a
// dedicated worker, memory → OPFS (openOpfs destination), transactions on OPFS files, OPFS →
// memory; then, posted back to the page, the main-thread routes run there (page.mjs).
import { loadSqlite } from "SBW";
import { fill, journalModes } from "./workloads.mjs";

self.onmessage = async (e) => {
  const { mib, tag } = /** @type {{ mib: number, tag: string }} */ (e.data);
  try {
    const sqlite = await loadSqlite();
    const src = sqlite.open(":memory:");
    fill(src, mib);
    const dest = await sqlite.openOpfs(`layers-${tag}/copy.db`);
    let t0 = performance.now();
    await sqlite.backup(src, dest, { pagesPerStep: -1 });
    /** @type {Record<string, number>} ms by workload */
    const out = { full: performance.now() - t0, ...(await journalModes((name) => sqlite.openOpfs(`layers-${tag}/${name}`))) };
    const mem = sqlite.open(":memory:");
    t0 = performance.now();
    await sqlite.backup(dest, mem, { pagesPerStep: -1 });
    out.read = performance.now() - t0;
    mem.close();
    dest.close();
    src.close();
    self.postMessage({ ok: true, out });
  } catch (err) {
    self.postMessage({ ok: false, error: String(/** @type {Error | undefined} */ (err)?.stack ?? err) });
  }
};
