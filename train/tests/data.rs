//! Dataset readers, caption synthesis, preprocessing and fixtures (`t2i_train::data`).
//! Everything runs on generated fixtures; the tests on the real `cub100` folder skip with a
//! notice when it is absent.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use image::RgbImage;
use t2i::vocab::Vocabulary;
use t2i_train::data::captions::{AttributeTable, CaptionSynth, attribute_phrase, count_words};
use t2i_train::data::fixtures::{
    CubFixture, FixtureSample, fixture_attribute_names, write_coco_fixture, write_cub_fixture,
    write_oxford_fixture,
};
use t2i_train::data::phrasings::colours_of_word;
use t2i_train::data::preprocess::{load_size, prepare, to_chw_normalized};
use t2i_train::data::shapes::{BACKGROUNDS, COLOURS, SHAPES, shapes_on_backgrounds_dataset};
use t2i_train::data::{
    CaptionSource, CocoOptions, CubOptions, DataError, Dataset, OxfordOptions, SplitMix64,
    center_crop, heldout_classes, load_rgb, pyramid, random_crop_flip, read_coco, read_cub,
    read_oxford, shapes_dataset, species_split,
};

mod common;
use common::shared_file;

/// The shared CUB photos beside the checkout (`../shared`), wherever the checkout is.
fn real_cub() -> Option<PathBuf> {
    shared_file("data/cub100/images.txt", "the real-CUB checks")?
        .parent()
        .map(Path::to_path_buf)
}

fn cub_fixture(
    spec: &CubFixture,
) -> (
    tempfile::TempDir,
    Vec<t2i_train::data::fixtures::FixtureSample>,
) {
    let dir = tempfile::tempdir().unwrap();
    let samples = write_cub_fixture(dir.path(), spec).unwrap();
    (dir, samples)
}

fn assert_names(err: &DataError, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error {msg:?} should name {}",
        path.display()
    );
    assert_eq!(err.path(), path);
}

// ---------------------------------------------------------------- CUB with human captions

/// Every sample a reader gave is the fixture's, in order, with its ten captions.
fn assert_read_back(ds: &Dataset, written: &[FixtureSample]) {
    for (s, w) in ds.samples.iter().zip(written) {
        assert_eq!(s.key, w.key);
        assert_eq!(s.image_path, w.image_path);
        assert_eq!(s.class_id, w.class_id);
        assert_eq!(s.class_name, w.class_name);
        assert_eq!(s.captions, w.captions);
        assert_eq!(s.captions.len(), 10);
    }
}

#[test]
fn cub_reads_back_given_captions() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    let ds = read_cub(&CubOptions::new(dir.path())).unwrap();
    assert_eq!(ds.caption_source, CaptionSource::Human);
    assert_eq!(ds.len(), written.len());
    assert_eq!(ds.len(), 15);
    assert_read_back(&ds, &written);
    for (s, w) in ds.samples.iter().zip(&written) {
        assert_eq!(s.is_train_image, w.is_train_image);
    }
    // Sparse class ids as in cub100.
    assert_eq!(ds.class_ids(), vec![1, 4, 7, 10, 13]);
    assert_eq!(ds.skipped.total(), 0);
}

#[test]
fn cub_text_dir_option_and_caption_limit() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    let moved = dir.path().join("elsewhere_text");
    std::fs::rename(dir.path().join("text_c10"), &moved).unwrap();
    let mut opts = CubOptions::new(dir.path());
    opts.text_dir = Some(moved);
    opts.captions_per_image = 4;
    let ds = read_cub(&opts).unwrap();
    assert_eq!(ds.caption_source, CaptionSource::Human);
    for (s, w) in ds.samples.iter().zip(&written) {
        assert_eq!(s.captions, w.captions[..4]);
    }
    // A named caption folder that does not exist is an error naming it.
    let missing = dir.path().join("no_such_folder");
    opts.text_dir = Some(missing.clone());
    let err = read_cub(&opts).unwrap_err();
    assert_names(&err, &missing);
}

