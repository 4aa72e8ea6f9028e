//! AttnGAN training (Xu et al. 2018), as the authors' `condGANTrainer.train` (taoxugit/AttnGAN
//! `code/trainer.py`). Each step:
//!
//! 1. encodes the batch's captions with the frozen DAMSM text encoder: word features
//!    `[B, E, T]`, the sentence feature `[B, P]` and the padding mask (the authors run it every
//!    step too, in eval mode and detached);
//! 2. draws noise and CA's eps and runs the generator: one image per stage (64, 128, 256 px);
//! 3. updates every stage's discriminator on (real, its sentence), (generated, its sentence),
//!    (real, the next item's sentence) and the unconditional real/generated logits, the stage
//!    losses summed (`errD_total`); real images of all stages come from the same 256 crop,
//!    downsampled;
//! 4. updates the generator on fooling every updated discriminator (conditional and
//!    unconditional), plus `kl_weight` x CA's KL term, plus `damsm_lambda` x L_DAMSM of the last
//!    stage's images: resized to `damsm_image_size` (bilinear), through the frozen Inception-v3
//!    and DAMSM image encoder, matched against the same word and sentence features; gradients
//!    flow through the frozen networks to the generator only.
//!
//! The frozen networks ([`AttnGanFrozen`]) stay on the plain device outside the autodiff
//! graph's parameters: a plain-device weight meeting an autodiff tensor acts as a constant, so
//! the DAMSM term's gradient reaches the generated image without tracking Inception's weights.
//! They are inputs of a run, not part of its checkpoints.
//!
//! The loop (schedule, reseeding per step, checkpoints, metrics, NaN stop) is the shared one of
//! [`crate::run::adversarial`]; batches are [`GanBatch`]es of a [`GanSet`] with caption tokens.

use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use t2i::attngan::{
    AttnGanConfig, AttnGanDiscriminators, AttnGanGenerator, DAMSM_LAMBDA_BIRDS, discriminator_loss,
    generator_loss, padding_mask,
};
use t2i::damsm::{DamsmGammas, ImageEncoder, TextEncoder, TextFeatures, damsm_loss};
use t2i::inception::Inception;
use t2i::layers::{kl_loss, resize_bilinear_aligned};

use crate::data::gan_set::{GanBatch, GanSet};
use crate::run::adversarial::{
    AdversarialState, GanPair, GanStep, LrDecay, PairExtra, PairOptions, RunOptions, RunPlace,
    Stepped, add_penalty, loss as value,
};
use crate::run::checkpoint::Checkpoint;
use crate::run::recipe::Recipe;

/// Smallest input Inception-v3 takes: its last reduction (`mixed_8`) needs a 3x3 Mixed_6e map.
pub const MIN_DAMSM_IMAGE_SIZE: usize = 75;

/// Settings of an AttnGAN run. Defaults ([`AttnGanTrainOptions::birds`]) are the authors'
/// `cfg/bird_attn2.yml`: Adam 2e-4 for G and D with betas (0.5, 0.999), no learning-rate decay,
/// KL weight 1, `TRAIN.SMOOTH.LAMBDA` 5, gammas 4 / 5 / 10, batch 20, 600 epochs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttnGanTrainOptions {
    pub model: AttnGanConfig,
    /// Batch, length, checkpoints, seed and limits.
    #[serde(flatten)]
    pub run: RunOptions,
    /// Generator learning rate (`TRAIN.GENERATOR_LR`: 2e-4).
    pub lr_g: f64,
    /// Learning rate of the discriminators (`TRAIN.DISCRIMINATOR_LR`: 2e-4).
    pub lr_d: f64,
    /// Weight of CA's KL term in the generator loss (the authors: 1).
    pub kl_weight: f32,
    /// Weight of L_DAMSM in the generator loss (`TRAIN.SMOOTH.LAMBDA`: 5 birds, 50 COCO);
    /// 0 trains without the term (and without Inception).
    pub damsm_lambda: f32,
    /// Apply the DAMSM term on every `damsm_every`-th generator step only (1: every step, as
    /// the paper), to save Inception's forward and backward on a CPU. The weight stays
    /// `damsm_lambda` on the steps that have it, so its average weight is
    /// `damsm_lambda / damsm_every`.
    pub damsm_every: u64,
    /// Side the last stage's images are resized to (bilinear) before Inception: 299 as the
    /// authors' `CNN_ENCODER`; smaller is cheaper (149 gives Inception 7x7 regions instead of
    /// 17x17). At least [`MIN_DAMSM_IMAGE_SIZE`].
    pub damsm_image_size: usize,
    /// The DAMSM loss's smoothing factors (`TRAIN.SMOOTH.GAMMA1..3`).
    pub gammas: DamsmGammas,
    /// Loss, averaging, augmentation and penalties ([`Recipe`]); the papers' when absent
    /// (checkpoints written before it had none). Its `lr_g` and `lr_d`, when set, are the two
    /// rates above.
    #[serde(default)]
    pub recipe: Recipe,
}

