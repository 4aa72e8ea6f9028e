//! StackGAN training: Stage-I learns the caption's colour, Stage-II (on the frozen Stage-I)
//! redraws the Stage-I image at 256 px with clean edges; a resumed Stage-II run continues
//! exactly.

use burn::prelude::*;
use image::RgbImage;
use t2i::stackgan::{StackGanConfig, StackGanGenerators, split_noise};
use t2i_train::data::shapes::COLOURS;
use t2i_train::run::adversarial::{AVERAGE_PART, GENERATOR_PART, RunOptions};
use t2i_train::run::checkpoint::parameter_values;
use t2i_train::run::plot::tensor_to_images;
use t2i_train::run::recipe::Recipe;
use t2i_train::stackgan::train::{
    StackGanTrainOptions, Stage, StageOptions, train_stage1, train_stage2,
};

mod common;
use common::{
    Shapes, TEXT_DIM, TestPlace, assert_same_parameters, dominant_colour, every_recipe_option,
    learning_rate, learning_seed, probe_batch, report_learning, shapes, shapes_set,
    straight_stopped_resumed, training_turn,
};

fn model() -> StackGanConfig {
    StackGanConfig::new()
        .with_text_dim(TEXT_DIM)
        .with_condition_dim(32)
        .with_stage1_ngf(16)
        .with_stage1_ndf(16)
        .with_stage2_ngf(16)
        .with_stage2_ndf(8)
        .with_residual_blocks(1)
        .with_text_scale(4.0)
}

fn options(stage: Stage, batch_size: usize, steps: u64, lr: f64) -> StackGanTrainOptions {
    StackGanTrainOptions {
        model: model(),
        run: RunOptions {
            max_steps: Some(steps),
            ..RunOptions::new(batch_size, 1000, 3)
        },
        lr,
        lr_decay_every: 1000,
        family: StageOptions {
            stage,
            kl_weight: 1.0,
        },
        recipe: Recipe::papers(),
    }
}

/// The learning test's options with its seed and learning rate as the environment may set them
/// ([`learning_seed`], [`learning_rate`]).
fn learning(options: StackGanTrainOptions) -> StackGanTrainOptions {
    StackGanTrainOptions {
        run: RunOptions {
            seed: learning_seed(options.run.seed),
            ..options.run.clone()
        },
        lr: learning_rate(options.lr),
        ..options
    }
}

/// Mean absolute 4-neighbour Laplacian of an image's values scaled to [-1, 1]: how much fine
/// detail it has (a flat or blurred image scores low, noise high).
fn laplacian_energy(image: &RgbImage) -> f32 {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let at = |x: i64, y: i64, c: usize| image.get_pixel(x as u32, y as u32)[c] as f32 / 127.5;
    let mut sum = 0.0;
    for c in 0..3 {
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                sum += (4.0 * at(x, y, c)
                    - at(x - 1, y, c)
                    - at(x + 1, y, c)
                    - at(x, y - 1, c)
                    - at(x, y + 1, c))
                .abs();
            }
        }
    }
    sum / (3 * (w - 2) * (h - 2)) as f32
}

