//! Our side of `tools/bench_vs_pytorch.py`: the same generators at the same sizes, with the
//! weights and inputs the Python script saved, timed on the flex backend (this machine's cores,
//! rayon). Prints one JSON line: per case the median and all repetitions in ms, and the max abs
//! difference of every output from PyTorch's (saved next to the inputs).
//!
//! ```sh
//! cargo run --release -p t2i-train --example bench_vs_pytorch -- --work /tmp/t2i_bench_vs_pytorch \
//!     [--gan-int-cls FILE] [--stackgan FILE] [--attngan FILE] [--train-d D.safetensors] \
//!     [--cases gan_int_cls_b1,..] [--reps 7] [--warmup 2] [--train-reps 3] [--wait-idle 0]
//! ```
//!
//! A model FILE is a t2i bundle (`t2i import ... --precision f32`); for GAN-INT-CLS and AttnGAN
//! it may also be a PyTorch state dict saved as safetensors (the Python mirror's keys:
//! GAN-INT-CLS 1:1, AttnGAN through [`t2i::attngan::GENERATOR_KEYS`]). Without a FILE the
//! network is randomly initialised: timings only, no differences.
//!
//! The work folder holds `<case>.safetensors` per case: the inputs and `expected_*` outputs.
//! Generation cases (`<model>_b<N>`): generator forward(s) in inference mode, no autodiff.
//! `train_gan_int_cls_b64`: one GAN-INT-CLS step as `GanIntClsPair::step` (D on real/right,
//! real/wrong, fake/right; then G on fake/right and GAN-INT interpolated texts; Adam 2e-4,
//! beta1 0.5) with the noise read from the file; G from `--gan-int-cls`, D from `--train-d`
//! (PyTorch layout). The losses of the first two steps are compared with PyTorch's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{Bool, TensorData};
use safetensors::SafeTensors;
use serde_json::{Value, json};
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, GENERATOR_KEYS, authors_store};
use t2i::bundle::{GanBundle, bundle_format, load_gan};
use t2i::gan_int_cls::{
    Discriminator, GanIntClsConfig, Generator, discriminator_loss, generator_loss, interpolate_text,
};
use t2i::layers::AdversarialLoss;
use t2i::stackgan::{StackGanConfig, StackGanGenerators};
use t2i_train::run::adversarial::gan_adam;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One case's saved tensors (f32, little-endian) by name.
struct Saved {
    tensors: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
}

impl Saved {
    fn read(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let st =
            SafeTensors::deserialize(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                bail!(
                    "{}: tensor {name} is {:?}, expected F32",
                    path.display(),
                    view.dtype()
                );
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name, (values, view.shape().to_vec()));
        }
        Ok(Self { tensors })
    }

    fn get(&self, name: &str) -> Result<&(Vec<f32>, Vec<usize>)> {
        self.tensors
            .get(name)
            .ok_or_else(|| anyhow!("no tensor {name} in the case file"))
    }

    fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Result<Tensor<D>> {
        let (values, shape) = self.get(name)?;
        if shape.len() != D {
            bail!("tensor {name} has shape {shape:?}, expected rank {D}");
        }
        Ok(Tensor::from_data(
            TensorData::new(values.clone(), shape.clone()),
            device,
        ))
    }

    fn scalar(&self, name: &str) -> Option<f32> {
        self.tensors.get(name).map(|(v, _)| v[0])
    }

    /// Max abs difference of `output` from the saved `name` (None when not saved).
    fn diff<const D: usize>(&self, name: &str, output: Tensor<D>) -> Result<Option<f64>> {
        let Some((expected, shape)) = self.tensors.get(name) else {
            return Ok(None);
        };
        if output.dims().as_slice() != shape.as_slice() {
            bail!("{name}: ours {:?}, PyTorch {shape:?}", output.dims());
        }
        let ours = output
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow!("{name}: {e:?}"))?;
        Ok(Some(
            ours.iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs() as f64)
                .fold(0.0, f64::max),
        ))
    }
}

/// (busy, total) jiffies of the whole machine and this process's own (user + system), from
/// `/proc`; zeros where there is no `/proc`.
fn cpu_jiffies() -> (u64, u64, u64) {
    let machine = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        let v: Vec<u64> = s
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|x| x.parse().ok())
            .collect();
        (v.len() == 8).then(|| {
            let total: u64 = v.iter().sum();
            (total - v[3] - v[4], total)
        })
    });
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        });
    let (busy, total) = machine.unwrap_or((0, 0));
    (busy, total, own.unwrap_or(0))
}

