//! The GAN-INT-CLS commands end to end: config -> prepared set (images + frozen text
//! embeddings) -> training with sample grids and loss curves -> portable weights. `main.rs`
//! only parses arguments and calls these.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use image::RgbImage;
use t2i::bundle::{
    GanBundle, GanIntClsWeights, load_damsm, load_gan, load_gan_int_cls, read_metadata,
    save_gan_int_cls,
};
use t2i::damsm::TextEncoder;
use t2i::gan_int_cls::{GanIntClsConfig, Generator};
use t2i::generate::seeded_noise;
use t2i::inception::Inception;
use t2i::quant::Precision;
use t2i::vocab::Vocabulary;

use crate::adversarial::{DISCRIMINATOR_PART, GENERATOR_PART, GanNetworks};
use crate::checkpoint::{
    Checkpoints, load_module_f16, module_f16_bytes, parameter_values, write_atomic,
};
use crate::config::GanTrainConfig;
use crate::damsm_pipeline::load_dataset_named;
use crate::data::{CaptionSource, species_split};
use crate::features::FeatureCache;
use crate::gan_data::PreparedSet;
use crate::gan_eval::{
    EvalCaptions, EvalInputs, EvalOptions, Generate, GeneratorEvaluation, IsHeadFit, eval_captions,
    evaluate_generator, real_pool3, train_is_head,
};
use crate::gan_train::{
    GanState, GanTrainOptions, SampleHook, sentence_embeddings, train_gan_int_cls,
};

/// Samples in a grid: the first this many held-out captions.
const GRID_CAPTIONS: usize = 8;
/// Noise draws per caption in a grid.
const GRID_SEEDS: usize = 4;
/// Names of the portable (f16) weight files.
pub const GENERATOR_F16: &str = "generator.f16.safetensors";
pub const DISCRIMINATOR_F16: &str = "discriminator.f16.safetensors";

/// A DAMSM bundle file: the networks, their configuration and the vocabulary.
pub fn read_damsm(
    path: &Path,
    device: &Device,
) -> Result<(t2i::damsm::Damsm, t2i::damsm::DamsmConfig, Vocabulary)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_damsm(&bytes, device).with_context(|| format!("bundle {}", path.display()))
}

/// The frozen text encoder of a DAMSM bundle, its vocabulary and the bundle's checksum.
pub fn load_text_encoder(
    path: &Path,
    device: &Device,
) -> Result<(TextEncoder, Vocabulary, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let metadata = read_metadata(
        &bytes,
        t2i::bundle::DAMSM_FORMAT,
        t2i::bundle::DAMSM_VERSION,
    )
    .with_context(|| format!("text encoder bundle {}", path.display()))?;
    let sha = metadata.get("t2i.sha256").cloned().unwrap_or_default();
    let (damsm, _, vocabulary) =
        load_damsm(&bytes, device).with_context(|| format!("bundle {}", path.display()))?;
    Ok((damsm.text_encoder, vocabulary, sha))
}

/// The dataset a GAN config names.
pub fn load_dataset(config: &GanTrainConfig) -> Result<crate::data::Dataset> {
    load_dataset_named(
        &config.dataset_name,
        &config.data_dir,
        config.captions_per_image,
        config.train.seed,
        config.skip_missing,
    )
}

/// The prepared set of a config: read from `prepared_dir`, or built (and written) when missing.
/// A set built with another text encoder is refused.
pub fn prepare(config: &GanTrainConfig, device: &Device) -> Result<PreparedSet> {
    prepare_at(
        config,
        &config.prepared_dir,
        crate::gan_train::IMAGE_SIZE,
        device,
    )
}

/// [`prepare`] for `image_size` crops in `dir` (StackGAN's Stage-II trains on 256 px).
pub fn prepare_at(
    config: &GanTrainConfig,
    dir: &Path,
    image_size: u32,
    device: &Device,
) -> Result<PreparedSet> {
    let (encoder, vocabulary, sha) = load_text_encoder(&config.text_encoder, device)?;
    if PreparedSet::path(dir).exists() {
        let set = PreparedSet::load(dir)?;
        if set.info.image_size() != image_size {
            bail!(
                "{} holds {} px crops, {image_size} px are needed: use another prepared_dir",
                PreparedSet::path(dir).display(),
                set.info.image_size()
            );
        }
        if set.info.text_encoder_sha256 != sha {
            bail!(
                "{} was prepared with another text encoder than {}: delete it to rebuild",
                PreparedSet::path(dir).display(),
                config.text_encoder.display()
            );
        }
        if set.info.heldout_species != config.train.heldout_species {
            bail!(
                "{} holds out {} species, the config {}: delete it to rebuild",
                PreparedSet::path(dir).display(),
                set.info.heldout_species,
                config.train.heldout_species
            );
        }
        return Ok(set);
    }
    let dataset = load_dataset(config)?;
    PreparedSet::build(
        &dataset,
        config.train.heldout_species,
        &encoder,
        &vocabulary,
        &sha,
        64,
        image_size,
        dir,
        device,
    )
}

