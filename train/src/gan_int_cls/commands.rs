//! The GAN-INT-CLS commands end to end: config -> prepared set (images + frozen text
//! embeddings) -> training with sample grids and loss curves -> portable weights. `main.rs`
//! only parses arguments and calls these.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use t2i::bundle::{GanBundle, GanIntClsWeights, load_bundle};
use t2i::gan_int_cls::{Discriminator, GanIntClsConfig, Generator};

use crate::config::GanTrainConfig;
use crate::damsm::commands::text_side;
use crate::data::prepared::prepare;
use crate::eval::GanEvaluation;
use crate::family::{GanFamily, TrainRequest, latest_bundle};
use crate::gan_int_cls::train::{GanIntClsLosses, GanState, GanTrainOptions, train_gan_int_cls};
use crate::generate::{GRID_CAPTIONS, sample_grid};
use crate::run::adversarial::{AVERAGE_PART, DISCRIMINATOR_PART, GENERATOR_PART, GanNetworks};
use crate::run::checkpoint::{
    Checkpoints, load_module_f16, module_f16_bytes, parameter_values, write_atomic,
};
use crate::run::folder::RunFolder;
use crate::run::recipe::WeightAverage;

/// Noise draws per caption in a sample grid.
const GRID_SEEDS: u64 = 4;
/// Names of the portable (f16) weight files.
pub const GENERATOR_F16: &str = "generator.f16.safetensors";
pub const DISCRIMINATOR_F16: &str = "discriminator.f16.safetensors";
/// The moving average of G's weights (the EMA recipe's), when the run keeps one.
pub const AVERAGE_F16: &str = "generator_average.f16.safetensors";

/// The model sizes a config asks for, for embeddings of `text_dim` values.
pub fn model_config(config: &GanTrainConfig, text_dim: usize) -> GanIntClsConfig {
    GanIntClsConfig::new()
        .with_text_dim(text_dim)
        .with_projected_text_dim(config.gan.nt)
        .with_noise_dim(config.gan.nz)
        .with_ngf(config.gan.ngf)
        .with_ndf(config.gan.ndf)
}

/// Training options of a config.
pub fn training_options(config: &GanTrainConfig, text_dim: usize) -> GanTrainOptions {
    let t = &config.train;
    GanTrainOptions {
        model: model_config(config, text_dim),
        run: t.run_options(),
        lr: t.lr,
        lr_decay_every: t.lr_decay_epochs(),
        family: GanIntClsLosses {
            interp_weight: t.interp_weight,
            beta: t.beta,
        },
        recipe: config.recipe.clone(),
    }
}

/// `t2i train` for GAN-INT-CLS. Refuses to overwrite an existing run unless `resume`;
/// `init_from` starts a new run from portable weights (see [`write_portable`]).
fn train(config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
    let device = request.device;
    let checkpoints = Checkpoints::of_run(&config.output_dir);
    let existing = checkpoints.latest_for_training(request.resume, &config.output_dir)?;
    let prepared = prepare(config, device)?;
    let (data, info) = prepared.into_gan_set();
    eprintln!("{}", info.summary(&config.text_encoder));
    let mut options = training_options(config, info.text_dim);
    request.limit(&mut options.run);
    eprintln!(
        "generator {:.2} M parameters, discriminator {:.2} M",
        options.model.init_generator(device).num_params() as f64 / 1e6,
        options.model.init_discriminator(device).num_params() as f64 / 1e6
    );
    if let Some(dir) = request.init_from {
        if existing.is_some() {
            bail!("--init-from starts a new run, but the output_dir already holds a checkpoint");
        }
        warm_start(&options, dir, &checkpoints, device)?;
    }
    let folder = RunFolder::create(&config.output_dir, config)?;
    let text = text_side(&config.text_encoder, device)?;
    let grid_captions = &info.sample_captions[..info.sample_captions.len().min(GRID_CAPTIONS)];
    let model = options.model.clone();
    let write = |step: u64, generator: &Generator| -> Result<()> {
        let bundle = text
            .clone()
            .bundle::<GanIntClsWeights>(generator.clone(), model.clone());
        let device = &generator.devices()[0];
        let grid = sample_grid(&bundle, grid_captions, GRID_SEEDS, 1, 2, device)?;
        folder.save_sample(&grid, "step", step)?;
        folder.write_losses(&["loss_d", "loss_g"], "GAN-INT-CLS losses")
    };
    let hook = folder.sample_hook(&write);
    let place = folder.place(&checkpoints, request, &hook);
    let run = train_gan_int_cls(&options, &data, &place)?;
    folder.report_end("", run.interrupted, run.steps);
    Ok(())
}

