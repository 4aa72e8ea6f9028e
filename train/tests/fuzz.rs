//! Fuzzing what strangers hand the trainer: the authors' PyTorch checkpoints and
//! `captions.pickle` (`t2i import`), the TOML configs, the dataset readers' text files (CUB's
//! lists, `text_c10` captions, the attribute table, COCO's JSON, Oxford's lists) and image
//! decoding. Inputs are corpus files (`tests/fixtures/fuzz/`, `configs/`, and fixtures the
//! data module writes) mutated at random; the properties: no panic, no abort, no hang, an
//! error that names what is wrong. `FUZZ_CASES` sets the cases per target (see
//! `tests/fuzz.rs`).

use std::path::Path;

use burn::prelude::*;
use proptest::prelude::*;
use t2i_train::config::TrainConfig;
use t2i_train::data::fixtures::{CubFixture, write_coco_fixture, write_cub_fixture};
use t2i_train::data::preprocess::load_rgb;
use t2i_train::data::{CocoOptions, CubOptions, read_coco, read_cub};

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;
use fuzz_support::{
    ByteEdit, apply, byte_edit, corpus, corpus_dir, fuzz, fuzz_file, or_random_bytes,
    replace_number,
};

/// Text changed the way a hostile or careless hand would: byte edits, and numbers replaced by
/// extreme ones.
fn mutated_text(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = corpus.len();
    (
        0..n,
        proptest::collection::vec(byte_edit(), 0..4),
        proptest::collection::vec(
            (
                any::<usize>(),
                proptest::sample::select(fuzz_support::HOSTILE_NUMBERS.to_vec()),
            ),
            0..3,
        ),
    )
        .prop_map(
            move |(i, edits, numbers): (usize, Vec<ByteEdit>, Vec<(usize, i64)>)| {
                let mut text = String::from_utf8_lossy(&corpus[i]).into_owned();
                for (at, value) in numbers {
                    text = replace_number(&text, at, value);
                }
                apply(text.into_bytes(), &edits, 0)
            },
        )
}

#[test]
fn fuzz_pytorch_checkpoints() {
    let device = Device::flex();
    let strategy = or_random_bytes(fuzz_support::mutated(corpus("pytorch")), 512);
    fuzz_file("PyTorch checkpoints", 10000, "case.pth", strategy, |path| {
        let encoder = t2i_train::import::text_encoder(path, &device).err();
        let vocabulary = t2i_train::import::captions_vocabulary(path).err();
        let messages = [
            encoder.map(|e| e.to_string()),
            vocabulary.map(|e| e.to_string()),
        ];
        messages.into_iter().flatten().collect()
    });
}

#[test]
fn fuzz_configs() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut files: Vec<_> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let texts: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // The configs' relative paths point beside the checkout; the copies sit in configs/'s
    // place so that a config that survives its edits resolves them as the original does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.toml");
    fuzz("TOML configs", 20000, mutated_text(texts), |bytes| {
        std::fs::write(&path, bytes).unwrap();
        if let Err(e) = TrainConfig::load(&path) {
            let message = format!("{e:#}");
            prop_assert!(!message.is_empty());
        }
        Ok(())
    });
}

/// The CUB reader on a fixture whose text files (image list, labels, classes, split, captions,
/// attribute names and table) are mutated one at a time; then COCO's JSON.
#[test]
fn fuzz_dataset_text_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cub");
    let spec = CubFixture {
        n_classes: 3,
        images_per_class: 2,
        image_size: 16,
        ..CubFixture::default()
    };
    let samples = write_cub_fixture(&root, &spec).unwrap();
    let mut files = vec![
        root.join("images.txt"),
        root.join("image_class_labels.txt"),
        root.join("classes.txt"),
        root.join("train_test_split.txt"),
        root.join("attributes/attributes.txt"),
        root.join("attributes/class_attribute_labels_continuous.txt"),
    ];
    let first = &samples[0].key;
    files.push(root.join("text_c10").join(first).with_extension("txt"));
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let strategy = (0..files.len()).prop_flat_map(|i| {
        (
            Just(i),
            mutated_text(vec![originals[i].clone()]),
            any::<bool>(),
        )
    });
    fuzz(
        "CUB text files",
        10000,
        strategy,
        |(i, bytes, synthesise)| {
            std::fs::write(&files[*i], bytes).unwrap();
            let mut opts = CubOptions::new(&root);
            if *synthesise {
                opts.text_dir = Some(root.join("no_captions_here"));
            }
            let outcome = read_cub(&opts);
            std::fs::write(&files[*i], &originals[*i]).unwrap();
            if let Err(e) = outcome {
                prop_assert!(!e.to_string().is_empty());
            }
            Ok(())
        },
    );

    let coco = write_coco_fixture(&dir.path().join("coco"), 3, 16, 5).unwrap();
    let original = std::fs::read(&coco.annotations).unwrap();
    fuzz(
        "COCO JSON",
        10000,
        mutated_text(vec![original.clone()]),
        |bytes| {
            std::fs::write(&coco.annotations, bytes).unwrap();
            let outcome = read_coco(&CocoOptions::new(&coco.annotations, &coco.image_dir));
            if let Err(e) = outcome {
                // The JSON file, or the image file it names.
                prop_assert!(e.to_string().contains("coco"), "{e}");
            }
            Ok(())
        },
    );
    std::fs::write(&coco.annotations, original).unwrap();
}

#[test]
fn fuzz_image_decoding() {
    let strategy = or_random_bytes(fuzz_support::mutated_bytes(corpus("images")), 512);
    fuzz_file("images", 20000, "case.jpg", strategy, |path| {
        load_rgb(path)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect()
    });
}

/// Writes the committed corpus of the image target (a JPEG, a PNG and a grey PNG) and
/// copies the smallest authors' checkpoints: run by hand when they change
/// (`cargo test --release -p t2i-train --test fuzz -- --ignored`).
#[test]
#[ignore]
fn write_the_fuzz_corpus() {
    let images = corpus_dir().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let image =
        image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([x as u8 * 20, y as u8 * 25, 90]));
    image.save(images.join("small.jpg")).unwrap();
    image.save(images.join("small.png")).unwrap();
    image::DynamicImage::ImageRgb8(image.clone())
        .to_luma8()
        .save(images.join("grey.png"))
        .unwrap();
    let pytorch = corpus_dir().join("pytorch");
    std::fs::create_dir_all(&pytorch).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pytorch");
    for name in [
        "attngan_text_encoder.pth",
        "captions.pickle",
        "bad/payload_legacy.pth",
        "bad/text_encoder_payload.pth",
    ] {
        let to = pytorch.join(Path::new(name).file_name().unwrap());
        std::fs::copy(fixtures.join(name), to).unwrap();
    }
}
