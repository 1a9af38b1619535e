// One before/after sample in headless Chromium: `npx tsx bench/layers/browser.ts <checkout> <MiB>`;
// bundles worker.mjs and page.mjs against <checkout>/src/index.browser.ts, prints one JSON line.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { launchBrowser } from "../../test/browser/launch.mjs";
import { serve } from "../../test/browser/server.ts";

/** What worker.mjs posts back: its timings in ms by route. */
type WorkerResult = { ok: true; out: Record<string, number> } | { ok: false; error: string };
/** What page.mjs puts on the page's globalThis (not a DOM global, so TypeScript cannot know it). */
type PageGlobals = { mainThread(mib: number, tag: string): Promise<Record<string, number>> };

const [root, mibArg = "50"] = process.argv.slice(2);
const mib = Number(mibArg);
const out = mkdtempSync(join(tmpdir(), "sbw-layers-build-"));
await build({
  entryPoints: { worker: join(import.meta.dirname, "worker.mjs"), page: join(import.meta.dirname, "page.mjs") },
  bundle: true, format: "esm", target: "es2022", outdir: out, logLevel: "error",
  alias: { SBW: join(root!, "src/index.browser.ts") },
  loader: { ".wasm": "file" },
});
writeFileSync(join(out, "index.html"), `<!doctype html><script type="module" src="/b/page.js"></script>`);
// The packaged wasm is fetched from <checkout>/wasm/ relative to the bundle: serve the checkout too.
const server = await serve(root!, { "/b/": out });
const launched = await launchBrowser("chromium");
try {
  const page = await launched.browser.newPage();
  await page.goto(`${server.url}/b/index.html`);
  await page.waitForFunction("typeof globalThis.mainThread === 'function'");
  const tag = Date.now().toString(36);
  const worker = await page.evaluate(([m, t]) => new Promise<WorkerResult>((resolve) => {
    const w = new Worker("/b/worker.js", { type: "module" });
    w.onmessage = (e) => { w.terminate(); resolve(e.data); };
    w.onerror = (e) => { w.terminate(); resolve({ ok: false, error: e.message }); };
    w.postMessage({ mib: m, tag: t });
  }), [mib, tag] as const);
  if (!worker.ok) throw new Error(worker.error);
  const main = await page.evaluate(([m, t]) => (globalThis as unknown as PageGlobals).mainThread(m, t), [mib, tag] as const);
  console.log(JSON.stringify({ ...worker.out, ...main }));
} finally {
  await launched.close();
  await server.close();
  rmSync(out, { recursive: true, force: true });
}
