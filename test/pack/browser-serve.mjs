// A static server on 127.0.0.1 (a secure context, so OPFS exists) for the pack test's bundler
// check; the browser starts through test/browser/launch.mjs.
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };

/**
 * Serves root. cache: files under /assets/ (Vite's hashed names) cacheable for a year, as a
 * production server sends them; log: an array that gets { path, bytes } of every file sent.
 */
export function serve(root, { cache = false, log } = {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    const body = readFileSync(file);
    log?.push({ path: path.slice(1), bytes: body.length });
    const headers = { "content-type": TYPES[extname(file)] ?? "application/octet-stream" };
    if (cache && path.startsWith("/assets/")) headers["cache-control"] = "public, max-age=31536000, immutable";
    res.writeHead(200, headers).end(body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  })));
}
