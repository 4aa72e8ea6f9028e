//! Images per second of one training step of each model, on the backend this build runs: the
//! trainers' own steps (`GanStep::step` of each family's pair, losses read back as training
//! reads them), at the papers' sizes. `tools/gpu_bench.sh` runs it with every build it carries
//! and beside PyTorch (`tools/gpu_bench_pytorch.py`, the same networks) on a lent GPU.
//!
//! ```sh
//! cargo run --release -p t2i-train --features gpu --example gpu_bench -- --backend wgpu \
//!     [--cases gan_int_cls:64,stackgan1:64,stackgan2:32,attngan:20] [--warmup 3] [--steps 10] \
//!     [--small] [--inception FILE | --inception-shapes FILE] [--damsm-image-size 299] [--json FILE]
//! ```
//!
//! Cases are `NAME:BATCH`: `gan_int_cls` (`GanIntClsConfig::paper(256)`), `stackgan1` and
//! `stackgan2` (`StackGanConfig::paper(256)`: Stage-I at 64 px; Stage-II at 256 px over a frozen
//! Stage-I), `attngan` (`AttnGanConfig::birds()`, three stages to 256 px, with the DAMSM term at
//! the authors' lambda 5 and Inception at 299 px, or `--damsm-image-size`). `--small` takes the
//! project's small widths instead. Weights are freshly initialised and the data are coloured shapes with their
//! captions, embedded by a freshly initialised DAMSM text encoder: neither changes the cost.
//! AttnGAN's Inception-v3 is the FID network from `--inception` (default
//! `../shared/models/inception-2015-12-05.safetensors`), or random weights of its shapes from
//! `--inception-shapes` (the file's JSON header, what a GPU machine gets instead of 87 MB).
//!
//! Each case runs `--warmup` steps first (burn's autotune measures each new shape's kernels
//! then; they are not timed), then `--steps` steps timed together, their losses read back once
//! at the end as the training loop reads them every few steps, and reports the mean. A case that
//! fails is reported with its error and the others go on. The JSON is one object per case.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use t2i::attngan::AttnGanConfig;
use t2i::damsm::ImageEncoderConfig;
use t2i::gan_int_cls::GanIntClsConfig;
use t2i::inception::Inception;
use t2i::stackgan::StackGanConfig;
use t2i_train::attngan::train::{AttnGanFrozen, AttnGanPair, AttnGanTrainOptions};
use t2i_train::data::gan_set::shapes_gan_set;
use t2i_train::device::{Backend, select};
use t2i_train::gan_int_cls::train::{GanIntClsLosses, GanIntClsPair, GanTrainOptions};
use t2i_train::run::adversarial::{GanStep, LossValues, RunOptions, read_back};
use t2i_train::run::recipe::Recipe;
use t2i_train::stackgan::train::{
    FrozenStageI, StackGanTrainOptions, Stage, StageIIPair, StageIPair, StageOptions,
};

use burn::prelude::*;

struct Args {
    backend: Backend,
    cases: Vec<(String, usize)>,
    warmup: usize,
    steps: usize,
    small: bool,
    inception: PathBuf,
    inception_shapes: Option<PathBuf>,
    damsm_image_size: usize,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        backend: Backend::Flex,
        cases: Vec::new(),
        warmup: 3,
        steps: 10,
        small: false,
        inception: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/models/inception-2015-12-05.safetensors"),
        inception_shapes: None,
        damsm_image_size: t2i::inception::INPUT_SIZE,
        json: None,
    };
    let mut cases = "gan_int_cls:64,stackgan1:64,stackgan2:32,attngan:20".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--small" {
            args.small = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let count = |v: &str| -> Result<usize> {
            v.parse()
                .with_context(|| format!("{flag} takes a count, got {v:?}"))
        };
        match flag.as_str() {
            "--backend" => {
                args.backend = <Backend as clap::ValueEnum>::from_str(&value, true)
                    .map_err(|e| anyhow::anyhow!("--backend: {e}"))?
            }
            "--cases" => cases = value,
            "--warmup" => args.warmup = count(&value)?,
            "--steps" => args.steps = count(&value)?.max(1),
            "--inception" => args.inception = value.into(),
            "--inception-shapes" => args.inception_shapes = Some(value.into()),
            "--damsm-image-size" => args.damsm_image_size = count(&value)?,
            "--json" => args.json = Some(value.into()),
            _ => bail!("unknown option {flag} (see the file's documentation)"),
        }
    }
    for case in cases.split(',').filter(|c| !c.is_empty()) {
        let (name, batch) = case
            .split_once(':')
            .with_context(|| format!("case {case:?}: give NAME:BATCH"))?;
        if !["gan_int_cls", "stackgan1", "stackgan2", "attngan"].contains(&name) {
            bail!("case {case:?}: NAME is gan_int_cls, stackgan1, stackgan2 or attngan");
        }
        let batch: usize = batch
            .parse()
            .ok()
            .filter(|&b| b >= 2)
            .with_context(|| format!("case {case:?}: BATCH must be a number of at least 2"))?;
        args.cases.push((name.to_string(), batch));
    }
    Ok(args)
}

