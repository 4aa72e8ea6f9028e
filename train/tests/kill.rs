//! `kill -9` at random moments: the `t2i` binary trains a tiny GAN-INT-CLS on a CUB-layout
//! fixture, writing a checkpoint every step, and is killed with SIGKILL at random times (so
//! also while a checkpoint is being written), then resumed with `--resume`. After every kill
//! the latest checkpoint is complete and loads; the run always continues from it; and the
//! final generator and discriminator hold bit for bit the parameters of an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use t2i::bundle::save_damsm;
use t2i::damsm::{DamsmConfig, ImageEncoderConfig, TextEncoderConfig};
use t2i::vocab::Vocabulary;
use t2i_train::data::fixtures::{CubFixture, write_cub_fixture};
use t2i_train::data::{CubOptions, read_cub};
use t2i_train::gan_int_cls::train::GanState;
use t2i_train::run::adversarial::{DISCRIMINATOR_PART, GENERATOR_PART};
use t2i_train::run::checkpoint::{Checkpoints, parameter_values};

/// Steps of every run; a checkpoint is written after each.
const STEPS: u64 = 60;
/// SIGKILLs per test run (the issue asks for at least 20 in CI).
const KILLS: usize = 20;

/// A CUB-layout fixture, a tiny DAMSM bundle built on its captions, and a GAN-INT-CLS config
/// that checkpoints every step; returns the config's path.
fn setup(dir: &Path) -> PathBuf {
    let cub = dir.join("cub");
    let spec = CubFixture {
        n_classes: 4,
        images_per_class: 4,
        image_size: 32,
        ..CubFixture::default()
    };
    write_cub_fixture(&cub, &spec).unwrap();
    let dataset = read_cub(&CubOptions::new(&cub)).unwrap();
    let vocabulary = Vocabulary::build(
        dataset
            .samples
            .iter()
            .flat_map(|s| s.captions.iter().map(String::as_str)),
        1,
    );
    let text = TextEncoderConfig::new(vocabulary.len())
        .with_embedding_dim(8)
        .with_feature_dim(8);
    let damsm = DamsmConfig::new(text).with_image(ImageEncoderConfig::new().with_feature_dim(8));
    let device = Device::flex();
    device.seed(5);
    let bytes = save_damsm(&damsm.init(&device), &damsm, &vocabulary).unwrap();
    std::fs::write(dir.join("damsm.safetensors"), bytes).unwrap();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models");
    let config = format!(
        r#"model = "gan_int_cls"
config_name = "kill"
dataset_name = "birds"
data_dir = "cub"
output_dir = "run"
text_encoder = "damsm.safetensors"
prepared_dir = "prepared"
captions_per_image = 2

[gan]
ngf = 8
ndf = 4
nz = 8
nt = 4

[train]
batch_size = 4
max_epoch = 100
lr = 0.0002
lr_decay_every = 100
interp_weight = 1.0
beta = 0.5
checkpoint_steps = 1
sample_steps = 0
seed = 3
heldout_species = 1

[eval]
inception = "{}"
features_cache = "features"
damsm = "damsm.safetensors"
"#,
        shared.join("inception-2015-12-05.safetensors").display()
    );
    std::fs::write(dir.join("kill.toml"), config).unwrap();
    dir.join("kill.toml")
}

