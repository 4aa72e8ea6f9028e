//! AttnGAN training on coloured shapes: steps give finite losses and the DAMSM term reaches
//! the generator; an interrupted run resumes exactly (the DAMSM schedule included); a prepared
//! set written before caption tokens were stored is refused. The DAMSM parts need the
//! Inception weights from `shared/models` and are skipped with a notice where they are absent.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use t2i::attngan::AttnGanConfig;
use t2i::damsm::{ImageEncoderConfig, TextEncoderConfig};
use t2i::inception::Inception;
use t2i::vocab::Vocabulary;
use t2i_train::attngan::train::{AttnGanFrozen, AttnGanTrainOptions, train_attngan};
use t2i_train::data::gan_set::sentence_embeddings;
use t2i_train::data::prepared::PreparedSet;
use t2i_train::data::{CaptionSource, Dataset, Sample, SkipReport, shapes_dataset};
use t2i_train::run::adversarial::RunOptions;
use t2i_train::run::checkpoint::parameter_values;
use t2i_train::run::recipe::Recipe;

mod common;
use common::{
    INCEPTION, Shapes, TEXT_DIM, TestPlace, assert_same_parameters, shapes_set, shared_file,
    straight_stopped_resumed, training_turn,
};

/// Tiny widths: what these tests check does not depend on them.
fn model(branch_num: usize) -> AttnGanConfig {
    AttnGanConfig::new()
        .with_text_dim(TEXT_DIM)
        .with_condition_dim(8)
        .with_noise_dim(8)
        .with_ngf(4)
        .with_ndf(2)
        .with_residual_blocks(1)
        .with_branch_num(branch_num)
}

fn options(branch_num: usize, steps: u64, damsm_lambda: f32) -> AttnGanTrainOptions {
    AttnGanTrainOptions {
        run: RunOptions {
            max_steps: Some(steps),
            ..RunOptions::new(4, 100, 4)
        },
        damsm_lambda,
        damsm_every: 2,
        // Inception's smallest input (3x3 regions): the cheapest DAMSM term.
        damsm_image_size: 75,
        ..AttnGanTrainOptions::birds(model(branch_num))
    }
}

/// The fixture's text encoder, and when the Inception weights are present the DAMSM image side
/// (DAMSM projections freshly initialised to the fixture's width).
fn frozen(fx: &Shapes, device: &Device) -> AttnGanFrozen {
    let image = if let Some(path) = shared_file(INCEPTION, "the DAMSM term") {
        device.seed(2);
        let encoder = ImageEncoderConfig::new()
            .with_feature_dim(TEXT_DIM)
            .init(device);
        Some((Inception::load(&path, device).unwrap(), encoder))
    } else {
        None
    };
    AttnGanFrozen::new(fx.encoder.clone(), image)
}

/// The rows of a run's `metrics.jsonl`.
fn metrics(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn steps_give_finite_losses_and_the_damsm_term_reaches_the_generator() {
    let _turn = training_turn();
    let (fx, data) = shapes_set(8, 256);
    let device = Device::flex();
    let frozen = frozen(&fx, &device);
    let has_damsm = frozen.image.is_some();
    let run = |lambda: f32| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let run = train_attngan(
            &options(3, 3, lambda),
            &frozen,
            &data,
            &TestPlace::in_dir(dir.path())
                .on(&device)
                .with_metrics(path.clone()),
        )
        .unwrap();
        assert_eq!(run.steps, 3);
        (parameter_values(&run.generator).unwrap(), metrics(&path))
    };
    let lambda = if has_damsm { 5.0 } else { 0.0 };
    let (with_damsm, rows) = run(lambda);
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        for key in ["loss_d", "loss_g", "kl"] {
            let v = row[key].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite(), "step {}: {key} = {}", i + 1, row[key]);
        }
        // damsm_every 2: the term on steps 1 and 3, not on step 2.
        let expect_damsm = has_damsm && i != 1;
        assert_eq!(row.get("damsm").is_some(), expect_damsm, "step {}", i + 1);
        if expect_damsm {
            let v = row["damsm"].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "step {}: damsm = {v}", i + 1);
        }
    }
    if !has_damsm {
        return;
    }
    // Everything else equal, the DAMSM term changes what the generator learns.
    let (without, rows) = run(0.0);
    assert!(rows.iter().all(|row| row.get("damsm").is_none()));
    assert_eq!(with_damsm.len(), without.len());
    let changed = with_damsm
        .iter()
        .zip(&without)
        .filter(|((_, a), (_, b))| a != b)
        .count();
    assert!(
        changed > 0,
        "the DAMSM term left every generator parameter as it was"
    );
}

resume_tests!(resumes_exactly);

