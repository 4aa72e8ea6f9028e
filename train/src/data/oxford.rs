//! Reader for Oxford-102 flowers in the layout of Reed et al.'s release (`cvpr2016_flowers`).
//!
//! Expected layout under `root`:
//! ```text
//! root/jpg/image_00001.jpg ... image_08189.jpg          the images
//! root/text_c10/class_00001/image_06734.txt ...         captions, one per line (10 each)
//! ```
//! The class id is the number in the `class_XXXXX` folder name (1..102); each `.txt` file in
//! a class folder names one image, `jpg/<same stem>.jpg`. Other files and folders are ignored.
//! Samples are ordered by class id, then file name; keys are the image file names
//! (`image_06734.jpg`, relative to the image folder).

use std::collections::HashSet;
use std::path::PathBuf;

use super::{CaptionSource, DataError, Dataset, Sample, SkipReport, key_of};

/// Options of [`read_oxford`].
#[derive(Debug, Clone)]
pub struct OxfordOptions {
    pub root: PathBuf,
    /// Image folder; default `root/jpg`.
    pub image_dir: Option<PathBuf>,
    /// Caption folder; default `root/text_c10`.
    pub text_dir: Option<PathBuf>,
    /// Captions kept per image (first lines); default 10.
    pub captions_per_image: usize,
    /// Drop (count and log) images whose file is missing or whose caption file is empty,
    /// instead of failing.
    pub skip_missing: bool,
}

impl OxfordOptions {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        OxfordOptions {
            root: root.into(),
            image_dir: None,
            text_dir: None,
            captions_per_image: 10,
            skip_missing: false,
        }
    }
}

fn list_dir(dir: &std::path::Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        out.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Reads an Oxford-102 folder in Reed's layout (see the module documentation).
pub fn read_oxford(opts: &OxfordOptions) -> Result<Dataset, DataError> {
    let image_dir = opts
        .image_dir
        .clone()
        .unwrap_or_else(|| opts.root.join("jpg"));
    let text_dir = opts
        .text_dir
        .clone()
        .unwrap_or_else(|| opts.root.join("text_c10"));
    if !text_dir.is_dir() {
        return Err(DataError::Missing {
            what: "caption folder",
            path: text_dir,
        });
    }
    if !image_dir.is_dir() {
        return Err(DataError::Missing {
            what: "image folder",
            path: image_dir,
        });
    }
    let mut class_dirs: Vec<(u32, String, PathBuf)> = Vec::new();
    for path in list_dir(&text_dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(num) = name.strip_prefix("class_") else {
            continue;
        };
        if !path.is_dir() {
            continue;
        }
        let id: u32 = num.parse().map_err(|_| DataError::Invalid {
            path: path.clone(),
            message: "class folder name is not class_<number>".into(),
        })?;
        class_dirs.push((id, name.to_string(), path));
    }
    class_dirs.sort();

    let mut skipped = SkipReport::default();
    let mut samples = Vec::new();
    let mut keys = HashSet::new();
    for (class_id, class_name, dir) in class_dirs {
        for cap_path in list_dir(&dir)? {
            if cap_path.extension().and_then(|e| e.to_str()) != Some("txt") || !cap_path.is_file() {
                continue;
            }
            let Some(stem) = cap_path.file_stem() else {
                continue;
            };
            let image_path = image_dir.join(stem).with_extension("jpg");
            let key = key_of(&image_dir, &image_path);
            if !keys.insert(key.clone()) {
                return Err(DataError::Invalid {
                    path: cap_path,
                    message: format!("{key} already has captions in another class folder"),
                });
            }
            if !skipped.image_exists(&image_path, opts.skip_missing)? {
                continue;
            }
            let read = skipped.captions(&cap_path, opts.captions_per_image, opts.skip_missing);
            let Some(captions) = read? else {
                continue;
            };
            samples.push(Sample {
                key,
                image_path,
                class_id,
                class_name: class_name.clone(),
                captions,
                is_train_image: None,
            });
        }
    }
    let captions = CaptionSource::Human;
    Dataset::read(
        "oxford102",
        &text_dir,
        image_dir,
        samples,
        captions,
        skipped,
    )
}
