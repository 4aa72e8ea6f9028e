//! GAN-INT-CLS training (Reed et al. 2016, Algorithm 1, with the authors' `main_cls_int.lua`
//! weighting): each step updates D on (real, right text), (real, wrong text) and (fake, right
//! text), then G on (fake, right text) and on generated images of interpolated texts.
//!
//! Text enters as precomputed sentence embeddings (the frozen DAMSM text encoder's), computed
//! once per caption. [`GanIntClsPair`] is the model-specific part; the loop (schedule,
//! reseeding per step so that resuming is exact, checkpoints, metrics, NaN stop) is the shared
//! one of [`crate::adversarial`].

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use image::RgbImage;
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use t2i::damsm::TextEncoder;
use t2i::gan_int_cls::{
    Discriminator, GanIntClsConfig, Generator, discriminator_loss, generator_loss, interpolate_text,
};
use t2i::vocab::Vocabulary;

use crate::adversarial::{
    AdversarialPair, AdversarialState, GanNetworks, Schedule, train_adversarial,
};
pub use crate::adversarial::{SampleHook, gan_learning_rate};
use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::data::preprocess::{
    load_size, pyramid, random_crop_flip, resize_shorter_side, to_chw_normalized,
};

/// Output size of GAN-INT-CLS (and of StackGAN's Stage-I).
pub const IMAGE_SIZE: u32 = 64;

/// Training images with the sentence embeddings of their captions.
pub struct GanSet {
    /// The size of the random crops a step trains on (64, or 256 for StackGAN's Stage-II).
    pub image_size: u32,
    /// Images at the crop's load size (76 for 64), so each step only crops and flips.
    pub images: Vec<RgbImage>,
    pub class_ids: Vec<u32>,
    /// Per image: the embeddings of its captions, `text_dim` values each, concatenated.
    pub embeddings: Vec<Vec<f32>>,
    pub text_dim: usize,
    /// Per image, per caption (in the order of `embeddings`): the caption's token ids. AttnGAN
    /// runs the text encoder on them every step; GAN-INT-CLS and StackGAN read only the
    /// embeddings. `None` for a set prepared before tokens were stored.
    pub tokens: Option<Vec<Vec<Vec<u32>>>>,
}

impl GanSet {
    /// Pairs images with caption embeddings for `image_size` crops; images without any
    /// embedding are dropped.
    pub fn new(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        text_dim: usize,
    ) -> Self {
        Self::build(image_size, images, class_ids, embeddings, None, text_dim)
    }

    /// [`GanSet::new`] with the token ids of every caption: per image, one list per caption,
    /// in the order of its embeddings.
    ///
    /// # Panics
    /// When an image has another number of token lists than of embeddings.
    pub fn with_tokens(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        tokens: Vec<Vec<Vec<u32>>>,
        text_dim: usize,
    ) -> Self {
        assert_eq!(
            tokens.len(),
            embeddings.len(),
            "one token list set per image"
        );
        for (i, (t, e)) in tokens.iter().zip(&embeddings).enumerate() {
            assert_eq!(
                t.len() * text_dim,
                e.len(),
                "image {i}: {} token lists for {} embeddings of {text_dim} values",
                t.len(),
                e.len() / text_dim.max(1)
            );
        }
        Self::build(
            image_size,
            images,
            class_ids,
            embeddings,
            Some(tokens),
            text_dim,
        )
    }

