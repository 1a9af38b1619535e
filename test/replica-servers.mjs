// The S3-compatible servers the replica tests use, each in a process of its own (fauxqs needs
// Node >= 22.5, the suites also run on Node 20 and Bun): prints {"port": N} once it listens, and
// runs until its stdin closes. Usage: node test/replica-servers.mjs s3rver|fauxqs <dir>
import process from "node:process";

const [kind, dir] = process.argv.slice(2);
let stop;
if (kind === "s3rver") {
  const { default: S3rver } = await import("s3rver");
  const server = new S3rver({ port: 0, address: "127.0.0.1", directory: dir, silent: true, configureBuckets: [{ name: "backups" }] });
  const { port } = await server.run();
  stop = () => server.close();
  console.log(JSON.stringify({ port }));
} else if (kind === "fauxqs") {
  const { startFauxqs } = await import("fauxqs");
  const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
  server.createBucket("backups");
  stop = () => server.stop();
  console.log(JSON.stringify({ port: server.port }));
} else {
  console.error(`unknown server ${kind}`);
  process.exit(2);
}
process.stdin.resume();
process.stdin.on("end", async () => {
  await stop();
  process.exit(0);
});
