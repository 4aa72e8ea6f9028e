//! The weights shipped in `weights/` load and work.

use burn::prelude::*;
use t2i::bundle::load_damsm;

#[test]
fn shipped_damsm_encodes_a_bird_caption() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/weights/damsm_birds.safetensors"
    );
    let bytes = std::fs::read(path).expect("weights/damsm_birds.safetensors is shipped");
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
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/weights/gan_int_cls_birds.int8.safetensors"
    );
    let bytes = std::fs::read(path).expect("weights/gan_int_cls_birds.int8.safetensors is shipped");
    let device = Device::flex();
    let bundle = t2i::bundle::load_gan_int_cls(&bytes, &device).unwrap();
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
