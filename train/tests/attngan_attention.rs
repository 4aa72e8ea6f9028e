//! AttnGAN learns where to look: after a short training on coloured shapes over white, grey or
//! black backgrounds (64 and 128 px stages, no DAMSM term), the 128 px stage's attention to the
//! caption's background colour word ("black" in "red circle over black") is stronger on the
//! background of the generated image than on its shape, for most probe captions.
//!
//! Three settings of the test make a short run enough. Without them the attention learned
//! something on one trajectory and nothing on the next: the earlier version of this test (one
//! colour word, grey backgrounds, a recurrent encoder) passed on its one seed and failed on all
//! five seeds tried once faster kernels had changed the rounding (contrasts 0.94-1.39).
//! - The frozen text encoder is the fixture's random one made to give each word a feature of
//!   its own: word embeddings drawn at N(0, 1) instead of U(-0.1, 0.1) (at the latter a random
//!   LSTM gives nearly the same feature for every word), and LSTMs without recurrence, so that
//!   a word's feature holds that word alone. A random LSTM's features mix every word into every
//!   other, and the generator then has no reason to look at one word for one region: on these
//!   backgrounds with the LSTMs left recurrent the contrast ranged 0.89-1.32 over six runs (one
//!   of 1,000 steps, in which 44 of 46 backgrounds and 36 of 46 shapes came out in their
//!   colours and the contrast was 1.16).
//! - CA's KL term is weighted 20, which squeezes the caption out of the first stage's
//!   condition: the colours then reach the image only through the word attention of the 128
//!   px stage.
//! - The captions start with the shape's colour and end with the background's, the two words
//!   the sentence feature (the LSTMs' end states) holds, so that the discriminator's
//!   conditional logits see both.
//!
//! The shape's colour word is reported beside it and not asserted: in 500 steps the generator
//! learns the backgrounds' colours every time and the shapes' in some runs only (where it does,
//! that word's attention concentrates on the shape too, 1.12-1.27 in the runs at batch 16).

use burn::prelude::*;
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, padding_mask};
use t2i::damsm::TextEncoder;
use t2i::generate::seeded_noise;
use t2i_train::attngan::train::{AttnGanFrozen, AttnGanTrainOptions, train_attngan};
use t2i_train::data::shapes::{BACKGROUNDS, COLOURS};
use t2i_train::data::shapes_on_backgrounds_dataset;
use t2i_train::run::adversarial::RunOptions;

mod common;
use common::{
    Shapes, TEXT_DIM, context_free, distinct_words, dominant_colour, embed, learning_rate,
    learning_seed, report_learning, scored_training,
};

/// Training steps.
const STEPS: u64 = 500;
/// Captions per step: 8, half the earlier version's 16, which halves the test's time and in
/// the runs measured (README, "Learning tests on any CPU") kept the contrast well above its
/// bound.
const BATCH: usize = 8;
/// Adam's rate for G and D: five times the paper's, so that 500 steps suffice (as in the
/// StackGAN learning test).
const LR: f64 = 1e-3;
/// The training run's seed (the first one tried; see the assertions for the others).
const SEED: u64 = 1;
/// The attention is scored every `SCORE_EVERY` steps from `FIRST_SCORED_STEP` on (400, 450
/// and 500) and each probe's contrast averaged over those steps: one step's contrast swings
/// with the trajectory more than the average of three.
const FIRST_SCORED_STEP: u64 = 400;
const SCORE_EVERY: u64 = 50;
/// Probe captions scored at each of those steps.
const PROBES: usize = 256;

fn options(seed: u64) -> AttnGanTrainOptions {
    let model = AttnGanConfig::new()
        .with_text_dim(TEXT_DIM)
        .with_condition_dim(16)
        .with_noise_dim(16)
        .with_ngf(8)
        .with_ndf(8)
        .with_residual_blocks(1)
        .with_branch_num(2);
    AttnGanTrainOptions {
        run: RunOptions {
            max_steps: Some(STEPS),
            ..RunOptions::new(BATCH, 1000, seed)
        },
        lr_g: learning_rate(LR),
        lr_d: learning_rate(LR),
        damsm_lambda: 0.0,
        kl_weight: 20.0,
        ..AttnGanTrainOptions::birds(model)
    }
}