#[test]
fn cub_missing_caption_file_errors_or_is_skipped() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    let gone = written[4].caption_path.clone().unwrap();
    std::fs::remove_file(&gone).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    assert_names(&err, &gone);
    assert!(err.to_string().contains("caption file"), "{err}");

    let mut opts = CubOptions::new(dir.path());
    opts.skip_missing = true;
    let ds = read_cub(&opts).unwrap();
    assert_eq!(ds.len(), written.len() - 1);
    assert_eq!(ds.skipped.missing_captions, 1);
    assert_eq!(ds.skipped.total(), 1);
    assert_eq!(ds.skipped.examples, vec![gone]);
    assert!(ds.samples.iter().all(|s| s.key != written[4].key));
}

#[test]
fn cub_empty_lines_ignored_all_empty_file_errors() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    // Blank and whitespace-only lines between captions are skipped.
    let p0 = written[0].caption_path.clone().unwrap();
    let with_blanks = format!(
        "\n{}\n\n   \n{}\r\n\t\n{}\n",
        written[0].captions[0], written[0].captions[1], written[0].captions[2]
    );
    std::fs::write(&p0, with_blanks).unwrap();
    // A file with only blank lines is an error naming it.
    let p1 = written[1].caption_path.clone().unwrap();
    std::fs::write(&p1, "\n  \n\r\n").unwrap();

    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::EmptyCaptions { .. }), "{err:?}");
    assert_names(&err, &p1);

    let mut opts = CubOptions::new(dir.path());
    opts.skip_missing = true;
    let ds = read_cub(&opts).unwrap();
    assert_eq!(ds.skipped.empty_captions, 1);
    assert_eq!(ds.len(), written.len() - 1);
    assert_eq!(ds.samples[0].captions, written[0].captions[..3]);
}

#[test]
fn cub_missing_image_errors_or_is_skipped() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    std::fs::remove_file(&written[2].image_path).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert_names(&err, &written[2].image_path);
    let mut opts = CubOptions::new(dir.path());
    opts.skip_missing = true;
    let ds = read_cub(&opts).unwrap();
    assert_eq!(ds.skipped.missing_images, 1);
    assert_eq!(ds.len(), written.len() - 1);
}

#[test]
fn cub_malformed_index_files_name_path_and_line() {
    let (dir, _) = cub_fixture(&CubFixture::default());
    let images = dir.path().join("images.txt");
    let text = std::fs::read_to_string(&images).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = "three 001.Red_Circle/x.jpg".into();
    std::fs::write(&images, lines.join("\n")).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Parse { line: 3, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("{}:3:", images.display())),
        "{err}"
    );

    // A label naming a class missing from classes.txt.
    let (dir, _) = cub_fixture(&CubFixture::default());
    let classes = dir.path().join("classes.txt");
    let text = std::fs::read_to_string(&classes).unwrap();
    std::fs::write(
        &classes,
        text.lines().skip(1).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert_names(&err, &classes);

    // A bad train/test flag.
    let (dir, _) = cub_fixture(&CubFixture::default());
    let split = dir.path().join("train_test_split.txt");
    std::fs::write(&split, "1 1\n2 yes\n").unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err:?}");
    assert_names(&err, &split);

    // A missing index file.
    let (dir, _) = cub_fixture(&CubFixture::default());
    let labels = dir.path().join("image_class_labels.txt");
    std::fs::remove_file(&labels).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert_names(&err, &labels);
}

#[test]
fn cub_without_split_file_has_no_flags() {
    let (dir, _) = cub_fixture(&CubFixture::default());
    std::fs::remove_file(dir.path().join("train_test_split.txt")).unwrap();
    let ds = read_cub(&CubOptions::new(dir.path())).unwrap();
    assert!(ds.samples.iter().all(|s| s.is_train_image.is_none()));
}

// ---------------------------------------------------------------- synthesised captions

fn common_colour_words(table: &AttributeTable, class_id: u32, threshold: f32) -> HashSet<String> {
    table
        .common_attributes(class_id, threshold)
        .iter()
        .filter_map(|&a| {
            let name = &table.names()[a as usize - 1];
            name.contains("_color::")
                .then(|| name.split("::").nth(1).unwrap().to_string())
        })
        .collect()
}

/// Whether `word` may be written for a species with these common colours: a word that is no
/// colour word of the phrasing table passes; a colour word ("dark", "rusty", "pale") must stand
/// for one of them.
fn colour_word_is_true(word: &str, colours: &HashSet<String>) -> bool {
    colours_of_word(word).is_none_or(|stands_for| stands_for.iter().any(|c| colours.contains(*c)))
}

