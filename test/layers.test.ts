// The layer rule of docs/architecture.md, checked on the sources: every import under src/ (type
// imports and re-exports included) goes to the same layer or one below, and no file reaches itself
// through its imports. A new folder under src/ must be given a layer here.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Layer of a source file (path relative to src/), from the bottom. */
function layer(file: string): number {
  const [top] = file.split("/");
  const byFolder: Record<string, number> = { core: 1, vfs: 2, runtime: 3, handles: 4, ops: 5, node: 7, browser: 7 };
  if (file.includes("/")) {
    const n = byFolder[top!];
    if (n === undefined) throw new Error(`src/${top}/ has no layer: add it to test/layers.test.ts and docs/architecture.md`);
    return n;
  }
  if (file === "sqlite.ts" || file === "exports.ts") return 6;
  if (/^index(\.[a-z]+)?\.ts$/.test(file) || file === "cli.ts") return 8;
  throw new Error(`src/${file} has no layer: add it to test/layers.test.ts and docs/architecture.md`);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []);
}

/** The src/ files a file imports (relative specifiers; ".js" names the ".ts" source). */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/g), ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)]
    .map((m) => m[1]!).filter((s) => s.startsWith("."));
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts")));
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));

test("every import goes to the same layer or below", () => {
  const up: string[] = [];
  for (const [file, deps] of graph) {
    const from = relative(SRC, file);
    for (const dep of deps) {
      const to = relative(SRC, dep);
      if (to.startsWith("..")) up.push(`${from} imports ${to}, outside src/`);
      else if (layer(to) > layer(from)) up.push(`${from} (layer ${layer(from)}) imports ${to} (layer ${layer(to)})`);
    }
  }
  assert.equal(up, []);
});

test("no import cycle", () => {
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(" → "));
      return;
    }
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of files) visit(f, []);
  assert.equal(cycles, []);
});

test("the check sees the imports it checks", () => {
  assert.ok(files.length > 30, `${files.length} sources`);
  const backup = graph.get(join(SRC, "ops", "backup.ts"))!;
  assert.ok(backup.includes(join(SRC, "handles", "database.ts")), "ops/backup.ts imports handles/database.ts");
});

test.run();
