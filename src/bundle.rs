//! Weight bundles: one self-describing file per trained model, read natively and in the browser.
//!
//! A bundle is a [safetensors](https://github.com/huggingface/safetensors) file. Its tensors are
//! the module's parameters under their module paths (`text_encoder.encoder.weight`, ...), and
//! its `__metadata__` holds everything needed to rebuild the model:
//!
//! | key | value |
//! |---|---|
//! | `t2i.format` | what the bundle holds, e.g. `t2i-damsm` |
//! | `t2i.version` | format version, an integer; readers refuse versions they do not know |
//! | `t2i.config` | the model configuration, JSON |
//! | `t2i.vocabulary` | the caption vocabulary, JSON ([`crate::vocab::Vocabulary`]) |
//! | `t2i.sha256` | SHA-256 of every tensor's name, dtype, shape and bytes, in name order |
//!
//! A GAN-INT-CLS bundle (`t2i-gan-int-cls`) holds the DAMSM text encoder (`text_encoder.*`) and
//! the generator (`generator.*`); its `t2i.config` is `{"text": .., "gan": ..}` and it adds
//! `t2i.precision` (`f32`, `int8` or `int4`). Quantized weights are stored as [`crate::quant`]
//! describes (with a `t2i.quantized` entry) and restored to f32 at load time, so every backend
//! loads them; the checksum covers the tensors as stored, quantized bytes and scales included.
//! A StackGAN bundle (`t2i-stackgan`) is the same with `generators.stage1.*` and
//! `generators.stage2.*` in place of the generator, and an AttnGAN bundle (`t2i-attngan`) the
//! same with the AttnGAN generator (`generator.*`: CA, the three stages and their image heads);
//! [`load_gan`] reads any of them.
//!
//! A truncated, corrupted, foreign or newer file gives a [`BundleError`] that says which.

use std::collections::HashMap;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use crate::attngan::{AttnGanConfig, AttnGanGenerator};
use crate::damsm::{Damsm, DamsmConfig, TextEncoder, TextEncoderConfig};
use crate::gan_int_cls::{GanIntClsConfig, Generator};
use crate::quant::{self, Precision, QuantError};
use crate::stackgan::{StackGanConfig, StackGanGenerators};
use crate::vocab::Vocabulary;

/// Format name of a DAMSM bundle (text encoder, image projections, vocabulary).
pub const DAMSM_FORMAT: &str = "t2i-damsm";
/// The DAMSM bundle version this build writes and reads.
pub const DAMSM_VERSION: u32 = 1;
/// Format name of a GAN-INT-CLS bundle (text encoder, generator, vocabulary).
pub const GAN_INT_CLS_FORMAT: &str = "t2i-gan-int-cls";
/// The GAN-INT-CLS bundle version this build writes and reads.
pub const GAN_INT_CLS_VERSION: u32 = 1;
/// Format name of a StackGAN bundle (text encoder, Stage-I and Stage-II generators, vocabulary).
pub const STACKGAN_FORMAT: &str = "t2i-stackgan";
/// The StackGAN bundle version this build writes and reads.
pub const STACKGAN_VERSION: u32 = 1;
/// Format name of an AttnGAN bundle (text encoder, generator with every stage, vocabulary).
pub const ATTNGAN_FORMAT: &str = "t2i-attngan";
/// The AttnGAN bundle version this build writes and reads.
pub const ATTNGAN_VERSION: u32 = 1;

const KEY_FORMAT: &str = "t2i.format";
const KEY_VERSION: &str = "t2i.version";
const KEY_CONFIG: &str = "t2i.config";
const KEY_VOCABULARY: &str = "t2i.vocabulary";
const KEY_SHA256: &str = "t2i.sha256";
const KEY_PRECISION: &str = "t2i.precision";