fn group_of(name: &str) -> &str {
    name.split("::").next().unwrap()
}

#[test]
fn cub_synthesised_captions_follow_the_rules() {
    let spec = CubFixture {
        captions: false,
        n_classes: 6,
        images_per_class: 4,
        ..CubFixture::default()
    };
    let (dir, written) = cub_fixture(&spec);
    let mut opts = CubOptions::new(dir.path());
    opts.seed = 11;
    let ds = read_cub(&opts).unwrap();
    assert_eq!(ds.caption_source, CaptionSource::SynthesizedFromAttributes);
    assert_eq!(ds.len(), written.len());

    // Deterministic for a seed; different for another seed.
    let again = read_cub(&opts).unwrap();
    for (a, b) in ds.samples.iter().zip(&again.samples) {
        assert_eq!(a.captions, b.captions);
    }
    let mut other = opts.clone();
    other.seed = 12;
    let other = read_cub(&other).unwrap();
    let differing = ds
        .samples
        .iter()
        .zip(&other.samples)
        .filter(|(a, b)| a.captions != b.captions)
        .count();
    assert!(
        differing > ds.len() / 2,
        "only {differing} images changed with the seed"
    );

    let synth = CaptionSynth::load(&dir.path().join("attributes")).unwrap();
    let table = synth.table();
    assert_eq!(table.names().len(), fixture_attribute_names().len());
    let mut n_attrs_seen = BTreeSet::new();
    let mut templates_seen = BTreeSet::new();
    for s in &ds.samples {
        assert_eq!(s.captions.len(), 10, "{}", s.key);
        // The sample's captions are exactly the synthesiser's for (seed, key).
        let caps = synth.captions(s.class_id, &s.key, 11, 10).unwrap();
        let texts: Vec<String> = caps.iter().map(|c| c.text.clone()).collect();
        assert_eq!(texts, s.captions);
        let colours = common_colour_words(table, s.class_id, 30.0);
        for c in &caps {
            assert!((3..=6).contains(&c.attributes.len()), "{c:?}");
            n_attrs_seen.insert(c.attributes.len());
            let mut groups = HashSet::new();
            for &a in &c.attributes {
                let p = table.percentage(s.class_id, a).unwrap();
                assert!(p >= 30.0, "attribute {a} at {p}% in {c:?}");
                let name = &table.names()[a as usize - 1];
                assert!(
                    groups.insert(group_of(name).to_string()),
                    "two of {name}'s group"
                );
            }
            assert!(count_words(&c.text) <= 18, "{:?}", c.text);
            assert_eq!(c.text, c.text.to_lowercase());
            assert!(
                c.text
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || " ,-".contains(ch)),
                "{:?}",
                c.text
            );
            // Every colour word comes from a common attribute of the species.
            for w in c.text.split(|ch: char| !ch.is_ascii_alphabetic()) {
                assert!(
                    colour_word_is_true(w, &colours),
                    "{w:?} is not common in class {}: {:?}",
                    s.class_id,
                    c.text
                );
            }
            templates_seen.insert(
                c.text
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    assert!(
        n_attrs_seen.len() >= 3,
        "attribute counts used: {n_attrs_seen:?}"
    );
    assert!(
        templates_seen.len() >= 6,
        "sentence openings: {templates_seen:?}"
    );
}

#[test]
fn synthesised_captions_depend_only_on_seed_and_key() {
    let (dir, _) = cub_fixture(&CubFixture {
        captions: false,
        ..CubFixture::default()
    });
    let synth = CaptionSynth::load(&dir.path().join("attributes")).unwrap();
    let a = synth.captions(4, "004.X/a.jpg", 3, 10).unwrap();
    // Other images in between do not change an image's captions.
    let _ = synth.captions(4, "004.X/b.jpg", 3, 10).unwrap();
    let b = synth.captions(4, "004.X/a.jpg", 3, 10).unwrap();
    assert_eq!(a, b);
    let c = synth.captions(4, "004.X/c.jpg", 3, 10).unwrap();
    assert_ne!(a, c);
    // A class without a row is an error naming the table file.
    let err = synth.captions(999, "x.jpg", 3, 10).unwrap_err();
    assert!(
        err.to_string()
            .contains("class_attribute_labels_continuous.txt"),
        "{err}"
    );
}

#[test]
fn attribute_words() {
    let cases = [
        ("has_bill_shape::cone", "cone-shaped bill"),
        ("has_upperparts_color::grey", "grey upperparts"),
        ("has_size::small_(5_-_9_in)", "small"),
        ("has_shape::perching-like", "perching"),
        ("has_bill_length::shorter_than_head", "short bill"),
        ("has_wing_pattern::striped", "striped wings"),
        ("has_primary_color::yellow", "mostly yellow"),
        ("has_back_color::buff", "buff back"),
        ("has_crown_color::iridescent", "iridescent crown"),
        ("has_tail_pattern::multi-colored", "multi-colored tail"),
        ("has_head_pattern::eyering", "eye ring"),
        ("has_tail_shape::fan-shaped_tail", "fan-shaped tail"),
        ("has_size::very_large_(32_-_72_in)", "very large"),
        ("has_bill_shape::curved_(up_or_down)", "curved bill"),
    ];
    for (name, want) in cases {
        assert_eq!(attribute_phrase(name).as_deref(), Some(want), "{name}");
    }
    assert_eq!(attribute_phrase("not_an_attribute"), None);
    // Every one of the 28 groups has words for every value of the fixture (= CUB) names.
    let groups: BTreeSet<&str> = fixture_attribute_names()
        .iter()
        .map(|n| {
            assert!(attribute_phrase(n).is_some(), "{n}");
            let p = attribute_phrase(n).unwrap();
            assert!(!p.contains('_') && !p.contains('('), "{n} -> {p}");
            ""
        })
        .collect();
    assert_eq!(groups.len(), 1);
    let n_groups: BTreeSet<String> = fixture_attribute_names()
        .iter()
        .map(|n| group_of(n).to_string())
        .collect();
    assert_eq!(n_groups.len(), 28);
}

#[test]
fn attribute_table_errors_name_path_and_line() {
    let (dir, _) = cub_fixture(&CubFixture {
        captions: false,
        ..CubFixture::default()
    });
    let table = dir
        .path()
        .join("attributes/class_attribute_labels_continuous.txt");
    let text = std::fs::read_to_string(&table).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[1] = lines[1].replacen(' ', " x ", 1);
    std::fs::write(&table, lines.join("\n")).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err:?}");
    assert_names(&err, &table);

    std::fs::remove_dir_all(dir.path().join("attributes")).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("attributes"), "{err}");
}

