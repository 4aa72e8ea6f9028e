//! Weight quantization of safetensors files: int8 and int4 storage, restored to f32 at load time.
//!
//! This is our own scheme, independent of burn's quantized tensor types: burn's native-i8
//! records cannot be loaded on WebGPU (WGSL has no i8) and its packed format needs a GPU device
//! to produce. Here the bytes are quantized and dequantized in plain Rust, and burn only ever
//! sees f32 tensors, so every backend (CPU flex, wgpu, WebGPU in the browser) can load them.
//!
//! Schemes (both symmetric, zero maps to zero):
//!
//! - **int8**: one scale per row of the first dimension, `scale = max|w| / 127`, values
//!   `round(w / scale)` in -127..=127 stored as `I8` under the tensor's own name and shape.
//! - **int4**: one scale per group of [`INT4_GROUP`] consecutive values of the row-major
//!   flattened tensor (the last group may be shorter), `scale = max|w| / 7`, values in -7..=7
//!   as 4-bit two's complement, two per byte, low nibble first, stored as a 1-D `U8` tensor of
//!   `ceil(n / 2)` bytes.
//!
//! Scales are `F32` tensors named `<name>.q_scale`. The metadata entry [`KEY_QUANTIZED`] maps
//! each quantized tensor's name to its scheme and original shape, e.g.
//! `{"generator.up_8.weight": {"scheme": "int8", "shape": [128, 64, 4, 4]}}`, so the reader
//! restores exact shapes.
//!
//! Only `F32` tensors of rank >= 2 with at least [`MIN_QUANTIZED_ELEMENTS`] values are quantized
//! (convolution and linear weights, embeddings). Biases, batch-norm gamma/beta and every
//! `running_mean` / `running_var` stay f32.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

/// Metadata key listing the quantized tensors (JSON: name -> `{scheme, shape}`).
pub const KEY_QUANTIZED: &str = "t2i.quantized";
/// Suffix of the scale tensor that goes with each quantized tensor.
pub const SCALE_SUFFIX: &str = ".q_scale";
/// Values per int4 scale group.
pub const INT4_GROUP: usize = 32;
/// Smaller tensors stay f32: their scales would cost about as much as they save.
pub const MIN_QUANTIZED_ELEMENTS: usize = 256;

const INT8_MAX: f32 = 127.0;
const INT4_MAX: f32 = 7.0;

/// How the weights of a bundle are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain 32-bit floats, bit-exact.
    #[default]
    F32,
    /// 8-bit integers with one f32 scale per row (about a quarter of the f32 size).
    Int8,
    /// 4-bit integers with one f32 scale per 32 values (about a sixth of the f32 size).
    Int4,
}

impl Precision {
    /// Every precision, in decreasing size.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Int8, Precision::Int4];

    /// The lower-case name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precision name that is not `f32`, `int8` or `int4`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: expected one of f32, int8, int4")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, UnknownPrecision> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPrecision(s.to_string()))
    }
}

/// What went wrong quantizing or dequantizing.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("not a readable safetensors file: {0}")]
    Unreadable(String),
    #[error("the file is already quantized (it has a {KEY_QUANTIZED:?} entry)")]
    AlreadyQuantized,
    #[error("the {KEY_QUANTIZED:?} metadata entry is not valid JSON of the expected form: {0}")]
    Metadata(String),
    #[error("tensor {name:?}: {reason}")]
    Tensor { name: String, reason: String },
    #[error("could not write the safetensors file: {0}")]
    Write(String),
}

