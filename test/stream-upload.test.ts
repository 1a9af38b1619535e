// Streams off the device: an S3 multipart upload (@aws-sdk/lib-storage's Upload, body = the
// stream) to a real S3-compatible server (s3rver, started here on 127.0.0.1), and a fetch PUT
// with a stream body to a plain HTTP server; the objects are read back, checked by the native
// sqlite3 and restored with restoreFromStream. An aborted stream must fail the upload, never
// store a truncated object.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import S3rver from "s3rver";
import { cli, fill, integrity, rejects, sqlitePromise, tmpDir } from "./helpers.js";

const sqlite = await sqlitePromise;
const test = suite("streams: uploads");

const sha3 = (file: string) => cli(file, ".sha3sum").trim();
const BUCKET = "backups";

let server: S3rver;
let client: S3Client;

test.before(async () => {
  server = new S3rver({ port: 0, address: "127.0.0.1", directory: tmpDir("s3"), silent: true, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = await server.run();
  client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
});

test.after(async () => {
  client?.destroy();
  await server?.close();
});

/** A WAL database of ~12 MiB (three 5 MiB parts) and its path. */
function source(dir: string): string {
  const path = join(dir, "app.db");
  using db = sqlite.open(path);
  db.exec("PRAGMA journal_mode=WAL");
  fill(db, 28_000);
  return path;
}

async function download(key: string, file: string): Promise<void> {
  const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  await pipeline(obj.Body as NodeJS.ReadableStream, createWriteStream(file));
}

test("S3 multipart upload of backupToStream, and the object restored with restoreFromStream", async () => {
  const dir = tmpDir("upload");
  const src = source(dir);
  using db = sqlite.open(src);
  const parts: number[] = [];
  const upload = new Upload({ client, params: { Bucket: BUCKET, Key: "app.db", Body: sqlite.backupToStream(db) } });
  upload.on("httpUploadProgress", (p) => parts.push(p.part ?? 0));
  await upload.done();
  assert.ok(Math.max(...parts) >= 2, `a multipart upload (${Math.max(...parts)} parts)`);

  const fetched = join(dir, "fetched.db");
  await download("app.db", fetched);
  assert.is(integrity(fetched), "ok");
  assert.is(sha3(fetched), sha3(src));

  const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "app.db" }));
  const restored = join(dir, "restored.db");
  const result = await sqlite.restoreFromStream(obj.Body!.transformToWebStream(), restored);
  assert.is(result.pageCount, Number(cli(src, "PRAGMA page_count").trim()));
  assert.is(integrity(restored), "ok");
  assert.is(sha3(restored), sha3(src));
});

test("S3 upload through gzip (CompressionStream) and back through DecompressionStream", async () => {
  const dir = tmpDir("upload");
  const src = source(dir);
  using db = sqlite.open(src);
  db.exec("CREATE TABLE words(s TEXT); INSERT INTO words SELECT 'backup off the device, row ' || s FROM t");
  await new Upload({ client, params: { Bucket: BUCKET, Key: "app.db.gz", Body: sqlite.backupToStream(db).pipeThrough(new CompressionStream("gzip")) } }).done();
  const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "app.db.gz" }));
  const { size } = statSync(src);
  console.log(`  gzip: ${size} bytes -> ${head.ContentLength} (${((head.ContentLength! / size) * 100).toFixed(0)}%; random blobs barely compress)`);
  const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "app.db.gz" }));
  const restored = join(dir, "restored.db");
  await sqlite.restoreFromStream(obj.Body!.transformToWebStream().pipeThrough(new DecompressionStream("gzip")), restored);
  assert.is(integrity(restored), "ok");
  assert.is(sha3(restored), sha3(src));
});

test("an aborted stream fails the upload: no object is stored", async () => {
  const dir = tmpDir("upload");
  using db = sqlite.open(source(dir));
  const ac = new AbortController();
  const body = sqlite.backupToStream(db, {
    signal: ac.signal,
    onStreamProgress: (p) => {
      if (p.bytes >= 6 << 20) ac.abort(new Error("stopped by the user"));
    },
  });
  const e = await rejects(new Upload({ client, params: { Bucket: BUCKET, Key: "aborted.db", Body: body } }).done());
  assert.instance(e, Error);
  const head = await rejects(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "aborted.db" })));
  assert.is((head as { name?: string }).name, "NotFound");
});

test("fetch PUT with a stream body (duplex: half), and a restore from a fetch response's body", async () => {
  const dir = tmpDir("upload");
  const src = source(dir);
  using db = sqlite.open(src);
  const received = join(dir, "received.db");
  const http: Server = createServer((req, res) => {
    if (req.method === "PUT") {
      pipeline(req, createWriteStream(received)).then(() => res.end("stored"), (e) => res.writeHead(500).end(String(e)));
    } else {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      createReadStream(received).pipe(res);
    }
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/app.db`;
    const put = await fetch(url, { method: "PUT", body: sqlite.backupToStream(db), duplex: "half" } as RequestInit);
    assert.is(await put.text(), "stored");
    assert.is(integrity(received), "ok");
    assert.is(sha3(received), sha3(src));

    const got = await fetch(url);
    const restored = join(dir, "restored.db");
    await sqlite.restoreFromStream(got.body!, restored);
    assert.is(sha3(restored), sha3(src));
  } finally {
    http.closeAllConnections?.();
    await new Promise((r) => http.close(r));
  }
});

test.run();
