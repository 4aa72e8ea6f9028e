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
//! A truncated, corrupted, foreign or newer file gives a [`BundleError`] that says which.

use std::collections::HashMap;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use crate::damsm::{Damsm, DamsmConfig};
use crate::vocab::Vocabulary;

/// Format name of a DAMSM bundle (text encoder, image projections, vocabulary).
pub const DAMSM_FORMAT: &str = "t2i-damsm";
/// The DAMSM bundle version this build writes and reads.
pub const DAMSM_VERSION: u32 = 1;

const KEY_FORMAT: &str = "t2i.format";
const KEY_VERSION: &str = "t2i.version";
const KEY_CONFIG: &str = "t2i.config";
const KEY_VOCABULARY: &str = "t2i.vocabulary";
const KEY_SHA256: &str = "t2i.sha256";

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
    let config_json = metadata
        .get(KEY_CONFIG)
        .ok_or(BundleError::MissingMetadata(KEY_CONFIG))?;
    let config: DamsmConfig =
        serde_json::from_str(config_json).map_err(|e| BundleError::BadMetadata {
            key: KEY_CONFIG,
            reason: e.to_string(),
        })?;
    let vocabulary = Vocabulary::from_json(
        metadata
            .get(KEY_VOCABULARY)
            .ok_or(BundleError::MissingMetadata(KEY_VOCABULARY))?,
    )
    .map_err(|e| BundleError::BadMetadata {
        key: KEY_VOCABULARY,
        reason: e.to_string(),
    })?;
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
    let damsm = load_module(config.init(device), bytes)?;
    Ok((damsm, config, vocabulary))
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

fn load_module<M: Module>(mut module: M, bytes: &[u8]) -> Result<M, BundleError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    let result = module
        .load_from(&mut store)
        .map_err(|e| BundleError::Tensors(e.to_string()))?;
    if !result.is_success() || !result.missing.is_empty() {
        return Err(BundleError::Tensors(format!(
            "missing {:?}, unused {:?}, errors {:?}",
            result.missing, result.unused, result.errors
        )));
    }
    Ok(module)
}
