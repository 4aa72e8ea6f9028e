//! StackGAN training, one stage at a time, as the authors' `trainer.py`: Stage-I (64 px) first;
//! then Stage-II (256 px) with Stage-I frozen. Each step updates the stage's discriminator on
//! (real, right condition), (real, wrong condition) and (fake, right condition) — plus, in
//! Stage-II, the unconditional real/fake logits — then its generator on fooling D plus the CA
//! KL term. The discriminators compress the sentence embedding themselves (see
//! [`t2i::stackgan`] for why not the generator's mu, as the PyTorch code).
//!
//! The loop (schedule, reseeding per step, checkpoints, metrics, NaN stop) is the shared one of
//! [`crate::run::adversarial`]; the batches are GAN-INT-CLS's ([`GanBatch`]).

use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use t2i::layers::kl_loss;
use t2i::stackgan::{
    DiscriminatorLoss, MatchingLogits, StackGanConfig, StackGanGenerators, StageDiscriminator,
    StageIDiscriminator, StageIGenerator, StageIIDiscriminator, StageIIGenerator, StageOutput,
    discriminator_loss, generator_loss,
};

use crate::data::gan_set::{GanBatch, GanSet};
pub use crate::run::adversarial::GENERATOR_PART;
use crate::run::adversarial::{
    AdversarialState, FamilyOptions, GanOptions, GanPair, GanStep, Losses, PairExtra, RunPlace,
    Stepped, add_penalty, loss as value,
};
use crate::run::checkpoint::{Checkpoint, module_bytes};

/// Which of StackGAN's two stages a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Stage-I: text -> 64x64.
    One,
    /// Stage-II: Stage-I image + text -> 256x256, Stage-I frozen.
    Two,
}

impl Stage {
    /// The size of the images the stage's discriminator sees.
    pub fn image_size(self) -> u32 {
        match self {
            Stage::One => 64,
            Stage::Two => 256,
        }
    }

    /// `I` or `II`, as the paper names the stages.
    pub fn roman(self) -> &'static str {
        match self {
            Stage::One => "I",
            Stage::Two => "II",
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Stage::One => 1,
            Stage::Two => 2,
        }
    }
}

/// Settings of one stage's run (the authors' birds settings: Adam 2e-4 with beta1 0.5, batch
/// 64, lr halved every 100 epochs in 600; KL weight 2.0 in their configs, 1 in the paper).
pub type StackGanTrainOptions = GanOptions<StackGanConfig, StageOptions>;

/// What StackGAN adds to a run's settings: the stage it trains and its KL term.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageOptions {
    pub stage: Stage,
    /// Weight of the CA KL term in the generator loss (`TRAIN.COEFF.KL`).
    pub kl_weight: f32,
}

impl FamilyOptions for StageOptions {
    /// The stage and both stages' sizes: a Stage-I checkpoint never resumes as Stage-II.
    fn model_key(&self, model: String) -> String {
        format!("{:?} {model}", self.stage)
    }
}

/// `state.json` of a StackGAN checkpoint.
pub type StackGanState = AdversarialState<StackGanTrainOptions>;

/// Stage-II checkpoints also keep the frozen Stage-I generator, so they stand alone.
pub const STAGE1_PART: &str = "stage1_generator.bpk";

/// Standard normal `[rows, cols]` on `device` (seeded per step by the loop).
fn normal(rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::random([rows, cols], Distribution::Normal(0.0, 1.0), device)
}

/// Stage-I's networks and optimizers on the training device.
pub type StageIPair<'a> = GanPair<'a, StageIGenerator, StageIDiscriminator, StackGanTrainOptions>;

impl GanStep for StageIPair<'_> {
    type Generator = StageIGenerator;

    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        let (b, noise, eps) = draw_batch(&self, rows, rng);
        let out = self.nets.generator.forward(b.right.clone(), noise, eps);
        update_stage(self, b, out, lr)
    }

    fn inference_generator(&self) -> StageIGenerator {
        self.nets.inference_generator()
    }
}

