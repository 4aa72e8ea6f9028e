//! GAN-INT-CLS training (Reed et al. 2016, Algorithm 1, with the authors' `main_cls_int.lua`
//! weighting): each step updates D on (real, right text), (real, wrong text) and (fake, right
//! text), then G on (fake, right text) and on generated images of interpolated texts.
//!
//! Text enters as precomputed sentence embeddings (the frozen DAMSM text encoder's), computed
//! once per caption. [`GanIntClsPair`] is the model-specific part; the loop (schedule,
//! reseeding per step so that resuming is exact, checkpoints, metrics, NaN stop) is the shared
//! one of [`crate::run::adversarial`].

use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use t2i::gan_int_cls::{
    Discriminator, GanIntClsConfig, Generator, discriminator_loss, generator_loss, interpolate_text,
};

use crate::data::gan_set::{GanBatch, GanSet};
use crate::run::adversarial::{
    AdversarialState, GanPair, GanStep, LrDecay, PairOptions, RunOptions, RunPlace, Stepped,
    train_adversarial,
};
use crate::run::recipe::Recipe;

/// Settings of a GAN-INT-CLS run (the paper's: Adam 2e-4, beta1 0.5, batch 64, 600 epochs, lr
/// halved every 100 epochs, interpolation at beta 0.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanTrainOptions {
    pub model: GanIntClsConfig,
    /// Batch, length, checkpoints, seed and limits.
    #[serde(flatten)]
    pub run: RunOptions,
    pub lr: f64,
    /// Halve the learning rate every this many epochs.
    pub lr_decay_every: usize,
    /// Weight of the GAN-INT term in the generator loss (0 turns GAN-INT off).
    pub interp_weight: f32,
    /// Interpolation coefficient beta (0.5 in the paper).
    pub beta: f32,
    /// Loss, averaging, augmentation, penalties and per-network rates ([`Recipe`]); the
    /// papers' when absent (checkpoints written before it had none).
    #[serde(default)]
    pub recipe: Recipe,
}

/// `state.json` of a GAN-INT-CLS checkpoint.
pub type GanState = AdversarialState<GanTrainOptions>;

/// How a GAN run ended, and what it produced (on the inference device).
pub struct GanRun {
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub steps: u64,
    pub interrupted: bool,
}

/// GAN-INT-CLS's networks and optimizers on the training device, for the shared loop.
pub type GanIntClsPair<'a> = GanPair<'a, Generator, Discriminator, GanTrainOptions>;

impl PairOptions for GanTrainOptions {
    fn model_key(&self) -> String {
        self.model.to_string()
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

impl<'a> GanIntClsPair<'a> {
    /// Freshly initialised networks (DCGAN initialisation) on `train_device`.
    pub fn new(options: &GanTrainOptions, data: &'a GanSet, train_device: &Device) -> Self {
        GanPair::start(options, data, train_device, (), |options, device| {
            (
                options.model.init_generator(device),
                options.model.init_discriminator(device),
            )
        })
    }
}

impl GanStep for GanIntClsPair<'_> {
    type Generator = Generator;

    fn step(mut self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        let batch = rows.len();
        let noise_dim = self.options.model.noise_dim;
        let recipe = &self.options.recipe;
        let loss = recipe.loss;
        let b = GanBatch::draw(self.data, rows, rng, &self.device);

        // Discriminator: real/right is real; real/wrong and fake/right are fake. The real
        // image meets D with both texts in the same augmentation.
        let noise = Tensor::<2>::random(
            [batch, noise_dim],
            Distribution::Normal(0.0, 1.0),
            &self.device,
        );
        let fake = self
            .nets
            .generator
            .forward(noise.clone(), b.right.clone())
            .detach();
        let d = &self.nets.discriminator;
        let real = recipe.augment(b.real);
        let real_right = d.forward(real.clone(), b.right.clone());
        let penalty = recipe.gradient_penalty(
            |image, text| d.forward(image, text),
            real.clone(),
            b.right.clone(),
            real_right.clone(),
        );
        let mut loss_d = discriminator_loss(
            real_right,
            d.forward(real, b.wrong),
            d.forward(recipe.augment(fake), b.right.clone()),
            loss,
        );
        let value_penalty = penalty.map(|penalty| {
            let value = penalty.clone().into_scalar::<f32>();
            loss_d = loss_d.clone() + penalty;
            value
        });
        let value_d = loss_d.clone().into_scalar::<f32>();
        self.nets = self.nets.update_discriminator(loss_d, lr);

        // Generator: fool D on the right text and on interpolated texts (GAN-INT).
        let recipe = &self.options.recipe;
        let fake = recipe.augment(self.nets.generator.forward(noise, b.right.clone()));
        let interpolated = (self.options.interp_weight > 0.0).then(|| {
            let text = interpolate_text(b.right.clone(), b.partner.clone(), self.options.beta);
            let noise = Tensor::<2>::random(
                [batch, noise_dim],
                Distribution::Normal(0.0, 1.0),
                &self.device,
            );
            let image = recipe.augment(self.nets.generator.forward(noise, text.clone()));
            self.nets.discriminator.forward(image, text)
        });
        let loss_g = generator_loss(
            self.nets.discriminator.forward(fake, b.right),
            interpolated,
            self.options.interp_weight,
            loss,
        );
        let value_g = loss_g.clone().into_scalar::<f32>();
        if value_g.is_finite() && value_d.is_finite() {
            self.nets = self.nets.update_generator(loss_g, lr);
        }
        let mut losses = vec![("loss_d", value_d), ("loss_g", value_g)];
        losses.extend(value_penalty.map(|v| ("penalty", v)));
        Ok((self, losses))
    }

    fn inference_generator(&self) -> Generator {
        self.nets.inference_generator()
    }
}

/// Trains (or resumes from `checkpoints`) GAN-INT-CLS on `data` with the shared loop.
pub fn train_gan_int_cls(
    options: &GanTrainOptions,
    data: &GanSet,
    place: &RunPlace<Generator>,
) -> Result<GanRun> {
    if data.text_dim != options.model.text_dim {
        bail!(
            "the embeddings have {} values, the model expects {}",
            data.text_dim,
            options.model.text_dim
        );
    }
    let train_device = place.device.clone().autodiff();
    let pair = GanIntClsPair::new(options, data, &train_device);
    let end = train_adversarial(pair, &options.schedule(data.len()), place, &train_device)?;
    Ok(GanRun {
        generator: end.pair.nets.inference_generator(),
        discriminator: end.pair.nets.discriminator.valid(),
        steps: end.steps,
        interrupted: end.interrupted,
    })
}