fn tensor_error(name: &str, reason: impl Into<String>) -> QuantError {
    QuantError::Tensor {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// `Ok` where `condition` holds, else the error of tensor `name` for `reason`.
fn holds(name: &str, condition: bool, reason: impl FnOnce() -> String) -> Result<(), QuantError> {
    if condition {
        Ok(())
    } else {
        Err(tensor_error(name, reason()))
    }
}

/// One entry of [`KEY_QUANTIZED`]. The scheme is read as a string so that an unknown one is
/// reported with the tensor's name.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    scheme: String,
    shape: Vec<usize>,
}

/// Whether [`quantize_safetensors`] quantizes a tensor of this name, dtype and shape.
pub fn should_quantize(name: &str, dtype: Dtype, shape: &[usize]) -> bool {
    let running_stat = name.ends_with("running_mean") || name.ends_with("running_var");
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    dtype == Dtype::F32
        && !running_stat
        && shape.len() >= 2
        && elements.is_some_and(|n| n >= MIN_QUANTIZED_ELEMENTS)
}

/// Quantizes the eligible tensors of a safetensors file (see the module docs), keeping the other
/// tensors and all metadata. `Precision::F32` returns the bytes unchanged.
pub fn quantize_safetensors(bytes: &[u8], precision: Precision) -> Result<Vec<u8>, QuantError> {
    let (tensors, mut metadata) = parse(bytes)?;
    if metadata.contains_key(KEY_QUANTIZED) {
        return Err(QuantError::AlreadyQuantized);
    }
    if precision == Precision::F32 {
        return Ok(bytes.to_vec());
    }
    let names: HashSet<&str> = tensors.names().into_iter().collect();
    let mut entries = BTreeMap::new();
    let mut out: Vec<(String, Stored<'_>)> = Vec::new();
    for (name, view) in tensors.iter() {
        if !should_quantize(name, view.dtype(), view.shape()) {
            out.push((name.to_string(), Stored::borrowed(&view)));
            continue;
        }
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        if names.contains(scale_name.as_str()) {
            return Err(tensor_error(
                name,
                format!("its scale would replace the existing tensor {scale_name:?}"),
            ));
        }
        let values = read_f32(view.data());
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(tensor_error(
                name,
                format!("holds {bad}, which cannot be quantized"),
            ));
        }
        let shape = view.shape().to_vec();
        let (stored, scales) = if precision == Precision::Int8 {
            let (q, scales) = quantize_int8(&values, shape[0]);
            let q = q.into_iter().map(|v| v as u8).collect();
            (Stored::owned(Dtype::I8, shape.clone(), q), scales)
        } else {
            let (packed, scales) = quantize_int4(&values);
            let len = packed.len();
            (Stored::owned(Dtype::U8, vec![len], packed), scales)
        };
        out.push((name.to_string(), stored));
        let scale_len = scales.len();
        out.push((
            scale_name,
            Stored::owned(Dtype::F32, vec![scale_len], f32_bytes(&scales)),
        ));
        entries.insert(
            name.to_string(),
            Entry {
                scheme: precision.name().to_string(),
                shape,
            },
        );
    }
    let json = serde_json::to_string(&entries).map_err(|e| QuantError::Write(e.to_string()))?;
    metadata.insert(KEY_QUANTIZED.to_string(), json);
    write(out, metadata)
}

/// Restores a file written by [`quantize_safetensors`] to plain f32 tensors under their
/// original names and shapes, dropping the scales and the [`KEY_QUANTIZED`] entry and keeping
/// the other metadata. A file without that entry is returned unchanged.
pub fn dequantize_safetensors(bytes: &[u8]) -> Result<Vec<u8>, QuantError> {
    let (tensors, mut metadata) = parse(bytes)?;
    let Some(json) = metadata.remove(KEY_QUANTIZED) else {
        return Ok(bytes.to_vec());
    };
    let entries: BTreeMap<String, Entry> =
        serde_json::from_str(&json).map_err(|e| QuantError::Metadata(e.to_string()))?;
    let mut consumed: HashSet<String> = HashSet::new();
    let mut out: Vec<(String, Stored<'_>)> = Vec::new();
    for (name, entry) in &entries {
        let scheme: Precision = entry.scheme.parse().map_err(|_| {
            tensor_error(
                name,
                format!(
                    "unknown quantization scheme {:?} (expected int8 or int4)",
                    entry.scheme
                ),
            )
        })?;
        let values = tensors.tensor(name).map_err(|_| {
            tensor_error(
                name,
                format!("listed in {KEY_QUANTIZED:?} but not in the file"),
            )
        })?;
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let scales = tensors.tensor(&scale_name).map_err(|_| {
            tensor_error(name, format!("its scale tensor {scale_name:?} is missing"))
        })?;
        if scales.dtype() != Dtype::F32 || scales.shape().len() != 1 {
            return Err(tensor_error(
                name,
                format!(
                    "its scales must be a 1-D F32 tensor, found {:?} of shape {:?}",
                    scales.dtype(),
                    scales.shape()
                ),
            ));
        }
        let scales = read_f32(scales.data());
        if let Some(bad) = scales.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(tensor_error(name, format!("has an invalid scale {bad}")));
        }
        let count = entry
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| {
                tensor_error(
                    name,
                    format!("recorded shape {:?} is too large", entry.shape),
                )
            })?;
        let restored = match scheme {
            Precision::Int8 => dequantize_int8(name, &entry.shape, count, &values, &scales)?,
            Precision::Int4 => dequantize_int4(name, count, &values, &scales)?,
            Precision::F32 => {
                return Err(tensor_error(
                    name,
                    "scheme \"f32\" is not a quantization scheme (expected int8 or int4)",
                ));
            }
        };
        out.push((
            name.clone(),
            Stored::owned(Dtype::F32, entry.shape.clone(), f32_bytes(&restored)),
        ));
        consumed.insert(name.clone());
        consumed.insert(scale_name);
    }
    for (name, view) in tensors.iter() {
        if !consumed.contains(name) {
            out.push((name.to_string(), Stored::borrowed(&view)));
        }
    }
    write(out, metadata)
}

