// Runs the uvu suites under test/ whose file names match a pattern, in any runtime: uvu's own bin
// loads them with require() in Bun, which cannot load modules with top-level await.
// Usage: <runtime> [--import tsx] test/runtimes/uvu.mjs [pattern]
import process from "node:process";
import { parse } from "uvu/parse";
import { run } from "uvu/run";

const ctx = await parse("test", new RegExp(process.argv[2] ?? "\\.test\\.ts$"), { cwd: process.cwd() });
await run(ctx.suites, {});
