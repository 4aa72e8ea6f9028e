// The browser tests, in Debian's Chromium (playwright-core, flags from
// ../shared/reference/browser.md):
// - tests/web/smoke.html on the CPU build and on WebGPU (SwiftShader here): non-blank image,
//   same caption + seed -> same pixels, different captions differ, captionWords covers a caption;
//   AttnGAN's word attention: maps on the 64 and 128 grids, finite, >= 0, summing to 1 per cell;
// - the page (index.html): draws, marks exactly the words the model's tokenizer leaves out,
//   shows a caption that looks like HTML as text; bad input: an empty caption, a 5,000-character
//   caption, a corrupt bundle (then the shipped model from the picker); offline reload;
// - AttnGAN, the page's default model: three stages; hovering, focusing, clicking a caption word overlays its
//   attention map on the 128 and 256 px images; unknown words are not buttons;
// - the embed example (<t2i-demo>), and a <t2i-demo model="attngan"> whose words show their maps.
// Screenshots go to runs/browser/ (not committed).
//   node tests/web/browser_smoke.mjs            (after tools/build_web.sh)
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve } from "../../tools/serve.mjs";
import { check, exitCode, generated, waitGenerated } from "./checks.mjs";
import { launchChromium } from "./chromium.mjs";

const OUT = join(ROOT, "runs", "browser");
mkdirSync(OUT, { recursive: true });
const screenshots = [];
async function screenshot(page, name, fullPage = false) {
  const path = join(OUT, name);
  await page.screenshot({ path, fullPage });
  screenshots.push(path);
}

// A corrupt bundle, served from memory: the shipped one with bytes of its tensor data flipped.
const corrupt = Buffer.from(readFileSync(join(ROOT, "weights/gan_int_cls_birds_small.int8.safetensors")));
for (let i = corrupt.length - 4096; i < corrupt.length; i += 7) corrupt[i] ^= 0xff;
let bundleDownloads = 0;
// A page with one <t2i-demo> of AttnGAN, served from memory too.
const embedAttngan = `<!doctype html><meta charset="utf-8"><script type="module" src="/www/t2i-demo.js"></script>
<t2i-demo model="attngan" backend="cpu" caption="a small red bird with zzyzx wings" seed="7"></t2i-demo>`;
const { url: base, server } = await serve(ROOT, 0, {
  extra: { "/test/corrupt.safetensors": corrupt, "/test/embed-attngan.html": embedAttngan },
  onServe: ({ path }) => { if (path === "/weights/gan_int_cls_birds_small.int8.safetensors") bundleDownloads++; },
});

const browser = await launchChromium();

