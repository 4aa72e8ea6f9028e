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
