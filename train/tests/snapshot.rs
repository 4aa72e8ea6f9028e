//! The training campaign's committed snapshot (`snapshots/`, README "Campaign log") carries a
//! run to any machine: on a fresh clone, `t2i train --init-from` starts from the snapshot's
//! weights, its weight average included, and trains on with finite losses.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use t2i::gan_int_cls::Generator;
use t2i_train::data::fixtures::{CubFixture, write_cub_fixture};
use t2i_train::gan_int_cls::commands::{AVERAGE_F16, GENERATOR_F16};
use t2i_train::gan_int_cls::train::{GanState, GanTrainOptions};
use t2i_train::run::adversarial::{GENERATOR_PART, latest_generator};
use t2i_train::run::checkpoint::{Checkpoints, load_module_f16};

mod common;
use common::{assert_same_parameters, t2i_runs, training_turn};

/// The committed snapshot of the small GAN-INT-CLS and the config it trains with.
const SNAPSHOT: &str = "snapshots/gan_int_cls_birds_small";
const CONFIG: &str = "configs/gan_int_cls_birds_small.toml";
/// Steps trained on after the snapshot.
const MORE_STEPS: u64 = 3;

fn repository(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The small config pointed at a CUB-layout fixture in `dir`: the same networks, text encoder
/// and recipe, a batch of 4, epochs enough and a checkpoint every step.
fn fixture_config(dir: &Path) -> PathBuf {
    let cub = dir.join("cub");
    let spec = CubFixture {
        n_classes: 3,
        images_per_class: 4,
        ..CubFixture::default()
    };
    write_cub_fixture(&cub, &spec).unwrap();
    let shipped = std::fs::read_to_string(repository(CONFIG)).unwrap();
    let mut config = String::new();
    for line in shipped.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let line = match key {
            "data_dir" => format!("data_dir = {:?}", cub),
            "output_dir" => format!("output_dir = {:?}", dir.join("run")),
            "prepared_dir" => format!("prepared_dir = {:?}", dir.join("prepared")),
            "features_cache" => format!("features_cache = {:?}", dir.join("features")),
            "batch_size" => "batch_size = 4".to_string(),
            // The fixture's epochs are two steps long: the snapshot's step is far past the
            // config's epochs there.
            "max_epoch" => "max_epoch = 1000000".to_string(),
            "checkpoint_steps" => "checkpoint_steps = 1".to_string(),
            "sample_steps" => "sample_steps = 0".to_string(),
            "heldout_species" => "heldout_species = 1".to_string(),
            // The remaining paths are the repository's (weights, shared models).
            _ => line.replace(
                "\"../",
                &format!("\"{}/../", repository("configs").display()),
            ),
        };
        config.push_str(&line);
        config.push('\n');
    }
    let path = dir.join("small.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The image a generator draws for one fixed noise vector and sentence vector, as `[0, 1]`
/// values (the same inputs for every generator compared here).
fn drawn(generator: &Generator, noise_dim: usize, text_dim: usize, device: &Device) -> Vec<f32> {
    let wave = |n: usize, phase: f32| -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect()
    };
    let noise = Tensor::<2>::from_data(
        TensorData::new(wave(noise_dim, 0.0), [1, noise_dim]),
        device,
    );
    let text = Tensor::<2>::from_data(TensorData::new(wave(text_dim, 1.0), [1, text_dim]), device);
    let image = generator.forward(noise, text);
    image.into_data().try_to_vec::<f32>().unwrap()
}

fn mean_abs_difference(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64
}

/// The losses `metrics.jsonl` logged after step `after`.
fn losses_after(run: &Path, after: u64) -> Vec<(u64, f64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|row| row["step"].as_u64().is_some_and(|step| step > after))
        .map(|row| {
            let value = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
            (
                row["step"].as_u64().unwrap(),
                value("loss_d"),
                value("loss_g"),
            )
        })
        .collect()
}

