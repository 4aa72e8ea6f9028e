//! The frozen-Inception feature cache.
//!
//! The DAMSM image encoder and the FID need, per real image, Inception-v3's `pool3` (2048) and
//! `mixed_7` (Mixed_6e, 768 x 17 x 17) features. They never change, so they are computed once
//! and stored in a directory:
//!
//! ```text
//! <dir>/index.json               {"version": 1, "shards": [{"file": "...", "keys": [...]}, ...]}
//! <dir>/shard-00000.safetensors  pool3 [n, 2048] f16, mixed_7 [n, 768, 17, 17] f16
//! <dir>/shard-00001.safetensors  ...
//! ```
//!
//! Rows of a shard are in the order of its keys in the index; the cache's key order is the shards'
//! order. [`FeatureCache::build`] is resumable: it computes only keys not yet in the index, writes
//! each shard to a temporary file that is renamed into place, and only then rewrites the index
//! (also through a rename), so an interrupted build loses at most the shard in progress.
//!
//! In memory ([`CachedFeatures`]) the features stay f16 (the full CUB set is ~2.6 GB of
//! `mixed_7`) and are converted to f32 per minibatch by [`CachedFeatures::batch`].

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use half::f16;
use image::RgbImage;
use image::imageops::{self, FilterType};
use indicatif::{ProgressBar, ProgressStyle};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use t2i::inception::{INPUT_SIZE, Inception, MIXED_7_CHANNELS, MIXED_7_SIZE, POOL3_DIM};

use crate::data::preprocess::{load_rgb, to_chw_normalized};

/// Images per shard: ~115 MB of f16 features, about a minute of CPU inference.
pub const SHARD_SIZE: usize = 256;

/// Values per image in `mixed_7`.
pub const MIXED_7_LEN: usize = MIXED_7_CHANNELS * MIXED_7_SIZE * MIXED_7_SIZE;

const INDEX_FILE: &str = "index.json";
const INDEX_VERSION: u32 = 1;

/// Inception's input for one image: resized to 299 x 299 with bilinear filtering (`image`'s
/// `Triangle`, antialiased like PIL's bilinear when downsampling), channels first (CHW), each
/// pixel `p` scaled as `p / 127.5 - 1`. Length `3 * 299 * 299`.
pub fn inception_input(img: &RgbImage) -> Vec<f32> {
    let size = INPUT_SIZE as u32;
    let resized;
    let img = if img.dimensions() == (size, size) {
        img
    } else {
        resized = imageops::resize(img, size, size, FilterType::Triangle);
        &resized
    };
    to_chw_normalized(img)
}

/// Decodes an image file (format guessed from its content) and prepares it with
/// [`inception_input`]. Errors name the path.
pub fn inception_input_from_file(path: &Path) -> anyhow::Result<Vec<f32>> {
    Ok(inception_input(&load_rgb(path)?))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    shards: Vec<ShardEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardEntry {
    /// File name inside the cache directory.
    file: String,
    /// Image keys, one per row.
    keys: Vec<String>,
}

/// What a [`FeatureCache::build`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Images run through Inception in this call.
    pub computed: usize,
    /// Items whose key was already in the cache (or repeated in `items`).
    pub already_cached: usize,
    /// Images that could not be read and were skipped (`skip_bad_images`): key, path, reason.
    pub skipped: Vec<(String, PathBuf, String)>,
    /// Shards written in this call.
    pub shards_written: usize,
}

/// A feature cache directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    index: Index,
}