/// Share of the machine's CPU time other processes used between two [`cpu_jiffies`].
fn others_share(before: (u64, u64, u64), after: (u64, u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0);
    let own = after.2.saturating_sub(before.2);
    busy.saturating_sub(own) as f64 / (after.1.saturating_sub(before.1)).max(1) as f64
}

/// Waits up to `limit_s` for a 1 s window in which other processes use under 10% of the CPU.
fn wait_idle(limit_s: f64) {
    let start = Instant::now();
    loop {
        let before = cpu_jiffies();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let share = others_share(before, cpu_jiffies());
        if share < 0.10 || start.elapsed().as_secs_f64() >= limit_s {
            return;
        }
        eprintln!(
            "  waiting for an idle machine: others use {:.0}%",
            share * 100.0
        );
    }
}

/// A case's timing: the median and all timed runs in ms, and the share of the machine's CPU
/// that other processes used during the timed runs.
struct Timing {
    median: f64,
    runs: Vec<f64>,
    others: f64,
}

/// Waits for an idle machine (up to `wait` seconds), runs `warmup` untimed runs, then times
/// `reps` runs.
fn time(
    wait: f64,
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    if wait > 0.0 {
        wait_idle(wait);
    }
    for _ in 0..warmup {
        f()?;
    }
    let mut runs = Vec::with_capacity(reps);
    let before = cpu_jiffies();
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        runs.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let others = others_share(before, cpu_jiffies());
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Ok(Timing {
        median,
        runs,
        others,
    })
}

/// Loads `module` from a PyTorch-layout safetensors state dict (keys renamed by the `keys` table),
/// failing on any missing tensor.
fn load_pytorch_layout<M: Module + ModuleSnapshot>(
    mut module: M,
    bytes: Vec<u8>,
    keys: t2i::key_map::KeyTable,
) -> Result<M> {
    let mut store = if keys.is_empty() {
        SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter)
    } else {
        authors_store(bytes, keys)
    };
    let result = module
        .load_from(&mut store)
        .map_err(|e| anyhow!("loading tensors: {e}"))?;
    if !result.is_success() || !result.missing.is_empty() {
        bail!(
            "missing {:?}, errors {:?} (unused {:?})",
            result.missing,
            result.errors,
            result.unused
        );
    }
    let unused: Vec<_> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    if !unused.is_empty() {
        bail!("unused tensors {unused:?}");
    }
    Ok(module)
}

/// Whether `bytes` is a t2i bundle (has a `t2i.format`).
fn is_bundle(bytes: &[u8]) -> bool {
    bundle_format(bytes).is_ok()
}

