//! The training loop every GAN family shares. A family (GAN-INT-CLS, each of StackGAN's stages,
//! AttnGAN) supplies an [`AdversarialPair`]: its networks and optimizers, one update of
//! both on a batch, and its checkpoint parts. The loop does the rest: epoch order, learning-rate
//! decay, reseeding per step (so a resumed run continues exactly), progress and images/s, metrics
//! as JSON lines, NaN/Inf detection, atomic checkpoints every N steps and on Ctrl-C, a time
//! limit, and sample hooks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::gan_set::GanSet;
use crate::run::checkpoint::{
    Checkpoint, Checkpoints, load_module, load_optimizer, module_bytes, optimizer_bytes,
};
use crate::run::log::{MetricsLog, Progress, epoch_order};
use crate::run::recipe::{Recipe, WeightAverage};

/// The named losses of one step, still on the device: one-value tensors off the autodiff graph
/// ([`loss`]). The loop reads a window of steps' losses back at once ([`read_back`]), so a GPU
/// is not made to wait for the host at every step.
pub type Losses = Vec<(&'static str, Tensor<1>)>;
/// Losses read back to the host.
pub type LossValues = Vec<(&'static str, f32)>;
/// What a step returns: the updated state and its losses.
pub type Stepped<P> = Result<(P, Losses)>;

/// A step's loss as [`Losses`] keeps it: its value, without the graph that made it.
pub fn loss(value: &Tensor<1>) -> Tensor<1> {
    value.clone().inner().reshape([1])
}

/// D's loss with the recipe's gradient penalty added, if it has one, and the penalty's value
/// for the metrics (`penalty`).
pub fn add_penalty(
    loss_d: Tensor<1>,
    penalty: Option<Tensor<1>>,
) -> (Tensor<1>, Option<Tensor<1>>) {
    match penalty {
        Some(penalty) => {
            let value = loss(&penalty);
            (loss_d + penalty, Some(value))
        }
        None => (loss_d, None),
    }
}

/// The values of several steps' losses, in one read from the device.
pub fn read_back(steps: &[Losses]) -> Result<Vec<LossValues>> {
    let all: Vec<Tensor<1>> = steps
        .iter()
        .flat_map(|losses| losses.iter().map(|(_, value)| value.clone()))
        .collect();
    if all.is_empty() {
        return Ok(steps.iter().map(|_| Vec::new()).collect());
    }
    let values = Tensor::cat(all, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the losses back from the device: {e:?}"))?;
    let mut values = values.into_iter();
    Ok(steps
        .iter()
        .map(|losses| {
            losses
                .iter()
                .map(|(name, _)| (*name, values.next().unwrap_or(f32::NAN)))
                .collect()
        })
        .collect())
}

/// Read losses back at least every this many steps: on a GPU each read waits for the device to
/// finish its queue, so the loop reads a window of steps at once.
pub const READ_BACK_STEPS: usize = 32;
/// ... and at least this often, so that slow (CPU) steps show every step's losses.
const READ_BACK_SECONDS: f64 = 1.0;

/// One GAN family's trainable state, as the shared loop sees it.
pub trait AdversarialPair: Sized {
    /// What sample hooks receive: the generator in inference mode.
    type Generator;
    /// The run's settings, saved in every checkpoint's `state.json`.
    type Options: Serialize + DeserializeOwned + Clone;

    fn options(&self) -> &Self::Options;
    /// Whether a checkpoint written with `saved` fits these networks (same sizes).
    fn fits(&self, saved: &Self::Options) -> bool;
    /// Networks and optimizer states to write, by part name.
    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>>;
    /// Restores what [`AdversarialPair::parts`] wrote.
    fn restore(self, checkpoint: &Checkpoint) -> Result<Self>;
    /// One update of the discriminator(s) and generator(s) on the training items `rows`;
    /// returns the named losses. Random numbers come from `rng` and the (reseeded) device.
    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self>;
    fn inference_generator(&self) -> Self::Generator;
    /// Called when `epoch` has just been completed at `step`: a line to show and a metrics row
    /// (DAMSM's R-precision on its validation images), or nothing.
    fn epoch_done(&self, _epoch: usize, _step: u64) -> Result<Option<(String, serde_json::Value)>> {
        Ok(None)
    }
}

/// The settings a pair's checkpoints save in `state.json`.
pub trait PairOptions: Serialize + DeserializeOwned + Clone {
    /// The networks' sizes.
    type Model: Clone + std::fmt::Display;
    fn model(&self) -> &Self::Model;
    /// Names the networks' sizes (and, for StackGAN, the stage): a checkpoint written with
    /// other options fits only if its key is the same.
    fn model_key(&self) -> String {
        self.model().to_string()
    }
    /// Batch, length, checkpoints, seed and limits.
    fn run(&self) -> &RunOptions;
    /// The schedule's starting learning rate.
    fn lr(&self) -> f64;
    /// How the learning rate decays.
    fn lr_decay(&self) -> LrDecay;
    /// The seed of the networks' initialisation and of the loop.
    fn seed(&self) -> u64 {
        self.run().seed
    }
    /// The loop's schedule over a training set of `items`.
    fn schedule(&self, items: usize) -> Schedule {
        Schedule {
            items,
            lr: self.lr(),
            lr_decay: self.lr_decay(),
            checkpoint_epochs: 0,
            run: self.run().clone(),
        }
    }
    /// How the networks are trained beyond their architecture (the papers' unless a family
    /// takes a `[recipe]`).
    fn recipe(&self) -> Recipe {
        Recipe::papers()
    }
    /// G's and D's learning rates as factors of the schedule's rate, which decays both alike:
    /// the recipe's `lr_g` and `lr_d` against the schedule's starting rate.
    fn rate_factors(&self) -> (f64, f64) {
        self.recipe().rate_factors(self.lr())
    }
}

/// What a family's pair keeps beyond its generator and discriminator, and writes into its
/// checkpoints (StackGAN's frozen Stage-I; AttnGAN's frozen DAMSM networks and step count).
pub trait PairExtra: Sized {
    /// Checkpoint parts beyond the networks'.
    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(Vec::new())
    }
    /// Restores what [`PairExtra::parts`] wrote; `step` is the checkpoint's.
    fn restore(self, _checkpoint: &Checkpoint, _step: u64) -> Result<Self> {
        Ok(self)
    }
}

impl PairExtra for () {}

/// Every family's trainable state: the networks with their optimizers, the run's options, the
/// training set and the training device, and what the family keeps besides (`extra`). A family
/// writes only its update ([`GanStep`]); saving, restoring and resuming are these once.
pub struct GanPair<'a, G, D, O, X = ()> {
    pub nets: GanNetworks<G, D>,
    pub options: O,
    pub data: &'a GanSet,
    pub device: Device,
    pub extra: X,
}

impl<'a, G: Module, D: Module, O: PairOptions, X> GanPair<'a, G, D, O, X> {
    /// Networks made by `init` on `train_device` (an autodiff device) after seeding it with the
    /// options' seed, with fresh optimizers.
    pub fn start(
        options: &O,
        data: &'a GanSet,
        train_device: &Device,
        extra: X,
        init: impl FnOnce(&O, &Device) -> (G, D),
    ) -> Self {
        train_device.seed(options.seed());
        let (generator, discriminator) = init(options, train_device);
        Self {
            nets: GanNetworks::new(generator, discriminator)
                .with_recipe(&options.recipe(), options.rate_factors()),
            options: options.clone(),
            data,
            device: train_device.clone(),
            extra,
        }
    }
}

impl<'a, G: Module, D: Module, O: PairOptions, X: PairExtra> GanPair<'a, G, D, O, X>
where
    Self: GanStep,
{
    /// Trains (or resumes from `place`'s checkpoints) networks made by `init` (as
    /// [`GanPair::start`] makes them) on `data`: the shared loop over the family's [`GanStep`],
    /// on the autodiff twin of `place`'s device.
    pub fn train(
        options: &O,
        data: &'a GanSet,
        place: &RunPlace<<Self as GanStep>::Generator>,
        extra: X,
        init: impl FnOnce(&O, &Device) -> (G, D),
    ) -> Result<LoopEnd<Self>> {
        let train_device = place.device.clone().autodiff();
        let pair = Self::start(options, data, &train_device, extra, init);
        train_adversarial(pair, &options.schedule(data.len()), place, &train_device)
    }
}

/// One family's update of a [`GanPair`]: the only part of training a family writes.
pub trait GanStep: Sized {
    /// What sample hooks receive: the generator in inference mode.
    type Generator;
    /// One update of the discriminator(s) and generator(s) on the training items `rows`;
    /// returns the named losses (see [`AdversarialPair::step`]).
    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self>;
    fn inference_generator(&self) -> Self::Generator;
}

impl<G: Module, D: Module, O: PairOptions, X: PairExtra> AdversarialPair for GanPair<'_, G, D, O, X>
where
    Self: GanStep,
{
    type Generator = <Self as GanStep>::Generator;
    type Options = O;

    fn options(&self) -> &O {
        &self.options
    }

    fn fits(&self, saved: &O) -> bool {
        saved.model_key() == self.options.model_key()
    }

    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut parts = self.nets.parts()?;
        parts.extend(self.extra.parts()?);
        Ok(parts)
    }

    fn restore(self, checkpoint: &Checkpoint) -> Result<Self> {
        let state: AdversarialState<O> = checkpoint.state()?;
        Ok(Self {
            nets: self.nets.restore(checkpoint, state.step)?,
            extra: self.extra.restore(checkpoint, state.step)?,
            ..self
        })
    }

    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        GanStep::step(self, rows, rng, lr)
    }

    fn inference_generator(&self) -> Self::Generator {
        GanStep::inference_generator(self)
    }
}

