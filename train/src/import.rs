//! `t2i import`: the authors' PyTorch checkpoints as ordinary bundles.
//!
//! Reads what the reference code saves with `torch.save(net.state_dict(), ..)`:
//! - AttnGAN (taoxugit/AttnGAN): the generator `netG_*.pth`, the DAMSM text encoder
//!   `text_encoder*.pth`, the image encoder `image_encoder*.pth` (only its two trainable
//!   projections are read: the Inception-v3 it also holds is the frozen ImageNet network this
//!   project already has) and the vocabulary in `captions.pickle`;
//! - StackGAN-Pytorch (hanzhanggit): the Stage-I and Stage-II generators (`netG_epoch_*.pth`;
//!   a Stage-II file holds its Stage-I under `STAGE1_G.`);
//! - GAN-INT-CLS: a state dict whose names are this project's module paths.
//!
//! Files are parsed by `pytorch-reader` (burn's reader, pure Rust): both the zip container of
//! PyTorch 1.6+ and the legacy zip-less stream of the PyTorch 0.3 / 0.4 the authors used.
//! Nothing in a pickle is ever executed; a state dict holding anything but tensors (a class
//! instance, a function call) is refused with the entry's name and Python type.
//!
//! Sizes are read off the checkpoint (e.g. AttnGAN's `ngf` from `h_net1.fc.0.weight`), the
//! module is built at those sizes, and every tensor is then checked against it in the
//! checkpoint's own names and layout: missing, unexpected and mis-shaped tensors are all listed
//! in one error. Names map onto the modules one to one through the key tables below; PyTorch
//! layouts are adapted on load (linear weights transposed, batch norm `weight`/`bias` as
//! `gamma`/`beta`, an LSTM's four stacked gates split into burn's per-gate layers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use burn::module::Module;
use burn::prelude::*;
use burn::store::pytorch_reader::{self, DType as TorchDType, PickleValue, PytorchReader};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use regex::Regex;
use safetensors::tensor::{Dtype, TensorView};
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, GENERATOR_KEYS};
use t2i::bundle::{self, AttnGanWeights, GanIntClsWeights, StackGanWeights};
use t2i::damsm::{
    Damsm, DamsmConfig, ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig,
};
use t2i::gan_int_cls::{GanIntClsConfig, Generator};
use t2i::key_map::{Direction, KeyTable, remapping};
use t2i::quant::Precision;
use t2i::stackgan::{StackGanConfig, StackGanGenerators};
use t2i::vocab::{END_TOKEN, Vocabulary};

use crate::damsm::commands::TextSide;
use crate::run::checkpoint::write_bundle;

