//! The prepared training set of the 64 px GANs, built once per dataset and text encoder: every
//! training image resized to the crop's load size (shorter side 76) and stored as JPEG, and the
//! frozen text encoder's sentence embedding of each of its captions. Training then only decodes,
//! crops and flips. One safetensors file, small enough to carry to a GPU machine.
//!
//! | tensor | dtype | shape |
//! |---|---|---|
//! | `jpeg` | U8 | all images' JPEG bytes, concatenated |
//! | `jpeg_offsets` | I64 | `[N + 1]` |
//! | `class_ids` | I64 | `[N]` |
//! | `embeddings` | F16 | `[captions, D]`, image `i`'s from `caption_offsets[i]` |
//! | `caption_offsets` | I64 | `[N + 1]` |
//! | `tokens` | U32 | every caption's token ids, concatenated (captions in `embeddings` order) |
//! | `token_offsets` | I64 | `[captions + 1]`: caption `c`'s ids are `tokens[token_offsets[c]..token_offsets[c + 1]]` |
//!
//! The token ids (the vocabulary's, at most [`t2i::vocab::WORDS_NUM`] per caption, as the
//! embeddings were computed from) are what AttnGAN's text encoder reads every step. Sets
//! written before they were stored have no `tokens`; they still load (`tokens` is `None`) and
//! serve GAN-INT-CLS and StackGAN, while AttnGAN refuses them.
//!
//! Metadata `t2i.prepared` (JSON, [`PreparedInfo`]) names the dataset, the split, the text
//! encoder's checksum and the held-out captions that sample grids and evaluation use.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use half::f16;
use image::RgbImage;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize};
use serde::{Deserialize, Serialize};
use t2i::damsm::TextEncoder;
use t2i::vocab::Vocabulary;

use crate::config::GanTrainConfig;
use crate::damsm::commands::load_text_side;
use crate::data::gan_set::{GanSet, sentence_embeddings};
use crate::data::preprocess::{load_rgb, load_size, resize_shorter_side};
use crate::data::{Dataset, load_dataset_named, species_split};
use crate::run::checkpoint::write_atomic;
use crate::run::log::progress_bar;

const FILE: &str = "gan_set.safetensors";
const KEY_INFO: &str = "t2i.prepared";
const JPEG_QUALITY: u8 = 92;

/// What a prepared set was built from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreparedInfo {
    pub dataset: String,
    pub images: usize,
    pub load_size: u32,
    pub heldout_species: usize,
    /// `t2i.sha256` of the text encoder bundle whose embeddings these are.
    pub text_encoder_sha256: String,
    pub text_dim: usize,
    /// Held-out-species captions (one per image, spread over the species) with their
    /// embeddings: fixed inputs of sample grids.
    pub sample_captions: Vec<String>,
    pub sample_embeddings: Vec<f32>,
}

impl PreparedInfo {
    /// The crop size the images were stored for (`load_size` is 76/64 of it).
    pub fn image_size(&self) -> u32 {
        self.load_size * 64 / 76
    }

    /// The line a training run starts with: the set, and where its text comes from.
    pub fn summary(&self, text_encoder: &Path) -> String {
        format!(
            "{}: {} training images at {} px, {} species kept out; text from {} ({} values)",
            self.dataset,
            self.images,
            self.image_size(),
            self.heldout_species,
            text_encoder.display(),
            self.text_dim
        )
    }
}

/// A prepared set in memory.
pub struct PreparedSet {
    pub info: PreparedInfo,
    pub images: Vec<RgbImage>,
    pub class_ids: Vec<u32>,
    /// Per image, its caption embeddings concatenated.
    pub embeddings: Vec<Vec<f32>>,
    /// Per image, per caption: the token ids the embedding was computed from. `None` for a
    /// set written before tokens were stored.
    pub tokens: Option<Vec<Vec<Vec<u32>>>>,
}

impl PreparedSet {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The set in memory, as every family's training step reads it.
    pub fn into_gan_set(self) -> (GanSet, PreparedInfo) {
        let dim = self.info.text_dim;
        let size = self.info.image_size();
        let set = match self.tokens {
            Some(tokens) => GanSet::with_tokens(
                size,
                self.images,
                self.class_ids,
                self.embeddings,
                tokens,
                dim,
            ),
            None => GanSet::new(size, self.images, self.class_ids, self.embeddings, dim),
        };
        (set, self.info)
    }

