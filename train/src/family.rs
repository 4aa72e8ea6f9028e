//! The three GAN families behind one trait: what `t2i features`, `train`, `eval gan` and
//! `export` do with a GAN config, so `main.rs` picks the family once ([`family`]) and each
//! family's folder holds its whole story. Export and evaluation are the same for every family
//! once it says how to turn its latest checkpoint into a bundle.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use t2i::bundle::{BundledWeights, GanBundle};
use t2i::quant::Precision;

use crate::config::{GanModel, GanTrainConfig};
use crate::damsm::commands::text_side;
use crate::data::prepared::PreparedSet;
use crate::eval::{GanEvaluation, GeneratorSource, evaluate_source};
use crate::run::adversarial::{PairOptions, latest_generator};
use crate::run::checkpoint::{Checkpoints, write_bundle};

/// What `t2i train` asks of a run besides its config.
#[derive(Clone, Copy)]
pub struct TrainRequest<'a> {
    /// Continue the run in the config's `output_dir` from its latest checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in total.
    pub max_steps: Option<u64>,
    /// Stop (with a checkpoint) after this many seconds of training.
    pub max_seconds: Option<f64>,
    /// Start a new run from portable weights (GAN-INT-CLS).
    pub init_from: Option<&'a Path>,
    /// The stage to train (StackGAN).
    pub stage: Option<u8>,
    /// The device to train on.
    pub device: &'a Device,
    /// Set by Ctrl-C: finish the step, write a checkpoint and stop.
    pub stop: &'a AtomicBool,
}

impl TrainRequest<'_> {
    /// Refuses `--init-from` and `--stage` where the model does not take them, naming the
    /// models that do.
    pub fn refuse_options_but(&self, init_from: bool, stage: bool) -> Result<()> {
        if self.init_from.is_some() && !init_from {
            anyhow::bail!("--init-from applies to GAN-INT-CLS configs");
        }
        if self.stage.is_some() && !stage {
            anyhow::bail!("--stage applies to StackGAN configs");
        }
        Ok(())
    }

    /// `run` with this request's step and time limits.
    pub fn limit(&self, run: &mut crate::run::adversarial::RunOptions) {
        run.max_steps = self.max_steps;
        run.max_seconds = self.max_seconds;
    }
}

/// One GAN family as the command line drives it.
pub trait GanFamily: Sync {
    /// The family's name as people read it ("GAN-INT-CLS"), also what its bundles report.
    fn name(&self) -> &'static str;
    /// `t2i features`: the prepared training set(s), built once (by default the config's set of
    /// 64 px crops).
    fn prepare(&self, config: &GanTrainConfig, device: &Device) -> Result<Vec<PreparedSet>> {
        Ok(vec![crate::data::prepared::prepare(config, device)?])
    }
    /// `t2i train` ([`train`] has refused the options the family does not take). Refuses to
    /// overwrite an existing run unless `request.resume`.
    fn train(&self, config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()>;
    /// Whether `t2i train --init-from` (portable weights) applies.
    fn takes_init_from(&self) -> bool {
        false
    }
    /// Whether `t2i train --stage` applies.
    fn takes_stage(&self) -> bool {
        false
    }
    /// The run's latest checkpoint with the config's text encoder, as the f32 bundle that
    /// `t2i export` writes and evaluation draws with, and which checkpoint it is ("step 200").
    fn latest(&self, config: &GanTrainConfig, device: &Device) -> Result<(GanBundle, String)>;
    /// `t2i eval gan`'s JSON from each stage's scores, smallest stage first.
    fn report(&self, stages: Vec<GanEvaluation>) -> Result<serde_json::Value>;
}

/// The latest checkpoint of a run in the config's `output_dir` as [`GanFamily::latest`] gives
/// it, for a family whose bundles hold the one generator `W` that its runs (with options `O`)
/// train.
pub fn latest_bundle<W, O>(config: &GanTrainConfig, device: &Device) -> Result<(GanBundle, String)>
where
    W: BundledWeights<Generator: Module>,
    O: PairOptions<Model = W::GanConfig>,
{
    let (generator, options, step) = latest_generator(
        &Checkpoints::of_run(&config.output_dir),
        &config.output_dir,
        |options: &O| W::init_generator(options.model(), device),
    )?;
    let text = text_side(&config.text_encoder, device)?;
    let model = options.model().clone();
    Ok((text.bundle::<W>(generator, model), format!("step {step}")))
}

/// The family a GAN config trains.
pub fn family(model: GanModel) -> &'static dyn GanFamily {
    match model {
        GanModel::GanIntCls => &crate::gan_int_cls::GanIntCls,
        GanModel::StackGan => &crate::stackgan::StackGan,
        GanModel::AttnGan => &crate::attngan::AttnGan,
    }
}

/// `t2i train` of a GAN config: its family's, after refusing the options it does not take.
pub fn train(config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
    let family = family(config.model);
    request.refuse_options_but(family.takes_init_from(), family.takes_stage())?;
    family.train(config, request)
}

/// `t2i export`: the text encoder, vocabulary and the latest checkpoint's generator(s) in one
/// bundle at `precision`.
pub fn export(
    config: &GanTrainConfig,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> Result<()> {
    let (bundle, checkpoint) = family(config.model).latest(config, device)?;
    write_bundle(out, &bundle.to_bytes(precision)?, precision, &checkpoint)
}

/// `t2i eval gan`: FID, Inception Score and R-precision of each stage's images of held-out
/// species' captions, drawn by the bundle's one path; one line per stage on stderr, and the
/// family's report.
pub fn evaluate(
    config: &GanTrainConfig,
    source: GeneratorSource<'_>,
    samples: Option<usize>,
    device: &Device,
) -> Result<serde_json::Value> {
    let family = family(config.model);
    let stages = evaluate_source(
        config,
        source,
        samples,
        family.name(),
        || {
            let (bundle, checkpoint) = family.latest(config, device)?;
            Ok((bundle, format!("checkpoint of {checkpoint}")))
        },
        device,
    )?;
    family.report(stages)
}

/// `t2i features` for a GAN config: builds (or finds) the family's prepared sets.
pub fn prepare(config: &GanTrainConfig, device: &Device) -> Result<()> {
    for set in family(config.model).prepare(config, device)? {
        eprintln!(
            "prepared set ready: {} images at {} px",
            set.images.len(),
            set.info.image_size()
        );
    }
    Ok(())
}