// Every shipped model on each backend (StackGAN and AttnGAN: every stage, each timed).
const SMOKE_MODELS = [
  ["gan-int-cls", "/weights/gan_int_cls_birds_small.int8.safetensors", 1],
  ["stackgan", "/weights/stackgan_birds_small.int8.safetensors", 2],
  ["attngan", "/weights/attngan_birds_small.int8.safetensors", 3],
];
for (const [model, bundle, stages] of SMOKE_MODELS) {
  for (const backend of (process.env.T2I_BACKENDS ?? "cpu,webgpu").split(",")) {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.log(`[${backend}] page error: ${e}`));
    await page.goto(`${base}/tests/web/smoke.html?backend=${backend}&bundle=${encodeURIComponent(bundle)}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 600_000 });
    const r = await page.evaluate(() => window.__result);
    await screenshot(page, `smoke-${model}-${backend}.png`);
    // AttnGAN: the 128 and 256 px images attend on the 64 and 128 grids; the others have none.
    const attentionOk = model === "attngan"
      ? r.attention?.ok && JSON.stringify(r.attention.grids) === JSON.stringify(["-", "64x64", "128x128"]) &&
        r.attention.red?.startsWith("128x128") && r.attention.maxSumError < 1e-3
      : r.attention === null;
    check(r.ok && attentionOk && r.same && r.differ && r.std > 10 && r.backend === backend && r.images.length === stages,
      `${model} on ${backend}`, JSON.stringify(r));
    await page.close();
  }
}

// The page itself (index.html) on the forced CPU path.
{
  const page = await browser.newPage();
  let dialogs = 0;
  const errors = [];
  page.on("dialog", async (d) => { dialogs++; await d.dismiss(); });
  page.on("pageerror", (e) => { errors.push(String(e)); console.log(`[page] error: ${e}`); });
  bundleDownloads = 0;
  await page.goto(`${base}/index.html?backend=cpu&model=gan-int-cls`);
  await waitGenerated(page, 0, 120_000);

  // Marks exactly the words the model's tokenizer leaves out ("src=x" is two words for it).
  let before = await generated(page);
  await page.fill("#caption", "<img src=x onerror=alert(1)> a red bird with a zzyzx abdomen");
  await page.press("#caption", "Enter");
  await waitGenerated(page, before);
  const words = await page.evaluate(() => ({
    text: document.getElementById("words").textContent,
    marked: [...document.querySelectorAll("#words mark")].map((m) => m.textContent),
    readAs: [...document.querySelectorAll("#words .read-as")].map((m) => m.textContent),
    images: document.querySelectorAll("#words img").length,
    canvases: [...document.querySelectorAll("#images canvas")].map((c) =>
      `${c.width}x${c.height} shown ${c.getBoundingClientRect().width}px ${getComputedStyle(c).imageRendering}`),
    backend: document.body.dataset.backend,
    model: document.getElementById("model").value,
  }));
  await screenshot(page, "page.png", true);
  check(dialogs === 0 && words.images === 0 && words.text === "<img src=x onerror=alert(1)> a red bird with a zzyzx abdomen → belly" &&
    JSON.stringify(words.marked) === JSON.stringify(["img", "src", "x", "onerror", "alert", "1", "zzyzx"]) &&
    JSON.stringify(words.readAs) === JSON.stringify([" → belly"]) &&
    JSON.stringify(words.canvases) === JSON.stringify(["64x64 shown 256px pixelated"]) &&
    words.backend === "cpu" && words.model === "gan-int-cls", "page: HTML caption shown as text, the tokenizer's unknown words marked, abdomen read as belly", JSON.stringify({ dialogs, ...words }));

  before = await generated(page);
  await page.click("#examples button:nth-child(2)"); // a large duck-like bird with a white belly
  await waitGenerated(page, before);
  const duck = await page.evaluate(() => ({
    text: document.getElementById("words").textContent,
    marked: document.querySelectorAll("#words mark, #words .truncated").length,
  }));
  check(duck.text === "a large duck-like bird with a white belly" && duck.marked === 0, "page: duck-like is two known words", JSON.stringify(duck));

  // Empty caption: a plain hint, the last image kept, no error; typing again draws.
  before = await generated(page);
  await page.fill("#caption", "");
  await page.waitForFunction(() => document.body.dataset.hint === "empty", null, { timeout: 10_000 });
  await page.waitForTimeout(500); // a generation would have started by now
  const empty = await page.evaluate(() => ({
    status: document.getElementById("status").textContent,
    alert: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
    words: document.getElementById("words").textContent,
    kept: document.querySelectorAll("#images canvas").length,
  }));
  const drewOnEmpty = (await generated(page)) !== before;
  await page.fill("#caption", "a small yellow bird with grey wings");
  await waitGenerated(page, before);
  check(/type a caption/i.test(empty.status) && !empty.alert && !empty.words && empty.kept === 1 && !drewOnEmpty,
    "page: empty caption shows a hint, then typing draws", JSON.stringify(empty));

  // A 5,000-character caption (the input's maxlength): draws, says how many words were cut.
  const long = "a small red bird with black wings and ".repeat(200).slice(0, 5000);
  before = await generated(page);
  await page.fill("#caption", long);
  const t0 = Date.now();
  await page.press("#caption", "Enter");
  await waitGenerated(page, before, 30_000);
  const tookMs = Date.now() - t0;
  const longResult = await page.evaluate(() => ({
    length: document.getElementById("caption").value.length,
    note: document.getElementById("word-note").textContent,
    truncated: document.querySelectorAll("#words .truncated").length,
    alert: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
  }));
  const wordCount = long.split(/[^a-z]+/).filter(Boolean).length;
  check(longResult.length === 5000 && longResult.truncated === wordCount - 18 &&
    longResult.note.startsWith(`${wordCount - 18} words beyond the model's 18-word limit`) && !longResult.alert && tookMs < 10_000,
  "page: 5,000-character caption draws", `${tookMs} ms, ${JSON.stringify(longResult)}`);
  check(errors.length === 0 && dialogs === 0, "page: no page errors", JSON.stringify(errors));

  // Offline: once the service worker has the model, a reload with the network off still draws.
  await page.waitForFunction(() => document.body.dataset.offlineReady === "true", null, { timeout: 60_000 });
  check(bundleDownloads === 1, "first visit downloads the weights once (the offline copy included)", `${bundleDownloads} downloads`);
  await page.context().setOffline(true);
  await page.reload();
  let offline = false;
  try {
    await waitGenerated(page, 0, 120_000);
    offline = true;
  } catch (e) {
    console.log(`offline reload: ${e}`);
  }
  await page.context().setOffline(false);
  check(offline, "offline reload generates");
  await page.close();
}

