//! Training checkpoints that survive a crash at any instant.
//!
//! A checkpoint is a folder `step-NNNNNNNN/` under the run's `checkpoints/` folder holding one
//! file per part (module and optimizer records in burn's burnpack format) and `state.json`
//! (step, epoch, learning rate, the config it was trained with). It is written under a
//! temporary name and renamed into place, and `latest` (a one-line file naming the newest
//! folder) is replaced atomically afterwards, so a reader always finds a complete checkpoint.
//! The newest `keep` checkpoints are kept.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use t2i::quant::Precision;

const LATEST: &str = "latest";
const STATE: &str = "state.json";

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file =
        fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// Serialises a module's parameters.
///
/// Batch-norm running statistics hold their newest update back until the next read, and a
/// record reads only the committed value; `valid()` commits it first (it changes nothing the
/// next training step would compute), so the checkpoint has the statistics of its step.
pub fn module_bytes<M: Module>(module: &M) -> Result<Vec<u8>> {
    let bytes = module
        .valid()
        .into_record()
        .into_bytes()
        .context("cannot serialise module parameters")?;
    Ok(bytes.to_vec())
}

/// Loads parameters saved by [`module_bytes`] into a module of the same structure.
pub fn load_module<M: Module>(module: M, bytes: Vec<u8>, what: &str) -> Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .with_context(|| format!("{what}: not a readable parameter record"))?;
    module
        .try_load_record(record)
        .with_context(|| format!("{what}: parameters do not fit the model"))
}

/// Serialises an optimizer's state (moments, step counts).
pub fn optimizer_bytes(optimizer: &ModuleOptimizer) -> Result<Vec<u8>> {
    Ok(optimizer
        .into_bytes()
        .context("cannot serialise optimizer state")?
        .to_vec())
}

/// Restores state saved by [`optimizer_bytes`].
pub fn load_optimizer(
    optimizer: ModuleOptimizer,
    bytes: Vec<u8>,
    what: &str,
) -> Result<ModuleOptimizer> {
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .with_context(|| format!("{what}: unreadable optimizer state"))
}

/// The checkpoints of one run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    root: PathBuf,
    keep: usize,
}

impl Checkpoints {
    /// Checkpoints under `root` (created on first save), keeping the newest `keep`.
    pub fn new(root: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            root: root.into(),
            keep: keep.max(1),
        }
    }

    /// A run's checkpoints: `checkpoints/` in its folder `run_dir`, keeping the newest two.
    pub fn of_run(run_dir: &Path) -> Self {
        Self::new(run_dir.join("checkpoints"), 2)
    }

    /// The latest checkpoint of a finished or interrupted run; an error naming `output_dir`
    /// when there is none.
    pub fn latest_required(&self, output_dir: &Path) -> Result<Checkpoint> {
        self.latest()?
            .with_context(|| format!("no checkpoint in {}: train first", output_dir.display()))
    }

    /// The latest checkpoint of a run that is about to train: an existing run is never
    /// overwritten, only continued with `resume`.
    pub fn latest_for_training(
        &self,
        resume: bool,
        output_dir: &Path,
    ) -> Result<Option<Checkpoint>> {
        let existing = self.latest()?;
        if existing.is_some() && !resume {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose another output_dir",
                output_dir.display()
            );
        }
        Ok(existing)
    }

    /// Writes a checkpoint for `step` and makes it the latest.
    pub fn save<S: Serialize>(
        &self,
        step: u64,
        parts: &[(&str, Vec<u8>)],
        state: &S,
    ) -> Result<PathBuf> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let name = format!("step-{step:08}");
        let target = self.root.join(&name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).with_context(|| format!("cannot clear {}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for (part, bytes) in parts {
            write_atomic(&tmp.join(part), bytes)?;
        }
        write_atomic(&tmp.join(STATE), &serde_json::to_vec_pretty(state)?)?;
        if target.exists() {
            fs::remove_dir_all(&target)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        fs::rename(&tmp, &target)
            .with_context(|| format!("cannot move checkpoint into {}", target.display()))?;
        write_atomic(&self.root.join(LATEST), name.as_bytes())?;
        self.prune()?;
        Ok(target)
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<Checkpoint>> {
        let pointer = self.root.join(LATEST);
        if !pointer.exists() {
            return Ok(None);
        }
        let name = fs::read_to_string(&pointer)
            .with_context(|| format!("cannot read {}", pointer.display()))?;
        let dir = self.root.join(name.trim());
        if !dir.join(STATE).exists() {
            bail!(
                "{} names {}, which is not a complete checkpoint",
                pointer.display(),
                dir.display()
            );
        }
        Ok(Some(Checkpoint { dir }))
    }

    /// Where the newest checkpoint is, for messages ("(none yet)" before the first).
    pub fn latest_description(&self) -> String {
        match self.latest() {
            Ok(Some(checkpoint)) => checkpoint.dir.display().to_string(),
            Ok(None) => "(none yet)".into(),
            Err(error) => format!("(unreadable: {error})"),
        }
    }

    fn prune(&self) -> Result<()> {
        let mut steps: Vec<PathBuf> = fs::read_dir(&self.root)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"))
            })
            .collect();
        steps.sort();
        let excess = steps.len().saturating_sub(self.keep);
        for old in &steps[..excess] {
            fs::remove_dir_all(old).with_context(|| format!("cannot remove {}", old.display()))?;
        }
        Ok(())
    }
}

/// One checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
}

impl Checkpoint {
    /// The bytes of one part.
    pub fn part(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(name);
        fs::read(&path).with_context(|| format!("checkpoint part missing: {}", path.display()))
    }

