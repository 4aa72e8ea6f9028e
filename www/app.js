// The demo page: caption in, images out. All model work happens in www/worker.js.
// URL parameters: ?backend=cpu|webgpu forces one (flaky GPU drivers, tests); ?model=KEY picks a
// model of www/models.js; ?bundle=URL adds a "custom bundle" entry with those weights and picks it.
import { MODELS, DEFAULT_MODEL } from "./models.js";
import { WordPicker, mapsBySegment, paintAttention } from "./attention.js";
import { ModelWorker } from "./model-worker.js";

const params = new URLSearchParams(location.search);
const forced = params.get("backend");
const backend = forced === "cpu" || forced === "webgpu" ? forced : "auto";

const $ = (id) => document.getElementById(id);
const els = {
  caption: $("caption"), other: $("other"), mix: $("mix"), seed: $("seed"), newSeed: $("new-seed"),
  images: $("images"), status: $("status"), words: $("words"), wordNote: $("word-note"),
  download: $("download"), model: $("model"), modelInfo: $("model-info"), examples: $("examples"),
  error: $("error"), retry: $("retry"),
};

const models = { ...MODELS };
if (params.get("bundle")) {
  const url = new URL(params.get("bundle"), location.href).href;
  models.custom = { label: "custom bundle", bundle: url, description: `Weights from ${url} (the address's bundle parameter).` };
}
let modelKey = params.get("model") ?? (models.custom ? "custom" : DEFAULT_MODEL);
let startupNote = "";
if (!models[modelKey]) {
  startupNote = `There is no model "${modelKey}": showing ${models[DEFAULT_MODEL].label}.`;
  modelKey = DEFAULT_MODEL;
}

// The worker restarts itself after a crash and moves to the CPU when the GPU is lost; each time
// it loads the model again and says "ready", which draws the caption again. The reason stays
// shown over that redraw, until the visitor asks for another image or model.
let recoveryNote = "";
const worker = new ModelWorker(onWorker, (reason) => {
  ready = false;
  recoveryNote = reason;
  showError(reason);
  els.status.textContent = `loading ${models[modelKey].label}…`;
  delete document.body.dataset.ready;
  document.body.dataset.recovered = String(Number(document.body.dataset.recovered ?? 0) + 1);
});
let nextId = 0;
let latestId = -1;
let loadId = 0;
let ready = false;

function showError(message, retry = false) {
  els.error.textContent = message; // text, never HTML
  els.error.hidden = !message;
  els.retry.hidden = !retry;
}