    fn build(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        tokens: Option<Vec<Vec<Vec<u32>>>>,
        text_dim: usize,
    ) -> Self {
        let mut set = GanSet {
            image_size,
            images: Vec::new(),
            class_ids: Vec::new(),
            embeddings: Vec::new(),
            text_dim,
            tokens: tokens.as_ref().map(|_| Vec::new()),
        };
        let mut tokens = tokens.map(Vec::into_iter);
        for ((image, class), embedding) in images.into_iter().zip(class_ids).zip(embeddings) {
            let image_tokens = tokens.as_mut().and_then(Iterator::next);
            if embedding.is_empty() {
                continue;
            }
            set.images
                .push(resize_shorter_side(&image, load_size(image_size)));
            set.class_ids.push(class);
            set.embeddings.push(embedding);
            if let (Some(all), Some(t)) = (set.tokens.as_mut(), image_tokens) {
                all.push(t);
            }
        }
        set
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Number of captions (embeddings) of image `image`.
    pub fn captions(&self, image: usize) -> usize {
        self.embeddings[image].len() / self.text_dim
    }

    /// The embedding of caption `caption` of image `image`: `text_dim` values.
    pub fn embedding(&self, image: usize, caption: usize) -> &[f32] {
        &self.embeddings[image][caption * self.text_dim..(caption + 1) * self.text_dim]
    }

    /// The token ids of caption `caption` of image `image`; `None` when the set has no tokens.
    pub fn caption_tokens(&self, image: usize, caption: usize) -> Option<&[u32]> {
        self.tokens
            .as_ref()
            .map(|all| all[image][caption].as_slice())
    }

    /// One of the image's captions, uniformly at random.
    pub(crate) fn draw_caption(&self, image: usize, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.captions(image))
    }
}

/// Sentence embeddings of captions with a frozen text encoder, in batches; a caption with no
/// known word has none (`None`).
pub fn sentence_embeddings(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    captions: &[&str],
    device: &Device,
) -> Vec<Option<Vec<f32>>> {
    let encoded: Vec<Vec<u32>> = captions
        .iter()
        .map(|c| vocabulary.encode(c).tokens)
        .collect();
    let mut out: Vec<Option<Vec<f32>>> = vec![None; captions.len()];
    let known: Vec<usize> = (0..captions.len())
        .filter(|&i| !encoded[i].is_empty())
        .collect();
    for chunk in known.chunks(256) {
        let tokens: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
        let sentence = encoder.encode_ids(&tokens, device).sentence;
        let dim = sentence.dims()[1];
        let values = sentence
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("converted to f32");
        for (row, &i) in chunk.iter().enumerate() {
            out[i] = Some(values[row * dim..(row + 1) * dim].to_vec());
        }
    }
    out
}

/// Settings of a GAN-INT-CLS run (the paper's: Adam 2e-4, beta1 0.5, batch 64, 600 epochs, lr
/// halved every 100 epochs, interpolation at beta 0.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanTrainOptions {
    pub model: GanIntClsConfig,
    pub batch_size: usize,
    pub max_epoch: usize,
    pub lr: f64,
    /// Halve the learning rate every this many epochs.
    pub lr_decay_every: usize,
    /// Weight of the GAN-INT term in the generator loss (0 turns GAN-INT off).
    pub interp_weight: f32,
    /// Interpolation coefficient beta (0.5 in the paper).
    pub beta: f32,
    /// Checkpoint every this many steps (0: only at the end or on interrupt).
    pub checkpoint_steps: u64,
    pub seed: u64,
    /// Stop (with a checkpoint) after this many steps in total.
    pub max_steps: Option<u64>,
    /// Stop (with a checkpoint) after this many seconds of training in this session.
    #[serde(default)]
    pub max_seconds: Option<f64>,
    pub progress: bool,
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

/// Adam as the paper: beta1 0.5.
pub fn gan_adam() -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init()
}

/// GAN-INT-CLS's networks and optimizers on the training device, for the shared loop.
pub struct GanIntClsPair<'a> {
    nets: GanNetworks<Generator, Discriminator>,
    options: GanTrainOptions,
    data: &'a GanSet,
    device: Device,
}

