//! The word map reads people's words as the shipped StackGAN's vocabulary's (tests/fixtures/
//! word_map/checks.tsv, shared with the wasm test), and how much of the natural-caption
//! development set the shipped models read with it, and the shipped DAMSM without it.

use t2i::bundle::{load_damsm, load_gan};
use t2i::vocab::Vocabulary;
use t2i::word_map::read_as;

/// The vocabulary the shipped StackGAN reads captions with, from the DAMSM shipped before
/// (GAN-INT-CLS and AttnGAN carry today's DAMSM's).
fn shipped_vocabulary() -> Vocabulary {
    let root = env!("CARGO_MANIFEST_DIR");
    let bytes = std::fs::read(format!(
        "{root}/weights/stackgan_birds_small.int8.safetensors"
    ))
    .unwrap();
    load_gan(&bytes, &burn::prelude::Device::flex())
        .unwrap()
        .vocabulary()
        .clone()
}

/// The vocabulary of the shipped DAMSM, which the GAN configs train on.
fn damsm_vocabulary() -> Vocabulary {
    let root = env!("CARGO_MANIFEST_DIR");
    let bytes = std::fs::read(format!("{root}/weights/damsm_birds.safetensors")).unwrap();
    load_damsm(&bytes, &burn::prelude::Device::flex())
        .unwrap()
        .2
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn words_that_must_map_do_and_words_that_must_not_do_not() {
    let vocabulary = shipped_vocabulary();
    let mut wrong = Vec::new();
    for line in fixture("word_map/checks.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let (word, expected) = line.split_once('\t').unwrap();
        let got = if vocabulary.index(word).is_some_and(|id| id != 0) {
            Some(word)
        } else {
            read_as(word, &vocabulary).map(|(known, _)| known)
        };
        if got.unwrap_or("-") != expected {
            wrong.push(format!("{word}: expected {expected}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_mapped_word_is_encoded_as_its_known_word_and_reported() {
    let vocabulary = shipped_vocabulary();
    let read = vocabulary.read("A tiny bird with a red beak and zzyzx wings");
    let plain = vocabulary.read("a small bird with a red bill and wings");
    assert_eq!(read.tokens, plain.tokens);
    let mapped: Vec<(&str, &str)> = read
        .mapped_words
        .iter()
        .map(|m| (m.word.as_str(), m.read_as.as_str()))
        .collect();
    assert_eq!(mapped, [("tiny", "small"), ("beak", "bill")]);
    assert_eq!(read.unknown_words, ["zzyzx"]);
    // Training reads captions strictly: nothing mapped.
    assert!(vocabulary.encode("a tiny bird").mapped_words.is_empty());
    assert_eq!(vocabulary.encode("a tiny bird").unknown_words, ["tiny"]);
    // The segments say the same.
    let segments = vocabulary.segments("a tiny bird");
    let tiny = segments.iter().find(|s| s.text == "tiny").unwrap();
    assert_eq!(tiny.read_as.as_deref(), Some("small"));
}

/// Share of the development set's words `vocabulary` reads: strictly, and with the word map.
fn coverage(vocabulary: &Vocabulary) -> (f64, f64) {
    let (mut words, mut strict, mut mapped) = (0usize, 0usize, 0usize);
    for line in fixture("natural_captions/captions.tsv").lines().skip(1) {
        let caption = line.rsplit('\t').next().unwrap();
        let count = t2i::vocab::tokenize(caption).len();
        words += count;
        strict += count - vocabulary.encode(caption).unknown_words.len();
        mapped += count - vocabulary.read(caption).unknown_words.len();
    }
    let (strict, mapped) = (strict as f64 / words as f64, mapped as f64 / words as f64);
    eprintln!(
        "words read: {:.1}% strictly, {:.1}% with the word map ({} words known)",
        strict * 100.0,
        mapped * 100.0,
        vocabulary.words().len() - 1
    );
    (strict, mapped)
}

/// The shipped StackGAN's vocabulary reads 77.9% of the development set's words strictly and
/// 82.7% with the map; the rest is mostly function words (on, as, to) and colour modifiers
/// (pale, dark, bright) that only a larger vocabulary reads.
#[test]
fn the_word_map_reads_more_of_peoples_captions() {
    let (strict, mapped) = coverage(&shipped_vocabulary());
    assert!(
        mapped >= 0.82 && mapped > strict + 0.04,
        "{strict} -> {mapped}"
    );
}

/// The shipped DAMSM, trained on the richer phrasings, reads 95% of the development set's words
/// without the map: what the GANs trained on it will read.
#[test]
fn the_shipped_damsm_reads_peoples_captions_without_the_map() {
    let (strict, mapped) = coverage(&damsm_vocabulary());
    assert!(strict >= 0.95 && mapped >= strict, "{strict} -> {mapped}");
}

#[test]
fn a_huge_hostile_caption_is_read_in_one_pass() {
    let vocabulary = shipped_vocabulary();
    let caption = "beak \u{202e}ßẞ 🐦 chest\0 ".repeat(50_000);
    let read = vocabulary.read(&caption);
    assert_eq!(read.tokens.len(), t2i::vocab::WORDS_NUM);
    assert!(read.truncated_words > 0);
    let segments = vocabulary.segments(&caption);
    assert_eq!(
        segments.iter().map(|s| s.text.as_str()).collect::<String>(),
        caption
    );
}
