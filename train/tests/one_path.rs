//! Evaluation draws what `t2i generate` (and the page) draws: for every family, the images an
//! evaluation scores for a caption and seed are `t2i generate`'s image of that caption and seed,
//! with the shipped bundles.

use std::path::PathBuf;

use burn::prelude::*;
use image::RgbImage;
use t2i::bundle::{GanBundle, load_gan};
use t2i_train::eval::evaluation_images;
use t2i_train::generate::{GenerateOptions, generate};

const CAPTIONS: [&str; 3] = [
    "a small red bird with black wings and a short beak",
    "this bird is blue with a white belly and long tail feathers",
    "a yellow bird with a black crown",
];

/// The shipped bundle of each family.
fn bundles() -> Vec<PathBuf> {
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weights");
    [
        "gan_int_cls_birds_small.int8.safetensors",
        "stackgan_birds_small.int8.safetensors",
        "attngan_birds_small.int8.safetensors",
    ]
    .into_iter()
    .map(|name| weights.join(name))
    .collect()
}

/// The bundle at `path`, the test captions' tokens in its vocabulary, and its last stage's
/// index.
fn load(path: &PathBuf, device: &Device) -> (GanBundle, Vec<Vec<u32>>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bundle = load_gan(&bytes, device).unwrap();
    let tokens = CAPTIONS
        .iter()
        .map(|caption| bundle.tokens(caption).unwrap().0)
        .collect();
    let last = bundle.stage_count() - 1;
    (bundle, tokens, last)
}

/// `t2i generate`'s picture of one caption and seed: the last stage's image, unscaled at
/// `scale` 1 for 64 px and larger images.
fn generated(path: &std::path::Path, caption: &str, seed: u64, device: &Device) -> RgbImage {
    let out = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    let options = GenerateOptions {
        seed,
        per_caption: 1,
        scale: 1,
        attention: None,
    };
    generate(path, &[caption.to_string()], &options, out.path(), device).unwrap();
    image::open(out.path()).unwrap().to_rgb8()
}

#[test]
fn evaluation_images_are_t2i_generates_for_every_family() {
    let device = Device::flex();
    for path in bundles() {
        let (bundle, tokens, last) = load(&path, &device);
        for (index, seed) in [(0usize, 5u64), (2, 9)] {
            let scored = evaluation_images(&bundle, &tokens, &[index], seed, last, &device)
                .unwrap()
                .remove(0);
            let drawn = generated(&path, CAPTIONS[index], seed, &device);
            assert_eq!(
                scored.dimensions(),
                drawn.dimensions(),
                "{}",
                bundle.family()
            );
            assert!(
                scored == drawn,
                "{}: evaluation's image of caption {index} at seed {seed} is not t2i generate's",
                bundle.family()
            );
        }
    }
}

#[test]
fn a_batch_draws_each_row_with_its_own_seed() {
    // An evaluation batch draws row k with seed + k: its row 1 is caption 1 at seed + 1, to
    // the float rounding that another batch size gives the matrix products.
    let device = Device::flex();
    for path in bundles() {
        let (bundle, tokens, last) = load(&path, &device);
        let batch = evaluation_images(&bundle, &tokens, &[0, 1, 2], 40, last, &device).unwrap();
        let alone = evaluation_images(&bundle, &tokens, &[1], 41, last, &device)
            .unwrap()
            .remove(0);
        let other_seed = evaluation_images(&bundle, &tokens, &[1], 40, last, &device)
            .unwrap()
            .remove(0);
        let largest = |a: &RgbImage, b: &RgbImage| {
            a.as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap()
        };
        assert!(
            largest(&batch[1], &alone) <= 1,
            "{}: row 1 of the batch differs from caption 1 alone by {} levels",
            bundle.family(),
            largest(&batch[1], &alone)
        );
        assert!(
            largest(&batch[1], &other_seed) > 1,
            "{}: the seed does not change the image",
            bundle.family()
        );
    }
}

#[test]
fn the_shipped_bundles_draw_the_pixels_they_drew_before() {
    // tests/fixtures/shipped_pixels/README.md says where the images come from. Another CPU
    // kernel path (AVX2 against AVX-512) sums in another order: a level here and there.
    let device = Device::flex();
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/shipped_pixels");
    for path in bundles() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let stem = name.trim_end_matches(".int8.safetensors");
        let expected = image::open(fixtures.join(format!("{stem}.png")))
            .unwrap()
            .to_rgb8();
        let drawn = generated(&path, CAPTIONS[0], 3, &device);
        assert_eq!(drawn.dimensions(), expected.dimensions(), "{stem}");
        let differences: Vec<u8> = drawn
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let largest = *differences.iter().max().unwrap();
        let mean =
            differences.iter().map(|&d| f64::from(d)).sum::<f64>() / differences.len() as f64;
        assert!(
            largest <= 4 && mean <= 0.2,
            "{stem}: the image differs from the stored one by up to {largest} levels, {mean:.3} on average"
        );
    }
}
