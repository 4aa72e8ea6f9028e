// Debian's Chromium through playwright-core with the flags of ../shared/reference/browser.md
// (WebGPU on SwiftShader, canvas drawing on SwiftShader's Vulkan), shared by
// tests/web/browser_smoke.mjs and tools/bench_web.mjs. playwright gives every launch a fresh
// profile directory.
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export function launchChromium() {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
}
