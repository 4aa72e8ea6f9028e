// Benchmarks the page (index.html) in Debian's Chromium, per backend, each in a fresh browser
// context (a first visit: empty caches, no service worker yet):
// - bytes downloaded for each file on the first visit: as the server sent them (tools/serve.mjs
//   counts every response, headers included) and as Chromium's network events report them
//   (encoded body + headers, from CDP's loadingFinished; page, Web Worker and service worker
//   requests), split into before the first image and after (the service worker keeping the
//   build and weights for offline use);
// - time from navigation to the model being ready and to the first image drawn;
// - ms per image over N further generations ("new seed"): the worker's own measure and the wall
//   clock from the click to the image drawn (median, min, max);
// - the wasm sizes of both builds (raw cargo output, after wasm-bindgen, after wasm-opt -Oz;
//   from pkg/*/sizes.json written by tools/build_web.sh).
// Prints a table and a final one-line JSON. T2I_BENCH_TRACE=1 also prints every request with
// its time. Without a GPU, Chromium's WebGPU is SwiftShader (a CPU emulation): slow.
//   node tools/bench_web.mjs [--backend cpu,webgpu] [--images N]     (after tools/build_web.sh)
import { existsSync, readFileSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { ROOT, serve } from "./serve.mjs";

if (!existsSync(join(ROOT, "tests/web/node_modules/playwright-core"))) {
  console.error("playwright-core is missing: run tools/browser_test.sh once (it installs it)");
  process.exit(2);
}
const { launchChromium } = await import("../tests/web/chromium.mjs");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const backends = option("--backend", "cpu,webgpu").split(",");
const images = Number(option("--images", "10"));
if (!(images >= 1) || backends.some((b) => b !== "cpu" && b !== "webgpu")) {
  console.error("usage: node tools/bench_web.mjs [--backend cpu,webgpu] [--images N]");
  process.exit(2);
}

let served = [];
const { url: base, server } = await serve(ROOT, 0, { onServe: (e) => served.push({ ...e, at: Date.now() }) });
const browser = await launchChromium();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const kB = (n) => (n / 1e3).toFixed(1).padStart(9);
const results = {};
const machine = { cpus: cpus().length, loadAverage: +loadavg()[0].toFixed(2) };
console.log(`machine: ${machine.cpus} CPUs, load average ${machine.loadAverage} at the start (other work skews the timings)`);
console.log("columns: served = bytes the server sent (headers included; every request: page, Web Worker, service");
console.log("worker); <1st img = of those, before the first image was drawn; seen = Chromium's network events");
console.log("(encoded size; a Web Worker's own script shows its headers only, service-worker answers count once)");

for (const backend of backends) {
  served = [];
  const context = await browser.newContext();
  const seen = [];
  const pending = [];
  // Requests of the page, its Web Worker and the service worker all reach the context's events.
  context.on("requestfinished", (request) => pending.push((async () => {
    const sizes = await request.sizes();
    const response = await request.response();
    // playwright attributes a dedicated worker's requests to the page's frame.
    const from = request.serviceWorker() ? "service worker" : "page/worker";
    // A request the service worker answered reached the network (if at all) as the service
    // worker's own request, which is counted there.
    const viaSw = response?.fromServiceWorker() ?? false;
    seen.push({ path: new URL(request.url()).pathname, from: viaSw ? `${from} via sw` : from,
      bytes: viaSw ? 0 : sizes.responseBodySize + sizes.responseHeadersSize, at: Date.now(), type: request.resourceType() });
  })()));
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`[${backend}] page error: ${e}`));
  // Wall-clock-free timings, in the page's own clock (0 = navigation start).
  await page.addInitScript(() => {
    window.__bench = {};
    new MutationObserver(() => {
      const body = document.body;
      if (!body) return;
      if (body.dataset.ready && window.__bench.readyMs === undefined) window.__bench.readyMs = performance.now();
      if (body.dataset.generated && window.__bench.firstImageMs === undefined) window.__bench.firstImageMs = performance.now();
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-ready", "data-generated"] });
  });
  await page.goto(`${base}/index.html?backend=${backend}`);
  await page.waitForFunction(() => window.__bench.firstImageMs !== undefined, null, { timeout: 600_000 });
  const first = await page.evaluate(() => ({ ...window.__bench, origin: performance.timeOrigin, backend: document.body.dataset.backend }));
  const firstImageAt = first.origin + first.firstImageMs;
  // Let the service worker finish keeping the build and weights (more downloads, and CPU time
  // that would disturb the timings below).
  const offline = await page.waitForFunction(() => document.body.dataset.offlineReady === "true", null, { timeout: 120_000 })
    .then(() => true, () => false);
  const runs = await page.evaluate(async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      const before = document.body.dataset.generated;
      const drawn = new Promise((resolve) => {
        const observer = new MutationObserver(() => {
          if (document.body.dataset.generated !== before) { observer.disconnect(); resolve(); }
        });
        observer.observe(document.body, { attributes: true, attributeFilter: ["data-generated"] });
      });
      const t0 = performance.now();
      document.getElementById("new-seed").click();
      await drawn;
      out.push({ wall: performance.now() - t0, worker: Number(document.body.dataset.ms) });
    }
    return out;
  }, images);
  await Promise.all(pending);
  await context.close();
  if (process.env.T2I_BENCH_TRACE) {
    const t = served[0]?.at ?? 0;
    for (const e of served) console.log(`served +${e.at - t} ms ${e.path} ${e.bytes}`);
    for (const e of seen) console.log(`seen   +${e.at - t} ms ${e.path} ${e.from} ${e.type} ${e.bytes}`);
    console.log(`first image +${Math.round(firstImageAt - t)} ms`);
  }

  const files = {};
  for (const e of served) {
    const f = (files[e.path] ??= { requests: 0, served: 0, servedBeforeFirstImage: 0, seen: 0, from: new Set() });
    f.requests++;
    f.served += e.bytes;
    if (e.at <= firstImageAt) f.servedBeforeFirstImage += e.bytes;
  }
  for (const e of seen) {
    const f = (files[e.path] ??= { requests: 0, served: 0, servedBeforeFirstImage: 0, seen: 0, from: new Set() });
    f.seen += e.bytes;
    f.from.add(e.from);
  }
  const sum = (key) => Object.values(files).reduce((s, f) => s + f[key], 0);
  results[backend] = {
    device: first.backend,
    firstImageMs: Math.round(first.firstImageMs),
    readyMs: Math.round(first.readyMs),
    bytesBeforeFirstImage: sum("servedBeforeFirstImage"),
    bytesFirstVisit: sum("served"),
    bytesSeenByBrowser: sum("seen"),
    offlineCached: offline,
    images,
    msPerImageWorker: +median(runs.map((r) => r.worker)).toFixed(1),
    msPerImageWall: +median(runs.map((r) => r.wall)).toFixed(1),
    wallMin: +Math.min(...runs.map((r) => r.wall)).toFixed(1),
    wallMax: +Math.max(...runs.map((r) => r.wall)).toFixed(1),
    files: Object.fromEntries(Object.entries(files).map(([p, f]) => [p, { ...f, from: [...f.from].sort() }])),
  };

  const r = results[backend];
  console.log(`\n== ${backend} (${r.device === backend ? "" : `ran on ${r.device}! `}fresh context, index.html?backend=${backend}) ==`);
  console.log(`${"file".padEnd(44)} ${"requests".padStart(8)} ${"served kB".padStart(9)} ${"<1st img".padStart(9)} ${"seen kB".padStart(9)}  requested by`);
  for (const [path, f] of Object.entries(r.files).sort((a, b) => b[1].served - a[1].served)) {
    console.log(`${path.padEnd(44)} ${String(f.requests).padStart(8)} ${kB(f.served)} ${kB(f.servedBeforeFirstImage)} ${kB(f.seen)}  ${f.from.join(", ") || "-"}`);
  }
  console.log(`${"total".padEnd(44)} ${String(served.length).padStart(8)} ${kB(r.bytesFirstVisit)} ${kB(r.bytesBeforeFirstImage)} ${kB(r.bytesSeenByBrowser)}`);
  console.log(`model ready ${r.readyMs} ms, first image ${r.firstImageMs} ms after navigation; offline copy ${offline ? "kept" : "NOT kept"}`);
  console.log(`${images} more images: ${r.msPerImageWorker} ms per image (worker, median), ${r.msPerImageWall} ms wall clock click -> drawn (median; min ${r.wallMin}, max ${r.wallMax})`);
}

const wasm = {};
for (const build of ["cpu", "gpu"]) {
  const dir = join(ROOT, "pkg", build);
  if (!existsSync(join(dir, "t2i_bg.wasm"))) continue;
  const sizes = existsSync(join(dir, "sizes.json")) ? JSON.parse(readFileSync(join(dir, "sizes.json"), "utf8")) : {};
  wasm[build] = { ...sizes, optimised: statSync(join(dir, "t2i_bg.wasm")).size, js: statSync(join(dir, "t2i.js")).size };
}
console.log("\nwasm (bytes)   raw cargo    wasm-bindgen    wasm-opt -Oz    t2i.js");
for (const [build, s] of Object.entries(wasm)) {
  const cell = (n) => (n === undefined ? "n/a" : n.toLocaleString("en")).padStart(14);
  console.log(`pkg/${build.padEnd(9)} ${cell(s.raw)}  ${cell(s.wasmBindgen)}  ${cell(s.optimised)}  ${cell(s.js)}`);
}
const chromium = browser.version();
await browser.close();
server.close();
const summary = Object.fromEntries(Object.entries(results).map(([b, { files, ...rest }]) => [b, rest]));
console.log(`\n${JSON.stringify({ chromium, machine, images, backends: summary, wasm })}`);