/// The trained Stage-I generator under Stage-II, frozen in inference mode on the plain
/// (non-autodiff) device; Stage-II checkpoints keep it, so they stand alone.
pub struct FrozenStageI(pub StageIGenerator);

impl PairExtra for FrozenStageI {
    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![(STAGE1_PART, module_bytes(&self.0)?)])
    }
    fn restore(self, checkpoint: &Checkpoint, _step: u64) -> Result<Self> {
        let stage1 = checkpoint.module(self.0, STAGE1_PART)?;
        Ok(Self(stage1.valid()))
    }
}

/// Stage-II's networks and optimizers, over the frozen Stage-I.
pub type StageIIPair<'a> =
    GanPair<'a, StageIIGenerator, StageIIDiscriminator, StackGanTrainOptions, FrozenStageI>;

impl GanStep for StageIIPair<'_> {
    type Generator = StackGanGenerators;

    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        let (b, noise, eps1) = draw_batch(&self, rows, rng);
        let eps2 = normal(rows.len(), self.options.model.condition_dim, &self.device);
        // Frozen Stage-I, outside the graph.
        let low = self
            .extra
            .0
            .forward(b.right.clone().inner(), noise.inner(), eps1.inner())
            .image
            .autodiff(); // [B, 3, 64, 64]
        let out = self.nets.generator.forward(low, b.right.clone(), eps2); // [B, 3, 256, 256]
        update_stage(self, b, out, lr)
    }

    fn inference_generator(&self) -> StackGanGenerators {
        StackGanGenerators {
            stage1: self.extra.0.clone(),
            stage2: self.nets.inference_generator(),
        }
    }
}

/// A stage's batch of `rows`, its noise and CA's draw (in this order from the device's
/// generator, which the loop seeds per step).
fn draw_batch<G, D, X>(
    pair: &GanPair<'_, G, D, StackGanTrainOptions, X>,
    rows: &[usize],
    rng: &mut StdRng,
) -> (GanBatch, Tensor<2>, Tensor<2>) {
    let (n, config) = (rows.len(), &pair.options.model);
    let b = GanBatch::draw(pair.data, rows, rng, &pair.device);
    let noise = normal(n, config.noise_dim, &pair.device);
    let eps = normal(n, config.condition_dim, &pair.device);
    (b, noise, eps)
}

/// One update of a stage's discriminator, then of its generator, on batch `b` and the
/// generator's output `out`: D learns the matching-aware loss (the real image with its caption
/// and with a mismatched one, the generated image with its caption; Stage-II adds the
/// unconditional logits), the real image meeting D with both captions in one augmentation,
/// plus the recipe's penalty; G learns to fool the updated D and keeps CA near N(0, I).
fn update_stage<G: Module, D: Module + StageDiscriminator, X>(
    mut pair: GanPair<'_, G, D, StackGanTrainOptions, X>,
    b: GanBatch,
    out: StageOutput,
    lr: f64,
) -> Stepped<GanPair<'_, G, D, StackGanTrainOptions, X>> {
    let recipe = &pair.options.recipe;
    let d = &pair.nets.discriminator;
    let real_image = recipe.augment(b.real);
    let real = d.encode(real_image.clone());
    let fake = d.encode(recipe.augment(out.image.clone().detach()));
    let condition = d.condition(b.right.clone());
    let real_right = d.cond_logits(real.clone(), condition.clone());
    let penalty = recipe.gradient_penalty(
        |image, text| d.cond_logits(d.encode(image), d.condition(text)),
        real_image,
        b.right.clone(),
        real_right.clone(),
    );
    let real_wrong = d.cond_logits(real.clone(), d.condition(b.wrong));
    let uncond = d.uncond_logits(real).zip(d.uncond_logits(fake.clone()));
    let loss_d = discriminator_loss(
        MatchingLogits {
            real_right,
            real_wrong,
            fake_right: d.cond_logits(fake, condition),
            uncond,
        },
        recipe.loss,
    );
    let (step_d, mut losses) = discriminator_step(&loss_d, penalty);
    pair.nets = pair.nets.update_discriminator(step_d, lr);

    let recipe = &pair.options.recipe;
    let d = &pair.nets.discriminator;
    let fake = d.encode(recipe.augment(out.image));
    let fake_right = d.cond_logits(fake.clone(), d.condition(b.right));
    let kl = kl_loss(out.mu, out.logvar);
    let value_kl = value(&kl);
    let loss_g = generator_loss(
        fake_right,
        d.uncond_logits(fake),
        kl,
        pair.options.family.kl_weight,
        recipe.loss,
    );
    // A non-finite loss stops the loop when it reads the losses back, before anything is
    // written: the update is not guarded here, which would wait on the device every step.
    let value_g = value(&loss_g);
    pair.nets = pair.nets.update_generator(loss_g, lr);
    losses.extend([("loss_g", value_g), ("kl", value_kl)]);
    Ok((pair, losses))
}