/// A generator and a discriminator with their optimizers: what every GAN stage trains, and the
/// four checkpoint parts it writes.
pub struct GanNetworks<G, D> {
    pub generator: G,
    pub discriminator: D,
    pub optim_g: ModuleOptimizer,
    pub optim_d: ModuleOptimizer,
    /// The moving average of G's weights, when the recipe keeps one.
    pub average: Option<WeightAverage<G>>,
    /// G's and D's learning rates as factors of the schedule's ([`PairOptions::rate_factors`]).
    pub rate_factors: (f64, f64),
}

/// Part names of [`GanNetworks`] in a checkpoint.
pub const GENERATOR_PART: &str = "generator.bpk";
pub const DISCRIMINATOR_PART: &str = "discriminator.bpk";
const OPTIM_G_PART: &str = "optim_g.bpk";
const OPTIM_D_PART: &str = "optim_d.bpk";
/// The moving average of G's weights ([`crate::run::recipe`]), when the recipe keeps one.
pub const AVERAGE_PART: &str = "generator_average.bpk";

/// The part holding the generator that samples, evaluation and export use: the weight average
/// when the checkpoint has one, else the generator itself.
pub fn inference_generator_part(checkpoint: &Checkpoint) -> &'static str {
    if checkpoint.dir.join(AVERAGE_PART).is_file() {
        AVERAGE_PART
    } else {
        GENERATOR_PART
    }
}

