// Runs tests/web/smoke.html in Debian's Chromium (playwright-core, flags from
// ../shared/reference/browser.md) on the CPU build and on WebGPU (SwiftShader here), and
// checks: non-blank image, same caption + seed -> same pixels, different captions differ.
//   node tests/web/browser_smoke.mjs            (after tools/build_web.sh)
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".safetensors": "application/octet-stream" };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  try {
    const body = await readFile(join(root, path));
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404); res.end();
  }
}).listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // playwright gives every launch a fresh profile directory.
});
let failed = false;
for (const backend of (process.env.T2I_BACKENDS ?? "cpu,webgpu").split(",")) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`[${backend}] page error: ${e}`));
  await page.goto(`${base}/tests/web/smoke.html?backend=${backend}`);
  await page.waitForFunction(() => window.__result, null, { timeout: 600_000 });
  const r = await page.evaluate(() => window.__result);
  await page.screenshot({ path: join(tmpdir(), `t2i-smoke-${backend}.png`) });
  const ok = r.ok && r.same && r.differ && r.std > 10 && r.backend === backend;
  failed ||= !ok;
  console.log(`${ok ? "ok  " : "FAIL"} ${backend}: ${JSON.stringify(r)}`);
  await page.close();
}
await browser.close();
server.close();
process.exit(failed ? 1 : 0);