impl FeatureCache {
    /// Opens an existing cache. An absent index is an error; see [`FeatureCache::open_or_empty`].
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(INDEX_FILE);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("cannot read feature cache index {}", path.display()))?;
        let index: Index = serde_json::from_str(&text)
            .with_context(|| format!("corrupt feature cache index {}", path.display()))?;
        ensure!(
            index.version == INDEX_VERSION,
            "{}: unsupported feature cache version {} (expected {INDEX_VERSION})",
            path.display(),
            index.version
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            index,
        })
    }

    /// Opens the cache in `dir`, or an empty one if `dir` has no index yet.
    pub fn open_or_empty(dir: &Path) -> anyhow::Result<Self> {
        if dir.join(INDEX_FILE).exists() {
            Self::open(dir)
        } else {
            Ok(Self {
                dir: dir.to_path_buf(),
                index: Index {
                    version: INDEX_VERSION,
                    shards: Vec::new(),
                },
            })
        }
    }

    /// Computes the features of the `items` (key, image path) not yet in the cache in `dir`
    /// and adds them, `batch_size` images per Inception forward. A missing or corrupt image is
    /// an error naming its path, unless `skip_bad_images`: then it is logged (stderr), counted
    /// in the report and left out. Rerunning after an interruption continues after the last
    /// completed shard.
    pub fn build(
        dir: &Path,
        items: &[(String, PathBuf)],
        inception: &Inception,
        device: &Device,
        batch_size: usize,
        skip_bad_images: bool,
    ) -> anyhow::Result<(Self, BuildReport)> {
        ensure!(batch_size > 0, "batch size must be positive");
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create feature cache directory {}", dir.display()))?;
        let mut cache = Self::open_or_empty(dir)?;
        let mut report = BuildReport::default();

        let mut seen: HashSet<&str> = cache.keys().collect();
        let mut todo: Vec<&(String, PathBuf)> = Vec::new();
        for item in items {
            if seen.insert(item.0.as_str()) {
                todo.push(item);
            } else {
                report.already_cached += 1;
            }
        }
        if todo.is_empty() {
            return Ok((cache, report));
        }

        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "inception features {bar:30} {pos}/{len} {per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        let started = Instant::now();

        let mut shard = ShardBuffer::default();
        let mut next = todo.into_iter();
        loop {
            // Gather a batch of readable images, never crossing a shard boundary.
            let want = batch_size.min(SHARD_SIZE - shard.keys.len());
            let mut keys = Vec::with_capacity(want);
            let mut pixels = Vec::with_capacity(want * 3 * INPUT_SIZE * INPUT_SIZE);
            while keys.len() < want {
                let Some((key, path)) = next.next() else {
                    break;
                };
                match inception_input_from_file(path) {
                    Ok(x) => {
                        pixels.extend_from_slice(&x);
                        keys.push(key.clone());
                    }
                    Err(e) if skip_bad_images => {
                        bar.suspend(|| eprintln!("skipping {key}: {e:#}"));
                        report
                            .skipped
                            .push((key.clone(), path.clone(), format!("{e:#}")));
                        bar.inc(1);
                    }
                    Err(e) => {
                        bar.abandon();
                        return Err(e.context(format!(
                            "feature cache: bad image {} (key `{key}`)",
                            path.display()
                        )));
                    }
                }
            }
            let done = keys.len() < want;

            if !keys.is_empty() {
                let n = keys.len();
                let x = Tensor::<4>::from_data(
                    TensorData::new(pixels, [n, 3, INPUT_SIZE, INPUT_SIZE]),
                    device,
                );
                let features = inception.forward(x);
                shard.pool3.extend(to_f16(features.pool3.into_data())?);
                shard.mixed_7.extend(to_f16(features.mixed_7.into_data())?);
                shard.keys.extend(keys);
                report.computed += n;
                bar.inc(n as u64);
            }

            if shard.keys.len() == SHARD_SIZE || (done && !shard.keys.is_empty()) {
                cache.commit_shard(std::mem::take(&mut shard))?;
                report.shards_written += 1;
            }
            if done {
                break;
            }
        }
        bar.finish_and_clear();
        if report.computed > 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "inception features: {} images in {secs:.1} s ({:.2} images/s), {} skipped, cache {}",
                report.computed,
                report.computed as f64 / secs,
                report.skipped.len(),
                dir.display()
            );
        }
        Ok((cache, report))
    }

    /// The directory of the cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of cached images.
    pub fn len(&self) -> usize {
        self.index.shards.iter().map(|s| s.keys.len()).sum()
    }

    /// Whether the cache holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached keys, in row order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index
            .shards
            .iter()
            .flat_map(|s| s.keys.iter().map(String::as_str))
    }

    /// Whether `key` is cached.
    pub fn contains(&self, key: &str) -> bool {
        self.keys().any(|k| k == key)
    }

    /// Loads every row, `pool3` and `mixed_7`, into memory (f16).
    pub fn load_all(&self) -> anyhow::Result<CachedFeatures> {
        self.load(true)
    }

    /// Loads every row's `pool3` only (for the FID, or a classifier on pool3); the result's
    /// `mixed_7` is empty.
    pub fn load_pool3(&self) -> anyhow::Result<CachedFeatures> {
        self.load(false)
    }

    fn load(&self, with_mixed_7: bool) -> anyhow::Result<CachedFeatures> {
        let n = self.len();
        let mut keys = Vec::with_capacity(n);
        let mut pool3 = Vec::with_capacity(n * POOL3_DIM);
        let mut mixed_7 = Vec::with_capacity(if with_mixed_7 { n * MIXED_7_LEN } else { 0 });
        for entry in &self.index.shards {
            let path = self.dir.join(&entry.file);
            let bytes = fs::read(&path)
                .with_context(|| format!("cannot read feature shard {}", path.display()))?;
            let st = SafeTensors::deserialize(&bytes)
                .with_context(|| format!("corrupt feature shard {}", path.display()))?;
            let rows = entry.keys.len();
            read_f16(&st, &path, "pool3", &[rows, POOL3_DIM], &mut pool3)?;
            if with_mixed_7 {
                let shape = [rows, MIXED_7_CHANNELS, MIXED_7_SIZE, MIXED_7_SIZE];
                read_f16(&st, &path, "mixed_7", &shape, &mut mixed_7)?;
            }
            keys.extend(entry.keys.iter().cloned());
        }
        let rows = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Ok(CachedFeatures {
            keys,
            rows,
            pool3,
            mixed_7,
        })
    }

    /// Writes a shard (temporary file, then rename) and then the index with it (same).
    fn commit_shard(&mut self, shard: ShardBuffer) -> anyhow::Result<()> {
        let n = shard.keys.len();
        let file = format!("shard-{:05}.safetensors", self.index.shards.len());
        let pool3 = f16_bytes(&shard.pool3);
        let mixed_7 = f16_bytes(&shard.mixed_7);
        let tensors = [
            (
                "pool3",
                safetensors::tensor::TensorView::new(Dtype::F16, vec![n, POOL3_DIM], &pool3)?,
            ),
            (
                "mixed_7",
                safetensors::tensor::TensorView::new(
                    Dtype::F16,
                    vec![n, MIXED_7_CHANNELS, MIXED_7_SIZE, MIXED_7_SIZE],
                    &mixed_7,
                )?,
            ),
        ];
        // The keys travel in the shard's metadata too, so a lost index can be rebuilt by hand.
        let metadata = HashMap::from([("keys".to_string(), serde_json::to_string(&shard.keys)?)]);
        let bytes = safetensors::serialize(tensors, Some(metadata))?;
        write_atomically(&self.dir.join(&file), &bytes)?;

        let mut index = self.index.clone();
        index.shards.push(ShardEntry {
            file,
            keys: shard.keys,
        });
        write_atomically(
            &self.dir.join(INDEX_FILE),
            serde_json::to_string_pretty(&index)?.as_bytes(),
        )?;
        self.index = index;
        Ok(())
    }
}