// A corrupt bundle from ?bundle=: the loader's error in words (role=alert); then the shipped
// model, picked in the list, loads and draws.
{
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => { errors.push(String(e)); console.log(`[corrupt] error: ${e}`); });
  await page.goto(`${base}/index.html?backend=cpu&bundle=/test/corrupt.safetensors`);
  await page.waitForSelector("#error[role=alert]:not([hidden])", { timeout: 60_000 });
  const shown = await page.evaluate(() => ({
    alert: document.getElementById("error").textContent,
    status: document.getElementById("status").textContent,
    model: document.getElementById("model").value,
    options: [...document.getElementById("model").options].map((o) => o.value),
  }));
  await screenshot(page, "corrupt-bundle.png", true);
  check(shown.model === "custom" && /^Could not load custom bundle: checksum mismatch: the tensor data is corrupted/.test(shown.alert) &&
    shown.options.includes("gan-int-cls") && shown.options.includes("stackgan") && shown.options.at(-1) === "custom", "corrupt bundle: the loader's error shown", JSON.stringify(shown));
  await page.selectOption("#model", "gan-int-cls");
  let recovered = false;
  try {
    await waitGenerated(page, 0, 120_000);
    recovered = await page.evaluate(() => document.getElementById("error").hidden && document.body.dataset.ready === "gan-int-cls" &&
      new URL(location.href).searchParams.get("model") === "gan-int-cls");
  } catch (e) {
    console.log(`after the corrupt bundle: ${e}`);
  }
  check(recovered && errors.length === 0, "corrupt bundle: then the shipped model from the picker draws", JSON.stringify(errors));
  await page.close();
}


