// `npm run demo`: serves this page and the browser bundle it imports (dist/browser/, built by
// `npm run build`) on 127.0.0.1 and prints the URL. PORT=0 picks a free port.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const PAGE = "/examples/opfs-demo/";
/** Only what the page needs is served: the page's folder, the bundle and the wasm it fetches. */
const ROOTS = [PAGE, "/dist/browser/", "/wasm/sqlite3.wasm"];
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
};

const server = createServer((req, res) => {
  let path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  if (path === "/" || path === PAGE.slice(0, -1)) return void res.writeHead(302, { location: PAGE }).end();
  if (path.endsWith("/")) path += "index.html";
  const file = normalize(join(repo, path));
  const allowed = ROOTS.some((r) => (r.endsWith("/") ? file.startsWith(normalize(join(repo, r))) : file === normalize(join(repo, r))));
  let size = -1;
  try {
    if (allowed && statSync(file).isFile()) size = statSync(file).size;
  } catch {
    // missing: 404 below
  }
  if (size < 0) return void res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
  res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": size, "cache-control": "no-store" });
  createReadStream(file).pipe(res);
});

try {
  statSync(join(repo, "dist/browser/index.js"));
} catch {
  console.error("demo: dist/browser/index.js is missing: run `npm run build` (npm run demo does)");
  process.exit(1);
}
server.listen(Number(process.env.PORT ?? 8080), "127.0.0.1", () => {
  console.log(`demo: open http://127.0.0.1:${server.address().port}${PAGE}  (Ctrl-C stops)`);
});
