// Loads the CPU build of the browser library (pkg/cpu) in Node and draws the shipped bundle:
// the same entry points the page uses, without a browser. Run after tools/build_web.sh:
//   node tests/web/wasm_cpu_smoke.mjs [bundle]
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import assert from "node:assert/strict";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { initSync, TextToImage } = await import(join(root, "pkg/cpu/t2i.js"));
initSync({ module: readFileSync(join(root, "pkg/cpu/t2i_bg.wasm")) });

const bundlePath = process.argv[2] ?? join(root, "weights/gan_int_cls_birds.int8.safetensors");
let t = performance.now();
const model = await TextToImage.load(readFileSync(bundlePath), "cpu");
console.log(`loaded ${bundlePath} on ${model.backend} in ${(performance.now() - t).toFixed(0)} ms`);

const caption = "a small red bird with black wings and a blorptastic bill";
const first = await model.generate(caption, 7n);
const again = await model.generate(caption, 7n);
const other = await model.generate("a large white duck-like bird", 7n);
assert.equal(first.width * first.height * 4, first.rgba.length);
assert.deepEqual(first.unknownWords, ["blorptastic"]);
assert.deepEqual(Buffer.from(first.rgba), Buffer.from(again.rgba), "same caption and seed, same pixels");
assert.notDeepEqual(Buffer.from(first.rgba), Buffer.from(other.rgba), "different captions differ");
const mixed = await model.generate(caption, 7n, "a large white duck-like bird", 0.5);
assert.equal(mixed.rgba.length, first.rgba.length);
await assert.rejects(model.generate("", 1n), /empty/);
await assert.rejects(TextToImage.load(Buffer.from("not a bundle"), "cpu"), /not a readable bundle/);
assert.deepEqual(model.unknownWords("a red zzyzx bird"), ["zzyzx"]);

const runs = 10;
t = performance.now();
for (let i = 0; i < runs; i++) await model.generate(caption, BigInt(i));
console.log(`${((performance.now() - t) / runs).toFixed(1)} ms per 64x64 image (cpu, Node ${process.version}); first call ${first.ms.toFixed(1)} ms`);
console.log("wasm CPU smoke test passed");
