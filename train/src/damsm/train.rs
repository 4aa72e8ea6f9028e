//! DAMSM pretraining (AttnGAN `pretrain_DAMSM.py`) on cached Inception features.
//!
//! The image side reads the frozen Inception's features from the cache instead of running the
//! network every step, so an epoch on the CPU costs only the text encoder, the two projections
//! and the losses. One consequence: no random crops or flips of the photos during DAMSM
//! training (the cache holds one view per image).
//!
//! Deviations from the reference, all deliberate:
//! - gradient clipping (`RNN_GRAD_CLIP`) bounds each text-encoder tensor's gradient norm
//!   (burn's `GradientClipping::Norm`), not the norm of all of them together;
//! - every step reseeds the device and the caption choice from (seed, step), so a resumed run
//!   continues exactly as the uninterrupted one would.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use t2i::damsm::{Damsm, DamsmConfig, DamsmGammas, damsm_loss};
use t2i::metrics::{Mismatches, RPrecision, r_precision};
use t2i::vocab::Vocabulary;

use crate::data::Dataset;
use crate::data::features::CachedFeatures;
use crate::run::adversarial::{
    AdversarialPair, LrDecay, RunOptions, RunPlace, Schedule, Stepped, loss as value,
    train_adversarial,
};
use crate::run::checkpoint::{Checkpoint, load_optimizer, module_bytes, optimizer_bytes};

/// Images with their captions (already tokenized) and the cache rows of their features.
#[derive(Debug, Clone, Default)]
pub struct PairedSet {
    /// Row of each image in the feature cache.
    pub feature_rows: Vec<usize>,
    /// Class of each image (for same-class masking and the species-aware R-precision).
    pub class_ids: Vec<u32>,
    /// Token ids of each image's captions; captions with no known word are left out.
    pub captions: Vec<Vec<Vec<u32>>>,
}

impl PairedSet {
    /// Pairs the chosen samples of `dataset` with their cached features. Every chosen sample
    /// must be in the cache; images none of whose captions has a known word are dropped.
    pub fn new(
        dataset: &Dataset,
        sample_indices: &[usize],
        features: &CachedFeatures,
        vocabulary: &Vocabulary,
    ) -> Result<Self> {
        let mut set = PairedSet::default();
        for &i in sample_indices {
            let sample = &dataset.samples[i];
            let row = features.row(&sample.key).with_context(|| {
                format!(
                    "image {} has no cached features: run `t2i features` first",
                    sample.image_path.display()
                )
            })?;
            let captions = sample.captions.iter().map(|c| vocabulary.encode(c).tokens);
            set.push(row, sample.class_id, captions);
        }
        Ok(set)
    }

    /// The same images with other captions: each image gets its species' captions from
    /// `by_class` (class id -> captions), read as the page reads a visitor's caption (unknown
    /// words mapped where the word map knows them). Images of a species without captions, and
    /// captions with no word read, are left out.
    pub fn with_class_captions(
        &self,
        by_class: &std::collections::HashMap<u32, Vec<String>>,
        vocabulary: &Vocabulary,
    ) -> Self {
        let mut set = PairedSet::default();
        for (&row, &class) in self.feature_rows.iter().zip(&self.class_ids) {
            let captions = by_class.get(&class).into_iter().flatten();
            set.push(row, class, captions.map(|c| vocabulary.read(c).tokens));
        }
        set
    }

    /// Adds an image (its cache row and class) with its captions' tokens; captions with no
    /// word read are dropped, and an image left without captions is left out.
    fn push(&mut self, row: usize, class_id: u32, captions: impl Iterator<Item = Vec<u32>>) {
        let captions: Vec<Vec<u32>> = captions.filter(|t| !t.is_empty()).collect();
        if !captions.is_empty() {
            self.feature_rows.push(row);
            self.class_ids.push(class_id);
            self.captions.push(captions);
        }
    }

    pub fn len(&self) -> usize {
        self.feature_rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.feature_rows.is_empty()
    }
}

/// Everything a DAMSM training run needs besides its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DamsmTrainOptions {
    pub model: DamsmConfig,
    /// Batch, length, checkpoints (every `checkpoint_steps` steps, 0 for never, besides the
    /// snapshots), seed and limits.
    #[serde(flatten)]
    pub run: RunOptions,
    /// Snapshot every this many epochs (and at the end).
    pub snapshot_interval: usize,
    pub encoder_lr: f64,
    pub rnn_grad_clip: f64,
    pub gammas: DamsmGammas,
}

/// What `state.json` of a DAMSM checkpoint holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DamsmState {
    /// Steps completed.
    pub step: u64,
    pub options: DamsmTrainOptions,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    StepLimit,
    Interrupted,
}

/// The result of [`train_damsm`].
pub struct DamsmRun {
    /// The trained encoders (on the inference device).
    pub damsm: Damsm,
    pub steps: u64,
    pub end: RunEnd,
    pub seconds: f64,
}

/// `TRAIN.ENCODER_LR` decays by 0.98 per epoch until it falls below a tenth of its start.
pub fn learning_rate(base: f64, epoch: usize) -> f64 {
    LrDecay::DamsmEncoder.at(base, epoch)
}

