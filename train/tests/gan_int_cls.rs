//! GAN-INT-CLS training: it learns to follow the caption's colour word, resumes exactly, and
//! decays its learning rate as the paper.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use burn::prelude::*;
use burn::tensor::Distribution;
use t2i::gan_int_cls::GanIntClsConfig;
use t2i_train::checkpoint::{Checkpoints, parameter_values};
use t2i_train::gan_train::{GanTrainOptions, gan_learning_rate, train_gan_int_cls};

mod common;
use common::{TEXT_DIM, dominant_colour, learning_rate, learning_seed, report_learning, shapes};

/// burn's random generator is per device; training runs seed it, so they take turns.
static TRAINING: Mutex<()> = Mutex::new(());

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
    let fx = shapes(48, 64);
    let data = fx.gan_set(64, 48);
    let device = Device::flex();
    let run = |dir: &std::path::Path, steps: u64| {
        let mut opts = options(16, 3);
        opts.max_steps = Some(steps);
        train_gan_int_cls(
            &opts,
            &data,
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

/// A short CPU training on coloured shapes: for "a <colour> circle" the generated shape takes
/// that colour far more often than chance.
#[test]
fn generated_colour_follows_the_caption() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let fx = shapes(4096, 64);
    let data = fx.gan_set(64, 4096);
    let device = Device::flex();
    let mut opts = options(64, 100);
    opts.model = opts.model.with_ndf(16);
    opts.interp_weight = 0.0;
    opts.max_steps = Some(LEARNING_STEPS);
    opts.seed = learning_seed(opts.seed);
    opts.lr = learning_rate(opts.lr);
    let dir = tempfile::tempdir().unwrap();
    let run = train_gan_int_cls(
        &opts,
        &data,
        &Checkpoints::new(dir.path().join("checkpoints"), 1),
        None,
        None,
        &device,
        &AtomicBool::new(false),
    )
    .unwrap();
    let per_colour = 64;
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
    let samples = per_colour * fx.probes.len();
    eprintln!("{hits} of {samples} samples have the caption's colour after {LEARNING_STEPS} steps");
    report_learning(
        "gan_int_cls_colour",
        &[("right_colour_share", hits as f64 / samples as f64)],
    );
    // Chance is a quarter (an untrained generator draws one colour whatever the caption).
    assert!(
        hits * 64 >= 31 * samples,
        "only {hits} of {samples} samples have the caption's colour after {LEARNING_STEPS} steps"
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