/// The model sizes a config asks for, for embeddings of `text_dim` values.
pub fn model_config(config: &GanTrainConfig, text_dim: usize) -> GanIntClsConfig {
    GanIntClsConfig::new()
        .with_text_dim(text_dim)
        .with_projected_text_dim(config.gan.nt)
        .with_noise_dim(config.gan.nz)
        .with_ngf(config.gan.ngf)
        .with_ndf(config.gan.ndf)
}

/// Training options of a config.
pub fn training_options(config: &GanTrainConfig, text_dim: usize) -> GanTrainOptions {
    let t = &config.train;
    GanTrainOptions {
        model: model_config(config, text_dim),
        batch_size: t.batch_size,
        max_epoch: t.max_epoch,
        lr: t.lr,
        lr_decay_every: t.lr_decay_epochs(),
        interp_weight: t.interp_weight,
        beta: t.beta,
        checkpoint_steps: t.checkpoint_steps,
        seed: t.seed,
        max_steps: None,
        max_seconds: None,
        progress: true,
    }
}

/// `[B, 3, H, W]` in [-1, 1] -> RGB images.
pub fn tensor_to_images(images: Tensor<4>) -> Vec<RgbImage> {
    let [batch, _, height, width] = images.dims();
    let values = images
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32");
    let plane = height * width;
    (0..batch)
        .map(|b| {
            RgbImage::from_fn(width as u32, height as u32, |x, y| {
                let i = y as usize * width + x as usize;
                image::Rgb(std::array::from_fn(|c| {
                    let v = values[(b * 3 + c) * plane + i];
                    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
                }))
            })
        })
        .collect()
}

/// Fixed inputs of the sample grids: captions, their embeddings and noise.
pub struct GridInputs {
    pub captions: Vec<String>,
    pub text: Vec<f32>,
    pub noise: Vec<f32>,
    pub text_dim: usize,
    pub noise_dim: usize,
}

impl GridInputs {
    /// The first held-out captions of a prepared set, each with [`GRID_SEEDS`] noise draws.
    pub fn new(captions: &[String], embeddings: &[f32], text_dim: usize, noise_dim: usize) -> Self {
        let n = captions.len().min(GRID_CAPTIONS);
        // Seeds 0..GRID_SEEDS for every caption, as `t2i generate --count` draws them.
        let noise = (0..n * GRID_SEEDS)
            .flat_map(|i| seeded_noise((i % GRID_SEEDS) as u64, noise_dim))
            .collect();
        let text = (0..n * GRID_SEEDS)
            .flat_map(|i| {
                embeddings[(i / GRID_SEEDS) * text_dim..(i / GRID_SEEDS + 1) * text_dim].to_vec()
            })
            .collect();
        Self {
            captions: captions[..n].to_vec(),
            text,
            noise,
            text_dim,
            noise_dim,
        }
    }

    /// The grid's `(noise, text)` inputs on `device`: `[rows, noise_dim]`, `[rows, text_dim]`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let rows = self.captions.len() * GRID_SEEDS;
        (
            Tensor::from_data(
                TensorData::new(self.noise.clone(), [rows, self.noise_dim]),
                device,
            ),
            Tensor::from_data(
                TensorData::new(self.text.clone(), [rows, self.text_dim]),
                device,
            ),
        )
    }

    /// One row per caption, caption underneath; `samples[i]` are the images of input row `i`
    /// (one, or one per stage) put side by side, [`GRID_SEEDS`] samples a row.
    pub fn grid(&self, samples: Vec<Vec<RgbImage>>, scale: u32) -> RgbImage {
        let grid: Vec<(Vec<RgbImage>, String)> = samples
            .chunks(GRID_SEEDS)
            .zip(&self.captions)
            .map(|(row, caption)| (row.concat(), caption.clone()))
            .collect();
        crate::plot::caption_grid_rows(&grid, scale)
    }

    /// GAN-INT-CLS's grid.
    pub fn render(&self, generator: &Generator, device: &Device) -> RgbImage {
        let (noise, text) = self.tensors(device);
        let images = tensor_to_images(generator.forward(noise, text));
        self.grid(images.into_iter().map(|i| vec![i]).collect(), 2)
    }
}

