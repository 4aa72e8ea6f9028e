//! Shared fixtures of the GAN training tests: coloured shapes with their captions embedded by
//! a frozen text encoder, and the colour a generated image shows.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{EmbeddingConfig, Initializer};
use burn::prelude::*;
use image::RgbImage;
use t2i::damsm::{TextEncoder, TextEncoderConfig};
use t2i::layers::AdversarialLoss;
use t2i::vocab::Vocabulary;
use t2i_train::data::gan_set::{GanSet, sentence_embeddings};
use t2i_train::data::shapes::COLOURS;
use t2i_train::data::shapes_dataset;
use t2i_train::run::recipe::{Augmentation, Recipe};

/// The shared resources beside the checkout (`../shared`).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The FID Inception-v3 weights in the shared resources.
pub const INCEPTION: &str = "models/inception-2015-12-05.safetensors";

/// `relative` in the shared resources when it is there; else `None`, with a notice naming it
/// and what is skipped without it.
pub fn shared_file(relative: &str, skipped: &str) -> Option<PathBuf> {
    let path = shared_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    eprintln!("NOTICE: {} is absent; skipping {skipped}", path.display());
    None
}

/// burn's random generator is per device; training runs seed it, so a test binary's trainings
/// take turns.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This test's turn to train (see [`TRAINING`]); a test that panicked gives up its turn.
pub fn training_turn() -> std::sync::MutexGuard<'static, ()> {
    TRAINING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first `n` coloured shapes at `size` px, and the training set of all of them.
pub fn shapes_set(n: usize, size: u32) -> (Shapes, GanSet) {
    let fx = shapes(n, size);
    let data = fx.gan_set(size, n);
    (fx, data)
}

/// Width of the fixtures' sentence embeddings.
pub const TEXT_DIM: usize = 32;

/// Coloured shapes, their standardised caption embeddings, and probe captions.
pub struct Shapes {
    pub images: Vec<RgbImage>,
    pub class_ids: Vec<u32>,
    pub embeddings: Vec<Vec<f32>>,
    /// Each image's caption as token ids of `vocabulary` (AttnGAN encodes them every step).
    pub tokens: Vec<Vec<u32>>,
    pub vocabulary: Vocabulary,
    /// The frozen text encoder the embeddings come from (before standardising), sentence and
    /// word features [`TEXT_DIM`] wide.
    pub encoder: TextEncoder,
    /// Embeddings of "a <colour> circle" for each of [`COLOURS`], standardised like the data.
    pub probes: Vec<Vec<f32>>,
}

impl Shapes {
    /// The first `n` shapes as a training set of `image_size` crops.
    pub fn gan_set(&self, image_size: u32, n: usize) -> GanSet {
        let n = n.min(self.images.len());
        GanSet::with_tokens(
            image_size,
            self.images[..n].to_vec(),
            self.class_ids[..n].to_vec(),
            self.embeddings[..n].to_vec(),
            self.tokens[..n].iter().map(|t| vec![t.clone()]).collect(),
            TEXT_DIM,
        )
    }
}

/// `n` coloured shapes drawn at `size` px with their captions embedded by a frozen (randomly
/// initialised) DAMSM text encoder: the generator has to find the colour in the embedding by
/// itself.
///
/// A random encoder's sentence vectors share most of their value across captions (a trained
/// one's differ: on CUB about 85% of the variance lies between captions), so each dimension is
/// standardised over the training captions; without that the text barely moves the inputs and
/// the discriminator's matching task gives the generator no usable signal.
pub fn shapes(n: usize, size: u32) -> Shapes {
    shapes_with(n, size, CaptionVector::Sentence)
}

/// Like [`shapes`], with the captions turned into vectors the way `vector` says.
pub fn shapes_with(n: usize, size: u32, vector: CaptionVector) -> Shapes {
    let shapes = shapes_dataset(n, size, 11);
    let class_ids = shapes
        .iter()
        .map(|(_, _, l)| l.class_index() as u32)
        .collect();
    let (images, captions) = shapes.into_iter().map(|(i, c, _)| (i, c)).unzip();
    embed_with(images, captions, class_ids, vector)
}

