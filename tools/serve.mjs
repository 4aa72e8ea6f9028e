// A static file server for the page (no dependencies): `node tools/serve.mjs [port]` serves the
// repository root on 127.0.0.1 and prints the URL. The tests import `serve` from here.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join, dirname, extname, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".wasm": "application/wasm", ".png": "image/png", ".json": "application/json",
  ".safetensors": "application/octet-stream",
};
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Serves `root` on 127.0.0.1:`port` (0: any free port); resolves to the base URL and server.
 * Tests may pass `extra`, a map of URL path -> bytes served from memory (e.g. a corrupt bundle,
 * so nothing is written into the repository), or a function giving each request's bytes, and
 * `onServe({path, status, bytes})`, called for every response with the bytes sent (headers
 * included).
 */
export async function serve(root = ROOT, port = 0, { extra = {}, onServe } = {}) {
  const server = createServer(async (req, res) => {
    const pathname = new URL(req.url, "http://x").pathname;
    const send = (status, headers, body) => {
      res.writeHead(status, headers);
      res.end(body);
      onServe?.({ path: pathname, status, bytes: socketBytes(res, body) });
    };
    if (Object.hasOwn(extra, pathname)) {
      const entry = extra[pathname];
      const body = Buffer.from(typeof entry === "function" ? entry() : entry);
      return send(200, { "content-type": TYPES[extname(pathname)] ?? "application/octet-stream",
        "content-length": body.length, "cache-control": "no-store" }, body);
    }
    let path = normalize(decodeURIComponent(pathname));
    if (path.endsWith(sep) || path === "/") path = join(path, "index.html");
    const file = join(root, path);
    if (!file.startsWith(root)) return send(403, {}, "");
    try {
      const body = await readFile(file);
      send(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream",
        "content-length": body.length, "cache-control": "no-cache" }, body);
    } catch {
      send(404, {}, "not found");
    }
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, server };
}

// Body plus the status line and headers node wrote for this response.
function socketBytes(res, body) {
  return Buffer.byteLength(body ?? "") + Buffer.byteLength(res._header ?? "");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { url } = await serve(ROOT, Number(process.argv[2] ?? process.env.PORT ?? 8000));
  console.log(`t2i demo: ${url}/  (Ctrl-C stops)`);
}
