// Loads the CPU build of the browser library (pkg/cpu) in Node and draws the shipped bundles
// (GAN-INT-CLS, StackGAN, AttnGAN with its word attention): the same entry points the page
// uses, without a browser. Run after tools/build_web.sh:
//   node tests/web/wasm_cpu_smoke.mjs [bundle]
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import assert from "node:assert/strict";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { initSync, TextToImage } = await import(join(root, "pkg/cpu/t2i.js"));
initSync({ module: readFileSync(join(root, "pkg/cpu/t2i_bg.wasm")) });

const bundlePath = process.argv[2] ?? join(root, "weights/gan_int_cls_birds_small.int8.safetensors");
let t = performance.now();
const model = await TextToImage.load(readFileSync(bundlePath), "cpu");
console.log(`loaded ${bundlePath} on ${model.backend} in ${(performance.now() - t).toFixed(0)} ms`);

const caption = "a small red bird with black wings and a blorptastic bill";
const first = await model.generate(caption, 7n);
const again = await model.generate(caption, 7n);
const other = await model.generate("a large white duck-like bird", 7n);
// One image per stage of the model; GAN-INT-CLS has one.
assert.deepEqual(first.images.map((i) => [i.label, i.width, i.height]), [["64×64", 64, 64]]);
const [image] = first.images;
assert.equal(image.width * image.height * 4, image.rgba.length);
assert.ok(image.rgba instanceof Uint8Array);
assert.deepEqual(first.unknownWords, ["blorptastic"]);
assert.equal(first.truncatedWords, 0);
assert.equal(first.backend, "cpu");
assert.ok(first.ms > 0);
assert.deepEqual(Buffer.from(image.rgba), Buffer.from(again.images[0].rgba), "same caption and seed, same pixels");
assert.notDeepEqual(Buffer.from(image.rgba), Buffer.from(other.images[0].rgba), "different captions differ");
const mixed = await model.generate(caption, 7n, "a large white duck-like bird", 0.5);
assert.equal(mixed.images[0].rgba.length, image.rgba.length);
await assert.rejects(model.generate("", 1n), /empty/);
await assert.rejects(TextToImage.load(Buffer.from("not a bundle"), "cpu"), /not a readable bundle/);
assert.deepEqual(model.unknownWords("a red zzyzx bird"), ["zzyzx"]);

// The caption as the model's tokenizer cuts it: every character in one segment, in order.
const tricky = "<img src=x>A duck-like Bird, zzyzx!";
const words = model.captionWords(tricky);
assert.equal(words.map((w) => w.text).join(""), tricky);
assert.deepEqual(words.filter((w) => w.kind !== "separator").map((w) => w.text), ["img", "src", "x", "A", "duck", "like", "Bird", "zzyzx"]);
assert.equal(words.find((w) => w.text === "zzyzx").kind, "unknown");
assert.equal(words.find((w) => w.text === "Bird").kind, "word");
const long = "a red bird ".repeat(10);
const longOut = await model.generate(long, 1n);
assert.equal(longOut.truncatedWords, 30 - 18);
assert.equal(model.captionWords(long).filter((w) => w.kind === "truncated").length, 12);

const runs = 10;
t = performance.now();
for (let i = 0; i < runs; i++) await model.generate(caption, BigInt(i));
console.log(`${((performance.now() - t) / runs).toFixed(1)} ms per image (${first.images.map((i) => i.label).join(", ")}) (cpu, Node ${process.version}); first call ${first.ms.toFixed(1)} ms`);

// StackGAN: one image per stage (Stage-I 64 px, Stage-II 256 px), each with its own time.
const stackPath = join(root, "weights/stackgan_birds_small.int8.safetensors");
const stack = await TextToImage.load(readFileSync(stackPath), "cpu");
assert.equal(stack.family, "StackGAN");
// Unknown words of the same meaning as a known one are read as it, as the native tokenizer
// reads them (tests/word_map.rs checks the same table): "beak" as "bill" in the StackGAN's
// vocabulary, the smaller one (GAN-INT-CLS and AttnGAN know "beak").
const checks = readFileSync(join(root, "tests/fixtures/word_map/checks.tsv"), "utf8")
  .split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split("\t"));
for (const [word, expected] of checks) {
  const segment = stack.captionWords(`a ${word} bird`).find((w) => w.text === word);
  const got = segment.kind === "word" ? word : segment.kind === "mapped" ? segment.readAs : "-";
  assert.equal(got, expected, `${word}: ${JSON.stringify(segment)}`);
}
const mapped = await stack.generate("a tiny red bird with a black beak", 7n);
assert.deepEqual(mapped.mappedWords, [{ word: "tiny", readAs: "small" }, { word: "beak", readAs: "bill" }]);
assert.deepEqual(mapped.unknownWords, []);
const plain = await stack.generate("a small red bird with a black bill", 7n);
assert.deepEqual(mapped.images[0].rgba, plain.images[0].rgba, "a mapped caption draws what its known words draw");