// ---------------------------------------------------------------- species split

fn check_split(ds: &Dataset, n_heldout: usize, expect_held_classes: usize) {
    let (train, held) = species_split(ds, n_heldout);
    assert_eq!(train.len() + held.len(), ds.len());
    let all: BTreeSet<usize> = train.iter().chain(&held).copied().collect();
    assert_eq!(all.len(), ds.len(), "indices overlap or repeat");
    let train_classes: BTreeSet<u32> = train.iter().map(|&i| ds.samples[i].class_id).collect();
    let held_classes: BTreeSet<u32> = held.iter().map(|&i| ds.samples[i].class_id).collect();
    assert!(train_classes.is_disjoint(&held_classes));
    assert_eq!(held_classes.len(), expect_held_classes);
    assert_eq!(
        train_classes.len(),
        ds.class_ids().len() - expect_held_classes
    );
    // Every fifth class id in ascending order.
    let ids = ds.class_ids();
    let expect: Vec<u32> = ids.iter().skip(4).step_by(5).copied().collect();
    if n_heldout * 5 == ids.len() {
        assert_eq!(heldout_classes(ds, n_heldout), expect);
        assert_eq!(held_classes.into_iter().collect::<Vec<_>>(), expect);
    }
    // Deterministic.
    assert_eq!(species_split(ds, n_heldout), (train, held));
}

#[test]
fn species_split_on_fixture() {
    let (dir, _) = cub_fixture(&CubFixture {
        n_classes: 10,
        images_per_class: 2,
        image_size: 16,
        captions: true,
        ..CubFixture::default()
    });
    let ds = read_cub(&CubOptions::new(dir.path())).unwrap();
    check_split(&ds, 2, 2);
    // Class ids 1, 4, ..., 28: positions 4 and 9 are ids 13 and 28.
    assert_eq!(heldout_classes(&ds, 2), vec![13, 28]);
    assert_eq!(heldout_classes(&ds, 3), vec![7, 16, 28]);
    assert_eq!(heldout_classes(&ds, 0), Vec::<u32>::new());
    assert_eq!(heldout_classes(&ds, 50).len(), 10);
}