/// What is wrong with a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a readable bundle (truncated or not safetensors): {0}")]
    Unreadable(String),
    #[error("the bundle has no {0:?} entry in its metadata")]
    MissingMetadata(&'static str),
    #[error("this is a {found:?} bundle, expected {expected:?}")]
    WrongFormat {
        found: String,
        expected: &'static str,
    },
    #[error(
        "bundle version {found} is not supported: this build reads version {supported} (rebuild or re-export)"
    )]
    UnsupportedVersion { found: String, supported: u32 },
    #[error("the bundle's {key:?} entry is invalid: {reason}")]
    BadMetadata { key: &'static str, reason: String },
    #[error("checksum mismatch: the tensor data is corrupted (expected {expected}, found {found})")]
    Checksum { expected: String, found: String },
    #[error("the bundle's tensors do not fit the model: {0}")]
    Tensors(String),
    #[error("the text encoder and generator configurations do not fit together: {0}")]
    ConfigMismatch(String),
    #[error("could not quantize or restore the weights: {0}")]
    Quantization(#[from] QuantError),
}

/// Serialises a DAMSM with its configuration and vocabulary.
pub fn save_damsm(
    damsm: &Damsm,
    config: &DamsmConfig,
    vocabulary: &Vocabulary,
) -> Result<Vec<u8>, BundleError> {
    let metadata = [
        (KEY_FORMAT, DAMSM_FORMAT.to_string()),
        (KEY_VERSION, DAMSM_VERSION.to_string()),
        (KEY_CONFIG, config.to_string()),
        (KEY_VOCABULARY, vocabulary.to_json()),
    ];
    // First pass to learn the checksum of the tensors as written, second pass to record it.
    let unsigned = write_store(damsm, &metadata, None)?;
    let checksum = tensor_checksum(&parse(&unsigned)?);
    write_store(damsm, &metadata, Some(checksum))
}

/// Reads a DAMSM bundle onto `device`.
pub fn load_damsm(
    bytes: &[u8],
    device: &Device,
) -> Result<(Damsm, DamsmConfig, Vocabulary), BundleError> {
    let metadata = read_metadata(bytes, DAMSM_FORMAT, DAMSM_VERSION)?;
    let config: DamsmConfig = metadata_value(&metadata, KEY_CONFIG, |v| serde_json::from_str(v))?;
    let vocabulary = metadata_value(&metadata, KEY_VOCABULARY, Vocabulary::from_json)?;
    if vocabulary.len() != config.text.vocab_size {
        return Err(BundleError::BadMetadata {
            key: KEY_VOCABULARY,
            reason: format!(
                "{} words, but the text encoder has {} embedding rows",
                vocabulary.len(),
                config.text.vocab_size
            ),
        });
    }
    check_text_encoder(&config.text, &vocabulary)
        .and_then(|()| check_image_encoder(&config))
        .and_then(|()| sizes_fit_the_tensors(&config, bytes))
        .map_err(|reason| BundleError::BadMetadata {
            key: KEY_CONFIG,
            reason,
        })?;
    let damsm = load_module(config.init(device), bytes.to_vec())?;
    Ok((damsm, config, vocabulary))
}

/// The networks one GAN family's bundle holds: the DAMSM text encoder and the family's
/// generator(s); what inference needs to turn a caption into an image (discriminators are only
/// needed for training and are not shipped). One save ([`save_bundle`]) and one load
/// ([`load_bundle`]) serve every family.
pub trait BundledWeights: Module + Sized {
    /// The generator's configuration, `t2i.config`'s `gan`.
    type GanConfig: serde::Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug;
    /// The generator network(s) kept beside the text encoder.
    type Generator;
    /// `t2i.format` of the family's bundles.
    const FORMAT: &'static str;
    /// The bundle version this build writes and reads.
    const VERSION: u32;

    /// The width of the text features the generator reads, which the encoder must give.
    fn text_dim(gan: &Self::GanConfig) -> usize;
    /// What the generator's constructors would assert.
    fn validate(gan: &Self::GanConfig) -> Result<(), String>;
    /// A freshly initialised generator of these sizes.
    fn init_generator(gan: &Self::GanConfig, device: &Device) -> Self::Generator;
    /// Freshly initialised networks of these sizes (the loader's template).
    fn init(text: &TextEncoderConfig, gan: &Self::GanConfig, device: &Device) -> Self {
        Self::assemble(text.init(device), Self::init_generator(gan, device))
    }
    /// The bundle's networks from a text encoder and a generator.
    fn assemble(text_encoder: TextEncoder, generator: Self::Generator) -> Self;
    /// The text encoder among them.
    fn text_encoder(&self) -> &TextEncoder;
    /// Whether the networks have the sizes `gan` describes, beyond what loading checks.
    fn fits(&self, _gan: &Self::GanConfig) -> Result<(), String> {
        Ok(())
    }
    /// The bundle as the family-agnostic [`GanBundle`].
    fn into_gan_bundle(bundle: Bundle<Self>) -> GanBundle;
}

/// The networks a GAN-INT-CLS bundle holds.
#[derive(Module, Debug)]
pub struct GanIntClsWeights {
    /// The DAMSM text encoder whose sentence feature is the generator's phi(t).
    pub text_encoder: TextEncoder,
    pub generator: Generator,
}

impl BundledWeights for GanIntClsWeights {
    type GanConfig = GanIntClsConfig;
    type Generator = Generator;
    const FORMAT: &'static str = GAN_INT_CLS_FORMAT;
    const VERSION: u32 = GAN_INT_CLS_VERSION;

    fn text_dim(gan: &GanIntClsConfig) -> usize {
        gan.text_dim
    }
    fn validate(gan: &GanIntClsConfig) -> Result<(), String> {
        gan.validate()
    }
    fn init_generator(gan: &GanIntClsConfig, device: &Device) -> Generator {
        gan.init_generator(device)
    }
    fn assemble(text_encoder: TextEncoder, generator: Generator) -> Self {
        Self {
            text_encoder,
            generator,
        }
    }
    fn text_encoder(&self) -> &TextEncoder {
        &self.text_encoder
    }
    fn into_gan_bundle(bundle: Bundle<Self>) -> GanBundle {
        GanBundle::GanIntCls(Box::new(bundle))
    }
}

/// The networks a StackGAN bundle holds: the text encoder and both stages' generators.
#[derive(Module, Debug)]
pub struct StackGanWeights {
    pub text_encoder: TextEncoder,
    pub generators: StackGanGenerators,
}

impl BundledWeights for StackGanWeights {
    type GanConfig = StackGanConfig;
    type Generator = StackGanGenerators;
    const FORMAT: &'static str = STACKGAN_FORMAT;
    const VERSION: u32 = STACKGAN_VERSION;

    fn text_dim(gan: &StackGanConfig) -> usize {
        gan.text_dim
    }
    fn validate(gan: &StackGanConfig) -> Result<(), String> {
        gan.validate()
    }
    fn init_generator(gan: &StackGanConfig, device: &Device) -> StackGanGenerators {
        StackGanGenerators {
            stage1: gan.init_stage1_generator(device),
            stage2: gan.init_stage2_generator(device),
        }
    }
    fn assemble(text_encoder: TextEncoder, generators: StackGanGenerators) -> Self {
        Self {
            text_encoder,
            generators,
        }
    }
    fn text_encoder(&self) -> &TextEncoder {
        &self.text_encoder
    }
    fn into_gan_bundle(bundle: Bundle<Self>) -> GanBundle {
        GanBundle::StackGan(Box::new(bundle))
    }
}

/// The networks an AttnGAN bundle holds: the DAMSM text encoder, whose word features the
/// attention stages read and whose sentence feature CA reads, and the generator.
#[derive(Module, Debug)]
pub struct AttnGanWeights {
    pub text_encoder: TextEncoder,
    pub generator: AttnGanGenerator,
}

impl BundledWeights for AttnGanWeights {
    type GanConfig = AttnGanConfig;
    type Generator = AttnGanGenerator;
    const FORMAT: &'static str = ATTNGAN_FORMAT;
    const VERSION: u32 = ATTNGAN_VERSION;

    /// CA reads the sentence feature and the attention's 1x1 conv the word features: both are
    /// `text_dim` wide.
    fn text_dim(gan: &AttnGanConfig) -> usize {
        gan.text_dim
    }
    fn validate(gan: &AttnGanConfig) -> Result<(), String> {
        gan.validate()
    }
    fn init_generator(gan: &AttnGanConfig, device: &Device) -> AttnGanGenerator {
        gan.init_generator(device)
    }
    fn assemble(text_encoder: TextEncoder, generator: AttnGanGenerator) -> Self {
        Self {
            text_encoder,
            generator,
        }
    }
    fn text_encoder(&self) -> &TextEncoder {
        &self.text_encoder
    }
    fn fits(&self, gan: &AttnGanConfig) -> Result<(), String> {
        let stages = self.generator.stages();
        if stages != gan.branch_num {
            return Err(format!(
                "the generator has {stages} stages, but the config's branch_num is {}",
                gan.branch_num
            ));
        }
        Ok(())
    }
    fn into_gan_bundle(bundle: Bundle<Self>) -> GanBundle {
        GanBundle::AttnGan(Box::new(bundle))
    }
}

/// A loaded generator bundle of one family. Loaded weights are in inference mode
/// ([`Module::valid`]): batch norm uses the stored running statistics and dropout is off, on
/// every device.
#[derive(Debug)]
pub struct Bundle<W: BundledWeights> {
    pub weights: W,
    pub text_config: TextEncoderConfig,
    pub gan_config: W::GanConfig,
    pub vocabulary: Vocabulary,
    /// How the weights were stored (they are f32 again once loaded).
    pub precision: Precision,
}

/// A loaded GAN-INT-CLS bundle.
pub type GanIntClsBundle = Bundle<GanIntClsWeights>;
/// A loaded StackGAN bundle.
pub type StackGanBundle = Bundle<StackGanWeights>;
/// A loaded AttnGAN bundle.
pub type AttnGanBundle = Bundle<AttnGanWeights>;

/// What a generator bundle holds besides its generator, borrowed.
pub struct TextParts<'a> {
    pub encoder: &'a TextEncoder,
    pub config: &'a TextEncoderConfig,
    pub vocabulary: &'a Vocabulary,
    /// How the weights were stored.
    pub precision: Precision,
}