    /// The module saved as part `name`, loaded into `template` (a module of the same sizes).
    pub fn module<M: Module>(&self, template: M, name: &str) -> Result<M> {
        load_module(template, self.part(name)?, name)
    }

    /// The saved training state.
    pub fn state<S: DeserializeOwned>(&self) -> Result<S> {
        let path = self.dir.join(STATE);
        let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("invalid {}", path.display()))
    }
}

/// Every parameter's module path and raw bytes, sorted by path: two modules hold the same
/// weights exactly when these are equal (unlike records, which also carry parameter ids).
pub fn parameter_values<M: Module>(module: &M) -> Result<Vec<(String, Vec<u8>)>> {
    use burn::store::ModuleSnapshot;
    let mut values = module
        .collect(None, None, false)
        .into_iter()
        .map(|tensor| {
            let bytes = tensor
                .to_bytes()
                .with_context(|| format!("cannot read parameter {}", tensor.name))?;
            Ok((tensor.name.clone(), bytes.to_vec()))
        })
        .collect::<Result<Vec<_>>>()?;
    values.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(values)
}

/// Rewrites every tensor of a safetensors file with `convert(dtype, bytes) -> (dtype, bytes)`.
fn convert_tensors(
    bytes: &[u8],
    convert: impl Fn(safetensors::Dtype, &[u8]) -> (safetensors::Dtype, Vec<u8>),
) -> Result<Vec<u8>> {
    use safetensors::tensor::TensorView;
    let tensors =
        safetensors::SafeTensors::deserialize(bytes).context("not a readable safetensors file")?;
    let converted: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let (dtype, data) = convert(view.dtype(), view.data());
            (name, dtype, view.shape().to_vec(), data)
        })
        .collect();
    let views = converted
        .iter()
        .map(|(name, dtype, shape, data)| {
            Ok((name.clone(), TensorView::new(*dtype, shape.clone(), data)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, None)?)
}

/// A module's parameters and batch-norm statistics as safetensors with every f32 tensor stored
/// as f16: half the size of a checkpoint's module, for carrying weights between machines.
/// Optimizer state is not included, so a run continued from these starts Adam afresh.
pub fn module_f16_bytes<M: Module>(module: &M) -> Result<Vec<u8>> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    use safetensors::Dtype;
    let mut store = SafetensorsStore::from_bytes(None);
    module
        .valid()
        .save_into(&mut store)
        .context("cannot serialise module parameters")?;
    let bytes = store.get_bytes().context("cannot serialise")?;
    convert_tensors(&bytes, |dtype, data| match dtype {
        Dtype::F32 => (
            Dtype::F16,
            data.chunks_exact(4)
                .flat_map(|b| {
                    half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes()
                })
                .collect(),
        ),
        other => (other, data.to_vec()),
    })
}

/// Loads weights written by [`module_f16_bytes`] into a module of the same structure.
pub fn load_module_f16<M: Module>(mut module: M, bytes: &[u8], what: &str) -> Result<M> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    use safetensors::Dtype;
    let f32_bytes = convert_tensors(bytes, |dtype, data| match dtype {
        Dtype::F16 => (
            Dtype::F32,
            data.chunks_exact(2)
                .flat_map(|b| {
                    half::f16::from_le_bytes([b[0], b[1]])
                        .to_f32()
                        .to_le_bytes()
                })
                .collect(),
        ),
        other => (other, data.to_vec()),
    })
    .with_context(|| what.to_string())?;
    let mut store = SafetensorsStore::from_bytes(Some(f32_bytes));
    let result = module
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        bail!(
            "{what}: the weights do not fit the model: missing {:?}, errors {:?}",
            result.missing,
            result.errors
        );
    }
    Ok(module)
}

/// Writes an exported bundle atomically and says what was written (`what`: e.g. "step 1526").
pub fn write_bundle(out: &Path, bundle: &[u8], precision: Precision, what: &str) -> Result<()> {
    write_atomic(out, bundle)?;
    eprintln!(
        "wrote {} ({:.1} MB, {precision}, {what})",
        out.display(),
        bundle.len() as f64 / 1e6
    );
    Ok(())
}

#[cfg(test)]
mod f16_tests {
    use super::*;
    use burn::nn::{BatchNormConfig, LinearConfig};
    use burn::prelude::*;

    #[derive(Module, Debug)]
    struct Small {
        linear: burn::nn::Linear,
        norm: burn::nn::BatchNorm,
    }

    fn small(device: &Device) -> Small {
        Small {
            linear: LinearConfig::new(5, 3).init(device),
            norm: BatchNormConfig::new(3).init(device),
        }
    }

    #[test]
    fn portable_weights_round_trip_at_half_precision() {
        let device = Device::flex();
        device.seed(4);
        let original = small(&device);
        let bytes = module_f16_bytes(&original).unwrap();
        let restored = load_module_f16(small(&device), &bytes, "small").unwrap();
        let (a, b) = (
            parameter_values(&original).unwrap(),
            parameter_values(&restored).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            let read = |v: &[u8]| -> Vec<f32> {
                v.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            for (p, q) in read(x).iter().zip(read(y)) {
                assert_eq!(half::f16::from_f32(*p).to_f32(), q, "{name}");
            }
        }
        let error = load_module_f16(
            small(&device),
            &bytes[..bytes.len() / 2],
            "small.safetensors",
        )
        .err()
        .unwrap();
        assert!(
            format!("{error:#}").contains("small.safetensors"),
            "{error:#}"
        );
    }
}
