//! Evaluation of a text-to-image generator the papers' way, for every family (GAN-INT-CLS at
//! 64 px, StackGAN at 64 and 256, AttnGAN at 64, 128 and 256): images are generated for
//! held-out captions and scored by
//!
//! - **FID** (Inception 2015-12-05 `pool3`) against the real photos of the same species, whose
//!   features come from the [`crate::data::features::FeatureCache`];
//! - **Inception Score** from [`IsHead`], a linear head on frozen `pool3` (not an Inception
//!   fine-tuned on the dataset as in StackGAN/AttnGAN: see [`crate::eval::inception_score`]);
//! - **R-precision** of the DAMSM global image vector of each generated image against its own
//!   caption and 99 mismatched ones, the paper's way (mismatches from any other caption) and
//!   species-aware (mismatches from other classes only), mean and std over 10 repeats.
//!
//! Generated images go through exactly the preprocessing of the real photos in the cache
//! ([`crate::data::features::inception_input`]: bilinear resize to 299 x 299, `p / 127.5 - 1`),
//! whatever their size.
//!
//! The model enters only through a closure `generate(caption indices, seed) -> images`
//! ([`Generate`]). [`evaluate_generator`] is feature extraction ([`collect_features`] with
//! [`inception_damsm_features`]) followed by [`score_features`], which needs no network but
//! the IS head and is tested on synthetic features.

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use t2i::damsm::{Damsm, ImageEncoder, TextEncoder};
use t2i::inception::{INPUT_SIZE, Inception, InceptionFeatures};
use t2i::metrics::{Mismatches, r_precision};
use t2i::vocab::Vocabulary;

use crate::data::Dataset;
use crate::data::features::{CachedFeatures, inception_input};
use crate::eval::fid::fid;
use crate::eval::inception_score::{IsHead, inception_score};
use crate::run::log::progress_bar;

/// A generator under evaluation: one image per caption index (indices into the evaluation's
/// captions), any size, its noise drawn from `seed`. Called with at most
/// [`EvalOptions::batch_size`] indices at a time.
pub type Generate<'a> = dyn Fn(&[usize], u64) -> Result<Vec<RgbImage>> + 'a;

/// Protocol settings; the defaults are the papers' (10 IS splits, 100 R-precision candidates,
/// 10 repeats) with Inception batches of 16.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Captions per generator call and images per Inception forward.
    pub batch_size: usize,
    pub is_splits: usize,
    /// Captions ranked per image (its own and `candidates - 1` mismatches); fewer when the
    /// evaluation has fewer captions.
    pub r_candidates: usize,
    pub r_repeats: usize,
    /// Seeds the generator's noise ([`batch_seed`]), the IS split order and the mismatches.
    pub seed: u64,
    /// Show a progress bar while generating.
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            batch_size: 16,
            is_splits: 10,
            r_candidates: 100,
            r_repeats: 10,
            seed: 0,
            progress: true,
        }
    }
}

