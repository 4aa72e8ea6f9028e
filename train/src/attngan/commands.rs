//! The AttnGAN commands end to end: the prepared set of 256 px crops with caption tokens,
//! training with sample grids (every stage side by side) and attention figures (the words'
//! maps over the last stage's image), export, evaluation at 64, 128 and 256 px, and the
//! attention figure of `t2i generate --attention`. Prepared sets, grids and evaluation are the
//! shared ones of [`crate::data`], [`crate::run`] and [`crate::eval`]; generation goes through
//! [`GanBundle`], as on the page.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use image::RgbImage;
use t2i::attngan::{AttnGanConfig, AttnGanGenerator};
use t2i::bundle::{AttnGanWeights, GanBundle};
use t2i::inception::Inception;

use crate::attngan::train::{
    AttnGanFrozen, AttnGanTrainOptions, MIN_DAMSM_IMAGE_SIZE, train_attngan,
};
use crate::config::GanTrainConfig;
use crate::damsm::commands::{read_damsm, text_side};
use crate::data::prepared::{PreparedSet, prepare_at};
use crate::eval::GanEvaluation;
use crate::family::{GanFamily, TrainRequest, latest_bundle};
use crate::generate::sample_grid;
use crate::run::checkpoint::Checkpoints;
use crate::run::folder::RunFolder;
use crate::run::plot::tensor_to_images;

/// Captions in a training grid, and seeds per caption.
const GRID_CAPTIONS: usize = 8;
const GRID_SEEDS: u64 = 2;
/// Captions in a training run's attention figure.
const FIGURE_CAPTIONS: usize = 4;
/// Words shown per caption in an attention figure.
const FIGURE_WORDS: usize = 6;
/// Words an attention figure skips: they carry no place in the picture.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "this", "that", "is", "are", "has", "have", "with", "and", "of", "its", "it",
    "in", "on", "to", "very", "bird",
];

/// Side of the last stage's images and of the training crops: 64, 128 or 256.
pub fn image_size(config: &GanTrainConfig) -> u32 {
    64 << (config.attngan_section().branch_num.clamp(1, 3) - 1)
}

/// The network sizes a config asks for, for text features of `text_dim` values.
pub fn model_config(config: &GanTrainConfig, text_dim: usize) -> Result<AttnGanConfig> {
    let a = config.attngan_section();
    let model = AttnGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(config.gan.nt)
        .with_noise_dim(config.gan.nz)
        .with_ngf(config.gan.ngf)
        .with_ndf(config.gan.ndf)
        .with_residual_blocks(a.r_num)
        .with_branch_num(a.branch_num)
        .with_authors_mask_order(a.authors_mask_order)
        .with_text_scale((config.gan.text_scale != 1.0).then_some(config.gan.text_scale));
    model.validate().map_err(anyhow::Error::msg)?;
    Ok(model)
}

/// Training options of a config.
pub fn training_options(config: &GanTrainConfig, text_dim: usize) -> Result<AttnGanTrainOptions> {
    let a = config.attngan_section();
    let t = &config.train;
    let mut options = AttnGanTrainOptions::birds(model_config(config, text_dim)?);
    options.run = t.run_options();
    options.lr_g = config.recipe.lr_g.unwrap_or(t.lr);
    options.lr_d = config.recipe.lr_d.unwrap_or(t.lr);
    options.recipe = config.recipe.clone();
    options.kl_weight = t.kl_weight;
    options.damsm_lambda = a.damsm_lambda;
    options.damsm_every = a.damsm_every;
    options.damsm_image_size = a.damsm_image_size.max(MIN_DAMSM_IMAGE_SIZE);
    Ok(options)
}

/// `t2i features` for AttnGAN: the prepared set of last-stage crops, with caption tokens.
pub fn prepare(config: &GanTrainConfig, device: &Device) -> Result<PreparedSet> {
    prepare_at(config, &config.prepared_dir, image_size(config), device)
}

/// The frozen networks of a run: the DAMSM bundle's text encoder, and (when the DAMSM term is
/// on) its image encoder with Inception-v3.
pub fn load_frozen(config: &GanTrainConfig, device: &Device) -> Result<AttnGanFrozen> {
    let (damsm, _, _) = read_damsm(&config.text_encoder, device)?;
    let image = if config.attngan_section().damsm_lambda > 0.0 {
        let inception = Inception::load(&config.eval.inception, device)
            .with_context(|| format!("Inception-v3 {}", config.eval.inception.display()))?;
        Some((inception, damsm.image_encoder))
    } else {
        None
    };
    Ok(AttnGanFrozen::new(damsm.text_encoder, image))
}