/// `t2i train` for GAN-INT-CLS. Refuses to overwrite an existing run unless `resume`;
/// `init_from` starts a new run from portable weights (see [`write_portable`]).
pub fn train(
    config: &GanTrainConfig,
    resume: bool,
    max_steps: Option<u64>,
    max_seconds: Option<f64>,
    init_from: Option<&Path>,
    device: &Device,
    stop: &AtomicBool,
) -> Result<()> {
    let checkpoints = Checkpoints::new(config.output_dir.join("checkpoints"), 2);
    let existing = checkpoints.latest_for_training(resume, &config.output_dir)?;
    let prepared = prepare(config, device)?;
    let (data, info) = prepared.into_gan_set();
    eprintln!(
        "{}: {} training images of {} species kept out; text from {} ({} values)",
        info.dataset,
        data.len(),
        info.heldout_species,
        config.text_encoder.display(),
        info.text_dim
    );
    let mut options = training_options(config, info.text_dim);
    options.max_steps = max_steps;
    options.max_seconds = max_seconds;
    eprintln!(
        "generator {:.2} M parameters, discriminator {:.2} M",
        options.model.init_generator(device).num_params() as f64 / 1e6,
        options.model.init_discriminator(device).num_params() as f64 / 1e6
    );
    if let Some(dir) = init_from {
        if existing.is_some() {
            bail!("--init-from starts a new run, but the output_dir already holds a checkpoint");
        }
        warm_start(&options, dir, &checkpoints, device)?;
    }
    write_atomic(
        &config.output_dir.join("config.toml"),
        toml::to_string(config)?.as_bytes(),
    )?;
    let grid = GridInputs::new(
        &info.sample_captions,
        &info.sample_embeddings,
        info.text_dim,
        options.model.noise_dim,
    );
    let samples_dir = config.output_dir.join("samples");
    std::fs::create_dir_all(&samples_dir)?;
    let metrics_path = config.output_dir.join("metrics.jsonl");
    let write = |step: u64, generator: &Generator| -> Result<()> {
        let image = grid.render(generator, &generator.devices()[0]);
        let path = samples_dir.join(format!("step-{step:07}.png"));
        image
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        image
            .save(samples_dir.join("latest.png"))
            .context("cannot write latest.png")?;
        write_loss_curve(
            &metrics_path,
            &config.output_dir.join("losses.png"),
            &["loss_d", "loss_g"],
            "GAN-INT-CLS losses",
        )
    };
    let hook = SampleHook {
        every: config.train.sample_steps,
        write: &write,
    };
    let run = train_gan_int_cls(
        &options,
        &data,
        &checkpoints,
        Some(metrics_path.clone()),
        Some(&hook),
        device,
        stop,
    )?;
    eprintln!(
        "{} after {} steps; samples in {}",
        if run.interrupted {
            "interrupted"
        } else {
            "stopped"
        },
        run.steps,
        samples_dir.display()
    );
    Ok(())
}

