//! Evaluation the papers' way, for every family: FID ([`fid`]), Inception Score
//! ([`inception_score`]) and R-precision of a generator's images ([`generator`]), the context an
//! evaluation reads once (held-out captions, real features, frozen networks), and the FID floor
//! of real images.

pub mod fid;
pub mod generator;
pub mod inception_score;

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use t2i::bundle::{GanBundle, load_gan};
use t2i::inception::Inception;
use t2i::vocab::Vocabulary;

use crate::config::GanTrainConfig;
use crate::damsm::commands::read_damsm;
use crate::data::Dataset;
use crate::data::features::CachedFeatures;
use crate::data::features::FeatureCache;
use crate::data::prepared::load_dataset;
use crate::data::{CaptionSource, species_split};
use crate::eval::fid::fid;
use crate::eval::generator::{
    EvalCaptions, EvalInputs, EvalOptions, Generate, GeneratorEvaluation, IsHeadFit, eval_captions,
    evaluate_generator, real_pool3, train_is_head,
};
use crate::run::plot::tensor_to_images;

/// FID between two random halves of the same real images: the floor a generator's FID on
/// those images is read against (it is not zero for a finite sample).
#[derive(Debug, Serialize)]
pub struct RealFidFloor {
    pub fid_real_halves: f64,
    pub images_per_half: usize,
}

/// Splits `samples` of `dataset` in two random halves (seeded) and measures their FID on
/// cached `pool3` features.
pub fn real_fid_floor(
    dataset: &Dataset,
    samples: &[usize],
    features: &CachedFeatures,
    seed: u64,
) -> Result<RealFidFloor> {
    let mut rows = samples
        .iter()
        .map(|&i| {
            let sample = &dataset.samples[i];
            features.row(&sample.key).with_context(|| {
                format!(
                    "image {} has no cached features",
                    sample.image_path.display()
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    if rows.len() < 4 {
        bail!("{} images are too few for two halves", rows.len());
    }
    rows.shuffle(&mut StdRng::seed_from_u64(seed));
    let half = rows.len() / 2;
    let dim = t2i::inception::POOL3_DIM;
    let fid_real_halves = fid(
        &features.pool3_rows(&rows[..half]),
        &features.pool3_rows(&rows[half..2 * half]),
        dim,
    )?;
    Ok(RealFidFloor {
        fid_real_halves,
        images_per_half: half,
    })
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
    floor: crate::eval::RealFidFloor,
    synthesized_captions: bool,
    heldout_species: usize,
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
        let floor = crate::eval::real_fid_floor(&dataset, &heldout, &features, config.train.seed)?;
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
            heldout_species: config.train.heldout_species,
            seed: config.train.seed,
        })
    }

    /// How many species the evaluation captions are drawn from.
    pub fn heldout_species(&self) -> usize {
        self.heldout_species
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

/// `t2i eval gan` for any family: the bundle of `source` (from `checkpoint` for the run's latest
/// checkpoint; an exported file must be of `family`) scored stage by stage on the config's
/// evaluation captions (see [`evaluate_stages`]).
pub fn evaluate_source(
    config: &GanTrainConfig,
    source: GeneratorSource<'_>,
    samples: Option<usize>,
    family: &str,
    checkpoint: impl FnOnce() -> Result<(GanBundle, String)>,
    device: &Device,
) -> Result<Vec<GanEvaluation>> {
    let (bundle, what) = match source {
        GeneratorSource::Checkpoint => checkpoint()?,
        GeneratorSource::Bundle(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let bundle =
                load_gan(&bytes, device).with_context(|| format!("bundle {}", path.display()))?;
            if bundle.family() != family {
                bail!(
                    "{} is a {} bundle; the config is {family}'s",
                    path.display(),
                    bundle.family()
                );
            }
            let what = format!("{} ({})", path.display(), bundle.precision());
            (bundle, what)
        }
    };
    let context = EvalContext::new(config, samples, device)?;
    evaluate_stages(&context, &bundle, &what, device)
}

/// Scores each stage of `bundle`'s images of the evaluation captions, drawn the way the page
/// and `t2i generate` draw them ([`GanBundle::stage_inputs`] and [`GanBundle::stage`]): the
/// captions through the bundle's own text encoder and vocabulary, row `k` of a batch with
/// seed `seed + k`. One report per stage, smallest first, every stage from the same captions
/// and seeds.
pub fn evaluate_stages(
    context: &EvalContext,
    bundle: &GanBundle,
    what: &str,
    device: &Device,
) -> Result<Vec<GanEvaluation>> {
    let tokens: Vec<Vec<u32>> = context
        .captions
        .texts
        .iter()
        .map(|caption| {
            bundle
                .tokens(caption)
                .map(|(tokens, _)| tokens)
                .with_context(|| format!("caption {caption:?} (the generator's vocabulary)"))
        })
        .collect::<Result<_>>()?;
    if tokens.is_empty() {
        bail!("no evaluation captions");
    }
    eprintln!(
        "evaluating the {what} on {} captions of {} held-out species",
        context.captions.texts.len(),
        context.heldout_species()
    );
    let count = bundle.stage_count();
    (0..count)
        .map(|last| {
            let label = bundle.family_stages().stage_label(last);
            let what = if count == 1 {
                what.to_string()
            } else {
                format!("{what}, {label}")
            };
            let draw = |indices: &[usize], seed: u64| {
                evaluation_images(bundle, &tokens, indices, seed, last, device)
            };
            let report = context.evaluate(&draw, what, device)?;
            let prefix = if count == 1 {
                String::new()
            } else {
                format!("{label}: ")
            };
            print_gan_scores(&prefix, &report);
            Ok(report)
        })
        .collect()
}

/// One line of a GAN evaluation for people (the JSON follows on stdout).
fn print_gan_scores(prefix: &str, report: &GanEvaluation) {
    eprintln!(
        "{prefix}FID {:.2} (real-vs-real floor {:.2}), Inception Score {:.2} ± {:.2}, R-precision {:.4} (species-aware {:.4}) over {} samples",
        report.scores.fid,
        report.fid_real_halves,
        report.scores.inception_score,
        report.scores.inception_score_std,
        report.scores.r_precision,
        report.scores.r_precision_species,
        report.scores.samples
    );
}

/// The images an evaluation scores for the captions `indices` of `tokens` drawn at `seed`:
/// stage `last`'s image of each, row `k` drawn with seed `seed + k`, through the bundle's one
/// path (a caption with one seed gives what `t2i generate` and the page give it).
pub fn evaluation_images(
    bundle: &GanBundle,
    tokens: &[Vec<u32>],
    indices: &[usize],
    seed: u64,
    last: usize,
    device: &Device,
) -> Result<Vec<RgbImage>> {
    let batch: Vec<&[u32]> = indices.iter().map(|&i| tokens[i].as_slice()).collect();
    let seeds: Vec<u64> = (0..indices.len() as u64)
        .map(|k| seed.wrapping_add(k))
        .collect();
    let mut stages =
        bundle.first_stages(bundle.encode(&batch, device), &seeds, last + 1, device)?;
    let stage = stages.pop().context("no stage was drawn")?;
    tensor_to_images(stage.images)
}
