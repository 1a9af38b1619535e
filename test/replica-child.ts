// A replicating process for the replica tests, killed by them at random moments: replicates the
// database file argv[2] into the target described by argv[3] (JSON: {dir} or the s3Target
// options) every argv[4] ms, printing each sync's SyncInfo as a JSON line.
import process from "node:process";
import { fileTarget, loadSqlite, s3Target } from "../src/index.js";

const [file, targetJson, interval] = process.argv.slice(2);
const spec = JSON.parse(targetJson!);
const target = spec.dir ? fileTarget(spec.dir) : s3Target(spec);
const sqlite = await loadSqlite();
sqlite.replicate(file!, target, {
  intervalMs: Number(interval),
  onSync: (info) => console.log(JSON.stringify(info)),
  onError: (e) => console.log(JSON.stringify({ error: e.message })),
});
