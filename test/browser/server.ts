// A tiny static server for the browser tests (127.0.0.1, random port); browsers start through
// launch.mjs.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";


const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".wasm": "application/wasm", ".map": "application/json", ".json": "application/json",
  ".png": "image/png",
};

/** The Content-Security-Policy of test/browser/csp.html: no blob: workers, no inline scripts. */
export const STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'";
const HEADERS: Record<string, Record<string, string>> = { "/test/browser/csp.html": { "content-security-policy": STRICT_CSP } };

/** Serves root; a mount maps a URL prefix ("/build/") to another directory. */
export function serve(root: string, mounts: Record<string, string> = {}): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    let base = root;
    let rel = path;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (path.startsWith(prefix)) {
        base = dir;
        rel = path.slice(prefix.length - 1);
      }
    }
    const file = normalize(join(base, rel));
    let size = -1;
    try {
      if (file === base || file.startsWith(base + sep)) size = statSync(file).isFile() ? statSync(file).size : -1;
    } catch {
      // missing: 404 below
    }
    if (size < 0) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": size, "cache-control": "no-store", ...HEADERS[path] });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    });
  });
}
