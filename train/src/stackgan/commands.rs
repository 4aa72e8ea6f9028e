//! The StackGAN commands end to end: prepared sets at 64 px (Stage-I) and 256 px (Stage-II),
//! training one stage at a time with sample grids (Stage-I and Stage-II side by side) and loss
//! curves, export of both generators in one bundle, and evaluation at 64 and 256 px. Prepared
//! sets, grids and evaluation are the shared ones of [`crate::data`], [`crate::run`] and
//! [`crate::eval`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use t2i::bundle::{GanBundle, StackGanWeights};
use t2i::stackgan::{StackGanConfig, StackGanGenerators, StageIGenerator};

use crate::config::{GanTrainConfig, Stage2Section};
use crate::damsm::commands::text_side;
use crate::data::prepared::{PreparedSet, prepare, prepare_at};
use crate::eval::GanEvaluation;
use crate::family::{GanFamily, TrainRequest};
use crate::generate::{GRID_CAPTIONS, sample_grid};
use crate::run::adversarial::{inference_generator_part, latest_generator};
use crate::run::checkpoint::Checkpoints;
use crate::run::folder::RunFolder;
use crate::stackgan::train::{
    STAGE1_PART, StackGanState, StackGanTrainOptions, Stage, StageOptions, train_stage1,
    train_stage2,
};

/// Noise draws per caption in a sample grid.
const GRID_SEEDS: u64 = 4;

/// The `[stage2]` section of a StackGAN config.
fn stage2_section(config: &GanTrainConfig) -> Result<&Stage2Section> {
    config
        .stage2
        .as_ref()
        .context("a StackGAN config needs a [stage2] section")
}

/// Where a stage's run lives: `output_dir/stage1`, `output_dir/stage2`.
pub fn stage_dir(config: &GanTrainConfig, stage: Stage) -> PathBuf {
    config.output_dir.join(format!("stage{}", stage.number()))
}

fn checkpoints(config: &GanTrainConfig, stage: Stage) -> Checkpoints {
    Checkpoints::of_run(&stage_dir(config, stage))
}

/// The network sizes a config asks for, for embeddings of `text_dim` values.
pub fn model_config(config: &GanTrainConfig, text_dim: usize) -> Result<StackGanConfig> {
    let stage2 = stage2_section(config)?;
    let model = StackGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(config.gan.nt)
        .with_noise_dim(config.gan.nz)
        .with_stage1_ngf(config.gan.ngf)
        .with_stage1_ndf(config.gan.ndf)
        .with_stage2_ngf(stage2.ngf)
        .with_stage2_ndf(stage2.ndf)
        .with_residual_blocks(stage2.r_num)
        .with_text_scale(config.gan.text_scale);
    model.validate().map_err(anyhow::Error::msg)?;
    Ok(model)
}

/// A stage's training options from a config.
pub fn training_options(
    config: &GanTrainConfig,
    stage: Stage,
    text_dim: usize,
) -> Result<StackGanTrainOptions> {
    let t = &config.train;
    let stage2 = stage2_section(config)?;
    let mut run = t.run_options();
    if stage == Stage::Two {
        (run.batch_size, run.max_epoch) = (stage2.batch_size, stage2.max_epoch);
    }
    Ok(StackGanTrainOptions {
        model: model_config(config, text_dim)?,
        run,
        lr: t.lr,
        lr_decay_every: t.lr_decay_epochs(),
        family: StageOptions {
            stage,
            kl_weight: t.kl_weight,
        },
        recipe: config.recipe.clone(),
    })
}

/// `t2i features` for StackGAN: both prepared sets.
pub fn prepare_both(config: &GanTrainConfig, device: &Device) -> Result<[PreparedSet; 2]> {
    let stage2 = stage2_section(config)?;
    Ok([
        prepare(config, device)?,
        prepare_at(
            config,
            &stage2.prepared_dir,
            Stage::Two.image_size(),
            device,
        )?,
    ])
}

/// The Stage-I generator of a finished (or stopped) Stage-I run, in inference mode (its weight
/// average when the run keeps one).
pub fn load_stage1(config: &GanTrainConfig, device: &Device) -> Result<(StageIGenerator, u64)> {
    let (generator, _, step) = latest_generator(
        &checkpoints(config, Stage::One),
        &stage_dir(config, Stage::One),
        |options: &StackGanTrainOptions| options.model.init_stage1_generator(device),
    )
    .context("Stage-II trains on a Stage-I run: train --stage 1 first")?;
    Ok((generator, step))
}

/// The generators of the latest Stage-II checkpoint (Stage-I included), its options and step.
pub fn load_generators(
    config: &GanTrainConfig,
    device: &Device,
) -> Result<(StackGanGenerators, StackGanTrainOptions, u64)> {
    let dir = stage_dir(config, Stage::Two);
    let checkpoint = checkpoints(config, Stage::Two).latest_required(&dir)?;
    let state: StackGanState = checkpoint.state()?;
    let model = &state.options.model;
    let generators = StackGanGenerators {
        stage1: checkpoint.module(model.init_stage1_generator(device), STAGE1_PART)?,
        stage2: checkpoint.module(
            model.init_stage2_generator(device),
            inference_generator_part(&checkpoint),
        )?,
    };
    Ok((generators.valid(), state.options, state.step))
}

