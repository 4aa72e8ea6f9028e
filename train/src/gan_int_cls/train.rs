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
    AdversarialState, FamilyOptions, GanOptions, GanPair, GanStep, RunPlace, Stepped, add_penalty,
    loss as value,
};

/// Settings of a GAN-INT-CLS run (the paper's: Adam 2e-4, beta1 0.5, batch 64, 600 epochs, lr
/// halved every 100 epochs, interpolation at beta 0.5).
pub type GanTrainOptions = GanOptions<GanIntClsConfig, GanIntClsLosses>;

/// GAN-INT-CLS's own terms of the generator loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanIntClsLosses {
    /// Weight of the GAN-INT term in the generator loss (0 turns GAN-INT off).
    pub interp_weight: f32,
    /// Interpolation coefficient beta (0.5 in the paper).
    pub beta: f32,
}

impl FamilyOptions for GanIntClsLosses {}

/// `state.json` of a GAN-INT-CLS checkpoint.
pub type GanState = AdversarialState<GanTrainOptions>;

/// How a GAN run ended, and what it produced (on the inference device).
pub struct GanRun {
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub steps: u64,
    pub interrupted: bool,
}

/// Freshly initialised networks of `options`' sizes on `device` (DCGAN initialisation).
fn init_networks(options: &GanTrainOptions, device: &Device) -> (Generator, Discriminator) {
    (
        options.model.init_generator(device),
        options.model.init_discriminator(device),
    )
}

/// GAN-INT-CLS's networks and optimizers on the training device, for the shared loop.
pub type GanIntClsPair<'a> = GanPair<'a, Generator, Discriminator, GanTrainOptions>;

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
        let loss_d = discriminator_loss(
            real_right,
            d.forward(real, b.wrong),
            d.forward(recipe.augment(fake), b.right.clone()),
            loss,
        );
        let (loss_d, value_penalty) = add_penalty(loss_d, penalty);
        let value_d = value(&loss_d);
        self.nets = self.nets.update_discriminator(loss_d, lr);

        // Generator: fool D on the right text and on interpolated texts (GAN-INT).
        let recipe = &self.options.recipe;
        let fake = recipe.augment(self.nets.generator.forward(noise, b.right.clone()));
        let interpolated = (self.options.family.interp_weight > 0.0).then(|| {
            let text =
                interpolate_text(b.right.clone(), b.partner.clone(), self.options.family.beta);
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
            self.options.family.interp_weight,
            loss,
        );
        // A non-finite loss stops the loop when it reads the losses back, before anything is
        // written: the update is not guarded here, which would wait on the device every step.
        let value_g = value(&loss_g);
        self.nets = self.nets.update_generator(loss_g, lr);
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
    let end = GanIntClsPair::train(options, data, place, (), init_networks)?;
    Ok(GanRun {
        generator: end.pair.nets.inference_generator(),
        discriminator: end.pair.nets.discriminator.valid(),
        steps: end.steps,
        interrupted: end.interrupted,
    })
}