/// The generator of the latest checkpoint in `checkpoints` (of the run in `run_dir`), in
/// inference mode: its weight average when the run keeps one. `init` makes the network to load
/// into from the run's saved options. Also the options and the checkpoint's step.
pub fn latest_generator<O: DeserializeOwned, G: Module>(
    checkpoints: &Checkpoints,
    run_dir: &std::path::Path,
    init: impl FnOnce(&O) -> G,
) -> Result<(G, O, u64)> {
    let checkpoint = checkpoints.latest_required(run_dir)?;
    let state: AdversarialState<O> = checkpoint.state()?;
    let generator =
        checkpoint.module(init(&state.options), inference_generator_part(&checkpoint))?;
    Ok((generator.valid(), state.options, state.step))
}

impl<G: Module, D: Module> GanNetworks<G, D> {
    /// Fresh Adam states (the papers' beta1 0.5) for `generator` and `discriminator`.
    pub fn new(generator: G, discriminator: D) -> Self {
        Self {
            generator,
            discriminator,
            optim_g: gan_adam(),
            optim_d: gan_adam(),
            average: None,
            rate_factors: (1.0, 1.0),
        }
    }

    /// The networks trained with `recipe`: its optimizers, its weight average if any, and G's
    /// and D's learning rates as `rate_factors` of the schedule's.
    pub fn with_recipe(self, recipe: &Recipe, rate_factors: (f64, f64)) -> Self {
        let (optim_g, optim_d) = recipe.optimizers();
        let average =
            (recipe.ema_decay > 0.0).then(|| WeightAverage::new(&self.generator, recipe.ema_decay));
        Self {
            optim_g,
            optim_d,
            average,
            rate_factors,
            ..self
        }
    }