/// What is wrong with a checkpoint, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot open: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: not a readable PyTorch checkpoint (truncated or corrupted?): {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("{}: {mismatch}", path.display())]
    Mismatch { path: PathBuf, mismatch: Mismatch },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl ImportError {
    fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// How a checkpoint's tensors differ from the module they should fill, in the checkpoint's
/// names and PyTorch layout.
#[derive(Debug, Default, PartialEq)]
pub struct Mismatch {
    /// What the tensors were read as (e.g. "an AttnGAN generator (ngf 32, 3 stages)").
    pub what: String,
    /// Tensors the module needs that the file lacks: (name, expected shape).
    pub missing: Vec<(String, Vec<usize>)>,
    /// Tensors in the file the module has no place for: (name, shape).
    pub unexpected: Vec<(String, Vec<usize>)>,
    /// (name, shape in the file, shape the module needs).
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl Mismatch {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.misshaped.is_empty()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the tensors do not fit {}", self.what)?;
        for (name, shape) in &self.missing {
            write!(f, "\n  missing    {name} {shape:?}")?;
        }
        for (name, shape) in &self.unexpected {
            write!(f, "\n  unexpected {name} {shape:?}")?;
        }
        for (name, found, expected) in &self.misshaped {
            write!(
                f,
                "\n  mis-shaped {name}: {found:?} in the file, {expected:?} expected"
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a state dict

/// A state dict read from a `.pth`: tensor names (as saved) to their metadata; the bytes are
/// read on demand.
pub struct Checkpoint {
    path: PathBuf,
    tensors: BTreeMap<String, pytorch_reader::Tensor>,
}

/// Batch-norm step counters: PyTorch's bookkeeping, with no counterpart here.
fn is_counter(name: &str) -> bool {
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

    fn require_shape(&self, name: &str, what: &str) -> Result<&[usize], ImportError> {
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
fn state_dict_key(path: &Path, root: &PickleValue) -> Result<Option<&'static str>, ImportError> {
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
fn is_plain(value: &PickleValue) -> bool {
    match value {
        PickleValue::Unsupported(_) => false,
        PickleValue::List(items) => items.iter().all(is_plain),
        PickleValue::Dict(entries) => entries.values().all(is_plain),
        _ => true,
    }
}

/// A pickled value's Python type, for error messages.
fn describe(value: &PickleValue) -> String {
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

// ---------------------------------------------------------------------------------------------
// Matching a state dict to a module

/// How one family's checkpoint names relate to this project's module paths.
struct KeyMap {
    /// `(theirs, ours)` name patterns ([`t2i::key_map`]), read checkpoint -> module to load
    /// and module -> checkpoint to name what is missing.
    keys: KeyTable,
    /// Checkpoint names read elsewhere or deliberately not read.
    skip: &'static [&'static str],
}

/// A key table read one way, compiled once per load: (regex, replacement).
fn compile_rules(keys: KeyTable, direction: Direction) -> Vec<(Regex, String)> {
    remapping(keys, direction)
        .into_iter()
        .map(|(from, to)| (Regex::new(&from).expect("key rules are valid regexes"), to))
        .collect()
}

fn apply_rules(name: &str, rules: &[(Regex, String)]) -> String {
    rules.iter().fold(name.to_string(), |name, (from, to)| {
        from.replace_all(&name, to.as_str()).into_owned()
    })
}

/// burn's LSTM gate layers in the order PyTorch stacks them in `weight_ih_l0` (i, f, g, o).
const LSTM_GATES: [&str; 4] = ["input_gate", "forget_gate", "cell_gate", "output_gate"];

/// `rnn.{forward,reverse}.<gate>.{input,hidden}_transform.{weight,bias}` -> the PyTorch LSTM
/// tensor holding it and the gate's index in the stack.
fn lstm_source(module_path: &str) -> Option<(String, usize)> {
    static GATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(.*)\.(forward|reverse)\.(input_gate|forget_gate|cell_gate|output_gate)\.(input|hidden)_transform\.(weight|bias)$",
        )
        .unwrap()
    });
    let c = GATE.captures(module_path)?;
    let kind = if &c[4] == "input" { "ih" } else { "hh" };
    let suffix = if &c[2] == "reverse" { "_reverse" } else { "" };
    let gate = LSTM_GATES.iter().position(|g| *g == &c[3])?;
    Some((format!("{}.{}_{kind}_l0{suffix}", &c[1], &c[5]), gate))
}

/// Where one module tensor comes from in the checkpoint.
struct Source {
    name: String,
    /// For an LSTM gate: its index among the four stacked along the first axis.
    gate: Option<usize>,
}

/// Fills `module` from `checkpoint` (only names under `prefix`, which is stripped), checking
/// every tensor first. `what` describes the module in errors.
fn load_checked<M: Module + ModuleSnapshot>(
    mut module: M,
    checkpoint: &Checkpoint,
    prefix: &str,
    keys: &KeyMap,
    what: &str,
) -> Result<M, ImportError> {
    let to_module = compile_rules(keys.keys, Direction::ToModule);
    let to_checkpoint = compile_rules(keys.keys, Direction::ToCheckpoint);
    // The module's tensors in PyTorch layout and naming, with where each comes from.
    let mut sources: Vec<(String, Vec<usize>, Source)> = Vec::new();
    let mut expected: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for tensor in module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false) {
        let path = tensor.name.clone();
        let shape = tensor.shape.to_vec();
        let source = match lstm_source(&path) {
            Some((name, gate)) => {
                let stacked = expected.entry(name.clone()).or_insert_with(|| {
                    let mut s = shape.clone();
                    s[0] = 0;
                    s
                });
                stacked[0] += shape[0];
                Source {
                    name,
                    gate: Some(gate),
                }
            }
            None => {
                let name = apply_rules(&path, &to_checkpoint);
                expected.insert(name.clone(), shape.clone());
                Source { name, gate: None }
            }
        };
        sources.push((path, shape, source));
    }

    let skip: Vec<Regex> = keys.skip.iter().map(|s| Regex::new(s).unwrap()).collect();
    let mut mismatch = Mismatch {
        what: what.to_string(),
        ..Mismatch::default()
    };
    let mut present = BTreeSet::new();
    for name in checkpoint.names() {
        let Some(local) = name.strip_prefix(prefix) else {
            continue;
        };
        if is_counter(local) || skip.iter().any(|r| r.is_match(local)) {
            continue;
        }
        let found = checkpoint.shape(name).unwrap_or_default().to_vec();
        // Names are compared after a round trip through the key tables, so a name that only
        // differs from the expected one by a numbering the tables normalise is still found.
        let normalised = apply_rules(&apply_rules(local, &to_module), &to_checkpoint);
        match expected.get(&normalised) {
            None => mismatch.unexpected.push((name.to_string(), found)),
            Some(shape) if *shape != found => {
                mismatch
                    .misshaped
                    .push((name.to_string(), found, shape.clone()));
                present.insert(normalised);
            }
            Some(_) => {
                present.insert(normalised);
            }
        }
    }
    for (name, shape) in &expected {
        if !present.contains(name) {
            mismatch
                .missing
                .push((format!("{prefix}{name}"), shape.clone()));
        }
    }
    if !mismatch.is_empty() {
        return Err(ImportError::Mismatch {
            path: checkpoint.path.clone(),
            mismatch,
        });
    }

    // Every tensor fits: write them under the module's paths, in PyTorch layout, and load
    // them through burn's PyTorch adapter.
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(sources.len());
    for (path, shape, source) in sources {
        let values = checkpoint.values(&format!("{prefix}{}", source.name))?;
        let values = match source.gate {
            None => values,
            Some(gate) => {
                let per_gate = values.len() / LSTM_GATES.len();
                values[gate * per_gate..(gate + 1) * per_gate].to_vec()
            }
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((path, shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(path, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .expect("sizes were checked against the module");
            (path.clone(), view)
        })
        .collect();
    let file = safetensors::serialize(views, None)
        .map_err(|e| ImportError::invalid(&checkpoint.path, e.to_string()))?;
    let mut store =
        SafetensorsStore::from_bytes(Some(file)).with_from_adapter(PyTorchToBurnAdapter);
    let result = module
        .load_from(&mut store)
        .map_err(|e| ImportError::invalid(&checkpoint.path, e.to_string()))?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(ImportError::invalid(
            &checkpoint.path,
            format!(
                "internal mapping error loading {what}: missing {:?}, unused {:?}, errors {:?}",
                result.missing, result.unused, result.errors
            ),
        ));
    }
    Ok(module)
}

// ---------------------------------------------------------------------------------------------
// The families

/// AttnGAN's `G_NET`.
const ATTNGAN_GENERATOR_KEYS: KeyMap = KeyMap {
    keys: GENERATOR_KEYS,
    skip: &[],
};

/// DAMSM's `RNN_ENCODER` (`encoder`, `rnn`): the embedding maps as is, the LSTM by gate.
const TEXT_ENCODER_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[],
};

/// The Inception-v3 layers the authors' `CNN_ENCODER` holds beside its projections.
const INCEPTION_LAYERS: &str = r"^(Conv2d_\d[a-z]_\dx\d|Mixed_\d[a-z]|AuxLogits|fc)\.";

/// DAMSM's `CNN_ENCODER`: the two projections; the Inception-v3 is skipped.
const IMAGE_ENCODER_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[INCEPTION_LAYERS],
};

/// StackGAN-Pytorch's `STAGE1_G`.
const STAGE1_KEYS: KeyMap = KeyMap {
    keys: &[
        ("^fc.0.", "^fc."),
        ("^fc.1.", "^fc_bn."),
        ("^upsample{n}.1.", "^upsample{n}.conv."),
        ("^upsample{n}.2.", "^upsample{n}.bn."),
        ("^img.0.", "^img."),
    ],
    skip: &[],
};

/// StackGAN-Pytorch's `STAGE2_G` (its `STAGE1_G.` tensors are read separately).
const STAGE2_KEYS: KeyMap = KeyMap {
    keys: &[
        ("^encoder.0.", "^encoder.conv."),
        ("^encoder.2.", "^encoder.down1."),
        ("^encoder.3.", "^encoder.down1_bn."),
        ("^encoder.5.", "^encoder.down2."),
        ("^encoder.6.", "^encoder.down2_bn."),
        ("^hr_joint.0.", "^hr_joint."),
        ("^hr_joint.1.", "^hr_joint_bn."),
        ("^residual.{n}.block.0.", "^residual.{n}.conv1."),
        ("^residual.{n}.block.1.", "^residual.{n}.bn1."),
        ("^residual.{n}.block.3.", "^residual.{n}.conv2."),
        ("^residual.{n}.block.4.", "^residual.{n}.bn2."),
        ("^upsample{n}.1.", "^upsample{n}.conv."),
        ("^upsample{n}.2.", "^upsample{n}.bn."),
        ("^img.0.", "^img."),
    ],
    skip: &[r"^STAGE1_G\."],
};

/// GAN-INT-CLS: this project's own module paths.
const GAN_INT_CLS_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[],
};

/// `dims[axis]` of tensor `name`, checked to have `rank` dimensions.
fn dim(
    checkpoint: &Checkpoint,
    name: &str,
    rank: usize,
    axis: usize,
    what: &str,
) -> Result<usize, ImportError> {
    let shape = checkpoint.require_shape(name, what)?;
    if shape.len() != rank {
        return Err(ImportError::invalid(
            &checkpoint.path,
            format!("{name} has shape {shape:?}, but in {what} it has {rank} dimensions"),
        ));
    }
    Ok(shape[axis])
}

/// Indices `N` of the names `{prefix}N.` (residual blocks), counted.
fn count_numbered(checkpoint: &Checkpoint, prefix: &str) -> usize {
    checkpoint
        .names()
        .filter_map(|n| {
            n.strip_prefix(prefix)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .collect::<BTreeSet<_>>()
        .len()
}

fn has_prefix(checkpoint: &Checkpoint, prefix: &str) -> bool {
    checkpoint.names().any(|n| n.starts_with(prefix))
}

/// AttnGAN's generator (`netG_*.pth`); its sizes come from the file. `authors_mask_order`
/// reproduces the authors' attention masking bit for bit (see [`AttnGanConfig`]).
pub fn attngan_generator(
    path: &Path,
    authors_mask_order: bool,
    device: &Device,
) -> Result<(AttnGanGenerator, AttnGanConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "an AttnGAN generator (G_NET)";
    let ca_width = dim(&checkpoint, "ca_net.fc.weight", 2, 0, what)?;
    let text_dim = dim(&checkpoint, "ca_net.fc.weight", 2, 1, what)?;
    let fc_width = dim(&checkpoint, "h_net1.fc.0.weight", 2, 0, what)?;
    let fc_input = dim(&checkpoint, "h_net1.fc.0.weight", 2, 1, what)?;
    // CA: fc to 4C, GLU to 2C = (mu, logvar). INIT_STAGE_G: fc to 16 ngf x 4 x 4 x 2 (GLU).
    let condition_dim = ca_width / 4;
    let ngf = fc_width / (16 * 16 * 2);
    let branch_num = 1
        + usize::from(has_prefix(&checkpoint, "h_net2."))
        + usize::from(has_prefix(&checkpoint, "h_net3."));
    let residual_blocks = match count_numbered(&checkpoint, "h_net2.residual.") {
        0 => 2,
        n => n,
    };
    if ca_width % 4 != 0 || fc_width % 512 != 0 || ngf == 0 || fc_input <= condition_dim {
        return Err(ImportError::invalid(
            path,
            format!(
                "ca_net.fc.weight {:?} and h_net1.fc.0.weight {:?} do not describe an AttnGAN generator",
                checkpoint.shape("ca_net.fc.weight").unwrap_or_default(),
                checkpoint.shape("h_net1.fc.0.weight").unwrap_or_default()
            ),
        ));
    }
    let config = AttnGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(condition_dim)
        .with_noise_dim(fc_input - condition_dim)
        .with_ngf(ngf)
        .with_residual_blocks(residual_blocks)
        .with_branch_num(branch_num)
        .with_authors_mask_order(authors_mask_order);
    config
        .validate()
        .map_err(|e| ImportError::invalid(path, e))?;
    let what = format!(
        "an AttnGAN generator (ngf {ngf}, {branch_num} stages, {residual_blocks} residual blocks, \
         {text_dim}-value text features)"
    );
    let generator = load_checked(
        config.init_generator(device),
        &checkpoint,
        "",
        &ATTNGAN_GENERATOR_KEYS,
        &what,
    )?;
    Ok((generator, config))
}

/// DAMSM's text encoder (`text_encoder*.pth`); sizes from the file. The dropout rate is not
/// stored (it only acts in training) and is set to the authors' 0.5.
pub fn text_encoder(
    path: &Path,
    device: &Device,
) -> Result<(TextEncoder, TextEncoderConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a DAMSM text encoder (RNN_ENCODER)";
    let vocab_size = dim(&checkpoint, "encoder.weight", 2, 0, what)?;
    let embedding_dim = dim(&checkpoint, "encoder.weight", 2, 1, what)?;
    // [4H, H] in either direction; a file with neither is not an LSTM, one with only the
    // forward direction is reported below as missing the reverse tensors.
    let hidden_from = ["rnn.weight_hh_l0", "rnn.weight_hh_l0_reverse"]
        .into_iter()
        .find(|name| checkpoint.shape(name).is_some())
        .unwrap_or("rnn.weight_hh_l0");
    let hidden = dim(&checkpoint, hidden_from, 2, 1, what)?;
    let config = TextEncoderConfig::new(vocab_size)
        .with_embedding_dim(embedding_dim)
        .with_feature_dim(2 * hidden);
    let what = format!(
        "a DAMSM text encoder ({vocab_size} words, {embedding_dim}-value embeddings, \
         {hidden} LSTM units per direction)"
    );
    let encoder = load_checked(
        config.init(device),
        &checkpoint,
        "",
        &TEXT_ENCODER_KEYS,
        &what,
    )?;
    Ok((encoder, config))
}

/// DAMSM's image encoder projections (`image_encoder*.pth`); the Inception-v3 weights in the
/// file are skipped.
pub fn image_encoder(
    path: &Path,
    device: &Device,
) -> Result<(ImageEncoder, ImageEncoderConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a DAMSM image encoder (CNN_ENCODER)";
    let feature_dim = dim(&checkpoint, "emb_cnn_code.weight", 2, 0, what)?;
    let config = ImageEncoderConfig::new().with_feature_dim(feature_dim);
    let what = format!("a DAMSM image encoder ({feature_dim}-value features)");
    let encoder = load_checked(
        config.init(device),
        &checkpoint,
        "",
        &IMAGE_ENCODER_KEYS,
        &what,
    )?;
    Ok((encoder, config))
}

/// StackGAN-Pytorch's generators: `stage2` (`STAGE2_G`, holding its Stage-I under
/// `STAGE1_G.`), with the Stage-I taken from `stage1` (`STAGE1_G`) instead when given.
pub fn stackgan_generators(
    stage2: &Path,
    stage1: Option<&Path>,
    device: &Device,
) -> Result<(StackGanGenerators, StackGanConfig), ImportError> {
    let second = Checkpoint::open(stage2)?;
    let first_file = stage1.map(Checkpoint::open).transpose()?;
    let (first, first_prefix) = match &first_file {
        Some(c) => (c, ""),
        None => (&second, "STAGE1_G."),
    };
    let what1 = "a StackGAN Stage-I generator (STAGE1_G)";
    let what2 = "a StackGAN Stage-II generator (STAGE2_G)";
    let ca1 = format!("{first_prefix}ca_net.fc.weight");
    let fc1 = format!("{first_prefix}fc.0.weight");
    let condition_dim = dim(first, &ca1, 2, 0, what1)? / 2;
    let text_dim = dim(first, &ca1, 2, 1, what1)?;
    let stage1_ngf = dim(first, &fc1, 2, 0, what1)? / (8 * 16);
    let noise_dim = dim(first, &fc1, 2, 1, what1)?.saturating_sub(condition_dim);
    let stage2_ngf = dim(&second, "encoder.0.weight", 4, 0, what2)?;
    let residual_blocks = count_numbered(&second, "residual.");
    let stage2_text = dim(&second, "ca_net.fc.weight", 2, 1, what2)?;
    let stage2_condition = dim(&second, "ca_net.fc.weight", 2, 0, what2)? / 2;
    if (stage2_text, stage2_condition) != (text_dim, condition_dim) {
        return Err(ImportError::invalid(
            stage2,
            format!(
                "Stage-II's CA reads {stage2_text}-value text into a {stage2_condition}-value \
                 condition, Stage-I's {text_dim} into {condition_dim}: not one model"
            ),
        ));
    }
    let config = StackGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(condition_dim)
        .with_noise_dim(noise_dim)
        .with_stage1_ngf(stage1_ngf)
        .with_stage2_ngf(stage2_ngf)
        .with_residual_blocks(residual_blocks);
    config
        .validate()
        .map_err(|e| ImportError::invalid(stage2, e))?;
    let stage1 = load_checked(
        config.init_stage1_generator(device),
        first,
        first_prefix,
        &STAGE1_KEYS,
        &format!("{what1} (gf_dim {stage1_ngf}, {text_dim}-value text)"),
    )?;
    let stage2 = load_checked(
        config.init_stage2_generator(device),
        &second,
        "",
        &STAGE2_KEYS,
        &format!("{what2} (gf_dim {stage2_ngf}, {residual_blocks} residual blocks)"),
    )?;
    Ok((StackGanGenerators { stage1, stage2 }, config))
}

/// A GAN-INT-CLS generator saved from PyTorch under this project's module paths.
pub fn gan_int_cls_generator(
    path: &Path,
    device: &Device,
) -> Result<(Generator, GanIntClsConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a GAN-INT-CLS generator";
    let projected = dim(&checkpoint, "text.fc.weight", 2, 0, what)?;
    let text_dim = dim(&checkpoint, "text.fc.weight", 2, 1, what)?;
    // ConvTranspose2d weights are [in, out, k, k] in PyTorch: [Z + N, 8 ngf, 4, 4].
    let project_in = dim(&checkpoint, "project.weight", 4, 0, what)?;
    let ngf = dim(&checkpoint, "project.weight", 4, 1, what)? / 8;
    let config = GanIntClsConfig::new()
        .with_text_dim(text_dim)
        .with_projected_text_dim(projected)
        .with_noise_dim(project_in.saturating_sub(projected))
        .with_ngf(ngf);
    if ngf < 4 || project_in <= projected {
        return Err(ImportError::invalid(
            path,
            format!("text.fc.weight and project.weight do not describe a {what}"),
        ));
    }
    let what = format!("{what} (ngf {ngf}, {text_dim}-value text)");
    let generator = load_checked(
        config.init_generator(device),
        &checkpoint,
        "",
        &GAN_INT_CLS_KEYS,
        &what,
    )?;
    Ok((generator, config))
}

// ---------------------------------------------------------------------------------------------
// The vocabulary

/// AttnGAN's vocabulary from its `captions.pickle` (`[train_captions, test_captions, ixtoword,
/// wordtoix]`): the index-to-word table, checked against the word-to-index one.
pub fn captions_vocabulary(path: &Path) -> Result<Vocabulary, ImportError> {
    std::fs::metadata(path).map_err(|e| ImportError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let root =
        PytorchReader::read_pickle_data(path, None).map_err(|e| ImportError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let shape_error = |found: String| {
        ImportError::invalid(
            path,
            format!(
                "expected AttnGAN's captions pickle, a list [train_captions, test_captions, \
                 ixtoword, wordtoix]; {found}"
            ),
        )
    };
    let PickleValue::List(parts) = root else {
        return Err(shape_error(format!("found {}", describe(&root))));
    };
    let [
        _,
        _,
        PickleValue::Dict(ix_to_word),
        PickleValue::Dict(word_to_ix),
    ] = parts.as_slice()
    else {
        return Err(shape_error(format!(
            "found a list of {} items: {}",
            parts.len(),
            parts.iter().map(describe).collect::<Vec<_>>().join(", ")
        )));
    };
    let word = |value: &PickleValue| match value {
        PickleValue::String(s) => Some(s.clone()),
        PickleValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    };
    let mut words = vec![None; ix_to_word.len()];
    for (index, value) in ix_to_word {
        let slot = index
            .parse::<usize>()
            .ok()
            .filter(|&i| i < words.len())
            .ok_or_else(|| {
                ImportError::invalid(
                    path,
                    format!(
                        "ixtoword has key {index:?}: the keys must be 0..{}",
                        words.len()
                    ),
                )
            })?;
        words[slot] = Some(word(value).ok_or_else(|| {
            ImportError::invalid(
                path,
                format!("ixtoword[{index}] is {}, not a word", describe(value)),
            )
        })?);
    }
    let words: Vec<String> = words.into_iter().map(Option::unwrap_or_default).collect();
    for (w, value) in word_to_ix {
        let agrees = matches!(value, PickleValue::Int(i)
            if usize::try_from(*i).ok().and_then(|i| words.get(i)) == Some(w));
        if !agrees {
            return Err(ImportError::invalid(
                path,
                format!("wordtoix[{w:?}] is {value:?}, which ixtoword does not map back to {w:?}"),
            ));
        }
    }
    if words.first().map(String::as_str) != Some(END_TOKEN) {
        return Err(ImportError::invalid(
            path,
            format!("ixtoword[0] is {:?}, expected {END_TOKEN:?}", words.first()),
        ));
    }
    Vocabulary::from_words(words).map_err(|e| ImportError::invalid(path, e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// The text side of a bundle

/// Where an imported generator's text encoder and vocabulary come from.
pub enum TextSource<'a> {
    /// The authors' `text_encoder*.pth` and `captions.pickle`.
    Checkpoint {
        encoder: &'a Path,
        captions: &'a Path,
    },
    /// Any bundle holding a text encoder (a DAMSM or generator bundle).
    Bundle(&'a Path),
}

/// Reads the text side of a bundle-to-be; the vocabulary must fill the embedding table.
pub fn text_side(source: TextSource<'_>, device: &Device) -> anyhow::Result<TextSide> {
    use anyhow::Context;
    match source {
        TextSource::Checkpoint { encoder, captions } => {
            let vocabulary = captions_vocabulary(captions)?;
            let (encoder_module, config) = text_encoder(encoder, device)?;
            if vocabulary.len() != config.vocab_size {
                anyhow::bail!(
                    "{} has {} words, but the text encoder {} has {} embedding rows: they are \
                     not from the same training",
                    captions.display(),
                    vocabulary.len(),
                    encoder.display(),
                    config.vocab_size
                );
            }
            Ok(TextSide {
                encoder: encoder_module,
                config,
                vocabulary,
            })
        }
        TextSource::Bundle(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let format = bundle::bundle_format(&bytes)
                .with_context(|| format!("{} is not a bundle", path.display()))?;
            let context = || format!("cannot load the text encoder of {}", path.display());
            if format == "t2i-damsm" {
                let (damsm, config, vocabulary) =
                    bundle::load_damsm(&bytes, device).with_context(context)?;
                return Ok(TextSide {
                    encoder: damsm.text_encoder,
                    config: config.text,
                    vocabulary,
                });
            }
            let gan = bundle::load_gan(&bytes, device).with_context(context)?;
            let text = gan.text();
            Ok(TextSide {
                encoder: text.encoder.clone(),
                config: text.config.clone(),
                vocabulary: text.vocabulary.clone(),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// `t2i import attngan`: the generator with its text side as an AttnGAN bundle.
pub fn write_attngan_bundle(
    generator: &Path,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let text = text_side(text, device)?;
    let (generator, gan_config) = attngan_generator(generator, false, device)?;
    eprintln!(
        "AttnGAN generator: ngf {}, {} stages, {} residual blocks, {}-value text features; \
         text encoder: {} words",
        gan_config.ngf,
        gan_config.branch_num,
        gan_config.residual_blocks,
        gan_config.text_dim,
        text.vocabulary.len()
    );
    let bundle = text.bundle::<AttnGanWeights>(generator, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported AttnGAN generator and text encoder",
    )
}

/// `t2i import stackgan`: both generators with a text side as a StackGAN bundle.
pub fn write_stackgan_bundle(
    stage2: &Path,
    stage1: Option<&Path>,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let (generators, gan_config) = stackgan_generators(stage2, stage1, device)?;
    eprintln!(
        "StackGAN generators: Stage-I gf_dim {}, Stage-II gf_dim {}, {} residual blocks, \
         {}-value text embedding",
        gan_config.stage1_ngf,
        gan_config.stage2_ngf,
        gan_config.residual_blocks,
        gan_config.text_dim
    );
    let text = text_side(text, device)?;
    if text.config.feature_dim != gan_config.text_dim {
        anyhow::bail!(
            "the generators read {}-value text embeddings (StackGAN-Pytorch's own birds models \
             read the 1024-value char-CNN-RNN embedding, which this project has no encoder \
             for), but the text encoder gives {}: pass a generator trained on DAMSM sentence \
             features of that width",
            gan_config.text_dim,
            text.config.feature_dim
        );
    }
    let bundle = text.bundle::<StackGanWeights>(generators, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported StackGAN generators and text encoder",
    )
}

/// `t2i import gan-int-cls`: a generator saved under this project's names, with a text side.
pub fn write_gan_int_cls_bundle(
    generator: &Path,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let (generator, gan_config) = gan_int_cls_generator(generator, device)?;
    eprintln!(
        "GAN-INT-CLS generator: ngf {}, {}-value text embedding",
        gan_config.ngf, gan_config.text_dim
    );
    let text = text_side(text, device)?;
    let bundle = text.bundle::<GanIntClsWeights>(generator, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported GAN-INT-CLS generator and text encoder",
    )
}

/// `t2i import damsm`: both DAMSM encoders and the vocabulary as a DAMSM bundle.
pub fn write_damsm_bundle(
    text_encoder_path: &Path,
    image_encoder_path: &Path,
    captions: &Path,
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let text = text_side(
        TextSource::Checkpoint {
            encoder: text_encoder_path,
            captions,
        },
        device,
    )?;
    let (image_encoder, image_config) = image_encoder(image_encoder_path, device)?;
    if image_config.feature_dim != text.config.feature_dim {
        anyhow::bail!(
            "{} gives {}-value features but {} gives {}: not one DAMSM",
            image_encoder_path.display(),
            image_config.feature_dim,
            text_encoder_path.display(),
            text.config.feature_dim
        );
    }
    let config = DamsmConfig {
        text: text.config,
        image: image_config,
    };
    let damsm = Damsm {
        text_encoder: text.encoder,
        image_encoder,
    };
    let bytes = bundle::save_damsm(&damsm, &config, &text.vocabulary)?;
    write_bundle(
        out,
        &bytes,
        Precision::F32,
        "imported DAMSM text and image encoders",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tables_invert_each_other() {
        let cases: [(&KeyMap, &[&str]); 3] = [
            (
                &ATTNGAN_GENERATOR_KEYS,
                &[
                    "h_net1.fc.0.weight",
                    "h_net1.fc.1.running_var",
                    "h_net1.upsample1.1.weight",
                    "h_net1.upsample4.2.bias",
                    "img_net2.img.0.weight",
                    "h_net3.residual.1.block.0.weight",
                    "h_net3.residual.1.block.4.running_mean",
                    "h_net2.upsample.1.weight",
                    "h_net2.upsample.2.weight",
                    "h_net2.att.conv_context.weight",
                    "ca_net.fc.weight",
                ],
            ),
            (
                &STAGE1_KEYS,
                &[
                    "fc.0.weight",
                    "fc.1.bias",
                    "upsample3.1.weight",
                    "upsample3.2.running_var",
                    "img.0.weight",
                    "ca_net.fc.bias",
                ],
            ),
            (
                &STAGE2_KEYS,
                &[
                    "encoder.0.weight",
                    "encoder.2.weight",
                    "encoder.3.weight",
                    "encoder.5.weight",
                    "encoder.6.running_mean",
                    "hr_joint.0.weight",
                    "hr_joint.1.bias",
                    "residual.1.block.3.weight",
                    "residual.0.block.4.bias",
                    "upsample2.1.weight",
                    "img.0.weight",
                ],
            ),
        ];
        for (keys, names) in cases {
            for name in names {
                let module = apply_rules(name, &compile_rules(keys.keys, Direction::ToModule));
                let back = apply_rules(&module, &compile_rules(keys.keys, Direction::ToCheckpoint));
                assert_eq!(&back, name);
            }
        }
    }

    #[test]
    fn lstm_gates_come_from_pytorch_stacks() {
        assert_eq!(
            lstm_source("rnn.forward.input_gate.input_transform.weight"),
            Some(("rnn.weight_ih_l0".into(), 0))
        );
        assert_eq!(
            lstm_source("rnn.reverse.output_gate.hidden_transform.bias"),
            Some(("rnn.bias_hh_l0_reverse".into(), 3))
        );
        assert_eq!(
            lstm_source("rnn.forward.cell_gate.hidden_transform.weight"),
            Some(("rnn.weight_hh_l0".into(), 2))
        );
        assert_eq!(lstm_source("encoder.weight"), None);
    }

    #[test]
    fn inception_layers_are_recognised() {
        let re = Regex::new(INCEPTION_LAYERS).unwrap();
        for name in [
            "Conv2d_1a_3x3.conv.weight",
            "Conv2d_3b_1x1.bn.running_mean",
            "Mixed_7c.branch_pool.conv.weight",
            "Mixed_5b.branch1x1.bn.bias",
        ] {
            assert!(re.is_match(name), "{name}");
        }
        for name in ["emb_features.weight", "emb_cnn_code.bias"] {
            assert!(!re.is_match(name), "{name}");
        }
    }
}
