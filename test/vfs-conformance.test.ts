import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { NodeFsVfs } from "../src/node/fs-vfs.js";
import { tmpDir } from "./helpers.js";
import { runVfsConformance } from "./vfs-conformance.js";

test("node-fs passes the VFS conformance suite", async () => {
  const dir = tmpDir("conf");
  let n = 0;
  const results = await runVfsConformance(new NodeFsVfs(), () => join(dir, `f${++n}.db`));
  assert.ok(results.length >= 10, `only ${results.length} checks ran`);
  // Every failing check by name, so a regression says what broke.
  assert.equal(results.filter((r) => r.error !== null), []);
});

test.run();
