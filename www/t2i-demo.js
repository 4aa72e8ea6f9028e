// <t2i-demo caption="a small red bird" seed="7" backend="auto|cpu|webgpu" bundle="..."></t2i-demo>
// One script tag embeds a generated image in any page (documentation sites included):
//   <script type="module" src="https://…/www/t2i-demo.js"></script>
// Each element runs its model in its own Web Worker; the caption is shown as text.
const DEFAULT_BUNDLE = new URL("../weights/gan_int_cls_birds.int8.safetensors", import.meta.url).href;

class T2iDemo extends HTMLElement {
  static observedAttributes = ["caption", "seed"];

  connectedCallback() {
    if (this.worker) return;
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `
      <style>
        :host { display: inline-block; font: 0.9rem system-ui, sans-serif; color: #333; }
        canvas { width: var(--t2i-size, 192px); height: var(--t2i-size, 192px); image-rendering: pixelated;
                 background: #ddd; border-radius: 4px; display: block; }
        figcaption { max-width: var(--t2i-size, 192px); margin-top: 0.3rem; }
        .status { color: #777; font-size: 0.8rem; }
      </style>
      <figure style="margin:0"><canvas width="64" height="64"></canvas>
      <figcaption><span class="caption"></span><br><span class="status">loading…</span></figcaption></figure>`;
    this.canvas = root.querySelector("canvas");
    this.captionEl = root.querySelector(".caption");
    this.statusEl = root.querySelector(".status");
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.requestId = 0;
    this.worker.onmessage = ({ data }) => this.onWorker(data);
    const bundle = this.getAttribute("bundle");
    this.worker.postMessage({
      type: "load",
      backend: this.getAttribute("backend") ?? "auto",
      bundleUrl: bundle ? new URL(bundle, document.baseURI).href : DEFAULT_BUNDLE,
    });
  }

  disconnectedCallback() {
    this.worker?.terminate();
    this.worker = null;
  }

  attributeChangedCallback() {
    if (this.ready) this.draw();
  }

  draw() {
    const caption = this.getAttribute("caption") ?? "a small bird";
    this.captionEl.textContent = caption; // text, never HTML
    this.worker.postMessage({ type: "generate", id: ++this.requestId, caption, seed: Number(this.getAttribute("seed")) || 0 });
  }

  onWorker(data) {
    if (data.type === "ready") {
      this.ready = true;
      this.draw();
    } else if (data.type === "image" && data.id === this.requestId) {
      this.canvas.width = data.width;
      this.canvas.height = data.height;
      this.canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(data.rgba), data.width, data.height), 0, 0);
      this.statusEl.textContent = `${data.backend === "webgpu" ? "WebGPU" : "CPU"} · ${Math.round(data.ms)} ms`;
      this.dataset.generated = String(Number(this.dataset.generated ?? 0) + 1);
    } else if (data.type === "error") {
      this.statusEl.textContent = data.message;
    }
  }
}

if (!customElements.get("t2i-demo")) customElements.define("t2i-demo", T2iDemo);