struct Optimizers {
    text: ModuleOptimizer,
    image: ModuleOptimizer,
}

fn optimizers(options: &DamsmTrainOptions) -> Optimizers {
    // Adam with betas (0.5, 0.999) and PyTorch's epsilon, as `pretrain_DAMSM.py`.
    let adam = AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8);
    Optimizers {
        text: adam
            .clone()
            .with_grad_clipping(Some(GradientClippingConfig::Norm(
                options.rnn_grad_clip as f32,
            )))
            .init(),
        image: adam.init(),
    }
}

/// DAMSM's encoders and optimizers on the training device, with what a step and the epoch's
/// evaluation read, for the shared loop.
struct DamsmPair<'a> {
    damsm: Damsm,
    optim: Optimizers,
    options: DamsmTrainOptions,
    vocabulary: &'a Vocabulary,
    features: &'a CachedFeatures,
    train: &'a PairedSet,
    valid: Option<&'a PairedSet>,
    /// The training (autodiff) device and the plain one evaluation runs on.
    device: Device,
    plain: Device,
}

impl AdversarialPair for DamsmPair<'_> {
    type Generator = Damsm;
    type Options = DamsmTrainOptions;

    fn options(&self) -> &DamsmTrainOptions {
        &self.options
    }

    /// The same encoders, and the same batch size (the loss contrasts a batch's pairs).
    fn fits(&self, saved: &DamsmTrainOptions) -> bool {
        saved.model.to_string() == self.options.model.to_string()
            && saved.run.batch_size == self.options.run.batch_size
    }

    fn parts(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![
            ("damsm.bpk", module_bytes(&self.damsm)?),
            ("optim_text.bpk", optimizer_bytes(&self.optim.text)?),
            ("optim_image.bpk", optimizer_bytes(&self.optim.image)?),
            ("vocab.json", self.vocabulary.to_json().into_bytes()),
        ])
    }

    fn restore(self, checkpoint: &Checkpoint) -> Result<Self> {
        let part = |name: &str| checkpoint.part(name);
        let optim = Optimizers {
            text: load_optimizer(self.optim.text, part("optim_text.bpk")?, "optim_text.bpk")?,
            image: load_optimizer(
                self.optim.image,
                part("optim_image.bpk")?,
                "optim_image.bpk",
            )?,
        };
        Ok(Self {
            damsm: checkpoint.module(self.damsm, "damsm.bpk")?,
            optim,
            ..self
        })
    }

    fn step(self, rows: &[usize], rng: &mut StdRng, lr: f64) -> Stepped<Self> {
        let batch = Batch::draw(self.train, self.features, rows, rng, &self.device);
        let damsm = self.damsm;
        let text = damsm.text_encoder.encode_ids(&batch.captions, &self.device);
        let image = damsm.image_encoder.forward(batch.mixed_7, batch.pool3);
        let loss = damsm_loss(&image, &text, Some(&batch.class_ids), self.options.gammas);
        // A non-finite loss stops the loop when it reads the losses back, keeping the last
        // good checkpoint: the update is not guarded here, which would wait on the device.
        let words = loss.words_image_to_text.clone() + loss.words_text_to_image.clone();
        let sentence = loss.sentence_image_to_text.clone() + loss.sentence_text_to_image.clone();
        let losses = vec![
            ("words_loss", value(&words)),
            ("sentence_loss", value(&sentence)),
        ];
        let mut grads = loss.total().backward();
        let text_grads = GradientsParams::from_module(&mut grads, &damsm.text_encoder);
        let image_grads = GradientsParams::from_module(&mut grads, &damsm.image_encoder);
        let Damsm {
            text_encoder,
            image_encoder,
        } = damsm;
        let mut optim = self.optim;
        let damsm = Damsm {
            text_encoder: optim.text.step(lr, text_encoder, text_grads),
            image_encoder: optim.image.step(lr, image_encoder, image_grads),
        };
        Ok((
            Self {
                damsm,
                optim,
                ..self
            },
            losses,
        ))
    }

    fn inference_generator(&self) -> Damsm {
        self.damsm.valid()
    }

    /// R-precision on the validation images after each epoch.
    fn epoch_done(&self, epoch: usize, step: u64) -> Result<Option<(String, serde_json::Value)>> {
        let Some(valid) = self.valid else {
            return Ok(None);
        };
        let seed = self.options.run.seed;
        let report = evaluate(&self.damsm.valid(), self.features, valid, seed, &self.plain)?;
        let line = format!(
            "epoch {epoch}: R-precision {:.3} ± {:.3}, species-aware {:.3} ± {:.3} ({} images)",
            report.any.mean,
            report.any.std,
            report.species.mean,
            report.species.std,
            report.any.images
        );
        let row = serde_json::json!({
            "step": step, "epoch": epoch, "valid_r_precision": report.any.mean,
            "valid_r_precision_species": report.species.mean,
        });
        Ok(Some((line, row)))
    }
}

