//! Matching a state dict to a module: key tables read both ways, LSTM gates, and every tensor
//! checked against the module before anything is loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use regex::Regex;
use safetensors::tensor::{Dtype, TensorView};
use t2i::key_map::{Direction, KeyTable, remapping};

use super::*;

/// How one family's checkpoint names relate to this project's module paths.
pub(super) struct KeyMap {
    /// `(theirs, ours)` name patterns ([`t2i::key_map`]), read checkpoint -> module to load
    /// and module -> checkpoint to name what is missing.
    pub(super) keys: KeyTable,
    /// Checkpoint names read elsewhere or deliberately not read.
    pub(super) skip: &'static [&'static str],
}

/// A key table read one way, compiled once per load: (regex, replacement).
pub(super) fn compile_rules(keys: KeyTable, direction: Direction) -> Vec<(Regex, String)> {
    remapping(keys, direction)
        .into_iter()
        .map(|(from, to)| (Regex::new(&from).expect("key rules are valid regexes"), to))
        .collect()
}

pub(super) fn apply_rules(name: &str, rules: &[(Regex, String)]) -> String {
    rules.iter().fold(name.to_string(), |name, (from, to)| {
        from.replace_all(&name, to.as_str()).into_owned()
    })
}

/// burn's LSTM gate layers in the order PyTorch stacks them in `weight_ih_l0` (i, f, g, o).
pub(super) const LSTM_GATES: [&str; 4] = ["input_gate", "forget_gate", "cell_gate", "output_gate"];

/// `rnn.{forward,reverse}.<gate>.{input,hidden}_transform.{weight,bias}` -> the PyTorch LSTM
/// tensor holding it and the gate's index in the stack.
pub(super) fn lstm_source(module_path: &str) -> Option<(String, usize)> {
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
pub(super) struct Source {
    pub(super) name: String,
    /// For an LSTM gate: its index among the four stacked along the first axis.
    pub(super) gate: Option<usize>,
}

/// Fills `module` from `checkpoint` (only names under `prefix`, which is stripped), checking
/// every tensor first. `what` describes the module in errors.
pub(super) fn load_checked<M: Module + ModuleSnapshot>(
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
