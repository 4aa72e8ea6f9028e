//! The DAMSM commands end to end: dataset -> split -> vocabulary -> cached features ->
//! training, evaluation and export. `main.rs` only parses arguments and calls these.

use std::path::Path;

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use serde::Serialize;
use t2i::bundle::{Bundle, BundledWeights, GanBundle, load_damsm, save_damsm};
use t2i::damsm::{
    Damsm, DamsmConfig, DamsmGammas, ImageEncoderConfig, TextEncoder, TextEncoderConfig,
};
use t2i::inception::Inception;
use t2i::vocab::Vocabulary;

use crate::config::DamsmTrainConfig;
use crate::damsm::train::{
    DamsmState, DamsmTrainOptions, PairedSet, RPrecisionReport, evaluate, train_damsm,
};
use crate::data::features::FeatureCache;
use crate::data::{Dataset, load_dataset_named, species_split};
use crate::family::TrainRequest;
use crate::run::adversarial::{RunOptions, RunPlace};
use crate::run::checkpoint::{Checkpoints, write_atomic};

/// The three disjoint parts a DAMSM run uses.
pub struct Splits {
    /// Training species, CUB's training images.
    pub train: Vec<usize>,
    /// Training species, CUB's test images ("held-out images of training species").
    pub train_species_test_images: Vec<usize>,
    /// Every image of the held-out species.
    pub heldout_species: Vec<usize>,
}

/// Reads the dataset a config names.
pub fn load_dataset(config: &DamsmTrainConfig) -> Result<Dataset> {
    load_dataset_named(
        &config.dataset_name,
        &config.data_dir,
        config.text.captions_per_image,
        config.train.seed,
        config.skip_missing,
    )
}

/// Species-disjoint split, and CUB's own image split inside the training species.
pub fn split(dataset: &Dataset, heldout_species: usize) -> Splits {
    let (train_species, heldout) = species_split(dataset, heldout_species);
    let (train, test): (Vec<usize>, Vec<usize>) = train_species
        .into_iter()
        .partition(|&i| dataset.samples[i].is_train_image != Some(false));
    Splits {
        train,
        train_species_test_images: test,
        heldout_species: heldout,
    }
}

/// `t2i features`: computes the frozen Inception features of every image once.
pub fn build_features(config: &DamsmTrainConfig, device: &Device) -> Result<FeatureCache> {
    let dataset = load_dataset(config)?;
    let inception = Inception::load(&config.features.inception, device)?;
    let items: Vec<(String, std::path::PathBuf)> = dataset
        .samples
        .iter()
        .map(|s| (s.key.clone(), s.image_path.clone()))
        .collect();
    let (cache, report) = FeatureCache::build(
        &config.features.cache_dir,
        &items,
        &inception,
        device,
        config.features.batch_size,
        config.features.skip_bad_images,
    )?;
    eprintln!(
        "{} computed, {} already cached, {} skipped",
        report.computed,
        report.already_cached,
        report.skipped.len()
    );
    Ok(cache)
}

fn training_options(config: &DamsmTrainConfig, vocab_size: usize) -> DamsmTrainOptions {
    let t = &config.train;
    DamsmTrainOptions {
        model: DamsmConfig::new(
            TextEncoderConfig::new(vocab_size)
                .with_embedding_dim(config.text.word_embedding_dim)
                .with_feature_dim(config.text.embedding_dim),
        )
        .with_image(ImageEncoderConfig::new().with_feature_dim(config.text.embedding_dim)),
        run: RunOptions {
            checkpoint_steps: t.checkpoint_steps as u64,
            progress: true,
            ..RunOptions::new(t.batch_size, t.max_epoch, t.seed)
        },
        snapshot_interval: t.snapshot_interval,
        encoder_lr: t.encoder_lr,
        rnn_grad_clip: t.rnn_grad_clip,
        gammas: DamsmGammas::new()
            .with_gamma1(t.smooth.gamma1)
            .with_gamma2(t.smooth.gamma2)
            .with_gamma3(t.smooth.gamma3),
    }
}