impl<'a> GanIntClsPair<'a> {
    /// Freshly initialised networks (DCGAN initialisation) on `train_device`.
    pub fn new(options: &GanTrainOptions, data: &'a GanSet, train_device: &Device) -> Self {
        train_device.seed(options.seed);
        Self {
            nets: GanNetworks::new(
                options.model.init_generator(train_device),
                options.model.init_discriminator(train_device),
            ),
            options: options.clone(),
            data,
            device: train_device.clone(),
        }
    }
}

impl AdversarialPair for GanIntClsPair<'_> {
    type Generator = Generator;
    type Options = GanTrainOptions;

    fn options(&self) -> &GanTrainOptions {
        &self.options
    }

    fn fits(&self, saved: &GanTrainOptions) -> bool {
        saved.model.to_string() == self.options.model.to_string()
    }

    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.nets.parts()
    }

    fn restore(self, checkpoint: &Checkpoint) -> Result<Self> {
        Ok(Self {
            nets: self.nets.restore(checkpoint)?,
            ..self
        })
    }

    fn step(
        mut self,
        rows: &[usize],
        rng: &mut StdRng,
        lr: f64,
    ) -> Result<(Self, Vec<(&'static str, f32)>)> {
        let batch = rows.len();
        let noise_dim = self.options.model.noise_dim;
        let b = GanBatch::draw(self.data, rows, rng, &self.device);

        // Discriminator: real/right is real; real/wrong and fake/right are fake.
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
        let loss_d = discriminator_loss(
            d.forward(b.real.clone(), b.right.clone()),
            d.forward(b.real, b.wrong),
            d.forward(fake, b.right.clone()),
        );
        let value_d = loss_d.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss_d.backward(), &self.nets.discriminator);
        self.nets.discriminator = self.nets.optim_d.step(lr, self.nets.discriminator, grads);

        // Generator: fool D on the right text and on interpolated texts (GAN-INT).
        let fake = self.nets.generator.forward(noise, b.right.clone());
        let interpolated = (self.options.interp_weight > 0.0).then(|| {
            let text = interpolate_text(b.right.clone(), b.partner.clone(), self.options.beta);
            let noise = Tensor::<2>::random(
                [batch, noise_dim],
                Distribution::Normal(0.0, 1.0),
                &self.device,
            );
            self.nets
                .discriminator
                .forward(self.nets.generator.forward(noise, text.clone()), text)
        });
        let loss_g = generator_loss(
            self.nets.discriminator.forward(fake, b.right),
            interpolated,
            self.options.interp_weight,
        );
        let value_g = loss_g.clone().into_scalar::<f32>();
        if value_g.is_finite() && value_d.is_finite() {
            let grads = GradientsParams::from_grads(loss_g.backward(), &self.nets.generator);
            self.nets.generator = self.nets.optim_g.step(lr, self.nets.generator, grads);
        }
        Ok((self, vec![("loss_d", value_d), ("loss_g", value_g)]))
    }

    fn inference_generator(&self) -> Generator {
        self.nets.generator.valid()
    }
}

/// Trains (or resumes from `checkpoints`) GAN-INT-CLS on `data` with the shared loop.
pub fn train_gan_int_cls(
    options: &GanTrainOptions,
    data: &GanSet,
    checkpoints: &Checkpoints,
    metrics_path: Option<PathBuf>,
    samples: Option<&SampleHook<Generator>>,
    device: &Device,
    stop: &AtomicBool,
) -> Result<GanRun> {
    if data.text_dim != options.model.text_dim {
        bail!(
            "the embeddings have {} values, the model expects {}",
            data.text_dim,
            options.model.text_dim
        );
    }
    let train_device = device.clone().autodiff();
    let pair = GanIntClsPair::new(options, data, &train_device);
    let schedule = Schedule {
        items: data.len(),
        batch_size: options.batch_size,
        max_epoch: options.max_epoch,
        lr: options.lr,
        lr_decay_every: options.lr_decay_every,
        checkpoint_steps: options.checkpoint_steps,
        seed: options.seed,
        max_steps: options.max_steps,
        max_seconds: options.max_seconds,
        progress: options.progress,
    };
    let end = train_adversarial(
        pair,
        &schedule,
        checkpoints,
        metrics_path,
        samples,
        &train_device,
        stop,
    )?;
    Ok(GanRun {
        generator: end.pair.nets.generator.valid(),
        discriminator: end.pair.nets.discriminator.valid(),
        steps: end.steps,
        interrupted: end.interrupted,
    })
}