impl<W: BundledWeights> Bundle<W> {
    /// The text encoder, its configuration and vocabulary, and the stored precision.
    pub fn text(&self) -> TextParts<'_> {
        TextParts {
            encoder: self.weights.text_encoder(),
            config: &self.text_config,
            vocabulary: &self.vocabulary,
            precision: self.precision,
        }
    }

    /// A generator fresh from training with its text encoder, as an f32 bundle in memory: what
    /// `t2i export` writes and what evaluation and the sample grids draw with.
    pub fn from_parts(
        text_encoder: TextEncoder,
        text_config: TextEncoderConfig,
        vocabulary: Vocabulary,
        generator: W::Generator,
        gan_config: W::GanConfig,
    ) -> Self {
        Self {
            weights: W::assemble(text_encoder, generator),
            text_config,
            gan_config,
            vocabulary,
            precision: Precision::F32,
        }
    }

    /// The bundle's bytes with the weights stored at `precision` (see [`save_bundle`]).
    pub fn to_bytes(&self, precision: Precision) -> Result<Vec<u8>, BundleError> {
        save_bundle(
            &self.weights,
            &self.text_config,
            &self.gan_config,
            &self.vocabulary,
            precision,
        )
    }
}

/// `t2i.config` of a generator bundle.
#[derive(serde::Serialize, serde::Deserialize)]
struct BundleConfig<C> {
    text: TextEncoderConfig,
    gan: C,
}

/// What the constructors would assert, and whether the networks and the vocabulary fit.
fn check_bundle<W: BundledWeights>(
    text: &TextEncoderConfig,
    gan: &W::GanConfig,
    vocabulary: &Vocabulary,
) -> Result<(), String> {
    check_text_encoder(text, vocabulary)?;
    if W::text_dim(gan) != text.feature_dim {
        return Err(format!(
            "the generator reads {}-value text features, but the text encoder gives {}",
            W::text_dim(gan),
            text.feature_dim
        ));
    }
    W::validate(gan)
}

/// Serialises a family's text encoder and generator(s) with their configurations (`t2i.config`
/// is `{"text": .., "gan": ..}`), the vocabulary and the precision, the weights quantized to
/// `precision` and checksummed. Batch-norm running statistics are written as they stand after
/// the last forward pass (pending per-thread updates are folded in first) and always in f32.
pub fn save_bundle<W: BundledWeights>(
    weights: &W,
    text: &TextEncoderConfig,
    gan: &W::GanConfig,
    vocabulary: &Vocabulary,
    precision: Precision,
) -> Result<Vec<u8>, BundleError> {
    check_bundle::<W>(text, gan, vocabulary).map_err(BundleError::ConfigMismatch)?;
    weights.fits(gan).map_err(BundleError::ConfigMismatch)?;
    let config = BundleConfig {
        text: text.clone(),
        gan: gan.clone(),
    };
    let config = serde_json::to_string(&config).map_err(|e| BundleError::BadMetadata {
        key: KEY_CONFIG,
        reason: e.to_string(),
    })?;
    let metadata = [
        (KEY_FORMAT, W::FORMAT.to_string()),
        (KEY_VERSION, W::VERSION.to_string()),
        (KEY_CONFIG, config),
        (KEY_VOCABULARY, vocabulary.to_json()),
        (KEY_PRECISION, precision.to_string()),
    ];
    // `valid` syncs the running statistics (a module visit reads them without doing so) and
    // detaches the weights from any autodiff graph.
    let plain = write_store(&weights.valid(), &metadata, None)?;
    let stored = quant::quantize_safetensors(&plain, precision)?;
    let checksum = tensor_checksum(&parse(&stored)?);
    Ok(quant::with_metadata(&stored, KEY_SHA256, checksum)?)
}

/// Reads a family's bundle onto `device`: checks format, version and checksum, restores
/// quantized weights to f32, and returns the networks in inference mode.
pub fn load_bundle<W: BundledWeights>(
    bytes: &[u8],
    device: &Device,
) -> Result<Bundle<W>, BundleError> {
    let metadata = read_metadata(bytes, W::FORMAT, W::VERSION)?;
    let config: BundleConfig<W::GanConfig> =
        metadata_value(&metadata, KEY_CONFIG, |v| serde_json::from_str(v))?;
    let vocabulary = metadata_value(&metadata, KEY_VOCABULARY, Vocabulary::from_json)?;
    let precision: Precision = metadata_value(&metadata, KEY_PRECISION, str::parse)?;
    let plain = quant::dequantize_safetensors(bytes)?;
    check_bundle::<W>(&config.text, &config.gan, &vocabulary)
        .and_then(|()| sizes_fit_the_tensors(&config, &plain))
        .map_err(|reason| BundleError::BadMetadata {
            key: KEY_CONFIG,
            reason,
        })?;
    let weights = W::init(&config.text, &config.gan, device);
    // The restored bytes move into the store: one f32 copy of the weights in memory, not two.
    let weights = load_module(weights, plain)?.valid();
    Ok(Bundle {
        weights,
        text_config: config.text,
        gan_config: config.gan,
        vocabulary,
        precision,
    })
}

/// A generator bundle of any family, as `t2i generate` and the page load them.
#[derive(Debug)]
pub enum GanBundle {
    GanIntCls(Box<GanIntClsBundle>),
    StackGan(Box<StackGanBundle>),
    AttnGan(Box<AttnGanBundle>),
}

