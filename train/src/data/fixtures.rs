//! Tiny on-disk datasets in the CUB, Oxford-102 and COCO layouts, drawn from the coloured
//! shapes of [`super::shapes`], so that tests can run the readers end to end without real
//! images. Each writer returns what it wrote, for tests to compare against.

use std::path::{Path, PathBuf};

use image::{ImageFormat, RgbImage};
use rand::Rng;

use super::shapes::{COLOURS, SHAPES, ShapeLabel, draw_shape, shape_caption};
use super::{DataError, SplitMix64};

/// One image written by a fixture writer.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureSample {
    /// The key the reader should give it (path relative to the image root).
    pub key: String,
    pub image_path: PathBuf,
    /// The caption file written for it, if any.
    pub caption_path: Option<PathBuf>,
    pub class_id: u32,
    pub class_name: String,
    /// The captions written (empty when none were).
    pub captions: Vec<String>,
    pub label: ShapeLabel,
    pub is_train_image: Option<bool>,
}

/// What [`write_cub_fixture`] writes.
#[derive(Debug, Clone)]
pub struct CubFixture {
    pub n_classes: usize,
    pub images_per_class: usize,
    /// Side of the square JPEG images.
    pub image_size: u32,
    /// Class ids are `1, 1 + stride, 1 + 2 * stride, ...` (sparse, like `cub100`'s).
    pub class_id_stride: u32,
    /// Write Reed-style `text_c10/<class>/<image>.txt` caption files.
    pub captions: bool,
    pub captions_per_image: usize,
    /// Write `attributes/attributes.txt` and `class_attribute_labels_continuous.txt` (a small
    /// table covering all 28 CUB attribute groups; see [`fixture_attribute_names`]).
    pub attributes: bool,
    pub seed: u64,
}

impl Default for CubFixture {
    fn default() -> Self {
        CubFixture {
            n_classes: 5,
            images_per_class: 3,
            image_size: 32,
            class_id_stride: 3,
            captions: true,
            captions_per_image: 10,
            attributes: true,
            seed: 7,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |e| DataError::io(path, e)
}

fn write_file(path: &Path, contents: &str) -> Result<(), DataError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(path, contents).map_err(io_err(path))
}

fn write_jpeg(path: &Path, img: &RgbImage) -> Result<(), DataError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    img.save_with_format(path, ImageFormat::Jpeg)
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            source: e,
        })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// The shape drawn for the `index`-th class of a fixture: colours cycle fastest.
pub fn fixture_label(index: usize) -> ShapeLabel {
    ShapeLabel {
        colour: index % COLOURS.len(),
        shape: (index / COLOURS.len()) % SHAPES.len(),
    }
}

/// One image and `n_captions` captions of `label`.
fn shape_item(
    label: ShapeLabel,
    size: u32,
    n_captions: usize,
    rng: &mut SplitMix64,
) -> (RgbImage, Vec<String>) {
    let (img, geom) = draw_shape(label, size, rng);
    let caps = (0..n_captions)
        .map(|_| shape_caption(label, &geom, rng))
        .collect();
    (img, caps)
}

/// Attribute names of the fixture table: every one of CUB's 28 groups, with a subset of the
/// colours (`black white grey brown yellow red blue buff`) for the 15 colour groups and all
/// values of the others.
pub fn fixture_attribute_names() -> Vec<String> {
    const COLOURS: [&str; 8] = [
        "black", "white", "grey", "brown", "yellow", "red", "blue", "buff",
    ];
    const PATTERNS: [&str; 4] = ["solid", "spotted", "striped", "multi-colored"];
    let colour_groups = [
        "wing",
        "upperparts",
        "underparts",
        "back",
        "upper_tail",
        "breast",
        "throat",
        "eye",
        "forehead",
        "under_tail",
        "nape",
        "belly",
        "leg",
        "bill",
        "crown",
        "primary",
    ];
    let pattern_groups = ["breast", "back", "tail", "belly", "wing"];
    let mut names = Vec::new();
    let push = |names: &mut Vec<String>, group: &str, values: &[&str]| {
        for v in values {
            names.push(format!("has_{group}::{v}"));
        }
    };
    push(
        &mut names,
        "bill_shape",
        &[
            "curved_(up_or_down)",
            "dagger",
            "hooked",
            "needle",
            "hooked_seabird",
            "spatulate",
            "all-purpose",
            "cone",
            "specialized",
        ],
    );
    push(
        &mut names,
        "bill_length",
        &[
            "about_the_same_as_head",
            "longer_than_head",
            "shorter_than_head",
        ],
    );
    push(
        &mut names,
        "wing_shape",
        &[
            "rounded-wings",
            "pointed-wings",
            "broad-wings",
            "tapered-wings",
            "long-wings",
        ],
    );
    push(
        &mut names,
        "tail_shape",
        &[
            "forked_tail",
            "rounded_tail",
            "notched_tail",
            "fan-shaped_tail",
            "pointed_tail",
            "squared_tail",
        ],
    );
    push(
        &mut names,
        "size",
        &[
            "large_(16_-_32_in)",
            "small_(5_-_9_in)",
            "very_large_(32_-_72_in)",
            "medium_(9_-_16_in)",
            "very_small_(3_-_5_in)",
        ],
    );
    push(
        &mut names,
        "shape",
        &[
            "upright-perching_water-like",
            "chicken-like-marsh",
            "long-legged-like",
            "duck-like",
            "owl-like",
            "gull-like",
            "hummingbird-like",
            "pigeon-like",
            "tree-clinging-like",
            "hawk-like",
            "sandpiper-like",
            "upland-ground-like",
            "swallow-like",
            "perching-like",
        ],
    );
    push(
        &mut names,
        "head_pattern",
        &[
            "spotted",
            "malar",
            "crested",
            "masked",
            "unique_pattern",
            "eyebrow",
            "eyering",
            "plain",
            "eyeline",
            "striped",
            "capped",
        ],
    );
    for g in colour_groups {
        push(&mut names, &format!("{g}_color"), &COLOURS);
    }
    for g in pattern_groups {
        push(&mut names, &format!("{g}_pattern"), &PATTERNS);
    }
    names
}