/// Draws the losses `keys` of a run's `metrics.jsonl` into `out`.
pub fn write_loss_curve(metrics: &Path, out: &Path, keys: &[&str], title: &str) -> Result<()> {
    if !metrics.exists() {
        return Ok(());
    }
    let chart = crate::plot::loss_curves_from_metrics(metrics, keys, title)?;
    chart
        .save(out)
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Writes the latest checkpoint's generator and discriminator as f16 safetensors (plus
/// `step.json`) into `dir`: a sixth of a checkpoint's size (44 MB vs 261 MB at paper size), for carrying a run between
/// machines. Adam's moments are not kept.
pub fn write_portable(config: &GanTrainConfig, dir: &Path, device: &Device) -> Result<()> {
    let checkpoints = Checkpoints::new(config.output_dir.join("checkpoints"), 2);
    let checkpoint = checkpoints.latest_required(&config.output_dir)?;
    let state: GanState = checkpoint.state()?;
    let generator = crate::checkpoint::load_module(
        state.options.model.init_generator(device),
        checkpoint.part(GENERATOR_PART)?,
        GENERATOR_PART,
    )?;
    let discriminator = crate::checkpoint::load_module(
        state.options.model.init_discriminator(device),
        checkpoint.part(DISCRIMINATOR_PART)?,
        DISCRIMINATOR_PART,
    )?;
    std::fs::create_dir_all(dir)?;
    write_atomic(&dir.join(GENERATOR_F16), &module_f16_bytes(&generator)?)?;
    write_atomic(
        &dir.join(DISCRIMINATOR_F16),
        &module_f16_bytes(&discriminator)?,
    )?;
    write_atomic(
        &dir.join("step.json"),
        serde_json::to_string(&state)?.as_bytes(),
    )?;
    eprintln!(
        "portable weights of step {} written to {}",
        state.step,
        dir.display()
    );
    Ok(())
}

/// Portable weights from a GAN-INT-CLS bundle: its generator, and a discriminator initialised
/// afresh from the config's seed (bundles ship no discriminator). `train --init-from` then
/// continues a shipped model on any machine; `step` is the step the new run counts from (the
/// bundle's own training steps, where known, keep the learning-rate schedule in place).
pub fn write_portable_from_bundle(
    config: &GanTrainConfig,
    bundle: &Path,
    step: u64,
    dir: &Path,
    device: &Device,
) -> Result<()> {
    let bytes =
        std::fs::read(bundle).with_context(|| format!("cannot read {}", bundle.display()))?;
    let loaded = load_gan_int_cls(&bytes, device)
        .with_context(|| format!("{}: not a GAN-INT-CLS bundle", bundle.display()))?;
    let mut options = training_options(config, loaded.gan_config.text_dim);
    if options.model.to_string() != loaded.gan_config.to_string() {
        bail!(
            "{}: the bundle's generator ({}) is not the config's model ({})",
            bundle.display(),
            loaded.gan_config,
            options.model
        );
    }
    // The prepared set's embeddings come from the config's text encoder: the generator must
    // have been trained on the same one.
    let (damsm, _, _) = read_damsm(&config.text_encoder, device)?;
    if !close_weights(&damsm.text_encoder, &loaded.weights.text_encoder)? {
        bail!(
            "{}: its text encoder is not the config's {}; the generator was trained on other sentence vectors",
            bundle.display(),
            config.text_encoder.display()
        );
    }
    options.max_steps = None;
    device.seed(options.seed);
    let discriminator = options.model.init_discriminator(device);
    std::fs::create_dir_all(dir)?;
    write_atomic(
        &dir.join(GENERATOR_F16),
        &module_f16_bytes(&loaded.weights.generator)?,
    )?;
    write_atomic(
        &dir.join(DISCRIMINATOR_F16),
        &module_f16_bytes(&discriminator)?,
    )?;
    write_atomic(
        &dir.join("step.json"),
        serde_json::to_string(&GanState { step, options })?.as_bytes(),
    )?;
    eprintln!(
        "portable weights from {} (generator; a new discriminator) at step {step} written to {}",
        bundle.display(),
        dir.display()
    );
    Ok(())
}

/// Whether two modules hold the same weights up to a bundle's quantization: every f32 tensor of
/// the same name within 1% of its largest magnitude (int8 rounds to 1/254 of it).
fn close_weights<M: Module>(a: &M, b: &M) -> Result<bool> {
    let floats = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let (a, b) = (parameter_values(a)?, parameter_values(b)?);
    Ok(a.len() == b.len()
        && a.iter().zip(&b).all(|((name_a, x), (name_b, y))| {
            let (x, y) = (floats(x), floats(y));
            let largest = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            name_a == name_b
                && x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|(u, v)| (u - v).abs() <= largest / 100.0)
        }))
}

/// Starts a run at the step of portable weights, with fresh optimizers.
fn warm_start(
    options: &GanTrainOptions,
    dir: &Path,
    checkpoints: &Checkpoints,
    device: &Device,
) -> Result<()> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let state: GanState = serde_json::from_slice(&read("step.json")?)
        .with_context(|| format!("{}: invalid step.json", dir.display()))?;
    if state.options.model.to_string() != options.model.to_string() {
        bail!(
            "{}: the weights are of another model size than the config's",
            dir.display()
        );
    }
    let train_device = device.clone().autodiff();
    let generator = load_module_f16(
        options.model.init_generator(&train_device),
        &read(GENERATOR_F16)?,
        GENERATOR_F16,
    )?;
    let discriminator = load_module_f16(
        options.model.init_discriminator(&train_device),
        &read(DISCRIMINATOR_F16)?,
        DISCRIMINATOR_F16,
    )?;
    checkpoints.save(
        state.step,
        &GanNetworks::new(generator, discriminator).parts()?,
        &GanState {
            step: state.step,
            options: options.clone(),
        },
    )?;
    eprintln!(
        "starting from the weights of step {} in {}",
        state.step,
        dir.display()
    );
    Ok(())
}