/// How steep an image's edges are for its contrast: the 99.5th percentile of the per-pixel
/// gradient magnitude (RGB forward differences, values scaled to [-1, 1]) over the 99th
/// percentile of the distance from the image's median colour. A 64 px image upsampled 4 times
/// spreads every edge over 4 pixels or more and scores low; a hard edge scores high whatever
/// the colours.
fn edge_steepness(image: &RgbImage) -> f32 {
    let (w, h) = (image.width(), image.height());
    let at = |x: u32, y: u32| image.get_pixel(x, y).0.map(|v| v as f32 / 127.5);
    let mut gradients = Vec::with_capacity((w * h) as usize);
    for y in 0..h - 1 {
        for x in 0..w - 1 {
            let (p, right, below) = (at(x, y), at(x + 1, y), at(x, y + 1));
            let g: f32 = (0..3)
                .map(|c| (right[c] - p[c]).powi(2) + (below[c] - p[c]).powi(2))
                .sum();
            gradients.push(g.sqrt());
        }
    }
    let median: [f32; 3] = std::array::from_fn(|c| {
        let mut v: Vec<f32> = image.pixels().map(|p| p[c] as f32 / 127.5).collect();
        percentile(&mut v, 0.5)
    });
    let mut distances: Vec<f32> = image
        .pixels()
        .map(|p| {
            (0..3)
                .map(|c| (p[c] as f32 / 127.5 - median[c]).powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect();
    percentile(&mut gradients, 0.995) / percentile(&mut distances, 0.99).max(1e-3)
}

/// The `q` quantile of `values` (reordered in place).
fn percentile(values: &mut [f32], q: f32) -> f32 {
    let k = ((values.len() - 1) as f32 * q).round() as usize;
    *values.select_nth_unstable_by(k, f32::total_cmp).1
}

/// Stage-I's image at Stage-II's size, bilinear.
fn bilinear_x4(image: &RgbImage) -> RgbImage {
    image::imageops::resize(image, 256, 256, image::imageops::FilterType::Triangle)
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Per probe colour, `per_colour` samples of both stages from fixed seeds.
fn probe_images(
    generators: &StackGanGenerators,
    fx: &Shapes,
    per_colour: usize,
    device: &Device,
) -> Vec<(usize, Tensor<4>, Tensor<4>)> {
    let config = model();
    fx.probes
        .iter()
        .enumerate()
        .map(|(colour, probe)| {
            let (text, noise) = probe_batch(probe, per_colour, config.noise_width(), device);
            let (low, high) = generators.forward(text, noise, &config);
            (colour, low, high)
        })
        .collect()
}

/// How many of `per_colour` Stage-I samples per probe colour (noise seeds 1000, 1001, ...)
/// draw the caption's colour.
fn stage1_colour_hits(
    generators: &StackGanGenerators,
    fx: &Shapes,
    per_colour: usize,
    device: &Device,
) -> usize {
    let config = model();
    let mut hits = 0;
    for (colour, probe) in fx.probes.iter().enumerate() {
        let (text, noise) = probe_batch(probe, per_colour, config.noise_width(), device);
        let (z, eps, _) = split_noise(noise, &config);
        let images = values(generators.stage1.forward(text, z, eps).image);
        hits += images
            .chunks(3 * 64 * 64)
            .filter(|image| dominant_colour(image) == Some(colour))
            .count();
    }
    hits
}

/// A checkpoint's `state.json` keeps the keys it had before the options were shared between
/// families (the stage, KL weight and rates beside the run's settings), so older runs resume.
#[test]
fn state_json_keeps_the_keys_older_checkpoints_have() {
    let options = options(Stage::Two, 8, 3, 2e-4);
    let json = serde_json::to_value(&options).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "model",
        "stage",
        "kl_weight",
        "lr",
        "lr_decay_every",
        "batch_size",
        "seed",
        "recipe",
    ] {
        assert!(keys.contains(&key), "state.json lacks {key}: {keys:?}");
    }
    assert!(!keys.contains(&"family"), "{keys:?}");
    let mut older = json.clone();
    older.as_object_mut().unwrap().remove("recipe");
    let read: StackGanTrainOptions = serde_json::from_value(older).unwrap();
    assert_eq!(read.family.stage, Stage::Two);
    assert_eq!(read.recipe, Recipe::papers());
}

/// A short CPU training of both stages on coloured shapes. Stage-I (64 px) must draw the
/// caption's colour far more often than chance. Stage-II (256 px, Stage-I frozen) must redraw
/// the Stage-I image it is given (its shapes lie where Stage-I's do: the per-pixel distance
/// from the image's mean colour correlates with Stage-I's by at least 0.2, and by 0.1 more
/// than with another sample's Stage-I image), with edges at least half as steep as Stage-I's
/// image upsampled bilinearly ([`edge_steepness`]; the runs draw them three times as steep)
/// and without turning into noise (mean absolute Laplacian at most 3 times the real images').
///
/// Whether Stage-II also keeps the caption's colour is printed, not asserted: in a run this
/// short it depends on the run's trajectory, not on the code (from 11 to 45 of 64 over seeds
/// and learning rates in 600-step runs at batch 16; chance is 16).
///
/// The budget: the test must pass in a few minutes on any x86-64 CPU, AVX2 or AVX-512 (issue
/// 23). Stage-I trains at batch 32 and twice the paper's rate, Stage-II at batch 8 and 1e-3
/// (the test's rates, not the configs'); Stage-I's colour is counted on 256 samples. The
/// statistics of the runs on both kernel paths and the bounds they set are in the README
/// ("Learning tests on any CPU").
#[test]
fn stage_one_follows_the_caption_and_stage_two_follows_stage_one() {
    let _turn = training_turn();
    let fx = shapes(4096, 256);
    let device = Device::flex();
    let low_set = fx.gan_set(64, 4096);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let stage1 = train_stage1(
        &learning(options(Stage::One, STAGE1_BATCH, STAGE1_STEPS, 4e-4)),
        &low_set,
        &TestPlace::in_dir(&dir.path().join("stage1")).on(&device),
    )
    .unwrap()
    .stage1;
    let stage1_seconds = started.elapsed().as_secs_f64();
    drop(low_set);
    let started = std::time::Instant::now();
    let high_set = fx.gan_set(256, 1024);
    let run = train_stage2(
        &learning(options(Stage::Two, STAGE2_BATCH, STAGE2_STEPS, 1e-3)),
        stage1,
        &high_set,
        &TestPlace::in_dir(&dir.path().join("stage2")).on(&device),
    )
    .unwrap();
    let stage2_seconds = started.elapsed().as_secs_f64();
    let generators = StackGanGenerators {
        stage1: run.stage1,
        stage2: run.stage2.expect("a Stage-II run returns its generator"),
    };
    let per_colour = 16;
    let (mut hits_low, mut hits_high) = (0, 0);
    let (mut detail_low, mut detail_high) = (0.0f32, 0.0f32);
    let (mut steep_low, mut steep_high) = (0.0f32, 0.0f32);
    let mut grid = Vec::new();
    let (mut matched, mut mismatched) = (0.0f32, 0.0f32);
    for (colour, low, high) in probe_images(&generators, &fx, per_colour, &device) {
        let (low_images, high_images) = (
            tensor_to_images(low.clone()).unwrap(),
            tensor_to_images(high.clone()).unwrap(),
        );
        let row = (0..4).flat_map(|k| [low_images[k].clone(), high_images[k].clone()]);
        grid.push((row.collect(), format!("a {} circle", COLOURS[colour].0)));
        let (low, high) = (values(low), values(high));
        for k in 0..per_colour {
            let (n64, n256) = (3 * 64 * 64, 3 * 256 * 256);
            hits_low += usize::from(dominant_colour(&low[k * n64..(k + 1) * n64]) == Some(colour));
            hits_high +=
                usize::from(dominant_colour(&high[k * n256..(k + 1) * n256]) == Some(colour));
            detail_high += laplacian_energy(&high_images[k]);
            let upsampled = bilinear_x4(&low_images[k]);
            detail_low += laplacian_energy(&upsampled);
            steep_high += edge_steepness(&high_images[k]);
            steep_low += edge_steepness(&upsampled);
            let layout = object_map(&high_images[k]);
            matched += correlation(&layout, &object_map(&low_images[k]));
            let other = &low_images[(k + 1) % per_colour];
            mismatched += correlation(&layout, &object_map(other));
        }
    }
    // For the developer: Stage-I and Stage-II side by side for each probe caption.
    let picture = std::env::temp_dir().join("t2i-stackgan-learning.png");
    t2i_train::run::plot::caption_grid_rows(&grid, 1)
        .save(&picture)
        .unwrap();
    eprintln!("probe samples: {}", picture.display());
    let samples = (per_colour * fx.probes.len()) as f32;
    let stage1_samples = STAGE1_PROBES_PER_COLOUR * fx.probes.len();
    let stage1_hits = stage1_colour_hits(&generators, &fx, STAGE1_PROBES_PER_COLOUR, &device);
    let (detail_low, detail_high) = (detail_low / samples, detail_high / samples);
    let (steep_low, steep_high) = (steep_low / samples, steep_high / samples);
    let real_steep = fx.images[..64].iter().map(edge_steepness).sum::<f32>() / 64.0;
    let (matched, mismatched) = (matched / samples, mismatched / samples);
    let real_detail = fx.images[..64].iter().map(laplacian_energy).sum::<f32>() / 64.0;
    eprintln!(
        "caption colour: Stage-I {stage1_hits} of {stage1_samples} ({hits_low} of the first 64), Stage-II {hits_high} of 64; Stage-II layout vs its Stage-I image: correlation {matched:.3} (another sample's: {mismatched:.3}); edge steepness: Stage-II {steep_high:.3}, Stage-I upsampled {steep_low:.3}, real {real_steep:.3}; detail (mean |Laplacian| at 256 px): Stage-II {detail_high:.4}, Stage-I upsampled {detail_low:.4}, real {real_detail:.4}"
    );
    report_learning(
        "stackgan",
        &[
            (
                "stage1_right_colour_share",
                stage1_hits as f64 / stage1_samples as f64,
            ),
            (
                "stage1_first64_right_colour_share",
                hits_low as f64 / samples as f64,
            ),
            (
                "stage2_right_colour_share",
                hits_high as f64 / samples as f64,
            ),
            ("layout_matched", matched as f64),
            ("layout_mismatched", mismatched as f64),
            ("edge_steepness_ratio", (steep_high / steep_low) as f64),
            ("detail_over_real", (detail_high / real_detail) as f64),
            ("stage1_seconds", stage1_seconds),
            ("stage2_seconds", stage2_seconds),
        ],
    );
    // The bounds come from ten learning runs (seeds 1-5 on both kernel paths) and a control
    // at learning rate 1e-9 (README, "Learning tests on any CPU"). Each lies at least 3.1
    // standard deviations of those runs below their mean, so a model that learns fails it
    // less than once in 1,000 runs by a normal fit of that spread; the control fails them.
    //
    // Stage-I's colour: 0.47-0.72 of 256 samples (mean 0.63, sd 0.07; the control 0.125).
    // Chance is a quarter, and P(at least 90 of 256 at p = 1/4) is 1.9e-4.
    assert!(
        stage1_hits * 20 >= 7 * stage1_samples,
        "Stage-I: only {stage1_hits} of {stage1_samples} samples have the caption's colour (at least 35% must)"
    );
    // A Stage-II that ignored its input would correlate with its own Stage-I image no better
    // than with another sample's. The runs: 0.35-0.63 with their own (mean 0.50, sd 0.09),
    // 0.23-0.46 more than with another's (mean 0.39, sd 0.07); the control 0.10 and 0.10.
    assert!(
        matched > 0.2 && matched - mismatched > 0.1,
        "Stage-II does not follow its Stage-I image: correlation {matched} with its own, {mismatched} with another sample's (at least 0.2, and 0.1 more than another's)"
    );
    // Stage-I's noise has detail of its own, which a clean Stage-II does not beat; its edges
    // are what is sharper: 1.4-4.0 times Stage-I's upsampled in the runs (mean 3.0, sd 0.79:
    // avx512 seed 3 drew 1.42, so 1.3 was 2.1 sd below and the bound is now 0.5, 3.1 sd
    // below). Steep edges come early in training (6.9 times after 40 steps, the control 2.5):
    // this and the detail bound check that Stage-II draws clean shapes rather than a blur or
    // noise, not that it learned the caption.
    assert!(
        steep_high > 0.5 * steep_low,
        "Stage-II edge steepness {steep_high} is not above 0.5 x Stage-I upsampled {steep_low}: Stage-II draws a blur"
    );
    assert!(
        detail_high < 3.0 * real_detail,
        "Stage-II detail {detail_high} is noise-like (real images {real_detail})"
    );
}

/// Per pixel of the image at 64x64, its distance from the image's mean colour: where the
/// shapes are, whatever their colour.
fn object_map(image: &RgbImage) -> Vec<f32> {
    let small = image::imageops::resize(image, 64, 64, image::imageops::FilterType::Triangle);
    let n = (64 * 64) as f32;
    let mean: [f32; 3] =
        std::array::from_fn(|c| small.pixels().map(|p| p[c] as f32).sum::<f32>() / n);
    small
        .pixels()
        .map(|p| {
            (0..3)
                .map(|c| (p[c] as f32 - mean[c]).powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect()
}

/// Pearson correlation of two equally long series.
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va.sqrt() * vb.sqrt()).max(1e-12)
}

/// Steps and batch sizes of the learning test.
const STAGE1_STEPS: u64 = 500;
const STAGE1_BATCH: usize = 32;
/// Stage-I samples per probe colour whose colour is counted.
const STAGE1_PROBES_PER_COLOUR: usize = 64;
const STAGE2_STEPS: u64 = 400;
const STAGE2_BATCH: usize = 8;

#[test]
fn interrupted_stage_two_resumes_to_identical_parameters() {
    stage_two_resumes_exactly(Recipe::papers());
}

/// Every recipe option at once: the weight average (which the run's Stage-II is), the
/// augmentations and the penalties draw their randomness per step, so resuming is still exact.
#[test]
fn stage_two_with_every_recipe_option_resumes_exactly_and_stays_finite() {
    stage_two_resumes_exactly(every_recipe_option());
}

/// Stage-I with every recipe option trains to finite losses, and its weight average is the
/// generator the run hands on (what Stage-II, samples and evaluation use).
#[test]
fn stage_one_with_every_recipe_option_stays_finite_and_hands_on_its_average() {
    let _turn = training_turn();
    let (_, data) = shapes_set(24, 64);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let place = TestPlace::in_dir(dir.path());
    let options = StackGanTrainOptions {
        recipe: every_recipe_option(),
        ..options(Stage::One, 8, 3, 2e-4)
    };
    let run = train_stage1(&options, &data, &place.on(&device)).unwrap();
    assert_eq!(run.steps, 3);
    let checkpoint = place.checkpoints.latest().unwrap().unwrap();
    let average = checkpoint
        .module(model().init_stage1_generator(&device), AVERAGE_PART)
        .unwrap();
    let live = checkpoint
        .module(model().init_stage1_generator(&device), GENERATOR_PART)
        .unwrap();
    let handed_on = parameter_values(&run.stage1).unwrap();
    let (average, live) = (
        parameter_values(&average).unwrap(),
        parameter_values(&live).unwrap(),
    );
    assert_eq!(handed_on, average);
    assert_ne!(
        average, live,
        "after 3 steps the average still differs from G"
    );
}

fn stage_two_resumes_exactly(recipe: Recipe) {
    let _turn = training_turn();
    let (_, data) = shapes_set(24, 256);
    let device = Device::flex();
    device.seed(1);
    let stage1 = model().init_stage1_generator(&device);
    let run = |dir: &std::path::Path, steps: u64| {
        train_stage2(
            &StackGanTrainOptions {
                recipe: recipe.clone(),
                ..options(Stage::Two, 8, steps, 2e-4)
            },
            stage1.clone(),
            &data,
            &TestPlace::in_dir(dir).on(&device),
        )
        .unwrap()
    };
    let (whole, _, second) = straight_stopped_resumed(run, 2, 4);
    assert_eq!(second.steps, 4);
    assert_same_parameters(
        whole.stage2.as_ref().unwrap(),
        second.stage2.as_ref().unwrap(),
        "Stage-II",
    );
}

#[test]
fn a_stage_refuses_data_of_the_other_size() {
    let (_, data) = shapes_set(8, 64);
    let device = Device::flex();
    let stage1 = model().init_stage1_generator(&device);
    let dir = tempfile::tempdir().unwrap();
    let error = train_stage2(
        &options(Stage::Two, 4, 1, 2e-4),
        stage1,
        &data,
        &TestPlace::in_dir(dir.path()).on(&device),
    )
    .err()
    .expect("64 px data for Stage-II");
    assert!(error.to_string().contains("256 px"), "{error}");
}
