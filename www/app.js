// The demo page: caption in, image out. All model work happens in www/worker.js.
const params = new URLSearchParams(location.search);
const forced = params.get("backend"); // ?backend=cpu|webgpu forces one (flaky GPU drivers, tests)
const backend = forced === "cpu" || forced === "webgpu" ? forced : "auto";
const MODELS = {
  "gan-int-cls": { label: "GAN-INT-CLS (Reed et al. 2016)", bundle: "weights/gan_int_cls_birds.int8.safetensors" },
};

const $ = (id) => document.getElementById(id);
const els = {
  caption: $("caption"), other: $("other"), mix: $("mix"), seed: $("seed"), newSeed: $("new-seed"),
  canvas: $("image"), status: $("status"), words: $("words"), download: $("download"), model: $("model"),
  examples: $("examples"), error: $("error"),
};

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let nextId = 0;
let latestId = -1;
let ready = false;
let pending = null;

function showError(message) {
  els.error.textContent = message; // text, never HTML
  els.error.hidden = !message;
}

function formatBytes(n) {
  return n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

// The caption as text, unknown words marked (built from text nodes: a caption is never HTML).
function markWords(caption, unknown) {
  const bad = new Set(unknown.map((w) => w.toLowerCase()));
  els.words.replaceChildren();
  for (const part of caption.split(/(\s+)/)) {
    const word = part.toLowerCase().replace(/[^a-z0-9-]/g, "");
    if (word && bad.has(word)) {
      const mark = document.createElement("mark");
      mark.textContent = part;
      mark.title = "not in the model's vocabulary: left out";
      els.words.append(mark);
    } else {
      els.words.append(document.createTextNode(part));
    }
  }
}

function request() {
  if (!ready) return;
  const caption = els.caption.value;
  const id = nextId++;
  latestId = id;
  const other = els.other.value.trim();
  worker.postMessage({
    type: "generate", id, caption, seed: Number(els.seed.value) || 0,
    other: other ? other : null, mix: other ? Number(els.mix.value) / 100 : null,
  });
}

let debounce = 0;
function scheduled() {
  clearTimeout(debounce);
  debounce = setTimeout(request, 250);
}

worker.onmessage = ({ data }) => {
  if (data.type === "progress") {
    els.status.textContent = `downloading weights: ${formatBytes(data.loaded)}` + (data.total ? ` of ${formatBytes(data.total)}` : "");
  } else if (data.type === "ready") {
    ready = true;
    rememberForOffline(data.backend);
    els.status.textContent = `ready on ${data.backend === "webgpu" ? "WebGPU" : "the CPU"} (${Math.round(data.loadMs)} ms to load)`;
    document.body.dataset.backend = data.backend;
    request();
  } else if (data.type === "image") {
    if (data.id !== latestId) return; // an older request finished late
    showError("");
    const image = new ImageData(new Uint8ClampedArray(data.rgba), data.width, data.height);
    els.canvas.width = data.width;
    els.canvas.height = data.height;
    els.canvas.getContext("2d").putImageData(image, 0, 0);
    markWords(els.caption.value, data.unknownWords);
    els.status.textContent = `${data.backend === "webgpu" ? "WebGPU" : "CPU"} · ${Math.round(data.ms)} ms per image`;
    document.body.dataset.generated = String(Number(document.body.dataset.generated ?? 0) + 1);
  } else if (data.type === "error") {
    if (data.id !== undefined && data.id !== latestId) return;
    showError(data.message);
    if (!ready) els.status.textContent = "could not load the model";
  }
};
worker.onerror = (event) => {
  showError(`the generator stopped: ${event.message ?? "no WebAssembly support?"}`);
};

for (const [key, model] of Object.entries(MODELS)) {
  const option = document.createElement("option");
  option.value = key;
  option.textContent = model.label;
  els.model.append(option);
}
els.caption.addEventListener("input", scheduled);
els.caption.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); request(); } });
els.other.addEventListener("input", scheduled);
els.mix.addEventListener("input", scheduled);
els.seed.addEventListener("input", scheduled);
els.newSeed.addEventListener("click", () => { els.seed.value = Math.floor(Math.random() * 1e6); request(); });
els.examples.addEventListener("click", (e) => {
  if (e.target instanceof HTMLButtonElement) { els.caption.value = e.target.textContent; request(); }
});
els.download.addEventListener("click", () => {
  // Upscale crisp (nearest neighbour) to 256 px for the download.
  const big = document.createElement("canvas");
  big.width = big.height = 256;
  const ctx = big.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(els.canvas, 0, 0, 256, 256);
  const link = document.createElement("a");
  link.download = `t2i-${els.seed.value}.png`;
  link.href = big.toDataURL("image/png");
  link.click();
});

// Offline: the service worker caches the page; once the model is ready it is told which build
// and bundle to keep (the first visit downloads them before the worker controls the page).
const bundleUrl = new URL(`../${MODELS[els.model.value || "gan-int-cls"].bundle}`, import.meta.url).href;
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(new URL("../sw.js", import.meta.url)).catch((e) => console.warn("no offline mode:", e));
  navigator.serviceWorker.addEventListener("message", ({ data }) => {
    if (data?.type === "cached") document.body.dataset.offlineReady = "true";
  });
}
async function rememberForOffline(backend) {
  if (!("serviceWorker" in navigator)) return;
  const registration = await navigator.serviceWorker.ready;
  const build = backend === "webgpu" ? "gpu" : "cpu";
  const urls = [bundleUrl, new URL(`../pkg/${build}/t2i.js`, import.meta.url).href,
    new URL(`../pkg/${build}/t2i_bg.wasm`, import.meta.url).href];
  (navigator.serviceWorker.controller ?? registration.active)?.postMessage({ type: "cache", urls });
}

els.status.textContent = "loading the model…";
worker.postMessage({ type: "load", backend, bundleUrl });
