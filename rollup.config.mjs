// The browser bundle, straight from src/ (esbuild strips the types; tsc emits the rest of dist/,
// the .d.ts and the Node/Deno/Bun entry, which reads wasm/sqlite3.wasm from the package):
//   dist/browser/index.js  browser entry (window and workers); sqlite3.wasm inlined by
//                          @rollup/plugin-wasm, so it loads the same from a page served over
//                          http, from a worker, and from another bundler's output; the writer
//                          worker's script a string (see writerScriptLiteral())
import wasm from "@rollup/plugin-wasm";
import { transform } from "esbuild";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));
const wasmFile = path.join(root, "wasm/sqlite3.wasm");

/** Imports of "./x.js" inside src/ are the TypeScript files "./x.ts". */
function typescript() {
  return {
    name: "sbw-typescript",
    resolveId(source, importer) {
      if (!importer || !source.startsWith(".") || !source.endsWith(".js")) return null;
      const ts = path.resolve(path.dirname(importer), `${source.slice(0, -3)}.ts`);
      return existsSync(ts) ? ts : null;
    },
    async transform(code, id) {
      if (!id.endsWith(".ts")) return null;
      const out = await transform(code, { loader: "ts", format: "esm", target: "es2022", sourcemap: true, sourcefile: id });
      return { code: out.code, map: out.map };
    },
  };
}

/** The browser's default wasm: the module bytes inlined instead of a URL beside the package. */
function inlineDefaultWasm() {
  const target = path.join(root, "src/browser/wasm-default.ts");
  return {
    name: "sbw-inline-default-wasm",
    load(id) {
      if (id !== target) return null;
      return `import init from ${JSON.stringify(wasmFile)};\nexport function defaultWasm() { return init(); }\n`;
    },
  };
}

/**
 * The writer worker of backupToOpfs (src/browser/writer-worker.ts) as a string literal: the
 * bundler of an app that imports this bundle leaves a string alone, where it would rewrite a
 * function whose source the worker is made from (esbuild's keepNames adds calls to a helper
 * the worker does not have).
 */
function writerScriptLiteral() {
  const target = path.join(root, "src/browser/writer-worker.ts");
  return {
    name: "sbw-writer-script",
    async load(id) {
      if (id !== target) return null;
      const js = await transform(readFileSync(target, "utf8"), { loader: "ts", format: "esm", target: "es2022" });
      const { writerScript } = await import(`data:text/javascript;base64,${Buffer.from(js.code).toString("base64")}`);
      return `export function writerScript() { return ${JSON.stringify(writerScript())}; }\n`;
    },
  };
}

export default [
  {
    input: "src/index.browser.ts",
    plugins: [inlineDefaultWasm(), writerScriptLiteral(), typescript(), wasm({ targetEnv: "auto-inline" })],
    output: { file: "dist/browser/index.js", format: "es", sourcemap: true },
  },
];