/// `t2i export` for GAN-INT-CLS: the text encoder, vocabulary and the latest checkpoint's
/// generator in one bundle at `precision`.
pub fn export(
    config: &GanTrainConfig,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> Result<()> {
    let (generator, options, step) = load_generator(config, device)?;
    let (damsm, damsm_config, vocabulary) = read_damsm(&config.text_encoder, device)?;
    let weights = GanIntClsWeights {
        text_encoder: damsm.text_encoder,
        generator,
    };
    let bundle = save_gan_int_cls(
        &weights,
        &damsm_config.text,
        &options.model,
        &vocabulary,
        precision,
    )?;
    write_bundle(out, &bundle, precision, &format!("step {step}"))
}

/// The latest checkpoint's generator (inference mode), its options and step.
pub fn load_generator(
    config: &GanTrainConfig,
    device: &Device,
) -> Result<(Generator, GanTrainOptions, u64)> {
    let checkpoints = Checkpoints::new(config.output_dir.join("checkpoints"), 2);
    let checkpoint = checkpoints.latest_required(&config.output_dir)?;
    let state: GanState = checkpoint.state()?;
    let generator = crate::checkpoint::load_module(
        state.options.model.init_generator(device),
        checkpoint.part(GENERATOR_PART)?,
        GENERATOR_PART,
    )?;
    Ok((generator.valid(), state.options, state.step))
}

/// What `t2i generate` draws besides the captions.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions<'a> {
    /// Seed of the first image of each caption (then `seed + 1`, ...).
    pub seed: u64,
    /// Images per caption.
    pub per_caption: usize,
    /// Upscaling factor of 64 px images in the picture (larger images are scaled to match).
    pub scale: u32,
    /// AttnGAN: also write the attention figure here.
    pub attention: Option<&'a Path>,
}

/// `t2i generate`: draws captions with a GAN-INT-CLS, StackGAN or AttnGAN bundle. One caption
/// and one seed give a single image (the last stage's); more give a grid with the captions
/// written under the images, every stage of a sample side by side.
pub fn generate(
    bundle_path: &Path,
    captions: &[String],
    options: &GenerateOptions<'_>,
    out: &Path,
    device: &Device,
) -> Result<()> {
    let GenerateOptions {
        seed,
        per_caption,
        scale,
        attention,
    } = *options;
    let bytes = std::fs::read(bundle_path)
        .with_context(|| format!("cannot read {}", bundle_path.display()))?;
    let bundle =
        load_gan(&bytes, device).with_context(|| format!("bundle {}", bundle_path.display()))?;
    if attention.is_some() && !matches!(bundle, t2i::bundle::GanBundle::AttnGan(_)) {
        bail!(
            "--attention: {} is a {} bundle; only AttnGAN has word attention",
            bundle_path.display(),
            bundle.family()
        );
    }
    let per_caption = per_caption.max(1);
    let mut rows = Vec::new();
    for caption in captions {
        let (tokens, report) = bundle
            .tokens(caption)
            .with_context(|| format!("caption {caption:?}"))?;
        if !report.unknown_words.is_empty() {
            eprintln!(
                "unknown words left out of {caption:?}: {}",
                report.unknown_words.join(", ")
            );
        }
        if report.truncated_words > 0 {
            eprintln!(
                "{caption:?}: {} words beyond the first {} were left out",
                report.truncated_words,
                t2i::vocab::WORDS_NUM
            );
        }
        let seeds: Vec<u64> = (0..per_caption as u64).map(|k| seed + k).collect();
        let images = stages_per_seed(&bundle, &tokens, &seeds, device);
        rows.push((images, caption.clone()));
    }
    // `scale` is for 64 px images; larger outputs are scaled so they come out as large.
    let largest = rows[0].0.iter().map(RgbImage::width).max().unwrap_or(64);
    let factor = (64 * scale.max(1) / largest).max(1);
    let picture = if rows.len() == 1 && per_caption == 1 {
        let image = rows[0].0.last().context("the model drew no image")?;
        image::imageops::resize(
            image,
            image.width() * factor,
            image.height() * factor,
            image::imageops::FilterType::Nearest,
        )
    } else {
        crate::plot::caption_grid_rows(&rows, factor)
    };
    picture
        .save(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} ({})", out.display(), bundle.family());
    if let Some(path) = attention {
        crate::attngan_pipeline::write_attention_figure(&bundle, captions, seed, path, device)?;
    }
    Ok(())
}