    /// One step of D's optimizer on `loss`, at the schedule's rate `lr` times D's factor.
    pub fn update_discriminator(mut self, loss: Tensor<1>, lr: f64) -> Self {
        let grads = GradientsParams::from_grads(loss.backward(), &self.discriminator);
        self.discriminator = self
            .optim_d
            .step(lr * self.rate_factors.1, self.discriminator, grads);
        self
    }

    /// One step of G's optimizer on `loss`, at the schedule's rate `lr` times G's factor; then
    /// the weight average, if any, moves towards the updated G.
    pub fn update_generator(mut self, loss: Tensor<1>, lr: f64) -> Self {
        let grads = GradientsParams::from_grads(loss.backward(), &self.generator);
        self.generator = self
            .optim_g
            .step(lr * self.rate_factors.0, self.generator, grads);
        self.update_average()
    }

    /// The generator in inference mode that samples and evaluation use: the weight average
    /// when there is one.
    pub fn inference_generator(&self) -> G {
        match &self.average {
            Some(average) => average.average.clone(),
            None => self.generator.valid(),
        }
    }

    /// Moves the weight average, if any, towards the generator just updated.
    pub fn update_average(self) -> Self {
        let average = self.average.map(|a| a.update(&self.generator));
        Self { average, ..self }
    }

    /// The checkpoint parts: both networks and both optimizer states.
    pub fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut parts = vec![
            (GENERATOR_PART, module_bytes(&self.generator)?),
            (DISCRIMINATOR_PART, module_bytes(&self.discriminator)?),
            (OPTIM_G_PART, optimizer_bytes(&self.optim_g)?),
            (OPTIM_D_PART, optimizer_bytes(&self.optim_d)?),
        ];
        if let Some(average) = &self.average {
            parts.push((AVERAGE_PART, module_bytes(&average.average)?));
        }
        Ok(parts)
    }

    /// Restores what [`GanNetworks::parts`] wrote at training step `step`. A checkpoint
    /// written without a weight average starts the average at its generator.
    pub fn restore(self, checkpoint: &Checkpoint, step: u64) -> Result<Self> {
        let part = |name: &str| checkpoint.part(name);
        let generator = load_module(self.generator, part(GENERATOR_PART)?, GENERATOR_PART)?;
        let average = match self.average {
            None => None,
            Some(average) => {
                let start = if checkpoint.dir.join(AVERAGE_PART).is_file() {
                    checkpoint.module(average.average, AVERAGE_PART)?
                } else {
                    generator.valid()
                };
                Some(WeightAverage {
                    average: start,
                    steps: step,
                    ..average
                })
            }
        };
        Ok(Self {
            average,
            generator,
            discriminator: load_module(
                self.discriminator,
                part(DISCRIMINATOR_PART)?,
                DISCRIMINATOR_PART,
            )?,
            optim_g: load_optimizer(self.optim_g, part(OPTIM_G_PART)?, OPTIM_G_PART)?,
            optim_d: load_optimizer(self.optim_d, part(OPTIM_D_PART)?, OPTIM_D_PART)?,
            rate_factors: self.rate_factors,
        })
    }
}

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdversarialState<O> {
    pub step: u64,
    pub options: O,
}

/// The settings of a GAN-INT-CLS or StackGAN run, as `state.json` saves them: the networks'
/// sizes, the run, a learning rate halved every `lr_decay_every` epochs, the recipe, and what the
/// family adds (`family`: its loss weights, StackGAN's stage). The family's keys stand beside
/// the others in `state.json`, where checkpoints written before this type put them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanOptions<M, F> {
    pub model: M,
    /// Batch, length, checkpoints, seed and limits.
    #[serde(flatten)]
    pub run: RunOptions,
    pub lr: f64,
    /// Halve the learning rate every this many epochs.
    pub lr_decay_every: usize,
    #[serde(flatten)]
    pub family: F,
    /// Loss, averaging, augmentation, penalties and per-network rates ([`Recipe`]); the
    /// papers' when absent (checkpoints written before it had none).
    #[serde(default)]
    pub recipe: Recipe,
}

