//! Reader for MS-COCO captions (`annotations/captions_train2014.json` and the like).
//!
//! The JSON must hold `images: [{"id": .., "file_name": ..}, ..]` and
//! `annotations: [{"image_id": .., "caption": ..}, ..]`; other fields are ignored. Image files
//! are `image_dir/<file_name>`. Samples follow the order of `images`; keys are the file names;
//! the class id is 0 for all (COCO has no single class per image).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{CaptionSource, DataError, Dataset, Sample, SkipReport, stays_inside};

/// Options of [`read_coco`].
#[derive(Debug, Clone)]
pub struct CocoOptions {
    /// The captions JSON file.
    pub annotations: PathBuf,
    /// The folder holding the images (`train2014/`).
    pub image_dir: PathBuf,
    /// Captions kept per image (in annotation order); default 5, as AttnGAN.
    pub captions_per_image: usize,
    /// Drop (count and log) images whose file is missing or that have no caption, instead of
    /// failing.
    pub skip_missing: bool,
}

impl CocoOptions {
    pub fn new(annotations: impl Into<PathBuf>, image_dir: impl Into<PathBuf>) -> Self {
        CocoOptions {
            annotations: annotations.into(),
            image_dir: image_dir.into(),
            captions_per_image: 5,
            skip_missing: false,
        }
    }
}

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    caption: String,
}

/// Reads COCO captions (see the module documentation).
pub fn read_coco(opts: &CocoOptions) -> Result<Dataset, DataError> {
    let path = &opts.annotations;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let parsed: CocoFile = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
        if e.is_io() {
            DataError::Io {
                path: path.clone(),
                source: e.into(),
            }
        } else {
            DataError::Json {
                path: path.clone(),
                source: e,
            }
        }
    })?;

    let mut index: HashMap<u64, usize> = HashMap::with_capacity(parsed.images.len());
    for (i, img) in parsed.images.iter().enumerate() {
        if index.insert(img.id, i).is_some() {
            return Err(DataError::Invalid {
                path: path.clone(),
                message: format!("image id {} listed twice", img.id),
            });
        }
    }
    let mut captions: Vec<Vec<String>> = vec![Vec::new(); parsed.images.len()];
    for (n, ann) in parsed.annotations.iter().enumerate() {
        let &i = index.get(&ann.image_id).ok_or_else(|| DataError::Invalid {
            path: path.clone(),
            message: format!("annotation {n} refers to unknown image id {}", ann.image_id),
        })?;
        let cap = ann.caption.split_whitespace().collect::<Vec<_>>().join(" ");
        if cap.is_empty() {
            continue;
        }
        if opts.captions_per_image == 0 || captions[i].len() < opts.captions_per_image {
            captions[i].push(cap);
        }
    }

    let mut skipped = SkipReport::default();
    let mut samples = Vec::with_capacity(parsed.images.len());
    for (img, caps) in parsed.images.into_iter().zip(captions) {
        let key = img.file_name.replace('\\', "/");
        if !stays_inside(&key) {
            return Err(DataError::Invalid {
                path: path.clone(),
                message: format!("image file name {key:?} leaves the image folder"),
            });
        }
        let image_path = opts.image_dir.join(&key);
        if !skipped.image_exists(&image_path, opts.skip_missing)? {
            continue;
        }
        if caps.is_empty() {
            if opts.skip_missing {
                skipped.empty_captions += 1;
                skipped.note(&image_path);
                continue;
            }
            return Err(DataError::Invalid {
                path: path.clone(),
                message: format!("no caption for image id {} ({key})", img.id),
            });
        }
        samples.push(Sample {
            key,
            image_path,
            class_id: 0,
            class_name: String::new(),
            captions: caps,
            is_train_image: None,
        });
    }
    let image_root = opts.image_dir.clone();
    Dataset::read(
        "coco",
        path,
        image_root,
        samples,
        CaptionSource::Human,
        skipped,
    )
}