#[test]
fn real_cub_loads_and_splits() {
    let Some(root) = real_cub() else {
        return;
    };
    let mut opts = CubOptions::new(&root);
    opts.seed = 2024;
    let t = std::time::Instant::now();
    let ds = read_cub(&opts).unwrap();
    println!(
        "read {} samples from {} in {:?}",
        ds.len(),
        root.display(),
        t.elapsed()
    );
    assert_eq!(ds.len(), 5902);
    assert_eq!(ds.caption_source, CaptionSource::SynthesizedFromAttributes);
    assert_eq!(ds.class_ids().len(), 100);
    assert!(ds.samples.iter().all(|s| s.captions.len() == 10));
    assert_eq!(
        ds.samples
            .iter()
            .filter(|s| s.is_train_image == Some(true))
            .count(),
        2903
    );
    assert_eq!(
        ds.samples
            .iter()
            .filter(|s| s.is_train_image == Some(false))
            .count(),
        2999
    );
    check_split(&ds, 20, 20);
    let (train, held) = species_split(&ds, 20);
    println!(
        "species split: {} train images, {} held-out images, held-out classes {:?}",
        train.len(),
        held.len(),
        heldout_classes(&ds, 20)
    );

    // Synthesised captions on the real table obey the rules too.
    let synth = CaptionSynth::load(&root.join("attributes")).unwrap();
    let mut words = 0usize;
    let mut n = 0usize;
    let mut distinct = HashSet::new();
    for s in ds.samples.iter().step_by(7) {
        let caps = synth.captions(s.class_id, &s.key, 2024, 10).unwrap();
        let colours = common_colour_words(synth.table(), s.class_id, 30.0);
        for (c, text) in caps.iter().zip(&s.captions) {
            assert_eq!(&c.text, text);
            assert!((3..=6).contains(&c.attributes.len()), "{c:?}");
            for &a in &c.attributes {
                assert!(synth.table().percentage(s.class_id, a).unwrap() >= 30.0);
            }
            for w in c.text.split(|ch: char| !ch.is_ascii_alphabetic()) {
                assert!(colour_word_is_true(w, &colours), "{w} in {:?}", c.text);
            }
            let nw = count_words(&c.text);
            assert!(nw <= 18, "{:?}", c.text);
            words += nw;
            n += 1;
            distinct.insert(c.text.clone());
        }
    }
    println!(
        "{n} captions checked, {:.1} words on average, {} distinct",
        words as f64 / n as f64,
        distinct.len()
    );
    for s in ds.samples.iter().step_by(1181).take(5) {
        println!("example [{}]: {}", s.class_name, s.captions[0]);
    }
    for c in &ds.samples[0].captions {
        println!(
            "  {} #{}: {c}",
            ds.samples[0].key,
            ds.samples[0].captions.iter().position(|x| x == c).unwrap()
        );
    }
}

/// How much of the natural-caption development set (`tests/fixtures/natural_captions`) a
/// DAMSM trained on the synthesised captions reads: its vocabulary is every word of the
/// training species' training images' captions, as `t2i train` on `configs/damsm_birds.toml`
/// builds it, and the development set is read as the page reads a caption (with the word map).
/// The phrasing table (`train/src/data/phrasings.rs`) is what lifts it.
#[test]
fn a_vocabulary_of_synthesised_captions_reads_peoples_words() {
    let Some(root) = real_cub() else {
        return;
    };
    let dataset = read_cub(&CubOptions::new(&root)).unwrap();
    let splits = t2i_train::damsm::commands::split(&dataset, 20);
    let vocabulary = Vocabulary::build(
        splits
            .train
            .iter()
            .flat_map(|&i| dataset.samples[i].captions.iter().map(String::as_str)),
        1,
    );
    let natural = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/natural_captions/captions.tsv"),
    )
    .unwrap();
    let (mut words, mut strict, mut read) = (0usize, 0usize, 0usize);
    let mut unknown: std::collections::BTreeMap<String, usize> = Default::default();
    for line in natural.lines().skip(1) {
        let caption = line.rsplit('\t').next().unwrap();
        let count = t2i::vocab::tokenize(caption).len();
        words += count;
        strict += count - vocabulary.encode(caption).unknown_words.len();
        let as_read = vocabulary.read(caption);
        read += count - as_read.unknown_words.len();
        for word in as_read.unknown_words {
            *unknown.entry(word).or_default() += 1;
        }
    }
    let (strict, read) = (strict as f64 / words as f64, read as f64 / words as f64);
    let mut missing: Vec<(usize, String)> = unknown.into_iter().map(|(w, n)| (n, w)).collect();
    missing.sort_by(|a, b| b.cmp(a));
    println!(
        "vocabulary of {} words; the development set's words read: {:.1}% strictly, {:.1}% with the word map; most frequent unread: {:?}",
        vocabulary.len(),
        strict * 100.0,
        read * 100.0,
        &missing[..missing.len().min(30)]
    );
    // Mapped words count towards the goal only where the mapping is right; the synthesised
    // vocabulary alone reaches it.
    assert!(
        strict >= 0.95 && read >= strict,
        "{strict} strictly, {read} mapped"
    );
}

