// The runtime matrix: the uvu suites under test/ in every pinned runtime (Node 20, 22, 24, 26 and
// Bun; test/runtimes/package.json), each in its own process, SBW_JOBS of them at a time (default:
// the cores, at most 2: the suites wait on child processes, syncs and pauses much of the time, and
// pass with the cores fully loaded). A runtime's output is printed whole when it ends. Deno has
// its own suite (test/deno). Prints each runtime's time and, last, "N passed, N failed (T s)" (runtimes).
// Usage: node test/runtimes/run.mjs [label …]   (default: all; SBW_RUNTIMES=node26,bun also works)
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
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

const jobs = Math.max(1, Number(process.env.SBW_JOBS) || Math.min(2, availableParallelism()));

/** Runs exe with args; resolves with its exit status and everything it printed, in order. */
function runCaptured(exe, args, env) {
  return new Promise((resolve) => {
    const out = [];
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env, FORCE_COLOR: "0" } });
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => out.push(b));
    child.on("error", (e) => out.push(Buffer.from(`${e.message}\n`)));
    child.on("close", (code, signal) => resolve({ status: code ?? signal, output: Buffer.concat(out).toString() }));
  });
}

/** One runtime's suites (and the AGAIN runs); resolves with its summary line. */
async function runRuntime({ label, exe }) {
  if (!exe || !existsSync(exe)) return { ok: false, line: `✘ ${label}: not installed (run scripts/setup.sh test)` };
  const isBun = label === "bun";
  const ex = EXCLUDED[label];
  // The pattern is matched against file names relative to test/.
  const pattern = ex ? `^(?!${ex.pattern.source.replace(/^\^|\$$/g, "")}$).*${SUITES}` : SUITES;
  const args = (p) => (isBun ? ["test/runtimes/uvu.mjs", p] : ["--no-concurrent-recompilation", "--import", "tsx", "test/runtimes/uvu.mjs", p]);
  console.log(`… ${label} started`);
  const t0 = Date.now();
  let text = `\n=== ${label}: ${exe}${ex ? ` (without ${ex.pattern.source}: ${ex.why})` : ""}\n`;
  let status = 0;
  const runs = [{ pattern, env: {} }, ...AGAIN];
  for (const run of runs) {
    if (run !== runs[0]) text += `\n=== ${label}, again: ${run.pattern} with ${JSON.stringify(run.env)}\n`;
    const r = await runCaptured(exe, args(run.pattern), run.env);
    text += r.output;
    if (r.status !== 0) status = r.status;
  }
  const s = ((Date.now() - t0) / 1000).toFixed(0);
  process.stdout.write(text);
  return { ok: status === 0, line: `${status === 0 ? "✓" : "✘"} ${label}: ${status === 0 ? "passed" : `failed (${status})`} in ${s} s` };
}

console.log(`runtimes: ${matrix.map((m) => m.label).join(", ")}, ${jobs} at a time`);
const started = Date.now();
const results = new Array(matrix.length);
let next = 0;
await Promise.all(Array.from({ length: Math.min(jobs, matrix.length) }, async () => {
  while (next < matrix.length) {
    const i = next++;
    results[i] = await runRuntime(matrix[i]);
  }
}));
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`\n${results.map((r) => r.line).join("\n")}`);
console.log(`runtimes: ${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
process.exit(failed === 0 ? 0 : 1);
