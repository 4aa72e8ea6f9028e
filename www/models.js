// The models the page (www/app.js) and <t2i-demo> offer: key -> {label, bundle, description}.
// Bundle URLs resolve against this file, so they are right from any page that imports it.
// A new model is one entry here plus its bundle under weights/; a bundle of a multi-stage model
// (StackGAN, AttnGAN) makes the worker return one image per stage, which both show side by side.
export const MODELS = {
  "gan-int-cls": {
    label: "GAN-INT-CLS (Reed et al. 2016)",
    bundle: new URL("../weights/gan_int_cls_birds_small.int8.safetensors", import.meta.url).href,
    description: "One generator draws 64×64 images from the caption's DAMSM sentence vector. A small model " +
      "trained for 20 epochs on 80 bird species on two CPU cores: soft blobs in the caption's rough colours, " +
      "not yet birds. 2.5 MB of int8 weights.",
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

// AttnGAN first: its 128 px stage scores the best FID of the shipped models on the held-out
// species (237.5; its 256 px stage 256.8, GAN-INT-CLS 250.2 at 64 px; 2,000 samples), it draws at
// 256 px and shows where it looked for each word. It and GAN-INT-CLS read the same 184 words; at
// 3.3 MB it is the second-smallest download (GAN-INT-CLS 2.5 MB).
export const DEFAULT_MODEL = "attngan";