function formatBytes(n) {
  return n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

// The caption as the model's tokenizer cut it ([{text, kind, readAs}] from the worker): unknown
// words struck through, words read as a known word of the same meaning followed by it
// ("beak → bill"), words beyond the model's limit greyed. Built from text nodes: never HTML.
// `maps` (segment -> map, from the last image's attention; AttnGAN) makes each word that has a
// map a button: hovering, focusing or tapping it overlays where the model looked for it.
let shownImages = [];
const picker = new WordPicker(showAttention);
function markWords(words, truncatedWords, maps = new Map()) {
  words ??= [];
  picker.reset((segment, text) => maps.has(segment) && words[segment]?.text === text);
  els.words.replaceChildren();
  for (const [segment, { text, kind }] of words.entries()) {
    if (kind === "unknown" || kind === "truncated") {
      const mark = document.createElement(kind === "unknown" ? "mark" : "span");
      mark.className = kind;
      mark.textContent = text;
      mark.title = kind === "unknown" ? "not in the model's vocabulary: left out" : "beyond the 18 words the model reads";
      els.words.append(mark);
    } else if (kind === "mapped") {
      els.words.append(maps.has(segment) ? picker.word(text, segment) : document.createTextNode(text));
      const readAs = document.createElement("span");
      readAs.className = "read-as";
      readAs.textContent = ` → ${words[segment].readAs}`;
      readAs.title = `not in the model's vocabulary: read as "${words[segment].readAs}", a word of the same meaning`;
      els.words.append(readAs);
    } else if (kind === "word" && maps.has(segment)) {
      els.words.append(picker.word(text, segment));
    } else {
      els.words.append(document.createTextNode(text));
    }
  }
  const notes = [];
  if (truncatedWords) notes.push(`${truncatedWords} word${truncatedWords === 1 ? "" : "s"} beyond the model's 18-word limit (greyed) left out.`);
  if (maps.size) notes.push("Hover, focus or tap a word to see where the model looked for it.");
  els.wordNote.textContent = notes.join(" ");
  picker.refresh();
}

// The word at `segment`'s attention map over every image that has one (none: overlays hidden).
function showAttention(segment, word) {
  const figures = els.images.querySelectorAll("figure");
  for (const [i, image] of shownImages.entries()) {
    const figure = figures[i];
    const overlay = figure?.querySelector("canvas.overlay");
    if (!overlay) continue;
    const map = segment === null ? null : mapsBySegment(image).get(segment) ?? null;
    paintAttention(overlay, map);
    figure.querySelector("canvas.image").setAttribute("aria-label",
      `generated image, ${image.label}${map ? `, with where the model looked for "${word}"` : ""}`);
  }
}

// One canvas per image (one per stage of the model), upscaled crisp by CSS; an image with word
// attention gets a second canvas over it for the maps (smooth, at least 256 px).
function drawImages(images) {
  shownImages = images;
  const figures = [...els.images.querySelectorAll("figure")];
  for (const [i, image] of images.entries()) {
    let figure = figures[i];
    if (!figure) {
      figure = document.createElement("figure");
      const frame = document.createElement("div");
      frame.className = "frame";
      const canvas = document.createElement("canvas");
      canvas.className = "image";
      frame.append(canvas);
      figure.append(frame, document.createElement("figcaption"));
      els.images.append(figure);
    }
    const canvas = figure.querySelector("canvas.image");
    canvas.width = image.width;
    canvas.height = image.height;
    canvas.style.width = `${Math.max(256, image.width)}px`;
    canvas.setAttribute("aria-label", `generated image, ${image.label}`);
    canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
    figure.querySelector("figcaption").textContent = images.length > 1 ? image.label : "";
    let overlay = figure.querySelector("canvas.overlay");
    if (image.attention?.length) {
      if (!overlay) {
        overlay = document.createElement("canvas");
        overlay.className = "overlay";
        overlay.setAttribute("aria-hidden", "true");
        overlay.hidden = true;
        canvas.after(overlay);
      }
      overlay.width = Math.max(256, image.width);
      overlay.height = Math.max(256, image.height);
    } else {
      overlay?.remove();
    }
  }
  for (const extra of figures.slice(images.length)) extra.remove();
}

// `fromVisitor` is false for the redraw after a load, which keeps a recovery note shown.
function request(fromVisitor = true) {
  if (!ready) return;
  if (fromVisitor) recoveryNote = "";
  const caption = els.caption.value;
  const id = nextId++;
  latestId = id; // an answer still on its way for an older request is dropped
  if (!caption.trim()) {
    showError("");
    markWords([], 0);
    els.status.textContent = "Type a caption to draw it.";
    document.body.dataset.hint = "empty";
    return;
  }
  delete document.body.dataset.hint;
  const other = els.other.value.trim();
  worker.generate({
    type: "generate", id, caption, seed: Number(els.seed.value) || 0,
    other: other ? other : null, mix: other ? Number(els.mix.value) / 100 : null,
  });
}

let debounce = 0;
function scheduled() {
  clearTimeout(debounce);
  debounce = setTimeout(request, 250);
}

function loadModel(key) {
  modelKey = key;
  const model = models[key];
  ready = false;
  loadId++;
  els.model.value = key;
  els.modelInfo.textContent = model.description;
  recoveryNote = "";
  showError("");
  els.status.textContent = `loading ${model.label}…`;
  delete document.body.dataset.ready;
  const url = new URL(location.href);
  url.searchParams.set("model", key);
  history.replaceState(null, "", url);
  worker.load({ type: "load", loadId, backend, bundleUrl: model.bundle });
}

function onWorker(data) {
  if (data.loadId !== undefined && data.loadId !== loadId) return; // an earlier model's load
  const label = models[modelKey].label;
  if (data.type === "progress") {
    els.status.textContent = `downloading ${label}: ${formatBytes(data.loaded)}` + (data.total ? ` of ${formatBytes(data.total)}` : "");
  } else if (data.type === "ready") {
    ready = true;
    rememberForOffline(data.backend);
    els.status.textContent = `${label} ready on ${data.backend === "webgpu" ? "WebGPU" : "the CPU"} (${Math.round(data.loadMs)} ms to load)`;
    document.body.dataset.backend = data.backend;
    document.body.dataset.ready = modelKey;
    request(false);
  } else if (data.type === "image") {
    if (data.id !== latestId) return; // an older request finished late
    showError(recoveryNote);
    drawImages(data.images);
    markWords(data.words, data.truncatedWords, mapsBySegment(data.images[data.images.length - 1]));
    els.status.textContent = `${data.backend === "webgpu" ? "WebGPU" : "CPU"} · ${Math.round(data.ms)} ms per image`;
    document.body.dataset.ms = String(data.ms);
    document.body.dataset.generated = String(Number(document.body.dataset.generated ?? 0) + 1);
  } else if (data.type === "error") {
    if (data.loadId !== undefined) {
      showError(`Could not load ${label}: ${data.message}`, true);
      els.status.textContent = "No model loaded: try again, or pick another one in the list above.";
      return;
    }
    if (data.id !== latestId) return;
    if (data.words) markWords(data.words, 0);
    showError(data.message);
  }
}

for (const [key, model] of Object.entries(models)) {
  const option = document.createElement("option");
  option.value = key;
  option.textContent = model.label;
  els.model.append(option);
}
els.model.addEventListener("change", () => loadModel(els.model.value));
els.retry.addEventListener("click", () => loadModel(modelKey));
els.caption.addEventListener("input", scheduled);
els.caption.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); clearTimeout(debounce); request(); } });
els.other.addEventListener("input", scheduled);
els.mix.addEventListener("input", scheduled);
els.seed.addEventListener("input", scheduled);
els.newSeed.addEventListener("click", () => { els.seed.value = Math.floor(Math.random() * 1e6); request(); });
els.examples.addEventListener("click", (e) => {
  if (e.target instanceof HTMLButtonElement) { els.caption.value = e.target.textContent; request(); }
});
els.download.addEventListener("click", () => {
  // The last (largest) image, upscaled crisp (nearest neighbour) to at least 256 px.
  const canvases = els.images.querySelectorAll("canvas.image");
  const source = canvases[canvases.length - 1];
  const scale = Math.max(1, Math.ceil(256 / source.width));
  const big = document.createElement("canvas");
  big.width = source.width * scale;
  big.height = source.height * scale;
  const ctx = big.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, big.width, big.height);
  const link = document.createElement("a");
  link.download = `t2i-${modelKey}-${els.seed.value}.png`;
  link.href = big.toDataURL("image/png");
  link.click();
});

// Offline: the service worker caches the page; once a model is ready it is told which build
// and bundle to keep (the first visit downloads them before the worker controls the page).
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
  const urls = [models[modelKey].bundle, new URL(`../pkg/${build}/t2i.js`, import.meta.url).href,
    new URL(`../pkg/${build}/t2i_bg.wasm`, import.meta.url).href];
  (navigator.serviceWorker.controller ?? registration.active)?.postMessage({ type: "cache", urls });
}

loadModel(modelKey);
if (startupNote) showError(startupNote);
