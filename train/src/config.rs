//! TOML training configurations. Sections and keys mirror the authors' YAML configs (AttnGAN
//! `cfg/DAMSM/bird.yml`: `TRAIN.BATCH_SIZE` becomes `[train] batch_size`, `TRAIN.SMOOTH.GAMMA1`
//! becomes `[train.smooth] gamma1`), so a reader of the paper's code finds each number where
//! they expect it. Keys this project adds are marked as such. Unknown keys are errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::run::adversarial::RunOptions;
use crate::run::recipe::Recipe;

/// Parses a TOML config; errors name the file (and, from serde, the offending key).
fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
}

/// A training config as its file holds it.
pub trait ConfigFile: serde::de::DeserializeOwned {
    /// The paths it names, which a file gives relative to its own folder.
    fn paths(&mut self) -> Vec<&mut PathBuf>;
    /// Rejects values no training could run with.
    fn check(&self) -> Result<()>;

    /// Reads the config file at `path`, its paths taken relative to the file's folder, and
    /// checks it; errors name the file and the offending key.
    fn load(path: &Path) -> Result<Self> {
        let mut config: Self = read_toml(path)?;
        for p in config.paths() {
            relative_to_config(path, p);
        }
        config
            .check()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(config)
    }
}

impl ConfigFile for DamsmTrainConfig {
    fn paths(&mut self) -> Vec<&mut PathBuf> {
        vec![
            &mut self.data_dir,
            &mut self.output_dir,
            &mut self.features.inception,
            &mut self.features.cache_dir,
        ]
    }
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl ConfigFile for GanTrainConfig {
    fn paths(&mut self) -> Vec<&mut PathBuf> {
        let mut paths = vec![
            &mut self.data_dir,
            &mut self.output_dir,
            &mut self.text_encoder,
            &mut self.prepared_dir,
            &mut self.eval.inception,
            &mut self.eval.features_cache,
            &mut self.eval.damsm,
        ];
        paths.extend(self.stage2.as_mut().map(|s| &mut s.prepared_dir));
        paths
    }
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

/// `value` (of the key `key`) is a finite number above zero.
fn positive<T: Into<f64> + std::fmt::Display + Copy>(key: &str, value: T) -> Result<()> {
    let number: f64 = value.into();
    if !(number.is_finite() && number > 0.0) {
        bail!("{key} must be a positive number, got {value}");
    }
    Ok(())
}

/// `value` (of the key `key`) is a finite number, zero or above.
fn non_negative<T: Into<f64> + std::fmt::Display + Copy>(key: &str, value: T) -> Result<()> {
    let number: f64 = value.into();
    if !(number.is_finite() && number >= 0.0) {
        bail!("{key} must be zero or positive, got {value}");
    }
    Ok(())
}

/// The count `value` (of the key `key`) is at least one.
fn counts(key: &str, value: usize) -> Result<()> {
    if value == 0 {
        bail!("{key} must be positive");
    }
    Ok(())
}

/// `dataset_name` names a dataset the readers know.
fn dataset_name(name: &str) -> Result<()> {
    if !["birds", "flowers", "coco"].contains(&name) {
        bail!("dataset_name must be birds, flowers or coco, got {name:?}");
    }
    Ok(())
}

/// Paths in a config are relative to the config file's folder.
fn relative_to_config(config: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = config.parent().unwrap_or(Path::new(".")).join(&*path);
    }
}

/// A number as a serde default, written where it is used: `#[serde(default = "number::<16>")]`.
const fn number<const N: usize>() -> usize {
    N
}

/// AttnGAN's birds settings (`cfg/bird_attn2.yml`) that a config may leave out: `TREE.BRANCH_NUM`,
/// `GAN.R_NUM` (StackGAN's Stage-II too) and the side of Inception's input.
const BRANCH_NUM: usize = 3;
const R_NUM: usize = 2;
const DAMSM_IMAGE_SIZE: usize = 299;
/// Species held out of training for evaluation: 20 of CUB-100's 100.
const HELDOUT_SPECIES: usize = 20;

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
    #[serde(default = "number::<16>")]
    pub batch_size: usize,
    /// Skip unreadable images (counted and logged) instead of stopping.
    #[serde(default)]
    pub skip_bad_images: bool,
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
    #[serde(default = "number::<HELDOUT_SPECIES>")]
    pub heldout_species: usize,
    /// Also write a checkpoint every this many steps, 0 for never (added, for slow CPU runs).
    #[serde(default)]
    pub checkpoint_steps: usize,
    /// `TRAIN.SMOOTH`.
    pub smooth: SmoothSection,
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
    #[serde(default = "number::<300>")]
    pub word_embedding_dim: usize,
}