/// How a fixture turns a caption into the vector the generator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionVector {
    /// DAMSM's sentence feature (its LSTMs' end states) under the random encoder. Its words
    /// reach it through random recurrent weights, which carry them weakly: a decoder that picks
    /// the nearest colour's mean vector reads the colour from 52% of the standardised vectors
    /// of 4,096 shapes' captions (chance 25%), and 3.6% of their variance lies between colours.
    Sentence,
    /// The mean of the caption's word features under the random encoder with word embeddings
    /// drawn from N(0, 3) and its LSTMs made context-free ([`distinct_words`],
    /// [`context_free`]): a bag of random word vectors, from which the same decoder reads the
    /// colour in 92% (19% of the variance between colours). A trained text encoder separates
    /// its captions' attributes too (on CUB about 85% of the variance of DAMSM's sentence
    /// vectors lies between captions).
    BagOfWords,
}

/// Images with their captions embedded by a frozen random text encoder, as in [`shapes`].
pub fn embed(images: Vec<RgbImage>, captions: Vec<String>, class_ids: Vec<u32>) -> Shapes {
    embed_with(images, captions, class_ids, CaptionVector::Sentence)
}

/// [`embed`] with the captions turned into vectors the way `vector` says.
pub fn embed_with(
    images: Vec<RgbImage>,
    captions: Vec<String>,
    class_ids: Vec<u32>,
    vector: CaptionVector,
) -> Shapes {
    let device = Device::flex();
    let vocabulary = Vocabulary::build(captions.iter().map(String::as_str), 1);
    device.seed(5);
    let mut encoder = TextEncoderConfig::new(vocabulary.len())
        .with_embedding_dim(16)
        .with_feature_dim(TEXT_DIM)
        .init(&device);
    if vector == CaptionVector::BagOfWords {
        encoder = context_free(distinct_words(&encoder, 3.0, &device));
    }
    let captions: Vec<&str> = captions.iter().map(String::as_str).collect();
    let mut embeddings = caption_vectors(&encoder, &vocabulary, &captions, vector, &device);
    let probe_captions: Vec<String> = COLOURS
        .iter()
        .map(|(colour, _)| format!("a {colour} circle"))
        .collect();
    let probe_refs: Vec<&str> = probe_captions.iter().map(String::as_str).collect();
    let mut probes = caption_vectors(&encoder, &vocabulary, &probe_refs, vector, &device);
    let count = embeddings.len() as f32;
    let mean: Vec<f32> = (0..TEXT_DIM)
        .map(|k| embeddings.iter().map(|e| e[k]).sum::<f32>() / count)
        .collect();
    let std: Vec<f32> = (0..TEXT_DIM)
        .map(|k| {
            let var = embeddings
                .iter()
                .map(|e| (e[k] - mean[k]).powi(2))
                .sum::<f32>()
                / count;
            var.sqrt().max(1e-6)
        })
        .collect();
    for e in embeddings.iter_mut().chain(probes.iter_mut()) {
        for k in 0..TEXT_DIM {
            e[k] = (e[k] - mean[k]) / std[k];
        }
    }
    let tokens = captions
        .iter()
        .map(|c| vocabulary.encode(c).tokens)
        .collect();
    Shapes {
        images,
        class_ids,
        embeddings,
        tokens,
        vocabulary,
        encoder,
        probes,
    }
}

