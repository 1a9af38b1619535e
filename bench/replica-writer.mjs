// The replica benchmark's native writer, in a process of its own so that feeding it costs the
// replicating process nothing: the sqlite3 CLI commits ~100 transactions/s on the database named
// by argv[2] (an insert with a random indexed key and an update of a random row) until this
// process's stdin ends, then prints the number of transactions sent.
//   node bench/replica-writer.mjs <file>
import { execFileSync, spawn } from "node:child_process";

const file = /** @type {string} */ (process.argv[2]);
const maxId = Number(execFileSync("sqlite3", ["-batch", file, "SELECT max(id) FROM t"], { encoding: "utf8" }).trim());
const p = spawn("sqlite3", ["-batch", file], { stdio: ["pipe", "ignore", "inherit"] });
const exited = new Promise((res) => p.once("exit", res));
p.stdin.on("error", () => {});
p.stdin.write(".timeout 10000\n");
let sent = 0;
const start = Date.now();
const timer = setInterval(() => {
  // Catch up to 100/s (timers run late under load).
  const due = Math.floor(((Date.now() - start) / 1000) * 100);
  while (sent < due && p.stdin.writableLength < 65536) {
    const id = 1 + Math.floor(Math.random() * maxId);
    p.stdin.write(`BEGIN; INSERT INTO t(k, v, n) VALUES (hex(randomblob(8)), hex(randomblob(100)) || ' new', ${sent}); UPDATE t SET n = n + 1, v = hex(randomblob(100)) WHERE id = ${id}; COMMIT;\n`);
    sent++;
  }
}, 10);
process.stdin.resume();
process.stdin.on("end", async () => {
  clearInterval(timer);
  p.stdin.end(".quit\n");
  await exited;
  console.log(sent);
});