    /// Builds the set from the training species' images of `dataset` (every image of a species
    /// not held out) and writes it to `dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        dataset: &Dataset,
        heldout_species: usize,
        encoder: &TextEncoder,
        vocabulary: &Vocabulary,
        text_encoder_sha256: &str,
        sample_count: usize,
        image_size: u32,
        dir: &Path,
        device: &Device,
    ) -> Result<Self> {
        let (train, heldout) = species_split(dataset, heldout_species);
        if train.is_empty() {
            bail!("{}: no training images after the split", dataset.name);
        }
        let size = load_size(image_size);
        let bar = progress_bar(true, train.len() as u64, 0);
        bar.set_message("resizing and encoding images");
        let mut jpeg = Vec::new();
        let mut jpeg_offsets = vec![0i64];
        let mut images = Vec::with_capacity(train.len());
        for &i in &train {
            let sample = &dataset.samples[i];
            let image = resize_shorter_side(&load_rgb(&sample.image_path)?, size);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
                .encode_image(&image)
                .with_context(|| format!("cannot encode {}", sample.image_path.display()))?;
            // Train on what is stored, so a set read back from disk gives the same run.
            images.push(decode(&bytes, &sample.key)?);
            jpeg.extend_from_slice(&bytes);
            jpeg_offsets.push(jpeg.len() as i64);
            bar.inc(1);
        }
        bar.finish_and_clear();
        eprintln!("embedding the captions of {} images", train.len());
        let mut embeddings = Vec::with_capacity(train.len());
        let mut tokens = Vec::with_capacity(train.len());
        let mut text_dim = 0;
        for chunk in train.chunks(256) {
            let captions: Vec<&str> = chunk
                .iter()
                .flat_map(|&i| dataset.samples[i].captions.iter().map(String::as_str))
                .collect();
            let mut vectors = sentence_embeddings(encoder, vocabulary, &captions, device)
                .into_iter()
                .zip(captions.iter().map(|c| vocabulary.encode(c).tokens));
            for &i in chunk {
                let (mut row, mut row_tokens) = (Vec::new(), Vec::new());
                for _ in &dataset.samples[i].captions {
                    // Captions without a known word have no embedding and are left out.
                    if let Some((Some(v), ids)) = vectors.next() {
                        text_dim = v.len();
                        row.extend(v);
                        row_tokens.push(ids);
                    }
                }
                embeddings.push(row);
                tokens.push(row_tokens);
            }
        }
        // Quantize to what is stored, for the same reason as the images.
        let embeddings: Vec<Vec<f32>> = embeddings
            .into_iter()
            .map(|row| row.into_iter().map(|v| f16::from_f32(v).to_f32()).collect())
            .collect();
        let step = (heldout.len() / sample_count.max(1)).max(1);
        let picks: Vec<&str> = heldout
            .iter()
            .step_by(step)
            .take(sample_count)
            .filter_map(|&i| dataset.samples[i].captions.first().map(String::as_str))
            .collect();
        let mut sample_captions = Vec::new();
        let mut sample_vectors = Vec::new();
        for (caption, vector) in picks
            .iter()
            .zip(sentence_embeddings(encoder, vocabulary, &picks, device))
        {
            if let Some(v) = vector {
                sample_captions.push(caption.to_string());
                sample_vectors.extend(v);
            }
        }
        let set = PreparedSet {
            info: PreparedInfo {
                dataset: dataset.name.clone(),
                images: train.len(),
                load_size: size,
                heldout_species,
                text_encoder_sha256: text_encoder_sha256.to_string(),
                text_dim,
                sample_captions,
                sample_embeddings: sample_vectors,
            },
            images,
            class_ids: train.iter().map(|&i| dataset.samples[i].class_id).collect(),
            embeddings,
            tokens: Some(tokens),
        };
        let caption_offsets = offsets(set.embeddings.iter().map(|e| e.len() / text_dim.max(1)));
        let halves: Vec<u8> = set
            .embeddings
            .iter()
            .flatten()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let class_bytes = i64_bytes(set.class_ids.iter().map(|&c| c as i64));
        let jpeg_offset_bytes = i64_bytes(jpeg_offsets.iter().copied());
        let caption_offset_bytes = i64_bytes(caption_offsets.iter().copied());
        let n = set.images.len();
        let total_captions = *caption_offsets.last().unwrap_or(&0) as usize;
        let all_tokens: Vec<&Vec<u32>> = set.tokens.iter().flatten().flatten().collect();
        let token_bytes: Vec<u8> = all_tokens
            .iter()
            .flat_map(|t| t.iter().flat_map(|id| id.to_le_bytes()))
            .collect();
        let token_offset_bytes = i64_bytes(offsets(all_tokens.iter().map(|t| t.len())).into_iter());
        let views = vec![
            ("jpeg", TensorView::new(Dtype::U8, vec![jpeg.len()], &jpeg)?),
            (
                "jpeg_offsets",
                TensorView::new(Dtype::I64, vec![n + 1], &jpeg_offset_bytes)?,
            ),
            (
                "class_ids",
                TensorView::new(Dtype::I64, vec![n], &class_bytes)?,
            ),
            (
                "embeddings",
                TensorView::new(Dtype::F16, vec![total_captions, text_dim], &halves)?,
            ),
            (
                "caption_offsets",
                TensorView::new(Dtype::I64, vec![n + 1], &caption_offset_bytes)?,
            ),
            (
                "tokens",
                TensorView::new(Dtype::U32, vec![token_bytes.len() / 4], &token_bytes)?,
            ),
            (
                "token_offsets",
                TensorView::new(Dtype::I64, vec![total_captions + 1], &token_offset_bytes)?,
            ),
        ];
        let metadata = HashMap::from([(KEY_INFO.to_string(), serde_json::to_string(&set.info)?)]);
        let bytes = serialize(views, Some(metadata))?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomic(&Self::path(dir), &bytes)?;
        eprintln!(
            "prepared set written: {} ({} images, {} captions, {:.1} MB)",
            Self::path(dir).display(),
            n,
            total_captions,
            bytes.len() as f64 / 1e6
        );
        Ok(set)
    }

    /// Reads a prepared set; errors name the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("invalid prepared set {}", path.display()))
    }

    fn parse(bytes: &[u8]) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let info: PreparedInfo = serde_json::from_str(
            header
                .metadata()
                .as_ref()
                .and_then(|m| m.get(KEY_INFO))
                .context("no t2i.prepared metadata")?,
        )?;
        let tensors = SafeTensors::deserialize(bytes)?;
        let get = |name: &str, dtype: Dtype| -> Result<Vec<u8>> {
            let view = tensors
                .tensor(name)
                .with_context(|| format!("no tensor {name:?}"))?;
            if view.dtype() != dtype {
                bail!("tensor {name:?} is {:?}, expected {dtype:?}", view.dtype());
            }
            Ok(view.data().to_vec())
        };
        let jpeg = get("jpeg", Dtype::U8)?;
        let jpeg_offsets = read_i64(&get("jpeg_offsets", Dtype::I64)?);
        let class_ids = read_i64(&get("class_ids", Dtype::I64)?);
        let caption_offsets = read_i64(&get("caption_offsets", Dtype::I64)?);
        let halves = get("embeddings", Dtype::F16)?;
        // Absent from sets written before AttnGAN needed them.
        let has_tokens = tensors.names().contains(&"tokens");
        let token_table = if has_tokens {
            let ids: Vec<u32> = get("tokens", Dtype::U32)?
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("chunks of 4")))
                .collect();
            Some((ids, read_i64(&get("token_offsets", Dtype::I64)?)))
        } else {
            None
        };
        let n = class_ids.len();
        let dim = info.text_dim;
        if jpeg_offsets.len() != n + 1 || caption_offsets.len() != n + 1 || dim == 0 {
            bail!("offset tables do not match {n} images");
        }
        let values: Vec<f32> = halves
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        let total_captions = caption_offsets.last().copied().unwrap_or(0).max(0) as usize;
        if let Some((_, token_offsets)) = &token_table
            && token_offsets.len() != total_captions + 1
        {
            bail!(
                "token_offsets has {} entries for {total_captions} captions",
                token_offsets.len()
            );
        }
        let mut images = Vec::with_capacity(n);
        let mut embeddings = Vec::with_capacity(n);
        let mut tokens = token_table.as_ref().map(|_| Vec::with_capacity(n));
        for i in 0..n {
            let (a, b) = (jpeg_offsets[i], jpeg_offsets[i + 1]);
            if a < 0 || b < a || b as usize > jpeg.len() {
                bail!("image {i}: JPEG offsets {a}..{b} outside the data");
            }
            images.push(decode(
                &jpeg[a as usize..b as usize],
                &format!("image {i}"),
            )?);
            let (a, b) = (caption_offsets[i], caption_offsets[i + 1]);
            if a < 0 || b < a || b as usize * dim > values.len() {
                bail!("image {i}: caption offsets {a}..{b} outside the embeddings");
            }
            embeddings.push(values[a as usize * dim..b as usize * dim].to_vec());
            if let (Some(tokens), Some((ids, token_offsets))) = (tokens.as_mut(), &token_table) {
                if b as usize >= token_offsets.len() {
                    bail!("image {i}: caption offsets {a}..{b} outside the token offsets");
                }
                let mut row = Vec::new();
                for c in a as usize..b as usize {
                    let (x, y) = (token_offsets[c], token_offsets[c + 1]);
                    if x < 0 || y < x || y as usize > ids.len() {
                        bail!("caption {c}: token offsets {x}..{y} outside the tokens");
                    }
                    row.push(ids[x as usize..y as usize].to_vec());
                }
                tokens.push(row);
            }
        }
        Ok(PreparedSet {
            info,
            images,
            class_ids: class_ids.into_iter().map(|c| c as u32).collect(),
            embeddings,
            tokens,
        })
    }
}