// ---------------------------------------------------------------- Oxford and COCO

#[test]
fn oxford_reads_back_given_captions() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_oxford_fixture(dir.path(), 3, 4, 24, 5).unwrap();
    let ds = read_oxford(&OxfordOptions::new(dir.path())).unwrap();
    assert_eq!(ds.len(), 12);
    assert_eq!(ds.class_ids(), vec![1, 2, 3]);
    assert_read_back(&ds, &written);
    assert!(ds.samples.iter().all(|s| s.is_train_image.is_none()));
    // An empty caption file errors naming it, or is skipped.
    let p = written[5].caption_path.clone().unwrap();
    std::fs::write(&p, "\n\n").unwrap();
    let err = read_oxford(&OxfordOptions::new(dir.path())).unwrap_err();
    assert_names(&err, &p);
    let mut opts = OxfordOptions::new(dir.path());
    opts.skip_missing = true;
    assert_eq!(read_oxford(&opts).unwrap().len(), 11);
    // A missing image errors naming it.
    std::fs::remove_file(&written[0].image_path).unwrap();
    let err = read_oxford(&OxfordOptions::new(dir.path())).unwrap_err();
    assert_names(&err, &written[0].image_path);
    // A missing caption folder errors naming it.
    let err = read_oxford(&OxfordOptions::new(dir.path().join("nowhere"))).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[test]
fn coco_reads_back_given_captions() {
    let dir = tempfile::tempdir().unwrap();
    let fx = write_coco_fixture(dir.path(), 6, 24, 9).unwrap();
    let ds = read_coco(&CocoOptions::new(&fx.annotations, &fx.image_dir)).unwrap();
    assert_eq!(ds.len(), 6);
    for (s, w) in ds.samples.iter().zip(&fx.samples) {
        assert_eq!(s.key, w.key);
        assert_eq!(s.image_path, w.image_path);
        assert_eq!(s.class_id, 0);
        assert_eq!(s.captions, w.captions);
        assert_eq!(s.captions.len(), 5);
    }
    let mut opts = CocoOptions::new(&fx.annotations, &fx.image_dir);
    opts.captions_per_image = 2;
    let ds = read_coco(&opts).unwrap();
    assert_eq!(ds.samples[3].captions, fx.samples[3].captions[..2]);

    // Malformed JSON names the file.
    let bad = dir.path().join("annotations/bad.json");
    std::fs::write(&bad, "{\"images\": [ {\"id\": 1, ").unwrap();
    let err = read_coco(&CocoOptions::new(&bad, &fx.image_dir)).unwrap_err();
    assert!(matches!(err, DataError::Json { .. }), "{err:?}");
    assert_names(&err, &bad);
    // Valid JSON of the wrong shape too.
    std::fs::write(&bad, "{\"images\": 3}").unwrap();
    let err = read_coco(&CocoOptions::new(&bad, &fx.image_dir)).unwrap_err();
    assert_names(&err, &bad);
    // A missing image names the image.
    std::fs::remove_file(&fx.samples[1].image_path).unwrap();
    let err = read_coco(&CocoOptions::new(&fx.annotations, &fx.image_dir)).unwrap_err();
    assert_names(&err, &fx.samples[1].image_path);
    let mut opts = CocoOptions::new(&fx.annotations, &fx.image_dir);
    opts.skip_missing = true;
    let ds = read_coco(&opts).unwrap();
    assert_eq!((ds.len(), ds.skipped.missing_images), (5, 1));
}

