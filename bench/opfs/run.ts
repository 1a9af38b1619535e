// In-memory → OPFS in headless Chromium: the official opfs-sahpool VFS here, ours through the
// browser suite's bench (test/browser/bench.ts, owned by the OPFS VFS), same data shape and size.
// A third side writes the same bytes straight through a sync access handle: the physical limit.
// Ours' runs also write the same bytes raw in the same worker, between its variants: OPFS's speed
// moves up to 4x between browser launches, so the ratio within one run is the steadier one.
// Prints one JSON line: { chromium, mib, sahpool: [MiB/s…], raw: [MiB/s…],
//   ours: { oneStep, adaptive, rawSameWorker: [MiB/s…], oneStepOfRaw, adaptiveOfRaw: [ratio…] },
//   main: { first, next: [MiB/s…], firstOfRaw, nextOfRaw: [ratio…] } }.
//   node --import tsx bench/opfs/run.ts [MiB=100] [runs=3]
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { launchBrowser } from "../../test/browser/launch.mjs";
import { serve } from "../../test/browser/server.ts";

const mib = Number(process.argv[2] ?? 100);
const runs = Number(process.argv[3] ?? 3);
const root = join(import.meta.dirname, "..", "..");

let version = "";

/** What sahpool-worker.mjs posts back; rowsBack and rows only in mode "sahpool". */
type SahpoolResult =
  | { ok: true; dbMiB: number; ms: number; MiBps: number; rowsBack?: number; rows?: number }
  | { ok: false; error: string };

/** One opfs-sahpool backup (or, mode "raw", the raw write) in a fresh browser profile. */
async function sahpoolOnce(run: number, mode: "sahpool" | "raw"): Promise<number> {
  const server = await serve(root);
  const launched = await launchBrowser("chromium");
  try {
    version = launched.version;
    const page = await launched.browser.newPage();
    await page.goto(`${server.url}/bench/opfs/index.html`);
    const r = await page.evaluate(([m, i, md]) => new Promise<SahpoolResult>((resolve) => {
      const w = new Worker("/bench/opfs/sahpool-worker.mjs", { type: "module" });
      w.onmessage = (e) => { w.terminate(); resolve(e.data); };
      w.onerror = (e) => { w.terminate(); resolve({ ok: false, error: e.message }); };
      w.postMessage({ mib: m, run: i, mode: md });
    }), [mib, run, mode] as const);
    if (!r.ok) throw new Error(`opfs-sahpool: ${r.error}`);
    if (mode === "sahpool" && r.rowsBack !== r.rows) throw new Error(`opfs-sahpool copy has ${r.rowsBack} rows, not ${r.rows}`);
    return r.MiBps;
  } finally {
    await launched.close();
    await server.close();
  }
}

/** One run of the browser suite's bench (its own browser): ours in a worker, then from the page (backupToOpfs). */
function oursOnce(run: number): { oneStepMiBps: number; adaptiveMiBps: number; rawMiBps: number; dbMiB: number; main: { MiBps: number; warmMiBps: number } } {
  const res = spawnSync(process.execPath, ["--import", "tsx", join(root, "test/browser/bench.ts"), String(mib), "1", String(run)], { cwd: root, encoding: "utf8" });
  if (res.status !== 0) throw new Error(`test/browser/bench.ts failed:\n${res.stderr}`);
  const result = (label: string) => {
    const line = res.stdout.split("\n").find((l) => l.startsWith(label));
    if (!line) throw new Error(`test/browser/bench.ts printed no "${label}" result:\n${res.stdout}`);
    return JSON.parse(line.slice(line.indexOf("{")));
  };
  return { ...result("worker (openOpfs + backup)"), main: result("main thread (backupToOpfs)") };
}

// Rotate the order: the machine is shared, so no side gets all the quiet moments.
const sahpool: number[] = [];
const raw: number[] = [];
const ours: ReturnType<typeof oursOnce>[] = [];
const sides = [
  async (run: number) => sahpool.push(await sahpoolOnce(run, "sahpool")),
  async (run: number) => ours.push(oursOnce(run)),
  async (run: number) => raw.push(await sahpoolOnce(run, "raw")),
];
for (let run = 0; run < runs; run++) {
  for (let k = 0; k < sides.length; k++) await sides[(run + k) % sides.length]!(run);
}
console.log(JSON.stringify({
  chromium: version, mib, sahpool, raw,
  ours: {
    oneStep: ours.map((w) => w.oneStepMiBps), adaptive: ours.map((w) => w.adaptiveMiBps), rawSameWorker: ours.map((w) => w.rawMiBps),
    oneStepOfRaw: ours.map((w) => w.oneStepMiBps / w.rawMiBps), adaptiveOfRaw: ours.map((w) => w.adaptiveMiBps / w.rawMiBps), dbMiB: ours[0]?.dbMiB,
  },
  // backupToOpfs from the page, after the worker's runs: its first call (which starts the writer
  // worker) and the next, each ÷ the raw write in the worker just before.
  main: {
    first: ours.map((w) => w.main.MiBps), next: ours.map((w) => w.main.warmMiBps),
    firstOfRaw: ours.map((w) => w.main.MiBps / w.rawMiBps), nextOfRaw: ours.map((w) => w.main.warmMiBps / w.rawMiBps),
  },
}));
