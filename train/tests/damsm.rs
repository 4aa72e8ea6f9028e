//! DAMSM training end to end on generated coloured shapes: real Inception features, a short
//! CPU training, R-precision far above chance; and exact resume from a checkpoint.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::prelude::Device;
use t2i::damsm::{DamsmConfig, DamsmGammas, TextEncoderConfig};
use t2i::inception::Inception;
use t2i::vocab::Vocabulary;
use t2i_train::damsm::train::{
    DamsmTrainOptions, PairedSet, RunEnd, evaluate, learning_rate, train_damsm,
};
use t2i_train::data::features::{CachedFeatures, FeatureCache};
use t2i_train::data::{CaptionSource, Dataset, Sample, SkipReport, shapes_dataset};
use t2i_train::run::adversarial::RunOptions;
use t2i_train::run::checkpoint::parameter_values;

mod common;
use common::{
    INCEPTION, TestPlace, assert_same_parameters, shared_file, straight_stopped_resumed,
    training_turn,
};

const TRAIN_IMAGES: usize = 120;

const EVAL_IMAGES: usize = 60;
/// Species-aware R-precision the trained encoders reach with class names for captions.
const NAMED_R_PRECISION: f64 = 0.2;

struct Fixture {
    _dir: tempfile::TempDir,
    dataset: Dataset,
    features: CachedFeatures,
    vocabulary: Vocabulary,
}

impl Fixture {
    /// The shapes of `rows` paired with their cached features and captions.
    fn paired(&self, rows: std::ops::Range<usize>) -> PairedSet {
        let rows: Vec<usize> = rows.collect();
        PairedSet::new(&self.dataset, &rows, &self.features, &self.vocabulary).unwrap()
    }
}

/// Coloured shapes written as PNG, their Inception features cached once per test binary.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let inception_path = shared_file(INCEPTION, "the DAMSM training tests")?;
            let dir = tempfile::tempdir().unwrap();
            let mut samples = Vec::new();
            for (i, (image, caption, label)) in shapes_dataset(TRAIN_IMAGES + EVAL_IMAGES, 64, 7)
                .into_iter()
                .enumerate()
            {
                let key = format!("shape-{i:04}.png");
                let path = dir.path().join(&key);
                image.save(&path).unwrap();
                samples.push(Sample {
                    key,
                    image_path: path,
                    class_id: label.class_index() as u32,
                    class_name: format!("{} {}", label.colour_name(), label.shape_name()),
                    captions: vec![caption],
                    is_train_image: Some(i < TRAIN_IMAGES),
                });
            }
            let device = Device::flex();
            let inception = Inception::load(&inception_path, &device).unwrap();
            let items: Vec<(String, PathBuf)> = samples
                .iter()
                .map(|s| (s.key.clone(), s.image_path.clone()))
                .collect();
            let cache_dir = dir.path().join("cache");
            let (cache, _) =
                FeatureCache::build(&cache_dir, &items, &inception, &device, 16, false).unwrap();
            let features = cache.load_all().unwrap();
            let vocabulary = Vocabulary::build(
                samples[..TRAIN_IMAGES]
                    .iter()
                    .flat_map(|s| s.captions.iter().map(String::as_str)),
                1,
            );
            let dataset = Dataset {
                name: "shapes".into(),
                image_root: dir.path().to_path_buf(),
                samples,
                caption_source: CaptionSource::Human,
                skipped: SkipReport::default(),
            };
            Some(Fixture {
                _dir: dir,
                dataset,
                features,
                vocabulary,
            })
        })
        .as_ref()
}

fn options(vocab_size: usize, batch_size: usize, max_epoch: usize) -> DamsmTrainOptions {
    DamsmTrainOptions {
        model: DamsmConfig::new(
            TextEncoderConfig::new(vocab_size)
                .with_embedding_dim(32)
                .with_feature_dim(32),
        )
        .with_image(t2i::damsm::ImageEncoderConfig::new().with_feature_dim(32)),
        run: RunOptions::new(batch_size, max_epoch, 3),
        snapshot_interval: 1000,
        encoder_lr: 2e-3,
        rnn_grad_clip: 0.25,
        gammas: DamsmGammas::new(),
    }
}

#[test]
fn damsm_learns_to_match_shapes_and_captions() {
    let Some(fx) = fixture() else { return };
    let _turn = training_turn();
    let device = Device::flex();
    let train = fx.paired(0..TRAIN_IMAGES);
    let eval = fx.paired(TRAIN_IMAGES..TRAIN_IMAGES + EVAL_IMAGES);
    assert_eq!(
        eval.len(),
        EVAL_IMAGES,
        "every eval caption has known words"
    );

    let opts = options(fx.vocabulary.len(), 20, 40);
    let untrained = opts.model.init(&device);
    let before = evaluate(&untrained, &fx.features, &eval, 1, &device).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let run = train_damsm(
        &opts,
        &fx.vocabulary,
        &fx.features,
        &train,
        None,
        &TestPlace::in_dir(dir.path())
            .on(&device)
            .with_metrics(dir.path().join("metrics.jsonl")),
    )
    .unwrap();
    assert_eq!(run.end, RunEnd::Finished);
    let after = evaluate(&run.damsm, &fx.features, &eval, 1, &device).unwrap();

    // Species-aware: mismatches are captions of other colour/shape classes; with about
    // 55 candidates chance is under 2%.
    eprintln!("R-precision on unseen shapes: before {before:?}\nafter {after:?}");
    assert!(
        after.species.mean > 0.35,
        "R-precision (other classes) after training {:.3} is not far above chance",
        after.species.mean
    );
    assert!(after.species.mean > before.species.mean + 0.2);

    // The same images against a caption per class written otherwise (its class name, "red
    // circle"), read as the page reads a visitor's caption: what `t2i eval damsm --captions`
    // scores natural captions with.
    let by_class: std::collections::HashMap<u32, Vec<String>> = fx
        .dataset
        .samples
        .iter()
        .map(|s| (s.class_id, vec![s.class_name.clone()]))
        .collect();
    let named = eval.with_class_captions(&by_class, &fx.vocabulary);
    assert_eq!(named.len(), eval.len());
    let named = evaluate(&run.damsm, &fx.features, &named, 1, &device).unwrap();
    eprintln!("R-precision with class names as captions: {named:?}");
    assert!(
        named.species.mean > NAMED_R_PRECISION,
        "R-precision (other classes) with class names as captions {:.3}",
        named.species.mean
    );

    // The loss went down: compare the first and last logged steps.
    let log = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some(v["words_loss"].as_f64()? + v["sentence_loss"].as_f64()?))
        .collect();
    let head: f64 = losses[..6].iter().sum::<f64>() / 6.0;
    let tail: f64 = losses[losses.len() - 6..].iter().sum::<f64>() / 6.0;
    assert!(tail < 0.7 * head, "loss {head:.3} -> {tail:.3}");
}