fn decode(bytes: &[u8], what: &str) -> Result<RgbImage> {
    Ok(image::load(Cursor::new(bytes), image::ImageFormat::Jpeg)
        .with_context(|| format!("cannot decode the JPEG of {what}"))?
        .to_rgb8())
}

fn offsets(counts: impl Iterator<Item = usize>) -> Vec<i64> {
    let mut out = vec![0i64];
    for c in counts {
        out.push(out.last().copied().unwrap_or(0) + c as i64);
    }
    out
}

fn i64_bytes(values: impl Iterator<Item = i64>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

fn read_i64(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("chunks of 8")))
        .collect()
}

/// The dataset a GAN config names.
pub fn load_dataset(config: &GanTrainConfig) -> Result<crate::data::Dataset> {
    load_dataset_named(
        &config.dataset_name,
        &config.data_dir,
        config.captions_per_image,
        config.train.seed,
        config.skip_missing,
    )
}

/// [`prepare`] for `image_size` crops in `dir` (StackGAN's Stage-II trains on 256 px).
pub fn prepare_at(
    config: &GanTrainConfig,
    dir: &Path,
    image_size: u32,
    device: &Device,
) -> Result<PreparedSet> {
    let (text, sha) = load_text_side(&config.text_encoder, device)?;
    let (encoder, vocabulary) = (text.encoder, text.vocabulary);
    if PreparedSet::path(dir).exists() {
        let set = PreparedSet::load(dir)?;
        if set.info.image_size() != image_size {
            bail!(
                "{} holds {} px crops, {image_size} px are needed: use another prepared_dir",
                PreparedSet::path(dir).display(),
                set.info.image_size()
            );
        }
        if set.info.text_encoder_sha256 != sha {
            bail!(
                "{} was prepared with another text encoder than {}: delete it to rebuild",
                PreparedSet::path(dir).display(),
                config.text_encoder.display()
            );
        }
        if set.info.heldout_species != config.train.heldout_species {
            bail!(
                "{} holds out {} species, the config {}: delete it to rebuild",
                PreparedSet::path(dir).display(),
                set.info.heldout_species,
                config.train.heldout_species
            );
        }
        return Ok(set);
    }
    let dataset = load_dataset(config)?;
    PreparedSet::build(
        &dataset,
        config.train.heldout_species,
        &encoder,
        &vocabulary,
        &sha,
        64,
        image_size,
        dir,
        device,
    )
}

/// The prepared set of a config: read from `prepared_dir`, or built (and written) when missing.
/// A set built with another text encoder is refused.
pub fn prepare(config: &GanTrainConfig, device: &Device) -> Result<PreparedSet> {
    prepare_at(config, &config.prepared_dir, IMAGE_SIZE, device)
}

/// The crops of a config's prepared set: GAN-INT-CLS's output size, and StackGAN's Stage-I's.
pub const IMAGE_SIZE: u32 = 64;
