//! `t2i generate`: captions drawn with a bundle of any family through [`GanBundle`], the path
//! the page runs, into one image or a grid with the captions under the images.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use image::RgbImage;
use t2i::bundle::{GanBundle, load_gan};

use crate::run::plot::tensor_to_images;

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
        if !report.mapped_words.is_empty() {
            let mapped: Vec<String> = report
                .mapped_words
                .iter()
                .map(|m| format!("{} -> {}", m.word, m.read_as))
                .collect();
            eprintln!("{caption:?}: read as known words: {}", mapped.join(", "));
        }
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
        let images = stages_per_seed(&bundle, &tokens, &seeds, bundle.stage_count(), device)?;
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
        crate::run::plot::caption_grid_rows(&rows, factor)
    };
    picture
        .save(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} ({})", out.display(), bundle.family());
    if let Some(path) = attention {
        crate::attngan::commands::write_attention_figure(&bundle, captions, seed, path, device)?;
    }
    Ok(())
}

/// Captions in a training run's sample grid: the first this many held-out captions.
pub const GRID_CAPTIONS: usize = 8;

/// One caption (as tokens) drawn with each of `seeds`: per seed, the images of the first
/// `stages` stages side by side, smallest first (a row of `t2i generate`'s grid and of the
/// training runs' sample grids).
pub fn stages_per_seed(
    bundle: &GanBundle,
    tokens: &[u32],
    seeds: &[u64],
    stages: usize,
    device: &Device,
) -> Result<Vec<RgbImage>> {
    let text = bundle.encode(&[tokens], device).repeat(seeds.len());
    let drawn: Vec<Vec<RgbImage>> = bundle
        .first_stages(text, seeds, stages, device)?
        .into_iter()
        .map(|stage| tensor_to_images(stage.images))
        .collect::<Result<_>>()?;
    Ok((0..seeds.len())
        .flat_map(|k| drawn.iter().map(move |stage| stage[k].clone()))
        .collect())
}

/// A training run's sample grid: each of `captions` drawn with seeds `0..seeds` (as
/// `t2i generate --count` draws them), one row per caption with the caption under it, per seed
/// the first `stages` stages side by side (smaller ones stretched to the largest), scaled by
/// `scale`.
pub fn sample_grid(
    bundle: &GanBundle,
    captions: &[String],
    seeds: u64,
    stages: usize,
    scale: u32,
    device: &Device,
) -> Result<RgbImage> {
    let seeds: Vec<u64> = (0..seeds).collect();
    let mut rows = Vec::with_capacity(captions.len());
    for caption in captions {
        let (tokens, _) = bundle
            .tokens(caption)
            .with_context(|| format!("caption {caption:?}"))?;
        let images = stages_per_seed(bundle, &tokens, &seeds, stages, device)?;
        rows.push((images, caption.clone()));
    }
    Ok(crate::run::plot::caption_grid_rows(&rows, scale))
}
