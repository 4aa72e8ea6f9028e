//! The weights shipped in `weights/` load and work.

use burn::prelude::*;
use t2i::bundle::load_damsm;

/// The bytes of `weights/{name}`.
fn shipped(name: &str) -> Vec<u8> {
    let path = format!("{}/weights/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path} is shipped: {e}"))
}

#[test]
fn shipped_damsm_encodes_a_bird_caption() {
    let bytes = shipped("damsm_birds.safetensors");
    let device = Device::flex();
    let (damsm, config, vocabulary) = load_damsm(&bytes, &device).unwrap();
    assert_eq!(config.text.feature_dim, 256);

    let encoded =
        vocabulary.encode("this small bird has a blue crown and a short cone-shaped bill, zxqv");
    assert_eq!(encoded.unknown_words, vec!["zxqv".to_string()]);
    let n = encoded.tokens.len();
    let text = damsm.text_encoder.encode_ids(&[&encoded.tokens], &device);
    assert_eq!(text.words.dims(), [1, 256, n]);
    let sentence: Vec<f32> = text.sentence.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(sentence.len(), 256);
    assert!(sentence.iter().all(|v| v.is_finite()) && sentence.iter().any(|v| *v != 0.0));
}

#[test]
fn shipped_gan_int_cls_draws_a_caption_reproducibly() {
    let bytes = shipped("gan_int_cls_birds_small.int8.safetensors");
    let device = Device::flex();
    let bundle =
        t2i::bundle::load_bundle::<t2i::bundle::GanIntClsWeights>(&bytes, &device).unwrap();
    assert_eq!(bundle.precision, t2i::quant::Precision::Int8);
    let captions = [
        "a small red bird with black wings, zxqv",
        "a large duck-like bird with a white belly",
    ];
    let (first, reports) = bundle.generate(&captions, &[3, 3], &device).unwrap();
    assert_eq!(reports[0].unknown_words, vec!["zxqv".to_string()]);
    assert_eq!(first.size, 64);
    let (again, _) = bundle.generate(&captions, &[3, 3], &device).unwrap();
    assert_eq!(
        first.pixels, again.pixels,
        "same caption and seed, same image"
    );
    assert_ne!(
        first.pixels[0], first.pixels[1],
        "different captions, different images"
    );
    let image = &first.pixels[0];
    let mean = image.iter().map(|&v| v as f64).sum::<f64>() / image.len() as f64;
    let spread = image
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / image.len() as f64;
    assert!(
        spread.sqrt() > 10.0,
        "the image is nearly blank (std {})",
        spread.sqrt()
    );
    assert!(matches!(
        bundle.generate(&["   "], &[0], &device),
        Err(t2i::generate::GenerateError::EmptyCaption)
    ));
    assert!(matches!(
        bundle.generate(&["qqq zzz"], &[0], &device),
        Err(t2i::generate::GenerateError::NoKnownWords { .. })
    ));
}

#[test]
fn shipped_attngan_draws_three_stages_and_attends_over_the_caption_words() {
    let bytes = shipped("attngan_birds_small.int8.safetensors");
    let device = Device::flex();
    let bundle = t2i::bundle::load_gan(&bytes, &device).unwrap();
    assert_eq!(bundle.family(), "AttnGAN");
    assert_eq!(bundle.precision(), t2i::quant::Precision::Int8);
    let caption = "a small red bird with black wings, zxqv";
    let drawn = bundle.caption_attention(caption, 5, &device).unwrap();
    assert_eq!(drawn.report.unknown_words, vec!["zxqv".to_string()]);
    let sizes: Vec<usize> = drawn.stages.iter().map(|s| s.images.dims()[2]).collect();
    assert_eq!(sizes, [64, 128, 256]);
    let again = bundle.caption_attention(caption, 5, &device).unwrap();
    for (a, b) in drawn.stages.iter().zip(&again.stages) {
        assert_eq!(
            a.images.clone().into_data(),
            b.images.clone().into_data(),
            "same caption and seed, same image"
        );
    }
    // Every word the model reads has a map on the 64 and the 128 grid; the unknown one none;
    // at every region the maps sum to one over the words.
    let read: Vec<_> = drawn.words.iter().filter(|w| w.maps.is_some()).collect();
    assert_eq!(read.len(), 7, "{:?}", drawn.words);
    assert!(
        drawn
            .words
            .iter()
            .any(|w| w.word == "zxqv" && w.maps.is_none())
    );
    for (stage, size) in [(0, 64), (1, 128)] {
        let mut sums = vec![0.0f32; size * size];
        for word in &read {
            let map = &word.maps.as_ref().unwrap()[stage];
            assert_eq!(map.size, size);
            for (s, v) in sums.iter_mut().zip(&map.values) {
                assert!(v.is_finite() && *v >= 0.0);
                *s += v;
            }
        }
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-3), "stage {stage}");
    }
}

/// Captions of different colours change the first stage's colours more than a change of seed
/// does: the first stage reads the caption (README, "AttnGAN's first stage"). AttnGAN's bundle
/// shipped before 2026-12-07, trained without `text_scale`, failed it (ratio 0.26; today's: 1.42).
#[test]
fn shipped_first_stages_follow_the_caption_more_than_the_seed() {
    use t2i::caption_effect::{COLOUR_CAPTIONS, first_stage_caption_effect};
    let device = Device::flex();
    let seeds: Vec<u64> = (0..8).collect();
    for name in [
        "gan_int_cls_birds_small.int8.safetensors",
        "stackgan_birds_small.int8.safetensors",
        "attngan_birds_small.int8.safetensors",
    ] {
        let bytes = shipped(name);
        let bundle = t2i::bundle::load_gan(&bytes, &device).unwrap();
        let effect =
            first_stage_caption_effect(&bundle, &COLOUR_CAPTIONS, &seeds, &device).unwrap();
        assert!(
            effect.colour.ratio() > 1.0,
            "{name}: captions move the first stage's mean colour by {:.1}, seeds by {:.1}",
            effect.colour.across_captions,
            effect.colour.across_seeds
        );
    }
}
