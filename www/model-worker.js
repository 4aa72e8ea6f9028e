// The model's Web Worker (www/worker.js), kept alive through its faults, for the page
// (www/app.js) and <t2i-demo> (www/t2i-demo.js):
// - the worker crashes (an error nothing caught, or it dies): a new worker starts and loads the
//   same model;
// - the WebGPU device is lost (a driver reset, GPUDevice.destroy()): the worker says so, and a
//   new worker starts on the CPU build and loads the same model.
// Either way the new worker answers the last load with "ready", as a first load does, so the
// page draws again without a reload. `onMessage(data)` gets the worker's other messages as they
// are; `onRecover(reason)` is told of every restart, in words the page can show. Three crashes
// within a minute stop the restarts (a model that crashes every load would loop): the last
// reason then says so.
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export class ModelWorker {
  constructor(onMessage, onRecover) {
    this.onMessage = onMessage;
    this.onRecover = onRecover;
    this.lastLoad = null;
    this.backend = null; // "cpu" once the GPU was lost: every later load stays on the CPU
    this.restarts = [];
    this.start();
  }

  start() {
    this.worker?.terminate();
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      if (worker !== this.worker) return;
      if (data.type === "device-lost") {
        this.backend = "cpu";
        this.recover(`The GPU was lost (${data.message}): drawing on the CPU from now on.`);
      } else {
        this.onMessage(data);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      if (worker !== this.worker) return;
      this.recover(`The generator stopped (${event.message || "no WebAssembly support?"}) and was restarted.`);
    };
    this.worker = worker;
  }

  recover(reason) {
    const now = Date.now();
    this.restarts = [...this.restarts.filter((t) => now - t < RESTART_WINDOW_MS), now];
    if (this.restarts.length > MAX_RESTARTS) {
      this.terminate();
      this.onRecover(`${reason.replace(/ and was restarted\.$/, ".")} It stopped ${MAX_RESTARTS} times in a minute: reload the page to try again.`);
      return;
    }
    this.start();
    if (this.lastLoad) this.post(this.lastLoad);
    this.onRecover(reason);
  }

  // {type: "load", loadId, backend, bundleUrl}: see www/worker.js.
  load(message) {
    this.lastLoad = message;
    this.post(message);
  }

  // {type: "generate", id, caption, seed, other?, mix?}: see www/worker.js.
  generate(message) {
    this.post(message);
  }

  post(message) {
    if (!this.worker) return;
    this.worker.postMessage(message.type === "load" && this.backend ? { ...message, backend: this.backend } : message);
  }

  terminate() {
    this.worker?.terminate();
    this.worker = null;
  }
}