/// Each caption's vector (every word of the captions must be in `vocabulary`).
fn caption_vectors(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    captions: &[&str],
    vector: CaptionVector,
    device: &Device,
) -> Vec<Vec<f32>> {
    match vector {
        CaptionVector::Sentence => sentence_embeddings(encoder, vocabulary, captions, device)
            .into_iter()
            .map(|e| e.expect("every caption has known words"))
            .collect(),
        CaptionVector::BagOfWords => {
            let tokens: Vec<Vec<u32>> = captions
                .iter()
                .map(|c| vocabulary.encode(c).tokens)
                .collect();
            let mut vectors = Vec::with_capacity(captions.len());
            for chunk in tokens.chunks(256) {
                let ids: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
                // # Shapes: words [B, TEXT_DIM, T], padded after each caption's length.
                let words = encoder.encode_ids(&ids, device).words;
                let [_, width, steps] = words.dims();
                let values: Vec<f32> = words
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec()
                    .expect("converted to f32");
                for (row, caption) in chunk.iter().enumerate() {
                    let len = caption.len();
                    assert!(len > 0, "every caption has known words");
                    let feature = |k: usize| &values[(row * width + k) * steps..][..len];
                    vectors.push(
                        (0..width)
                            .map(|k| feature(k).iter().sum::<f32>() / len as f32)
                            .collect(),
                    );
                }
            }
            vectors
        }
    }
}

/// The encoder with word embeddings drawn from N(0, `std`) instead of its initial
/// U(-0.1, 0.1), at which a random LSTM gives nearly the same feature for every word.
pub fn distinct_words(encoder: &TextEncoder, std: f64, device: &Device) -> TextEncoder {
    device.seed(21);
    let mut encoder = encoder.clone();
    let [words, width] = encoder.encoder.weight.dims();
    encoder.encoder = EmbeddingConfig::new(words, width)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    encoder
}

/// The encoder with its LSTMs cut off from their past: no recurrent weights and a forget gate
/// shut, so each word's feature is a function of that word alone.
pub fn context_free(mut encoder: TextEncoder) -> TextEncoder {
    for lstm in [&mut encoder.rnn.forward, &mut encoder.rnn.reverse] {
        for gate in [
            &mut lstm.input_gate,
            &mut lstm.output_gate,
            &mut lstm.cell_gate,
        ] {
            let weight = gate.hidden_transform.weight.val().zeros_like();
            gate.hidden_transform.weight = Param::from_tensor(weight);
        }
        let forget = lstm
            .forget_gate
            .as_mut()
            .expect("DAMSM's LSTM has a forget gate");
        forget.hidden_transform.weight =
            Param::from_tensor(forget.hidden_transform.weight.val().zeros_like());
        for linear in [&mut forget.input_transform, &mut forget.hidden_transform] {
            if let Some(bias) = linear.bias.as_mut() {
                *bias = Param::from_tensor(bias.val().zeros_like().add_scalar(-15.0));
            }
        }
    }
    encoder
}

/// Which of [`COLOURS`] the saturated pixels of a generated image (`[3, S, S]` values in
/// [-1, 1], channel-major) are closest to on average; `None` when nothing is saturated.
pub fn dominant_colour(pixels: &[f32]) -> Option<usize> {
    let plane = pixels.len() / 3;
    let (mut sum, mut count) = ([0.0f32; 3], 0.0f32);
    for i in 0..plane {
        let rgb = [0, 1, 2].map(|c| (pixels[c * plane + i] + 1.0) * 127.5);
        let spread = rgb.iter().cloned().fold(f32::MIN, f32::max)
            - rgb.iter().cloned().fold(f32::MAX, f32::min);
        // Backgrounds are grey or white; the shapes are saturated.
        if spread > 60.0 {
            for c in 0..3 {
                sum[c] += rgb[c];
            }
            count += 1.0;
        }
    }
    if count == 0.0 {
        return None;
    }
    let mean = sum.map(|v| v / count);
    let distance = |k: usize| {
        COLOURS[k]
            .1
            .iter()
            .zip(&mean)
            .map(|(&a, &b)| (a as f32 - b).powi(2))
            .sum::<f32>()
    };
    (0..COLOURS.len()).min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
}

