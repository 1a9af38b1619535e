// The runtime matrix: the uvu suites under test/ in every pinned runtime (Node 20, 22, 24, 26 and
// Bun; test/runtimes/package.json), one after the other, each in its own process. Deno has its own
// suite (test/deno). Prints each runtime's time and, last, "N passed, N failed" (runtimes).
// Usage: node test/runtimes/run.mjs [label …]   (default: all; SBW_RUNTIMES=node26,bun also works)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { arch, platform } from "node:process";
import { runtimes } from "./index.mjs";

const SUITES = "\\.test\\.ts$";
/** Suites a runtime cannot run, and why. */
const EXCLUDED = {
  // It observes the VFS's fs calls by patching node:fs through syncBuiltinESMExports(), which Bun lacks.
  bun: { pattern: /^write-back\.test\.ts$/, why: "patches node:fs via syncBuiltinESMExports (not in Bun)" },
};

/** Suites run once more with other settings: the source guard's suite through backup()'s default route too. */
const AGAIN = [{ pattern: "^fallback\\.test\\.ts$", env: { SBW_FALLBACK_ROUTE: "default" } }];

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : (process.env.SBW_RUNTIMES?.split(",") ?? Object.keys(runtimes).filter((l) => l !== "deno"));
const matrix = platform === "linux" && arch === "x64"
  ? wanted.map((label) => ({ label, exe: runtimes[label] }))
  : [{ label: `this node (${process.version}; the pinned runtimes are Linux x86-64 builds)`, exe: process.execPath }];

let passed = 0;
let failed = 0;
const lines = [];
for (const { label, exe } of matrix) {
  if (!exe || !existsSync(exe)) {
    failed++;
    lines.push(`✘ ${label}: not installed (run scripts/setup.sh test)`);
    continue;
  }
  const isBun = label === "bun";
  const ex = EXCLUDED[label];
  // The pattern is matched against file names relative to test/.
  const pattern = ex ? `^(?!${ex.pattern.source.replace(/^\^|\$$/g, "")}$).*${SUITES}` : SUITES;
  const args = (p) => (isBun ? ["test/runtimes/uvu.mjs", p] : ["--no-concurrent-recompilation", "--import", "tsx", "test/runtimes/uvu.mjs", p]);
  console.log(`\n=== ${label}: ${exe}${ex ? ` (without ${ex.pattern.source}: ${ex.why})` : ""}`);
  const t0 = Date.now();
  const runs = [{ pattern, env: {} }, ...AGAIN];
  let status = 0;
  for (const run of runs) {
    if (run !== runs[0]) console.log(`\n=== ${label}, again: ${run.pattern} with ${JSON.stringify(run.env)}`);
    const r = spawnSync(exe, args(run.pattern), { stdio: "inherit", env: { ...process.env, ...run.env, FORCE_COLOR: "0" } });
    if (r.status !== 0) status = r.status ?? r.signal;
  }
  const s = ((Date.now() - t0) / 1000).toFixed(0);
  if (status === 0) passed++;
  else failed++;
  lines.push(`${status === 0 ? "✓" : "✘"} ${label}: ${status === 0 ? "passed" : `failed (${status})`} in ${s} s`);
}
console.log(`\n${lines.join("\n")}`);
console.log(`runtimes: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
