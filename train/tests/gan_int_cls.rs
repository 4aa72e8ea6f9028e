//! GAN-INT-CLS training: it learns to follow the caption's colour word, resumes exactly, and
//! decays its learning rate as the paper.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use burn::tensor::Distribution;
use t2i::damsm::TextEncoderConfig;
use t2i::gan_int_cls::GanIntClsConfig;
use t2i::vocab::Vocabulary;
use t2i_train::checkpoint::{Checkpoints, parameter_values};
use t2i_train::data::shapes::COLOURS;
use t2i_train::data::shapes_dataset;
use t2i_train::gan_train::{
    GanSet, GanTrainOptions, gan_learning_rate, sentence_embeddings, train_gan_int_cls,
};

/// burn's random generator is per device; training runs seed it, so they take turns.
static TRAINING: Mutex<()> = Mutex::new(());

const TEXT_DIM: usize = 32;

struct Fixture {
    data: GanSet,
    /// Embeddings of "a <colour> circle" for each of [`COLOURS`], standardised like the data.
    probes: Vec<Vec<f32>>,
}

/// Coloured shapes with their captions embedded by a frozen (randomly initialised) DAMSM text
/// encoder: the generator has to find the colour in the embedding by itself.
///
/// A random encoder's sentence vectors share most of their value across captions (a trained
/// one's differ: on CUB about 85% of the variance lies between captions), so each dimension is
/// standardised over the training captions; without that the text barely moves the inputs and
/// the discriminator's matching task gives the generator no usable signal.
fn fixture(n: usize) -> Fixture {
    let device = Device::flex();
    let shapes = shapes_dataset(n, 64, 11);
    let vocabulary = Vocabulary::build(shapes.iter().map(|(_, c, _)| c.as_str()), 1);
    device.seed(5);
    let encoder = TextEncoderConfig::new(vocabulary.len())
        .with_embedding_dim(16)
        .with_feature_dim(TEXT_DIM)
        .init(&device);
    let captions: Vec<&str> = shapes.iter().map(|(_, c, _)| c.as_str()).collect();
    let mut embeddings: Vec<Vec<f32>> =
        sentence_embeddings(&encoder, &vocabulary, &captions, &device)
            .into_iter()
            .map(|e| e.expect("every caption has known words"))
            .collect();
    let probe_captions: Vec<String> = COLOURS
        .iter()
        .map(|(colour, _)| format!("a {colour} circle"))
        .collect();
    let probe_refs: Vec<&str> = probe_captions.iter().map(String::as_str).collect();
    let mut probes: Vec<Vec<f32>> =
        sentence_embeddings(&encoder, &vocabulary, &probe_refs, &device)
            .into_iter()
            .map(|e| e.expect("probe words are in the vocabulary"))
            .collect();
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
    let class_ids = shapes
        .iter()
        .map(|(_, _, l)| l.class_index() as u32)
        .collect();
    let images = shapes.into_iter().map(|(i, _, _)| i).collect();
    Fixture {
        data: GanSet::new(images, class_ids, embeddings, TEXT_DIM),
        probes,
    }
}

fn options(batch_size: usize, max_epoch: usize) -> GanTrainOptions {
    GanTrainOptions {
        model: GanIntClsConfig::new()
            .with_text_dim(TEXT_DIM)
            .with_ngf(32)
            .with_ndf(8),
        batch_size,
        max_epoch,
        lr: 2e-4,
        lr_decay_every: 100,
        interp_weight: 1.0,
        beta: 0.5,
        checkpoint_steps: 0,
        seed: 9,
        max_steps: None,
        max_seconds: None,
        progress: false,
    }
}

#[test]
fn interrupted_training_resumes_to_identical_parameters() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let fx = fixture(48);
    let device = Device::flex();
    let run = |dir: &std::path::Path, steps: u64| {
        let mut opts = options(16, 3);
        opts.max_steps = Some(steps);
        train_gan_int_cls(
            &opts,
            &fx.data,
            &Checkpoints::new(dir.join("checkpoints"), 2),
            None,
            None,
            &device,
            &AtomicBool::new(false),
        )
        .unwrap()
    };
    let straight = tempfile::tempdir().unwrap();
    let whole = run(straight.path(), 5);
    let resumed = tempfile::tempdir().unwrap();
    run(resumed.path(), 2);
    let second = run(resumed.path(), 5);
    assert_eq!(second.steps, 5);
    for (a, b) in [
        (
            parameter_values(&whole.generator),
            parameter_values(&second.generator),
        ),
        (
            parameter_values(&whole.discriminator),
            parameter_values(&second.discriminator),
        ),
    ] {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len(), b.len());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "parameter {name} differs after resuming");
        }
    }
}

/// Which of [`COLOURS`] the saturated pixels of a generated image (`[3, 64, 64]` values in
/// [-1, 1], channel-major) are closest to on average; `None` when nothing is saturated.
fn dominant_colour(pixels: &[f32]) -> Option<usize> {
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

/// A short CPU training on coloured shapes: for "a <colour> circle" the generated shape takes
/// that colour far more often than chance.
#[test]
fn generated_colour_follows_the_caption() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let fx = fixture(4096);
    let device = Device::flex();
    let mut opts = options(64, 100);
    opts.model = opts.model.with_ndf(16);
    opts.interp_weight = 0.0;
    opts.max_steps = Some(LEARNING_STEPS);
    let dir = tempfile::tempdir().unwrap();
    let run = train_gan_int_cls(
        &opts,
        &fx.data,
        &Checkpoints::new(dir.path().join("checkpoints"), 1),
        None,
        None,
        &device,
        &AtomicBool::new(false),
    )
    .unwrap();
    let per_colour = 16;
    device.seed(77);
    let mut hits = 0;
    for (colour, probe) in fx.probes.iter().enumerate() {
        let text = Tensor::<2>::from_data(
            TensorData::new(probe.repeat(per_colour), [per_colour, TEXT_DIM]),
            &device,
        );
        let noise = Tensor::<2>::random([per_colour, 100], Distribution::Normal(0.0, 1.0), &device);
        let images: Vec<f32> = run
            .generator
            .forward(noise, text)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for sample in images.chunks(3 * 64 * 64) {
            if dominant_colour(sample) == Some(colour) {
                hits += 1;
            }
        }
    }
    // Chance is 16 of 64 (an untrained generator draws one colour whatever the caption);
    // P(at least 31 of 64 at p = 1/4) is 4e-5.
    eprintln!("{hits} of 64 samples have the caption's colour after {LEARNING_STEPS} steps");
    assert!(
        hits >= 31,
        "only {hits} of 64 samples have the caption's colour after {LEARNING_STEPS} steps"
    );
}

/// Steps of [`generated_colour_follows_the_caption`] (batch 64, 4,096 images).
const LEARNING_STEPS: u64 = 400;

#[test]
fn learning_rate_halves_every_hundred_epochs() {
    assert_eq!(gan_learning_rate(2e-4, 100, 99), 2e-4);
    assert_eq!(gan_learning_rate(2e-4, 100, 100), 1e-4);
    assert_eq!(gan_learning_rate(2e-4, 100, 250), 5e-5);
}