/// One case's result, as the JSON and the table give it.
#[derive(Serialize)]
struct CaseResult {
    case: String,
    batch: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    images_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Milliseconds per step of a pair: `warmup` untimed steps, each read back, then `steps` steps
/// timed together, their losses read back once at the end as the training loop reads them
/// (every few steps), so the device's queue is not drained between steps.
fn time_steps<P: GanStep>(mut pair: P, rows: &[usize], lr: f64, args: &Args) -> Result<f64> {
    let check = |losses: Vec<LossValues>, first: usize| -> Result<()> {
        for (i, step) in losses.iter().enumerate() {
            if let Some((name, value)) = step.iter().find(|(_, v)| !v.is_finite()) {
                bail!("step {}: {name} is {value}", first + i);
            }
        }
        Ok(())
    };
    for step in 0..args.warmup {
        let mut rng = StdRng::seed_from_u64(step as u64);
        let (next, losses) = pair.step(rows, &mut rng, lr)?;
        pair = next;
        check(read_back(&[losses])?, step)?;
    }
    let started = Instant::now();
    let mut timed = Vec::new();
    for step in args.warmup..args.warmup + args.steps {
        let mut rng = StdRng::seed_from_u64(step as u64);
        let (next, losses) = pair.step(rows, &mut rng, lr)?;
        pair = next;
        timed.push(losses);
    }
    let values = read_back(&timed)?;
    let ms = started.elapsed().as_secs_f64() * 1e3 / args.steps as f64;
    check(values, args.warmup)?;
    Ok(ms)
}

/// Inception-v3 with random weights of the shapes a safetensors header (its JSON, as
/// `tools/gpu_bench.sh` extracts it) gives: batch-norm statistics 0 and 1, convolution weights
/// scaled by their fan-in, so activations stay finite.
fn random_inception(header: &Path, device: &Device) -> Result<Inception> {
    let text = std::fs::read_to_string(header)
        .with_context(|| format!("cannot read {}", header.display()))?;
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a safetensors JSON header", header.display()))?;
    let mut rng = StdRng::seed_from_u64(0);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, entry) in entries.iter().filter(|(name, _)| *name != "__metadata__") {
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())
            .with_context(|| format!("{}: {name} has no shape", header.display()))?;
        let len: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let values: Vec<f32> = match name.rsplit('.').next() {
            Some("var") => vec![1.0; len],
            Some("mean") | Some("beta") | Some("bias") => vec![0.0; len],
            _ => (0..len)
                .map(|_| rng.random_range(-1.0f32..1.0) * (3.0 / fan_in as f32).sqrt())
                .collect(),
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name.clone(), shape, bytes));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, None)?;
    Ok(Inception::load_from_bytes(
        &bytes,
        &header.display().to_string(),
        device,
    )?)
}

