// <t2i-demo caption="a small red bird" seed="7" backend="auto|cpu|webgpu" model="gan-int-cls" bundle="..."></t2i-demo>
// One script tag embeds a generated image in any page (documentation sites included):
//   <script type="module" src="https://…/www/t2i-demo.js"></script>
// `model` is a key of www/models.js (default attngan); `bundle`, a weight bundle's URL, wins
// over it. A multi-stage model's images (one per stage) are shown side by side. Each element
// runs its model in its own Web Worker, restarted after a crash and moved to the CPU when the
// GPU is lost (www/model-worker.js); the caption is shown as text. With AttnGAN, hovering,
// focusing or tapping a caption word overlays where the model looked for it (www/attention.js).
import { MODELS, DEFAULT_MODEL } from "./models.js";
import { WordPicker, mapsBySegment, paintAttention } from "./attention.js";
import { ModelWorker } from "./model-worker.js";

class T2iDemo extends HTMLElement {
  static observedAttributes = ["caption", "seed", "model", "bundle"];

  connectedCallback() {
    if (this.worker) return;
    const root = this.shadowRoot ?? this.attachShadow({ mode: "open" });
    root.innerHTML = `
      <style>
        :host { display: inline-block; font: 0.9rem system-ui, sans-serif; color: #333; }
        .images { display: flex; gap: 0.5rem; align-items: flex-end; }
        canvas { width: var(--t2i-size, 192px); height: var(--t2i-size, 192px); image-rendering: pixelated;
                 background: #ddd; border-radius: 4px; display: block; }
        .label { color: #777; font-size: 0.75rem; text-align: center; }
        .frame { position: relative; }
        canvas.overlay { position: absolute; inset: 0; background: transparent; image-rendering: auto; pointer-events: none; }
        canvas.overlay[hidden] { display: none; }
        .attn-word { cursor: pointer; border-bottom: 1px dotted #889; }
        .attn-word.shown { background: #ffe7a3; }
        .attn-word[aria-pressed="true"] { background: #ffd45e; }
        figcaption { max-width: var(--t2i-size, 192px); margin-top: 0.3rem; }
        .status { color: #777; font-size: 0.8rem; }
      </style>
      <figure style="margin:0"><div class="images"><div><canvas width="64" height="64"></canvas></div></div>
      <figcaption><span class="caption"></span><br><span class="status">loading…</span></figcaption></figure>`;
    this.imagesEl = root.querySelector(".images");
    this.captionEl = root.querySelector(".caption");
    this.statusEl = root.querySelector(".status");
    this.requestId = 0;
    this.loadId = 0;
    this.worker = new ModelWorker((data) => this.onWorker(data), (reason) => {
      this.ready = false;
      this.statusEl.textContent = reason;
      this.dataset.recovered = String(Number(this.dataset.recovered ?? 0) + 1);
    });
    this.overlays = []; // [overlay canvas, image] of the images with attention
    this.picker = new WordPicker((segment) => {
      for (const [overlay, image] of this.overlays) {
        paintAttention(overlay, segment === null ? null : mapsBySegment(image).get(segment) ?? null);
      }
    });
    this.load();
  }

  disconnectedCallback() {
    this.worker?.terminate();
    this.worker = null;
    this.ready = false;
  }

  attributeChangedCallback(name, before, after) {
    if (!this.worker || before === after) return;
    if (name === "model" || name === "bundle") this.load();
    else if (this.ready) this.draw();
  }

  bundleUrl() {
    const bundle = this.getAttribute("bundle");
    if (bundle) return new URL(bundle, document.baseURI).href;
    const model = MODELS[this.getAttribute("model") ?? DEFAULT_MODEL];
    if (!model) throw new Error(`no model "${this.getAttribute("model")}": use one of ${Object.keys(MODELS).join(", ")}`);
    return model.bundle;
  }

  load() {
    this.ready = false;
    this.loadId++;
    try {
      this.worker.load({ type: "load", loadId: this.loadId, backend: this.getAttribute("backend") ?? "auto", bundleUrl: this.bundleUrl() });
      this.statusEl.textContent = "loading…";
    } catch (error) {
      this.statusEl.textContent = error.message;
    }
  }

  draw() {
    const caption = this.getAttribute("caption") ?? "a small bird";
    this.captionEl.textContent = caption; // text, never HTML
    this.worker.generate({ type: "generate", id: ++this.requestId, caption, seed: Number(this.getAttribute("seed")) || 0 });
  }

  onWorker(data) {
    if (data.loadId !== undefined && data.loadId !== this.loadId) return;
    if (data.type === "ready") {
      this.ready = true;
      this.draw();
    } else if (data.type === "image" && data.id === this.requestId) {
      this.overlays = [];
      this.imagesEl.replaceChildren(...data.images.map((image) => {
        const cell = document.createElement("div");
        const frame = document.createElement("div");
        frame.className = "frame";
        const canvas = document.createElement("canvas");
        canvas.width = image.width;
        canvas.height = image.height;
        canvas.title = image.label;
        canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height), 0, 0);
        frame.append(canvas);
        if (image.attention?.length) {
          const overlay = document.createElement("canvas");
          overlay.className = "overlay";
          overlay.width = overlay.height = 256;
          overlay.hidden = true;
          overlay.setAttribute("aria-hidden", "true");
          frame.append(overlay);
          this.overlays.push([overlay, image]);
        }
        cell.append(frame);
        if (data.images.length > 1) {
          const label = document.createElement("div");
          label.className = "label";
          label.textContent = image.label;
          cell.append(label);
        }
        return cell;
      }));
      // The caption's words that have a map become buttons (text nodes only, never HTML).
      const maps = mapsBySegment(data.images[data.images.length - 1]);
      const words = data.words ?? [];
      this.picker.reset((segment, text) => maps.has(segment) && words[segment]?.text === text);
      if (maps.size) {
        this.captionEl.replaceChildren(...words.map(({ text, kind }, segment) =>
          (kind === "word" || kind === "mapped") && maps.has(segment) ? this.picker.word(text, segment) : document.createTextNode(text)));
      }
      this.picker.refresh();
      this.statusEl.textContent = `${data.backend === "webgpu" ? "WebGPU" : "CPU"} · ${Math.round(data.ms)} ms`;
      this.dataset.images = String(data.images.length);
      this.dataset.generated = String(Number(this.dataset.generated ?? 0) + 1);
    } else if (data.type === "error" && (data.loadId !== undefined || data.id === this.requestId)) {
      this.statusEl.textContent = data.message;
    }
  }
}

if (!customElements.get("t2i-demo")) customElements.define("t2i-demo", T2iDemo);
