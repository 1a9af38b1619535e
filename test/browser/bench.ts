// OPFS backup speed in headless Chromium (numbers for BENCHMARKS.md / the report; no pass/fail).
//   npx tsx test/browser/bench.ts [MiB=33] [runs=3] [first run's index=0]      SBW_BROWSER=firefox for Firefox
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { launchBrowser } from "./launch.mjs";
import { serve } from "./server.js";

const mib = Number(process.argv[2] ?? 33);
const runs = Number(process.argv[3] ?? 3);
const firstRun = Number(process.argv[4] ?? 0);
const root = join(import.meta.dirname, "..", "..");
const buildDir = mkdtempSync(join(tmpdir(), "sbw-bench-build-"));

await build({
  entryPoints: { "pages/main": join(import.meta.dirname, "pages/main.ts"), "pages/worker": join(import.meta.dirname, "pages/worker.ts") },
  bundle: true, format: "esm", target: "es2022", outdir: buildDir, logLevel: "error",
});
const server = await serve(root, { "/build/": buildDir });
const launched = await launchBrowser(process.env.SBW_BROWSER === "firefox" ? "firefox" : "chromium");
try {
  const page = await launched.browser.newPage();
  await page.goto(`${server.url}/test/browser/harness.html`);
  await page.waitForFunction("globalThis.hReady === true", { polling: 50 });
  const call = (op: string, ...args: unknown[]) => page.evaluate(`globalThis.h.call(${JSON.stringify(op)}, ${JSON.stringify(args)})`);
  console.log(`${launched.version}, ${mib} MiB in-memory database, ${runs} runs`);
  for (let i = 0; i < runs; i++) {
    const w = await call("spawn");
    console.log("worker (openOpfs + backup)", JSON.stringify(await call("inWorker", w, "bench", [`bench-${Date.now()}-${i}`, mib, firstRun + i])));
    await call("terminate", w);
    console.log("main thread (backupToOpfs)", JSON.stringify(await call("benchMain", `benchmain-${Date.now()}/m.db`, mib)));
    const w2 = await call("spawn");
    console.log("repeat, 1% changed, worker", JSON.stringify(await call("inWorker", w2, "benchRepeat", [`repeat-${Date.now()}-${i}/r.db`, mib])));
    await call("terminate", w2);
    console.log("repeat, 1% changed, main thread", JSON.stringify(await call("benchRepeatMain", `repeatmain-${Date.now()}-${i}/r.db`, mib)));
  }
} finally {
  await launched.close();
  await server.close();
  rmSync(buildDir, { recursive: true, force: true });
}
