// test:pack — what a user gets from the registry: `npm pack`, install the tarball into an empty
// project (no postinstall, no native build), then the same consumer file does a file backup,
// and the installed CLI another, in Node 20, 22, 24, 26, Bun and Deno 2 (test/runtimes); a
// bundler build does one in Chromium, and a TypeScript consumer compiles against the shipped .d.ts. Every file written is checked with the native sqlite3 CLI.
// Run `npm run build` first (npm run test:pack does). Prints "N passed, N failed" last.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { runtime } from "../runtimes/index.mjs";
import { installInto, pack, removeTemp, repo, tempDir, walk } from "./pack.mjs";

const TSC = join(repo, "node_modules", "typescript", "bin", "tsc");
const INSTALL_SCRIPTS = ["preinstall", "install", "postinstall", "prepare"];

let passed = 0;
let failed = 0;
/** `node test/pack/run-pack-tests.mjs [name-filter]`: only the checks whose name has it (packing and installing always run). */
const filter = process.argv[2];
async function check(name, fn) {
  if (filter && !name.includes(filter) && !name.startsWith("npm pack") && !name.startsWith("npm install")) return;
  const t0 = Date.now();
  try {
    const note = await fn();
    passed++;
    console.log(`✓ ${name}${note ? ` — ${note}` : ""} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`✘ ${name}\n    ${String(e?.stack ?? e).split("\n").slice(0, 6).join("\n    ")}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}
function equal(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
const sqlite3 = (file, sql) => execFileSync("sqlite3", ["-batch", file, sql], { encoding: "utf8", maxBuffer: 1 << 28 });
/** The native CLI's verdict on a file we wrote: sound, and the same .dump as the source. */
function nativeCheck(file, source) {
  equal(sqlite3(file, "PRAGMA integrity_check").trim(), "ok", `integrity_check of ${file}`);
  if (source) assert(sqlite3(file, ".dump") === sqlite3(source, ".dump"), `${file} differs from ${source} (.dump)`);
}
function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// ------------------------------------------------------------------ pack and install
const packDir = tempDir("pack");
let packed;
await check("npm pack", () => {
  packed = pack(packDir);
  const size = statSync(packed.tarball).size;
  return `${packed.files.length} files, ${(size / 1024).toFixed(0)} KiB tarball`;
});
if (!packed) finish();

const manifest = JSON.parse(execFileSync("tar", ["-xzOf", packed.tarball, "package/package.json"], { encoding: "utf8" }));

await check("the tarball holds the whitelisted files only", () => {
  for (const need of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/cli.js", "wasm/sqlite3.wasm"]) {
    assert(packed.files.includes(need), `missing ${need}`);
  }
  const stray = packed.files.filter((f) => !(f.startsWith("dist/") || ["package.json", "README.md", "LICENSE", "wasm/sqlite3.wasm"].includes(f)));
  assert(stray.length === 0, `unexpected files: ${stray.join(", ")}`);
  const native = packed.files.filter((f) => /\.(node|gyp|c|cc|h)$/.test(f));
  assert(native.length === 0, `native sources or addons: ${native.join(", ")}`);
});

await check("package.json: ESM, side-effect free, no install scripts, types first in every export condition", () => {
  equal(manifest.type, "module", "type");
  equal(manifest.sideEffects, false, "sideEffects");
  for (const s of INSTALL_SCRIPTS) assert(!manifest.scripts?.[s], `scripts.${s} would run on install`);
  assert(!manifest.gypfile, "gypfile");
  const bin = manifest.bin?.["sqlite-backup-wasm"];
  assert(bin && packed.files.includes(bin.replace(/^\.\//, "")), `bin ${bin} not in the tarball`);
  const root = manifest.exports?.["."];
  for (const cond of ["node", "deno", "default"]) assert(root?.[cond], `exports["."] has no "${cond}" condition`);
  const visit = (node, where) => {
    if (typeof node === "string") {
      assert(packed.files.includes(node.replace(/^\.\//, "")), `${where} → ${node} is not in the tarball`);
      return;
    }
    // Where a condition object names files, "types" must come first (TypeScript takes the first match).
    const keys = Object.keys(node);
    if (keys.some((k) => !k.startsWith(".") && typeof node[k] === "string")) equal(keys[0], "types", `first key of ${where}`);
    for (const k of keys) visit(node[k], `${where}.${k}`);
  };
  visit(manifest.exports, "exports");
  return `conditions: ${Object.keys(root).join(", ")}`;
});

await check("no shipped file names a source map the tarball lacks", () => {
  const dir = tempDir("unpacked");
  execFileSync("tar", ["-xzf", packed.tarball, "-C", dir]);
  const dangling = [];
  for (const f of packed.files.filter((f) => f.endsWith(".js"))) {
    const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dir, "package", f), "utf8"));
    if (m && !m[1].startsWith("data:") && !packed.files.includes(join(f, "..", m[1]).replace(/\\/g, "/"))) dangling.push(`${f} → ${m[1]}`);
  }
  assert(dangling.length === 0, `sourceMappingURL to files not in the tarball: ${dangling.join(", ")}`);
});

let project;
await check("npm install <tarball> into an empty project: no scripts, no native code", () => {
  const installed = installInto(packed.tarball);
  project = installed.project;
  const files = walk(join(project, "node_modules"));
  const native = files.filter((f) => /\.node$|binding\.gyp$|(^|\/)build\/Release\//.test(f));
  assert(native.length === 0, `native files installed: ${native.join(", ")}`);
  for (const f of files.filter((f) => f.endsWith("/package.json") && !f.includes("/node_modules/", 1))) {
    const pkg = JSON.parse(readFileSync(join(project, "node_modules", f), "utf8"));
    // A dependency's "prepare" runs only when it is installed from git or a folder, never from
    // the registry: what npm runs for it here are the other three.
    for (const s of INSTALL_SCRIPTS.filter((x) => x !== "prepare")) assert(!pkg.scripts?.[s], `${pkg.name} has an install script (${s})`);
  }
  const deps = files.filter((f) => /^(@[^/]+\/)?[^/]+\/package\.json$/.test(f) && !f.startsWith(".")).length;
  return `${deps} packages`;
});
if (!project) finish();

// ------------------------------------------------------------------ runtimes
const source = join(project, "source.db");
sqlite3(source, `PRAGMA page_size = 4096; PRAGMA user_version = 9;
  CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, s TEXT, r REAL);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
    INSERT INTO t(v, s, r) SELECT randomblob(200), 'row ' || i, i / 3.0 FROM n;
  CREATE INDEX t_s ON t(s);
  CREATE VIRTUAL TABLE doc USING fts5(body); INSERT INTO doc VALUES ('packaged and installed');`);
const sourcePages = Number(sqlite3(source, "PRAGMA page_count"));
copyFileSync(join(repo, "test", "pack", "consumer.mjs"), join(project, "consumer.mjs"));

/** Runs consumer.mjs with a runtime; checks what it reports and the file it wrote. */
function consumerBackup(label, cmd, args) {
  const dest = join(project, `copy-${label}.db`);
  const out = run(cmd, [...args, "consumer.mjs", "source.db", `copy-${label}.db`], { cwd: project });
  const r = JSON.parse(out.trim().split("\n").at(-1));
  equal(r.pageCount, sourcePages, "pageCount");
  equal(r.steps, Math.ceil(sourcePages / 16), "steps of 16 pages");
  equal(r.lastRemaining, 0, "final progress event");
  equal(r.rows, 3000, "rows read back through the library");
  equal(r.integrity, "ok", "integrity_check through the library");
  equal(r.missing, "SQLITE_CANTOPEN", "error for a missing directory");
  equal(r.vfs, "node-fs", "default VFS");
  nativeCheck(dest, source);
  return `${r.runtime}, SQLite ${r.version}, ${r.pageCount} pages`;
}

// Every pinned runtime of the matrix runs the same consumer file, and the installed CLI.
for (const [label, name] of [["node20", "Node 20"], ["node22", "Node 22"], ["node24", "Node 24"], ["node26", "Node 26"], ["bun", "Bun"]]) {
  await check(`${name} (${label}): file backup and the CLI from the installed package`, () => {
    const exe = runtime(label);
    const note = consumerBackup(label, exe, []);
    const cliOut = run(exe, [join("node_modules", "sqlite-backup-wasm", "dist", "cli.js"), "backup", "source.db", `cli-${label}.db`, "--json"], { cwd: project });
    equal(JSON.parse(cliOut.trim().split("\n").at(-1)).event, "done", `CLI under ${name}`);
    nativeCheck(join(project, `cli-${label}.db`), source);
    return `${note}; CLI ok`;
  });
}

await check("the bin npm linked (npx sqlite-backup-wasm): backup, then verify of the copy", () => {
  const npx = (args) => run("npx", ["--offline", "--no", "sqlite-backup-wasm", ...args], { cwd: project });
  npx(["backup", "source.db", "cli-npx.db"]);
  nativeCheck(join(project, "cli-npx.db"), source);
  const v = JSON.parse(npx(["verify", "source.db", "cli-npx.db", "--json"]).trim().split("\n").at(-1));
  equal(v.ok, true, "verify's verdict");
  return "backup and verify through node_modules/.bin";
});

await check("Deno 2 (registry package deno): the same file, through node_modules, and the CLI with and without --allow-ffi", () => {
  // The permissions the README documents: files, uid for fs.access(), the temp-dir variables.
  const perms = ["--no-prompt", `--allow-read=${project}`, `--allow-write=${project}`, "--allow-sys=uid", "--allow-env=TMPDIR,TMP,TEMP"];
  const note = consumerBackup("deno", runtime("deno"), ["run", ...perms]);
  for (const [flags, locking] of [[[], "process"], [["--allow-ffi"], "os"]]) {
    const cliJs = join("node_modules", "sqlite-backup-wasm", "dist", "cli.js");
    const v = JSON.parse(run(runtime("deno"), ["run", ...perms, ...flags, cliJs, "--version", "--json"], { cwd: project }).trim());
    equal(v.locking, locking, `locking under deno ${flags.join(" ")}`);
    const out = run(runtime("deno"), ["run", ...perms, ...flags, cliJs, "backup", "source.db", `cli-deno-${locking}.db`, "--json"], { cwd: project });
    equal(JSON.parse(out.trim().split("\n").at(-1)).event, "done", `CLI under Deno ${flags.join(" ")}`);
    nativeCheck(join(project, `cli-deno-${locking}.db`), source);
  }
  return `${note}; CLI ok with and without FFI`;
});

await check("TypeScript consumers (using, Backup, Database) compile against the shipped .d.ts", () => {
  copyFileSync(join(repo, "test", "types", "consumer.ts"), join(project, "consumer.ts"));
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "ESNext.Disposable", "DOM"],
      strict: true, noEmit: true, skipLibCheck: false, types: [],
    },
    files: ["consumer.ts"],
  }));
  run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: project });
  if (!manifest.exports["."].browser) return;
  copyFileSync(join(repo, "test", "types", "browser-consumer.ts"), join(project, "browser-consumer.ts"));
  writeFileSync(join(project, "tsconfig.browser.json"), JSON.stringify({
    compilerOptions: {
      target: "ES2022", module: "ESNext", moduleResolution: "Bundler", customConditions: ["browser"],
      lib: ["ES2022", "ESNext.Disposable", "DOM"], strict: true, noEmit: true, skipLibCheck: false, types: [],
    },
    files: ["browser-consumer.ts"],
  }));
  run(process.execPath, [TSC, "-p", "tsconfig.browser.json"], { cwd: project });
  return "Node entry (NodeNext) and browser entry (Bundler + browser condition)";
});