impl GanBundle {
    /// The text encoder, its configuration and vocabulary, and the stored precision.
    pub fn text(&self) -> TextParts<'_> {
        match self {
            GanBundle::GanIntCls(b) => b.text(),
            GanBundle::StackGan(b) => b.text(),
            GanBundle::AttnGan(b) => b.text(),
        }
    }

    /// The bundle's bytes with the weights stored at `precision`.
    pub fn to_bytes(&self, precision: Precision) -> Result<Vec<u8>, BundleError> {
        match self {
            GanBundle::GanIntCls(b) => b.to_bytes(precision),
            GanBundle::StackGan(b) => b.to_bytes(precision),
            GanBundle::AttnGan(b) => b.to_bytes(precision),
        }
    }
}

/// The `t2i.format` of a bundle, unchecked (to pick the loader).
pub fn bundle_format(bytes: &[u8]) -> Result<String, BundleError> {
    header_value(bytes, KEY_FORMAT)
}

/// The checksum of a bundle's tensors its header claims (`t2i.sha256`; the loaders check it).
pub fn bundle_checksum(bytes: &[u8]) -> Result<String, BundleError> {
    header_value(bytes, KEY_SHA256)
}

fn header_value(bytes: &[u8], key: &'static str) -> Result<String, BundleError> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| BundleError::Unreadable(e.to_string()))?;
    header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .ok_or(BundleError::MissingMetadata(key))
}

/// Loads a GAN-INT-CLS, StackGAN or AttnGAN bundle, whichever `bytes` holds.
pub fn load_gan(bytes: &[u8], device: &Device) -> Result<GanBundle, BundleError> {
    fn load<W: BundledWeights>(bytes: &[u8], device: &Device) -> Result<GanBundle, BundleError> {
        Ok(W::into_gan_bundle(load_bundle::<W>(bytes, device)?))
    }
    match bundle_format(bytes)?.as_str() {
        GAN_INT_CLS_FORMAT => load::<GanIntClsWeights>(bytes, device),
        STACKGAN_FORMAT => load::<StackGanWeights>(bytes, device),
        ATTNGAN_FORMAT => load::<AttnGanWeights>(bytes, device),
        found => Err(BundleError::WrongFormat {
            found: found.to_string(),
            expected: "t2i-gan-int-cls, t2i-stackgan or t2i-attngan",
        }),
    }
}

/// Whether the vocabulary and the text encoder fit and the encoder can be built.
/// Every size a configuration names is at most the largest dimension of the file's tensors:
/// each width, count or vocabulary size is (or divides) some tensor's dimension. Checked
/// before the networks are built, so a configuration claiming sizes far beyond what the file
/// holds is refused before anything is allocated: burn builds parameters lazily, but not batch
/// norm's running statistics, and a layer of 2^40 channels would be a 4 TB allocation.
fn sizes_fit_the_tensors<C: serde::Serialize>(config: &C, bytes: &[u8]) -> Result<(), String> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let largest = tensors
        .tensors()
        .iter()
        .flat_map(|(_, view)| view.shape().to_vec())
        .max()
        .unwrap_or(0) as u64;
    let value = serde_json::to_value(config).map_err(|e| e.to_string())?;
    let mut sizes = Vec::new();
    collect_sizes(&value, "", &mut sizes);
    match sizes.into_iter().find(|(_, size)| *size > largest) {
        Some((key, size)) => Err(format!(
            "{key} is {size}, more than the largest dimension of any tensor in the file ({largest})"
        )),
        None => Ok(()),
    }
}