/// File names that leave the image folder are refused before any file is opened (found by
/// `train/tests/fuzz.rs`: a mutated COCO file name became an absolute path, which
/// `Path::join` follows).
#[test]
fn image_names_that_leave_their_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fx = write_coco_fixture(dir.path(), 2, 16, 3).unwrap();
    let json = std::fs::read_to_string(&fx.annotations).unwrap();
    let first = fx.samples[0].key.clone();
    for hostile in ["/etc/passwd", "../../secret.jpg"] {
        std::fs::write(&fx.annotations, json.replace(&first, hostile)).unwrap();
        let err = read_coco(&CocoOptions::new(&fx.annotations, &fx.image_dir)).unwrap_err();
        assert!(err.to_string().contains("leaves the image folder"), "{err}");
        assert_names(&err, &fx.annotations);
    }
    let (dir, _) = cub_fixture(&CubFixture::default());
    let images = dir.path().join("images.txt");
    let text = std::fs::read_to_string(&images).unwrap();
    let (id, path) = text.lines().next().unwrap().split_once(' ').unwrap();
    let hostile = text.replacen(&format!("{id} {path}"), &format!("{id} ../../{path}"), 1);
    std::fs::write(&images, hostile).unwrap();
    let err = read_cub(&CubOptions::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("images.txt:1"), "{err}");
    assert!(
        err.to_string().contains("leaves the images folder"),
        "{err}"
    );
}

// ---------------------------------------------------------------- images

#[test]
fn corrupt_and_missing_images_name_their_path() {
    let (dir, written) = cub_fixture(&CubFixture::default());
    // A valid fixture JPEG decodes.
    let img = load_rgb(&written[0].image_path).unwrap();
    assert_eq!(img.dimensions(), (32, 32));
    // A truncated JPEG does not.
    let p = &written[1].image_path;
    let bytes = std::fs::read(p).unwrap();
    std::fs::write(p, &bytes[..bytes.len() / 3]).unwrap();
    let err = load_rgb(p).unwrap_err();
    assert_names(&err, p);
    // Nor does garbage with a .jpg name.
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"this is not a jpeg at all").unwrap();
    let err = load_rgb(&junk).unwrap_err();
    assert_names(&err, &junk);
    // Nor a missing file.
    let missing = dir.path().join("missing.jpg");
    let err = load_rgb(&missing).unwrap_err();
    assert_names(&err, &missing);
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 77])
    })
}

#[test]
fn crop_flip_and_pyramid_sizes() {
    assert_eq!(load_size(256), 304);
    assert_eq!(load_size(64), 76);
    let mut rng = SplitMix64::new(1);
    for (w, h) in [(227, 227), (500, 375), (120, 300), (10, 10)] {
        let img = gradient(w, h);
        let out = random_crop_flip(&img, 256, &mut rng);
        assert_eq!(out.dimensions(), (256, 256));
        let c = center_crop(&img, 64);
        assert_eq!(c.dimensions(), (64, 64));
        let pyr = pyramid(&out, &[64, 128, 256]);
        let dims: Vec<_> = pyr.iter().map(|p| p.dimensions()).collect();
        assert_eq!(dims, vec![(64, 64), (128, 128), (256, 256)]);
        assert_eq!(pyr[2], out);
    }
    // The centre crop is deterministic and equals `prepare` without an rng.
    let img = gradient(227, 227);
    assert_eq!(center_crop(&img, 256), center_crop(&img, 256));
    assert_eq!(center_crop(&img, 256), prepare(&img, 256, None));
    // Random crops vary, both flips occur, and a seed reproduces them.
    let crops: Vec<RgbImage> = (0..16)
        .map(|_| random_crop_flip(&img, 64, &mut rng))
        .collect();
    let distinct: HashSet<Vec<u8>> = crops.iter().map(|c| c.as_raw().clone()).collect();
    assert!(distinct.len() > 8);
    // Red grows left to right in the source, so a flipped crop has it falling.
    let flipped = crops
        .iter()
        .filter(|c| c.get_pixel(0, 32).0[0] > c.get_pixel(63, 32).0[0])
        .count();
    assert!(flipped > 0 && flipped < 16, "{flipped} of 16 flipped");
    let a = random_crop_flip(&img, 64, &mut SplitMix64::new(5));
    let b = random_crop_flip(&img, 64, &mut SplitMix64::new(5));
    assert_eq!(a, b);
    // Normalised floats.
    let v = to_chw_normalized(&gradient(4, 2));
    assert_eq!(v.len(), 24);
    assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
    assert!((v[16] - (77.0 / 127.5 - 1.0)).abs() < 1e-6);
    // Degenerate inputs do not panic.
    assert_eq!(center_crop(&RgbImage::new(0, 0), 32).dimensions(), (32, 32));
    assert_eq!(pyramid(&RgbImage::new(0, 0), &[8]).len(), 1);
}