impl DamsmTrainConfig {
    /// Rejects values no training could run with.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.batch_size < 2 {
            bail!(
                "train.batch_size must be at least 2 (the loss contrasts pairs), got {}",
                t.batch_size
            );
        }
        counts("train.max_epoch", t.max_epoch)?;
        positive("train.encoder_lr", t.encoder_lr)?;
        positive("train.rnn_grad_clip", t.rnn_grad_clip)?;
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
        counts("text.captions_per_image", self.text.captions_per_image)?;
        dataset_name(&self.dataset_name)?;
        Ok(())
    }
}

/// The GAN family a config trains: its `model` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GanModel {
    /// GAN-INT-CLS (Reed et al. 2016).
    #[serde(rename = "gan_int_cls")]
    GanIntCls,
    /// StackGAN (Zhang et al. 2016).
    #[serde(rename = "stackgan")]
    StackGan,
    /// AttnGAN (Xu et al. 2017).
    #[serde(rename = "attngan")]
    AttnGan,
}

impl GanModel {
    /// The `model` key's value.
    pub fn key(self) -> &'static str {
        match self {
            GanModel::GanIntCls => "gan_int_cls",
            GanModel::StackGan => "stackgan",
            GanModel::AttnGan => "attngan",
        }
    }
}

impl std::fmt::Display for GanModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl std::str::FromStr for GanModel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [GanModel::GanIntCls, GanModel::StackGan, GanModel::AttnGan]
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| format!("model must be gan_int_cls, stackgan or attngan, got {s:?}"))
    }
}

/// `t2i train` for GAN-INT-CLS (Reed et al. 2016). Keys follow the authors' Torch options
/// (`main_cls_int.lua`: `ngf`, `ndf`, `nz`, `nt`, `lr`, `beta1`, `batchSize`, `niter`,
/// `lr_decay`, `decay_every`, `interp_weight`, `interp_type`) where they have one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanTrainConfig {
    /// `gan_int_cls`, `stackgan` or `attngan` (selects the family).
    pub model: GanModel,
    pub config_name: String,
    /// `birds` (CUB layout), `flowers` (Oxford-102) or `coco`.
    pub dataset_name: String,
    /// The dataset root. Relative paths are taken from the config file's folder.
    pub data_dir: PathBuf,
    /// Checkpoints, samples, metrics.
    pub output_dir: PathBuf,
    /// The DAMSM bundle whose frozen text encoder gives phi(t) (replaces the paper's
    /// char-CNN-RNN, which cannot be had).
    pub text_encoder: PathBuf,
    /// The prepared training set (images at load size as JPEG, caption embeddings), built once.
    pub prepared_dir: PathBuf,
    #[serde(default)]
    pub skip_missing: bool,
    /// Captions per image read from the dataset (10 for CUB).
    #[serde(default = "number::<10>")]
    pub captions_per_image: usize,
    pub gan: GanSection,
    pub train: GanTrainSection,
    /// StackGAN only: Stage-II's sizes and schedule ([`Stage2Section`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage2: Option<Stage2Section>,
    /// AttnGAN only: stages, residual blocks and the DAMSM term ([`AttnGanSection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attngan: Option<AttnGanSection>,
    /// How the networks are trained beyond their architecture (added; see
    /// [`crate::run::recipe`]): the papers' recipe when absent.
    #[serde(default)]
    pub recipe: Recipe,
    pub eval: GanEvalSection,
}

