// Memory and time of restoreFromOpfs (OPFS → in-memory database) on the main thread and in a
// worker, against openOpfs + one backup step in a worker. Numbers for the report; no pass/fail.
// Memory is the renderer processes' resident set from /proc (Linux): the peak (VmHWM, reset
// through clear_refs before each copy) and the level once the copy returned, both minus the
// level before; the restored database (its own size) is still open at both points.
//   npx tsx test/browser/restore-memory.ts [MiB=150] [runs=2]
import { execSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import type { Page } from "puppeteer-core";
import { launchBrowser } from "./launch.mjs";
import { serve } from "./server.js";

const mib = Number(process.argv[2] ?? 150);
const runs = Number(process.argv[3] ?? 2);
const root = join(import.meta.dirname, "..", "..");
const buildDir = mkdtempSync(join(tmpdir(), "sbw-restore-build-"));

/** Renderer processes of this browser (their command line names our profile). */
function renderers(): number[] {
  return execSync("ps -eo pid,args").toString().split("\n")
    .filter((l) => l.includes("--type=renderer") && l.includes(profile)).map((l) => Number(l.trim().split(/\s+/)[0]));
}
const status = (pid: number, key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
const MiB = (n: number) => Math.round(n / 2 ** 20);

await build({
  entryPoints: { "pages/main": join(import.meta.dirname, "pages/main.ts"), "pages/worker": join(import.meta.dirname, "pages/worker.ts") },
  bundle: true, format: "esm", target: "es2022", outdir: buildDir, logLevel: "error",
});
const server = await serve(root, { "/build/": buildDir });
const launched = await launchBrowser("chromium");
const { profile } = launched;
const call = (page: Page, op: string, ...args: unknown[]) => page.evaluate(`globalThis.h.call(${JSON.stringify(op)}, ${JSON.stringify(args)})`) as Promise<any>;
const open = async () => {
  const page = await launched.browser.newPage();
  await page.goto(`${server.url}/test/browser/harness.html`);
  await page.waitForFunction("globalThis.hReady === true", { polling: 50 });
  return page;
};
try {
  const path = `restore-bench-${Date.now()}/big.db`;
  const setup = await open();
  const w0 = await call(setup, "spawn");
  const bytes = await call(setup, "inWorker", w0, "makeBig", [path, mib]);
  await setup.close();
  console.log(`${launched.version}; database ${MiB(bytes)} MiB; ${runs} runs per route`);
  for (let i = 0; i < runs; i++) {
    for (const route of ["main: restoreFromOpfs", "worker: restoreFromOpfs", "worker: openOpfs + backup step(-1)"]) {
      const page = await open();
      const w = route.startsWith("worker") ? await call(page, "spawn") : 0;
      // Warm up the module and the heap's first growth outside the measurement.
      await new Promise((r) => setTimeout(r, 500));
      const pids = renderers();
      const before = pids.map((p) => status(p, "VmRSS"));
      for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, "5"); // VmHWM := VmRSS
      const r = w ? await call(page, "inWorker", w, "timedRestore", [path, route.includes("backup") ? "backup" : "restore"]) : await call(page, "timedRestore", path);
      const peak = pids.reduce((s, p, k) => s + status(p, "VmHWM") - before[k]!, 0);
      const after = pids.reduce((s, p, k) => s + status(p, "VmRSS") - before[k]!, 0);
      console.log(`${route.padEnd(36)} ${r.ms.toFixed(0).padStart(5)} ms   peak +${MiB(peak)} MiB   after +${MiB(after)} MiB   (${r.rows} rows)`);
      await (w ? call(page, "inWorker", w, "dropRestored", []) : call(page, "dropRestored"));
      await page.close();
    }
  }
} finally {
  await launched.close();
  await server.close();
  rmSync(buildDir, { recursive: true, force: true });
}