/// What the probes measured for each caption whose generated image has both a shape and
/// background: how much more the colour word attends to the shape than to the background, how
/// much more the background word attends to the background than to the shape (1 is no
/// preference for either), and whether the image drew the caption's colour and background.
#[derive(Default)]
struct Probes {
    /// Which probe caption each contrast below belongs to.
    probe: Vec<usize>,
    colour_contrast: Vec<f32>,
    background_contrast: Vec<f32>,
    right_colour: usize,
    right_background: usize,
}

fn attention_contrasts(
    generator: &AttnGanGenerator,
    encoder: &TextEncoder,
    fx: &Shapes,
    probes: usize,
) -> Probes {
    let device = Device::flex();
    let word_ids = |names: &mut dyn Iterator<Item = &str>| -> Vec<u32> {
        names
            .map(|name| fx.vocabulary.encode(name).tokens[0])
            .collect()
    };
    let colour_ids = word_ids(&mut COLOURS.iter().map(|(name, _)| *name));
    let background_ids = word_ids(&mut BACKGROUNDS.iter().map(|(name, _)| *name));
    let tokens: Vec<&[u32]> = fx.tokens[..probes].iter().map(Vec::as_slice).collect();
    let text = encoder.encode_ids(&tokens, &device);
    let t_len = text.words.dims()[2];
    let padding = padding_mask(&text.lengths, t_len, &device);
    // The same noise at every scored step, drawn without burn's random generator so that
    // scoring during training leaves the training's draws alone.
    let config = &options(0).model;
    let noise: Vec<f32> = (0..probes as u64)
        .flat_map(|b| seeded_noise(7700 + b, config.noise_dim))
        .collect();
    let noise = Tensor::from_data(TensorData::new(noise, [probes, config.noise_dim]), &device);
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
    let mut probed = Probes::default();
    for (b, caption) in tokens.iter().enumerate() {
        let position = |ids: &[u32]| caption.iter().position(|id| ids.contains(id));
        let (Some(t_colour), Some(t_background)) =
            (position(&colour_ids), position(&background_ids))
        else {
            continue;
        };
        let pixels = &image[b * 3 * side * side..(b + 1) * 3 * side * side];
        let colour = colour_ids.iter().position(|&id| id == caption[t_colour]);
        probed.right_colour += usize::from(dominant_colour(pixels) == colour);
        // Per 2x2 block (one attention cell): saturated on average is "shape" (the shapes are
        // saturated, the backgrounds white, grey or black), else "background".
        let mut shape_cell = vec![false; grid * grid];
        let mut background_level = (0.0f32, 0usize);
        for gy in 0..grid {
            for gx in 0..grid {
                let (mut spread, mut level) = (0.0, 0.0);
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let i = (2 * gy + dy) * side + 2 * gx + dx;
                    let rgb: Vec<f32> = (0..3)
                        .map(|c| (pixels[c * side * side + i] + 1.0) * 127.5)
                        .collect();
                    spread += rgb.iter().cloned().fold(f32::MIN, f32::max)
                        - rgb.iter().cloned().fold(f32::MAX, f32::min);
                    level += rgb.iter().sum::<f32>() / 3.0;
                }
                shape_cell[gy * grid + gx] = spread / 4.0 > 60.0;
                if spread / 4.0 <= 60.0 {
                    background_level.0 += level / 4.0;
                    background_level.1 += 1;
                }
            }
        }
        let on_shape = shape_cell.iter().filter(|&&s| s).count();
        // Shapes cover 5-40% of the image: skip samples that drew none or only colour.
        if on_shape < grid * grid / 50 || grid * grid - on_shape < grid * grid / 10 {
            continue;
        }
        let level = background_level.0 / background_level.1 as f32;
        let nearest_background = (0..BACKGROUNDS.len()).min_by(|&i, &j| {
            let d = |k: usize| (BACKGROUNDS[k].1[0] as f32 - level).abs();
            d(i).total_cmp(&d(j))
        });
        let background = background_ids
            .iter()
            .position(|&id| id == caption[t_background]);
        probed.right_background += usize::from(nearest_background == background);
        // Mean attention of word t on shape cells over its mean on background cells.
        let ratio = |t: usize| {
            let map = &attention[(b * t_len + t) * grid * grid..(b * t_len + t + 1) * grid * grid];
            let (mut on, mut off) = (0.0f32, 0.0f32);
            for (a, &shape) in map.iter().zip(&shape_cell) {
                if shape {
                    on += a;
                } else {
                    off += a;
                }
            }
            (on / on_shape as f32) / (off / (grid * grid - on_shape) as f32).max(1e-12)
        };
        probed.probe.push(b);
        probed.colour_contrast.push(ratio(t_colour));
        probed.background_contrast.push(1.0 / ratio(t_background));
    }
    probed
}

