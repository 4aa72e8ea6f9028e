//! `kill -9` at random moments: the `t2i` binary trains a tiny model of each family
//! (GAN-INT-CLS, StackGAN's Stage-I, AttnGAN, the DAMSM) on a CUB-layout fixture, writing a
//! checkpoint every step, and is killed with SIGKILL at random times (so also while a
//! checkpoint is being written), then resumed with `--resume`. After every kill the latest
//! checkpoint is complete and loads; the run always continues from it; and the final networks
//! hold bit for bit the parameters of an uninterrupted run. The feature-cache build is killed
//! the same way. `make test` kills each 10 times (50 in all); `T2I_KILLS=N` sets the count.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use t2i::bundle::save_damsm;
use t2i::damsm::{DamsmConfig, ImageEncoderConfig, TextEncoderConfig};
use t2i::vocab::Vocabulary;
use t2i_train::attngan::train::AttnGanTrainOptions;
use t2i_train::damsm::train::DamsmState;
use t2i_train::data::features::FeatureCache;
use t2i_train::data::fixtures::{CubFixture, write_cub_fixture};
use t2i_train::data::{CubOptions, read_cub};
use t2i_train::gan_int_cls::train::GanTrainOptions;
use t2i_train::run::adversarial::{AdversarialState, DISCRIMINATOR_PART, GENERATOR_PART};
use t2i_train::run::checkpoint::{Checkpoint, Checkpoints, parameter_values};
use t2i_train::stackgan::train::StackGanTrainOptions;

mod common;
use common::{INCEPTION, shared_dir, shared_file};

/// Every parameter of a checkpoint's networks, by name, as raw bytes.
type Parameters = Vec<(String, Vec<u8>)>;

/// A family under test: its config (for a GAN, written by [`gan_config`] from its model, the
/// keys of its `[train]` section beyond [`GAN_TRAIN`] and its own sections), the arguments `t2i
/// train` needs besides the config, where its checkpoints go, and how to read a checkpoint's
/// step and networks (an error when they do not load).
struct Family {
    name: &'static str,
    config: Config,

    train_args: &'static [&'static str],
    checkpoints: &'static str,
    read: fn(&Checkpoint) -> anyhow::Result<(u64, Parameters)>,
}

enum Config {
    Gan {
        model: &'static str,
        train: &'static str,
        sections: &'static str,
    },
    /// The whole config after the dataset's keys.
    Damsm(&'static str),
}

/// The `[train]` keys every GAN config here has.
const GAN_TRAIN: &str = "batch_size = 4
max_epoch = 100
lr = 0.0002
checkpoint_steps = 1
sample_steps = 0
seed = 3
heldout_species = 1
";

/// A GAN config after the dataset's keys: tiny networks, a checkpoint every step.
fn gan_config(model: &str, train: &str, sections: &str) -> String {
    format!(
        r#"text_encoder = "damsm.safetensors"
prepared_dir = "prepared"
captions_per_image = 2
model = "{model}"

[gan]
ngf = 8
ndf = 4
nz = 8
nt = 4

[train]
{GAN_TRAIN}{train}{sections}
[eval]
inception = "INCEPTION"
features_cache = "features"
damsm = "damsm.safetensors"
"#
    )
}

/// A GAN checkpoint's step and every parameter of its generator and discriminator (the
/// discriminator's names marked), the networks initialised by `networks` from its options.
fn read_gan<O: DeserializeOwned, G: Module, D: Module>(
    checkpoint: &Checkpoint,
    networks: impl Fn(&O, &Device) -> (G, D),
) -> anyhow::Result<(u64, Parameters)> {
    let state: AdversarialState<O> = checkpoint.state()?;
    let (generator, discriminator) = networks(&state.options, &Device::flex());
    let mut values = parameter_values(&checkpoint.module(generator, GENERATOR_PART)?)?;
    let discriminator = parameter_values(&checkpoint.module(discriminator, DISCRIMINATOR_PART)?)?;
    values.extend(
        discriminator
            .into_iter()
            .map(|(name, v)| (format!("discriminator {name}"), v)),
    );
    Ok((state.step, values))
}

const GAN_INT_CLS: Family = Family {
    name: "GAN-INT-CLS",
    config: Config::Gan {
        model: "gan_int_cls",
        train: "lr_decay_every = 100\ninterp_weight = 1.0\nbeta = 0.5\n",
        sections: "",
    },
    train_args: &[],
    checkpoints: "run/checkpoints",
    read: |checkpoint| {
        read_gan(checkpoint, |options: &GanTrainOptions, device| {
            let model = &options.model;
            (
                model.init_generator(device),
                model.init_discriminator(device),
            )
        })
    },
};

const STACKGAN_STAGE1: Family = Family {
    name: "StackGAN Stage-I",
    config: Config::Gan {
        model: "stackgan",
        train: "lr_decay_every = 100\nkl_weight = 1.0\n",
        sections: "\n[stage2]\nngf = 8\nndf = 4\nr_num = 1\nbatch_size = 4\nmax_epoch = 100\nprepared_dir = \"prepared256\"\n",
    },
    train_args: &["--stage", "1"],
    checkpoints: "run/stage1/checkpoints",
    read: |checkpoint| {
        read_gan(checkpoint, |options: &StackGanTrainOptions, device| {
            let model = &options.model;
            let generator = model.init_stage1_generator(device);
            (generator, model.init_stage1_discriminator(device))
        })
    },
};

const ATTNGAN: Family = Family {
    name: "AttnGAN",
    // 64 px, without the DAMSM term.
    config: Config::Gan {
        model: "attngan",
        train: "kl_weight = 1.0\n",
        sections: "\n[attngan]\nbranch_num = 1\nr_num = 1\ndamsm_lambda = 0.0\n",
    },
    train_args: &[],
    checkpoints: "run/checkpoints",
    read: |checkpoint| {
        read_gan(checkpoint, |options: &AttnGanTrainOptions, device| {
            let model = &options.model;
            (
                model.init_generator(device),
                model.init_discriminators(device),
            )
        })
    },
};

const DAMSM: Family = Family {
    name: "DAMSM",
    config: Config::Damsm(
        r#"model = "damsm"

[features]
inception = "INCEPTION"
cache_dir = "features"
batch_size = 4

[train]
batch_size = 4
max_epoch = 100
snapshot_interval = 50
encoder_lr = 0.002
rnn_grad_clip = 0.25
seed = 3
heldout_species = 1
checkpoint_steps = 1

[train.smooth]
gamma1 = 4.0
gamma2 = 5.0
gamma3 = 10.0

[text]
embedding_dim = 8
captions_per_image = 2
words_num = 18
"#,
    ),
    train_args: &[],
    checkpoints: "run/checkpoints",
    read: |checkpoint| {
        let state: DamsmState = checkpoint.state()?;
        let damsm = checkpoint.module(state.options.model.init(&Device::flex()), "damsm.bpk")?;
        Ok((state.step, parameter_values(&damsm)?))
    },
};

/// The tests take turns: each times its runs and sets its kills' moments from them, which other
/// tests' runs on the same cores would skew.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Steps of every run; a checkpoint is written after each.
const STEPS: u64 = 60;
/// SIGKILLs per family and for the feature build: `T2I_KILLS`, else 10.
fn kills_wanted() -> usize {
    match std::env::var("T2I_KILLS") {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("T2I_KILLS={n:?} is not a whole number")),
        Err(_) => 10,
    }
}