/// StackGAN's Stage-II (`[stage2]`): the authors' `birds_s2` keys where they have one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage2Section {
    /// Stage-II `GAN.GF_DIM` (128): the 16x16 map has 4 ngf channels.
    pub ngf: usize,
    /// Stage-II `GAN.DF_DIM` (64).
    pub ndf: usize,
    /// Residual blocks at 16x16 (`GAN.R_NUM`, 2).
    #[serde(default = "number::<R_NUM>")]
    pub r_num: usize,
    pub batch_size: usize,
    pub max_epoch: usize,
    /// The prepared set of 256 px crops (images stored at 304 px).
    pub prepared_dir: PathBuf,
}

/// AttnGAN's keys beyond `[gan]` (`[attngan]`), the authors' `cfg/bird_attn2.yml` names in
/// the comments. `[gan]` gives GF_DIM (ngf), DF_DIM (ndf), Z_DIM (nz) and CONDITION_DIM (nt);
/// `[train]` the batch, epochs, `lr` (GENERATOR_LR = DISCRIMINATOR_LR) and `kl_weight`. The
/// DAMSM term's networks are the `text_encoder` bundle's image encoder and `eval.inception`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttnGanSection {
    /// `TREE.BRANCH_NUM` (3): stages, 64, 128 and 256 px.
    #[serde(default = "number::<BRANCH_NUM>")]
    pub branch_num: usize,
    /// `GAN.R_NUM` (2): residual blocks in each later stage.
    #[serde(default = "number::<R_NUM>")]
    pub r_num: usize,
    /// `TRAIN.SMOOTH.LAMBDA` (5 for birds): weight of L_DAMSM; 0 trains without it.
    #[serde(default = "default_damsm_lambda")]
    pub damsm_lambda: f32,
    /// Add the DAMSM term every this many steps (added; 1 as the paper). See the README's
    /// "AttnGAN on a CPU".
    #[serde(default = "default_one")]
    pub damsm_every: u64,
    /// Side the 256 px images are resized to before Inception (added; 299 as the authors,
    /// 149 costs a CPU a third of it).
    #[serde(default = "number::<DAMSM_IMAGE_SIZE>")]
    pub damsm_image_size: usize,
    /// Mask padding words in the authors' (mismatched) order, for bit-exact comparison.
    #[serde(default)]
    pub authors_mask_order: bool,
}

fn default_damsm_lambda() -> f32 {
    5.0
}

fn default_one() -> u64 {
    1
}

/// Network sizes. For StackGAN: Stage-I's `GF_DIM` (ngf) and `DF_DIM` (ndf), `Z_DIM` (nz) and
/// the CA condition width `CONDITION_DIM` (nt).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanSection {
    /// `ngf` (128 in the paper; 32 trains on two CPU cores).
    pub ngf: usize,
    /// `ndf` (64 in the paper).
    pub ndf: usize,
    /// `nz`, the noise width (100).
    #[serde(default = "number::<100>")]
    pub nz: usize,
    /// `nt`, the compressed text width (128).
    #[serde(default = "number::<128>")]
    pub nt: usize,
    /// StackGAN and AttnGAN: factor on the sentence embedding before CA (added; see
    /// `t2i::stackgan::StackGanConfig::text_scale`, `t2i::attngan::AttnGanConfig::text_scale`).
    /// 1 is the authors' network.
    #[serde(default = "default_text_scale")]
    pub text_scale: f32,
}

fn default_text_scale() -> f32 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanTrainSection {
    /// `batchSize` (64).
    pub batch_size: usize,
    /// `niter`, epochs (600).
    pub max_epoch: usize,
    /// `lr` (0.0002), Adam with beta1 0.5.
    pub lr: f64,
    /// `decay_every`: halve the learning rate every this many epochs (100). GAN-INT-CLS and
    /// StackGAN need it; AttnGAN has none (the authors keep both rates constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_decay_every: Option<usize>,
    /// `interp_weight`: weight of the GAN-INT term (0 turns it off; GAN-INT-CLS only).
    #[serde(default)]
    pub interp_weight: f32,
    /// StackGAN: weight of the CA KL term (`TRAIN.COEFF.KL`: 1 in the paper, 2 in the
    /// authors' configs).
    #[serde(default = "default_kl_weight")]
    pub kl_weight: f32,
    /// Interpolation coefficient beta (0.5).
    #[serde(default = "default_beta")]
    pub beta: f32,
    /// Checkpoint every this many steps (added).
    pub checkpoint_steps: u64,
    /// Write a sample grid every this many steps (added).
    pub sample_steps: u64,
    #[serde(default)]
    pub seed: u64,
    /// Species held out of training for evaluation (added).
    #[serde(default = "number::<HELDOUT_SPECIES>")]
    pub heldout_species: usize,
}

