//! Reading a state dict: the file, its tensors by name, refusing anything that is not a tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::pytorch_reader::{self, DType as TorchDType, PickleValue, PytorchReader};

use super::*;

/// A state dict read from a `.pth`: tensor names (as saved) to their metadata; the bytes are
/// read on demand.
pub struct Checkpoint {
    pub(super) path: PathBuf,
    pub(super) tensors: BTreeMap<String, pytorch_reader::Tensor>,
}

/// Batch-norm step counters: PyTorch's bookkeeping, with no counterpart here.
pub(super) fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

impl Checkpoint {
    /// Opens a `.pth` holding a state dict (or a dict with one under `state_dict`), checking
    /// that every entry is a tensor.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let metadata = std::fs::metadata(path).map_err(|e| ImportError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !metadata.is_file() {
            return Err(ImportError::Open {
                path: path.to_path_buf(),
                reason: "not a file".into(),
            });
        }
        let unreadable = |e: pytorch_reader::PytorchError| ImportError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let root = PytorchReader::read_pickle_data(path, None).map_err(unreadable)?;
        let top_level_key = state_dict_key(path, &root)?;
        let reader = match top_level_key {
            Some(key) => PytorchReader::with_top_level_key(path, key),
            None => PytorchReader::new(path),
        }
        .map_err(unreadable)?;
        // DataParallel saves every name under `module.`.
        let tensors = reader
            .into_tensors()
            .into_iter()
            .map(|(name, tensor)| {
                let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
                (name, tensor)
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name, batch-norm counters included, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of tensor `name`, if the file has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape())
    }

    pub(super) fn require_shape(&self, name: &str, what: &str) -> Result<&[usize], ImportError> {
        self.shape(name).ok_or_else(|| {
            ImportError::invalid(
                &self.path,
                format!("has no tensor {name:?}: this is not {what}"),
            )
        })
    }

    /// Tensor `name` as f32 values in PyTorch's (row-major) layout.
    pub fn values(&self, name: &str) -> Result<Vec<f32>, ImportError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| ImportError::invalid(&self.path, format!("has no tensor {name:?}")))?;
        let bytes = tensor.read().map_err(|e| ImportError::Unreadable {
            path: self.path.clone(),
            reason: format!("tensor {name}: {e}"),
        })?;
        let floats = |size: usize, convert: fn(&[u8]) -> f32| -> Vec<f32> {
            bytes.chunks_exact(size).map(convert).collect()
        };
        Ok(match tensor.dtype() {
            TorchDType::F32 => floats(4, |b| f32::from_le_bytes(b.try_into().unwrap())),
            TorchDType::F64 => floats(8, |b| f64::from_le_bytes(b.try_into().unwrap()) as f32),
            TorchDType::F16 => floats(2, |b| {
                half::f16::from_le_bytes(b.try_into().unwrap()).to_f32()
            }),
            TorchDType::BF16 => floats(2, |b| {
                half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32()
            }),
            other => {
                return Err(ImportError::invalid(
                    &self.path,
                    format!("tensor {name} holds {other:?} values, not floating point"),
                ));
            }
        })
    }
}

/// Where the state dict sits in a checkpoint's root pickle: the root itself (what the
/// authors save) or its `state_dict` entry. Refuses anything in the state dict that is not a
/// tensor, naming it: a pickle can describe arbitrary Python calls, which are never run here,
/// and a weight file has no business holding one.
pub(super) fn state_dict_key(
    path: &Path,
    root: &PickleValue,
) -> Result<Option<&'static str>, ImportError> {
    let refused = |reason: String| ImportError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let PickleValue::Dict(entries) = root else {
        return Err(refused(format!(
            "the file holds {}, not a state dict (a dictionary of tensors)",
            describe(root)
        )));
    };
    let (entries, key) = match entries.get("state_dict") {
        Some(PickleValue::Dict(inner)) => (inner, Some("state_dict")),
        _ => (entries, None),
    };
    // `state_dict()` is an OrderedDict carrying a `_metadata` attribute (module versions):
    // plain values, read and ignored.
    let mut foreign: Vec<String> = entries
        .iter()
        .filter(|(name, value)| match value {
            PickleValue::Unsupported(t) => t != "torch.Tensor",
            PickleValue::Dict(_) if name.as_str() == "_metadata" => !is_plain(value),
            _ => true,
        })
        .map(|(name, value)| format!("{name:?} is {}", describe(value)))
        .collect();
    if !foreign.is_empty() {
        foreign.sort();
        return Err(refused(format!(
            "a state dict holds only tensors, but {} (nothing in the file was executed)",
            foreign.join(", ")
        )));
    }
    Ok(key)
}

/// Whether `value` is built of plain Python values only (no object of any class).
pub(super) fn is_plain(value: &PickleValue) -> bool {
    match value {
        PickleValue::Unsupported(_) => false,
        PickleValue::List(items) => items.iter().all(is_plain),
        PickleValue::Dict(entries) => entries.values().all(is_plain),
        _ => true,
    }
}

/// A pickled value's Python type, for error messages.
pub(super) fn describe(value: &PickleValue) -> String {
    match value {
        PickleValue::None => "None".into(),
        PickleValue::Bool(_) => "a bool".into(),
        PickleValue::Int(_) => "an int".into(),
        PickleValue::Float(_) => "a float".into(),
        PickleValue::String(_) => "a str".into(),
        PickleValue::List(_) => "a list".into(),
        PickleValue::Dict(_) => "a dict".into(),
        PickleValue::Bytes(_) => "bytes".into(),
        PickleValue::Unsupported(name) => format!("a {name} object"),
    }
}