/// Trains (or resumes, when `place`'s checkpoints hold one) DAMSM on `train` with the shared
/// loop, evaluating R-precision on `valid` after each epoch (into `place`'s metrics log).
pub fn train_damsm(
    options: &DamsmTrainOptions,
    vocabulary: &Vocabulary,
    features: &CachedFeatures,
    train: &PairedSet,
    valid: Option<&PairedSet>,
    place: &RunPlace<Damsm>,
) -> Result<DamsmRun> {
    let device = place.device;
    if train.len() < options.run.batch_size {
        bail!(
            "{} training images, fewer than one batch of {}",
            train.len(),
            options.run.batch_size
        );
    }
    let train_device = device.clone().autodiff();
    // burn's random numbers come from one generator per device: seed it before the
    // initial weights (the loop reseeds it before every step).
    train_device.seed(options.run.seed);
    let pair = DamsmPair {
        damsm: options.model.init(&train_device),
        optim: optimizers(options),
        options: options.clone(),
        vocabulary,
        features,
        train,
        valid,
        device: train_device.clone(),
        plain: device.clone(),
    };
    let schedule = Schedule {
        items: train.len(),
        lr: options.encoder_lr,
        lr_decay: LrDecay::DamsmEncoder,
        checkpoint_epochs: options.snapshot_interval.max(1),
        run: options.run.clone(),
    };
    let started = Instant::now();
    let end = train_adversarial(pair, &schedule, place, &train_device)?;
    let total_steps = (train.len() / options.run.batch_size * options.run.max_epoch) as u64;
    Ok(DamsmRun {
        damsm: end.pair.damsm.valid(),
        steps: end.steps,
        end: if end.interrupted {
            RunEnd::Interrupted
        } else if end.steps < total_steps {
            RunEnd::StepLimit
        } else {
            RunEnd::Finished
        },
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One training batch: a random caption per image (as AttnGAN's loader draws `sent_ix`) and
/// the images' cached features.
struct Batch<'a> {
    captions: Vec<&'a [u32]>,
    mixed_7: Tensor<4>,
    pool3: Tensor<2>,
    class_ids: Vec<u32>,
}

impl<'a> Batch<'a> {
    fn draw(
        set: &'a PairedSet,
        features: &CachedFeatures,
        rows: &[usize],
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let captions = rows
            .iter()
            .map(|&r| {
                let options = &set.captions[r];
                options[rng.random_range(0..options.len())].as_slice()
            })
            .collect();
        let feature_rows: Vec<usize> = rows.iter().map(|&r| set.feature_rows[r]).collect();
        let (mixed_7, pool3) = features.batch(&feature_rows, device);
        Batch {
            captions,
            mixed_7,
            pool3,
            class_ids: rows.iter().map(|&r| set.class_ids[r]).collect(),
        }
    }
}

/// Global DAMSM vectors of each image (from `pool3` alone) and of one of its captions
/// (chosen by `seed`), row-major, with their width.
pub fn global_vectors(
    damsm: &Damsm,
    features: &CachedFeatures,
    set: &PairedSet,
    seed: u64,
    device: &Device,
) -> (Vec<f32>, Vec<f32>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let chosen: Vec<&[u32]> = set
        .captions
        .iter()
        .map(|c| c[rng.random_range(0..c.len())].as_slice())
        .collect();
    let mut images = Vec::new();
    let mut captions = Vec::new();
    let mut dim = 0;
    let all: Vec<usize> = (0..set.len()).collect();
    for chunk in all.chunks(128) {
        let picked: Vec<&[u32]> = chunk.iter().map(|&r| chosen[r]).collect();
        let feature_rows: Vec<usize> = chunk.iter().map(|&r| set.feature_rows[r]).collect();
        let image = damsm
            .image_encoder
            .emb_cnn_code
            .forward(features.pool3_batch(&feature_rows, device));
        let text = damsm.text_encoder.encode_ids(&picked, device);
        dim = image.dims()[1];
        images.extend(to_f32(image.into_data()));
        captions.extend(to_f32(text.sentence.into_data()));
    }
    (images, captions, dim)
}

fn to_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32 above")
}

/// R-precision of a set, both ways.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RPrecisionReport {
    /// The paper's protocol: 99 mismatches from any other image.
    pub any: RPrecision,
    /// Mismatches only from other species.
    pub species: RPrecision,
}

/// R-precision (10 repeats of 100 candidates) of a set's images against their captions.
pub fn evaluate(
    damsm: &Damsm,
    features: &CachedFeatures,
    set: &PairedSet,
    seed: u64,
    device: &Device,
) -> Result<RPrecisionReport> {
    let (images, captions, dim) = global_vectors(damsm, features, set, seed, device);
    let candidates = 100.min(set.len());
    let any = r_precision(
        &images,
        &captions,
        dim,
        Mismatches::AnyOther,
        candidates,
        10,
        seed,
    )?;
    let other_class = set
        .class_ids
        .iter()
        .map(|c| set.class_ids.iter().filter(|d| *d != c).count())
        .min()
        .unwrap_or(0);
    let species = r_precision(
        &images,
        &captions,
        dim,
        Mismatches::OtherClass(&set.class_ids),
        candidates.min(other_class + 1),
        10,
        seed,
    )?;
    Ok(RPrecisionReport { any, species })
}
