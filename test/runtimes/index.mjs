// The pinned runtimes of the test matrix (package.json beside this file; scripts/setup.sh test
// installs them). Deno is a devDependency of the package itself.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const bin = (pkg, exe) => join(here, "node_modules", pkg, "bin", exe);

/** label → executable, in the order the matrix runs them. */
export const runtimes = {
  "node20": bin("node20", "node"),
  "node22": bin("node22", "node"),
  "node24": bin("node24", "node"),
  "node26": bin("node26", "node"),
  "bun": bin("bun", "bun"),
  "deno": join(repo, "node_modules", ".bin", "deno"),
};

/** The executable for label; throws with the command that installs it when it is missing. */
export function runtime(label) {
  const exe = runtimes[label];
  if (!exe) throw new Error(`unknown runtime ${label}`);
  if (!existsSync(exe)) throw new Error(`${label} is not installed at ${exe}: run scripts/setup.sh test`);
  return exe;
}
