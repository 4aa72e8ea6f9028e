//! Datasets for the text-to-image trainers: file lists, captions and decoded images.
//!
//! Every reader (CUB-200-2011 in [`cub`], Oxford-102 flowers in [`oxford`], MS-COCO in
//! [`coco`]) produces the same [`Dataset`]: a list of [`Sample`]s, each naming one image file,
//! its class and its captions. Readers only *list* images (and check that the files exist);
//! decoding, resizing and cropping live in [`preprocess`]. When a CUB folder has no human
//! captions, [`captions`] writes English sentences from the per-species attribute table.
//! [`shapes`] draws a coloured-shapes toy dataset and [`fixtures`] writes tiny on-disk datasets
//! in each supported layout for tests.
//!
//! Nothing here panics on bad input: malformed or missing files give a [`DataError`] whose
//! message names the offending path (and the line number for text files).

pub mod captions;
pub mod coco;
pub mod cub;
pub mod features;
pub mod fixtures;
pub mod gan_set;
pub mod oxford;
pub mod phrasings;
pub mod prepared;
pub mod preprocess;
pub mod shapes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use captions::{AttributeTable, CaptionSynth, SynthCaption};
pub use coco::{CocoOptions, read_coco};
pub use cub::{CubOptions, read_cub};
pub use oxford::{OxfordOptions, read_oxford};
pub use preprocess::{center_crop, load_rgb, pyramid, random_crop_flip};
pub use shapes::{ShapeLabel, shapes_dataset, shapes_on_backgrounds_dataset};

/// One image with its class and captions.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image path relative to the dataset's image root, with `/` separators
    /// (e.g. `001.Black_footed_Albatross/0000.jpg`); unique within a dataset, and the key of
    /// feature caches and of per-image caption seeds.
    pub key: String,
    /// Full path of the image file.
    pub image_path: PathBuf,
    /// Class id as the dataset numbers it (CUB: the original 1..200 ids; Oxford: the number in
    /// `class_XXXXX`; COCO: 0).
    pub class_id: u32,
    /// Class name as the dataset spells it (CUB: `001.Black_footed_Albatross`; Oxford:
    /// `class_00001`; COCO: empty).
    pub class_name: String,
    /// Captions, non-empty, trimmed, at most the reader's `captions_per_image`.
    pub captions: Vec<String>,
    /// CUB's own per-image split (`train_test_split.txt`: `true` for a training image);
    /// `None` where the dataset has no such file.
    pub is_train_image: Option<bool>,
}

/// Where a dataset's captions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionSource {
    /// Human captions read from files (Reed's `text_c10`, COCO annotations).
    Human,
    /// Sentences synthesised from CUB's per-species attribute table: they describe the
    /// species, not the photograph. Say so wherever results on them are reported.
    SynthesizedFromAttributes,
}

/// What a reader dropped because `skip_missing` was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipReport {
    /// Images whose caption file was missing.
    pub missing_captions: usize,
    /// Images whose caption file had no non-empty line (or that had no captions at all).
    pub empty_captions: usize,
    /// Listed images whose file does not exist.
    pub missing_images: usize,
    /// Up to the first 20 offending paths, for messages.
    pub examples: Vec<PathBuf>,
}

impl SkipReport {
    /// Total number of images dropped.
    pub fn total(&self) -> usize {
        self.missing_captions + self.empty_captions + self.missing_images
    }

    /// Whether a listed image file exists: `Ok(true)` when it does; when it does not, a
    /// counted skip (`Ok(false)`) under `skip_missing`, else an error naming the path.
    pub(crate) fn image_exists(
        &mut self,
        path: &Path,
        skip_missing: bool,
    ) -> Result<bool, DataError> {
        if path.is_file() {
            return Ok(true);
        }
        if !skip_missing {
            return Err(DataError::Missing {
                what: "image",
                path: path.to_path_buf(),
            });
        }
        self.missing_images += 1;
        self.note(path);
        Ok(false)
    }