#[derive(Default)]
struct ShardBuffer {
    keys: Vec<String>,
    pool3: Vec<f16>,
    mixed_7: Vec<f16>,
}

/// Cached features in memory, f16, rows in the cache's key order.
#[derive(Debug, Clone)]
pub struct CachedFeatures {
    /// Image keys, one per row.
    pub keys: Vec<String>,
    rows: HashMap<String, usize>,
    /// `[n, 2048]`, row-major.
    pub pool3: Vec<f16>,
    /// `[n, 768, 17, 17]`, row-major; empty when loaded by [`FeatureCache::load_pool3`].
    pub mixed_7: Vec<f16>,
}

impl CachedFeatures {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The row of `key`.
    pub fn row(&self, key: &str) -> Option<usize> {
        self.rows.get(key).copied()
    }

    /// Whether `mixed_7` was loaded.
    pub fn has_mixed_7(&self) -> bool {
        !self.keys.is_empty() && self.mixed_7.len() == self.keys.len() * MIXED_7_LEN
    }

    /// `pool3` of the given rows as f32, `rows.len() * 2048` values.
    pub fn pool3_rows(&self, rows: &[usize]) -> Vec<f32> {
        gather(&self.pool3, POOL3_DIM, rows)
    }

    /// `mixed_7` of the given rows as f32, `rows.len() * 768 * 17 * 17` values. Panics if
    /// `mixed_7` was not loaded.
    pub fn mixed_7_rows(&self, rows: &[usize]) -> Vec<f32> {
        assert!(
            self.has_mixed_7(),
            "mixed_7 was not loaded (FeatureCache::load_pool3)"
        );
        gather(&self.mixed_7, MIXED_7_LEN, rows)
    }

    /// A minibatch on `device`: `mixed_7` `[B, 768, 17, 17]` and `pool3` `[B, 2048]`, f32.
    /// Panics if a row is out of range or `mixed_7` was not loaded.
    pub fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<4>, Tensor<2>) {
        let b = rows.len();
        let mixed_7 = TensorData::new(
            self.mixed_7_rows(rows),
            [b, MIXED_7_CHANNELS, MIXED_7_SIZE, MIXED_7_SIZE],
        );
        (
            Tensor::from_data(mixed_7, device),
            self.pool3_batch(rows, device),
        )
    }

    /// `pool3` of the given rows on `device`, `[B, 2048]`, f32.
    pub fn pool3_batch(&self, rows: &[usize], device: &Device) -> Tensor<2> {
        let data = TensorData::new(self.pool3_rows(rows), [rows.len(), POOL3_DIM]);
        Tensor::from_data(data, device)
    }
}

fn gather(data: &[f16], width: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        out.extend(data[r * width..(r + 1) * width].iter().map(|v| v.to_f32()));
    }
    out
}

fn to_f16(data: TensorData) -> anyhow::Result<Vec<f16>> {
    let values = data
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read Inception output: {e:?}"))?;
    Ok(values.into_iter().map(f16::from_f32).collect())
}

fn f16_bytes(values: &[f16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_f16(
    st: &SafeTensors<'_>,
    path: &Path,
    name: &str,
    shape: &[usize],
    out: &mut Vec<f16>,
) -> anyhow::Result<()> {
    let view = st
        .tensor(name)
        .with_context(|| format!("feature shard {} lacks `{name}`", path.display()))?;
    if view.dtype() != Dtype::F16 || view.shape() != shape {
        bail!(
            "feature shard {}: `{name}` is {:?} {:?}, expected F16 {shape:?}",
            path.display(),
            view.dtype(),
            view.shape()
        );
    }
    out.extend(
        view.data()
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]])),
    );
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that `path` is either the old or the complete new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}