/// One caption (as tokens) drawn with each of `seeds`: per seed, every stage's image side by
/// side, smallest first (a row of `t2i generate`'s grid and of AttnGAN's training grid).
pub fn stages_per_seed(
    bundle: &GanBundle,
    tokens: &[u32],
    seeds: &[u64],
    device: &Device,
) -> Vec<RgbImage> {
    let text = bundle.encode(&[tokens], device).repeat(seeds.len());
    let stages: Vec<Vec<RgbImage>> = bundle
        .stages(text, seeds, device)
        .into_iter()
        .map(|stage| tensor_to_images(stage.images))
        .collect();
    (0..seeds.len())
        .flat_map(|k| stages.iter().map(move |stage| stage[k].clone()))
        .collect()
}

/// Writes an exported bundle atomically and says what was written (`what`: e.g. "step 1526").
pub fn write_bundle(out: &Path, bundle: &[u8], precision: Precision, what: &str) -> Result<()> {
    write_atomic(out, bundle)?;
    eprintln!(
        "wrote {} ({:.1} MB, {precision}, {what})",
        out.display(),
        bundle.len() as f64 / 1e6
    );
    Ok(())
}

/// Where the generator under evaluation comes from.
pub enum GeneratorSource<'a> {
    /// The run's latest checkpoint.
    Checkpoint,
    /// An exported bundle (e.g. int8), with its own text encoder.
    Bundle(&'a Path),
}

/// What `t2i eval gan` prints: the generator's scores, what was evaluated, and the FID floor.
#[derive(Debug, serde::Serialize)]
pub struct GanEvaluation {
    #[serde(flatten)]
    pub scores: GeneratorEvaluation,
    /// FID between two random halves of the held-out species' real photos: the floor the
    /// generated images' FID is read against.
    pub fid_real_halves: f64,
    pub fid_real_halves_images: usize,
    /// The checkpoint or bundle evaluated.
    pub evaluated: String,
}

/// Everything an evaluation needs besides the generator: held-out captions, the real side of
/// FID, the IS head, DAMSM for R-precision, Inception, and the real-vs-real FID floor.
pub struct EvalContext {
    pub captions: EvalCaptions,
    real: Vec<f32>,
    is_head: IsHeadFit,
    damsm: t2i::damsm::Damsm,
    vocabulary: Vocabulary,
    inception: Inception,
    floor: crate::evaluation::RealFidFloor,
    synthesized_captions: bool,
    seed: u64,
}

impl EvalContext {
    /// Reads the held-out species' captions (up to `samples`, default the config's) and every
    /// frozen network the scores need.
    pub fn new(config: &GanTrainConfig, samples: Option<usize>, device: &Device) -> Result<Self> {
        let dataset = load_dataset(config)?;
        let (_, heldout) = species_split(&dataset, config.train.heldout_species);
        let features = FeatureCache::open(&config.eval.features_cache)
            .with_context(|| {
                format!(
                    "no Inception feature cache at {}: run `t2i features` on the DAMSM config first",
                    config.eval.features_cache.display()
                )
            })?
            .load_pool3()?;
        let is_head = train_is_head(&dataset, &features, device, config.train.seed)?;
        let real = real_pool3(&dataset, &heldout, &features)?;
        let (damsm, _, vocabulary) = read_damsm(&config.eval.damsm, device)?;
        let captions = eval_captions(
            &dataset,
            &heldout,
            samples.unwrap_or(config.eval.samples),
            &vocabulary,
            config.train.seed,
        )?;
        let floor =
            crate::evaluation::real_fid_floor(&dataset, &heldout, &features, config.train.seed)?;
        Ok(Self {
            captions,
            real,
            is_head,
            damsm,
            vocabulary,
            inception: Inception::load(&config.eval.inception, device)?,
            floor,
            synthesized_captions: dataset.caption_source
                == CaptionSource::SynthesizedFromAttributes,
            seed: config.train.seed,
        })
    }