#[test]
fn coin_flip_tail() {
    assert!((at_least_heads(44, 57) - 2.3552e-5).abs() < 1e-9);
    assert_eq!(at_least_heads(0, 10), 1.0);
    assert!((at_least_heads(10, 10) - 1.0 / 1024.0).abs() < 1e-15);
}

/// P(at least `k` heads in `n` fair coin flips).
fn at_least_heads(k: usize, n: usize) -> f64 {
    let mut choose = 1.0f64; // C(n, i), from i = 0
    let mut tail = 0.0;
    for i in 0..=n {
        if i >= k {
            tail += choose;
        }
        choose = choose * (n - i) as f64 / (i + 1) as f64;
    }
    tail / 2f64.powi(n as i32)
}

fn geometric_mean(values: &[f32]) -> f32 {
    (values.iter().map(|v| v.ln()).sum::<f32>() / values.len() as f32).exp()
}

#[test]
fn background_colour_word_attends_to_the_background() {
    let data = shapes_on_backgrounds_dataset(512, 128, 11);
    let class_ids = data
        .iter()
        .map(|(_, _, label, background)| {
            (label.class_index() * BACKGROUNDS.len() + background) as u32
        })
        .collect();
    let (images, captions) = data.into_iter().map(|(i, c, _, _)| (i, c)).unzip();
    let fx = embed(images, captions, class_ids);
    let data = fx.gan_set(128, 512);
    let device = Device::flex();
    let encoder = context_free(distinct_words(&fx.encoder, 1.0, &device));

    // Each word's feature is its own: "black" reads the same after other words.
    let a = fx.vocabulary.encode("red circle over black").tokens;
    let b = fx.vocabulary.encode("blue square against black").tokens;
    let words = encoder.encode_ids(&[&a, &b], &device).words; // [2, D, 4]
    let last = |i: usize| words.clone().slice([i..i + 1, 0..TEXT_DIM, 3..4]);
    let difference: f32 = (last(0) - last(1)).abs().max().into_scalar();
    assert!(
        difference < 1e-6,
        "context leaks into a word's feature: {difference}"
    );

    let frozen = AttnGanFrozen::new(encoder, None);
    let options = options(learning_seed(SEED));
    let (scored, train_seconds) = scored_training(
        &device,
        (FIRST_SCORED_STEP, SCORE_EVERY, STEPS),
        |generator: &AttnGanGenerator| {
            attention_contrasts(generator, &frozen.text_encoder, &fx, PROBES)
        },
        |place| {
            train_attngan(&options, &frozen, &data, place).unwrap();
        },
    );
    let above = |v: &[f32]| v.iter().filter(|&&c| c > 1.0).count();
    for (step, probes) in &scored {
        let n = probes.background_contrast.len();
        eprintln!(
            "step {step}: {n} samples with a shape and background; the background word's attention, background / shape {:.3} ({} above 1); the shape's colour word's, shape / background {:.3} ({} above 1); right background {} of {n}, right shape colour {} of {n}",
            geometric_mean(&probes.background_contrast),
            above(&probes.background_contrast),
            geometric_mean(&probes.colour_contrast),
            above(&probes.colour_contrast),
            probes.right_background,
            probes.right_colour,
        );
    }
    // Each probe's contrasts averaged (geometrically) over the steps it was scored at: one
    // value per probe caption, so the sign test below counts independent samples.
    let mut per_probe: Vec<Vec<f32>> = vec![Vec::new(); PROBES];
    for (_, probes) in &scored {
        for (&b, &c) in probes.probe.iter().zip(&probes.background_contrast) {
            per_probe[b].push(c);
        }
    }
    let averaged: Vec<f32> = per_probe
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| geometric_mean(c))
        .collect();
    let n = averaged.len();
    let background = geometric_mean(&averaged);
    let background_above = above(&averaged);
    let pooled = |f: fn(&Probes) -> usize| scored.iter().map(|(_, p)| f(p)).sum::<usize>();
    let scored_samples = pooled(|p| p.background_contrast.len());
    let right_background = pooled(|p| p.right_background);
    let right_colour = pooled(|p| p.right_colour);
    let colour_contrast: Vec<f32> = scored
        .iter()
        .flat_map(|(_, p)| p.colour_contrast.iter().copied())
        .collect();
    let last = &scored.last().unwrap().1;
    eprintln!(
        "steps {FIRST_SCORED_STEP}-{STEPS}: {n} probe captions scored; the background word's attention averaged over the steps, background / shape {background:.3} ({background_above} above 1)"
    );
    report_learning(
        "attngan_attention",
        &[
            ("samples", n as f64),
            ("background_contrast", background as f64),
            ("background_above_share", background_above as f64 / n as f64),
            ("colour_contrast", geometric_mean(&colour_contrast) as f64),
            (
                "right_background_share",
                right_background as f64 / scored_samples as f64,
            ),
            (
                "right_colour_share",
                right_colour as f64 / scored_samples as f64,
            ),
            (
                "last_step_background_contrast",
                geometric_mean(&last.background_contrast) as f64,
            ),
            (
                "last_step_background_above_share",
                above(&last.background_contrast) as f64 / last.background_contrast.len() as f64,
            ),
            ("train_seconds", train_seconds),
        ],
    );
    for (step, probes) in &scored {
        assert!(
            2 * probes.background_contrast.len() >= PROBES,
            "step {step}: only {} of {PROBES} samples drew a shape on a background",
            probes.background_contrast.len()
        );
    }
    // The generator learned the backgrounds: chance is a third. The ten learning runs gave
    // 0.90-1.00 (mean 0.97, sd 0.03), the controls 0.37.
    assert!(
        2 * right_background >= scored_samples,
        "only {right_background} of {scored_samples} samples have the caption's background"
    );
    // The attention: the share of probe captions whose background word attends more to the
    // generated background than to the shape, each probe averaged over the scored steps.
    let p = at_least_heads(background_above, n);
    assert!(
        background_above as f64 >= ABOVE_SHARE_BOUND * n as f64,
        "only {background_above} of {n} probes attend to the background word more on the background (at least {:.0}% must; a fair coin does that with probability {p:.1e}); the contrast is {background:.3}",
        100.0 * ABOVE_SHARE_BOUND
    );
}

/// The least share of probes whose background word attends more to the background than to the
/// shape. Ten learning runs (seeds 1-5 on both kernel paths; README, "Learning tests on any
/// CPU") gave 0.67-0.93, mean 0.81, standard deviation 0.084; the controls at learning rate
/// 1e-9 gave 0.355. The bound lies 3.2 standard deviations below the mean: by a normal fit of
/// that spread a model that learns fails it less than once in 1,000 runs. It is weaker than a
/// sign test against a fair coin (p is about 0.1 at 54% of 250), which these runs cannot make
/// safe; the geometric mean contrast (1.06-1.50, mean 1.28, sd 0.15; the controls 0.986) has
/// no bound both that safe and above the controls', so it is reported, not asserted.
const ABOVE_SHARE_BOUND: f64 = 0.54;