/// How a stage's run ended; generators in inference mode on the plain device.
pub struct StackGanRun {
    pub stage1: StageIGenerator,
    /// Stage-II runs only.
    pub stage2: Option<StageIIGenerator>,
    pub steps: u64,
    pub interrupted: bool,
}

fn check_data(options: &StackGanTrainOptions, data: &GanSet) -> Result<()> {
    if data.text_dim != options.model.text_dim {
        bail!(
            "the embeddings have {} values, the model expects {}",
            data.text_dim,
            options.model.text_dim
        );
    }
    if data.image_size != options.family.stage.image_size() {
        bail!(
            "Stage-{} trains on {} px images, the prepared set holds {} px crops",
            options.family.stage.roman(),
            options.family.stage.image_size(),
            data.image_size
        );
    }
    if let Err(e) = options.model.validate() {
        bail!("{e}");
    }
    Ok(())
}

/// What D's update minimizes (its loss plus the recipe's penalty, if any) and the metrics:
/// `loss_d` first, the conditional terms as the authors' `errD_real`, `errD_wrong`,
/// `errD_fake`, and the penalty.
fn discriminator_step(loss: &DiscriminatorLoss, penalty: Option<Tensor<1>>) -> (Tensor<1>, Losses) {
    let (total, value_penalty) = add_penalty(loss.total.clone(), penalty);
    let mut losses = vec![
        ("loss_d", value(&total)),
        ("d_real", value(&loss.real)),
        ("d_wrong", value(&loss.wrong)),
        ("d_fake", value(&loss.fake)),
    ];
    losses.extend(value_penalty.map(|v| ("penalty", v)));
    (total, losses)
}

/// Trains (or resumes) Stage-I.
pub fn train_stage1(
    options: &StackGanTrainOptions,
    data: &GanSet,
    place: &RunPlace<StageIGenerator>,
) -> Result<StackGanRun> {
    check_data(options, data)?;
    let end = StageIPair::train(options, data, place, (), |options, device| {
        (
            options.model.init_stage1_generator(device),
            options.model.init_stage1_discriminator(device),
        )
    })?;
    Ok(StackGanRun {
        stage1: end.pair.nets.inference_generator(),
        stage2: None,
        steps: end.steps,
        interrupted: end.interrupted,
    })
}

/// Trains (or resumes) Stage-II on top of the frozen `stage1` (on `place`'s device).
pub fn train_stage2(
    options: &StackGanTrainOptions,
    stage1: StageIGenerator,
    data: &GanSet,
    place: &RunPlace<StackGanGenerators>,
) -> Result<StackGanRun> {
    check_data(options, data)?;
    let frozen = FrozenStageI(stage1.valid());
    let end = StageIIPair::train(options, data, place, frozen, |options, device| {
        (
            options.model.init_stage2_generator(device),
            options.model.init_stage2_discriminator(device),
        )
    })?;
    Ok(StackGanRun {
        stage1: end.pair.extra.0.clone(),
        stage2: Some(end.pair.nets.inference_generator()),
        steps: end.steps,
        interrupted: end.interrupted,
    })
}