    /// The sentence embedding of every evaluation caption with the generator's own text encoder.
    pub fn caption_embeddings(
        &self,
        encoder: &TextEncoder,
        vocabulary: &Vocabulary,
        device: &Device,
    ) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<&str> = self.captions.texts.iter().map(String::as_str).collect();
        sentence_embeddings(encoder, vocabulary, &texts, device)
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                e.with_context(|| {
                    format!(
                        "caption {:?} has no word the generator's text encoder knows",
                        texts[i]
                    )
                })
            })
            .collect()
    }

    /// Scores the images `generate(caption indices, seed)` draws for the evaluation captions.
    pub fn evaluate(
        &self,
        generate: &Generate<'_>,
        what: String,
        device: &Device,
    ) -> Result<GanEvaluation> {
        let mut report = evaluate_generator(EvalInputs {
            generate,
            captions: &self.captions.texts,
            class_ids: &self.captions.class_ids,
            real_pool3: &self.real,
            inception: &self.inception,
            damsm: &self.damsm,
            vocabulary: &self.vocabulary,
            is_head: &self.is_head,
            options: EvalOptions {
                seed: self.seed,
                ..EvalOptions::default()
            },
            device,
        })?;
        if self.synthesized_captions {
            report.notes.push_str(
                " Captions are synthesised per species from CUB attributes (they describe the species, not the photo).",
            );
        }
        Ok(GanEvaluation {
            scores: report,
            fid_real_halves: self.floor.fid_real_halves,
            fid_real_halves_images: self.floor.images_per_half,
            evaluated: what,
        })
    }
}

/// `[B, width]` seeded noise (seeds `seed`, `seed + 1`, ...) and `[B, P]` embeddings of the
/// caption `indices`: the inputs an evaluation draws a batch from.
pub fn eval_inputs(
    embeddings: &[Vec<f32>],
    indices: &[usize],
    seed: u64,
    noise_width: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let b = indices.len();
    let noise: Vec<f32> = (0..b as u64)
        .flat_map(|k| seeded_noise(seed.wrapping_add(k), noise_width))
        .collect();
    let text_dim = embeddings.first().map_or(0, Vec::len);
    let text: Vec<f32> = indices
        .iter()
        .flat_map(|&i| embeddings[i].iter().copied())
        .collect();
    (
        Tensor::from_data(TensorData::new(noise, [b, noise_width]), device),
        Tensor::from_data(TensorData::new(text, [b, text_dim]), device),
    )
}

/// `t2i eval gan`: FID, Inception Score and R-precision of images generated from held-out
/// species' captions (see [`crate::gan_eval`]).
pub fn evaluate(
    config: &GanTrainConfig,
    source: GeneratorSource<'_>,
    samples: Option<usize>,
    device: &Device,
) -> Result<GanEvaluation> {
    let (generator, encoder, gan_vocabulary, noise_dim, what) = match source {
        GeneratorSource::Checkpoint => {
            let (generator, options, step) = load_generator(config, device)?;
            let (encoder, vocabulary, _) = load_text_encoder(&config.text_encoder, device)?;
            (
                generator,
                encoder,
                vocabulary,
                options.model.noise_dim,
                format!("checkpoint of step {step}"),
            )
        }
        GeneratorSource::Bundle(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let bundle = load_gan_int_cls(&bytes, device)
                .with_context(|| format!("bundle {}", path.display()))?;
            (
                bundle.weights.generator,
                bundle.weights.text_encoder,
                bundle.vocabulary,
                bundle.gan_config.noise_dim,
                format!("{} ({})", path.display(), bundle.precision),
            )
        }
    };
    let context = EvalContext::new(config, samples, device)?;
    let embeddings = context.caption_embeddings(&encoder, &gan_vocabulary, device)?;
    eprintln!(
        "evaluating the {what} on {} captions of {} held-out species",
        context.captions.texts.len(),
        config.train.heldout_species
    );
    let generate = |indices: &[usize], seed: u64| -> Result<Vec<RgbImage>> {
        let (noise, text) = eval_inputs(&embeddings, indices, seed, noise_dim, device);
        Ok(tensor_to_images(generator.forward(noise, text)))
    };
    context.evaluate(&generate, what, device)
}