/// One training batch of a [`GanSet`].
pub(crate) struct GanBatch {
    /// Real images, cropped and flipped: `[B, 3, S, S]`.
    pub real: Tensor<4>,
    /// The same crops downsampled to each size [`GanBatch::draw_pyramid`] was asked for
    /// (AttnGAN's earlier stages), `[B, 3, s, s]` each; empty from [`GanBatch::draw`].
    pub smaller: Vec<Tensor<4>>,
    /// Which caption of its image each row drew (its embedding is `right`'s row, its tokens
    /// [`GanSet::caption_tokens`]).
    pub caption_ids: Vec<usize>,
    /// One caption embedding of each image: `[B, P]`.
    pub right: Tensor<2>,
    /// A caption of another image, of another class where the batch has one: `[B, P]`.
    pub wrong: Tensor<2>,
    /// The caption embedding GAN-INT mixes with `right` (the next image's): `[B, P]`.
    pub partner: Tensor<2>,
}

impl GanBatch {
    pub(crate) fn draw(data: &GanSet, rows: &[usize], rng: &mut StdRng, device: &Device) -> Self {
        Self::draw_pyramid(data, rows, rng, device, &[])
    }

    /// [`GanBatch::draw`], plus each crop downsampled (bilinear, as the authors' `Scale`) to
    /// every one of `smaller` sizes, into [`GanBatch::smaller`]. Draws the same random numbers
    /// as [`GanBatch::draw`].
    pub(crate) fn draw_pyramid(
        data: &GanSet,
        rows: &[usize],
        rng: &mut StdRng,
        device: &Device,
        smaller: &[u32],
    ) -> Self {
        let n = rows.len();
        let size = data.image_size as usize;
        let mut pixels = Vec::with_capacity(n * 3 * size * size);
        let mut small_pixels: Vec<Vec<f32>> = vec![Vec::new(); smaller.len()];
        for &r in rows {
            let crop = random_crop_flip(&data.images[r], data.image_size, rng);
            for (out, image) in small_pixels.iter_mut().zip(pyramid(&crop, smaller)) {
                out.extend(to_chw_normalized(&image));
            }
            pixels.extend(to_chw_normalized(&crop));
        }
        let caption_ids: Vec<usize> = rows.iter().map(|&r| data.draw_caption(r, rng)).collect();
        let captions: Vec<&[f32]> = rows
            .iter()
            .zip(&caption_ids)
            .map(|(&r, &k)| data.embedding(r, k))
            .collect();
        let wrong: Vec<&[f32]> = (0..n)
            .map(|i| {
                let other = (1..n)
                    .map(|k| (i + k) % n)
                    .find(|&j| data.class_ids[rows[j]] != data.class_ids[rows[i]])
                    .unwrap_or((i + 1) % n);
                captions[other]
            })
            .collect();
        let partner: Vec<&[f32]> = (0..n).map(|i| captions[(i + 1) % n]).collect();
        let text = |rows: &[&[f32]]| {
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [n, data.text_dim]), device)
        };
        GanBatch {
            real: Tensor::from_data(TensorData::new(pixels, [n, 3, size, size]), device),
            smaller: small_pixels
                .into_iter()
                .zip(smaller)
                .map(|(p, &s)| {
                    let s = s as usize;
                    Tensor::from_data(TensorData::new(p, [n, 3, s, s]), device)
                })
                .collect(),
            caption_ids,
            right: text(&captions),
            wrong: text(&wrong),
            partner: text(&partner),
        }
    }
}