impl GanTrainSection {
    /// The run's batch, length, checkpoints and seed, with a progress bar and no limits.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            checkpoint_steps: self.checkpoint_steps,
            progress: true,
            ..RunOptions::new(self.batch_size, self.max_epoch, self.seed)
        }
    }
}

fn default_beta() -> f32 {
    0.5
}

fn default_kl_weight() -> f32 {
    1.0
}

/// Evaluation: FID / Inception Score / R-precision on generated images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GanEvalSection {
    /// The FID Inception-v3 safetensors file.
    pub inception: PathBuf,
    /// The Inception feature cache of the dataset's real images (`t2i features` of the DAMSM
    /// config), for the real side of FID and the Inception Score head.
    pub features_cache: PathBuf,
    /// The DAMSM bundle used for R-precision (its image encoder and text encoder).
    pub damsm: PathBuf,
    /// Generated images per evaluation (one per held-out caption drawn, up to this many).
    #[serde(default = "number::<2000>")]
    pub samples: usize,
}

impl AttnGanSection {
    /// The authors' birds settings: three stages, two residual blocks, lambda 5 on every step
    /// at 299 px, their mask order off.
    pub fn birds() -> Self {
        Self {
            branch_num: BRANCH_NUM,
            r_num: R_NUM,
            damsm_lambda: default_damsm_lambda(),
            damsm_every: 1,
            damsm_image_size: DAMSM_IMAGE_SIZE,
            authors_mask_order: false,
        }
    }
}

impl GanTrainSection {
    /// Epochs between learning-rate halvings; never for AttnGAN (validated configs only).
    pub fn lr_decay_epochs(&self) -> usize {
        self.lr_decay_every.unwrap_or(usize::MAX)
    }
}

impl GanTrainConfig {
    /// Rejects values no training could run with: the keys every family reads, then the
    /// family's own.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.batch_size < 2 {
            bail!("train.batch_size must be at least 2, got {}", t.batch_size);
        }
        self.recipe.validate()?;
        counts("train.max_epoch", t.max_epoch)?;
        positive("train.lr", t.lr)?;
        non_negative("train.interp_weight", t.interp_weight)?;
        if !(0.0..=1.0).contains(&t.beta) {
            bail!("train.beta must lie in [0, 1], got {}", t.beta);
        }
        if self.gan.ngf < 4 || self.gan.ndf < 4 {
            bail!(
                "gan.ngf and gan.ndf must be at least 4, got {} and {}",
                self.gan.ngf,
                self.gan.ndf
            );
        }
        if self.gan.nz == 0 || self.gan.nt == 0 {
            bail!("gan.nz and gan.nt must be positive");
        }
        counts("captions_per_image", self.captions_per_image)?;
        dataset_name(&self.dataset_name)?;
        let model = self.model;
        if model != GanModel::AttnGan && self.attngan.is_some() {
            bail!("[attngan] is an AttnGAN section: model is {model}");
        }
        if model != GanModel::StackGan && self.stage2.is_some() {
            bail!("[stage2] is a StackGAN section: model is {model}");
        }
        if model == GanModel::GanIntCls && self.gan.text_scale != 1.0 {
            bail!("gan.text_scale is a StackGAN and AttnGAN key (CA's input): model is {model}");
        }
        positive("gan.text_scale", self.gan.text_scale)?;
        if model != GanModel::GanIntCls && !(t.kl_weight.is_finite() && t.kl_weight >= 0.0) {
            bail!(
                "train.kl_weight must be zero or positive, got {}",
                t.kl_weight
            );
        }
        match (model, t.lr_decay_every) {
            (GanModel::AttnGan, Some(_)) => bail!(
                "train.lr_decay_every: AttnGAN keeps its learning rates constant (as the authors); remove the key"
            ),
            (GanModel::AttnGan, None) => {}
            (_, None) => {
                bail!("train.lr_decay_every is missing (epochs between halvings, e.g. 100)")
            }
            (_, Some(0)) => bail!("train.lr_decay_every must be positive (epochs)"),
            _ => {}
        }
        match model {
            GanModel::GanIntCls => Ok(()),
            GanModel::StackGan => self.validate_stackgan(),
            GanModel::AttnGan => self.attngan_section().validate(),
        }
    }

    /// StackGAN's keys: `[stage2]`.
    fn validate_stackgan(&self) -> Result<()> {
        let Some(stage2) = &self.stage2 else {
            bail!("model = \"stackgan\" needs a [stage2] section");
        };
        if stage2.ngf < 4 || stage2.ndf == 0 {
            bail!(
                "stage2.ngf must be at least 4 and stage2.ndf positive, got {} and {}",
                stage2.ngf,
                stage2.ndf
            );
        }
        if stage2.batch_size < 2 || stage2.max_epoch == 0 {
            bail!("stage2.batch_size must be at least 2 and stage2.max_epoch positive");
        }
        Ok(())
    }

    /// The `[attngan]` section, or the authors' settings when it is absent.
    pub fn attngan_section(&self) -> AttnGanSection {
        self.attngan.clone().unwrap_or_else(AttnGanSection::birds)
    }
}