/// Writes the fixture attribute table for class ids `1..=n_rows`: in each group of each class,
/// one or two values are common (35–95 %), the rest rare (0–25 %).
fn write_attribute_table(dir: &Path, n_rows: usize, seed: u64) -> Result<(), DataError> {
    let names = fixture_attribute_names();
    let mut text = String::new();
    for (i, n) in names.iter().enumerate() {
        text.push_str(&format!("{} {n}\n", i + 1));
    }
    write_file(&dir.join("attributes.txt"), &text)?;
    let groups: Vec<&str> = names
        .iter()
        .map(|n| n.split("::").next().unwrap_or(""))
        .collect();
    let mut table = String::new();
    for class in 1..=n_rows {
        let mut rng = SplitMix64::for_key(seed, &format!("attributes/{class}"));
        let mut row = vec![0.0f32; names.len()];
        let mut start = 0;
        while start < names.len() {
            let end = (start..names.len())
                .find(|&j| groups[j] != groups[start])
                .unwrap_or(names.len());
            for v in &mut row[start..end] {
                *v = if rng.random_bool(0.5) {
                    0.0
                } else {
                    rng.random::<f32>() * 25.0
                };
            }
            let n_common = if end - start > 1 && rng.random_bool(0.3) {
                2
            } else {
                1
            };
            for _ in 0..n_common {
                let j = rng.random_range(start..end);
                row[j] = 35.0 + rng.random::<f32>() * 60.0;
            }
            start = end;
        }
        let line: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
        table.push_str(&line.join(" "));
        table.push('\n');
    }
    write_file(&dir.join("class_attribute_labels_continuous.txt"), &table)
}

/// Writes a tiny dataset in the CUB_200_2011 layout under `dir` (see [`super::cub`]):
/// `images/NNN.Colour_Shape/Colour_Shape_NNNN.jpg`, `images.txt`, `image_class_labels.txt`,
/// `classes.txt`, `train_test_split.txt` (even image numbers train), optionally
/// `text_c10/` captions and an `attributes/` table. Samples come back in `images.txt` order.
pub fn write_cub_fixture(dir: &Path, spec: &CubFixture) -> Result<Vec<FixtureSample>, DataError> {
    let mut images_txt = String::new();
    let mut labels_txt = String::new();
    let mut classes_txt = String::new();
    let mut split_txt = String::new();
    let mut out = Vec::new();
    let mut image_id = 0u64;
    let stride = spec.class_id_stride.max(1);
    for ci in 0..spec.n_classes {
        let class_id = 1 + ci as u32 * stride;
        let label = fixture_label(ci);
        let short = format!(
            "{}_{}",
            capitalise(label.colour_name()),
            capitalise(label.shape_name())
        );
        let class_name = format!("{class_id:03}.{short}");
        classes_txt.push_str(&format!("{class_id} {class_name}\n"));
        for j in 0..spec.images_per_class {
            image_id += 1;
            let key = format!("{class_name}/{short}_{j:04}.jpg");
            let is_train = j % 2 == 0;
            images_txt.push_str(&format!("{image_id} {key}\n"));
            labels_txt.push_str(&format!("{image_id} {class_id}\n"));
            split_txt.push_str(&format!("{image_id} {}\n", u8::from(is_train)));
            let mut rng = SplitMix64::for_key(spec.seed, &key);
            let n_caps = if spec.captions {
                spec.captions_per_image
            } else {
                0
            };
            let (img, captions) = shape_item(label, spec.image_size, n_caps, &mut rng);
            let image_path = dir.join("images").join(&key);
            write_jpeg(&image_path, &img)?;
            let caption_path = if spec.captions {
                let p = dir
                    .join("text_c10")
                    .join(Path::new(&key).with_extension("txt"));
                write_file(&p, &(captions.join("\n") + "\n"))?;
                Some(p)
            } else {
                None
            };
            out.push(FixtureSample {
                key,
                image_path,
                caption_path,
                class_id,
                class_name: class_name.clone(),
                captions,
                label,
                is_train_image: Some(is_train),
            });
        }
    }
    write_file(&dir.join("images.txt"), &images_txt)?;
    write_file(&dir.join("image_class_labels.txt"), &labels_txt)?;
    write_file(&dir.join("classes.txt"), &classes_txt)?;
    write_file(&dir.join("train_test_split.txt"), &split_txt)?;
    if spec.attributes {
        let n_rows = 1 + spec.n_classes.saturating_sub(1) * stride as usize;
        write_attribute_table(&dir.join("attributes"), n_rows.max(1), spec.seed)?;
    }
    Ok(out)
}

