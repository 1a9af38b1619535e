// The page side of one browser sample: main-thread backupToOpfs and restoreFromOpfs.
import { loadSqlite } from "SBW";
import { fill } from "./workloads.mjs";

/**
 * @param {number} mib
 * @param {string} tag names this sample's OPFS directory
 * @returns {Promise<Record<string, number>>} ms by route
 */
globalThis.mainThread = async (mib, tag) => {
  const sqlite = await loadSqlite();
  const src = sqlite.open(":memory:");
  fill(src, mib);
  let t0 = performance.now();
  await sqlite.backupToOpfs(src, `layers-${tag}/main.db`);
  const mainBackup = performance.now() - t0;
  t0 = performance.now();
  const back = await sqlite.restoreFromOpfs(`layers-${tag}/main.db`);
  const mainRestore = performance.now() - t0;
  back.close();
  src.close();
  return { mainBackup, mainRestore };
};