/// Re-writes a safetensors file with one more metadata entry, tensors unchanged.
pub(crate) fn with_metadata(bytes: &[u8], key: &str, value: String) -> Result<Vec<u8>, QuantError> {
    let (tensors, mut metadata) = parse(bytes)?;
    metadata.insert(key.to_string(), value);
    let out: Vec<(String, Stored<'_>)> = tensors
        .iter()
        .map(|(name, view)| (name.to_string(), Stored::borrowed(&view)))
        .collect();
    write(out, metadata)
}

/// Per-row int8: returns the values and one scale per row of `rows`.
fn quantize_int8(values: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let row_len = values.len().checked_div(rows).unwrap_or(0).max(1);
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks(row_len) {
        let scale = max_abs(row) / INT8_MAX;
        scales.push(scale);
        q.extend(row.iter().map(|&w| quantize_value(w, scale, INT8_MAX)));
    }
    (q, scales)
}

/// Per-group int4: returns the packed bytes (low nibble first) and one scale per group.
fn quantize_int4(values: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut packed = vec![0u8; values.len().div_ceil(2)];
    let mut scales = Vec::with_capacity(values.len().div_ceil(INT4_GROUP));
    for (g, group) in values.chunks(INT4_GROUP).enumerate() {
        let scale = max_abs(group) / INT4_MAX;
        scales.push(scale);
        for (j, &w) in group.iter().enumerate() {
            let i = g * INT4_GROUP + j;
            let nibble = (quantize_value(w, scale, INT4_MAX) as u8) & 0x0f;
            packed[i / 2] |= nibble << (4 * (i % 2));
        }
    }
    (packed, scales)
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn quantize_value(w: f32, scale: f32, max: f32) -> i8 {
    if scale == 0.0 {
        0
    } else {
        (w / scale).round().clamp(-max, max) as i8
    }
}

fn dequantize_int8(
    name: &str,
    shape: &[usize],
    count: usize,
    values: &safetensors::tensor::TensorView<'_>,
    scales: &[f32],
) -> Result<Vec<f32>, QuantError> {
    let found = values.dtype();
    holds(name, found == Dtype::I8, || {
        format!("int8 values must be stored as I8, found {found:?}")
    })?;
    holds(name, values.shape() == shape, || {
        let stored = values.shape();
        format!("stored shape {stored:?} differs from the recorded shape {shape:?}")
    })?;
    let Some(&rows) = shape.first() else {
        return Err(tensor_error(
            name,
            "an int8 tensor needs at least one dimension",
        ));
    };
    holds(name, scales.len() == rows, || {
        format!("has {} scales, expected one per row ({rows})", scales.len())
    })?;
    let data = values.data();
    debug_assert_eq!(data.len(), count);
    let row_len = count.checked_div(rows).unwrap_or(0).max(1);
    let mut out = Vec::with_capacity(count);
    for (row, &scale) in data.chunks(row_len).zip(scales) {
        for &b in row {
            let q = b as i8;
            holds(name, q != i8::MIN, || {
                "holds the value -128, outside the symmetric int8 range -127..=127".into()
            })?;
            out.push(f32::from(q) * scale);
        }
    }
    Ok(out)
}

fn dequantize_int4(
    name: &str,
    count: usize,
    values: &safetensors::tensor::TensorView<'_>,
    scales: &[f32],
) -> Result<Vec<f32>, QuantError> {
    let found = values.dtype();
    holds(name, found == Dtype::U8, || {
        format!("packed int4 values must be stored as U8, found {found:?}")
    })?;
    let data = values.data();
    let (bytes, needed) = (data.len(), count.div_ceil(2));
    holds(name, bytes == needed, || {
        format!(
            "holds {bytes} packed bytes, but the recorded shape needs {needed} for {count} values"
        )
    })?;
    let groups = count.div_ceil(INT4_GROUP);
    holds(name, scales.len() == groups, || {
        format!(
            "has {} scales, expected one per {INT4_GROUP} values ({groups})",
            scales.len()
        )
    })?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let nibble = (data[i / 2] >> (4 * (i % 2))) & 0x0f;
        let q = ((nibble << 4) as i8) >> 4; // sign-extend the 4-bit value
        holds(name, q != -8, || {
            "holds the value -8, outside the symmetric int4 range -7..=7".into()
        })?;
        out.push(f32::from(q) * scales[i / INT4_GROUP]);
    }
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<(SafeTensors<'_>, HashMap<String, String>), QuantError> {
    let tensors =
        SafeTensors::deserialize(bytes).map_err(|e| QuantError::Unreadable(e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| QuantError::Unreadable(e.to_string()))?;
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

fn write(
    tensors: Vec<(String, Stored<'_>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, QuantError> {
    safetensors::serialize(tensors, Some(metadata)).map_err(|e| QuantError::Write(e.to_string()))
}

fn read_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A tensor to write: borrowed from the input file or computed here.
struct Stored<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl<'a> Stored<'a> {
    fn borrowed(view: &safetensors::tensor::TensorView<'a>) -> Self {
        Self {
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: Cow::Borrowed(view.data()),
        }
    }

    fn owned(dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Self {
        Self {
            dtype,
            shape,
            data: Cow::Owned(data),
        }
    }
}

impl View for Stored<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of F32 tensors.
    fn file(tensors: &[(&str, Vec<usize>, Vec<f32>)], metadata: &[(&str, &str)]) -> Vec<u8> {
        let stored: Vec<(String, Stored<'_>)> = tensors
            .iter()
            .map(|(name, shape, values)| {
                let data = f32_bytes(values);
                (
                    name.to_string(),
                    Stored::owned(Dtype::F32, shape.clone(), data),
                )
            })
            .collect();
        let metadata = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write(stored, metadata).unwrap()
    }

    fn tensor(bytes: &[u8], name: &str) -> (Dtype, Vec<usize>, Vec<u8>) {
        let tensors = SafeTensors::deserialize(bytes).unwrap();
        let view = tensors.tensor(name).unwrap();
        (view.dtype(), view.shape().to_vec(), view.data().to_vec())
    }

    fn f32s(bytes: &[u8], name: &str) -> Vec<f32> {
        let (dtype, _, data) = tensor(bytes, name);
        assert_eq!(dtype, Dtype::F32, "{name}");
        read_f32(&data)
    }

    fn metadata(bytes: &[u8]) -> HashMap<String, String> {
        parse(bytes).unwrap().1
    }

    /// Rewrites a file with tensors replaced or added and metadata changed.
    fn edit(
        bytes: &[u8],
        replace: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
        meta: &[(&str, &str)],
    ) -> Vec<u8> {
        let (tensors, mut metadata) = parse(bytes).unwrap();
        let mut out: Vec<(String, Stored<'_>)> = tensors
            .iter()
            .filter(|(name, _)| !replace.iter().any(|r| r.0 == *name))
            .map(|(name, view)| (name.to_string(), Stored::borrowed(&view)))
            .collect();
        for (name, dtype, shape, data) in replace {
            out.push((
                name.to_string(),
                Stored::owned(*dtype, shape.clone(), data.clone()),
            ));
        }
        for (k, v) in meta {
            metadata.insert(k.to_string(), v.to_string());
        }
        write(out, metadata).unwrap()
    }

    fn tensor_error_of(result: Result<Vec<u8>, QuantError>) -> (String, String) {
        match result {
            Err(QuantError::Tensor { name, reason }) => (name, reason),
            other => panic!("expected a tensor error, got {other:?}"),
        }
    }

    #[test]
    fn precision_names() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
            assert_eq!(
                serde_json::from_str::<Precision>(&format!("\"{p}\"")).unwrap(),
                p
            );
        }
        assert_eq!("INT8".parse::<Precision>().unwrap(), Precision::Int8);
        let err = "int3".parse::<Precision>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown precision \"int3\": expected one of f32, int8, int4"
        );
        assert!(serde_json::from_str::<Precision>("\"fp16\"").is_err());
    }

    #[test]
    fn int8_of_a_hand_made_tensor() {
        // Row 0: max |w| 1.27, scale 0.01; row 1: max |w| 2.54, scale 0.02.
        let mut w = vec![0.0f32; 256];
        w[0] = 1.27;
        w[1] = -0.5;
        w[2] = 0.006; // 0.6 steps: rounds to 1
        w[3] = -0.004; // 0.4 steps: rounds to 0
        w[128] = -2.54;
        w[129] = 1.0;
        w[130] = 0.031; // 1.55 steps: rounds to 2
        let bias = vec![0.5f32, -0.25];
        let small = vec![1.0f32; 4 * 16]; // rank 2 but under 256 values: stays f32
        let stats = vec![3.0f32; 16 * 16]; // large enough, but a running statistic
        let bytes = file(
            &[
                ("layer.weight", vec![2, 128], w.clone()),
                ("layer.bias", vec![2], bias.clone()),
                ("small.weight", vec![4, 16], small.clone()),
                ("bn.running_var", vec![16, 16], stats.clone()),
            ],
            &[("other", "kept")],
        );
        let q = quantize_safetensors(&bytes, Precision::Int8).unwrap();

        let (dtype, shape, data) = tensor(&q, "layer.weight");
        assert_eq!((dtype, shape), (Dtype::I8, vec![2, 128]));
        let values: Vec<i8> = data.iter().map(|&b| b as i8).collect();
        assert_eq!(&values[..4], &[127, -50, 1, 0]);
        assert_eq!(&values[128..131], &[-127, 50, 2]);
        assert!(values[4..128].iter().chain(&values[131..]).all(|&v| v == 0));
        let scales = f32s(&q, "layer.weight.q_scale");
        assert_eq!(scales, vec![1.27 / 127.0, 2.54 / 127.0]);
        // Everything else is untouched, bit for bit.
        assert_eq!(f32s(&q, "layer.bias"), bias);
        assert_eq!(f32s(&q, "small.weight"), small);
        assert_eq!(f32s(&q, "bn.running_var"), stats);
        let meta = metadata(&q);
        assert_eq!(meta["other"], "kept");
        assert_eq!(
            meta[KEY_QUANTIZED],
            r#"{"layer.weight":{"scheme":"int8","shape":[2,128]}}"#
        );

        let restored = dequantize_safetensors(&q).unwrap();
        let (dtype, shape, _) = tensor(&restored, "layer.weight");
        assert_eq!((dtype, shape), (Dtype::F32, vec![2, 128]));
        let got = f32s(&restored, "layer.weight");
        let expected = [
            (0, 127.0 * scales[0]),
            (1, -50.0 * scales[0]),
            (2, scales[0]),
            (3, 0.0),
            (128, -127.0 * scales[1]),
            (129, 50.0 * scales[1]),
            (130, 2.0 * scales[1]),
        ];
        for (i, e) in expected {
            assert_eq!(got[i], e, "value {i}");
        }
        assert!((got[0] - 1.27).abs() < 1e-6 && (got[130] - 0.04).abs() < 1e-6);
        assert!(
            SafeTensors::deserialize(&restored)
                .unwrap()
                .tensor("layer.weight.q_scale")
                .is_err()
        );
        let meta = metadata(&restored);
        assert_eq!(meta["other"], "kept");
        assert!(!meta.contains_key(KEY_QUANTIZED));
        assert_eq!(f32s(&restored, "layer.bias"), bias);
        assert_eq!(f32s(&restored, "bn.running_var"), stats);
    }

    #[test]
    fn int4_of_a_hand_made_tensor() {
        // 257 values in a [257, 1] tensor: 9 groups, the last one a single value, 129 bytes.
        let mut w = vec![0.0f32; 257];
        w[0] = 0.7; // group 0: max 0.7, scale 0.1 -> 7
        w[1] = -0.31; // -3.1 steps -> -3
        w[2] = 0.16; // 1.6 steps -> 2
        w[32] = -1.4; // group 1: scale 0.2 -> -7
        w[33] = 0.25; // 1.25 steps -> 1
        w[256] = -0.9; // group 8, alone: scale 0.9/7 -> -7
        let bytes = file(&[("embedding.weight", vec![257, 1], w)], &[]);
        let q = quantize_safetensors(&bytes, Precision::Int4).unwrap();

        let (dtype, shape, data) = tensor(&q, "embedding.weight");
        assert_eq!((dtype, shape), (Dtype::U8, vec![129]));
        // Low nibble first, 4-bit two's complement: 7 = 0x7, -3 = 0xd, 2 = 0x2, -7 = 0x9.
        assert_eq!(&data[..2], &[0xd7, 0x02]);
        assert_eq!(data[16], 0x19); // values 32 and 33: -7 then 1
        assert_eq!(data[128], 0x09); // value 256 in the low nibble, padding zero
        let scales = f32s(&q, "embedding.weight.q_scale");
        assert_eq!(scales.len(), 9);
        assert_eq!(scales[0], 0.7 / 7.0);
        assert_eq!(scales[1], 1.4 / 7.0);
        assert!(scales[2..8].iter().all(|&s| s == 0.0));
        assert_eq!(scales[8], 0.9 / 7.0);
        assert_eq!(
            metadata(&q)[KEY_QUANTIZED],
            r#"{"embedding.weight":{"scheme":"int4","shape":[257,1]}}"#
        );

        let restored = dequantize_safetensors(&q).unwrap();
        let (_, shape, _) = tensor(&restored, "embedding.weight");
        assert_eq!(shape, vec![257, 1]);
        let got = f32s(&restored, "embedding.weight");
        assert_eq!(got[0], 7.0 * scales[0]);
        assert_eq!(got[1], -3.0 * scales[0]);
        assert_eq!(got[2], 2.0 * scales[0]);
        assert_eq!(got[32], -7.0 * scales[1]);
        assert_eq!(got[33], scales[1]);
        assert_eq!(got[256], -7.0 * scales[8]);
        assert_eq!(got.iter().filter(|&&v| v != 0.0).count(), 6);
    }

    #[test]
    fn error_stays_within_half_a_step() {
        // A deterministic pseudo-random [24, 40] tensor with rows of very different magnitude.
        let mut state = 12345u32;
        let w: Vec<f32> = (0..24 * 40)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                u * (1 + i / 40) as f32
            })
            .collect();
        let bytes = file(&[("w", vec![24, 40], w.clone())], &[]);
        for (precision, max, group) in [(Precision::Int8, 127.0, 40), (Precision::Int4, 7.0, 32)] {
            let restored =
                dequantize_safetensors(&quantize_safetensors(&bytes, precision).unwrap()).unwrap();
            let got = f32s(&restored, "w");
            for (chunk, (w_chunk, g_chunk)) in w.chunks(group).zip(got.chunks(group)).enumerate() {
                let step = max_abs(w_chunk) / max;
                for (a, b) in w_chunk.iter().zip(g_chunk) {
                    assert!(
                        (a - b).abs() <= step * 0.5 + 1e-6,
                        "{precision} chunk {chunk}: {a} -> {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn f32_and_plain_files_pass_through() {
        let bytes = file(&[("w", vec![16, 16], vec![0.5; 256])], &[("k", "v")]);
        assert_eq!(quantize_safetensors(&bytes, Precision::F32).unwrap(), bytes);
        assert_eq!(dequantize_safetensors(&bytes).unwrap(), bytes);
        let q = quantize_safetensors(&bytes, Precision::Int8).unwrap();
        assert!(matches!(
            quantize_safetensors(&q, Precision::Int4),
            Err(QuantError::AlreadyQuantized)
        ));
        assert!(matches!(
            dequantize_safetensors(&q[..q.len() - 1]),
            Err(QuantError::Unreadable(_))
        ));
        let bad = file(&[("w", vec![16, 16], vec![f32::NAN; 256])], &[]);
        let (name, reason) = tensor_error_of(quantize_safetensors(&bad, Precision::Int8));
        assert_eq!(name, "w");
        assert!(reason.contains("NaN"), "{reason}");
    }

    #[test]
    fn damaged_quantized_files_name_the_tensor() {
        let bytes = file(
            &[
                ("a.weight", vec![16, 16], vec![0.25; 256]),
                ("b.weight", vec![8, 64], vec![-0.5; 512]),
            ],
            &[],
        );
        let q8 = quantize_safetensors(&bytes, Precision::Int8).unwrap();
        let q4 = quantize_safetensors(&bytes, Precision::Int4).unwrap();

        let scales = |name, count: usize, value: f32| {
            (
                name,
                Dtype::F32,
                vec![count],
                f32_bytes(&vec![value; count]),
            )
        };
        let with_meta = |base: &[u8], meta| edit(base, &[], &[(KEY_QUANTIZED, meta)]);
        // Each damaged file, the tensor its error names and what the reason says ("": any).
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            // Wrong number of scales.
            (
                edit(&q8, &[scales("b.weight.q_scale", 7, 1.0)], &[]),
                "b.weight",
                "7 scales",
            ),
            (
                edit(&q8, &[scales("b.weight.q_scale", 7, 1.0)], &[]),
                "b.weight",
                "(8)",
            ),
            (
                edit(&q4, &[scales("a.weight.q_scale", 9, 1.0)], &[]),
                "a.weight",
                "9 scales",
            ),
            // Recorded shape that does not match the stored values.
            (
                with_meta(
                    &q8,
                    r#"{"a.weight":{"scheme":"int8","shape":[16,16]},"b.weight":{"scheme":"int8","shape":[8,65]}}"#,
                ),
                "b.weight",
                "[8, 65]",
            ),
            (
                with_meta(
                    &q4,
                    r#"{"a.weight":{"scheme":"int4","shape":[16,17]},"b.weight":{"scheme":"int4","shape":[8,64]}}"#,
                ),
                "a.weight",
                "packed bytes",
            ),
            (
                with_meta(
                    &q4,
                    r#"{"a.weight":{"scheme":"int4","shape":[16,99999999999999999]},"b.weight":{"scheme":"int4","shape":[8,64]}}"#,
                ),
                "a.weight",
                "",
            ),
            // Unknown or non-quantizing scheme, wrong storage dtype, missing tensors.
            (
                with_meta(
                    &q8,
                    r#"{"a.weight":{"scheme":"int3","shape":[16,16]},"b.weight":{"scheme":"int8","shape":[8,64]}}"#,
                ),
                "a.weight",
                "unknown quantization scheme \"int3\"",
            ),
            (
                with_meta(&q8, r#"{"a.weight":{"scheme":"f32","shape":[16,16]}}"#),
                "a.weight",
                "",
            ),
            (
                with_meta(&q8, r#"{"a.weight":{"scheme":"int4","shape":[16,16]}}"#),
                "a.weight",
                "U8",
            ),
            (
                with_meta(&q8, r#"{"c.weight":{"scheme":"int8","shape":[16,16]}}"#),
                "c.weight",
                "not in the file",
            ),
            // Bad scale values and out-of-range codes.
            (
                edit(&q8, &[scales("a.weight.q_scale", 16, -1.0)], &[]),
                "a.weight",
                "",
            ),
            (
                edit(
                    &q8,
                    &[("a.weight", Dtype::I8, vec![16, 16], vec![0x80; 256])],
                    &[],
                ),
                "a.weight",
                "",
            ),
            (
                edit(
                    &q4,
                    &[("b.weight", Dtype::U8, vec![256], vec![0x88; 256])],
                    &[],
                ),
                "b.weight",
                "",
            ),
        ];
        for (file, tensor, says) in cases {
            let (name, reason) = tensor_error_of(dequantize_safetensors(&file));
            assert_eq!(name, tensor, "{reason}");
            assert!(reason.contains(says), "{tensor}: {reason}");
        }

        // Metadata that is not the expected JSON.
        let wrong = edit(&q8, &[], &[(KEY_QUANTIZED, "[1, 2]")]);
        assert!(matches!(
            dequantize_safetensors(&wrong),
            Err(QuantError::Metadata(_))
        ));
    }
}