/// Runs the `t2i` binary with `args`: whether it succeeded, and its stderr (which must not
/// show a panic, whatever the outcome).
pub fn t2i(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_t2i"))
        .args(args)
        .output()
        .expect("the t2i binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "t2i panicked: {stderr}");
    (out.status.success(), stderr)
}

/// A probe caption's embedding `count` times, and noise from seeds 1000, 1001, … (`noise_width`
/// values each): the batch a learning test scores one colour with.
pub fn probe_batch(
    probe: &[f32],
    count: usize,
    noise_width: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let text = Tensor::<2>::from_data(
        TensorData::new(probe.repeat(count), [count, probe.len()]),
        device,
    );
    let noise: Vec<f32> = (0..count as u64)
        .flat_map(|seed| t2i::generate::seeded_noise(1000 + seed, noise_width))
        .collect();
    let noise = Tensor::<2>::from_data(TensorData::new(noise, [count, noise_width]), device);
    (text, noise)
}

/// A family's two resume tests: with the papers' recipe, and with every recipe option at once
/// (the weight average, which the run's generator is, the augmentations and the penalties draw
/// their randomness per step, so resuming is still exact). `$resumes_exactly(recipe)` trains
/// straight, stopped and resumed, and compares.
#[macro_export]
macro_rules! resume_tests {
    ($resumes_exactly:ident) => {
        #[test]
        fn interrupted_training_resumes_to_identical_parameters() {
            $resumes_exactly(t2i_train::run::recipe::Recipe::papers());
        }

        #[test]
        fn a_run_with_every_recipe_option_resumes_exactly_and_stays_finite() {
            $resumes_exactly(common::every_recipe_option());
        }
    };
}

/// Where a test's run writes: checkpoints (the last two) in `dir/checkpoints`, never stopped.
pub struct TestPlace {
    pub checkpoints: t2i_train::run::checkpoint::Checkpoints,
    pub stop: std::sync::atomic::AtomicBool,
}

impl TestPlace {
    pub fn in_dir(dir: &std::path::Path) -> Self {
        Self {
            checkpoints: t2i_train::run::checkpoint::Checkpoints::new(dir.join("checkpoints"), 2),
            stop: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The place a family's training takes, on `device`.
    pub fn on<'a, G>(&'a self, device: &'a Device) -> t2i_train::run::adversarial::RunPlace<'a, G> {
        t2i_train::run::adversarial::RunPlace::new(&self.checkpoints, device, &self.stop)
    }
}

/// Trains with `train` (handed its place on `device`) while `score` rates the generator every
/// `every` steps from step `first` to `last`; returns each scored step with its score, and the
/// seconds the training took.
pub fn scored_training<G, T>(
    device: &Device,
    (first, every, last): (u64, u64, u64),
    score: impl Fn(&G) -> T,
    train: impl FnOnce(&t2i_train::run::adversarial::RunPlace<G>),
) -> (Vec<(u64, T)>, f64) {
    let scores = std::cell::RefCell::new(Vec::new());
    let write = |step: u64, generator: &G| -> anyhow::Result<()> {
        if step >= first {
            scores.borrow_mut().push((step, score(generator)));
        }
        Ok(())
    };
    let hook = t2i_train::run::adversarial::SampleHook {
        every,
        write: &write,
    };
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    train(&TestPlace::in_dir(dir.path()).on(device).with_samples(&hook));
    let seconds = started.elapsed().as_secs_f64();
    let scores = scores.into_inner();
    assert_eq!(
        scores.iter().map(|(step, _)| *step).collect::<Vec<_>>(),
        (first..=last).step_by(every as usize).collect::<Vec<_>>(),
        "the generator is scored at these steps"
    );
    (scores, seconds)
}

/// Trains once straight to `last` steps and once stopped after `first` steps and resumed to
/// `last`, each in a fresh folder (`run(folder, max_steps)`); returns the straight run, the
/// stopped one and the resumed one.
pub fn straight_stopped_resumed<R>(
    run: impl Fn(&std::path::Path, u64) -> R,
    first: u64,
    last: u64,
) -> (R, R, R) {
    let straight = tempfile::tempdir().unwrap();
    let whole = run(straight.path(), last);
    let resumed = tempfile::tempdir().unwrap();
    let stopped = run(resumed.path(), first);
    let second = run(resumed.path(), last);
    (whole, stopped, second)
}

/// `a` and `b` hold the same parameters, bit for bit (`what` names the module in a failure).
pub fn assert_same_parameters<M: burn::module::Module>(a: &M, b: &M, what: &str) {
    let (a, b) = (
        t2i_train::run::checkpoint::parameter_values(a).unwrap(),
        t2i_train::run::checkpoint::parameter_values(b).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{what} parameter {name} differs after resuming");
    }
}

/// Runs `t2i` with `args`, which must succeed; returns what it wrote to stderr.
pub fn t2i_runs(args: &[&str]) -> String {
    let (ok, err) = t2i(args);
    assert!(ok, "t2i {args:?} failed: {err}");
    err
}

/// Runs `t2i` with `args`, which must fail with a message containing each of `named`.
pub fn t2i_refuses(args: &[&str], named: &[&str]) -> String {
    let (ok, err) = t2i(args);
    assert!(!ok, "t2i {args:?} succeeded");
    for name in named {
        assert!(
            err.contains(name),
            "t2i {args:?} does not name {name:?}: {err}"
        );
    }
    err
}

/// A learning test's training seed: the test's own, or `T2I_LEARNING_SEED` when set. The spread
/// of each learning test's statistic over seeds and kernel paths is measured with it
/// (`tools/learning_spread.sh`); the bounds the tests assert come from that spread.
pub fn learning_seed(own: u64) -> u64 {
    match std::env::var("T2I_LEARNING_SEED") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("T2I_LEARNING_SEED={value:?} is not a whole number")),
        Err(_) => own,
    }
}

/// A learning test's learning rate: the test's own, times `T2I_LEARNING_RATE_SCALE` when set.
/// A scale of 0 is the control: a model that cannot learn must fail the test's assertions.
pub fn learning_rate(own: f64) -> f64 {
    match std::env::var("T2I_LEARNING_RATE_SCALE") {
        Ok(value) => match value.parse::<f64>() {
            Ok(scale) if scale >= 0.0 && scale.is_finite() => own * scale,
            _ => panic!("T2I_LEARNING_RATE_SCALE={value:?} is not a finite number >= 0"),
        },
        Err(_) => own,
    }
}

/// Prints a learning test's statistics as one JSON line (`learning-statistics {...}`), with the
/// seed and learning-rate scale it ran with, so that runs over seeds and machines can be
/// collected with grep.
pub fn report_learning(test: &str, statistics: &[(&str, f64)]) {
    let mut line = serde_json::Map::new();
    line.insert("test".into(), test.into());
    line.insert(
        "seed".into(),
        std::env::var("T2I_LEARNING_SEED")
            .unwrap_or_default()
            .into(),
    );
    line.insert(
        "lr_scale".into(),
        std::env::var("T2I_LEARNING_RATE_SCALE")
            .unwrap_or_else(|_| "1".into())
            .into(),
    );
    for (name, value) in statistics {
        line.insert((*name).into(), (*value).into());
    }
    eprintln!("learning-statistics {}", serde_json::Value::Object(line));
}

/// Every `[recipe]` option on at once (DF-GAN's losses and rates, DiffAugment, a weight
/// average and both penalties): what the recipe tests train with.
pub fn every_recipe_option() -> Recipe {
    Recipe {
        loss: AdversarialLoss::Hinge,
        ema_decay: 0.99,
        augment: Augmentation::ALL.to_vec(),
        r1_gamma: 1.0,
        ma_gp_weight: 2.0,
        ma_gp_power: 6,
        lr_g: Some(1e-4),
        lr_d: Some(4e-4),
        betas_g: [0.0, 0.9],
        betas_d: [0.0, 0.9],
    }
}