/// What a family adds to [`GanOptions`].
pub trait FamilyOptions: Serialize + DeserializeOwned + Clone {
    /// The checkpoint key of networks whose sizes read `model` ([`PairOptions::model_key`]).
    fn model_key(&self, model: String) -> String {
        model
    }
}

impl<M: Serialize + DeserializeOwned + Clone + std::fmt::Display, F: FamilyOptions> PairOptions
    for GanOptions<M, F>
{
    type Model = M;
    fn model(&self) -> &M {
        &self.model
    }
    fn model_key(&self) -> String {
        self.family.model_key(self.model.to_string())
    }
    fn run(&self) -> &RunOptions {
        &self.run
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn lr_decay(&self) -> LrDecay {
        LrDecay::HalveEvery(self.lr_decay_every)
    }
    fn recipe(&self) -> Recipe {
        self.recipe.clone()
    }
}

/// How the learning rate falls from epoch to epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrDecay {
    /// Halved every this many epochs (GAN-INT-CLS and StackGAN; `usize::MAX`: never, as
    /// AttnGAN).
    HalveEvery(usize),
    /// DAMSM's `ENCODER_LR`: times 0.98 per epoch until below a tenth of the start.
    DamsmEncoder,
}

impl LrDecay {
    /// The learning rate of `epoch` from the starting `base`.
    pub fn at(self, base: f64, epoch: usize) -> f64 {
        match self {
            LrDecay::HalveEvery(every) => gan_learning_rate(base, every, epoch),
            LrDecay::DamsmEncoder => {
                (0..epoch).fold(base, |lr, _| if lr > base / 10.0 { lr * 0.98 } else { lr })
            }
        }
    }
}

/// What every run shares, whatever it trains: batch size and length, checkpoints, seed and
/// limits. Each family's options hold it (flattened: the keys stand beside the family's own in
/// `state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub batch_size: usize,
    pub max_epoch: usize,
    /// Checkpoint every this many steps (0: only at the end or on interrupt).
    pub checkpoint_steps: u64,
    pub seed: u64,
    /// Stop (with a checkpoint) after this many steps in total.
    pub max_steps: Option<u64>,
    /// Stop (with a checkpoint) after this many seconds of training in this session.
    #[serde(default)]
    pub max_seconds: Option<f64>,
    /// Show a progress bar.
    pub progress: bool,
}

impl RunOptions {
    /// `batch_size` images a step for `max_epoch` epochs from `seed`, checkpointing only at the
    /// end, without limits or progress bar.
    pub fn new(batch_size: usize, max_epoch: usize, seed: u64) -> Self {
        Self {
            batch_size,
            max_epoch,
            checkpoint_steps: 0,
            seed,
            max_steps: None,
            max_seconds: None,
            progress: false,
        }
    }
}

/// The loop's schedule (the GAN papers': batch 64, lr halved every 100 epochs).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub items: usize,
    pub lr: f64,
    pub lr_decay: LrDecay,
    /// Also checkpoint when a multiple of this many epochs is complete (0: never).
    pub checkpoint_epochs: usize,
    pub run: RunOptions,
}

/// Called every `every` steps (and at the end) with the generator in inference mode, e.g. to
/// write a sample grid.
pub struct SampleHook<'a, G> {
    pub every: u64,
    pub write: &'a dyn Fn(u64, &G) -> Result<()>,
}

/// How a run ended.
pub struct LoopEnd<P> {
    pub pair: P,
    pub steps: u64,
    pub interrupted: bool,
}

/// The learning rate after `epoch` epochs: halved every `every` epochs.
pub fn gan_learning_rate(base: f64, every: usize, epoch: usize) -> f64 {
    base * 0.5f64.powi((epoch / every.max(1)) as i32)
}

/// Where a run writes and what stops it, as every family's training takes it: its checkpoints,
/// its metrics log (JSON lines), a sample hook for its generator `G`, the device (the networks
/// train on its autodiff twin) and the flag Ctrl-C sets.
pub struct RunPlace<'a, G> {
    pub checkpoints: &'a Checkpoints,
    pub metrics_path: Option<PathBuf>,
    pub samples: Option<&'a SampleHook<'a, G>>,
    pub device: &'a Device,
    pub stop: &'a AtomicBool,
}