/// A CUB-layout fixture, a tiny DAMSM bundle built on its captions, and a config of `family`
/// that checkpoints every step; returns the config's path.
fn setup(dir: &Path, family: &Family) -> PathBuf {
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
    let shared = shared_dir().join("models");
    let own = match family.config {
        Config::Gan {
            model,
            train,
            sections,
        } => gan_config(model, train, sections),
        Config::Damsm(config) => config.to_string(),
    };
    let config = format!(
        "config_name = \"kill\"\ndataset_name = \"birds\"\ndata_dir = \"cub\"\noutput_dir = \"run\"\n{own}"
    )
    .replace(
        "INCEPTION",
        &shared.join("inception-2015-12-05.safetensors").display().to_string(),
    );
    std::fs::write(dir.join("kill.toml"), config).unwrap();
    dir.join("kill.toml")
}

/// `t2i train --resume` on `config` of `family`; its messages kept only when `keep_messages`
/// (a killed run's would fill a pipe nobody reads).
fn train(config: &Path, family: &Family, keep_messages: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_t2i"));
    command
        .args(["train", "--config"])
        .arg(config)
        .args(family.train_args)
        .args(["--resume", "--max-steps", &STEPS.to_string()])
        .stdout(Stdio::null())
        .stderr(if keep_messages {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    command
}

/// The latest checkpoint's step and networks in `checkpoints`, after checking that it is
/// complete: its state and its networks load. `None` before the first checkpoint.
fn latest(checkpoints: &Path, family: &Family) -> Option<(u64, Parameters)> {
    let checkpoint = Checkpoints::new(checkpoints, 2)
        .latest()
        .unwrap_or_else(|e| panic!("after a kill the latest checkpoint is unreadable: {e:#}"))?;
    let read = (family.read)(&checkpoint);
    Some(read.unwrap_or_else(|e| {
        panic!(
            "{}: {} checkpoint unreadable: {e:#}",
            checkpoint.dir.display(),
            family.name
        )
    }))
}

/// Runs `command` to the end; it must succeed. Returns its messages.
fn succeeds(mut command: Command) -> String {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn gan_int_cls_killed_at_random_resumes_to_the_uninterrupted_result() {
    killed_at_random_resumes_to_the_uninterrupted_result(&GAN_INT_CLS);
}

#[test]
fn stackgan_stage1_killed_at_random_resumes_to_the_uninterrupted_result() {
    killed_at_random_resumes_to_the_uninterrupted_result(&STACKGAN_STAGE1);
}

#[test]
fn attngan_killed_at_random_resumes_to_the_uninterrupted_result() {
    killed_at_random_resumes_to_the_uninterrupted_result(&ATTNGAN);
}

/// Whether `../shared/models` has the Inception weights the DAMSM's features need.
fn have_inception() -> bool {
    shared_file(INCEPTION, "the kills of runs that need Inception").is_some()
}

/// The DAMSM trains on the fixture's Inception features, built (uninterrupted) by the first run.
#[test]
fn damsm_killed_at_random_resumes_to_the_uninterrupted_result() {
    if have_inception() {
        killed_at_random_resumes_to_the_uninterrupted_result(&DAMSM);
    }
}

/// `t2i features` killed at random: after every kill the cache opens and loads (its index
/// names only complete shards), and the build that finishes holds the features of an
/// uninterrupted build. The fixture's 16 images fill one shard (256 images), so a kill loses
/// the build in progress and the resumed one starts it again.
#[test]
fn feature_cache_build_killed_at_random_resumes_to_the_uninterrupted_result() {
    if !have_inception() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = kills_wanted();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &DAMSM);
    let cache = dir.path().join("features");
    let build = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_t2i"));
        command
            .args(["features", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let started = Instant::now();
    succeeds(build());
    let window = started.elapsed().as_secs_f64();
    let straight = FeatureCache::open(&cache).unwrap().load_all().unwrap();
    std::fs::remove_dir_all(&cache).unwrap();

    let same_as_straight = |cache: &Path| {
        let built = FeatureCache::open(cache).unwrap().load_all().unwrap();
        assert_eq!(built.keys, straight.keys);
        assert!(built.pool3 == straight.pool3, "pool3 features differ");
        assert!(built.mixed_7 == straight.mixed_7, "mixed_7 features differ");
    };

    // A build that ends before its kill is checked and removed, so the next one is killed in
    // another moment of a whole build (the one shard means a killed build starts again).
    let mut rng = StdRng::seed_from_u64(13);
    let (mut kills, mut finished) = (0, 0);
    while kills < wanted && finished < wanted {
        let mut child = build().spawn().unwrap();
        std::thread::sleep(Duration::from_secs_f64(rng.random_range(0.0..window)));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the build ended with {status}");
            same_as_straight(&cache);
            std::fs::remove_dir_all(&cache).unwrap();
            finished += 1;
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if cache.join("index.json").exists() {
            let opened = FeatureCache::open(&cache).and_then(|c| c.load_all());
            opened
                .unwrap_or_else(|e| panic!("after a kill the feature cache is unreadable: {e:#}"));
        }
    }
    succeeds(build());
    eprintln!("feature cache: {kills} kills, {finished} builds ended first (window {window:.2} s)");
    assert_eq!(kills, wanted, "{finished} builds ended before their kill");
    same_as_straight(&cache);
}

fn killed_at_random_resumes_to_the_uninterrupted_result(family: &Family) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = kills_wanted();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), family);
    let run = dir.path().join("run");
    let checkpoints = dir.path().join(family.checkpoints);

    // A first run builds the prepared set (GANs) or the feature cache (DAMSM) the runs below
    // share; then the uninterrupted run.
    if let Config::Damsm(_) = family.config {
        let mut features = Command::new(env!("CARGO_BIN_EXE_t2i"));
        features.args(["features", "--config"]).arg(&config);
        succeeds(features);
    }
    succeeds(train(&config, family, true));
    std::fs::remove_dir_all(&run).unwrap();
    let started = Instant::now();
    succeeds(train(&config, family, true));
    let whole_run = started.elapsed().as_secs_f64();
    let (_, straight) = latest(&checkpoints, family).expect("a finished run has a checkpoint");
    // Start-up alone: the same command on the finished run loads everything and stops.
    let started = Instant::now();
    succeeds(train(&config, family, true));
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
        let mut child = train(&config, family, kills >= wanted).spawn().unwrap();
        if kills < wanted {
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
        let step = latest(&checkpoints, family).map(|(step, _)| step);
        assert!(
            step >= previous,
            "the latest checkpoint went back from {previous:?} to {step:?}"
        );
        previous = step;
    }
    eprintln!(
        "{}: {kills} kills (window {window:.2} s, start-up {start_up:.2} s); the killed run reached step {previous:?}",
        family.name
    );
    assert!(
        kills >= wanted / 2,
        "only {kills} kills before the run finished"
    );
    assert_eq!(previous, Some(STEPS));
    let (_, resumed) = latest(&checkpoints, family).unwrap();
    assert_eq!(straight.len(), resumed.len());
    for ((name, a), (_, b)) in straight.iter().zip(&resumed) {
        assert!(a == b, "{name} differs from the uninterrupted run's");
    }
}