impl AttnGanSection {
    /// Rejects values no AttnGAN could train with.
    pub fn validate(&self) -> Result<()> {
        if !(1..=3).contains(&self.branch_num) {
            bail!(
                "attngan.branch_num must be 1, 2 or 3 (64, 128, 256 px), got {}",
                self.branch_num
            );
        }
        non_negative("attngan.damsm_lambda", self.damsm_lambda)?;
        if self.damsm_every == 0 {
            bail!("attngan.damsm_every must be at least 1");
        }
        if self.damsm_image_size < 75 {
            bail!(
                "attngan.damsm_image_size must be at least 75 (Inception-v3's smallest input), got {}",
                self.damsm_image_size
            );
        }
        Ok(())
    }
}

/// A training config of any model, by its top-level `model` key. Read once per command, so
/// the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum TrainConfig {
    Damsm(DamsmTrainConfig),
    Gan(GanTrainConfig),
}

impl TrainConfig {
    /// Reads the config at `path` as its `model` key says; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let table: toml::Table = read_toml(path)?;
        match table.get("model") {
            Some(toml::Value::String(model)) if model == "damsm" => {
                Ok(Self::Damsm(DamsmTrainConfig::load(path)?))
            }
            Some(toml::Value::String(model)) if model.parse::<GanModel>().is_ok() => {
                Ok(Self::Gan(GanTrainConfig::load(path)?))
            }
            Some(toml::Value::String(other)) => bail!(
                "{}: model {other:?} is not supported (supported: damsm, gan_int_cls, stackgan, attngan)",
                path.display()
            ),
            Some(other) => bail!("{}: `model` must be a string, got {other}", path.display()),
            None => bail!(
                "{}: missing the top-level `model` key (e.g. model = \"damsm\")",
                path.display()
            ),
        }
    }

    /// The DAMSM config at `path`; any other model is an error naming what the command needs.
    pub fn load_damsm(path: &Path) -> Result<DamsmTrainConfig> {
        match Self::load(path)? {
            Self::Damsm(config) => Ok(config),
            Self::Gan(_) => needs(path, "a DAMSM config (model = \"damsm\")"),
        }
    }

    /// The GAN config at `path`; a DAMSM config is an error naming what the command needs.
    pub fn load_gan(path: &Path) -> Result<GanTrainConfig> {
        match Self::load(path)? {
            Self::Gan(config) => Ok(config),
            Self::Damsm(_) => needs(
                path,
                "a GAN config (model = \"gan_int_cls\", \"stackgan\" or \"attngan\")",
            ),
        }
    }
}

/// The error for a config at `path` of another model than the command needs (`what`).
fn needs<T>(path: &Path, what: &str) -> Result<T> {
    bail!("{}: this command needs {what}", path.display())
}