/// `t2i train` for DAMSM. Refuses to overwrite an existing run unless `request.resume`; stops
/// (with a checkpoint) at the request's step or time limit, when given.
pub fn train(config: &DamsmTrainConfig, request: &TrainRequest<'_>) -> Result<()> {
    let (device, stop) = (request.device, request.stop);
    let checkpoints = Checkpoints::of_run(&config.output_dir);
    let existing = checkpoints.latest_for_training(request.resume, &config.output_dir)?;
    let dataset = load_dataset(config)?;
    let splits = split(&dataset, config.train.heldout_species);
    let vocabulary = match &existing {
        Some(checkpoint) => {
            Vocabulary::from_json(&String::from_utf8(checkpoint.part("vocab.json")?)?)
                .context("the checkpoint's vocab.json is invalid")?
        }
        None => Vocabulary::build(
            splits
                .train
                .iter()
                .flat_map(|&i| dataset.samples[i].captions.iter().map(String::as_str)),
            1,
        ),
    };
    eprintln!(
        "{}: {} training images, {} test images of training species, {} images of {} held-out species; vocabulary {} words",
        dataset.name,
        splits.train.len(),
        splits.train_species_test_images.len(),
        splits.heldout_species.len(),
        config.train.heldout_species,
        vocabulary.len()
    );
    let features = FeatureCache::open(&config.features.cache_dir)
        .context("no feature cache: run `t2i features --config ...` first")?
        .load_all()?;
    let paired = |rows: &[usize]| PairedSet::new(&dataset, rows, &features, &vocabulary);
    let train_set = paired(&splits.train)?;
    let valid_set = paired(&splits.train_species_test_images)?;
    let mut options = training_options(config, vocabulary.len());
    request.limit(&mut options.run);
    write_atomic(
        &config.output_dir.join("config.toml"),
        toml::to_string(config)?.as_bytes(),
    )?;
    let run = train_damsm(
        &options,
        &vocabulary,
        &features,
        &train_set,
        (!valid_set.is_empty()).then_some(&valid_set),
        &RunPlace::new(&checkpoints, device, stop)
            .with_metrics(config.output_dir.join("metrics.jsonl")),
    )?;
    eprintln!(
        "{:?} after {} steps ({:.0} s this session)",
        run.end, run.steps, run.seconds
    );
    Ok(())
}

/// The trained DAMSM of a run's latest checkpoint, with its config and vocabulary.
pub fn load_checkpoint(
    config: &DamsmTrainConfig,
    device: &Device,
) -> Result<(Damsm, DamsmConfig, Vocabulary, u64)> {
    let checkpoints = Checkpoints::of_run(&config.output_dir);
    let checkpoint = checkpoints.latest_required(&config.output_dir)?;
    let state: DamsmState = checkpoint.state()?;
    let vocabulary = Vocabulary::from_json(&String::from_utf8(checkpoint.part("vocab.json")?)?)?;
    let damsm = checkpoint.module(state.options.model.init(device), "damsm.bpk")?;
    Ok((damsm, state.options.model, vocabulary, state.step))
}

/// `t2i export damsm`: the latest checkpoint as a versioned bundle.
pub fn export(config: &DamsmTrainConfig, out: &Path, device: &Device) -> Result<()> {
    let (damsm, model, vocabulary, step) = load_checkpoint(config, device)?;
    let bytes = save_damsm(&damsm, &model, &vocabulary)?;
    write_atomic(out, &bytes)?;
    eprintln!(
        "wrote {} ({} bytes, step {step}, {} words)",
        out.display(),
        bytes.len(),
        vocabulary.len()
    );
    Ok(())
}

/// What `t2i eval damsm` reports.
#[derive(Debug, Serialize)]
pub struct DamsmEvaluation {
    pub r_precision: f64,
    pub r_precision_std: f64,
    pub r_precision_species: f64,
    pub r_precision_species_std: f64,
    pub images: usize,
    pub train_species_test_images: RPrecisionReport,
    pub caption_source: String,
    /// With `--captions`: the same images scored against captions people wrote for their
    /// species (read as the page reads them), held-out and seen species.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub natural_captions: Option<NaturalCaptionReport>,
}