#[test]
fn a_committed_snapshot_continues_from_its_weights_on_a_fresh_clone() {
    let _turn = training_turn();
    let snapshot = repository(SNAPSHOT);
    let state: GanState = serde_json::from_slice(
        &std::fs::read(snapshot.join("step.json"))
            .unwrap_or_else(|e| panic!("{SNAPSHOT}/step.json is committed: {e}")),
    )
    .unwrap();
    let model = state.options.model.clone();
    let device = Device::flex();
    let read = |name: &str| std::fs::read(snapshot.join(name)).unwrap();
    let snapshot_generator = load_module_f16(
        model.init_generator(&device),
        &read(GENERATOR_F16),
        GENERATOR_F16,
    )
    .unwrap();
    let snapshot_average = load_module_f16(
        model.init_generator(&device),
        &read(AVERAGE_F16),
        AVERAGE_F16,
    )
    .unwrap();
    let image = |g: &Generator| drawn(g, model.noise_dim, model.text_dim, &device);
    let before = image(&snapshot_average);
    assert_ne!(
        image(&snapshot_generator),
        before,
        "the snapshot's weight average draws other images than its generator"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path());
    let config = config.to_str().unwrap();
    let run = dir.path().join("run");
    let checkpoints = Checkpoints::of_run(&run);
    let step = state.step.to_string();
    t2i_runs(&[
        "train",
        "--config",
        config,
        "--init-from",
        snapshot.to_str().unwrap(),
        "--max-steps",
        &step,
    ]);

    // Loaded: the run's generator is the snapshot's, and what it draws (its weight average)
    // is the snapshot's image, bit for bit.
    let (loaded, options, at) = latest_generator::<GanTrainOptions, _>(&checkpoints, &run, |o| {
        o.model.init_generator(&device)
    })
    .unwrap();
    assert_eq!(at, state.step, "the run counts on from the snapshot's step");
    assert_eq!(options.model.to_string(), model.to_string());
    assert!(
        options.recipe.ema_decay > 0.0,
        "{CONFIG} keeps a weight average"
    );
    assert_eq!(image(&loaded), before, "the run draws the snapshot's image");
    let checkpoint = checkpoints.latest().unwrap().unwrap();
    let live = checkpoint
        .module(model.init_generator(&device), GENERATOR_PART)
        .unwrap();
    assert_same_parameters(&live, &snapshot_generator, "the generator");

    // Trained on: finite losses for every new step, a generator that moved, and images still
    // the snapshot's (a fresh generator draws something else entirely).
    t2i_runs(&[
        "train",
        "--config",
        config,
        "--resume",
        "--max-steps",
        &(state.step + MORE_STEPS).to_string(),
    ]);
    let losses = losses_after(&run, state.step);
    assert_eq!(losses.len() as u64, MORE_STEPS, "{losses:?}");
    for (step, loss_d, loss_g) in &losses {
        assert!(
            loss_d.is_finite() && loss_g.is_finite(),
            "step {step}: {loss_d} {loss_g}"
        );
    }
    let checkpoint = checkpoints.latest().unwrap().unwrap();
    let trained = checkpoint
        .module(model.init_generator(&device), GENERATOR_PART)
        .unwrap();
    let moved = mean_abs_difference(&image(&trained), &image(&snapshot_generator));
    assert!(moved > 0.0, "the generator did not train");
    let (after, _, _) = latest_generator::<GanTrainOptions, _>(&checkpoints, &run, |o| {
        o.model.init_generator(&device)
    })
    .unwrap();
    device.seed(11);
    let fresh = image(&model.init_generator(&device));
    let drift = mean_abs_difference(&image(&after), &before);
    let unlike = mean_abs_difference(&fresh, &before);
    assert!(
        drift < unlike / 10.0,
        "after {MORE_STEPS} steps the run draws unlike the snapshot: {drift} vs a fresh generator's {unlike}"
    );
}