impl<'a, G> RunPlace<'a, G> {
    /// Checkpoints in `checkpoints`, on `device`, stopped by `stop`; no metrics log, no samples.
    pub fn new(checkpoints: &'a Checkpoints, device: &'a Device, stop: &'a AtomicBool) -> Self {
        Self {
            checkpoints,
            metrics_path: None,
            samples: None,
            device,
            stop,
        }
    }

    /// The same, logging each step's metrics to `path`.
    pub fn with_metrics(self, path: PathBuf) -> Self {
        Self {
            metrics_path: Some(path),
            ..self
        }
    }

    /// The same, writing samples with `hook`.
    pub fn with_samples(self, hook: &'a SampleHook<'a, G>) -> Self {
        Self {
            samples: Some(hook),
            ..self
        }
    }
}

/// Trains `pair` (or resumes it from `place`'s checkpoints) on a set of `schedule.items` items;
/// `train_device` is the autodiff device the pair's networks are on.
pub fn train_adversarial<P: AdversarialPair>(
    mut pair: P,
    schedule: &Schedule,
    place: &RunPlace<P::Generator>,
    train_device: &Device,
) -> Result<LoopEnd<P>> {
    let RunPlace {
        checkpoints,
        samples,
        stop,
        ..
    } = *place;
    let batch = schedule.run.batch_size;
    if schedule.items < batch || batch < 2 {
        bail!(
            "{} training items and batch size {batch}: need at least one batch of two or more",
            schedule.items
        );
    }
    let mut step = 0u64;
    if let Some(checkpoint) = checkpoints.latest()? {
        let state: AdversarialState<P::Options> = checkpoint.state()?;
        if !pair.fits(&state.options) {
            bail!(
                "the checkpoint in {} is of another model size; use a new output_dir",
                checkpoint.dir.display()
            );
        }
        pair = pair.restore(&checkpoint)?;
        step = state.step;
        eprintln!("resuming from {} (step {step})", checkpoint.dir.display());
    }
    let steps_per_epoch = (schedule.items / batch) as u64;
    let total_steps = steps_per_epoch * schedule.run.max_epoch as u64;
    let last_step = schedule
        .run
        .max_steps
        .map_or(total_steps, |m| m.min(total_steps));
    let mut metrics = match &place.metrics_path {
        Some(path) => Some(MetricsLog::open(path.clone(), step)?),
        None => None,
    };
    let save = |pair: &P, step: u64| -> Result<PathBuf> {
        checkpoints.save(
            step,
            &pair.parts()?,
            &AdversarialState {
                step,
                options: pair.options().clone(),
            },
        )
    };
    let wants_samples =
        |step: u64| samples.is_some_and(|h| h.every > 0 && step.is_multiple_of(h.every));
    let mut progress = Progress::new(schedule.run.progress, last_step, step);
    let mut interrupted = false;
    let started = Instant::now();
    // Steps whose losses are still on the device, and when the last read was.
    let mut pending: Vec<PendingStep> = Vec::new();
    let mut last_read = Instant::now();
    while step < last_step {
        let epoch = (step / steps_per_epoch) as usize;
        let in_epoch = (step % steps_per_epoch) as usize;
        let lr = schedule.lr_decay.at(schedule.lr, epoch);
        let order = epoch_order(schedule.items, schedule.run.seed, epoch);
        let rows = &order[in_epoch * batch..(in_epoch + 1) * batch];
        // Everything random in a step depends only on (seed, step): resuming is exact.
        train_device.seed(schedule.run.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut rng = StdRng::seed_from_u64(schedule.run.seed.wrapping_add(step));
        let (next, losses) = pair.step(rows, &mut rng, lr)?;
        pair = next;
        step += 1;
        pending.push(PendingStep {
            step,
            epoch,
            lr,
            images: batch,
            losses,
        });

        let epoch_done = step.is_multiple_of(steps_per_epoch);
        let stopping = stop.load(Ordering::SeqCst)
            || schedule
                .run
                .max_seconds
                .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit);
        let epoch_snapshot = epoch_done
            && schedule.checkpoint_epochs > 0
            && ((step / steps_per_epoch) as usize).is_multiple_of(schedule.checkpoint_epochs);
        let step_snapshot =
            schedule.run.checkpoint_steps > 0 && step.is_multiple_of(schedule.run.checkpoint_steps);
        let snapshot = (epoch_snapshot || step_snapshot) && step < last_step;
        if epoch_done
            || stopping
            || snapshot
            || wants_samples(step)
            || pending.len() >= READ_BACK_STEPS
            || last_read.elapsed().as_secs_f64() >= READ_BACK_SECONDS
        {
            read_pending(&mut pending, &mut progress, &mut metrics, checkpoints)?;
            last_read = Instant::now();
        }
        if epoch_done && let Some((line, row)) = pair.epoch_done(epoch, step)? {
            progress.say(line);
            if let Some(log) = metrics.as_mut() {
                log.write(&row)?;
            }
        }
        if let Some(hook) = samples
            && wants_samples(step)
        {
            (hook.write)(step, &pair.inference_generator())?;
        }
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if schedule
            .run
            .max_seconds
            .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
        {
            progress.say(format!(
                "time limit reached after {:.0} s at step {step}",
                started.elapsed().as_secs_f64()
            ));
            break;
        }
        if snapshot {
            save(&pair, step)?;
        }
    }
    read_pending(&mut pending, &mut progress, &mut metrics, checkpoints)?;
    let path = save(&pair, step)?;
    if let Some(hook) = samples
        && !wants_samples(step)
    {
        (hook.write)(step, &pair.inference_generator())?;
    }
    progress.finish();
    eprintln!("checkpoint written: {} (step {step})", path.display());
    Ok(LoopEnd {
        pair,
        steps: step,
        interrupted,
    })
}

