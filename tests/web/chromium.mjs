// Debian's Chromium through playwright-core with the flags of ../shared/reference/browser.md
// (WebGPU on SwiftShader, canvas drawing on SwiftShader's Vulkan), shared by
// tests/web/browser_smoke.mjs and tools/bench_web.mjs. playwright gives every launch a fresh
// profile directory.
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// The system's Chromium: $T2I_CHROMIUM, else `chromium` or `chromium-browser` on the PATH
// (Debian and Ubuntu name it differently; tools/browser_test.sh installs Debian's).
export function chromiumPath() {
  if (process.env.T2I_CHROMIUM) return process.env.T2I_CHROMIUM;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of ["chromium", "chromium-browser"]) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  throw new Error("no Chromium found: install Debian's chromium (tools/browser_test.sh does) or set T2I_CHROMIUM to its path");
}

export function launchChromium() {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
}
