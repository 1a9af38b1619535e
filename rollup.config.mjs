// The JavaScript of dist/, straight from src/ (esbuild strips the types; tsc emits the .d.ts):
//   dist/index.js, dist/cli.js     Node, Deno and Bun: the entry and the CLI, with what only some
//                                  calls need in chunks beside them; dependencies stay imports. One
//                                  file instead of ~60 modules: a process that runs one backup
//                                  starts it 30-40 ms sooner.
// The browser bundles, holding the package's dependencies, with the writer worker's script as a
// string (see writerScriptLiteral()):
//   dist/browser/index.js          browser entry (window and workers): the wasm is
//                                  new URL("../../wasm/sqlite3.wasm", import.meta.url), which Vite,
//                                  webpack and Rollup's asset plugins emit as one asset, fetched
//                                  once and cached for the page and its workers. What few apps
//                                  call (streams, replicas, verify: the import()s of src/sqlite.ts)
//                                  is in chunks beside it, dist/browser/<name>.js, which an
//                                  app's bundler keeps as chunks of their own: an app's chunk that
//                                  imports the package holds the rest only.
//   dist/browser/inline.js         the same as one file, with sqlite3.wasm inlined by
//                                  @rollup/plugin-wasm and the chunks too ("sqlite-backup-wasm/inline"):
//                                  for esbuild or no bundler
//   dist/browser/opfs-writer.js    the writer worker as a script an app can serve itself (a
//                                  Content-Security-Policy without worker-src blob:)
// No source maps: the package does not ship them.
import wasm from "@rollup/plugin-wasm";
import { transform } from "esbuild";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
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

const dependencies = Object.keys(JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).dependencies ?? {});

/** The package's dependencies bundled in (their "import" build), so that the bundle has no bare import. */
function dependenciesInside() {
  return {
    name: "sbw-dependencies",
    resolveId(source) {
      const name = source.startsWith("@") ? source.split("/").slice(0, 2).join("/") : source.split("/")[0];
      return dependencies.includes(name) ? fileURLToPath(import.meta.resolve(source)) : null;
    },
  };
}

/** dist/*.js sit one level above src/node/load.ts: the packaged wasm is one "../" nearer. */
function nodeWasmPath() {
  const target = path.join(root, "src/node/load.ts");
  const from = `"../../wasm/sqlite3.wasm"`;
  return {
    name: "sbw-node-wasm-path",
    transform(code, id) {
      if (id !== target) return null;
      if (!code.includes(from)) throw new Error(`${target} no longer names ${from}`);
      return { code: code.replace(from, `"../wasm/sqlite3.wasm"`), map: null };
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
function writerScriptLiteral({ emit = false } = {}) {
  const target = path.join(root, "src/browser/writer-worker.ts");
  return {
    name: "sbw-writer-script",
    async load(id) {
      if (id !== target) return null;
      const script = await writerScriptText();
      return `export function writerScript() { return ${JSON.stringify(script)}; }\n`;
    },
    async generateBundle() {
      if (emit) this.emitFile({ type: "asset", fileName: "opfs-writer.js", source: `${await writerScriptText()}\n` });
    },
  };
}

/**
 * The writer worker's script, minified: inside a string, an app's minifier cannot shrink it (and
 * the served opfs-writer.js is the same text).
 */
async function writerScriptText() {
  const target = path.join(root, "src/browser/writer-worker.ts");
  const js = await transform(readFileSync(target, "utf8"), { loader: "ts", format: "esm", target: "es2022" });
  const { writerScript } = await import(`data:text/javascript;base64,${Buffer.from(js.code).toString("base64")}`);
  return (await transform(writerScript(), { loader: "js", minify: true, target: "es2022" })).code.trim();
}

/** Removes the .js files of earlier builds from the output directory (a chunk renamed or gone), which the package would ship. */
function removeStaleChunks({ keep = [] } = {}) {
  return {
    name: "sbw-remove-stale-chunks",
    writeBundle(options, bundle) {
      for (const f of readdirSync(options.dir)) {
        if (f.endsWith(".js") && !(f in bundle) && !keep.includes(f)) rmSync(path.join(options.dir, f));
      }
    },
  };
}

const isDependency = (id) => id.startsWith("node:") || dependencies.some((d) => id === d || id.startsWith(`${d}/`));

export default [
  {
    input: { index: "src/index.ts", cli: "src/cli.ts" },
    external: isDependency,
    plugins: [nodeWasmPath(), typescript(), removeStaleChunks()],
    output: { dir: "dist", format: "es", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js", sourcemap: false },
  },
  {
    input: "src/index.browser.ts",
    plugins: [writerScriptLiteral({ emit: true }), dependenciesInside(), typescript(), removeStaleChunks({ keep: ["inline.js"] })],
    output: { dir: "dist/browser", format: "es", entryFileNames: "index.js", chunkFileNames: "[name].js", sourcemap: false },
  },
  {
    input: "src/index.browser.ts",
    plugins: [inlineDefaultWasm(), writerScriptLiteral(), dependenciesInside(), typescript(), wasm({ targetEnv: "auto-inline" })],
    output: { file: "dist/browser/inline.js", format: "es", inlineDynamicImports: true, sourcemap: false },
  },
];
