//! Reader for the Caltech-UCSD Birds-200-2011 layout (and its `cub100` subset).
//!
//! Expected layout under `root` (all text files space separated, ids 1-based):
//! ```text
//! root/images/<NNN.Class_Name>/<file>.jpg
//! root/images.txt               <image_id> <path under images/>
//! root/image_class_labels.txt   <image_id> <class_id>
//! root/classes.txt              <class_id> <NNN.Class_Name>
//! root/train_test_split.txt     <image_id> <1 training | 0 test>        (optional)
//! root/text_c10/<NNN.Class_Name>/<file>.txt   Reed et al.'s captions, one per line (optional)
//! root/attributes/attributes.txt                            (needed without captions)
//! root/attributes/class_attribute_labels_continuous.txt     (needed without captions)
//! ```
//! With a caption folder (`text_c10` next to `images/`, or [`CubOptions::text_dir`]), the
//! captions are read from it; otherwise they are synthesised from the attribute table
//! ([`super::captions`]), and [`Dataset::caption_source`] says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::captions::CaptionSynth;
use super::{
    CaptionSource, DataError, Dataset, Sample, SkipReport, numbered_lines, read_text_lossy,
    stays_inside,
};

/// Options of [`read_cub`].
#[derive(Debug, Clone)]
pub struct CubOptions {
    /// The `CUB_200_2011` (or `cub100`) folder.
    pub root: PathBuf,
    /// Caption folder in Reed's `text_c10` layout; `None`: `root/text_c10` if it exists,
    /// else synthesise captions. A folder named here must exist.
    pub text_dir: Option<PathBuf>,
    /// Captions per image; default 10. Human captions: the first lines of each file (fewer if
    /// the file has fewer; `0` keeps all). Synthesised: exactly this many.
    pub captions_per_image: usize,
    /// Seed of caption synthesis (per image combined with the image key).
    pub seed: u64,
    /// Drop (count and log) images whose image or caption file is missing or whose caption
    /// file has no caption, instead of failing.
    pub skip_missing: bool,
}

impl CubOptions {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CubOptions {
            root: root.into(),
            text_dir: None,
            captions_per_image: 10,
            seed: 0,
            skip_missing: false,
        }
    }
}

enum Source {
    Files(PathBuf),
    Synth(Box<CaptionSynth>),
}

/// Parses `<id> <rest>` lines of one of CUB's index files.
fn read_index(path: &Path) -> Result<Vec<(usize, u64, String)>, DataError> {
    let text = read_text_lossy(path)?;
    let mut out = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        let (id, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| DataError::parse(path, line_no, "expected `<id> <value>`"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| DataError::parse(path, line_no, format!("bad id {id:?}")))?;
        out.push((line_no, id, rest.trim().to_string()));
    }
    Ok(out)
}

fn parse_u32(path: &Path, line: usize, v: &str) -> Result<u32, DataError> {
    v.parse()
        .map_err(|_| DataError::parse(path, line, format!("bad number {v:?}")))
}

/// Reads a CUB folder. See the module documentation for the layout. Samples come in
/// `images.txt` order; keys are the paths under `images/`.
pub fn read_cub(opts: &CubOptions) -> Result<Dataset, DataError> {
    let root = &opts.root;
    let images_path = root.join("images.txt");
    let labels_path = root.join("image_class_labels.txt");
    let classes_path = root.join("classes.txt");
    let split_path = root.join("train_test_split.txt");
    let image_root = root.join("images");

    let images = read_index(&images_path)?;
    if images.is_empty() {
        return Err(DataError::Invalid {
            path: images_path,
            message: "no images listed".into(),
        });
    }
    let mut seen = HashMap::new();
    for (line, id, _) in &images {
        if let Some(first) = seen.insert(*id, *line) {
            return Err(DataError::parse(
                &images_path,
                *line,
                format!("image id {id} already listed on line {first}"),
            ));
        }
    }

    let mut labels: HashMap<u64, u32> = HashMap::new();
    for (line, id, v) in read_index(&labels_path)? {
        if !seen.contains_key(&id) {
            return Err(DataError::parse(
                &labels_path,
                line,
                format!("image id {id} is not in {}", images_path.display()),
            ));
        }
        labels.insert(id, parse_u32(&labels_path, line, &v)?);
    }

    let mut classes: HashMap<u32, String> = HashMap::new();
    for (line, id, name) in read_index(&classes_path)? {
        let id = u32::try_from(id)
            .map_err(|_| DataError::parse(&classes_path, line, "class id too large"))?;
        classes.insert(id, name);
    }

    let split: Option<HashMap<u64, bool>> = if split_path.is_file() {
        let mut m = HashMap::new();
        for (line, id, v) in read_index(&split_path)? {
            let flag = match v.as_str() {
                "1" => true,
                "0" => false,
                _ => {
                    return Err(DataError::parse(
                        &split_path,
                        line,
                        format!("expected 0 or 1, found {v:?}"),
                    ));
                }
            };
            m.insert(id, flag);
        }
        Some(m)
    } else {
        None
    };

    // Caption source.
    let text_dir = match &opts.text_dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(DataError::Missing {
                    what: "caption folder",
                    path: dir.clone(),
                });
            }
            Some(dir.clone())
        }
        None => Some(root.join("text_c10")).filter(|d| d.is_dir()),
    };
    let source = match text_dir {
        Some(dir) => Source::Files(dir),
        None => Source::Synth(Box::new(CaptionSynth::load(&root.join("attributes"))?)),
    };

    let mut skipped = SkipReport::default();
    let mut samples = Vec::with_capacity(images.len());
    for (line, id, rel) in &images {
        let class_id = *labels.get(id).ok_or_else(|| DataError::Invalid {
            path: labels_path.clone(),
            message: format!("no class label for image id {id} (line {line} of images.txt)"),
        })?;
        let class_name = classes
            .get(&class_id)
            .cloned()
            .ok_or_else(|| DataError::Invalid {
                path: classes_path.clone(),
                message: format!("class id {class_id} (of image id {id}) is not listed"),
            })?;
        let is_train_image = match &split {
            Some(m) => Some(*m.get(id).ok_or_else(|| DataError::Invalid {
                path: split_path.clone(),
                message: format!("no train/test flag for image id {id}"),
            })?),
            None => None,
        };
        let key = rel.replace('\\', "/");
        if !stays_inside(&key) {
            return Err(DataError::parse(
                &images_path,
                *line,
                format!("image path {key:?} leaves the images folder"),
            ));
        }
        let image_path = image_root.join(&key);
        if !skipped.image_exists(&image_path, opts.skip_missing)? {
            continue;
        }
        let captions = match &source {
            Source::Files(dir) => {
                let cap_path = dir.join(Path::new(&key).with_extension("txt"));
                let read = skipped.captions(&cap_path, opts.captions_per_image, opts.skip_missing);
                match read? {
                    Some(captions) => captions,
                    None => continue,
                }
            }
            Source::Synth(synth) => synth
                .captions(class_id, &key, opts.seed, opts.captions_per_image)?
                .into_iter()
                .map(|c| c.text)
                .collect(),
        };
        samples.push(Sample {
            key,
            image_path,
            class_id,
            class_name,
            captions,
            is_train_image,
        });
    }
    let captions = match source {
        Source::Files(_) => CaptionSource::Human,
        Source::Synth(_) => CaptionSource::SynthesizedFromAttributes,
    };
    Dataset::read("cub", root, image_root, samples, captions, skipped)
}