/// R-precision of the same images with natural captions of their species.
#[derive(Debug, Serialize)]
pub struct NaturalCaptionReport {
    pub file: String,
    pub heldout_species: RPrecisionReport,
    pub train_species_test_images: RPrecisionReport,
}

/// A captions file of `tests/fixtures/natural_captions` layout: a header line, then
/// `class_id<TAB>species<TAB>split<TAB>caption`; the captions by class id.
pub fn read_class_captions(path: &Path) -> Result<HashMap<u32, Vec<String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut by_class: HashMap<u32, Vec<String>> = HashMap::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [class_id, _, _, caption] = fields[..] else {
            bail!(
                "{}:{}: expected class_id, species, split and caption separated by tabs",
                path.display(),
                number + 1
            );
        };
        let class_id: u32 = class_id.trim().parse().with_context(|| {
            format!(
                "{}:{}: class id {class_id:?} is not a number",
                path.display(),
                number + 1
            )
        })?;
        by_class
            .entry(class_id)
            .or_default()
            .push(caption.to_string());
    }
    if by_class.is_empty() {
        bail!("{} holds no captions", path.display());
    }
    Ok(by_class)
}

/// `t2i eval damsm`: R-precision of real held-out images against their captions, with the
/// encoders of `bundle` (or of the run's latest checkpoint).
pub fn eval(
    config: &DamsmTrainConfig,
    bundle: Option<&Path>,
    natural_captions: Option<&Path>,
    device: &Device,
) -> Result<DamsmEvaluation> {
    let by_class = natural_captions.map(read_class_captions).transpose()?;
    let (damsm, vocabulary) = match bundle {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (damsm, _, vocabulary) =
                load_damsm(&bytes, device).with_context(|| format!("bundle {}", path.display()))?;
            (damsm, vocabulary)
        }
        None => {
            let (damsm, _, vocabulary, _) = load_checkpoint(config, device)?;
            (damsm, vocabulary)
        }
    };
    let dataset = load_dataset(config)?;
    let splits = split(&dataset, config.train.heldout_species);
    let features = FeatureCache::open(&config.features.cache_dir)?.load_pool3()?;
    let seed = config.train.seed;
    let paired = |rows: &[usize]| PairedSet::new(&dataset, rows, &features, &vocabulary);
    let heldout = paired(&splits.heldout_species)?;
    let seen = paired(&splits.train_species_test_images)?;
    let report = evaluate(&damsm, &features, &heldout, seed, device)?;
    let seen_report = evaluate(&damsm, &features, &seen, seed, device)?;
    let natural_captions = match (&by_class, natural_captions) {
        (Some(by_class), Some(path)) => {
            let heldout = heldout.with_class_captions(by_class, &vocabulary);
            let seen = seen.with_class_captions(by_class, &vocabulary);
            if heldout.len() < 2 || seen.len() < 2 {
                bail!(
                    "{} has captions for too few of the dataset's species ({} held-out and {} seen images have one)",
                    path.display(),
                    heldout.len(),
                    seen.len()
                );
            }
            Some(NaturalCaptionReport {
                file: path.display().to_string(),
                heldout_species: evaluate(&damsm, &features, &heldout, seed, device)?,
                train_species_test_images: evaluate(&damsm, &features, &seen, seed, device)?,
            })
        }
        _ => None,
    };
    Ok(DamsmEvaluation {
        natural_captions,
        r_precision: report.any.mean,
        r_precision_std: report.any.std,
        r_precision_species: report.species.mean,
        r_precision_species_std: report.species.std,
        images: report.any.images,
        train_species_test_images: seen_report,
        caption_source: format!("{:?}", dataset.caption_source),
    })
}