/// The seed a generator call receives for the batch starting at caption `start`.
pub fn batch_seed(seed: u64, start: usize) -> u64 {
    seed ^ (start as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// An Inception Score head with its accuracy on held-out real photos.
#[derive(Debug, Clone)]
pub struct IsHeadFit {
    pub head: IsHead,
    /// Top-1 accuracy on real photos the head was not trained on, in [0, 1].
    pub accuracy: f64,
    pub test_images: usize,
}

/// Trains the IS head on the cached `pool3` of every species' training images (CUB's
/// `train_test_split.txt`; where a dataset has no such split, four of every five images in
/// sample order) and measures it on the rest. Images missing from the cache are left out
/// (counted on stderr).
pub fn train_is_head(
    dataset: &Dataset,
    features: &CachedFeatures,
    device: &Device,
    seed: u64,
) -> Result<IsHeadFit> {
    let has_split = dataset
        .samples
        .iter()
        .any(|s| s.is_train_image == Some(false));
    let (mut train_rows, mut train_labels) = (Vec::new(), Vec::new());
    let (mut test_rows, mut test_labels) = (Vec::new(), Vec::new());
    let mut missing = 0usize;
    for (i, sample) in dataset.samples.iter().enumerate() {
        let Some(row) = features.row(&sample.key) else {
            missing += 1;
            continue;
        };
        let is_test = if has_split {
            sample.is_train_image == Some(false)
        } else {
            i % 5 == 4
        };
        if is_test {
            test_rows.push(row);
            test_labels.push(sample.class_id);
        } else {
            train_rows.push(row);
            train_labels.push(sample.class_id);
        }
    }
    if missing > 0 {
        eprintln!(
            "Inception Score head: {missing} of {} images have no cached features and are left out",
            dataset.len()
        );
    }
    ensure!(
        !train_rows.is_empty(),
        "{}: no cached training image for the Inception Score head",
        dataset.name
    );
    let head = IsHead::train(
        &features.pool3_rows(&train_rows),
        &train_labels,
        device,
        seed,
    )
    .with_context(|| format!("{}: training the Inception Score head", dataset.name))?;
    // Held-out photos of classes the head never saw cannot be scored; there are none when the
    // training split covers every class.
    let known: Vec<usize> = (0..test_rows.len())
        .filter(|&i| head.classes().binary_search(&test_labels[i]).is_ok())
        .collect();
    ensure!(
        !known.is_empty(),
        "{}: no held-out real image to measure the Inception Score head on",
        dataset.name
    );
    let rows: Vec<usize> = known.iter().map(|&i| test_rows[i]).collect();
    let labels: Vec<u32> = known.iter().map(|&i| test_labels[i]).collect();
    let accuracy = head.accuracy(&features.pool3_rows(&rows), &labels)?;
    Ok(IsHeadFit {
        head,
        accuracy,
        test_images: rows.len(),
    })
}

/// Cached `pool3` of the given samples (the real side of the FID), `samples.len() * 2048`
/// values. A sample missing from the cache is an error naming its image.
pub fn real_pool3(
    dataset: &Dataset,
    samples: &[usize],
    features: &CachedFeatures,
) -> Result<Vec<f32>> {
    let rows = samples
        .iter()
        .map(|&i| {
            let sample = dataset
                .samples
                .get(i)
                .with_context(|| format!("sample {i} is not in {}", dataset.name))?;
            features.row(&sample.key).with_context(|| {
                format!(
                    "image {} has no cached features",
                    sample.image_path.display()
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(features.pool3_rows(&rows))
}

/// The captions an evaluation generates from.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCaptions {
    pub texts: Vec<String>,
    pub class_ids: Vec<u32>,
    /// The dataset sample each caption belongs to.
    pub samples: Vec<usize>,
}

impl EvalCaptions {
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// Up to `max` captions of the given samples, spread over the images: one random caption of
/// every image (in a random image order) before a second of any, and so on (seeded). Only
/// captions with a word in `vocabulary` are drawn. Sorted by sample, then drawing round.
pub fn eval_captions(
    dataset: &Dataset,
    samples: &[usize],
    max: usize,
    vocabulary: &Vocabulary,
    seed: u64,
) -> Result<EvalCaptions> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut choices: Vec<(usize, Vec<usize>)> = Vec::with_capacity(samples.len());
    for &i in samples {
        let sample = dataset
            .samples
            .get(i)
            .with_context(|| format!("sample {i} is not in {}", dataset.name))?;
        let mut usable: Vec<usize> = (0..sample.captions.len())
            .filter(|&c| !vocabulary.encode(&sample.captions[c]).tokens.is_empty())
            .collect();
        usable.shuffle(&mut rng);
        choices.push((i, usable));
    }
    choices.shuffle(&mut rng);
    let mut picked: Vec<(usize, usize, usize)> = Vec::new(); // (sample, round, caption)
    let rounds = choices.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    'rounds: for round in 0..rounds {
        for (sample, usable) in &choices {
            if picked.len() >= max {
                break 'rounds;
            }
            if let Some(&caption) = usable.get(round) {
                picked.push((*sample, round, caption));
            }
        }
    }
    ensure!(
        !picked.is_empty(),
        "{}: no caption of the {} evaluation images has a word in the vocabulary",
        dataset.name,
        samples.len()
    );
    picked.sort_unstable();
    Ok(EvalCaptions {
        texts: picked
            .iter()
            .map(|&(s, _, c)| dataset.samples[s].captions[c].clone())
            .collect(),
        class_ids: picked
            .iter()
            .map(|&(s, _, _)| dataset.samples[s].class_id)
            .collect(),
        samples: picked.iter().map(|&(s, _, _)| s).collect(),
    })
}

/// Everything [`evaluate_generator`] needs.
pub struct EvalInputs<'a> {
    pub generate: &'a Generate<'a>,
    /// The captions to generate from; one image each.
    pub captions: &'a [String],
    /// The class (species) of each caption, for the species-aware R-precision.
    pub class_ids: &'a [u32],
    /// `pool3` rows of the real photos the FID compares with (e.g. [`real_pool3`] of the
    /// held-out species), 2048 values each.
    pub real_pool3: &'a [f32],
    pub inception: &'a Inception,
    /// DAMSM encoders for R-precision, on an inference (non-autodiff) device.
    pub damsm: &'a Damsm,
    /// The DAMSM vocabulary.
    pub vocabulary: &'a Vocabulary,
    pub is_head: &'a IsHeadFit,
    pub options: EvalOptions,
    pub device: &'a Device,
}

/// The scores of one generator.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorEvaluation {
    pub fid: f64,
    pub inception_score: f64,
    pub inception_score_std: f64,
    pub inception_score_splits: usize,
    /// The same head's Inception Score of the real photos on the other side of the FID (some
    /// of which it was trained on): what a generator matching them would score.
    pub inception_score_real: f64,
    pub inception_score_real_std: f64,
    /// Mean over repeats, mismatches from any other caption (the paper's protocol), in [0, 1].
    pub r_precision: f64,
    pub r_precision_std: f64,
    /// Mismatches from other classes only.
    pub r_precision_species: f64,
    pub r_precision_species_std: f64,
    /// Captions ranked per image (100 unless the evaluation has fewer captions).
    pub r_precision_candidates: usize,
    pub r_precision_species_candidates: usize,
    /// Generated images.
    pub samples: usize,
    /// Real photos on the other side of the FID.
    pub real_images: usize,
    /// Top-1 accuracy of the IS head on held-out real photos, in [0, 1].
    pub is_head_accuracy: f64,
    pub is_head_test_images: usize,
    pub is_head_classes: usize,
    /// What the numbers are, in words (the IS head above all).
    pub notes: String,
}

/// Generates one image per caption and scores them (see the module documentation).
pub fn evaluate_generator(inputs: EvalInputs<'_>) -> Result<GeneratorEvaluation> {
    let n = inputs.captions.len();
    ensure!(n > 0, "no captions to evaluate");
    ensure!(
        inputs.class_ids.len() == n,
        "{} class ids for {n} captions",
        inputs.class_ids.len()
    );
    // Cheap checks before minutes of generation.
    check_protocol(
        n,
        inputs.class_ids,
        inputs.real_pool3.len(),
        &inputs.options,
    )?;
    let (captions, _) = caption_vectors(
        &inputs.damsm.text_encoder,
        inputs.vocabulary,
        inputs.captions,
        inputs.device,
    )?;
    let extract = |images: &[RgbImage]| {
        inception_damsm_features(
            images,
            inputs.inception,
            &inputs.damsm.image_encoder,
            inputs.device,
        )
    };
    let generated = collect_features(inputs.generate, n, &extract, &inputs.options)?;
    score_features(
        &generated,
        &captions,
        inputs.class_ids,
        inputs.real_pool3,
        inputs.is_head,
        &inputs.options,
    )
}

fn check_protocol(
    n: usize,
    class_ids: &[u32],
    real_values: usize,
    options: &EvalOptions,
) -> Result<()> {
    ensure!(
        options.batch_size > 0 && options.is_splits > 0 && options.r_repeats > 0,
        "batch size, IS splits and R-precision repeats must be positive"
    );
    ensure!(
        options.r_candidates >= 2,
        "R-precision needs at least 2 candidates"
    );
    if n < 2 {
        bail!("{n} generated image(s) are too few for the FID and R-precision (at least 2)");
    }
    if n < options.is_splits {
        bail!(
            "{n} generated images are too few for an Inception Score over {} splits",
            options.is_splits
        );
    }
    let real = real_values / t2i::inception::POOL3_DIM;
    if real < 2 {
        bail!("{real} real image(s) are too few for the FID (at least 2)");
    }
    if class_ids.iter().all(|&c| c == class_ids[0]) {
        bail!("the captions are all of one class: the species-aware R-precision needs two");
    }
    Ok(())
}

/// DAMSM sentence vectors of the captions, `[n, D]` row-major, with D. A caption with no word
/// in the vocabulary is an error naming it.
pub fn caption_vectors(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    captions: &[String],
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    let tokens: Vec<Vec<u32>> = captions
        .iter()
        .map(|c| vocabulary.encode(c).tokens)
        .collect();
    if let Some(i) = tokens.iter().position(Vec::is_empty) {
        bail!(
            "caption {i} ({:?}) has no word in the DAMSM vocabulary",
            captions[i]
        );
    }
    let mut out = Vec::with_capacity(captions.len() * 256);
    let mut dim = 0;
    for chunk in tokens.chunks(256) {
        let ids: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let sentence = encoder.encode_ids(&ids, device).sentence;
        dim = sentence.dims()[1];
        out.extend(to_f32(sentence.into_data(), "text encoder")?);
    }
    Ok((out, dim))
}

/// Per-image features of generated images: Inception `pool3` and the DAMSM global image
/// vector, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratedFeatures {
    pub pool3: Vec<f32>,
    pub pool3_dim: usize,
    pub damsm: Vec<f32>,
    pub damsm_dim: usize,
}

impl GeneratedFeatures {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pool3.len().checked_div(self.pool3_dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the rows of `other` (same widths, or `self` empty).
    pub fn append(&mut self, other: GeneratedFeatures) -> Result<()> {
        if self.is_empty() {
            self.pool3_dim = other.pool3_dim;
            self.damsm_dim = other.damsm_dim;
        }
        ensure!(
            other.pool3_dim == self.pool3_dim && other.damsm_dim == self.damsm_dim,
            "feature widths changed between batches: {}/{} then {}/{}",
            self.pool3_dim,
            self.damsm_dim,
            other.pool3_dim,
            other.damsm_dim
        );
        self.pool3.extend(other.pool3);
        self.damsm.extend(other.damsm);
        Ok(())
    }
}

/// Inception features of any images, each prepared exactly as the feature cache prepares real
/// photos ([`inception_input`]).
pub fn inception_features(
    images: &[RgbImage],
    inception: &Inception,
    device: &Device,
) -> Result<InceptionFeatures> {
    ensure!(!images.is_empty(), "no images for Inception");
    if let Some(i) = images
        .iter()
        .position(|im| im.width() == 0 || im.height() == 0)
    {
        bail!(
            "image {i} is empty ({}x{})",
            images[i].width(),
            images[i].height()
        );
    }
    let mut pixels = Vec::with_capacity(images.len() * 3 * INPUT_SIZE * INPUT_SIZE);
    for image in images {
        pixels.extend(inception_input(image));
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(pixels, [images.len(), 3, INPUT_SIZE, INPUT_SIZE]),
        device,
    );
    Ok(inception.forward(x))
}

/// [`inception_features`] and the DAMSM image encoder's global vector
/// (`ImageEncoder::forward(mixed_7, pool3).global`) of a batch of images.
pub fn inception_damsm_features(
    images: &[RgbImage],
    inception: &Inception,
    image_encoder: &ImageEncoder,
    device: &Device,
) -> Result<GeneratedFeatures> {
    let features = inception_features(images, inception, device)?;
    let pool3_dim = features.pool3.dims()[1];
    let global = image_encoder
        .forward(features.mixed_7, features.pool3.clone())
        .global;
    let damsm_dim = global.dims()[1];
    Ok(GeneratedFeatures {
        pool3: to_f32(features.pool3.into_data(), "Inception")?,
        pool3_dim,
        damsm: to_f32(global.into_data(), "DAMSM image encoder")?,
        damsm_dim,
    })
}

/// Generates one image per caption `0..count` in batches of [`EvalOptions::batch_size`]
/// (the batch starting at caption `s` gets seed [`batch_seed`]`(options.seed, s)`) and runs
/// `extract` on each batch. A generator returning another number of images than asked is an
/// error.
pub fn collect_features(
    generate: &Generate<'_>,
    count: usize,
    extract: &dyn Fn(&[RgbImage]) -> Result<GeneratedFeatures>,
    options: &EvalOptions,
) -> Result<GeneratedFeatures> {
    ensure!(options.batch_size > 0, "batch size must be positive");
    let bar = progress_bar(options.progress, count as u64, 0);
    bar.set_message("images generated and through Inception");
    let mut out = GeneratedFeatures::default();
    for start in (0..count).step_by(options.batch_size) {
        let indices: Vec<usize> = (start..(start + options.batch_size).min(count)).collect();
        let images = generate(&indices, batch_seed(options.seed, start))
            .with_context(|| format!("generating captions {start}..{}", start + indices.len()))?;
        ensure!(
            images.len() == indices.len(),
            "the generator returned {} images for {} captions ({start}..)",
            images.len(),
            indices.len()
        );
        let batch = extract(&images)?;
        ensure!(
            batch.len() == indices.len() && batch.damsm.len() == indices.len() * batch.damsm_dim,
            "feature extraction returned {} rows for {} images",
            batch.len(),
            indices.len()
        );
        out.append(batch)?;
        bar.inc(indices.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The scores of generated images from their features alone: FID against `real_pool3`, the
/// IS of the head's predictions (rows in a seeded random order, so every split sees all
/// classes), and R-precision of `generated.damsm` against `captions` (row i is image i's
/// caption vector) both ways.
pub fn score_features(
    generated: &GeneratedFeatures,
    captions: &[f32],
    class_ids: &[u32],
    real_pool3: &[f32],
    is_head: &IsHeadFit,
    options: &EvalOptions,
) -> Result<GeneratorEvaluation> {
    let n = class_ids.len();
    ensure!(
        generated.len() == n && generated.pool3.len() == n * generated.pool3_dim,
        "{} generated feature rows for {n} captions",
        generated.len()
    );
    ensure!(
        generated.damsm_dim > 0 && generated.damsm.len() == n * generated.damsm_dim,
        "{} DAMSM image values for {n} images",
        generated.damsm.len()
    );
    ensure!(
        captions.len() == generated.damsm.len(),
        "{} caption vector values, expected {} ({n} of {})",
        captions.len(),
        generated.damsm.len(),
        generated.damsm_dim
    );
    let dim = generated.pool3_dim;
    ensure!(
        dim > 0 && real_pool3.len().is_multiple_of(dim),
        "{} real feature values do not make rows of {dim}",
        real_pool3.len()
    );
    ensure!(
        is_head.head.feature_dim() == dim,
        "the IS head reads {} features, the images have {dim}",
        is_head.head.feature_dim()
    );
    let real = real_pool3.len() / dim;
    ensure!(
        options.is_splits > 0 && options.r_repeats > 0 && options.r_candidates >= 2,
        "IS splits and R-precision repeats must be positive, candidates at least 2"
    );
    ensure!(
        n >= 2,
        "{n} generated image(s) are too few for the FID (at least 2)"
    );
    ensure!(
        real >= 2,
        "{real} real image(s) are too few for the FID (at least 2)"
    );

    let fid_value = fid(&generated.pool3, real_pool3, dim).context("FID")?;

    let k = is_head.head.classes().len();
    let probabilities = is_head.head.probabilities(&generated.pool3)?;
    let (is_mean, is_std) = shuffled_score(&probabilities, k, options.is_splits, options.seed)?;
    let (is_real, is_real_std) = shuffled_score(
        &is_head.head.probabilities(real_pool3)?,
        k,
        options.is_splits.min(real),
        options.seed,
    )?;

    let candidates = options.r_candidates.min(n);
    let any = r_precision(
        &generated.damsm,
        captions,
        generated.damsm_dim,
        Mismatches::AnyOther,
        candidates,
        options.r_repeats,
        options.seed,
    )
    .context("R-precision")?;
    let other_class = class_ids
        .iter()
        .map(|c| class_ids.iter().filter(|d| *d != c).count())
        .min()
        .unwrap_or(0);
    ensure!(
        other_class > 0,
        "the captions are all of one class: the species-aware R-precision needs two"
    );
    let species_candidates = candidates.min(other_class + 1);
    let species = r_precision(
        &generated.damsm,
        captions,
        generated.damsm_dim,
        Mismatches::OtherClass(class_ids),
        species_candidates,
        options.r_repeats,
        options.seed,
    )
    .context("species-aware R-precision")?;

    let notes = format!(
        "{}; its top-1 accuracy on {} held-out real photos of those classes is {:.1}%. \
         IS over {} splits of the {n} generated images in a seeded random order \
         (inception_score_real: the same head on the real photos). \
         FID: {n} generated images vs {real} real photos (Inception 2015-12-05 pool3, unbiased \
         covariances); generated images are resized to 299x299 (bilinear) and scaled exactly \
         as the cached real photos, which are whole photos resized to 299x299, not crops. \
         R-precision: DAMSM global image vector of each generated image vs its own caption and \
         {} mismatched captions (any other caption; species-aware: other classes only, {} \
         candidates), {} repeats.",
        is_head.head.description(),
        is_head.test_images,
        100.0 * is_head.accuracy,
        options.is_splits,
        candidates - 1,
        species_candidates,
        options.r_repeats
    );
    Ok(GeneratorEvaluation {
        fid: fid_value,
        inception_score: is_mean,
        inception_score_std: is_std,
        inception_score_splits: options.is_splits,
        inception_score_real: is_real,
        inception_score_real_std: is_real_std,
        r_precision: any.mean,
        r_precision_std: any.std,
        r_precision_species: species.mean,
        r_precision_species_std: species.std,
        r_precision_candidates: candidates,
        r_precision_species_candidates: species_candidates,
        samples: n,
        real_images: real,
        is_head_accuracy: is_head.accuracy,
        is_head_test_images: is_head.test_images,
        is_head_classes: k,
        notes,
    })
}

/// [`inception_score`] of the rows in a seeded random order, so that every split sees all
/// classes however the rows are grouped.
fn shuffled_score(probabilities: &[f32], k: usize, splits: usize, seed: u64) -> Result<(f64, f64)> {
    let n = probabilities.len() / k;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let shuffled: Vec<f32> = order
        .iter()
        .flat_map(|&i| probabilities[i * k..(i + 1) * k].iter().copied())
        .collect();
    inception_score(&shuffled, k, splits)
}

fn to_f32(data: TensorData, what: &str) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the {what} output: {e:?}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::Path;

    use rand::Rng;
    use t2i::damsm::{DamsmConfig, TextEncoderConfig};

    use super::*;

    /// Features of `n` images of `classes` classes: class c centred on axis c, plus noise;
    /// DAMSM vectors equal to their caption's plus `noise`.
    struct Synthetic {
        generated: GeneratedFeatures,
        captions: Vec<f32>,
        class_ids: Vec<u32>,
    }

    fn synthetic(n: usize, classes: usize, dim: usize, noise: f32, seed: u64) -> Synthetic {
        let mut rng = StdRng::seed_from_u64(seed);
        let class_ids: Vec<u32> = (0..n).map(|i| (i % classes) as u32 + 10).collect();
        let mut pool3 = Vec::new();
        for &c in &class_ids {
            for d in 0..dim {
                let centre = if d == (c - 10) as usize { 4.0 } else { 0.0 };
                pool3.push(centre + rng.random_range(-1.0f32..1.0));
            }
        }
        let damsm_dim = 8;
        let captions: Vec<f32> = (0..n * damsm_dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let damsm = captions
            .iter()
            .map(|v| v + noise * rng.random_range(-1.0f32..1.0))
            .collect();
        Synthetic {
            generated: GeneratedFeatures {
                pool3,
                pool3_dim: dim,
                damsm,
                damsm_dim,
            },
            captions,
            class_ids,
        }
    }

    fn head(dim: usize, classes: usize) -> IsHeadFit {
        let train = synthetic(40 * classes, classes, dim, 0.0, 7);
        let test = synthetic(10 * classes, classes, dim, 0.0, 8);
        let head =
            IsHead::train(&train.generated.pool3, &train.class_ids, &Device::flex(), 3).unwrap();
        let accuracy = head
            .accuracy(&test.generated.pool3, &test.class_ids)
            .unwrap();
        IsHeadFit {
            head,
            accuracy,
            test_images: test.class_ids.len(),
        }
    }

    fn quiet() -> EvalOptions {
        EvalOptions {
            progress: false,
            ..EvalOptions::default()
        }
    }

    #[test]
    fn scores_synthetic_features() {
        let (dim, classes) = (6, 5);
        let fit = head(dim, classes);
        assert!(fit.accuracy > 0.95, "{}", fit.accuracy);
        let good = synthetic(200, classes, dim, 0.05, 1);
        let real = synthetic(150, classes, dim, 0.0, 2).generated.pool3;
        let options = quiet();
        let score = |generated| {
            score_features(
                generated,
                &good.captions,
                &good.class_ids,
                &real,
                &fit,
                &options,
            )
            .unwrap()
        };
        let report = score(&good.generated);
        assert_eq!(report.samples, 200);
        assert_eq!(report.real_images, 150);
        assert_eq!(report.r_precision_candidates, 100);
        assert_eq!(report.inception_score_splits, 10);
        // Same distribution as the real features: FID near zero; confident, balanced classes:
        // IS well above 1 (at most 5); images close to their own caption vectors: R-precision 1.
        assert!(report.fid < 1.0, "FID {}", report.fid);
        assert!(
            report.inception_score > 3.0,
            "IS {}",
            report.inception_score
        );
        assert!(report.inception_score <= 5.0 + 1e-9);
        assert_eq!(report.r_precision, 1.0);
        assert_eq!(report.r_precision_species, 1.0);
        assert!(report.notes.contains("not from an Inception fine-tuned"));
        assert!(serde_json::to_string(&report).unwrap().contains("\"fid\""));

        // One class only and captions unrelated to the images: IS 1-ish, FID large, R-precision
        // near chance.
        let mut bad = synthetic(200, 1, dim, 0.0, 3);
        bad.generated.damsm = synthetic(200, 1, dim, 0.0, 4).captions;
        let worse = score(&bad.generated);
        assert!(worse.fid > report.fid + 5.0, "FID {}", worse.fid);
        assert!(worse.inception_score < 1.5, "IS {}", worse.inception_score);
        assert!(worse.r_precision < 0.1, "{}", worse.r_precision);
    }

    #[test]
    fn refuses_bad_inputs_with_errors() {
        let (dim, classes) = (6, 3);
        let fit = head(dim, classes);
        let options = quiet();
        let s = synthetic(30, classes, dim, 0.0, 1);
        let real = synthetic(30, classes, dim, 0.0, 2).generated.pool3;
        let score = |g: &GeneratedFeatures, c: &[f32], ids: &[u32], r: &[f32]| {
            score_features(g, c, ids, r, &fit, &options)
        };
        assert!(score(&s.generated, &s.captions, &s.class_ids, &real).is_ok());
        // Fewer rows than splits; one real row; mismatched caption vectors; one class.
        let few = synthetic(5, classes, dim, 0.0, 1);
        let err = score(&few.generated, &few.captions, &few.class_ids, &real).unwrap_err();
        assert!(format!("{err:#}").contains("splits"), "{err:#}");
        let err = score(&s.generated, &s.captions, &s.class_ids, &real[..dim]).unwrap_err();
        assert!(format!("{err:#}").contains("real"), "{err:#}");
        assert!(score(&s.generated, &s.captions[1..], &s.class_ids, &real).is_err());
        assert!(score(&s.generated, &s.captions, &s.class_ids[1..], &real).is_err());
        let one = vec![10u32; 30];
        let err = score(&s.generated, &s.captions, &one, &real).unwrap_err();
        assert!(format!("{err:#}").contains("one class"), "{err:#}");
        // A head of another width.
        let wide = synthetic(30, classes, dim + 1, 0.0, 1);
        let real_wide = synthetic(30, classes, dim + 1, 0.0, 2).generated.pool3;
        assert!(score(&wide.generated, &wide.captions, &wide.class_ids, &real_wide).is_err());
        // The cheap checks before generation.
        assert!(check_protocol(1, &[1], 4096, &options).is_err());
        assert!(check_protocol(20, &[1, 2].repeat(10), 2048, &options).is_err());
        assert!(check_protocol(20, &[1, 2].repeat(10), 4096, &options).is_ok());
    }

    #[test]
    fn collects_features_in_seeded_batches() {
        // A fake generator paints each image with its caption index; a fake extractor reads
        // the colour back. Checks batching, ordering and seeds.
        let seeds = RefCell::new(Vec::new());
        let generate = |indices: &[usize], seed: u64| -> Result<Vec<RgbImage>> {
            seeds.borrow_mut().push((indices.to_vec(), seed));
            Ok(indices
                .iter()
                .map(|&i| RgbImage::from_pixel(8, 8, image::Rgb([i as u8, 0, 0])))
                .collect())
        };
        let extract = |images: &[RgbImage]| -> Result<GeneratedFeatures> {
            Ok(GeneratedFeatures {
                pool3: images
                    .iter()
                    .map(|im| f32::from(im.get_pixel(0, 0)[0]))
                    .collect(),
                pool3_dim: 1,
                damsm: images.iter().flat_map(|_| [0.0, 1.0]).collect(),
                damsm_dim: 2,
            })
        };
        let options = EvalOptions {
            batch_size: 4,
            seed: 9,
            ..quiet()
        };
        let out = collect_features(&generate, 10, &extract, &options).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(out.pool3, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        let calls = seeds.borrow().clone();
        assert_eq!(
            calls,
            vec![
                (vec![0, 1, 2, 3], batch_seed(9, 0)),
                (vec![4, 5, 6, 7], batch_seed(9, 4)),
                (vec![8, 9], batch_seed(9, 8)),
            ]
        );
        assert_ne!(batch_seed(9, 0), batch_seed(9, 4));
        // A generator that returns too few images, or fails, is an error.
        let short = |indices: &[usize], _: u64| -> Result<Vec<RgbImage>> {
            Ok(vec![RgbImage::new(8, 8); indices.len() - 1])
        };
        assert!(collect_features(&short, 10, &extract, &options).is_err());
        let failing = |_: &[usize], _: u64| -> Result<Vec<RgbImage>> { bail!("out of memory") };
        let err = collect_features(&failing, 10, &extract, &options).unwrap_err();
        assert!(format!("{err:#}").contains("out of memory"));
    }

    #[test]
    fn picks_captions_spread_over_images() {
        use crate::data::{CaptionSource, Sample, SkipReport};
        let sample = |i: usize, class_id: u32, captions: &[&str]| Sample {
            key: format!("{i}.jpg"),
            image_path: format!("/none/{i}.jpg").into(),
            class_id,
            class_name: String::new(),
            captions: captions.iter().map(|c| c.to_string()).collect(),
            is_train_image: None,
        };
        let dataset = Dataset {
            name: "toy".into(),
            image_root: "/none".into(),
            samples: vec![
                sample(0, 1, &["a red bird", "a small red bird", "zzz"]),
                sample(1, 2, &["a blue bird"]),
                sample(2, 2, &["qqq"]),
            ],
            caption_source: CaptionSource::Human,
            skipped: SkipReport::default(),
        };
        let vocabulary = Vocabulary::build(["a red bird small blue"], 1);
        let all = eval_captions(&dataset, &[0, 1, 2], 10, &vocabulary, 1).unwrap();
        assert_eq!(all.len(), 3); // the unknown-word captions are never drawn
        assert_eq!(all.samples, vec![0, 0, 1]);
        assert_eq!(all.class_ids, vec![1, 1, 2]);
        let two = eval_captions(&dataset, &[0, 1, 2], 2, &vocabulary, 1).unwrap();
        assert_eq!(two.samples, vec![0, 1]); // one per image before a second of any
        assert!(eval_captions(&dataset, &[2], 5, &vocabulary, 1).is_err());
        assert!(eval_captions(&dataset, &[7], 5, &vocabulary, 1).is_err());
        let texts = vec!["a red bird".to_string(), "qqq".to_string()];
        let encoder = TextEncoderConfig::new(vocabulary.len())
            .with_embedding_dim(8)
            .with_feature_dim(6)
            .init(&Device::flex());
        let err = caption_vectors(&encoder, &vocabulary, &texts, &Device::flex()).unwrap_err();
        assert!(format!("{err:#}").contains("qqq"));
        let (vectors, dim) =
            caption_vectors(&encoder, &vocabulary, &texts[..1], &Device::flex()).unwrap();
        assert_eq!((vectors.len(), dim), (6, 6));
    }

    /// End to end with the real Inception on 12 generated 64 x 64 images (random DAMSM, IS head
    /// on synthetic 2048-wide features): checks shapes and plumbing, not values.
    #[test]
    fn end_to_end_with_the_real_inception() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/models/inception-2015-12-05.safetensors");
        if !path.exists() {
            eprintln!(
                "skipping: {} is missing (the Inception weights live in ../shared beside the checkout)",
                path.display()
            );
            return;
        }
        let device = Device::flex();
        let inception = Inception::load(&path, &device).unwrap();
        let captions: Vec<String> = (0..12)
            .map(|i| {
                if i % 2 == 0 {
                    "a red bird"
                } else {
                    "a small blue bird"
                }
                .to_string()
            })
            .collect();
        let class_ids: Vec<u32> = (0..12).map(|i| i % 2).collect();
        let vocabulary = Vocabulary::build(captions.iter().map(String::as_str), 1);
        device.seed(0);
        let damsm = DamsmConfig::new(TextEncoderConfig::new(vocabulary.len())).init(&device);

        // Shapes of one batch of 4.
        let images: Vec<RgbImage> = (0..4)
            .map(|i| {
                RgbImage::from_fn(64, 64, |x, y| {
                    image::Rgb([(x * 4) as u8, (y * 4) as u8, i * 60])
                })
            })
            .collect();
        let batch =
            inception_damsm_features(&images, &inception, &damsm.image_encoder, &device).unwrap();
        assert_eq!(
            (batch.len(), batch.pool3_dim, batch.damsm_dim),
            (4, 2048, 256)
        );
        assert!(batch.pool3.iter().all(|v| v.is_finite() && *v >= 0.0));

        // The whole evaluation on 12 images with a toy protocol (2 IS splits, 12 candidates).
        let mut rng = StdRng::seed_from_u64(5);
        let train: Vec<f32> = (0..60 * 2048)
            .map(|_| rng.random_range(0.0f32..1.0))
            .collect();
        let labels: Vec<u32> = (0..60).map(|i| i % 3).collect();
        let head = IsHead::train(&train, &labels, &device, 0).unwrap();
        let fit = IsHeadFit {
            head,
            accuracy: 0.0,
            test_images: 0,
        };
        let real: Vec<f32> = (0..20 * 2048)
            .map(|_| rng.random_range(0.0f32..1.0))
            .collect();
        let generate = |indices: &[usize], seed: u64| -> Result<Vec<RgbImage>> {
            Ok(indices
                .iter()
                .map(|&i| {
                    RgbImage::from_pixel(
                        64,
                        64,
                        image::Rgb([(i * 20) as u8, (seed % 200) as u8, 90]),
                    )
                })
                .collect())
        };
        let report = evaluate_generator(EvalInputs {
            generate: &generate,
            captions: &captions,
            class_ids: &class_ids,
            real_pool3: &real,
            inception: &inception,
            damsm: &damsm,
            vocabulary: &vocabulary,
            is_head: &fit,
            options: EvalOptions {
                is_splits: 2,
                progress: false,
                ..EvalOptions::default()
            },
            device: &device,
        })
        .unwrap();
        assert_eq!(report.samples, 12);
        assert_eq!(report.real_images, 20);
        assert_eq!(report.r_precision_candidates, 12);
        assert_eq!(report.r_precision_species_candidates, 7);
        assert!(report.fid.is_finite() && report.fid > 0.0);
        assert!(report.inception_score >= 1.0 - 1e-9 && report.inception_score <= 3.0 + 1e-9);
        assert!((0.0..=1.0).contains(&report.r_precision));
    }
}
