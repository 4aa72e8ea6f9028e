//! DAMSM weight bundles: round trip, and clear errors for damaged or foreign files.

use burn::prelude::*;
use t2i::bundle::{BundleError, DAMSM_VERSION, load_damsm, save_damsm};
use t2i::damsm::{DamsmConfig, ImageEncoderConfig, TextEncoderConfig};
use t2i::vocab::Vocabulary;

fn small() -> (t2i::damsm::Damsm, DamsmConfig, Vocabulary) {
    let vocabulary = Vocabulary::build(["a red bird with a short beak", "a blue bird"], 1);
    let config = DamsmConfig::new(
        TextEncoderConfig::new(vocabulary.len())
            .with_embedding_dim(8)
            .with_feature_dim(6),
    )
    .with_image(ImageEncoderConfig::new().with_feature_dim(6));
    let damsm = config.init(&Device::flex());
    (damsm, config, vocabulary)
}

fn sentence(damsm: &t2i::damsm::Damsm, vocabulary: &Vocabulary) -> Vec<f32> {
    let tokens = vocabulary.encode("a red bird").tokens;
    damsm
        .text_encoder
        .encode_ids(&[&tokens], &Device::flex())
        .sentence
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn round_trip_keeps_weights_config_and_vocabulary() {
    let (damsm, config, vocabulary) = small();
    let bytes = save_damsm(&damsm, &config, &vocabulary).unwrap();
    let (loaded, loaded_config, loaded_vocabulary) = load_damsm(&bytes, &Device::flex()).unwrap();
    assert_eq!(loaded_vocabulary, vocabulary);
    assert_eq!(loaded_config.to_string(), config.to_string());
    assert_eq!(
        sentence(&loaded, &vocabulary),
        sentence(&damsm, &vocabulary)
    );
    // Saving is deterministic: the same model gives the same bytes.
    assert_eq!(
        save_damsm(&loaded, &loaded_config, &loaded_vocabulary)
            .unwrap()
            .len(),
        bytes.len()
    );
}

#[test]
fn damaged_and_foreign_files_are_refused_with_the_reason() {
    let (damsm, config, vocabulary) = small();
    let bytes = save_damsm(&damsm, &config, &vocabulary).unwrap();
    let device = Device::flex();

    let truncated = &bytes[..bytes.len() - 10];
    assert!(matches!(
        load_damsm(truncated, &device),
        Err(BundleError::Unreadable(_))
    ));
    assert!(matches!(
        load_damsm(b"hello", &device),
        Err(BundleError::Unreadable(_))
    ));

    // Flip one byte of tensor data (the end of the file is tensor bytes).
    let mut corrupted = bytes.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x55;
    let err = load_damsm(&corrupted, &device).unwrap_err();
    assert!(matches!(err, BundleError::Checksum { .. }), "{err}");

    // A newer version and a foreign format, written by rewriting the header in place.
    let newer = replace_same_length(
        &bytes,
        &format!("\"t2i.version\":\"{DAMSM_VERSION}\""),
        &format!("\"t2i.version\":\"{}\"", DAMSM_VERSION + 1),
    );
    let err = load_damsm(&newer, &device).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedVersion { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");

    let foreign = replace_same_length(
        &bytes,
        "\"t2i.format\":\"t2i-damsm\"",
        "\"t2i.format\":\"t2i-other\"",
    );
    let err = load_damsm(&foreign, &device).unwrap_err();
    assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");
}

fn replace_same_length(bytes: &[u8], needle: &str, replacement: &str) -> Vec<u8> {
    assert_eq!(needle.len(), replacement.len());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle} is in the header"));
    let mut out = bytes.to_vec();
    out[at..at + needle.len()].copy_from_slice(replacement.as_bytes());
    out
}