/// Writes the latest checkpoint's generator, its weight average (when the run keeps one) and
/// discriminator as f16 safetensors (plus `step.json`) into `dir`: a sixth of a checkpoint's size (44 MB vs 261 MB at paper size), for carrying a run between
/// machines. Adam's moments are not kept.
pub fn write_portable(config: &GanTrainConfig, dir: &Path, device: &Device) -> Result<()> {
    let checkpoints = Checkpoints::of_run(&config.output_dir);
    let checkpoint = checkpoints.latest_required(&config.output_dir)?;
    let state: GanState = checkpoint.state()?;
    let generator =
        checkpoint.module(state.options.model.init_generator(device), GENERATOR_PART)?;
    let discriminator = checkpoint.module(
        state.options.model.init_discriminator(device),
        DISCRIMINATOR_PART,
    )?;
    let average = if checkpoint.dir.join(AVERAGE_PART).is_file() {
        Some(checkpoint.module(state.options.model.init_generator(device), AVERAGE_PART)?)
    } else {
        None
    };
    write_portable_files(dir, &generator, average.as_ref(), &discriminator, &state)?;
    eprintln!(
        "portable weights of step {} written to {}",
        state.step,
        dir.display()
    );
    Ok(())
}

/// Portable weights from a GAN-INT-CLS bundle: its generator, and a discriminator initialised
/// afresh from the config's seed (bundles ship no discriminator). `train --init-from` then
/// continues a shipped model on any machine; `step` is the step the new run counts from (the
/// bundle's own training steps, where known, keep the learning-rate schedule in place).
pub fn write_portable_from_bundle(
    config: &GanTrainConfig,
    bundle: &Path,
    step: u64,
    dir: &Path,
    device: &Device,
) -> Result<()> {
    let bytes =
        std::fs::read(bundle).with_context(|| format!("cannot read {}", bundle.display()))?;
    let loaded = load_bundle::<GanIntClsWeights>(&bytes, device)
        .with_context(|| format!("{}: not a GAN-INT-CLS bundle", bundle.display()))?;
    let mut options = training_options(config, loaded.gan_config.text_dim);
    if options.model.to_string() != loaded.gan_config.to_string() {
        bail!(
            "{}: the bundle's generator ({}) is not the config's model ({})",
            bundle.display(),
            loaded.gan_config,
            options.model
        );
    }
    // The prepared set's embeddings come from the config's text encoder: the generator must
    // have been trained on the same one.
    let text = text_side(&config.text_encoder, device)?;
    if !close_weights(&text.encoder, &loaded.weights.text_encoder)? {
        bail!(
            "{}: its text encoder is not the config's {}; the generator was trained on other sentence vectors",
            bundle.display(),
            config.text_encoder.display()
        );
    }
    options.run.max_steps = None;
    device.seed(options.run.seed);
    let discriminator = options.model.init_discriminator(device);
    let state = GanState { step, options };
    write_portable_files(dir, &loaded.weights.generator, None, &discriminator, &state)?;
    eprintln!(
        "portable weights from {} (generator; a new discriminator) at step {step} written to {}",
        bundle.display(),
        dir.display()
    );
    Ok(())
}