// AttnGAN on the page (CPU): three stages side by side; the caption's known words are buttons;
// hovering one overlays its attention map on the 128 and 256 px images (smooth, see-through),
// leaving clears it, a click keeps it (aria-pressed) until a second click, focus shows it too.
{
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => { errors.push(String(e)); console.log(`[attngan page] error: ${e}`); });
  await page.goto(`${base}/index.html?backend=cpu`); // AttnGAN is the page's default model
  await waitGenerated(page, 0, 300_000);
  const before = await generated(page);
  await page.fill("#caption", "a small red bird with zzyzx wings");
  await page.press("#caption", "Enter");
  await waitGenerated(page, before, 300_000);
  const layout = await page.evaluate(() => ({
    figures: [...document.querySelectorAll("#images figure")].map((f) =>
      `${f.querySelector("figcaption").textContent}: ${f.querySelector("canvas.image").width}px` +
      (f.querySelector("canvas.overlay") ? " +overlay" : "")),
    buttons: [...document.querySelectorAll("#words .attn-word")].map((w) => w.textContent),
    focusable: [...document.querySelectorAll("#words .attn-word")].every((w) => w.tabIndex === 0 && w.getAttribute("role") === "button"),
    unknown: [...document.querySelectorAll("#words mark.unknown")].map((m) => `${m.textContent}${m.tabIndex >= 0 ? " focusable" : ""}`),
    text: document.getElementById("words").textContent,
    note: document.getElementById("word-note").textContent,
    model: document.getElementById("model").value,
  }));
  check(layout.model === "attngan" && JSON.stringify(layout.figures) === JSON.stringify(["Stage 1 64 px: 64px", "Stage 2 128 px: 128px +overlay", "Stage 3 256 px: 256px +overlay"]) &&
    JSON.stringify(layout.buttons) === JSON.stringify(["a", "small", "red", "bird", "with", "wings"]) && layout.focusable &&
    JSON.stringify(layout.unknown) === JSON.stringify(["zzyzx"]) && layout.text === "a small red bird with zzyzx wings" && /hover/i.test(layout.note),
  "attngan page (the default model): three stages, the known words are buttons", JSON.stringify(layout));

  // The overlay of the last image: shown? how many pixels it covers with some colour, its
  // displayed box against the image's.
  const overlay = () => page.evaluate(() => {
    const figure = [...document.querySelectorAll("#images figure")].at(-1);
    const o = figure.querySelector("canvas.overlay");
    const image = figure.querySelector("canvas.image").getBoundingClientRect();
    const box = o.getBoundingClientRect();
    const alpha = o.getContext("2d").getImageData(0, 0, o.width, o.height).data.filter((_, i) => i % 4 === 3);
    return { visible: !o.hidden && getComputedStyle(o).display !== "none", covered: alpha.filter((a) => a > 0).length / alpha.length,
      maxAlpha: Math.max(...alpha), sameBox: Math.abs(box.left - image.left) < 1 && Math.abs(box.top - image.top) < 1 &&
        Math.abs(box.width - image.width) < 1 && Math.abs(box.height - image.height) < 1,
      pressed: [...document.querySelectorAll("#words [aria-pressed=true]")].map((w) => w.textContent),
      middle: [...document.querySelectorAll("#images figure")][1].querySelector("canvas.overlay").hidden ? "hidden" : "shown" };
  });
  const red = page.locator("#words .attn-word", { hasText: /^red$/ });
  const hidden0 = await overlay();
  await red.hover();
  const hovered = await overlay();
  await screenshot(page, "attngan-hover-red.png", true);
  await page.mouse.move(0, 0);
  const left = await overlay();
  await red.click();
  await page.mouse.move(0, 0);
  const pinned = await overlay();
  await red.click();
  const unpinned = await overlay();
  await page.locator("#words .attn-word", { hasText: /^wings$/ }).focus();
  const focused = await overlay();
  check(!hidden0.visible && hovered.visible && hovered.sameBox && hovered.covered > 0.05 && hovered.maxAlpha > 100 && hovered.middle === "shown" &&
    !left.visible && pinned.visible && JSON.stringify(pinned.pressed) === '["red"]' && !unpinned.visible && unpinned.pressed.length === 0 &&
    focused.visible && errors.length === 0,
  "attngan page: hovering, clicking, focusing a word overlays its map", JSON.stringify({ hidden0, hovered, left, pinned, unpinned, focused, errors }));
  await page.close();
}

// The download: the last (largest) image, upscaled crisp to at least 256 px. With one 64 px
// image that is 256 px; with a second, 256 px stage (StackGAN's shape, made here by the test
// from the worker's answer) both are shown side by side and the download is the 256 px one.
const pngSize = (bytes) => [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
async function downloaded(page) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  return pngSize(readFileSync(await download.path()));
}
{
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`[stages] error: ${e}`));
  await page.goto(`${base}/index.html?backend=cpu&model=gan-int-cls`);
  await waitGenerated(page, 0, 120_000);
  const single = await downloaded(page);
  await page.close();

  const staged = await browser.newPage();
  staged.on("pageerror", (e) => console.log(`[stages] error: ${e}`));
  await staged.addInitScript(() => {
    const Real = window.Worker;
    window.Worker = class extends Real {
      set onmessage(handler) {
        super.onmessage = (event) => {
          const data = event.data;
          if (data.type !== "image") return handler(event);
          const [small] = data.images;
          const big = new Uint8Array(256 * 256 * 4);
          for (let y = 0; y < 256; y++) {
            for (let x = 0; x < 256; x++) {
              const from = ((y >> 2) * 64 + (x >> 2)) * 4;
              big.set(small.rgba.subarray(from, from + 4), (y * 256 + x) * 4);
            }
          }
          handler({ data: { ...data, images: [{ ...small, label: "Stage-I 64 px" },
            { label: "Stage-II 256 px", width: 256, height: 256, rgba: big }] } });
        };
      }
    };
  });
  await staged.goto(`${base}/index.html?backend=cpu&model=gan-int-cls`);
  await waitGenerated(staged, 0, 120_000);
  const shown = await staged.evaluate(() => [...document.querySelectorAll("#images figure")].map((f) => {
    const c = f.querySelector("canvas");
    return `${f.querySelector("figcaption").textContent}: ${c.width}x${c.height} shown ${c.getBoundingClientRect().width}px ${getComputedStyle(c).imageRendering}`;
  }));
  const twoStages = await downloaded(staged);
  await screenshot(staged, "page-two-stages.png", true);
  check(JSON.stringify(single) === "[256,256]" && JSON.stringify(twoStages) === "[256,256]" &&
    JSON.stringify(shown) === JSON.stringify(["Stage-I 64 px: 64x64 shown 256px pixelated", "Stage-II 256 px: 256x256 shown 256px pixelated"]),
  "page: images side by side, download of the largest", `download ${single} / ${twoStages}; ${JSON.stringify(shown)}`);
  await staged.close();
}

