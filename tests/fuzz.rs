//! Fuzzing what strangers hand the library: weights bundles of every family and precision (and
//! DAMSM bundles), and captions (the tokenizer, the page's segments, the word map).
//!
//! Each target draws inputs from the committed corpus (`tests/fixtures/fuzz/`: tiny real
//! bundles written by `write_the_fuzz_corpus`, which is ignored unless asked for) mutated at
//! random, byte by byte and field by field in the safetensors header and its `t2i.*`
//! metadata, and from arbitrary bytes. The properties: no panic, no abort (a header claiming a
//! terabyte is refused before anything is allocated), no hang (every case under
//! `fuzz_support::CASE_SECONDS`), and every error says what is wrong. `FUZZ_CASES` sets the cases per
//! target: `make test` runs the default, `tools/fuzz.sh` the long runs.

use burn::prelude::*;
use proptest::prelude::*;
use t2i::bundle::{load_damsm, load_gan};
use t2i::vocab::Vocabulary;

mod fuzz_support;
use fuzz_support::{corpus, corpus_dir, fuzz, mutated, or_random_bytes};

#[test]
fn fuzz_generator_bundles() {
    let device = Device::flex();
    let corpus = corpus("bundles");
    let strategy = or_random_bytes(mutated(corpus), 256);
    fuzz("generator bundles", 8000, strategy, |bytes| {
        match load_gan(bytes, &device) {
            Ok(bundle) => {
                // What loads must draw: a caption of a word of its own vocabulary that the
                // tokenizer can produce (a hostile vocabulary may hold others; they are never
                // read), one seed.
                let word = bundle
                    .vocabulary()
                    .words()
                    .iter()
                    .skip(1)
                    .find(|w| t2i::vocab::tokenize(w) == [w.to_string()])
                    .cloned();
                if let Some(word) = word {
                    let (tokens, _) = bundle
                        .tokens(&word)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let text = bundle.encode(&[&tokens], &device);
                    bundle
                        .stages(text, &[0], &device)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

#[test]
fn fuzz_damsm_bundles() {
    let device = Device::flex();
    let strategy = or_random_bytes(mutated(corpus("damsm")), 256);
    fuzz("DAMSM bundles", 20000, strategy, |bytes| {
        if let Err(e) = load_damsm(bytes, &device) {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    });
}

/// Every corpus file as it is, crashes found by the fuzzing among them (`crash-*`: each input
/// that once panicked or aborted, kept as a regression test): it loads, or it is refused with
/// an error naming what is wrong.
#[test]
fn the_corpus_and_past_crashes_load_or_are_refused() {
    let device = Device::flex();
    for target in ["bundles", "damsm"] {
        let dir = corpus_dir().join(target);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = match target {
                "bundles" => load_gan(&bytes, &device).map(|_| ()),
                _ => load_damsm(&bytes, &device).map(|_| ()),
            };
            let refused = name.starts_with("crash-") || name.starts_with("claims-");
            match outcome {
                Ok(()) => assert!(!refused, "{name} loads"),
                Err(e) => {
                    assert!(refused, "{name}: {e}");
                    eprintln!("{name}: {e}");
                }
            }
        }
    }
}

/// Captions: any Unicode, any length, with the vocabulary's words and the word map's words
/// mixed in. Segments cover the caption exactly; what is read never exceeds the word limit.
#[test]
fn fuzz_captions() {
    let vocabulary = Vocabulary::build(
        ["a small red bird with black wings and a short bill, grey breast"],
        1,
    );
    let words = proptest::sample::select(vec![
        "bird", "beak", "chest", "tiny", "RED", "ẞ", "🐦", " ", ",", "\0", "\u{202e}", "-", "é",
        "İ", "ﬃ", "wing", "wings", "a",
    ]);
    let caption = prop_oneof![
        "\\PC{0,200}",
        ".{0,64}",
        proptest::collection::vec(words, 0..300).prop_map(|w| w.concat()),
    ];
    fuzz("captions", 50000, caption, |caption: &String| {
        let tokens = t2i::vocab::tokenize(caption);
        let spans = t2i::vocab::token_spans(caption);
        prop_assert_eq!(tokens.len(), spans.len());
        let read = vocabulary.read(caption);
        prop_assert!(read.tokens.len() <= t2i::vocab::WORDS_NUM);
        let segments = vocabulary.segments(caption);
        let joined: String = segments.iter().map(|s| s.text.as_str()).collect();
        prop_assert_eq!(&joined, caption);
        let _ = vocabulary.encode(caption);
        Ok(())
    });
}

/// Writes the corpus: tiny bundles of every family and precision, and a tiny DAMSM bundle.
/// Run by hand (`cargo test --release --test fuzz -- --ignored`) when the formats change.
#[test]
#[ignore]
fn write_the_fuzz_corpus() {
    use t2i::attngan::AttnGanConfig;
    use t2i::bundle::{
        AttnGanWeights, BundledWeights, GanIntClsWeights, StackGanWeights, save_bundle, save_damsm,
    };
    use t2i::damsm::{DamsmConfig, ImageEncoderConfig, TextEncoderConfig};
    use t2i::gan_int_cls::GanIntClsConfig;
    use t2i::quant::Precision;
    use t2i::stackgan::StackGanConfig;

    let device = Device::flex();
    let vocabulary = Vocabulary::build(["a small red bird with black wings and a short bill"], 1);
    let text = TextEncoderConfig::new(vocabulary.len())
        .with_embedding_dim(8)
        .with_feature_dim(8);
    let bundles = corpus_dir().join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    let gan = GanIntClsConfig::new()
        .with_text_dim(8)
        .with_ngf(4)
        .with_ndf(4)
        .with_noise_dim(4)
        .with_projected_text_dim(4);
    // Freshly initialised networks of the family `W` and sizes `gan`, as `{name}.{precision}`.
    fn write<W: BundledWeights>(
        dir: &std::path::Path,
        name: &str,
        (text, gan, vocabulary): (&TextEncoderConfig, &W::GanConfig, &Vocabulary),
        precisions: &[Precision],
    ) {
        let weights = W::init(text, gan, &Device::flex());
        for &precision in precisions {
            let bytes = save_bundle(&weights, text, gan, vocabulary, precision).unwrap();
            let path = dir.join(format!("{name}.{precision}.safetensors"));
            std::fs::write(path, bytes).unwrap();
        }
    }
    let all = [Precision::F32, Precision::Int8, Precision::Int4];
    write::<GanIntClsWeights>(&bundles, "gan_int_cls", (&text, &gan, &vocabulary), &all);
    let gan = StackGanConfig::small(8)
        .with_stage1_ngf(4)
        .with_stage1_ndf(4)
        .with_stage2_ngf(4)
        .with_stage2_ndf(4)
        .with_condition_dim(4)
        .with_noise_dim(4)
        .with_residual_blocks(1);
    let int8 = [Precision::Int8];
    write::<StackGanWeights>(&bundles, "stackgan", (&text, &gan, &vocabulary), &int8);
    let gan = AttnGanConfig::new()
        .with_text_dim(8)
        .with_condition_dim(4)
        .with_noise_dim(4)
        .with_ngf(4)
        .with_ndf(4)
        .with_residual_blocks(1)
        .with_branch_num(2);
    let int4 = [Precision::Int4];
    write::<AttnGanWeights>(&bundles, "attngan", (&text, &gan, &vocabulary), &int4);

    let damsm_dir = corpus_dir().join("damsm");
    std::fs::create_dir_all(&damsm_dir).unwrap();
    let config = DamsmConfig::new(text.clone()).with_image(
        ImageEncoderConfig::new()
            .with_local_dim(8)
            .with_global_dim(8)
            .with_feature_dim(8),
    );
    let bytes = save_damsm(&config.init(&device), &config, &vocabulary).unwrap();
    std::fs::write(damsm_dir.join("damsm.safetensors"), bytes).unwrap();
}
