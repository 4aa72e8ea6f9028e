// The models the page (www/app.js) and <t2i-demo> offer: key -> {label, bundle, description}.
// Bundle URLs resolve against this file, so they are right from any page that imports it.
// A new model is one entry here plus its bundle under weights/; a bundle of a multi-stage model
// (StackGAN, AttnGAN) makes the worker return one image per stage, which both show side by side.
export const MODELS = {
  "gan-int-cls": {
    label: "GAN-INT-CLS (Reed et al. 2016)",
    bundle: new URL("../weights/gan_int_cls_birds.int8.safetensors", import.meta.url).href,
    description: "One generator draws 64×64 birds from the caption's DAMSM sentence vector. An early model " +
      "(about ten epochs on 80 bird species): bird-shaped blobs with plausible colours. 19 MB of int8 weights.",
  },
  "stackgan": {
    label: "StackGAN (Zhang et al. 2017)",
    bundle: new URL("../weights/stackgan_birds_small.int8.safetensors", import.meta.url).href,
    description: "Stage-I draws a rough 64×64 bird from the caption; Stage-II redraws it at 256×256. " +
      "Both shown side by side. Quarter-width networks trained briefly on two CPU cores.",
  },
  "attngan": {
    label: "AttnGAN (Xu et al. 2018)",
    bundle: new URL("../weights/attngan_birds_small.int8.safetensors", import.meta.url).href,
    description: "Three stages, 64, 128 and 256 px, shown side by side; the second and third look back at " +
      "the caption's words while they redraw. Hover or tap a word to see where the model looked for it. " +
      "Small widths trained for 3.4 epochs on two CPU cores: coloured textures that follow the caption's " +
      "colour words, not yet birds you would recognize. 3.3 MB of int8 weights.",
  },
};

// AttnGAN first: of the shipped models it scores the best FID on the held-out species (256.8 at
// 256 px against GAN-INT-CLS's 264.8, 2,000 samples), reads the most of a visitor's words (184 of
// its own, no word map needed for most captions), and is the smallest download (3.3 MB).
export const DEFAULT_MODEL = "attngan";
