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
  const args = isBun ? ["test/runtimes/uvu.mjs", pattern] : ["--no-concurrent-recompilation", "--import", "tsx", "test/runtimes/uvu.mjs", pattern];
  console.log(`\n=== ${label}: ${exe}${ex ? ` (without ${ex.pattern.source}: ${ex.why})` : ""}`);
  const t0 = Date.now();
  const r = spawnSync(exe, args, { stdio: "inherit", env: { ...process.env, FORCE_COLOR: "0" } });
  const s = ((Date.now() - t0) / 1000).toFixed(0);
  if (r.status === 0) passed++;
  else failed++;
  lines.push(`${r.status === 0 ? "✓" : "✘"} ${label}: ${r.status === 0 ? "passed" : `failed (${r.status ?? r.signal})`} in ${s} s`);
}
console.log(`\n${lines.join("\n")}`);
console.log(`runtimes: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