/// `t2i train --stage N` for StackGAN. Refuses to overwrite an existing run unless `resume`.
fn train(config: &GanTrainConfig, stage: Stage, request: &TrainRequest<'_>) -> Result<()> {
    let device = request.device;
    let run_dir = stage_dir(config, stage);
    let checkpoints = checkpoints(config, stage);
    checkpoints.latest_for_training(request.resume, &run_dir)?;
    let stage1 = match stage {
        Stage::One => None,
        Stage::Two => Some(load_stage1(config, device)?),
    };
    let prepared = match stage {
        Stage::One => prepare(config, device)?,
        Stage::Two => prepare_at(
            config,
            &stage2_section(config)?.prepared_dir,
            Stage::Two.image_size(),
            device,
        )?,
    };
    let (data, info) = prepared.into_gan_set();
    eprintln!("{}", info.summary(&config.text_encoder));
    let mut options = training_options(config, stage, info.text_dim)?;
    request.limit(&mut options.run);
    let (g, d) = match stage {
        Stage::One => (
            options.model.init_stage1_generator(device).num_params(),
            options.model.init_stage1_discriminator(device).num_params(),
        ),
        Stage::Two => (
            options.model.init_stage2_generator(device).num_params(),
            options.model.init_stage2_discriminator(device).num_params(),
        ),
    };
    eprintln!(
        "Stage-{} generator {:.2} M parameters, discriminator {:.2} M",
        stage.roman(),
        g as f64 / 1e6,
        d as f64 / 1e6
    );
    let folder = RunFolder::create(&run_dir, config)?;
    let text = text_side(&config.text_encoder, device)?;
    let grid_captions = &info.sample_captions[..info.sample_captions.len().min(GRID_CAPTIONS)];
    let title = format!("StackGAN Stage-{} losses", stage.roman());
    let model = options.model.clone();
    // A grid of the first `stages` stages, each image `scale` times, drawn as the page draws.
    let save_grid = |step: u64, generators: StackGanGenerators, stages: usize, scale: u32| {
        let device = &generators.stage1.devices()[0];
        let bundle = text
            .clone()
            .bundle::<StackGanWeights>(generators, model.clone());
        let grid = sample_grid(&bundle, grid_captions, GRID_SEEDS, stages, scale, device)?;
        folder.save_sample(&grid, "step", step)?;
        folder.write_losses(&["loss_d", "loss_g", "kl"], &title)
    };
    let run = match stage1 {
        None => {
            // Stage-I alone is drawn; the bundle's Stage-II is an untrained stand-in.
            let stand_in = model.init_stage2_generator(device);
            let write = |step: u64, generator: &StageIGenerator| -> Result<()> {
                let generators = StackGanGenerators {
                    stage1: generator.clone(),
                    stage2: stand_in.clone(),
                };
                save_grid(step, generators, 1, 2)
            };
            let hook = folder.sample_hook(&write);
            let place = folder.place(&checkpoints, request, &hook);
            train_stage1(&options, &data, &place)?
        }
        Some((stage1, stage1_step)) => {
            eprintln!("Stage-I frozen at its step {stage1_step}");
            let write = |step: u64, generators: &StackGanGenerators| -> Result<()> {
                save_grid(step, generators.clone(), 2, 1)
            };
            let hook = folder.sample_hook(&write);
            let place = folder.place(&checkpoints, request, &hook);
            train_stage2(&options, stage1, &data, &place)?
        }
    };
    let what = format!("Stage-{}", stage.roman());
    folder.report_end(&what, run.interrupted, run.steps);
    Ok(())
}

/// Checks a `--stage` value.
fn parse_stage(stage: Option<u8>) -> Result<Stage> {
    match stage {
        Some(1) => Ok(Stage::One),
        Some(2) => Ok(Stage::Two),
        Some(other) => bail!("--stage must be 1 or 2, got {other}"),
        None => bail!("StackGAN trains one stage at a time: pass --stage 1, then --stage 2"),
    }
}

/// What `t2i eval gan` prints for StackGAN: the scores of each stage's images, drawn from the
/// same captions and seeds.
#[derive(Debug, serde::Serialize)]
pub struct StackGanEvaluation {
    pub stage1_64px: GanEvaluation,
    pub stage2_256px: GanEvaluation,
}

/// StackGAN as the command line drives it.
pub struct StackGan;

impl GanFamily for StackGan {
    fn name(&self) -> &'static str {
        "StackGAN"
    }

    fn prepare(&self, config: &GanTrainConfig, device: &Device) -> Result<Vec<PreparedSet>> {
        Ok(prepare_both(config, device)?.into())
    }

    fn train(&self, config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
        train(config, parse_stage(request.stage)?, request)
    }

    fn takes_stage(&self) -> bool {
        true
    }

    fn latest(&self, config: &GanTrainConfig, device: &Device) -> Result<(GanBundle, String)> {
        let (generators, options, step) = load_generators(config, device)?;
        let text = text_side(&config.text_encoder, device)?;
        let bundle = text.bundle::<StackGanWeights>(generators, options.model);
        Ok((bundle, format!("Stage-II step {step}")))
    }

    fn report(&self, stages: Vec<GanEvaluation>) -> Result<serde_json::Value> {
        let [stage1_64px, stage2_256px] = <[GanEvaluation; 2]>::try_from(stages)
            .map_err(|_| anyhow::anyhow!("a StackGAN bundle draws two stages"))?;
        Ok(serde_json::to_value(StackGanEvaluation {
            stage1_64px,
            stage2_256px,
        })?)
    }
}
