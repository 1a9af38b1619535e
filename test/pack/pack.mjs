// Packs the repository as npm would publish it and installs the tarball into an empty project,
// the way a user's `npm install sqlite-backup-wasm` would (test:pack).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const made = [];

/** A fresh temp dir, removed by removeTemp(). */
export function tempDir(tag) {
  const d = mkdtempSync(join(tmpdir(), `sbw-${tag}-`));
  made.push(d);
  return d;
}

/** Removes every dir tempDir() made. */
export function removeTemp() {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** `npm pack` into dir; returns the tarball's path and npm's file list. */
export function pack(dir) {
  if (!existsSync(join(repo, "dist", "index.js")) || !existsSync(join(repo, "wasm", "sqlite3.wasm"))) {
    throw new Error("nothing to pack: run `npm run build` first");
  }
  const out = execFileSync(npm, ["pack", "--json", "--pack-destination", dir], { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const [info] = JSON.parse(out);
  return { tarball: join(dir, info.filename), files: info.files.map((f) => f.path) };
}

/**
 * A new project in a fresh temp dir with the tarball installed. Its dependencies come from the
 * npm cache when it has them and from the registry otherwise (an empty cache must work: CI's
 * is). Returns the project dir and npm's output.
 */
export function installInto(tarball, { type = "module" } = {}) {
  const project = tempDir("consumer");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type }, null, 2));
  const log = execFileSync(npm, ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts"], {
    cwd: project, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
  });
  return { project, log };
}

/** Every file under dir (relative paths), for checks such as "no native addon was installed". */
export function walk(dir, base = dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out;
}