/// A step whose losses the loop has not read back yet.
struct PendingStep {
    step: u64,
    epoch: usize,
    lr: f64,
    /// Images it trained on.
    images: usize,
    losses: Losses,
}

/// Reads the `pending` steps' losses back (one wait on the device), stops the run on a
/// non-finite one, and shows and logs every step's. The loop calls it before anything that
/// writes what a step computed (checkpoints, samples, the epoch's report) and at the end, so
/// nothing is written after a non-finite loss.
fn read_pending(
    pending: &mut Vec<PendingStep>,
    progress: &mut Progress,
    metrics: &mut Option<MetricsLog>,
    checkpoints: &Checkpoints,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let steps: Vec<Losses> = pending
        .iter_mut()
        .map(|p| std::mem::take(&mut p.losses))
        .collect();
    let values = read_back(&steps)?;
    let rate = progress.record(pending.iter().map(|p| p.images).sum());
    for (p, losses) in pending.iter().zip(&values) {
        if let Some((name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) {
            bail!(
                "loss {name} is {value} at step {}; the last good checkpoint is kept in {}",
                p.step,
                checkpoints.latest_description()
            );
        }
        if let Some(log) = metrics.as_mut() {
            let mut row = serde_json::json!({
                "step": p.step, "epoch": p.epoch, "lr": p.lr, "images_per_s": rate,
            });
            for (name, value) in losses {
                row[*name] = serde_json::json!(value);
            }
            log.write(&row)?;
        }
        let shown: Vec<String> = losses
            .iter()
            .map(|(name, value)| format!("{name} {value:.3}"))
            .collect();
        progress.advance(
            p.step,
            format!("epoch {} {} {rate:.0} img/s", p.epoch, shown.join(" ")),
        );
    }
    pending.clear();
    Ok(())
}

/// Adam as the paper: beta1 0.5.
pub fn gan_adam() -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in family: its "weights" are the steps it has taken; its loss turns NaN at a
    /// chosen step.
    struct Counter {
        taken: u64,
        nan_at: u64,
        options: u64,
    }

    /// A fresh [`Counter`] whose loss turns NaN at step `nan_at` (0: never).
    fn counter(nan_at: u64) -> Counter {
        Counter {
            taken: 0,
            nan_at,
            options: 1,
        }
    }

    impl AdversarialPair for Counter {
        type Generator = u64;
        type Options = u64;

        fn options(&self) -> &u64 {
            &self.options
        }
        fn fits(&self, saved: &u64) -> bool {
            *saved == self.options
        }
        fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
            Ok(vec![("taken", self.taken.to_le_bytes().to_vec())])
        }
        fn restore(self, checkpoint: &Checkpoint) -> Result<Self> {
            let bytes: [u8; 8] = checkpoint.part("taken")?.try_into().unwrap();
            Ok(Self {
                taken: u64::from_le_bytes(bytes),
                ..self
            })
        }
        fn step(mut self, _rows: &[usize], _rng: &mut StdRng, _lr: f64) -> Stepped<Self> {
            self.taken += 1;
            let loss = if self.taken == self.nan_at {
                f32::NAN
            } else {
                1.0
            };
            let loss = Tensor::<1>::from_data(TensorData::new(vec![loss], [1]), &Device::flex());
            Ok((self, vec![("loss_g", loss)]))
        }
        fn inference_generator(&self) -> u64 {
            self.taken
        }
    }

    fn schedule() -> Schedule {
        Schedule {
            items: 8,
            lr: 1e-3,
            lr_decay: LrDecay::HalveEvery(1),
            checkpoint_epochs: 0,
            run: RunOptions {
                checkpoint_steps: 2,
                ..RunOptions::new(2, 10, 0)
            },
        }
    }

    #[test]
    fn a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::new(dir.path(), 2);
        let pair = counter(5);
        let device = Device::flex();
        let stop = AtomicBool::new(false);
        let error = train_adversarial(
            pair,
            &schedule(),
            &RunPlace::new(&checkpoints, &device, &stop),
            &device,
        )
        .err()
        .expect("the NaN stops the run")
        .to_string();
        assert!(error.contains("loss_g is NaN at step 5"), "{error}");
        let latest = checkpoints.latest().unwrap().unwrap();
        let state: AdversarialState<u64> = latest.state().unwrap();
        assert_eq!(state.step, 4, "the checkpoint of step 4 is kept");
    }

    #[test]
    fn samples_are_written_on_schedule_and_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let write = |step: u64, generator: &u64| {
            seen.borrow_mut().push((step, *generator));
            Ok(())
        };
        let hook = SampleHook {
            every: 3,
            write: &write,
        };
        let mut schedule = schedule();
        schedule.run.max_steps = Some(7);
        let checkpoints = Checkpoints::new(dir.path(), 1);
        let (device, stop) = (Device::flex(), AtomicBool::new(false));
        let end = train_adversarial(
            counter(0),
            &schedule,
            &RunPlace::new(&checkpoints, &device, &stop).with_samples(&hook),
            &device,
        )
        .unwrap();
        assert_eq!(end.steps, 7);
        assert_eq!(*seen.borrow(), vec![(3, 3), (6, 6), (7, 7)]);
    }

    #[test]
    fn read_back_gives_each_step_its_named_losses_from_one_read() {
        let device = Device::flex().autodiff();
        let value = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
        let weight = value(2.0).require_grad();
        // A loss with a graph behind it is kept without it.
        let kept = loss(&(weight.clone() * value(1.5)));
        assert!(!kept.is_autodiff());
        let steps: Vec<Losses> = vec![
            vec![("loss_d", kept), ("loss_g", value(-1.0))],
            Vec::new(),
            vec![("kl", value(0.25))],
        ];
        let values = read_back(&steps).unwrap();
        assert_eq!(
            values,
            vec![
                vec![("loss_d", 3.0), ("loss_g", -1.0)],
                Vec::new(),
                vec![("kl", 0.25)]
            ]
        );
    }

    #[test]
    fn every_step_is_logged_in_order_though_losses_are_read_in_windows() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::new(dir.path().join("checkpoints"), 1);
        let mut schedule = schedule();
        schedule.run.checkpoint_steps = 0;
        schedule.run.max_steps = Some(7);
        let (device, stop) = (Device::flex(), AtomicBool::new(false));
        let metrics = dir.path().join("metrics.jsonl");
        let end = train_adversarial(
            counter(0),
            &schedule,
            &RunPlace::new(&checkpoints, &device, &stop).with_metrics(metrics.clone()),
            &device,
        )
        .unwrap();
        assert_eq!(end.steps, 7);
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let steps: Vec<u64> = rows.iter().map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, (1..=7).collect::<Vec<_>>());
        assert!(
            rows.iter()
                .all(|r| r["loss_g"] == 1.0 && r["images_per_s"].is_number())
        );
    }

    #[test]
    fn learning_rate_halves_per_period() {
        assert_eq!(gan_learning_rate(2e-4, 100, 99), 2e-4);
        assert_eq!(gan_learning_rate(2e-4, 100, 100), 1e-4);
    }
}