/// The unsigned integers of a JSON value with their key paths (`gan.ngf`).
fn collect_sizes(value: &serde_json::Value, path: &str, out: &mut Vec<(String, u64)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_sizes(value, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                collect_sizes(value, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Number(n) => out.extend(n.as_u64().map(|n| (path.to_string(), n))),
        _ => {}
    }
}

/// What [`DamsmConfig::init`] would assert of the image encoder.
fn check_image_encoder(config: &DamsmConfig) -> Result<(), String> {
    let image = &config.image;
    if image.local_dim == 0 || image.global_dim == 0 {
        return Err(format!(
            "the image encoder's input widths must be positive, got {} and {}",
            image.local_dim, image.global_dim
        ));
    }
    if image.feature_dim != config.text.feature_dim {
        return Err(format!(
            "the image encoder gives {}-value features, the text encoder {}: they must agree",
            image.feature_dim, config.text.feature_dim
        ));
    }
    Ok(())
}

fn check_text_encoder(text: &TextEncoderConfig, vocabulary: &Vocabulary) -> Result<(), String> {
    if vocabulary.len() != text.vocab_size {
        return Err(format!(
            "the vocabulary has {} words, but the text encoder has {} embedding rows",
            vocabulary.len(),
            text.vocab_size
        ));
    }
    if text.vocab_size == 0 || text.embedding_dim == 0 {
        return Err("the text encoder needs a vocabulary and an embedding width".to_string());
    }
    if text.feature_dim == 0 || !text.feature_dim.is_multiple_of(2) {
        return Err(format!(
            "the text feature width must be even and positive (two LSTM directions), got {}",
            text.feature_dim
        ));
    }
    if !(text.dropout.is_finite() && (0.0..1.0).contains(&text.dropout)) {
        return Err(format!(
            "the text encoder's dropout must be in [0, 1), got {}",
            text.dropout
        ));
    }
    Ok(())
}

/// A metadata entry parsed with `parse`; a missing or unparsable entry is an error naming it.
fn metadata_value<T, E: std::fmt::Display>(
    metadata: &HashMap<String, String>,
    key: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, BundleError> {
    let value = metadata.get(key).ok_or(BundleError::MissingMetadata(key))?;
    parse(value).map_err(|e| BundleError::BadMetadata {
        key,
        reason: e.to_string(),
    })
}

/// Checks format, version and checksum, and returns the metadata.
pub fn read_metadata(
    bytes: &[u8],
    format: &'static str,
    version: u32,
) -> Result<HashMap<String, String>, BundleError> {
    let tensors = parse(bytes)?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| BundleError::Unreadable(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let found_format = metadata
        .get(KEY_FORMAT)
        .ok_or(BundleError::MissingMetadata(KEY_FORMAT))?;
    if found_format != format {
        return Err(BundleError::WrongFormat {
            found: found_format.clone(),
            expected: format,
        });
    }
    let found_version = metadata
        .get(KEY_VERSION)
        .ok_or(BundleError::MissingMetadata(KEY_VERSION))?;
    if found_version.parse::<u32>().ok() != Some(version) {
        return Err(BundleError::UnsupportedVersion {
            found: found_version.clone(),
            supported: version,
        });
    }
    let expected = metadata
        .get(KEY_SHA256)
        .ok_or(BundleError::MissingMetadata(KEY_SHA256))?;
    let found = tensor_checksum(&tensors);
    if *expected != found {
        return Err(BundleError::Checksum {
            expected: expected.clone(),
            found,
        });
    }
    Ok(metadata)
}

fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, BundleError> {
    SafeTensors::deserialize(bytes).map_err(|e| BundleError::Unreadable(e.to_string()))
}

fn tensor_checksum(tensors: &SafeTensors<'_>) -> String {
    let mut entries = tensors.tensors();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (name, view) in entries {
        hasher.update(name.as_bytes());
        hasher.update(format!("{:?}{:?}", view.dtype(), view.shape()).as_bytes());
        hasher.update(view.data());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_store<M: Module>(
    module: &M,
    metadata: &[(&str, String)],
    checksum: Option<String>,
) -> Result<Vec<u8>, BundleError> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (key, value) in metadata {
        store = store.metadata(*key, value.clone());
    }
    if let Some(checksum) = checksum {
        store = store.metadata(KEY_SHA256, checksum);
    }
    module
        .save_into(&mut store)
        .map_err(|e| BundleError::Tensors(e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| BundleError::Tensors(e.to_string()))
}

fn load_module<M: Module>(mut module: M, bytes: Vec<u8>) -> Result<M, BundleError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = module
        .load_from(&mut store)
        .map_err(|e| BundleError::Tensors(shortened(e.to_string())))?;
    if !result.is_success() || !result.missing.is_empty() {
        return Err(BundleError::Tensors(shortened(format!(
            "missing {:?}, unused {:?}, errors {:?}",
            result.missing, result.unused, result.errors
        ))));
    }
    Ok(module)
}

/// A message cut to its first 600 characters: a hostile file can mismatch every tensor, and
/// the first few name the problem.
fn shortened(message: String) -> String {
    const LIMIT: usize = 600;
    match message.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!(
            "{} … ({} more characters)",
            &message[..cut],
            message[cut..].chars().count()
        ),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// A small text encoder and generator (ngf 32, about 1.2 M generator parameters) whose batch
    /// norms have seen 20 training batches on an autodiff device, so their running statistics are
    /// close to the activations' (eval-mode outputs have a realistic spread) and the last update
    /// is still pending in the running state.
    fn trained() -> (
        GanIntClsWeights,
        TextEncoderConfig,
        GanIntClsConfig,
        Vocabulary,
    ) {
        let vocabulary = Vocabulary::build(
            [
                "a red bird with a short beak",
                "a small blue bird with long wings",
            ],
            1,
        );
        let text = TextEncoderConfig::new(vocabulary.len())
            .with_embedding_dim(32)
            .with_feature_dim(16);
        let gan = GanIntClsConfig::small(16);
        let train_device = Device::flex().autodiff();
        let generator = gan.init_generator(&train_device);
        for step in 0..20 {
            let (z, t) = inputs(&gan, 4, step as f32, &train_device);
            let _ = generator.forward(z, t);
        }
        let weights = GanIntClsWeights {
            text_encoder: text.init(&Device::flex()),
            generator,
        };
        (weights, text, gan, vocabulary)
    }

    /// Fixed noise and text inputs.
    fn inputs(
        gan: &GanIntClsConfig,
        batch: usize,
        phase: f32,
        device: &Device,
    ) -> (Tensor<2>, Tensor<2>) {
        let wave = |n: usize, f: f32| -> Vec<f32> {
            (0..n).map(|i| (i as f32 * f + phase).sin()).collect()
        };
        let [z, p] = [gan.noise_dim, gan.text_dim];
        (
            Tensor::from_data(TensorData::new(wave(batch * z, 0.37), [batch, z]), device),
            Tensor::from_data(TensorData::new(wave(batch * p, 0.91), [batch, p]), device),
        )
    }

    fn image(weights: &GanIntClsWeights, gan: &GanIntClsConfig) -> Vec<f32> {
        let device = Device::flex();
        let (z, t) = inputs(gan, 2, 10.0, &device);
        weights
            .generator
            .forward(z, t)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    fn sentence(weights: &GanIntClsWeights, vocabulary: &Vocabulary) -> Vec<f32> {
        let tokens = vocabulary.encode("a small red bird").tokens;
        let features = weights.text_encoder.encode_ids(&[&tokens], &Device::flex());
        features.sentence.into_data().try_to_vec::<f32>().unwrap()
    }

    fn values(tensor: Tensor<1>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    /// Every batch norm of the generator: (running mean, running variance).
    fn running_stats(g: &Generator) -> Vec<(Vec<f32>, Vec<f32>)> {
        [
            &g.project_bn,
            &g.residual_4.reduce_bn,
            &g.residual_4.conv_bn,
            &g.residual_4.expand_bn,
            &g.up_8_bn,
            &g.residual_8.reduce_bn,
            &g.residual_8.conv_bn,
            &g.residual_8.expand_bn,
            &g.up_16_bn,
            &g.up_32_bn,
        ]
        .into_iter()
        .map(|bn| {
            assert!(
                !bn.training.is_enabled(),
                "batch norm left in training mode"
            );
            (
                values(bn.running_mean.value_sync()),
                values(bn.running_var.value_sync()),
            )
        })
        .collect()
    }

    fn save(
        weights: &GanIntClsWeights,
        text: &TextEncoderConfig,
        gan: &GanIntClsConfig,
        vocabulary: &Vocabulary,
        precision: Precision,
    ) -> Vec<u8> {
        save_bundle(weights, text, gan, vocabulary, precision).unwrap()
    }

    #[test]
    fn f32_round_trip_is_bit_exact_with_running_statistics() {
        let (weights, text, gan, vocabulary) = trained();
        // A module visit reads the running state without folding in the pending update.
        let stale = values(weights.generator.project_bn.running_mean.value());
        let bytes = save(&weights, &text, &gan, &vocabulary, Precision::F32);
        let reference = weights.valid();
        let expected_stats = running_stats(&reference.generator);
        assert_ne!(
            expected_stats[0].0, stale,
            "saving folds in the last update"
        );
        assert!(expected_stats[0].0.iter().any(|&m| m != 0.0));
        assert!(expected_stats[0].1.iter().any(|&v| v != 1.0));

        let bundle = load_bundle::<GanIntClsWeights>(&bytes, &Device::flex()).unwrap();
        assert_eq!(bundle.precision, Precision::F32);
        assert_eq!(bundle.vocabulary, vocabulary);
        assert_eq!(bundle.text_config.to_string(), text.to_string());
        assert_eq!(bundle.gan_config.to_string(), gan.to_string());
        assert!(!bundle.weights.text_encoder.drop.training.is_enabled());
        assert_eq!(running_stats(&bundle.weights.generator), expected_stats);
        let expected_image = image(&reference, &gan);
        assert!(
            expected_image.iter().any(|v| v.abs() > 0.02),
            "not all near zero"
        );
        assert!(
            image(&bundle.weights, &gan) == expected_image,
            "bit-exact image"
        );
        assert_eq!(
            sentence(&bundle.weights, &vocabulary),
            sentence(&reference, &vocabulary)
        );
        let metadata = SafeTensors::read_metadata(&bytes).unwrap().1;
        let metadata = metadata.metadata().clone().unwrap();
        assert_eq!(metadata[KEY_PRECISION], "f32");
        assert!(!metadata.contains_key(quant::KEY_QUANTIZED));
        // The loaded model saves to the same tensors (the header's key order may differ).
        let again = save(&bundle.weights, &text, &gan, &vocabulary, Precision::F32);
        assert_eq!(again.len(), bytes.len());
        let again = SafeTensors::read_metadata(&again).unwrap().1;
        assert_eq!(
            again.metadata().as_ref().unwrap()[KEY_SHA256],
            metadata[KEY_SHA256]
        );
    }

    /// How far a quantized round trip lands from the f32 model.
    struct RoundTrip {
        /// Max |pixel - f32 pixel| of a generated batch (pixels in [-1, 1]).
        image_error: f32,
        /// RMS of the pixel differences over the RMS of the f32 pixels.
        image_relative_rms: f64,
        /// Max |value - f32 value| of a sentence feature.
        sentence_error: f32,
        /// Bundle size over the f32 bundle's size.
        size_ratio: f64,
    }

    fn quantized_round_trip(precision: Precision) -> RoundTrip {
        let (weights, text, gan, vocabulary) = trained();
        let plain = save(&weights, &text, &gan, &vocabulary, Precision::F32);
        let bytes = save(&weights, &text, &gan, &vocabulary, precision);
        let reference = weights.valid();
        let bundle = load_bundle::<GanIntClsWeights>(&bytes, &Device::flex()).unwrap();
        assert_eq!(bundle.precision, precision);
        // Running statistics are stored in f32 and come back exactly.
        assert_eq!(
            running_stats(&bundle.weights.generator),
            running_stats(&reference.generator)
        );
        let expected = image(&reference, &gan);
        let got = image(&bundle.weights, &gan);
        let rms = |v: &mut dyn Iterator<Item = f32>| {
            let (sum, n) = v.fold((0.0f64, 0usize), |(s, n), x| (s + f64::from(x * x), n + 1));
            (sum / n as f64).sqrt()
        };
        let result = RoundTrip {
            image_error: max_abs_diff(&got, &expected),
            image_relative_rms: rms(&mut got.iter().zip(&expected).map(|(a, b)| a - b))
                / rms(&mut expected.iter().copied()),
            sentence_error: max_abs_diff(
                &sentence(&bundle.weights, &vocabulary),
                &sentence(&reference, &vocabulary),
            ),
            size_ratio: bytes.len() as f64 / plain.len() as f64,
        };
        eprintln!(
            "{precision}: image max abs diff {:e} (max |pixel| {}), relative RMS {:.4}; \
             sentence max abs diff {:e}; size {} / {} bytes = {:.3}",
            result.image_error,
            expected.iter().fold(0.0f32, |m, v| m.max(v.abs())),
            result.image_relative_rms,
            result.sentence_error,
            bytes.len(),
            plain.len(),
            result.size_ratio
        );
        result
    }

    #[test]
    fn int8_round_trip_is_close_and_a_quarter_of_the_size() {
        // Measured over 11 runs (random init, 20 training batches; generated pixels reach
        // 0.08..0.13 in magnitude at this stage): image max abs diff 1.1e-3..1.9e-3, relative RMS
        // 1.1%..1.7%, sentence max abs diff 1.4e-4..4.0e-4, size 0.254 of f32.
        let r = quantized_round_trip(Precision::Int8);
        assert!(r.image_error < 5e-3, "{}", r.image_error);
        assert!(r.image_relative_rms < 0.05, "{}", r.image_relative_rms);
        assert!(r.sentence_error < 2e-3, "{}", r.sentence_error);
        assert!((0.24..0.27).contains(&r.size_ratio), "{}", r.size_ratio);
    }

    #[test]
    fn int4_round_trip_is_looser_and_smaller() {
        // Measured over 11 runs: image max abs diff 1.8e-2..2.6e-2, relative RMS 14%..20%,
        // sentence max abs diff 3.3e-3..6.7e-3, size 0.160 of f32.
        let r = quantized_round_trip(Precision::Int4);
        assert!(r.image_error < 0.08, "{}", r.image_error);
        assert!(r.image_relative_rms < 0.4, "{}", r.image_relative_rms);
        assert!(r.sentence_error < 0.03, "{}", r.sentence_error);
        assert!((0.15..0.17).contains(&r.size_ratio), "{}", r.size_ratio);
    }

    #[test]
    fn damaged_foreign_and_newer_bundles_are_refused() {
        let (weights, text, gan, vocabulary) = trained();
        let bytes = save(&weights, &text, &gan, &vocabulary, Precision::Int8);
        let device = Device::flex();
        let load = |bytes: &[u8]| load_bundle::<GanIntClsWeights>(bytes, &device).map(|_| ());
        assert!(load(&bytes).is_ok());

        let err = load(&bytes[..bytes.len() - 10]).unwrap_err();
        assert!(matches!(err, BundleError::Unreadable(_)), "{err}");
        let err = load(&bytes[..100]).unwrap_err();
        assert!(matches!(err, BundleError::Unreadable(_)), "{err}");

        // One flipped byte inside an int8 tensor, and inside its scales.
        let (header_len, header) = SafeTensors::read_metadata(&bytes).unwrap();
        for name in ["generator.up_8.weight", "generator.up_8.weight.q_scale"] {
            let info = header.info(name).unwrap();
            let at = 8 + header_len + info.data_offsets.0 + 3;
            let mut corrupted = bytes.clone();
            corrupted[at] ^= 0x10;
            let err = load(&corrupted).unwrap_err();
            assert!(matches!(err, BundleError::Checksum { .. }), "{name}: {err}");
        }

        assert_newer_and_foreign_refused(&bytes, GAN_INT_CLS_FORMAT, GAN_INT_CLS_VERSION, load);
        let err = load_damsm(&bytes, &device).unwrap_err();
        assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");

        let unknown = replace_same_length(
            &bytes,
            "\"t2i.precision\":\"int8\"",
            "\"t2i.precision\":\"int9\"",
        );
        let err = load(&unknown).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::BadMetadata {
                    key: KEY_PRECISION,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("int9"), "{err}");

        // The quantization table is metadata (outside the checksum): a damaged entry is still
        // refused, naming the tensor.
        let damaged = replace_same_length(&bytes, "scheme\\\":\\\"int8", "scheme\\\":\\\"int9");
        let err = load(&damaged).unwrap_err();
        assert!(
            matches!(err, BundleError::Quantization(QuantError::Tensor { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("int9"), "{err}");

        // Networks that do not fit together are refused when saving.
        let wide = GanIntClsConfig::small(32);
        let err = save_bundle(&weights, &text, &wide, &vocabulary, Precision::F32).unwrap_err();
        assert!(matches!(err, BundleError::ConfigMismatch(_)), "{err}");
    }

    /// Both stages' images for fixed inputs.
    fn stackgan_images(generators: &StackGanGenerators, gan: &StackGanConfig) -> Vec<f32> {
        let device = Device::flex();
        let wave =
            |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        let text = Tensor::from_data(TensorData::new(wave(2 * 16, 0.91), [2, 16]), &device);
        let width = gan.noise_width();
        let noise = Tensor::from_data(TensorData::new(wave(2 * width, 0.37), [2, width]), &device);
        let (low, high) = generators.forward(text, noise, gan);
        let mut out = low.into_data().try_to_vec::<f32>().unwrap();
        out.extend(high.into_data().try_to_vec::<f32>().unwrap());
        out
    }

    #[test]
    fn stackgan_bundle_round_trips_and_is_told_apart() {
        let (gan_int_cls, text, _, vocabulary) = trained();
        let gan = StackGanConfig::small(16)
            .with_stage1_ngf(8)
            .with_stage2_ngf(8)
            .with_residual_blocks(1);
        let device = Device::flex();
        let weights = StackGanWeights {
            text_encoder: gan_int_cls.text_encoder,
            generators: StackGanGenerators {
                stage1: gan.init_stage1_generator(&device),
                stage2: gan.init_stage2_generator(&device),
            },
        }
        .valid();
        let expected = stackgan_images(&weights.generators, &gan);
        let bytes = save_bundle(&weights, &text, &gan, &vocabulary, Precision::F32).unwrap();
        let GanBundle::StackGan(loaded) = load_gan(&bytes, &device).unwrap() else {
            panic!("a StackGAN bundle loads as StackGAN");
        };
        assert_eq!(stackgan_images(&loaded.weights.generators, &gan), expected);
        assert_eq!(loaded.gan_config.to_string(), gan.to_string());

        let int8 = save_bundle(&weights, &text, &gan, &vocabulary, Precision::Int8).unwrap();
        assert!(
            int8.len() * 3 < bytes.len(),
            "{} vs {}",
            int8.len(),
            bytes.len()
        );
        let loaded = load_bundle::<StackGanWeights>(&int8, &device).unwrap();
        let got = stackgan_images(&loaded.weights.generators, &gan);
        let error = got
            .iter()
            .zip(&expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(error < 0.05, "int8 StackGAN images differ by {error}");

        // Each loader refuses the other family's bundle by name.
        let err = load_bundle::<GanIntClsWeights>(&bytes, &device).unwrap_err();
        assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");
        assert!(err.to_string().contains("t2i-stackgan"), "{err}");
        // A Stage-II that reads another text width is refused when saving.
        let wide = gan.clone().with_text_dim(32);
        let err = save_bundle(&weights, &text, &wide, &vocabulary, Precision::F32).unwrap_err();
        assert!(matches!(err, BundleError::ConfigMismatch(_)), "{err}");
    }

    /// Every stage's images and attention maps of an AttnGAN generator for fixed inputs: two
    /// captions of 5 and 3 words.
    fn attngan_outputs(generator: &AttnGanGenerator, gan: &AttnGanConfig) -> Vec<f32> {
        let device = Device::flex();
        let wave =
            |n: usize, f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        let (b, t, e) = (2, 5, gan.text_dim);
        let sentence = Tensor::from_data(TensorData::new(wave(b * e, 0.91), [b, e]), &device);
        let words = Tensor::from_data(TensorData::new(wave(b * e * t, 0.53), [b, e, t]), &device);
        let padding = crate::attngan::padding_mask(&[5, 3], t, &device);
        let z = gan.noise_dim;
        let noise = Tensor::from_data(TensorData::new(wave(b * z, 0.37), [b, z]), &device);
        let c = gan.condition_dim;
        let eps = Tensor::from_data(TensorData::new(wave(b * c, 0.71), [b, c]), &device);
        let out = generator.forward(sentence, words, padding, noise, eps);
        out.images
            .into_iter()
            .chain(out.attention)
            .flat_map(|x| x.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn attngan_bundle_round_trips_and_is_told_apart() {
        let (gan_int_cls, text, gan_int_cls_config, vocabulary) = trained();
        let gan = AttnGanConfig::small()
            .with_text_dim(text.feature_dim)
            .with_condition_dim(8)
            .with_noise_dim(8)
            .with_ngf(4)
            .with_ndf(4);
        let device = Device::flex();
        let weights = AttnGanWeights {
            text_encoder: gan_int_cls.text_encoder.clone(),
            generator: gan.init_generator(&device),
        }
        .valid();
        let expected = attngan_outputs(&weights.generator, &gan);
        let bytes = save_bundle(&weights, &text, &gan, &vocabulary, Precision::F32).unwrap();
        let GanBundle::AttnGan(loaded) = load_gan(&bytes, &device).unwrap() else {
            panic!("an AttnGAN bundle loads as AttnGAN");
        };
        assert_eq!(attngan_outputs(&loaded.weights.generator, &gan), expected);
        assert_eq!(loaded.gan_config.to_string(), gan.to_string());
        assert_eq!(loaded.vocabulary, vocabulary);
        assert_eq!(loaded.precision, Precision::F32);
        assert_eq!(loaded.weights.generator.stages(), 3);
        let tokens = vocabulary.encode("a small red bird").tokens;
        let words = |encoder: &TextEncoder| {
            let features = encoder.encode_ids(&[&tokens], &device);
            features.words.into_data().try_to_vec::<f32>().unwrap()
        };
        assert_eq!(
            words(&loaded.weights.text_encoder),
            words(&weights.text_encoder)
        );

        let int8 = save_bundle(&weights, &text, &gan, &vocabulary, Precision::Int8).unwrap();
        // Not a quarter: this tiny generator's batch-norm vectors and small tensors stay f32.
        assert!(
            int8.len() * 2 < bytes.len(),
            "{} vs {}",
            int8.len(),
            bytes.len()
        );
        let loaded = load_bundle::<AttnGanWeights>(&int8, &device).unwrap();
        assert_eq!(loaded.precision, Precision::Int8);
        let got = attngan_outputs(&loaded.weights.generator, &gan);
        let error = max_abs_diff(&got, &expected);
        assert!(error < 0.05, "int8 AttnGAN outputs differ by {error}");

        // Each loader refuses the other families' bundles by name.
        let other = save(
            &gan_int_cls,
            &text,
            &gan_int_cls_config,
            &vocabulary,
            Precision::F32,
        );
        let err = load_bundle::<AttnGanWeights>(&other, &device).unwrap_err();
        assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");
        assert!(err.to_string().contains("t2i-gan-int-cls"), "{err}");
        for err in [
            load_bundle::<GanIntClsWeights>(&bytes, &device).unwrap_err(),
            load_bundle::<StackGanWeights>(&bytes, &device).unwrap_err(),
            load_damsm(&bytes, &device).map(|_| ()).unwrap_err(),
        ] {
            assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");
            assert!(err.to_string().contains("t2i-attngan"), "{err}");
        }
        // Networks that do not fit together are refused when saving.
        let wide = gan.clone().with_text_dim(32);
        let err = save_bundle(&weights, &text, &wide, &vocabulary, Precision::F32).unwrap_err();
        assert!(matches!(err, BundleError::ConfigMismatch(_)), "{err}");
        let two = gan.clone().with_branch_num(2);
        let err = save_bundle(&weights, &text, &two, &vocabulary, Precision::F32).unwrap_err();
        assert!(err.to_string().contains("branch_num"), "{err}");
    }

    fn small_damsm() -> (crate::damsm::Damsm, DamsmConfig, Vocabulary) {
        let vocabulary = Vocabulary::build(["a red bird with a short beak", "a blue bird"], 1);
        let config = DamsmConfig::new(
            TextEncoderConfig::new(vocabulary.len())
                .with_embedding_dim(8)
                .with_feature_dim(6),
        )
        .with_image(crate::damsm::ImageEncoderConfig::new().with_feature_dim(6));
        let damsm = config.init(&Device::flex());
        (damsm, config, vocabulary)
    }

    fn damsm_sentence(damsm: &crate::damsm::Damsm, vocabulary: &Vocabulary) -> Vec<f32> {
        let tokens = vocabulary.encode("a red bird").tokens;
        damsm
            .text_encoder
            .encode_ids(&[&tokens], &Device::flex())
            .sentence
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn round_trip_keeps_weights_config_and_vocabulary() {
        let (damsm, config, vocabulary) = small_damsm();
        let bytes = save_damsm(&damsm, &config, &vocabulary).unwrap();
        let (loaded, loaded_config, loaded_vocabulary) =
            load_damsm(&bytes, &Device::flex()).unwrap();
        assert_eq!(loaded_vocabulary, vocabulary);
        assert_eq!(loaded_config.to_string(), config.to_string());
        assert_eq!(
            damsm_sentence(&loaded, &vocabulary),
            damsm_sentence(&damsm, &vocabulary)
        );
        // Saving is deterministic: the same model gives the same bytes.
        assert_eq!(
            save_damsm(&loaded, &loaded_config, &loaded_vocabulary)
                .unwrap()
                .len(),
            bytes.len()
        );
    }

    #[test]
    fn damaged_and_foreign_files_are_refused_with_the_reason() {
        let (damsm, config, vocabulary) = small_damsm();
        let bytes = save_damsm(&damsm, &config, &vocabulary).unwrap();
        let device = Device::flex();

        let truncated = &bytes[..bytes.len() - 10];
        assert!(matches!(
            load_damsm(truncated, &device),
            Err(BundleError::Unreadable(_))
        ));
        assert!(matches!(
            load_damsm(b"hello", &device),
            Err(BundleError::Unreadable(_))
        ));

        // Flip one byte of tensor data (the end of the file is tensor bytes).
        let mut corrupted = bytes.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 0x55;
        let err = load_damsm(&corrupted, &device).unwrap_err();
        assert!(matches!(err, BundleError::Checksum { .. }), "{err}");

        assert_newer_and_foreign_refused(&bytes, DAMSM_FORMAT, DAMSM_VERSION, |bytes| {
            load_damsm(bytes, &device).map(|_| ())
        });
    }

    /// A bundle whose header claims the next version, or another format than `format`, is
    /// refused by `load` with the error that says so (the header rewritten in place).
    fn assert_newer_and_foreign_refused(
        bytes: &[u8],
        format: &str,
        version: u32,
        load: impl Fn(&[u8]) -> Result<(), BundleError>,
    ) {
        let newer = replace_same_length(
            bytes,
            &format!("\"t2i.version\":\"{version}\""),
            &format!("\"t2i.version\":\"{}\"", version + 1),
        );
        let err = load(&newer).unwrap_err();
        assert!(
            matches!(err, BundleError::UnsupportedVersion { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("version {}", version + 1)),
            "{err}"
        );
        let other = format!("{}?", &format[..format.len() - 1]);
        let foreign = replace_same_length(
            bytes,
            &format!("\"t2i.format\":\"{format}\""),
            &format!("\"t2i.format\":\"{other}\""),
        );
        let err = load(&foreign).unwrap_err();
        assert!(matches!(err, BundleError::WrongFormat { .. }), "{err}");
    }

    fn replace_same_length(bytes: &[u8], needle: &str, replacement: &str) -> Vec<u8> {
        assert_eq!(needle.len(), replacement.len());
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{needle} is in the header"));
        let mut out = bytes.to_vec();
        out[at..at + needle.len()].copy_from_slice(replacement.as_bytes());
        out
    }
}