impl AttnGanTrainOptions {
    /// The authors' birds settings for `model`.
    pub fn birds(model: AttnGanConfig) -> Self {
        Self {
            model,
            run: RunOptions::new(20, 600, 0),
            lr_g: 2e-4,
            lr_d: 2e-4,
            kl_weight: 1.0,
            damsm_lambda: DAMSM_LAMBDA_BIRDS,
            damsm_every: 1,
            damsm_image_size: t2i::inception::INPUT_SIZE,
            gammas: DamsmGammas::new(),
            recipe: Recipe::papers(),
        }
    }

    /// Whether a step counted from 0 adds the DAMSM term.
    pub fn damsm_at(&self, step: u64) -> bool {
        self.damsm_lambda != 0.0 && step.is_multiple_of(self.damsm_every.max(1))
    }

    /// Checks the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        if !(self.lr_g > 0.0 && self.lr_d > 0.0) {
            return Err(format!(
                "lr_g and lr_d must be positive, got {} and {}",
                self.lr_g, self.lr_d
            ));
        }
        if self.damsm_every == 0 {
            return Err("damsm_every must be at least 1".into());
        }
        if !self.damsm_lambda.is_finite() || self.damsm_lambda < 0.0 {
            return Err(format!(
                "damsm_lambda must be 0 or positive, got {}",
                self.damsm_lambda
            ));
        }
        if self.damsm_lambda > 0.0 && self.damsm_image_size < MIN_DAMSM_IMAGE_SIZE {
            return Err(format!(
                "damsm_image_size must be at least {MIN_DAMSM_IMAGE_SIZE} (Inception-v3's smallest input), got {}",
                self.damsm_image_size
            ));
        }
        Ok(())
    }

    /// The side of the last stage's images, and of the training crops: 64, 128 or 256.
    pub fn image_size(&self) -> u32 {
        64 << (self.model.branch_num.clamp(1, 3) - 1)
    }
}

/// `state.json` of an AttnGAN checkpoint.
pub type AttnGanState = AdversarialState<AttnGanTrainOptions>;

/// The frozen networks an AttnGAN run reads, on the plain (non-autodiff) device: never trained,
/// never checkpointed.
pub struct AttnGanFrozen {
    /// DAMSM's text encoder: the captions' word and sentence features.
    pub text_encoder: TextEncoder,
    /// DAMSM's image side for the DAMSM term: Inception-v3 and DAMSM's projections of its
    /// features. `None` trains without the term (`damsm_lambda` must then be 0).
    pub image: Option<(Inception, ImageEncoder)>,
}

impl AttnGanFrozen {
    /// The networks in inference mode (no dropout in the text encoder).
    pub fn new(text_encoder: TextEncoder, image: Option<(Inception, ImageEncoder)>) -> Self {
        Self {
            text_encoder: text_encoder.valid(),
            image: image.map(|(inception, encoder)| (inception.valid(), encoder.valid())),
        }
    }
}

/// Standard normal `[rows, cols]` on `device` (seeded per step by the loop).
fn normal(rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::random([rows, cols], Distribution::Normal(0.0, 1.0), device)
}

/// AttnGAN's generator and discriminators with their optimizers on the training device.
///
/// One Adam over all three discriminators equals the authors' three (`optimizersD`, one per
/// `netsD[i]`, all at `DISCRIMINATOR_LR`): Adam's update is per parameter, each
/// discriminator's parameters get gradients only from its own stage's loss, and the summed
/// loss's backward gives each exactly that gradient.
pub type AttnGanPair<'a> =
    GanPair<'a, AttnGanGenerator, AttnGanDiscriminators, AttnGanTrainOptions, AttnGanExtra<'a>>;

/// What an AttnGAN pair keeps besides its networks.
pub struct AttnGanExtra<'a> {
    /// The frozen DAMSM networks (and Inception), on the plain device.
    frozen: &'a AttnGanFrozen,
    /// Steps taken so far (restored with the checkpoint): when the DAMSM term applies.
    steps: u64,
}

impl PairExtra for AttnGanExtra<'_> {
    fn restore(self, _checkpoint: &Checkpoint, step: u64) -> Result<Self> {
        Ok(Self {
            steps: step,
            ..self
        })
    }
}

impl PairOptions for AttnGanTrainOptions {
    type Model = AttnGanConfig;
    fn model(&self) -> &AttnGanConfig {
        &self.model
    }
    fn run(&self) -> &RunOptions {
        &self.run
    }
    fn recipe(&self) -> Recipe {
        self.recipe.clone()
    }
    /// The schedule runs on `lr_g`; D keeps its ratio.
    fn lr(&self) -> f64 {
        self.lr_g
    }
    /// The authors keep both learning rates constant.
    fn lr_decay(&self) -> LrDecay {
        LrDecay::HalveEvery(usize::MAX)
    }
    fn rate_factors(&self) -> (f64, f64) {
        (1.0, self.lr_d / self.lr_g)
    }
}