    /// The captions of an image's caption file (its first `max` lines, see
    /// [`read_caption_file`]): `Ok(None)`, a counted skip, when the file is missing or empty
    /// under `skip_missing`; else an error naming the file.
    pub(crate) fn captions(
        &mut self,
        path: &Path,
        max: usize,
        skip_missing: bool,
    ) -> Result<Option<Vec<String>>, DataError> {
        match read_caption_file(path, max) {
            Ok(captions) => Ok(Some(captions)),
            Err(e) if skip_missing => {
                match e {
                    DataError::EmptyCaptions { .. } => self.empty_captions += 1,
                    _ => self.missing_captions += 1,
                }
                self.note(path);
                Ok(None)
            }
            Err(DataError::Missing { path, .. }) => Err(DataError::Missing {
                what: "caption file",
                path,
            }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn note(&mut self, path: &Path) {
        if self.examples.len() < 20 {
            self.examples.push(path.to_path_buf());
        }
    }

    /// Prints one line to stderr when something was skipped.
    pub(crate) fn log(&self, dataset: &str) {
        if self.total() > 0 {
            eprintln!(
                "{dataset}: skipped {} image(s): {} missing caption file(s), {} empty caption \
                 file(s), {} missing image file(s); first: {}",
                self.total(),
                self.missing_captions,
                self.empty_captions,
                self.missing_images,
                self.examples
                    .first()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
    }
}

/// A list of samples read from one dataset folder.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short name (`cub`, `oxford102`, `coco`).
    pub name: String,
    /// The folder the sample keys are relative to.
    pub image_root: PathBuf,
    pub samples: Vec<Sample>,
    pub caption_source: CaptionSource,
    /// What was dropped under `skip_missing` (all zero otherwise).
    pub skipped: SkipReport,
}

impl Dataset {
    /// What a reader read from `path` (named in the error when nothing was usable): `samples`
    /// of images under `image_root`, and what it `skipped` (logged here).
    pub(crate) fn read(
        name: &str,
        path: &Path,
        image_root: PathBuf,
        samples: Vec<Sample>,
        caption_source: CaptionSource,
        skipped: SkipReport,
    ) -> Result<Self, DataError> {
        skipped.log(name);
        if samples.is_empty() {
            return Err(DataError::Invalid {
                path: path.to_path_buf(),
                message: "no usable samples".into(),
            });
        }
        Ok(Dataset {
            name: name.into(),
            image_root,
            samples,
            caption_source,
            skipped,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The distinct class ids present, ascending.
    pub fn class_ids(&self) -> Vec<u32> {
        let set: BTreeSet<u32> = self.samples.iter().map(|s| s.class_id).collect();
        set.into_iter().collect()
    }

    /// All captions of all samples, in sample order (e.g. to build a vocabulary).
    pub fn all_captions(&self) -> impl Iterator<Item = &str> {
        self.samples
            .iter()
            .flat_map(|s| s.captions.iter().map(String::as_str))
    }
}

/// Errors of the dataset readers and image loading. Every message names the offending path.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("missing {what}: {}", path.display())]
    Missing { what: &'static str, path: PathBuf },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        message: String,
    },
    #[error("no non-empty caption in {}", path.display())]
    EmptyCaptions { path: PathBuf },
    #[error("malformed JSON in {}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot decode image {}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl DataError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DataError::Io { path, .. }
            | DataError::Missing { path, .. }
            | DataError::Parse { path, .. }
            | DataError::EmptyCaptions { path }
            | DataError::Json { path, .. }
            | DataError::Image { path, .. }
            | DataError::Invalid { path, .. } => path,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                what: "file",
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    pub(crate) fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Splits a dataset into training and held-out *classes* (species), for the class-disjoint
/// protocol of the text-to-image literature (150/50 species on full CUB; 80/20 on `cub100`).
///
/// The distinct class ids of `dataset` are sorted ascending; with `n` classes and
/// `h = min(n_heldout, n)`, the classes at 0-based positions `floor((j + 1) * n / h) - 1` for
/// `j = 0..h` are held out. With 100 species and `n_heldout = 20` these are positions
/// 4, 9, 14, …, 99: every fifth species, 20 of the 100, spread over the taxonomy (CUB ids
/// follow taxonomic order). The split depends only on the set of class ids, not on sample
/// order or any seed.
///
/// Returns `(train, heldout)`: sample indices into `dataset.samples`, each ascending; every
/// sample is in exactly one of them.
/// Whether a file name read from a list or a JSON file stays inside the folder it is joined
/// to: relative, no `..`. A dataset file from a stranger must not make a reader open files
/// elsewhere (`Path::join` with an absolute name replaces the folder).
pub fn stays_inside(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

pub fn species_split(dataset: &Dataset, n_heldout: usize) -> (Vec<usize>, Vec<usize>) {
    let held: BTreeSet<u32> = heldout_classes(dataset, n_heldout).into_iter().collect();
    let mut train = Vec::new();
    let mut heldout = Vec::new();
    for (i, s) in dataset.samples.iter().enumerate() {
        if held.contains(&s.class_id) {
            heldout.push(i);
        } else {
            train.push(i);
        }
    }
    (train, heldout)
}

/// The class ids [`species_split`] holds out, ascending.
pub fn heldout_classes(dataset: &Dataset, n_heldout: usize) -> Vec<u32> {
    let ids = dataset.class_ids();
    let n = ids.len();
    let h = n_heldout.min(n);
    (0..h).map(|j| ids[(j + 1) * n / h - 1]).collect()
}

/// A small, fully specified random number generator (SplitMix64), so that seeded outputs
/// (synthesised captions, shape images) do not depend on the `rand` crate's choice of
/// standard generator. Implements [`rand::RngCore`], so all of [`rand::Rng`] works on it.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator for one item, seeded from a global seed and the item's key (e.g. a sample
    /// key), so an item's stream does not change when other items are added.
    pub fn for_key(seed: u64, key: &str) -> Self {
        SplitMix64::new(mix64(seed ^ mix64(fnv1a64(key.as_bytes()))))
    }
}

impl rand::RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads a whole text file leniently: invalid UTF-8 sequences become spaces (some of Reed's
/// caption files contain stray bytes).
pub(crate) fn read_text_lossy(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok(String::from_utf8_lossy(&bytes).replace('\u{FFFD}', " "))
}

/// Reads a caption file: one caption per line, blank lines skipped, whitespace collapsed,
/// at most `max` kept (`0` = all). Errors if there is no non-empty caption.
pub(crate) fn read_caption_file(path: &Path, max: usize) -> Result<Vec<String>, DataError> {
    let text = read_text_lossy(path)?;
    let mut caps = Vec::new();
    for line in text.lines() {
        let cap = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if cap.is_empty() {
            continue;
        }
        caps.push(cap);
        if max > 0 && caps.len() == max {
            break;
        }
    }
    if caps.is_empty() {
        return Err(DataError::EmptyCaptions {
            path: path.to_path_buf(),
        });
    }
    Ok(caps)
}

/// Iterates over the non-blank lines of a text file as `(1-based line number, trimmed line)`.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Renders a path relative to `root` with `/` separators.
pub(crate) fn key_of(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads a dataset by its config name (`birds`, `flowers`, `coco`) from `root`.
pub fn load_dataset_named(
    name: &str,
    root: &Path,
    captions_per_image: usize,
    seed: u64,
    skip_missing: bool,
) -> anyhow::Result<Dataset> {
    let dataset = match name {
        "birds" => {
            let mut options = CubOptions::new(root);
            options.captions_per_image = captions_per_image;
            options.seed = seed;
            options.skip_missing = skip_missing;
            crate::data::read_cub(&options)?
        }
        "flowers" => {
            let mut options = OxfordOptions::new(root);
            options.captions_per_image = captions_per_image;
            options.skip_missing = skip_missing;
            crate::data::read_oxford(&options)?
        }
        "coco" => {
            let mut options = CocoOptions::new(
                root.join("annotations/captions_train2014.json"),
                root.join("train2014"),
            );
            options.skip_missing = skip_missing;
            crate::data::read_coco(&options)?
        }
        other => anyhow::bail!("unknown dataset_name {other:?}"),
    };
    if dataset.caption_source == CaptionSource::SynthesizedFromAttributes {
        eprintln!(
            "note: {} has no human captions; using captions synthesised from the per-species attribute table (they describe the species, not the photo)",
            root.display()
        );
    }
    Ok(dataset)
}