#[test]
fn interrupted_training_resumes_to_identical_parameters() {
    let Some(fx) = fixture() else { return };
    let _turn = training_turn();
    let device = Device::flex();
    let train = fx.paired(0..TRAIN_IMAGES);
    let run = |dir: &Path, max_steps: u64| {
        let mut opts = options(fx.vocabulary.len(), 24, 3);
        opts.run.max_steps = Some(max_steps);
        train_damsm(
            &opts,
            &fx.vocabulary,
            &fx.features,
            &train,
            None,
            &TestPlace::in_dir(dir).on(&device),
        )
        .unwrap()
    };
    // The second run in the resumed folder picks up the step-3 checkpoint.
    let (whole, first, second) = straight_stopped_resumed(run, 3, 8);
    assert_eq!(whole.steps, 8);
    assert_eq!((first.steps, first.end), (3, RunEnd::StepLimit));
    assert_eq!(second.steps, 8);
    assert_same_parameters(&whole.damsm, &second.damsm, "DAMSM");
    // And training did move them: the step-3 parameters differ from the step-8 ones.
    assert_ne!(
        parameter_values(&first.damsm).unwrap(),
        parameter_values(&whole.damsm).unwrap()
    );
}

#[test]
fn learning_rate_follows_the_reference_schedule() {
    assert_eq!(learning_rate(2e-3, 0), 2e-3);
    assert!((learning_rate(2e-3, 1) - 2e-3 * 0.98).abs() < 1e-12);
    // Decay stops once the rate is at most a tenth of the start.
    let late = learning_rate(2e-3, 1000);
    assert!(late <= 2e-4 && late > 2e-4 * 0.98);
}

/// L_DAMSM, the term AttnGAN's generator minimises, read on real photos with the shipped DAMSM:
/// one photo from each of 12 CUB species, its Inception features through the DAMSM image
/// encoder, scored against its own species' caption and against captions moved on by one and
/// by five photos (other species). Matched pairs must cost less.
#[test]
fn shipped_damsm_loss_is_lower_for_matched_real_pairs_than_for_shuffled_ones() {
    let skipped = "the shipped DAMSM's loss on real pairs";
    let (Some(inception_path), Some(data_dir)) = (
        shared_file(INCEPTION, skipped),
        shared_file("data/cub100", skipped),
    ) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let device = Device::flex();
    let bytes = std::fs::read(root.join("../weights/damsm_birds.safetensors")).unwrap();
    let (damsm, _, vocabulary) = t2i::bundle::load_damsm(&bytes, &device).unwrap();
    let dataset = t2i_train::data::load_dataset_named("birds", &data_dir, 10, 0, false).unwrap();
    let mut species = std::collections::HashSet::new();
    let photos: Vec<_> = dataset
        .samples
        .iter()
        .filter(|s| species.insert(s.class_id))
        .take(12)
        .collect();
    let n = photos.len();
    let pixels: Vec<f32> = photos
        .iter()
        .flat_map(|s| t2i_train::data::features::inception_input_from_file(&s.image_path).unwrap())
        .collect();
    let size = t2i::inception::INPUT_SIZE;
    let images = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(pixels, [n, 3, size, size]),
        &device,
    );
    let features = Inception::load(&inception_path, &device)
        .unwrap()
        .forward(images);
    let image = damsm
        .image_encoder
        .forward(features.mixed_7, features.pool3);
    let loss = |shift: usize| -> f32 {
        let tokens: Vec<Vec<u32>> = (0..n)
            .map(|i| {
                vocabulary
                    .encode(&photos[(i + shift) % n].captions[0])
                    .tokens
            })
            .collect();
        let refs: Vec<&[u32]> = tokens.iter().map(Vec::as_slice).collect();
        let text = damsm.text_encoder.encode_ids(&refs, &device);
        t2i::damsm::damsm_loss(&image, &text, None, DamsmGammas::new())
            .total()
            .into_scalar::<f32>()
    };
    let (matched, next, fifth) = (loss(0), loss(1), loss(5));
    eprintln!(
        "L_DAMSM on {n} real photos: matched {matched:.3}, shuffled {next:.3} and {fifth:.3}"
    );
    assert!(matched.is_finite());
    assert!(
        matched < next && matched < fifth,
        "matched {matched} vs shuffled {next}, {fifth}"
    );
}