/// Writes a tiny Oxford-102 dataset in Reed's layout under `dir` (see [`super::oxford`]):
/// `jpg/image_NNNNN.jpg` and `text_c10/class_NNNNN/image_NNNNN.txt` with 10 captions each,
/// class ids `1..=n_classes`, images numbered in class order. Samples come back in the
/// reader's order.
pub fn write_oxford_fixture(
    dir: &Path,
    n_classes: usize,
    images_per_class: usize,
    image_size: u32,
    seed: u64,
) -> Result<Vec<FixtureSample>, DataError> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for ci in 0..n_classes {
        let class_id = ci as u32 + 1;
        let class_name = format!("class_{class_id:05}");
        let label = fixture_label(ci);
        for _ in 0..images_per_class {
            n += 1;
            let stem = format!("image_{n:05}");
            let key = format!("{stem}.jpg");
            let mut rng = SplitMix64::for_key(seed, &key);
            let (img, captions) = shape_item(label, image_size, 10, &mut rng);
            let image_path = dir.join("jpg").join(&key);
            write_jpeg(&image_path, &img)?;
            let caption_path = dir
                .join("text_c10")
                .join(&class_name)
                .join(format!("{stem}.txt"));
            write_file(&caption_path, &(captions.join("\n") + "\n"))?;
            out.push(FixtureSample {
                key,
                image_path,
                caption_path: Some(caption_path),
                class_id,
                class_name: class_name.clone(),
                captions,
                label,
                is_train_image: None,
            });
        }
    }
    Ok(out)
}

/// What [`write_coco_fixture`] wrote.
#[derive(Debug, Clone)]
pub struct CocoFixture {
    /// `dir/annotations/captions_train2014.json`.
    pub annotations: PathBuf,
    /// `dir/train2014`.
    pub image_dir: PathBuf,
    /// In `images` order.
    pub samples: Vec<FixtureSample>,
}

/// Writes a tiny COCO captions dataset under `dir` (see [`super::coco`]): `n_images` shape
/// images `train2014/COCO_train2014_<id>.jpg` with sparse ids and five captions each, the
/// annotations interleaved across images as in the real file, plus the `info`/`licenses`
/// fields the reader ignores.
pub fn write_coco_fixture(
    dir: &Path,
    n_images: usize,
    image_size: u32,
    seed: u64,
) -> Result<CocoFixture, DataError> {
    let image_dir = dir.join("train2014");
    let annotations = dir.join("annotations").join("captions_train2014.json");
    let mut images = Vec::new();
    let mut samples = Vec::new();
    for i in 0..n_images {
        let id = 9 + 7 * i as u64;
        let key = format!("COCO_train2014_{id:012}.jpg");
        let label = fixture_label(i);
        let mut rng = SplitMix64::for_key(seed, &key);
        let (img, captions) = shape_item(label, image_size, 5, &mut rng);
        let image_path = image_dir.join(&key);
        write_jpeg(&image_path, &img)?;
        images.push(serde_json::json!({
            "license": 1, "file_name": key, "height": image_size, "width": image_size, "id": id
        }));
        samples.push(FixtureSample {
            key,
            image_path,
            caption_path: None,
            class_id: 0,
            class_name: String::new(),
            captions,
            label,
            is_train_image: None,
        });
    }
    let mut anns = Vec::new();
    let mut ann_id = 100u64;
    for round in 0..5 {
        for (i, s) in samples.iter().enumerate() {
            ann_id += 1;
            anns.push(serde_json::json!({
                "image_id": 9 + 7 * i as u64, "id": ann_id, "caption": s.captions[round]
            }));
        }
    }
    let doc = serde_json::json!({
        "info": {"description": "t2i test fixture"},
        "licenses": [],
        "images": images,
        "annotations": anns,
    });
    write_file(&annotations, &doc.to_string())?;
    Ok(CocoFixture {
        annotations,
        image_dir,
        samples,
    })
}