fn resumes_exactly(recipe: Recipe) {
    let _turn = training_turn();
    let (fx, data) = shapes_set(12, 128);
    let device = Device::flex();
    let frozen = frozen(&fx, &device);
    let lambda = if frozen.image.is_some() { 5.0 } else { 0.0 };
    let run = |dir: &Path, steps: u64| {
        train_attngan(
            &AttnGanTrainOptions {
                recipe: recipe.clone(),
                ..options(2, steps, lambda)
            },
            &frozen,
            &data,
            &TestPlace::in_dir(dir).on(&device),
        )
        .unwrap()
    };
    // Stopping after step 1 and resuming: step 2 has no DAMSM term and step 3 has it only if
    // the resumed pair counts its steps from the checkpoint.
    let (whole, _, second) = straight_stopped_resumed(run, 1, 3);
    assert_eq!(second.steps, 3);
    assert_same_parameters(&whole.generator, &second.generator, "generator");
}

/// Six shapes written as PNG files, two species (by colour); image 0 has a second caption with
/// no known word, which gets neither embedding nor tokens.
fn tiny_dataset(dir: &Path) -> Dataset {
    let samples = shapes_dataset(6, 64, 3)
        .into_iter()
        .enumerate()
        .map(|(i, (image, caption, _))| {
            let key = format!("shape-{i}.png");
            let image_path = dir.join(&key);
            image.save(&image_path).unwrap();
            let mut captions = vec![caption];
            if i == 0 {
                captions.push("zzz qqq".to_string());
            }
            Sample {
                key,
                image_path,
                class_id: 1 + (i % 3) as u32,
                class_name: String::new(),
                captions,
                is_train_image: None,
            }
        })
        .collect();
    Dataset {
        name: "shapes".into(),
        image_root: dir.to_path_buf(),
        samples,
        caption_source: CaptionSource::Human,
        skipped: SkipReport::default(),
    }
}

/// The prepared set at `dir` rewritten as sets were before tokens: without `tokens` and
/// `token_offsets`.
fn strip_tokens(dir: &Path) {
    let path: PathBuf = PreparedSet::path(dir);
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, TensorView<'_>)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "tokens" && name != "token_offsets")
        .collect();
    let old = safetensors::serialize(kept, header.metadata().clone()).unwrap();
    std::fs::write(&path, old).unwrap();
}

#[test]
fn prepared_sets_store_tokens_and_attngan_refuses_one_without() {
    let images = tempfile::tempdir().unwrap();
    let dataset = tiny_dataset(images.path());
    let vocabulary = Vocabulary::build(dataset.all_captions().filter(|c| *c != "zzz qqq"), 1);
    let device = Device::flex();
    let encoder = TextEncoderConfig::new(vocabulary.len())
        .with_embedding_dim(8)
        .with_feature_dim(TEXT_DIM)
        .init(&device);
    let prepared = tempfile::tempdir().unwrap();
    // One species of three held out: images 2 and 5 (class 3).
    PreparedSet::build(
        &dataset,
        1,
        &encoder,
        &vocabulary,
        "sha",
        1,
        64,
        prepared.path(),
        &device,
    )
    .unwrap();
    let set = PreparedSet::load(prepared.path()).unwrap();
    let tokens = set.tokens.as_ref().expect("a new set stores tokens");
    let train = [0, 1, 3, 4];
    assert_eq!(tokens.len(), train.len());
    for (row, &i) in train.iter().enumerate() {
        let caption = &dataset.samples[i].captions[0];
        // Image 0's unknown-word caption is left out, and the next image keeps its own
        // caption's tokens and embedding.
        assert_eq!(tokens[row], vec![vocabulary.encode(caption).tokens], "{i}");
        let own = sentence_embeddings(&encoder, &vocabulary, &[caption.as_str()], &device)
            .remove(0)
            .unwrap();
        let stored = &set.embeddings[row];
        assert_eq!(stored.len(), TEXT_DIM, "{i}");
        assert!(
            stored.iter().zip(&own).all(|(a, b)| (a - b).abs() < 1e-3),
            "image {i}: the stored embedding is not its caption's"
        );
    }

    strip_tokens(prepared.path());
    let old = PreparedSet::load(prepared.path()).unwrap();
    assert!(old.tokens.is_none());
    assert_eq!(old.embeddings, set.embeddings, "the rest reads as before");
    let (data, _) = old.into_gan_set();
    let frozen = AttnGanFrozen::new(encoder, None);
    let error = train_attngan(
        &options(1, 1, 0.0),
        &frozen,
        &data,
        &TestPlace::in_dir(prepared.path()).on(&device),
    )
    .err()
    .expect("a set without tokens");
    assert!(
        error.to_string().contains("no caption tokens")
            && error.to_string().contains("delete it to rebuild"),
        "{error}"
    );
}