/// Freshly initialised generator and discriminators of `options`' sizes on `device`.
fn init_networks(
    options: &AttnGanTrainOptions,
    device: &Device,
) -> (AttnGanGenerator, AttnGanDiscriminators) {
    (
        options.model.init_generator(device),
        options.model.init_discriminators(device),
    )
}

impl<'a> AttnGanPair<'a> {
    /// Freshly initialised networks on `train_device` (an autodiff device); `frozen` on its
    /// plain device. [`train_attngan`] checks that the three fit together (a set with tokens,
    /// crops of the last stage's size, matching widths); a caller stepping the pair itself
    /// must pass inputs that do.
    pub fn new(
        options: &AttnGanTrainOptions,
        frozen: &'a AttnGanFrozen,
        data: &'a GanSet,
        train_device: &Device,
    ) -> Self {
        let extra = AttnGanExtra { frozen, steps: 0 };
        GanPair::start(options, data, train_device, extra, init_networks)
    }

    /// L_DAMSM of generated images `[B, 3, S, S]` (autodiff) against the text features that
    /// conditioned them.
    fn damsm_term(&self, images: Tensor<4>, text: &TextFeatures, class_ids: &[u32]) -> Tensor<1> {
        let (inception, encoder) = self
            .extra
            .frozen
            .image
            .as_ref()
            .expect("checked by train_attngan: a DAMSM weight needs the image side");
        let size = self.options.damsm_image_size;
        let [_, _, height, width] = images.dims();
        let images = if [height, width] == [size, size] {
            images
        } else {
            // The authors' `nn.Upsample(size=(299, 299), mode='bilinear')`, written for a
            // PyTorch before 0.4, where bilinear upsampling aligned the corners.
            resize_bilinear_aligned(images, size)
        };
        let features = inception.forward(images);
        let image = encoder.forward(features.mixed_7, features.pool3);
        damsm_loss(&image, text, Some(class_ids), self.options.gammas).total()
    }
}

impl GanStep for AttnGanPair<'_> {
    type Generator = AttnGanGenerator;

    fn step(mut self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        let n = rows.len();
        let config = &self.options.model;
        let stages = config.branch_num;
        let sizes: Vec<u32> = (0..stages - 1).map(|s| 64 << s).collect(); // below the crop
        let b = GanBatch::draw_pyramid(self.data, rows, rng, &self.device, &sizes);
        let mut reals = b.smaller;
        reals.push(b.real); // [B, 3, 64 .. 256]
        let class_ids: Vec<u32> = rows.iter().map(|&r| self.data.class_ids[r]).collect();

        // Frozen text encoder on the plain device; its features enter the graph as constants.
        let tokens: Vec<&[u32]> = rows
            .iter()
            .zip(&b.caption_ids)
            .map(|(&r, &k)| {
                self.data
                    .caption_tokens(r, k)
                    .expect("checked by train_attngan: the set has tokens")
            })
            .collect();
        let plain = self.device.clone().inner();
        let text = self.extra.frozen.text_encoder.encode_ids(&tokens, &plain);
        let text = TextFeatures {
            words: text.words.autodiff(),       // [B, E, T]
            sentence: text.sentence.autodiff(), // [B, P]
            lengths: text.lengths,
        };
        let max_words = text.words.dims()[2];
        let padding = padding_mask(&text.lengths, max_words, &self.device); // [B, T]

        let noise = normal(n, config.noise_dim, &self.device);
        let eps = normal(n, config.condition_dim, &self.device);
        let out = self.nets.generator.forward(
            text.sentence.clone(),
            text.words.clone(),
            padding,
            noise,
            eps,
        );

        // Discriminators: every stage's loss (and the recipe's penalty), summed. A stage's real
        // image meets its discriminator with both sentences in the same augmentation.
        let recipe = &self.options.recipe;
        let nets_d = &self.nets.discriminator;
        let mut penalties = None;
        let mut loss_d = None;
        for (stage, (real, fake)) in reals.into_iter().zip(&out.images).enumerate() {
            let real = recipe.augment(real);
            let fake = recipe.augment(fake.clone().detach());
            let logits = nets_d.stage_logits(stage, real.clone(), fake, text.sentence.clone());
            let penalty = recipe.gradient_penalty(
                |image, sentence| nets_d.cond_logits(stage, image, sentence),
                real,
                text.sentence.clone(),
                logits.cond_real.clone(),
            );
            let loss = discriminator_loss(logits, recipe.loss);
            loss_d = Some(loss_d.map_or(loss.clone(), |total| total + loss));
            if let Some(penalty) = penalty {
                penalties = Some(penalties.map_or(penalty.clone(), |total| total + penalty));
            }
        }
        let (loss_d, value_penalty) = add_penalty(loss_d.expect("at least one stage"), penalties);
        // A non-finite loss stops the loop when it reads the losses back, before anything is
        // written: the updates are not guarded here, which would wait on the device every step.
        let value_d = value(&loss_d);
        self.nets = self.nets.update_discriminator(loss_d, lr);

        // Generator: fool every updated discriminator, keep CA near N(0, I), match the words.
        let recipe = &self.options.recipe;
        let nets_d = &self.nets.discriminator;
        let fakes = out
            .images
            .iter()
            .enumerate()
            .map(|(stage, fake)| {
                nets_d.fake_logits(stage, recipe.augment(fake.clone()), text.sentence.clone())
            })
            .collect();
        let value_kl = value(&kl_loss(out.mu.clone(), out.logvar.clone()));
        let mut loss_g = generator_loss(
            fakes,
            out.mu,
            out.logvar,
            self.options.kl_weight,
            recipe.loss,
        );
        let mut value_damsm = None;
        if self.options.damsm_at(self.extra.steps) {
            let last = out.images.last().expect("at least one stage").clone();
            let damsm = self.damsm_term(last, &text, &class_ids);
            value_damsm = Some(value(&damsm));
            loss_g = loss_g + damsm.mul_scalar(self.options.damsm_lambda);
        }
        let value_g = value(&loss_g);
        self.nets = self.nets.update_generator(loss_g, lr);
        self.extra.steps += 1;
        let mut losses = vec![("loss_d", value_d), ("loss_g", value_g), ("kl", value_kl)];
        losses.extend(value_damsm.map(|v| ("damsm", v)));
        losses.extend(value_penalty.map(|v| ("penalty", v)));
        Ok((self, losses))
    }

    fn inference_generator(&self) -> AttnGanGenerator {
        self.nets.inference_generator()
    }
}

