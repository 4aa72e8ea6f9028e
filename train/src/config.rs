//! TOML training configurations. Sections and keys mirror the authors' YAML configs (AttnGAN
//! `cfg/DAMSM/bird.yml`: `TRAIN.BATCH_SIZE` becomes `[train] batch_size`, `TRAIN.SMOOTH.GAMMA1`
//! becomes `[train.smooth] gamma1`), so a reader of the paper's code finds each number where
//! they expect it. Keys this project adds are marked as such. Unknown keys are errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `t2i train` for the DAMSM text and image encoders.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DamsmTrainConfig {
    /// Which model the config trains: `damsm` (added; selects the trainer).
    pub model: String,
    /// `CONFIG_NAME`: names the run.
    pub config_name: String,
    /// `DATASET_NAME`: `birds` (CUB layout), `flowers` (Oxford-102) or `coco`.
    pub dataset_name: String,
    /// `DATA_DIR`: the dataset root. Relative paths are taken from the config file's folder.
    pub data_dir: PathBuf,
    /// Where checkpoints, logs and the cache go (added). Relative to the config file's folder.
    pub output_dir: PathBuf,
    /// Drop images whose file or caption file is missing (counted and logged) instead of
    /// stopping with an error naming the file (added).
    #[serde(default)]
    pub skip_missing: bool,
    pub features: FeaturesSection,
    pub train: TrainSection,
    pub text: TextSection,
}

/// Frozen Inception features (added: the authors recompute them every step).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSection {
    /// The FID Inception-v3 safetensors file.
    pub inception: PathBuf,
    /// The feature cache directory (computed once, resumable).
    pub cache_dir: PathBuf,
    /// Images per Inception forward pass.
    #[serde(default = "default_feature_batch")]
    pub batch_size: usize,
    /// Skip unreadable images (counted and logged) instead of stopping.
    #[serde(default)]
    pub skip_bad_images: bool,
}

fn default_feature_batch() -> usize {
    16
}

/// `TRAIN` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// `TRAIN.BATCH_SIZE` (48 in the paper).
    pub batch_size: usize,
    /// `TRAIN.MAX_EPOCH` (600 in the paper).
    pub max_epoch: usize,
    /// `TRAIN.SNAPSHOT_INTERVAL`, in epochs (50 in the paper).
    pub snapshot_interval: usize,
    /// `TRAIN.ENCODER_LR` (0.002); multiplied by 0.98 after each epoch down to a tenth of it.
    pub encoder_lr: f64,
    /// `TRAIN.RNN_GRAD_CLIP` (0.25): gradient norm clip of the text encoder's parameters.
    pub rnn_grad_clip: f64,
    /// Random seed of shuffling, caption choice and dropout (added).
    #[serde(default)]
    pub seed: u64,
    /// Species held out of training for evaluation (added; 20 of CUB-100's 100).
    #[serde(default = "default_heldout")]
    pub heldout_species: usize,
    /// Also write a checkpoint every this many steps, 0 for never (added, for slow CPU runs).
    #[serde(default)]
    pub checkpoint_steps: usize,
    /// `TRAIN.SMOOTH`.
    pub smooth: SmoothSection,
}

fn default_heldout() -> usize {
    20
}

/// `TRAIN.SMOOTH`: the DAMSM gammas.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmoothSection {
    pub gamma1: f32,
    pub gamma2: f32,
    pub gamma3: f32,
}

/// `TEXT` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    /// `TEXT.EMBEDDING_DIM`: the joint feature size D (256).
    pub embedding_dim: usize,
    /// `TEXT.CAPTIONS_PER_IMAGE` (10).
    pub captions_per_image: usize,
    /// `TEXT.WORDS_NUM` (18).
    pub words_num: usize,
    /// Word embedding width (300; the authors' `ninput`, not in their YAML).
    #[serde(default = "default_word_dim")]
    pub word_embedding_dim: usize,
}

fn default_word_dim() -> usize {
    300
}

impl DamsmTrainConfig {
    /// Reads a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut config: Self =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.output_dir,
            &mut config.features.inception,
            &mut config.features.cache_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config
            .validate()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(config)
    }

    /// Rejects values no training could run with.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.batch_size < 2 {
            bail!(
                "train.batch_size must be at least 2 (the loss contrasts pairs), got {}",
                t.batch_size
            );
        }
        if t.max_epoch == 0 {
            bail!("train.max_epoch must be positive");
        }
        if !(t.encoder_lr.is_finite() && t.encoder_lr > 0.0) {
            bail!(
                "train.encoder_lr must be a positive number, got {}",
                t.encoder_lr
            );
        }
        if !(t.rnn_grad_clip.is_finite() && t.rnn_grad_clip > 0.0) {
            bail!(
                "train.rnn_grad_clip must be a positive number, got {}",
                t.rnn_grad_clip
            );
        }
        if self.text.embedding_dim == 0 || !self.text.embedding_dim.is_multiple_of(2) {
            bail!(
                "text.embedding_dim must be even and positive (two LSTM directions), got {}",
                self.text.embedding_dim
            );
        }
        if self.text.words_num != t2i::vocab::WORDS_NUM {
            bail!(
                "text.words_num must be {} in this build, got {}",
                t2i::vocab::WORDS_NUM,
                self.text.words_num
            );
        }
        if self.text.captions_per_image == 0 {
            bail!("text.captions_per_image must be positive");
        }
        if !["birds", "flowers", "coco"].contains(&self.dataset_name.as_str()) {
            bail!(
                "dataset_name must be birds, flowers or coco, got {:?}",
                self.dataset_name
            );
        }
        Ok(())
    }
}