fn load_gan_int_cls(path: Option<&str>, device: &Device) -> Result<(Generator, &'static str)> {
    let config = GanIntClsConfig::paper(256);
    let Some(path) = path else {
        return Ok((config.init_generator(device).valid(), "random"));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    if is_bundle(&bytes) {
        match load_gan(&bytes, device)? {
            GanBundle::GanIntCls(b) => {
                if b.gan_config.to_string() != config.to_string() {
                    bail!("{path}: not the paper size: {}", b.gan_config);
                }
                Ok((b.weights.generator, "bundle"))
            }
            _ => bail!("{path} is not a GAN-INT-CLS bundle"),
        }
    } else {
        let g = load_pytorch_layout(config.init_generator(device), bytes, &[])?;
        Ok((g.valid(), "pytorch state dict"))
    }
}

fn load_stackgan(
    path: Option<&str>,
    device: &Device,
) -> Result<(StackGanGenerators, StackGanConfig, &'static str)> {
    let config = StackGanConfig::paper(256);
    let Some(path) = path else {
        let g = StackGanGenerators {
            stage1: config.init_stage1_generator(device),
            stage2: config.init_stage2_generator(device),
        };
        return Ok((g.valid(), config, "random"));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    match load_gan(&bytes, device)? {
        GanBundle::StackGan(b) => {
            if b.gan_config.to_string() != config.to_string() {
                bail!("{path}: not StackGanConfig::paper(256): {}", b.gan_config);
            }
            Ok((b.weights.generators, b.gan_config, "bundle"))
        }
        _ => bail!("{path} is not a StackGAN bundle"),
    }
}

fn load_attngan(path: Option<&str>, device: &Device) -> Result<(AttnGanGenerator, &'static str)> {
    let config = AttnGanConfig::birds();
    let Some(path) = path else {
        return Ok((config.init_generator(device).valid(), "random"));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    if is_bundle(&bytes) {
        match load_gan(&bytes, device)? {
            GanBundle::AttnGan(b) => {
                if b.gan_config.to_string() != config.to_string() {
                    bail!("{path}: not AttnGanConfig::birds(): {}", b.gan_config);
                }
                Ok((b.weights.generator, "bundle"))
            }
            _ => bail!("{path} is not an AttnGAN bundle"),
        }
    } else {
        let g = load_pytorch_layout(config.init_generator(device), bytes, GENERATOR_KEYS)?;
        Ok((g.valid(), "pytorch state dict"))
    }
}

fn diffs(pairs: Vec<(&str, Option<f64>)>) -> Value {
    let mut map = serde_json::Map::new();
    for (name, d) in pairs {
        if let Some(d) = d {
            map.insert(name.to_string(), json!(d));
        }
    }
    Value::Object(map)
}

fn main() -> Result<()> {
    // As the `t2i` binary does.
    t2i_train::allocator::keep_freed_memory();
    let work = PathBuf::from(arg("--work").unwrap_or_else(|| "/tmp/t2i_bench_vs_pytorch".into()));
    let reps: usize = arg_or("--reps", 7);
    let warmup: usize = arg_or("--warmup", 2);
    let train_reps: usize = arg_or("--train-reps", 3);
    let wait: f64 = arg_or("--wait-idle", 0.0);
    let all = "gan_int_cls_b1,gan_int_cls_b8,stackgan_b1,stackgan_b8,attngan_b1,attngan_b8,train_gan_int_cls_b64";
    let cases: Vec<String> = arg("--cases")
        .unwrap_or_else(|| all.to_string())
        .split(',')
        .map(str::to_string)
        .collect();
    let device = Device::flex();
    let case_file = |case: &str| work.join(format!("{case}.safetensors"));
    let mut out = serde_json::Map::new();
    let wants = |prefix: &str| cases.iter().any(|c| c.starts_with(prefix));

    if wants("gan_int_cls_b") {
        let (g, source) = load_gan_int_cls(arg("--gan-int-cls").as_deref(), &device)?;
        for case in cases.iter().filter(|c| c.starts_with("gan_int_cls_b")) {
            let s = Saved::read(&case_file(case))?;
            let noise = s.tensor::<2>("noise", &device)?;
            let text = s.tensor::<2>("text", &device)?;
            let image = g.forward(noise.clone(), text.clone());
            let diff = if source == "random" {
                None
            } else {
                s.diff("expected_image", image)?
            };
            let timing = time(wait, warmup, reps, || {
                g.forward(noise.clone(), text.clone());
                Ok(())
            })?;
            out.insert(
                case.clone(),
                json!({"ms": timing.median, "runs_ms": timing.runs, "others_cpu": timing.others, "weights": source,
                       "max_abs_diff": diffs(vec![("image", diff)])}),
            );
        }
    }

    if wants("stackgan_b") {
        let (g, config, source) = load_stackgan(arg("--stackgan").as_deref(), &device)?;
        for case in cases.iter().filter(|c| c.starts_with("stackgan_b")) {
            let s = Saved::read(&case_file(case))?;
            let text = s.tensor::<2>("text", &device)?;
            let noise = s.tensor::<2>("noise", &device)?;
            let eps1 = s.tensor::<2>("eps1", &device)?;
            let eps2 = s.tensor::<2>("eps2", &device)?;
            let joined = Tensor::cat(vec![noise, eps1, eps2], 1);
            let (low, high) = g.forward(text.clone(), joined.clone(), &config);
            let (d1, d2) = if source == "random" {
                (None, None)
            } else {
                (
                    s.diff("expected_stage1", low)?,
                    s.diff("expected_stage2", high)?,
                )
            };
            let timing = time(wait, warmup, reps, || {
                g.forward(text.clone(), joined.clone(), &config);
                Ok(())
            })?;
            out.insert(
                case.clone(),
                json!({"ms": timing.median, "runs_ms": timing.runs, "others_cpu": timing.others, "weights": source,
                       "max_abs_diff": diffs(vec![("stage1", d1), ("stage2", d2)])}),
            );
        }
    }

    if wants("attngan_b") {
        let (g, source) = load_attngan(arg("--attngan").as_deref(), &device)?;
        for case in cases.iter().filter(|c| c.starts_with("attngan_b")) {
            let s = Saved::read(&case_file(case))?;
            let sentence = s.tensor::<2>("sentence", &device)?;
            let words = s.tensor::<3>("words", &device)?;
            let mask: Tensor<2, Bool> = s.tensor::<2>("mask", &device)?.greater_elem(0.5);
            let noise = s.tensor::<2>("noise", &device)?;
            let eps = s.tensor::<2>("eps", &device)?;
            let run = || {
                g.forward(
                    sentence.clone(),
                    words.clone(),
                    mask.clone(),
                    noise.clone(),
                    eps.clone(),
                )
            };
            let output = run();
            let mut d = Vec::new();
            if source != "random" {
                for (image, name) in output.images.into_iter().zip(["64", "128", "256"]) {
                    d.push((name, s.diff(&format!("expected_{name}"), image)?));
                }
                for (maps, name) in output.attention.into_iter().zip(["att_64", "att_128"]) {
                    d.push((name, s.diff(&format!("expected_{name}"), maps)?));
                }
            }
            let timing = time(wait, warmup, reps, || {
                run();
                Ok(())
            })?;
            out.insert(
                case.clone(),
                json!({"ms": timing.median, "runs_ms": timing.runs, "others_cpu": timing.others, "weights": source,
                       "max_abs_diff": diffs(d)}),
            );
        }
    }

    if let Some(case) = cases.iter().find(|c| c.starts_with("train_gan_int_cls")) {
        let s = Saved::read(&case_file(case))?;
        let train_device = device.clone().autodiff();
        let config = GanIntClsConfig::paper(256);
        let (g, g_source) = load_gan_int_cls(arg("--gan-int-cls").as_deref(), &device)?;
        let mut generator: Generator = g.fork(&train_device).train();
        let mut discriminator: Discriminator = match arg("--train-d") {
            Some(path) => {
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
                load_pytorch_layout(config.init_discriminator(&train_device), bytes, &[])?
            }
            None => config.init_discriminator(&train_device),
        };
        let mut optim_g = gan_adam();
        let mut optim_d = gan_adam();
        let t = |name: &str| -> Result<Tensor<2>> { s.tensor::<2>(name, &train_device) };
        let real = s.tensor::<4>("real", &train_device)?;
        let (right, wrong, partner) = (t("right")?, t("wrong")?, t("partner")?);
        let (noise, noise_interp) = (t("noise")?, t("noise_interp")?);
        let lr = 2e-4;
        let interp_weight = 1.0f32;
        let beta = 0.5f32;
        let mut losses: Vec<(f32, f32)> = Vec::new();
        // `GanIntClsPair::step` with the noise given instead of drawn.
        let mut step = || -> Result<()> {
            let fake = generator.forward(noise.clone(), right.clone()).detach();
            let d = &discriminator;
            let loss_d = discriminator_loss(
                d.forward(real.clone(), right.clone()),
                d.forward(real.clone(), wrong.clone()),
                d.forward(fake, right.clone()),
                AdversarialLoss::Logistic,
            );
            let value_d = loss_d.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss_d.backward(), &discriminator);
            discriminator = optim_d.step(lr, discriminator.clone(), grads);

            let fake = generator.forward(noise.clone(), right.clone());
            let text = interpolate_text(right.clone(), partner.clone(), beta);
            let interpolated =
                discriminator.forward(generator.forward(noise_interp.clone(), text.clone()), text);
            let loss_g = generator_loss(
                discriminator.forward(fake, right.clone()),
                Some(interpolated),
                interp_weight,
                AdversarialLoss::Logistic,
            );
            let value_g = loss_g.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss_g.backward(), &generator);
            generator = optim_g.step(lr, generator.clone(), grads);
            losses.push((value_d, value_g));
            Ok(())
        };
        // The first two steps are the warm-up and the loss check.
        let timing = time(wait, 2, train_reps, &mut step)?;
        let mut d = serde_json::Map::new();
        for (k, (ld, lg)) in losses.iter().take(2).enumerate() {
            let n = k + 1;
            if let (Some(ed), Some(eg)) = (
                s.scalar(&format!("expected_loss_d_{n}")),
                s.scalar(&format!("expected_loss_g_{n}")),
            ) && g_source != "random"
                && arg("--train-d").is_some()
            {
                d.insert(format!("loss_d_{n}"), json!((ld - ed).abs()));
                d.insert(format!("loss_g_{n}"), json!((lg - eg).abs()));
            }
        }
        out.insert(
            case.clone(),
            json!({"ms": timing.median, "runs_ms": timing.runs, "others_cpu": timing.others, "weights": g_source,
                   "losses": losses.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                   "max_abs_diff": Value::Object(d)}),
        );
    }

    println!("{}", Value::Object(out));
    Ok(())
}
