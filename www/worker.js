// Runs the model off the main thread, so typing and scrolling never wait for a generation.
// Messages in:  {type: "load", loadId, backend: "auto"|"cpu"|"webgpu", bundleUrl}  (replaces the loaded model)
//               {type: "generate", id, caption, seed, other?, mix?}
// Messages out: {type: "progress", loadId, loaded, total} | {type: "ready", loadId, backend, loadMs}
//               {type: "image", id, images: [{label, width, height, rgba, ms, attention}], words: [{text, kind, readAs?}],
//                unknownWords, truncatedWords, ms, backend}
//               (attention: AttnGAN's 128 and 256 px images, [{word, segment, width, height, values}],
//                one map per word the model read, segment indexing words; [] otherwise)
//               {type: "error", id? | loadId?, message, words?}
//               {type: "device-lost", message}  (the WebGPU device is gone: www/model-worker.js
//                starts a new worker on the CPU build)
// Messages are handled one at a time, in order. A load or generate that a newer one of the same
// type has already replaced is skipped (only the newest request's answer is wanted).
let model = null;
let latestLoad = null;
let latestGenerate = null;

class Superseded extends Error {}

// The WebGPU devices the GPU build asked for, watched for loss (a driver reset, a GPU process
// crash, GPUDevice.destroy()): the page is told, and restarts the model on the CPU. A device
// given up on purpose (the model freed) is dropped from the list first.
self.gpuDevices = [];
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    self.gpuDevices.push(device);
    device.lost.then((info) => {
      if (self.gpuDevices.includes(device)) postMessage({ type: "device-lost", message: info.message || info.reason || "device lost" });
    });
    return device;
  };
}

// Larger than any bundle (the largest shipped is ~20 MB): an address that streams without end
// is refused instead of filling the memory.
const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;

async function fetchWithProgress(url, loadId) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not download ${url} (HTTP ${response.status})`);
  // A compressed response's length is not the bundle's: only an uncompressed one is checked.
  const encoding = response.headers.get("content-encoding");
  const total = !encoding || encoding === "identity" ? Number(response.headers.get("content-length")) || 0 : 0;
  if (total > MAX_BUNDLE_BYTES) throw new Error(`${url} is ${total} bytes: larger than any weights bundle`);
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    if (loadId !== latestLoad) {
      reader.cancel();
      throw new Superseded();
    }
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw new Error(`the download of ${url} was cut off after ${loaded} bytes${total ? ` of ${total}` : ""} (${error?.message ?? error})`);
    }
    const { done, value } = chunk;
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (loaded > MAX_BUNDLE_BYTES) {
      reader.cancel();
      throw new Error(`${url} is larger than any weights bundle (over ${MAX_BUNDLE_BYTES} bytes)`);
    }
    postMessage({ type: "progress", loadId, loaded, total });
  }
  if (total && loaded !== total) throw new Error(`the download of ${url} was cut off after ${loaded} of ${total} bytes`);
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

// sw.js keeps the files of the model in use for offline visits. On a first visit the bundle
// is downloaded before the service worker runs, so the worker stores its copy there itself
// (same-origin bundles only) instead of the service worker downloading it a second time.
const OFFLINE_CACHE = "t2i-v1"; // sw.js's CACHE
async function offlineCopyMissing(url) {
  if (!self.caches || new URL(url).origin !== location.origin) return false;
  try {
    return !(await (await caches.open(OFFLINE_CACHE)).match(url));
  } catch {
    return false;
  }
}
async function keepForOffline(url, bytes) {
  try {
    const headers = { "content-type": "application/octet-stream", "content-length": String(bytes.length) };
    await (await caches.open(OFFLINE_CACHE)).put(url, new Response(bytes, { headers }));
  } catch {
    // No copy: the service worker downloads it when the page asks.
  }
}

async function loadBuild(backend) {
  // Only the build that is used is fetched: pkg/gpu (~9.6 MB) or pkg/cpu (~1.6 MB).
  const build = backend === "webgpu" ? "gpu" : "cpu";
  const module = await import(new URL(`../pkg/${build}/t2i.js`, import.meta.url));
  await module.default();
  return module.TextToImage;
}

async function load({ loadId, backend, bundleUrl }) {
  if (loadId !== latestLoad) return;
  self.gpuDevices = []; // given up on purpose, not lost
  model?.free(); // the old model goes before the next one loads: never two in memory at once
  model = null;
  const start = performance.now();
  const missing = offlineCopyMissing(bundleUrl);
  const bytes = await fetchWithProgress(bundleUrl, loadId);
  let wanted = backend;
  if (wanted === "auto") {
    const adapter = self.navigator.gpu ? await self.navigator.gpu.requestAdapter().catch(() => null) : null;
    wanted = adapter ? "webgpu" : "cpu";
  }
  try {
    const TextToImage = await loadBuild(wanted);
    model = await TextToImage.load(bytes, wanted);
  } catch (error) {
    if (backend !== "auto" || wanted === "cpu") throw error;
    // WebGPU looked available but did not start: fall back to the CPU.
    const TextToImage = await loadBuild("cpu");
    model = await TextToImage.load(bytes, "cpu");
  }
  // Only a bundle that loaded, and before "ready": the page then asks the service worker for
  // what is still missing.
  if (await missing) await keepForOffline(bundleUrl, bytes);
  postMessage({ type: "ready", loadId, backend: model.backend, loadMs: performance.now() - start });
}

async function generate({ id, caption, seed, other, mix }) {
  if (id !== latestGenerate) return;
  if (!model) throw new Error("the model is not loaded");
  let words;
  try {
    words = model.captionWords(caption);
    const out = await model.generate(caption, BigInt(seed), other ?? undefined, mix ?? undefined);
    // Pixels and attention maps are handed over, not copied (each array has its own buffer).
    const buffers = new Set(out.images.flatMap((image) =>
      [image.rgba.buffer, ...(image.attention ?? []).map((map) => map.values.buffer)]));
    postMessage({ type: "image", id, words, ...out }, [...buffers]);
  } catch (error) {
    postMessage({ type: "error", id, words, message: String(error?.message ?? error) });
  }
}

async function handle(data) {
  try {
    if (data.type === "load") await load(data);
    else if (data.type === "generate") await generate(data);
  } catch (error) {
    if (error instanceof Superseded) return;
    postMessage({ type: "error", id: data.id, loadId: data.loadId, message: String(error?.message ?? error) });
  }
}

let queue = Promise.resolve();
onmessage = ({ data }) => {
  if (data.type === "load") latestLoad = data.loadId;
  if (data.type === "generate") latestGenerate = data.id;
  queue = queue.then(() => handle(data));
};
