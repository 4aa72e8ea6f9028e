// Runs tests/web/smoke.html in Debian's Chromium (playwright-core, flags from
// ../shared/reference/browser.md) on the CPU build and on WebGPU (SwiftShader here), and
// checks: non-blank image, same caption + seed -> same pixels, different captions differ.
//   node tests/web/browser_smoke.mjs            (after tools/build_web.sh)
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../tools/serve.mjs";

const { url: base, server } = await serve();

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // playwright gives every launch a fresh profile directory.
});
let failed = false;
for (const backend of (process.env.T2I_BACKENDS ?? "cpu,webgpu").split(",")) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`[${backend}] page error: ${e}`));
  await page.goto(`${base}/tests/web/smoke.html?backend=${backend}`);
  await page.waitForFunction(() => window.__result, null, { timeout: 600_000 });
  const r = await page.evaluate(() => window.__result);
  await page.screenshot({ path: join(tmpdir(), `t2i-smoke-${backend}.png`) });
  const ok = r.ok && r.same && r.differ && r.std > 10 && r.backend === backend;
  failed ||= !ok;
  console.log(`${ok ? "ok  " : "FAIL"} ${backend}: ${JSON.stringify(r)}`);
  await page.close();
}
// The page itself (index.html) on the forced CPU path: draws, marks unknown words, shows a
// caption that looks like HTML as text and runs nothing.
{
  const page = await browser.newPage();
  let dialogs = 0;
  page.on("dialog", async (d) => { dialogs++; await d.dismiss(); });
  page.on("pageerror", (e) => console.log(`[page] error: ${e}`));
  await page.goto(`${base}/index.html?backend=cpu`);
  await page.waitForFunction(() => Number(document.body.dataset.generated ?? 0) >= 1, null, { timeout: 120_000 });
  const count = () => page.evaluate(() => Number(document.body.dataset.generated));
  const before = await count();
  await page.fill("#caption", "<img src=x onerror=alert(1)> a red bird with a zzyzx bill");
  await page.press("#caption", "Enter");
  await page.waitForFunction((n) => Number(document.body.dataset.generated) > n, before, { timeout: 60_000 });
  const words = await page.evaluate(() => ({
    text: document.getElementById("words").textContent,
    marked: [...document.querySelectorAll("#words mark")].map((m) => m.textContent),
    images: document.querySelectorAll("#words img").length,
    backend: document.body.dataset.backend,
  }));
  await page.screenshot({ path: join(tmpdir(), "t2i-page.png"), fullPage: true });
  const ok = dialogs === 0 && words.images === 0 && words.text.includes("<img src=x") &&
    words.marked.includes("zzyzx") && words.backend === "cpu";
  failed ||= !ok;
  console.log(`${ok ? "ok  " : "FAIL"} page: ${JSON.stringify({ dialogs, ...words })} (screenshot ${join(tmpdir(), "t2i-page.png")})`);

  // Offline: once the service worker has the model, a reload with the network off still draws.
  await page.waitForFunction(() => document.body.dataset.offlineReady === "true", null, { timeout: 60_000 });
  await page.context().setOffline(true);
  await page.reload();
  let offline = false;
  try {
    await page.waitForFunction(() => Number(document.body.dataset.generated ?? 0) >= 1, null, { timeout: 120_000 });
    offline = true;
  } catch (e) {
    console.log(`offline reload: ${e}`);
  }
  await page.context().setOffline(false);
  failed ||= !offline;
  console.log(`${offline ? "ok  " : "FAIL"} offline reload generates`);
  await page.close();
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
  await page.screenshot({ path: join(tmpdir(), "t2i-embed.png"), fullPage: true });
  const ok = counts[0] >= 2 && counts[1] >= 1;
  failed ||= !ok;
  console.log(`${ok ? "ok  " : "FAIL"} embed example: draws per element ${JSON.stringify(counts)}`);
  await page.close();
}
await browser.close();
server.close();
process.exit(failed ? 1 : 0);
