// Runs the model off the main thread, so typing and scrolling never wait for a generation.
// Messages in:  {type: "load", backend: "auto"|"cpu"|"webgpu", bundleUrl}
//               {type: "generate", id, caption, seed, other?, mix?}
//               {type: "unknown", id, caption}
// Messages out: {type: "progress", loaded, total} | {type: "ready", backend, loadMs}
//               {type: "image", id, ...result} | {type: "unknown", id, words} | {type: "error", id?, message}
let model = null;

async function fetchWithProgress(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not download ${url} (HTTP ${response.status})`);
  const total = Number(response.headers.get("content-length")) || 0;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    postMessage({ type: "progress", loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

async function loadBuild(backend) {
  // Only the build that is used is fetched: pkg/gpu (~9.6 MB) or pkg/cpu (~1.6 MB).
  const build = backend === "webgpu" ? "gpu" : "cpu";
  const module = await import(new URL(`../pkg/${build}/t2i.js`, import.meta.url));
  await module.default();
  return module.TextToImage;
}

async function load({ backend, bundleUrl }) {
  const start = performance.now();
  const bytes = await fetchWithProgress(bundleUrl);
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
  postMessage({ type: "ready", backend: model.backend, loadMs: performance.now() - start });
}

onmessage = async ({ data }) => {
  try {
    if (data.type === "load") return await load(data);
    if (!model) throw new Error("the model is not loaded");
    if (data.type === "unknown") {
      return postMessage({ type: "unknown", id: data.id, words: model.unknownWords(data.caption) });
    }
    if (data.type === "generate") {
      const out = await model.generate(data.caption, BigInt(data.seed), data.other ?? undefined, data.mix ?? undefined);
      postMessage({ type: "image", id: data.id, ...out }, [out.rgba.buffer]);
    }
  } catch (error) {
    postMessage({ type: "error", id: data.id, message: String(error?.message ?? error) });
  }
};
