// Service worker: after one visit the page works offline. Same-origin GETs go to the network
// first (so a rebuilt page or new weights are picked up when online) and fall back to the
// cache; every successful response is cached, except weight bundles: a bundle is kept only
// once a model loaded from it (a cut-off or wrong download would otherwise be served offline).
// The page sends the URLs its model used (the wasm build and the bundle) once it is ready, and
// www/worker.js stores a bundle it downloaded before this worker controlled the page.
const CACHE = "t2i-v1";
const SHELL = ["./", "index.html", "www/app.js", "www/attention.js", "www/models.js", "www/model-worker.js", "www/worker.js",
  "www/style.css"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "cache") {
    // Only what is not kept yet: the build usually came through this worker, and www/worker.js
    // stores a bundle it downloaded before this worker ran (downloading it again would double a
    // first visit's 19 MB).
    event.waitUntil((async () => {
      const cache = await caches.open(CACHE);
      for (const url of event.data.urls) if (!(await cache.match(url))) await cache.add(url);
      event.source?.postMessage({ type: "cached", urls: event.data.urls });
    })());
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== location.origin) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok && !new URL(request.url).pathname.endsWith(".safetensors")) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(request, copy));
      }
      return response;
    } catch (error) {
      const cached = await caches.match(request, { ignoreSearch: true });
      if (cached) return cached;
      throw error;
    }
  })());
});