/// The real-vs-real FID floor on the held-out species of a config's dataset.
pub fn real_fid_floor(config: &DamsmTrainConfig) -> Result<crate::eval::RealFidFloor> {
    let dataset = load_dataset(config)?;
    let splits = split(&dataset, config.train.heldout_species);
    let features = FeatureCache::open(&config.features.cache_dir)?.load_pool3()?;
    crate::eval::real_fid_floor(
        &dataset,
        &splits.heldout_species,
        &features,
        config.train.seed,
    )
}

/// A DAMSM bundle file: the networks, their configuration and the vocabulary.
pub fn read_damsm(
    path: &Path,
    device: &Device,
) -> Result<(t2i::damsm::Damsm, t2i::damsm::DamsmConfig, Vocabulary)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_damsm(&bytes, device).with_context(|| format!("bundle {}", path.display()))
}

/// The text side of the bundle at `path`, and the bundle's checksum: a DAMSM bundle's text
/// encoder, or the one a generator bundle carries (so a run can go on from a shipped generator
/// with the text encoder it was trained on).
pub fn load_text_side(path: &Path, device: &Device) -> Result<(TextSide, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format = t2i::bundle::bundle_format(&bytes)
        .with_context(|| format!("{} is not a bundle", path.display()))?;
    let context = || format!("cannot load the text encoder of {}", path.display());
    let text = if format == t2i::bundle::DAMSM_FORMAT {
        let (damsm, config, vocabulary) = load_damsm(&bytes, device).with_context(context)?;
        TextSide {
            encoder: damsm.text_encoder,
            config: config.text,
            vocabulary,
        }
    } else {
        let gan = t2i::bundle::load_gan(&bytes, device).with_context(context)?;
        let text = gan.text();
        TextSide {
            encoder: text.encoder.clone(),
            config: text.config.clone(),
            vocabulary: text.vocabulary.clone(),
        }
    };
    Ok((text, t2i::bundle::bundle_checksum(&bytes)?))
}

/// What a generator's bundle carries besides the generator: a DAMSM bundle's text encoder
/// (inference mode), its configuration and vocabulary.
#[derive(Clone)]
pub struct TextSide {
    pub encoder: TextEncoder,
    pub config: TextEncoderConfig,
    pub vocabulary: Vocabulary,
}

impl TextSide {
    /// `generator` with this text encoder, as the f32 bundle `t2i export` writes: what the
    /// page, `t2i generate`, the sample grids and evaluation draw with.
    pub fn bundle<W: BundledWeights>(
        self,
        generator: W::Generator,
        gan_config: W::GanConfig,
    ) -> GanBundle {
        W::into_gan_bundle(Bundle::from_parts(
            self.encoder,
            self.config,
            self.vocabulary,
            generator,
            gan_config,
        ))
    }
}

/// The text side of the bundle at `path` ([`load_text_side`]).
pub fn text_side(path: &Path, device: &Device) -> Result<TextSide> {
    Ok(load_text_side(path, device)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_captions_are_read_by_class_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("captions.tsv");
        std::fs::write(
            &path,
            "class_id\tspecies\tsplit\tcaption\n4\t004.X\ttrain\ta black bird\n4\t004.X\ttrain\tdark wings\n\n9\t009.Y\theldout\ta red bird\n",
        )
        .unwrap();
        let by_class = read_class_captions(&path).unwrap();
        assert_eq!(by_class[&4], ["a black bird", "dark wings"]);
        assert_eq!(by_class[&9], ["a red bird"]);
        std::fs::write(&path, "header\n4\t004.X\ta bird\n").unwrap();
        let err = format!("{:#}", read_class_captions(&path).unwrap_err());
        assert!(err.contains("captions.tsv:2"), "{err}");
        std::fs::write(&path, "header\nfour\t004.X\ttrain\ta bird\n").unwrap();
        let err = format!("{:#}", read_class_captions(&path).unwrap_err());
        assert!(
            err.contains("captions.tsv:2") && err.contains("four"),
            "{err}"
        );
        std::fs::write(&path, "header\n").unwrap();
        assert!(read_class_captions(&path).is_err());
    }
}
