//! GAN-INT-CLS training (Reed et al. 2016, Algorithm 1, with the authors' `main_cls_int.lua`
//! weighting): each step updates D on (real, right text), (real, wrong text) and (fake, right
//! text), then G on (fake, right text) and on generated images of interpolated texts.
//!
//! Text enters as precomputed sentence embeddings (the frozen DAMSM text encoder's), computed
//! once per caption. Every step reseeds the device and its sampler from (seed, step), so a
//! resumed run continues exactly as the uninterrupted one would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use t2i::damsm::TextEncoder;
use t2i::gan_int_cls::{
    Discriminator, GanIntClsConfig, Generator, discriminator_loss, generator_loss, interpolate_text,
};
use t2i::vocab::Vocabulary;

use crate::checkpoint::{Checkpoints, load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::data::preprocess::{
    load_size, random_crop_flip, resize_shorter_side, to_chw_normalized,
};
use crate::run_log::{MetricsLog, Progress, epoch_order};

/// Output size of GAN-INT-CLS.
pub const IMAGE_SIZE: u32 = 64;

/// Training images with the sentence embeddings of their captions.
pub struct GanSet {
    /// Images at the crop's load size (76 for 64), so each step only crops and flips.
    pub images: Vec<RgbImage>,
    pub class_ids: Vec<u32>,
    /// Per image: the embeddings of its captions, `text_dim` values each, concatenated.
    pub embeddings: Vec<Vec<f32>>,
    pub text_dim: usize,
}

impl GanSet {
    /// Pairs images with caption embeddings; images without any embedding are dropped.
    pub fn new(
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        text_dim: usize,
    ) -> Self {
        let mut set = GanSet {
            images: Vec::new(),
            class_ids: Vec::new(),
            embeddings: Vec::new(),
            text_dim,
        };
        for ((image, class), embedding) in images.into_iter().zip(class_ids).zip(embeddings) {
            if embedding.is_empty() {
                continue;
            }
            set.images
                .push(resize_shorter_side(&image, load_size(IMAGE_SIZE)));
            set.class_ids.push(class);
            set.embeddings.push(embedding);
        }
        set
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    fn caption(&self, image: usize, rng: &mut StdRng) -> &[f32] {
        let all = &self.embeddings[image];
        let k = rng.random_range(0..all.len() / self.text_dim);
        &all[k * self.text_dim..(k + 1) * self.text_dim]
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

/// Called every `every` steps (and at the end) with the generator in inference mode, e.g. to
/// write a sample grid.
pub struct SampleHook<'a> {
    pub every: u64,
    pub write: &'a dyn Fn(u64, &Generator) -> Result<()>,
}

/// `state.json` of a GAN-INT-CLS checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanState {
    pub step: u64,
    pub options: GanTrainOptions,
}

/// How a GAN run ended, and what it produced (on the inference device).
pub struct GanRun {
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub steps: u64,
    pub interrupted: bool,
}

/// The learning rate after `epoch` epochs: halved every `every` epochs.
pub fn gan_learning_rate(base: f64, every: usize, epoch: usize) -> f64 {
    base * 0.5f64.powi((epoch / every.max(1)) as i32)
}

/// Adam as the paper: beta1 0.5.
pub fn gan_adam() -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init()
}

/// Trains (or resumes from `checkpoints`) GAN-INT-CLS on `data`.
pub fn train_gan_int_cls(
    options: &GanTrainOptions,
    data: &GanSet,
    checkpoints: &Checkpoints,
    metrics_path: Option<PathBuf>,
    samples: Option<&SampleHook>,
    device: &Device,
    stop: &AtomicBool,
) -> Result<GanRun> {
    if data.len() < options.batch_size || options.batch_size < 2 {
        bail!(
            "{} training images and batch size {}: need at least one batch of two or more",
            data.len(),
            options.batch_size
        );
    }
    if data.text_dim != options.model.text_dim {
        bail!(
            "the embeddings have {} values, the model expects {}",
            data.text_dim,
            options.model.text_dim
        );
    }
    let train_device = device.clone().autodiff();
    train_device.seed(options.seed);
    let mut generator = options.model.init_generator(&train_device);
    let mut discriminator = options.model.init_discriminator(&train_device);
    let (mut optim_g, mut optim_d) = (gan_adam(), gan_adam());
    let mut step = 0u64;
    if let Some(checkpoint) = checkpoints.latest()? {
        let state: GanState = checkpoint.state()?;
        if state.options.model.to_string() != options.model.to_string() {
            bail!(
                "the checkpoint in {} is of another model size; use a new output_dir",
                checkpoint.dir.display()
            );
        }
        generator = load_module(
            generator,
            checkpoint.part("generator.bpk")?,
            "generator.bpk",
        )?;
        discriminator = load_module(
            discriminator,
            checkpoint.part("discriminator.bpk")?,
            "discriminator.bpk",
        )?;
        optim_g = load_optimizer(optim_g, checkpoint.part("optim_g.bpk")?, "optim_g.bpk")?;
        optim_d = load_optimizer(optim_d, checkpoint.part("optim_d.bpk")?, "optim_d.bpk")?;
        step = state.step;
    }

    let batch = options.batch_size;
    let steps_per_epoch = (data.len() / batch) as u64;
    let total_steps = steps_per_epoch * options.max_epoch as u64;
    let last_step = options
        .max_steps
        .map_or(total_steps, |m| m.min(total_steps));
    let mut metrics = match metrics_path {
        Some(path) => Some(MetricsLog::open(path, step)?),
        None => None,
    };
    let save = |g: &Generator,
                d: &Discriminator,
                og: &ModuleOptimizer,
                od: &ModuleOptimizer,
                step: u64|
     -> Result<PathBuf> {
        checkpoints.save(
            step,
            &[
                ("generator.bpk", module_bytes(g)?),
                ("discriminator.bpk", module_bytes(d)?),
                ("optim_g.bpk", optimizer_bytes(og)?),
                ("optim_d.bpk", optimizer_bytes(od)?),
            ],
            &GanState {
                step,
                options: options.clone(),
            },
        )
    };
    let mut progress = Progress::new(options.progress, last_step, step);
    let mut interrupted = false;
    let started = std::time::Instant::now();
    while step < last_step {
        let epoch = (step / steps_per_epoch) as usize;
        let in_epoch = (step % steps_per_epoch) as usize;
        let lr = gan_learning_rate(options.lr, options.lr_decay_every, epoch);
        let order = epoch_order(data.len(), options.seed, epoch);
        let rows = &order[in_epoch * batch..(in_epoch + 1) * batch];
        train_device.seed(options.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut rng = StdRng::seed_from_u64(options.seed.wrapping_add(step));
        let b = GanBatch::draw(data, rows, &mut rng, &train_device);

        // Discriminator: real/right is real; real/wrong and fake/right are fake.
        let noise = Tensor::<2>::random(
            [batch, options.model.noise_dim],
            Distribution::Normal(0.0, 1.0),
            &train_device,
        );
        let fake = generator.forward(noise.clone(), b.right.clone()).detach();
        let loss_d = discriminator_loss(
            discriminator.forward(b.real.clone(), b.right.clone()),
            discriminator.forward(b.real, b.wrong),
            discriminator.forward(fake, b.right.clone()),
        );
        let value_d = loss_d.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss_d.backward(), &discriminator);
        discriminator = optim_d.step(lr, discriminator, grads);

        // Generator: fool D on the right text and on interpolated texts (GAN-INT).
        let fake = generator.forward(noise, b.right.clone());
        let interpolated = (options.interp_weight > 0.0).then(|| {
            let text = interpolate_text(b.right.clone(), b.partner.clone(), options.beta);
            let noise = Tensor::<2>::random(
                [batch, options.model.noise_dim],
                Distribution::Normal(0.0, 1.0),
                &train_device,
            );
            discriminator.forward(generator.forward(noise, text.clone()), text)
        });
        let loss_g = generator_loss(
            discriminator.forward(fake, b.right),
            interpolated,
            options.interp_weight,
        );
        let value_g = loss_g.clone().into_scalar::<f32>();
        if !(value_d.is_finite() && value_g.is_finite()) {
            bail!(
                "loss is not finite at step {} (D {value_d}, G {value_g}); the last good checkpoint is kept in {}",
                step + 1,
                checkpoints.latest_description()
            );
        }
        let grads = GradientsParams::from_grads(loss_g.backward(), &generator);
        generator = optim_g.step(lr, generator, grads);
        step += 1;

        let rate = progress.record(batch);
        progress.advance(
            step,
            format!("epoch {epoch} D {value_d:.3} G {value_g:.3} {rate:.0} img/s"),
        );
        if let Some(log) = metrics.as_mut() {
            log.write(&serde_json::json!({
                "step": step, "epoch": epoch, "loss_d": value_d, "loss_g": value_g, "lr": lr,
                "images_per_s": rate,
            }))?;
        }
        if let Some(hook) = samples
            && hook.every > 0
            && step.is_multiple_of(hook.every)
        {
            (hook.write)(step, &generator.valid())?;
        }
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if options
            .max_seconds
            .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
        {
            progress.say(format!(
                "time limit reached after {:.0} s at step {step}",
                started.elapsed().as_secs_f64()
            ));
            break;
        }
        if options.checkpoint_steps > 0
            && step.is_multiple_of(options.checkpoint_steps)
            && step < last_step
        {
            save(&generator, &discriminator, &optim_g, &optim_d, step)?;
        }
    }
    let path = save(&generator, &discriminator, &optim_g, &optim_d, step)?;
    if let Some(hook) = samples
        && !(hook.every > 0 && step.is_multiple_of(hook.every))
    {
        (hook.write)(step, &generator.valid())?;
    }
    progress.finish();
    eprintln!("checkpoint written: {} (step {step})", path.display());
    Ok(GanRun {
        generator: generator.valid(),
        discriminator: discriminator.valid(),
        steps: step,
        interrupted,
    })
}

struct GanBatch {
    /// Real images, cropped and flipped: `[B, 3, 64, 64]`.
    real: Tensor<4>,
    /// One caption embedding of each image: `[B, P]`.
    right: Tensor<2>,
    /// A caption of another image, of another class where the batch has one: `[B, P]`.
    wrong: Tensor<2>,
    /// The caption embedding GAN-INT mixes with `right` (the next image's): `[B, P]`.
    partner: Tensor<2>,
}

impl GanBatch {
    fn draw(data: &GanSet, rows: &[usize], rng: &mut StdRng, device: &Device) -> Self {
        let n = rows.len();
        let size = IMAGE_SIZE as usize;
        let mut pixels = Vec::with_capacity(n * 3 * size * size);
        for &r in rows {
            pixels.extend(to_chw_normalized(&random_crop_flip(
                &data.images[r],
                IMAGE_SIZE,
                rng,
            )));
        }
        let captions: Vec<&[f32]> = rows.iter().map(|&r| data.caption(r, rng)).collect();
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
            right: text(&captions),
            wrong: text(&wrong),
            partner: text(&partner),
        }
    }
}