/// The portable files in `dir`: both networks and G's weight average, if any, as f16
/// safetensors, and `step.json`. An average left from an earlier write is removed when there
/// is none now, so the folder never mixes two runs.
fn write_portable_files(
    dir: &Path,
    generator: &Generator,
    average: Option<&Generator>,
    discriminator: &Discriminator,
    state: &GanState,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(&dir.join(GENERATOR_F16), &module_f16_bytes(generator)?)?;
    match average {
        Some(average) => write_atomic(&dir.join(AVERAGE_F16), &module_f16_bytes(average)?)?,
        None if dir.join(AVERAGE_F16).exists() => std::fs::remove_file(dir.join(AVERAGE_F16))
            .with_context(|| {
                format!("cannot remove the stale {AVERAGE_F16} in {}", dir.display())
            })?,
        None => {}
    }
    write_atomic(
        &dir.join(DISCRIMINATOR_F16),
        &module_f16_bytes(discriminator)?,
    )?;
    write_atomic(
        &dir.join("step.json"),
        serde_json::to_string(state)?.as_bytes(),
    )
}

/// Whether two modules hold the same weights up to a bundle's quantization: every f32 tensor of
/// the same name within 1% of its largest magnitude (int8 rounds to 1/254 of it).
fn close_weights<M: Module>(a: &M, b: &M) -> Result<bool> {
    let floats = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let (a, b) = (parameter_values(a)?, parameter_values(b)?);
    Ok(a.len() == b.len()
        && a.iter().zip(&b).all(|((name_a, x), (name_b, y))| {
            let (x, y) = (floats(x), floats(y));
            let largest = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            name_a == name_b
                && x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|(u, v)| (u - v).abs() <= largest / 100.0)
        }))
}

/// Starts a run at the step of portable weights (with their weight average, when the config's
/// recipe keeps one), with fresh optimizers.
fn warm_start(
    options: &GanTrainOptions,
    dir: &Path,
    checkpoints: &Checkpoints,
    device: &Device,
) -> Result<()> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let state: GanState = serde_json::from_slice(&read("step.json")?)
        .with_context(|| format!("{}: invalid step.json", dir.display()))?;
    if state.options.model.to_string() != options.model.to_string() {
        bail!(
            "{}: the weights are of another model size than the config's",
            dir.display()
        );
    }
    let train_device = device.clone().autodiff();
    let generator = load_module_f16(
        options.model.init_generator(&train_device),
        &read(GENERATOR_F16)?,
        GENERATOR_F16,
    )?;
    let discriminator = load_module_f16(
        options.model.init_discriminator(&train_device),
        &read(DISCRIMINATOR_F16)?,
        DISCRIMINATOR_F16,
    )?;
    // The run's weight average continues from the carried one; without one (or without the
    // EMA recipe) restoring starts it at the generator, as a fresh run would.
    let mut networks = GanNetworks::new(generator, discriminator);
    if options.recipe.ema_decay > 0.0 && dir.join(AVERAGE_F16).is_file() {
        let average = load_module_f16(
            options.model.init_generator(device),
            &read(AVERAGE_F16)?,
            AVERAGE_F16,
        )?;
        networks.average = Some(WeightAverage {
            average,
            decay: options.recipe.ema_decay,
            steps: state.step,
        });
    }
    checkpoints.save(
        state.step,
        &networks.parts()?,
        &GanState {
            step: state.step,
            options: options.clone(),
        },
    )?;
    eprintln!(
        "starting from the weights of step {} in {}",
        state.step,
        dir.display()
    );
    Ok(())
}

/// GAN-INT-CLS as the command line drives it.
pub struct GanIntCls;

impl GanFamily for GanIntCls {
    fn name(&self) -> &'static str {
        "GAN-INT-CLS"
    }

    fn train(&self, config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
        train(config, request)
    }

    fn takes_init_from(&self) -> bool {
        true
    }

    fn latest(&self, config: &GanTrainConfig, device: &Device) -> Result<(GanBundle, String)> {
        latest_bundle::<GanIntClsWeights, GanTrainOptions>(config, device)
    }

    fn report(&self, stages: Vec<GanEvaluation>) -> Result<serde_json::Value> {
        let [report] = <[GanEvaluation; 1]>::try_from(stages)
            .map_err(|_| anyhow::anyhow!("a GAN-INT-CLS bundle draws one stage"))?;
        Ok(serde_json::to_value(report)?)
    }
}