// ------------------------------------------------------------------ a Vite app, as a developer makes it
/** The docs' example files: the ```ts blocks of docs/browser.md whose first line is `// src/<name>`. */
function exampleFiles() {
  const md = readFileSync(join(repo, "docs", "browser.md"), "utf8");
  const files = {};
  for (const [, code] of md.matchAll(/```ts\n(\/\/ src\/[^\n]+\n[\s\S]*?)```/g)) files[code.split("\n")[0].slice(3)] = code;
  assert(files["src/main.ts"] && files["src/worker.ts"], "docs/browser.md has no src/main.ts and src/worker.ts example");
  return files;
}
/** KB (1,000 bytes) of zlib level 9, as docs/browser.md gives the sizes. */
const gzipKB = (bytes) => gzipSync(bytes, { level: 9 }).length / 1000;

let viteApp;
await check("Vite app (create-vite vanilla-ts, TypeScript 7.0.2, Vite 8.4.1, tsconfig unchanged) with the docs' example: tsc && vite build; its .d.ts with skipLibCheck: false", () => {
  const app = tempDir("vite-app");
  for (const f of ["package.json", "tsconfig.json", "index.html"]) copyFileSync(join(repo, "test", "types", "vite-app", f), join(app, f));
  mkdirSync(join(app, "src"));
  for (const [file, code] of Object.entries(exampleFiles())) writeFileSync(join(app, file), code);
  // The registry's packages (an empty cache must work), the tarball as a dependency.
  run("npm", ["install", packed.tarball, "--prefer-offline", "--no-audit", "--no-fund"], { cwd: app, timeout: 300_000 });
  run("npm", ["run", "build"], { cwd: app, timeout: 300_000 });
  // Every .d.ts the app loads checked (the template skips them), on the template's own lib.
  writeFileSync(join(app, "tsconfig.libcheck.json"), JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { skipLibCheck: false, types: [] } }));
  run(join(app, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.libcheck.json"], { cwd: app, timeout: 300_000 });
  const assets = walk(join(app, "dist"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  equal(wasm.length, 1, `the .wasm assets (${assets.join(", ")})`);
  const sizesOf = (dir) => Object.fromEntries(walk(join(app, dir)).filter((f) => /\.(js|wasm)$/.test(f)).map((f) => [f, gzipKB(readFileSync(join(app, dir, f)))]));
  const sizes = sizesOf("dist");
  // ≤ 30 KB gzip of JS per chunk: what few apps call (streams, replicas, verify) is in chunks of
  // its own. Except the worker: Vite builds workers as one iife by default (worker.format), which
  // holds those chunks too (45.6 KB gzip with replicas' merges and XORed deltas).
  for (const [f, kb] of Object.entries(sizes)) {
    if (f.endsWith(".wasm")) assert(kb <= 360, `${f}: ${kb.toFixed(1)} KB gzip, more than 360`);
    else if (/^assets\/worker-/.test(f)) assert(kb <= 48, `${f} (the iife worker): ${kb.toFixed(1)} KB gzip, more than 48`);
    else assert(kb <= 30, `${f}: ${kb.toFixed(1)} KB gzip, more than 30`);
  }
  assert(Object.keys(sizes).some((f) => /^assets\/replicator-/.test(f)), `no replicator chunk of its own (${Object.keys(sizes).join(", ")})`);
  // The same app with worker: { format: "es" }: the worker's chunks split as the page's.
  writeFileSync(join(app, "vite.config.ts"), `import { defineConfig } from "vite";\nexport default defineConfig({ worker: { format: "es" } });\n`);
  run(join(app, "node_modules", ".bin", "vite"), ["build", "--outDir", "dist-es-worker"], { cwd: app, timeout: 300_000 });
  rmSync(join(app, "vite.config.ts"));
  const esWorker = Object.entries(sizesOf("dist-es-worker")).filter(([f]) => /^assets\/worker-.*\.js$/.test(f));
  equal(esWorker.length, 1, "worker chunks with worker.format es");
  assert(esWorker[0][1] <= 30, `${esWorker[0][0]} (worker.format es): ${esWorker[0][1].toFixed(1)} KB gzip, more than 30`);
  viteApp = { app, sizes };
  return `${Object.entries(sizes).map(([f, kb]) => `${f} ${kb.toFixed(1)} KB gzip`).join(", ")}; ` +
    `with worker.format es: ${esWorker[0][0]} ${esWorker[0][1].toFixed(1)} KB gzip`;
});

if (viteApp) {
  await check("Vite app runs in Chromium and Firefox: page backs up to OPFS and restores, its worker opens the file; the .wasm is downloaded once", async () => {
    const { launchBrowser } = await import("../browser/launch.mjs");
    const { serve } = await import("./browser-serve.mjs");
    const notes = [];
    for (const name of ["chromium", "firefox"]) {
      const requests = [];
      const server = await serve(join(viteApp.app, "dist"), { cache: true, log: requests });
      const launched = await launchBrowser(name);
      try {
        const page = await launched.browser.newPage();
        const errors = [];
        page.on("pageerror", (e) => errors.push(String(e?.message ?? e)));
        await page.goto(`${server.url}/index.html`);
        await page.waitForFunction("document.querySelector('#app').textContent.includes('worker:')", { timeout: 60_000, polling: 100 })
          .catch(async (e) => { throw new Error(`${e.message}; the page says: ${await page.$eval("#app", (el) => el.textContent)}; errors: ${errors.join("; ")}`); });
        const text = await page.$eval("#app", (el) => el.textContent);
        assert(text.includes("restored: hello.") && text.includes("worker: 1 note(s) in a copy."), `${name}: the page says ${text}`);
        const wasmGets = requests.filter((r) => r.path.endsWith(".wasm"));
        equal(wasmGets.length, 1, `${name}: requests for the .wasm (${requests.map((r) => r.path).join(", ")})`);
        const bytes = requests.reduce((n, r) => n + r.bytes, 0);
        const gz = requests.reduce((n, r) => n + gzipKB(readFileSync(join(viteApp.app, "dist", r.path))), 0);
        notes.push(`${name}: ${requests.length} requests, ${(bytes / 1000).toFixed(0)} KB (${gz.toFixed(0)} KB gzip)`);
      } finally {
        await launched.close();
        await server.close();
      }
    }
    return notes.join("; ");
  });
}

// ------------------------------------------------------------------ browser through a bundler
if (manifest.exports["."].browser) {
  await check("browser: esbuild bundle of the installed package, memory → OPFS file in Chromium", async () => {
    const { build } = await import("esbuild");
    const { launchBrowser } = await import("../browser/launch.mjs");
    const { serve } = await import("./browser-serve.mjs");
    copyFileSync(join(repo, "test", "pack", "consumer-browser.mjs"), join(project, "consumer-browser.mjs"));
    const outdir = join(project, "www");
    await build({ absWorkingDir: project, entryPoints: ["consumer-browser.mjs"], bundle: true, format: "esm", platform: "browser", outdir, logLevel: "error" });
    writeFileSync(join(outdir, "index.html"), `<!doctype html><script type="module" src="consumer-browser.js"></script>`);
    const server = await serve(outdir);
    const launched = await launchBrowser("chromium");
    try {
      const page = await launched.browser.newPage();
      await page.goto(`${server.url}/index.html`);
      await page.waitForFunction("typeof globalThis.runPackTest === 'function'");
      const r = await page.evaluate("globalThis.runPackTest(2000)");
      const file = join(project, "copy-browser.db");
      writeFileSync(file, Buffer.from(r.base64, "base64"));
      nativeCheck(file);
      equal(sqlite3(file, "SELECT count(*), sum(length(v)), max(s) FROM t").trim(), "2000|400000|row 999", "content");
      equal(Number(sqlite3(file, "PRAGMA page_count")), r.pageCount, "page count");
      assert(r.events > 1, "progress events");
      return `SQLite ${r.version}, ${r.pageCount} pages`;
    } finally {
      await launched.close();
      await server.close();
    }
  });
} else {
  console.log("- browser: the package has no \"browser\" export condition yet; not tested");
}

const wasm = readFileSync(join(repo, "wasm", "sqlite3.wasm"));
const wasmSizes = [wasm.length, gzipSync(wasm, { level: 9 }).length].map((n) => n.toLocaleString("en-US"));
console.log(`  wasm/sqlite3.wasm: ${wasmSizes[0]} bytes raw, ${wasmSizes[1]} bytes gzip -9`);
// The docs give the wasm's size by hand (docs/performance.md): say when it no longer matches what ships.
const said = /([\d,.]+) KB raw and ~?([\d,.]+) KB with `gzip -9`/.exec(readFileSync(join(repo, "docs", "performance.md"), "utf8"));
const near = (kb, bytes) => Math.abs(Number(kb.replace(/,/g, "")) * 1000 - bytes) <= bytes / 100;
if (!said || !near(said[1], wasm.length) || !near(said[2], gzipSync(wasm, { level: 9 }).length)) {
  console.log(`  docs/performance.md gives the wasm as ${said ? `${said[1]} KB / ${said[2]} KB gzip` : "(no size line found)"}: update it to ${wasmSizes[0]} / ${wasmSizes[1]} bytes`);
}
finish();

function finish() {
  if (failed === 0 || !process.env.SBW_KEEP) removeTemp(); // SBW_KEEP=1 keeps a failed run's project
  else console.log(`  kept: ${project ?? packDir}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