/// How an AttnGAN run ended; the generator in inference mode on the plain device.
pub struct AttnGanRun {
    pub generator: AttnGanGenerator,
    pub steps: u64,
    pub interrupted: bool,
}

/// Why `options`, `frozen` and `data` cannot train together, if they cannot.
fn check(
    options: &AttnGanTrainOptions,
    frozen: &AttnGanFrozen,
    data: &GanSet,
    device: &Device,
) -> Result<()> {
    if let Err(e) = options.validate() {
        bail!("{e}");
    }
    if data.tokens.is_none() {
        bail!(
            "the prepared set has no caption tokens (it was written before AttnGAN needed them): delete it to rebuild"
        );
    }
    let model = &options.model;
    if data.text_dim != model.text_dim {
        bail!(
            "the embeddings have {} values, the model expects {}",
            data.text_dim,
            model.text_dim
        );
    }
    if data.image_size != options.image_size() {
        bail!(
            "AttnGAN with branch_num {} trains on {} px images, the prepared set holds {} px crops",
            model.branch_num,
            options.image_size(),
            data.image_size
        );
    }
    if data.is_empty() {
        bail!("the prepared set is empty");
    }
    let probe = data.caption_tokens(0, 0).unwrap_or_default();
    let width = frozen
        .text_encoder
        .encode_ids(&[probe], device)
        .sentence
        .dims()[1];
    if width != model.text_dim {
        bail!(
            "the text encoder gives {width} values per sentence, the model expects {}",
            model.text_dim
        );
    }
    match &frozen.image {
        None if options.damsm_lambda > 0.0 => bail!(
            "damsm_lambda {} needs Inception-v3 and the DAMSM image encoder",
            options.damsm_lambda
        ),
        Some((_, encoder)) if encoder.emb_cnn_code.weight.dims()[1] != model.text_dim => bail!(
            "the DAMSM image encoder gives {} values, the model expects {}",
            encoder.emb_cnn_code.weight.dims()[1],
            model.text_dim
        ),
        _ => Ok(()),
    }
}

/// Trains (or resumes from `place`'s checkpoints) AttnGAN on `data`, a set with caption tokens
/// whose crops are the last stage's size. `frozen` must be on `place`'s device.
pub fn train_attngan(
    options: &AttnGanTrainOptions,
    frozen: &AttnGanFrozen,
    data: &GanSet,
    place: &RunPlace<AttnGanGenerator>,
) -> Result<AttnGanRun> {
    check(options, frozen, data, place.device)?;
    let extra = AttnGanExtra { frozen, steps: 0 };
    let end = AttnGanPair::train(options, data, place, extra, init_networks)?;
    Ok(AttnGanRun {
        generator: end.pair.nets.inference_generator(),
        steps: end.steps,
        interrupted: end.interrupted,
    })
}
