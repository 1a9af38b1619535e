// ESM bundles, straight from src/ (esbuild strips the types; tsc still emits the .d.ts):
//   dist/browser/index.js  browser entry (window and workers); sqlite3.wasm inlined by
//                          @rollup/plugin-wasm, so it loads the same from a page served over
//                          http, from a worker, and from another bundler's output
//   dist/node/index.js     Node entry; reads dist/wasm/sqlite3.wasm beside it at run time
//   dist/deno/index.js     the same for Deno (node: builtins work there)
import wasm from "@rollup/plugin-wasm";
import { transform } from "esbuild";
import { existsSync } from "node:fs";
import { copyFile, mkdir } from "node:fs/promises";
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
  const target = path.join(root, "src/opfs/wasm-default.ts");
  return {
    name: "sbw-inline-default-wasm",
    load(id) {
      if (id !== target) return null;
      return `import init from ${JSON.stringify(wasmFile)};\nexport function defaultWasm() { return init(); }\n`;
    },
  };
}

/** The Node/Deno entry resolves "../wasm/sqlite3.wasm" from its own URL: put the file there. */
function copyWasmBesideDist() {
  return {
    name: "sbw-copy-wasm",
    async writeBundle() {
      await mkdir(path.join(root, "dist/wasm"), { recursive: true });
      await copyFile(wasmFile, path.join(root, "dist/wasm/sqlite3.wasm"));
    },
  };
}

const nodeLike = (dir) => ({
  input: "src/index.ts",
  external: (id) => id.startsWith("node:"),
  plugins: [typescript(), copyWasmBesideDist()],
  output: { file: `dist/${dir}/index.js`, format: "es", sourcemap: true },
});

export default [
  {
    input: "src/index.browser.ts",
    plugins: [inlineDefaultWasm(), typescript(), wasm({ targetEnv: "auto-inline" })],
    output: { file: "dist/browser/index.js", format: "es", sourcemap: true },
  },
  nodeLike("node"),
  nodeLike("deno"),
];