/// The figure of the paper's Fig. 2 for each caption (seed `seed`): the last stage's image,
/// then the image lit by the last attention stage's map of each content word (up to
/// [`FIGURE_WORDS`]; articles and the like are skipped), the word under it.
pub fn attention_figure(
    bundle: &GanBundle,
    captions: &[String],
    seed: u64,
    device: &Device,
) -> Result<RgbImage> {
    if !matches!(bundle, GanBundle::AttnGan(_)) {
        bail!(
            "{} has no word attention: attention maps need an AttnGAN bundle",
            bundle.family()
        );
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for caption in captions {
        let drawn = bundle
            .caption_attention(caption, seed, device)
            .with_context(|| format!("caption {caption:?}"))?;
        let last = drawn
            .stages
            .last()
            .context("the model drew no image")?
            .images
            .clone();
        let image = tensor_to_images(last)?.remove(0);
        let mut row_images = vec![image.clone()];
        let mut row_labels = vec![caption.clone()];
        let words = drawn.words.iter().filter(|w| {
            w.maps.as_ref().is_some_and(|m| !m.is_empty())
                && !FUNCTION_WORDS.contains(&w.word.to_lowercase().as_str())
        });
        for word in words.take(FIGURE_WORDS) {
            let map = word.maps.as_ref().and_then(|m| m.last()).expect("filtered");
            row_images.push(crate::run::plot::attention_overlay(
                &image,
                &map.values,
                map.size,
            ));
            row_labels.push(word.word.clone());
        }
        row_images.resize(
            FIGURE_WORDS + 1,
            RgbImage::from_pixel(1, 1, image::Rgb([255; 3])),
        );
        row_labels.resize(FIGURE_WORDS + 1, String::new());
        images.extend(row_images);
        labels.extend(row_labels);
    }
    Ok(crate::run::plot::caption_grid(
        &images,
        &labels,
        FIGURE_WORDS + 1,
        1,
    ))
}

/// `t2i train` for AttnGAN. Refuses to overwrite an existing run unless `resume`.
fn train(config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
    let device = request.device;
    let run_dir = config.output_dir.clone();
    let checkpoints = Checkpoints::of_run(&config.output_dir);
    checkpoints.latest_for_training(request.resume, &run_dir)?;
    let (data, info) = prepare(config, device)?.into_gan_set();
    eprintln!("{}", info.summary(&config.text_encoder));
    let mut options = training_options(config, info.text_dim)?;
    request.limit(&mut options.run);
    let frozen = load_frozen(config, device)?;
    eprintln!(
        "AttnGAN generator {:.2} M parameters, discriminators {:.2} M; DAMSM term {}",
        options.model.init_generator(device).num_params() as f64 / 1e6,
        options.model.init_discriminators(device).num_params() as f64 / 1e6,
        if options.damsm_lambda > 0.0 {
            format!(
                "lambda {} every {} step(s) at {} px",
                options.damsm_lambda, options.damsm_every, options.damsm_image_size
            )
        } else {
            "off".to_string()
        }
    );
    let folder = RunFolder::create(&run_dir, config)?;
    let text = text_side(&config.text_encoder, device)?;
    let grid_captions: Vec<String> = info
        .sample_captions
        .iter()
        .take(GRID_CAPTIONS)
        .cloned()
        .collect();
    let model = options.model.clone();
    let write = |step: u64, generator: &AttnGanGenerator| -> Result<()> {
        let device = &generator.devices()[0];
        let bundle = text
            .clone()
            .bundle::<AttnGanWeights>(generator.clone(), model.clone());
        let stages = bundle.stage_count();
        let grid = sample_grid(&bundle, &grid_captions, GRID_SEEDS, stages, 1, device)?;
        folder.save_sample(&grid, "stages", step)?;
        if model.branch_num > 1 {
            let figure_captions = &grid_captions[..grid_captions.len().min(FIGURE_CAPTIONS)];
            let figure = attention_figure(&bundle, figure_captions, 0, device)?;
            folder.save_sample(&figure, "attention", step)?;
        }
        folder.write_losses(&["loss_d", "loss_g", "kl", "damsm"], "AttnGAN losses")
    };
    let hook = folder.sample_hook(&write);
    let place = folder.place(&checkpoints, request, &hook);
    let run = train_attngan(&options, &frozen, &data, &place)?;
    folder.report_end("AttnGAN", run.interrupted, run.steps);
    Ok(())
}

/// What `t2i eval gan` prints for AttnGAN: the scores of each stage's images, drawn from the
/// same captions and seeds (`stage_128px`/`stage_256px` absent with fewer stages).
#[derive(Debug, serde::Serialize)]
pub struct AttnGanEvaluation {
    pub stage_64px: GanEvaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_128px: Option<GanEvaluation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_256px: Option<GanEvaluation>,
}

/// AttnGAN as the command line drives it.
pub struct AttnGan;

impl GanFamily for AttnGan {
    fn name(&self) -> &'static str {
        "AttnGAN"
    }

    fn prepare(&self, config: &GanTrainConfig, device: &Device) -> Result<Vec<PreparedSet>> {
        Ok(vec![prepare(config, device)?])
    }

    fn train(&self, config: &GanTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
        train(config, request)
    }

    fn latest(&self, config: &GanTrainConfig, device: &Device) -> Result<(GanBundle, String)> {
        latest_bundle::<AttnGanWeights, AttnGanTrainOptions>(config, device)
    }

    fn report(&self, stages: Vec<GanEvaluation>) -> Result<serde_json::Value> {
        let mut stages = stages.into_iter();
        Ok(serde_json::to_value(AttnGanEvaluation {
            stage_64px: stages.next().context("the model has no stage")?,
            stage_128px: stages.next(),
            stage_256px: stages.next(),
        })?)
    }
}

/// `t2i generate --attention`: the attention figure of `captions` drawn with `seed`.
pub fn write_attention_figure(
    bundle: &GanBundle,
    captions: &[String],
    seed: u64,
    out: &Path,
    device: &Device,
) -> Result<()> {
    let figure = attention_figure(bundle, captions, seed, device)?;
    figure
        .save(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} (word attention of the last stage)", out.display());
    Ok(())
}