const s1 = await stack.generate(caption, 7n);
const s2 = await stack.generate(caption, 7n);
assert.deepEqual(s1.images.map((i) => [i.label, i.width, i.height]), [["Stage-I 64 px", 64, 64], ["Stage-II 256 px", 256, 256]]);
s1.images.forEach((image, k) => {
  assert.equal(image.rgba.length, image.width * image.height * 4);
  assert.deepEqual(Buffer.from(image.rgba), Buffer.from(s2.images[k].rgba), `${image.label}: same caption and seed, same pixels`);
});
const stageMs = [0, 0];
for (let i = 0; i < 5; i++) {
  (await stack.generate(caption, BigInt(i))).images.forEach((image, k) => { stageMs[k] += image.ms / 5; });
}
console.log(`StackGAN: Stage-I ${stageMs[0].toFixed(1)} ms, Stage-II ${stageMs[1].toFixed(1)} ms per image (cpu, Node ${process.version})`);

// AttnGAN: three stages (64, 128, 256 px); the 128 and 256 px images carry one attention map
// per word the model read, on the previous stage's grid (64 and 128), softmax over the words.
const attnPath = join(root, "weights/attngan_birds_small.int8.safetensors");
const attn = await TextToImage.load(readFileSync(attnPath), "cpu");
assert.equal(attn.family, "AttnGAN");
const a1 = await attn.generate(caption, 7n);
const a2 = await attn.generate(caption, 7n);
assert.deepEqual(a1.images.map((i) => [i.label, i.width, i.height]),
  [["Stage 1 64 px", 64, 64], ["Stage 2 128 px", 128, 128], ["Stage 3 256 px", 256, 256]]);
assert.deepEqual(a1.unknownWords, ["blorptastic"]);
const segments = attn.captionWords(caption);
const read = segments.flatMap((s, i) => (s.kind === "word" || s.kind === "mapped" ? [i] : []));
a1.images.forEach((image, k) => {
  assert.equal(image.rgba.length, image.width * image.height * 4);
  assert.deepEqual(Buffer.from(image.rgba), Buffer.from(a2.images[k].rgba), `${image.label}: same caption and seed, same pixels`);
  if (k === 0) {
    assert.deepEqual(image.attention, [], "the 64 px stage has no word attention");
    return;
  }
  const grid = a1.images[k - 1].width; // the previous stage's grid
  // Every word the model reads has a map, in caption order; the unknown word has none.
  assert.deepEqual(image.attention.map((m) => m.segment), read, `${image.label}: one map per word read`);
  assert.ok(!image.attention.some((m) => m.word === "blorptastic"));
  const sums = new Float64Array(grid * grid);
  for (const map of image.attention) {
    assert.equal(map.word, segments[map.segment].text);
    assert.deepEqual([map.width, map.height], [grid, grid], `${image.label}: maps on the ${grid} grid`);
    assert.ok(map.values instanceof Float32Array && map.values.length === grid * grid);
    assert.ok(map.values.every((v) => Number.isFinite(v) && v >= 0), `${image.label} "${map.word}": finite, >= 0`);
    map.values.forEach((v, i) => { sums[i] += v; });
  }
  const worst = sums.reduce((m, s) => Math.max(m, Math.abs(s - 1)), 0);
  assert.ok(worst < 1e-3, `${image.label}: the words' weights sum to 1 at every cell (worst |sum - 1| = ${worst})`);
  assert.deepEqual(image.attention.map((m) => [...m.values.slice(0, 8)]), a2.images[k].attention.map((m) => [...m.values.slice(0, 8)]),
    `${image.label}: same caption and seed, same maps`);
});
const red = a1.images[2].attention.find((m) => m.word === "red");
assert.ok(red && segments[red.segment].text === "red", "the 256 px image has a map for \"red\"");
let redMax = 0;
for (const v of red.values) redMax = Math.max(redMax, v);
const attnMs = [0, 0, 0];
let attnTotal = 0;
for (let i = 0; i < 5; i++) {
  const out = await attn.generate(caption, BigInt(i));
  out.images.forEach((image, k) => { attnMs[k] += image.ms / 5; });
  attnTotal += out.ms / 5;
}
console.log(`AttnGAN: "red" on the 256 px image's 128x128 grid, max weight ${redMax.toFixed(3)}, ${a1.images[2].attention.length} words; ` +
  `Stage 1 ${attnMs[0].toFixed(1)} ms, Stage 2 ${attnMs[1].toFixed(1)} ms, Stage 3 ${attnMs[2].toFixed(1)} ms, ` +
  `${attnTotal.toFixed(1)} ms per image (all three stages) (cpu, Node ${process.version})`);
console.log("wasm CPU smoke test passed");