/// `t2i train --resume` on `config`; its messages kept only when `keep_messages` (a killed
/// run's would fill a pipe nobody reads).
fn train(config: &Path, keep_messages: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_t2i"));
    command
        .args(["train", "--config"])
        .arg(config)
        .args(["--resume", "--max-steps", &STEPS.to_string()])
        .stdout(Stdio::null())
        .stderr(if keep_messages {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    command
}

/// The latest checkpoint's step, after checking that it is complete: its state and its
/// generator load. `None` before the first checkpoint.
fn latest_step(run: &Path, config: &Path) -> Option<u64> {
    let checkpoints = Checkpoints::new(run.join("checkpoints"), 2);
    let checkpoint = checkpoints
        .latest()
        .unwrap_or_else(|e| panic!("after a kill the latest checkpoint is unreadable: {e:#}"))?;
    let state: GanState = checkpoint
        .state()
        .unwrap_or_else(|e| panic!("{}: state unreadable: {e:#}", checkpoint.dir.display()));
    let device = Device::flex();
    checkpoint
        .module(state.options.model.init_generator(&device), GENERATOR_PART)
        .unwrap_or_else(|e| {
            panic!(
                "{}: generator unreadable ({}): {e:#}",
                checkpoint.dir.display(),
                config.display()
            )
        });
    Some(state.step)
}

/// The generator's and discriminator's parameters in the latest checkpoint, by name (the
/// parameters' values: burn's files are not byte-identical from run to run).
fn latest_networks(run: &Path) -> Vec<(String, Vec<u8>)> {
    let checkpoint = Checkpoints::new(run.join("checkpoints"), 2)
        .latest()
        .unwrap()
        .expect("a finished run has a checkpoint");
    let state: GanState = checkpoint.state().unwrap();
    let device = Device::flex();
    let model = &state.options.model;
    let generator = checkpoint
        .module(model.init_generator(&device), GENERATOR_PART)
        .unwrap();
    let discriminator = checkpoint
        .module(model.init_discriminator(&device), DISCRIMINATOR_PART)
        .unwrap();
    let mut values = parameter_values(&generator).unwrap();
    values.extend(
        parameter_values(&discriminator)
            .unwrap()
            .into_iter()
            .map(|(name, v)| (format!("discriminator {name}"), v)),
    );
    values
}

#[test]
fn training_killed_at_random_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let run = dir.path().join("run");

    // A first run builds the prepared set the runs below share; then the uninterrupted run.
    let out = train(&config, true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&run).unwrap();
    let started = Instant::now();
    let out = train(&config, true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole_run = started.elapsed().as_secs_f64();
    let straight = latest_networks(&run);
    // Start-up alone: the same command on the finished run loads everything and stops.
    let started = Instant::now();
    assert!(train(&config, true).output().unwrap().status.success());
    let start_up = started.elapsed().as_secs_f64();
    std::fs::rename(&run, dir.path().join("straight")).unwrap();
    // Kills land in start-up and in the first sixteenth of the steps (a step's time is mostly
    // its checkpoint write), so a run needs many of them to finish.
    let window = start_up + (whole_run - start_up).max(0.0) / 16.0;

    let mut rng = StdRng::seed_from_u64(
        std::env::var("T2I_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(11),
    );
    let mut kills = 0;
    let mut previous: Option<u64> = None;
    let mut finished = false;
    while !finished {
        let mut child = train(&config, kills >= KILLS).spawn().unwrap();
        if kills < KILLS {
            let wait = rng.random_range(0.0..window);
            std::thread::sleep(Duration::from_secs_f64(wait));
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert!(status.success(), "run ended with {status}");
                    finished = true;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills += 1;
                }
            }
        } else {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            if let Some(step) = previous {
                assert!(
                    stderr.contains(&format!("(step {step})")),
                    "the last run did not resume from step {step}: {stderr}"
                );
            }
            finished = true;
        }
        let step = latest_step(&run, &config);
        assert!(
            step >= previous,
            "the latest checkpoint went back from {previous:?} to {step:?}"
        );
        previous = step;
    }
    eprintln!(
        "{kills} kills (window {window:.2} s, start-up {start_up:.2} s); the killed run reached step {previous:?}"
    );
    assert!(
        kills >= KILLS / 2,
        "only {kills} kills before the run finished"
    );
    assert_eq!(previous, Some(STEPS));
    let resumed = latest_networks(&run);
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        assert!(a == b, "{name} differs from the uninterrupted run's");
    }
}