// ---------------------------------------------------------------- shapes

#[test]
fn shapes_dataset_is_seeded_and_captions_name_colour_and_shape() {
    let a = shapes_dataset(60, 32, 3);
    let b = shapes_dataset(60, 32, 3);
    let prefix = shapes_dataset(10, 32, 3);
    assert_eq!(a.len(), 60);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    for (x, y) in prefix.iter().zip(&a) {
        assert_eq!(x, y);
    }
    assert_ne!(shapes_dataset(5, 32, 4)[..], a[..5]);

    let synonyms: [&[&str]; 3] = [
        &["circle", "round", "disk"],
        &["square", "box"],
        &["triangle", "triangular", "three sided"],
    ];
    let mut labels = HashSet::new();
    let mut captions = HashSet::new();
    for (img, cap, label) in &a {
        assert_eq!(img.dimensions(), (32, 32));
        assert!(label.colour < COLOURS.len() && label.shape < SHAPES.len());
        let (name, rgb) = COLOURS[label.colour];
        assert!(cap.contains(name), "{cap:?} lacks {name}");
        for (other, _) in COLOURS {
            if other != name {
                assert!(
                    !cap.split_whitespace().any(|w| w == other),
                    "{cap:?} names {other}"
                );
            }
        }
        assert!(
            synonyms[label.shape].iter().any(|s| cap.contains(s)),
            "{cap:?}"
        );
        // The shape's colour is in the image: the pixel closest to the base colour is close.
        let best = img
            .pixels()
            .map(|p| {
                (0..3)
                    .map(|c| (p.0[c] as i32 - rgb[c] as i32).abs())
                    .sum::<i32>()
            })
            .min()
            .unwrap();
        assert!(best < 70, "colour {name} not drawn ({best})");
        // The corners are background: a light grey or white.
        let corner = img.get_pixel(0, 0).0;
        assert!(
            corner[0] == corner[1] && corner[1] == corner[2] && corner[0] >= 185,
            "{corner:?}"
        );
        labels.insert(*label);
        captions.insert(cap.clone());
    }
    assert!(labels.len() >= 10, "{} labels", labels.len());
    assert!(captions.len() >= 30, "{} distinct captions", captions.len());
}

#[test]
fn shapes_on_backgrounds_name_and_draw_both_colours() {
    let a = shapes_on_backgrounds_dataset(40, 32, 3);
    assert_eq!(a, shapes_on_backgrounds_dataset(40, 32, 3));
    assert_eq!(a[..10], shapes_on_backgrounds_dataset(10, 32, 3)[..]);
    let mut backgrounds = HashSet::new();
    for (img, cap, label, background) in &a {
        let words: Vec<&str> = cap.split_whitespace().collect();
        let (colour, bg) = (label.colour_name(), BACKGROUNDS[*background].0);
        assert_eq!(words[0], colour, "{cap:?}");
        assert_eq!(words[words.len() - 1], bg, "{cap:?}");
        assert!(words.contains(&label.shape_name()), "{cap:?}");
        // The corners are the named background.
        assert_eq!(img.get_pixel(0, 0).0, BACKGROUNDS[*background].1, "{cap:?}");
        backgrounds.insert(*background);
    }
    assert_eq!(backgrounds.len(), BACKGROUNDS.len());
}

#[test]
fn fixtures_use_shapes_that_match_their_captions() {
    let (_dir, written) = cub_fixture(&CubFixture::default());
    for w in &written {
        let colour = w.label.colour_name();
        assert!(w.class_name.to_lowercase().contains(colour));
        assert!(w.captions.iter().all(|c| c.contains(colour)));
    }
}