// The embed example: two <t2i-demo> elements draw, and changing an attribute redraws.
{
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`[embed] error: ${e}`));
  await page.goto(`${base}/www/embed-example.html`);
  const drawn = () => page.evaluate(() => [...document.querySelectorAll("t2i-demo")].map((e) => Number(e.dataset.generated ?? 0)));
  await page.waitForFunction(() => [...document.querySelectorAll("t2i-demo")].every((e) => Number(e.dataset.generated ?? 0) >= 1), null, { timeout: 120_000 });
  await page.evaluate(() => document.querySelector("t2i-demo").setAttribute("seed", "8"));
  await page.waitForFunction(() => Number(document.querySelector("t2i-demo").dataset.generated) >= 2, null, { timeout: 60_000 });
  const counts = await drawn();
  const images = await page.evaluate(() => [...document.querySelectorAll("t2i-demo")].map((e) => e.shadowRoot.querySelectorAll("canvas").length));
  await screenshot(page, "embed.png", true);
  check(counts[0] >= 2 && counts[1] >= 1 && images.every((n) => n === 1), "embed example", `draws per element ${JSON.stringify(counts)}, images ${JSON.stringify(images)}`);
  await page.close();
}

// <t2i-demo model="attngan">: three images; hovering a caption word shows its map.
{
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => { errors.push(String(e)); console.log(`[embed attngan] error: ${e}`); });
  await page.goto(`${base}/test/embed-attngan.html`);
  await page.waitForFunction(() => Number(document.querySelector("t2i-demo").dataset.generated ?? 0) >= 1, null, { timeout: 300_000 });
  const word = page.locator("t2i-demo .attn-word", { hasText: /^red$/ });
  await word.hover();
  const shown = await page.evaluate(() => {
    const root = document.querySelector("t2i-demo").shadowRoot;
    const overlays = [...root.querySelectorAll("canvas.overlay")];
    const last = overlays.at(-1);
    const alpha = last.getContext("2d").getImageData(0, 0, last.width, last.height).data.filter((_, i) => i % 4 === 3);
    return { images: root.querySelectorAll("canvas:not(.overlay)").length, overlays: overlays.length,
      visible: overlays.map((o) => !o.hidden), covered: alpha.filter((a) => a > 0).length / alpha.length,
      buttons: [...root.querySelectorAll(".attn-word")].map((w) => w.textContent), caption: root.querySelector(".caption").textContent };
  });
  await screenshot(page, "embed-attngan.png", true);
  check(shown.images === 3 && shown.overlays === 2 && shown.visible.every(Boolean) && shown.covered > 0.05 &&
    JSON.stringify(shown.buttons) === JSON.stringify(["a", "small", "red", "bird", "with", "wings"]) &&
    shown.caption === "a small red bird with zzyzx wings" && errors.length === 0, "embed: <t2i-demo model=attngan> shows a word's map", JSON.stringify({ ...shown, errors }));
  await page.close();
}
await browser.close();
server.close();
console.log(`screenshots:\n  ${screenshots.join("\n  ")}`);
process.exit(exitCode());