/// Milliseconds per step of one case.
fn run_case(name: &str, batch: usize, args: &Args, device: &Device) -> Result<f64> {
    let size = match name {
        "stackgan2" | "attngan" => 256,
        _ => 64,
    };
    // Twice the batch of images, so the mismatched captions come from other images.
    let (data, encoder) = shapes_gan_set(2 * batch, size, device);
    let train_device = device.clone().autodiff();
    let rows: Vec<usize> = (0..batch).collect();
    let run = RunOptions::new(batch, 600, 0);
    let (lr, recipe) = (2e-4, Recipe::papers());
    match name {
        "gan_int_cls" => {
            let model = if args.small {
                GanIntClsConfig::small(data.text_dim)
            } else {
                GanIntClsConfig::paper(data.text_dim)
            };
            let options = GanTrainOptions {
                model,
                run,
                lr,
                lr_decay_every: 100,
                family: GanIntClsLosses {
                    interp_weight: 1.0,
                    beta: 0.5,
                },
                recipe,
            };
            let pair = GanIntClsPair::start(&options, &data, &train_device, (), |o, d| {
                (o.model.init_generator(d), o.model.init_discriminator(d))
            });
            time_steps(pair, &rows, lr, args)
        }
        "stackgan1" | "stackgan2" => {
            let model = if args.small {
                StackGanConfig::small(data.text_dim)
            } else {
                StackGanConfig::paper(data.text_dim)
            };
            let stage = if name == "stackgan1" {
                Stage::One
            } else {
                Stage::Two
            };
            let options = StackGanTrainOptions {
                model,
                run,
                lr,
                lr_decay_every: 100,
                family: StageOptions {
                    stage,
                    kl_weight: 2.0,
                },
                recipe,
            };
            if stage == Stage::One {
                let pair = StageIPair::start(&options, &data, &train_device, (), |o, d| {
                    (
                        o.model.init_stage1_generator(d),
                        o.model.init_stage1_discriminator(d),
                    )
                });
                time_steps(pair, &rows, lr, args)
            } else {
                let stage1 = FrozenStageI(options.model.init_stage1_generator(device));
                let pair = StageIIPair::start(&options, &data, &train_device, stage1, |o, d| {
                    (
                        o.model.init_stage2_generator(d),
                        o.model.init_stage2_discriminator(d),
                    )
                });
                time_steps(pair, &rows, lr, args)
            }
        }
        _ => {
            let inception = match &args.inception_shapes {
                Some(header) => random_inception(header, device)?,
                None => Inception::load(&args.inception, device).with_context(|| {
                    format!(
                        "loading {} (or give --inception-shapes)",
                        args.inception.display()
                    )
                })?,
            };
            let frozen = AttnGanFrozen::new(
                encoder,
                Some((inception, ImageEncoderConfig::new().init(device))),
            );
            let model = if args.small {
                AttnGanConfig::small()
            } else {
                AttnGanConfig::birds()
            };
            let mut options = AttnGanTrainOptions::birds(model);
            options.run.batch_size = batch;
            options.damsm_image_size = args.damsm_image_size;
            options.validate().map_err(anyhow::Error::msg)?;
            let pair = AttnGanPair::new(&options, &frozen, &data, &train_device);
            time_steps(pair, &rows, options.lr_g, args)
        }
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let device = select(args.backend)?;
    let sizes = if args.small { "small" } else { "paper" };
    println!(
        "one training step per case, {sizes} sizes, backend {}: mean of {} steps timed together after {} untimed",
        args.backend, args.steps, args.warmup
    );
    println!("| case | batch | images/s | ms/step |");
    println!("|---|---|---|---|");
    let mut results = Vec::new();
    for (name, batch) in &args.cases {
        let result = match run_case(name, *batch, &args, &device) {
            Ok(ms) => CaseResult {
                case: name.clone(),
                batch: *batch,
                images_per_s: Some(*batch as f64 / ms * 1e3),
                ms_per_step: Some(ms),
                error: None,
            },
            Err(e) => CaseResult {
                case: name.clone(),
                batch: *batch,
                images_per_s: None,
                ms_per_step: None,
                error: Some(format!("{e:#}")),
            },
        };
        match (&result.images_per_s, &result.error) {
            (Some(rate), _) => println!(
                "| {name} | {batch} | {rate:.1} | {:.1} |",
                result.ms_per_step.unwrap_or(f64::NAN)
            ),
            (None, Some(e)) => println!("| {name} | {batch} | failed: {e} | |"),
            (None, None) => {}
        }
        results.push(result);
        // Written after every case, so a run cut off by its time limit keeps what it measured.
        if let Some(path) = &args.json {
            let report = serde_json::json!({
                "framework": "burn",
                "backend": args.backend.to_string(),
                "sizes": sizes,
                "warmup": args.warmup,
                "steps": args.steps,
                "cases": results,
            });
            std::fs::write(path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if results.iter().all(|r| r.error.is_some()) {
        bail!("every case failed");
    }
    Ok(())
}
