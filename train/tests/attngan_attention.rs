//! AttnGAN learns where to look: after a short training on coloured shapes (64 and 128 px
//! stages, no DAMSM term), the 128 px stage's attention to the caption's colour word is
//! stronger on the pixels the generated image paints in a saturated colour (the shape) than on
//! its background (1 would be no preference).
//!
//! Two settings of the test make a short run enough. The frozen text encoder is the fixture's
//! random one with its word embeddings drawn at N(0, 1) instead of U(-0.1, 0.1): at the
//! latter a random LSTM gives nearly the same feature for every word, so there is nothing to
//! tell the colour word from the others by (a trained DAMSM's word features differ). And CA's
//! KL term is weighted 20, which squeezes the caption out of the first stage's condition: the
//! colour then reaches the image only through the word attention of the 128 px stage.

use std::sync::atomic::AtomicBool;

use burn::nn::{EmbeddingConfig, Initializer};
use burn::prelude::*;
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, padding_mask};
use t2i::damsm::TextEncoder;
use t2i_train::attngan_train::{AttnGanFrozen, AttnGanTrainOptions, train_attngan};
use t2i_train::checkpoint::Checkpoints;
use t2i_train::data::shapes::COLOURS;

mod common;
use common::{Shapes, TEXT_DIM, shapes};

/// Training steps (batch 16): five minutes on two idle CPU cores (301 s in CI).
const STEPS: u64 = 500;
/// Adam's rate for G and D: five times the paper's, so that 500 steps suffice (as in the
/// StackGAN learning test).
const LR: f64 = 1e-3;

fn options() -> AttnGanTrainOptions {
    let model = AttnGanConfig::new()
        .with_text_dim(TEXT_DIM)
        .with_condition_dim(16)
        .with_noise_dim(16)
        .with_ngf(8)
        .with_ndf(8)
        .with_residual_blocks(1)
        .with_branch_num(2);
    AttnGanTrainOptions {
        batch_size: 16,
        max_epoch: 1000,
        lr_g: LR,
        lr_d: LR,
        damsm_lambda: 0.0,
        kl_weight: 20.0,
        seed: 3,
        max_steps: Some(STEPS),
        ..AttnGanTrainOptions::birds(model)
    }
}

/// For each of the first `probes` captions whose image has both a shape and background, the
/// mean attention of its colour word on the generated 128 px image's saturated pixels over its
/// mean on the rest (1 is no preference).
fn colour_word_contrast(
    generator: &AttnGanGenerator,
    encoder: &TextEncoder,
    fx: &Shapes,
    probes: usize,
) -> Vec<f32> {
    let device = Device::flex();
    let colour_ids: Vec<u32> = COLOURS
        .iter()
        .map(|(name, _)| fx.vocabulary.encode(name).tokens[0])
        .collect();
    let tokens: Vec<&[u32]> = fx.tokens[..probes].iter().map(Vec::as_slice).collect();
    let text = encoder.encode_ids(&tokens, &device);
    let t_len = text.words.dims()[2];
    let padding = padding_mask(&text.lengths, t_len, &device);
    device.seed(77);
    let config = &options().model;
    let noise = Tensor::random(
        [probes, config.noise_dim],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let eps = Tensor::zeros([probes, config.condition_dim], &device);
    let out = generator.forward(text.sentence, text.words, padding, noise, eps);
    let image: Vec<f32> = out.images[1]
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap(); // [B, 3, 128, 128]
    let attention: Vec<f32> = out.attention[0]
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap(); // [B, T, 64, 64]
    let (side, grid) = (128usize, 64usize);
    let mut contrasts = Vec::new();
    for b in 0..probes {
        let Some(t) = tokens[b].iter().position(|id| colour_ids.contains(id)) else {
            continue;
        };
        // A grid cell is "shape" when its 2x2 pixels are saturated on average (the shapes are
        // saturated, the backgrounds grey or white).
        let (mut on, mut n_on, mut off, mut n_off) = (0.0f32, 0usize, 0.0f32, 0usize);
        for gy in 0..grid {
            for gx in 0..grid {
                let mut spread = 0.0;
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let i = (2 * gy + dy) * side + 2 * gx + dx;
                    let rgb: Vec<f32> = (0..3)
                        .map(|c| (image[(b * 3 + c) * side * side + i] + 1.0) * 127.5)
                        .collect();
                    spread += rgb.iter().cloned().fold(f32::MIN, f32::max)
                        - rgb.iter().cloned().fold(f32::MAX, f32::min);
                }
                let a = attention[((b * t_len + t) * grid + gy) * grid + gx];
                if spread / 4.0 > 60.0 {
                    on += a;
                    n_on += 1;
                } else {
                    off += a;
                    n_off += 1;
                }
            }
        }
        // Shapes cover 5-40% of the image: ignore samples that drew none or only colour.
        if n_on >= grid * grid / 50 && n_off >= grid * grid / 10 {
            contrasts.push((on / n_on as f32) / (off / n_off as f32).max(1e-12));
        }
    }
    contrasts
}

/// The fixture's text encoder with word embeddings drawn from N(0, 1) (see the module doc).
fn distinct_words(fx: &Shapes, device: &Device) -> TextEncoder {
    device.seed(21);
    let mut encoder = fx.encoder.clone();
    let [words, width] = encoder.encoder.weight.dims();
    encoder.encoder = EmbeddingConfig::new(words, width)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        })
        .init(device);
    encoder
}

fn geometric_mean(values: &[f32]) -> f32 {
    (values.iter().map(|v| v.ln()).sum::<f32>() / values.len() as f32).exp()
}

#[test]
fn colour_word_attention_concentrates_on_the_coloured_region() {
    let fx = shapes(512, 128);
    let data = fx.gan_set(128, 512);
    let device = Device::flex();
    let frozen = AttnGanFrozen::new(distinct_words(&fx, &device), None);
    let options = options();
    let dir = tempfile::tempdir().unwrap();
    let run = train_attngan(
        &options,
        &frozen,
        &data,
        &Checkpoints::new(dir.path().join("checkpoints"), 1),
        None,
        None,
        &device,
        &AtomicBool::new(false),
    )
    .unwrap();
    let probes = 64;
    let after = colour_word_contrast(&run.generator, &frozen.text_encoder, &fx, probes);
    let g_after = geometric_mean(&after);
    let above = after.iter().filter(|&&c| c > 1.0).count();
    eprintln!(
        "colour word's attention, shape / background, after {} steps: {g_after:.3} ({} samples, {above} above 1)",
        run.steps,
        after.len()
    );
    assert!(
        after.len() >= probes / 2,
        "only {} of {probes} samples drew a shape on a background",
        after.len()
    );
    // Measured: 1.229, 39 of 52 samples above 1 (chance: 1, and half; 39 or more of 52 fair
    // coin flips happen with probability 2e-4).
    assert!(g_after > 1.15, "contrast {g_after:.3}");
    assert!(
        3 * above >= 2 * after.len(),
        "only {above} of {} samples attend to the colour word more on the shape",
        after.len()
    );
}
