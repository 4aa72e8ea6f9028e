//! Seconds per AttnGAN training step (text encoder, generator, three discriminators, both
//! updates) for the small config (`AttnGanConfig::small()`), with and without the DAMSM term
//! and at two sizes of Inception's input.
//!
//! ```sh
//! cargo run --release -p t2i-train --example attngan_step_time -- [--backend flex] [--batch 8] [--steps 3]
//! ```
//!
//! Data: coloured shapes at 256 px with their captions; the text encoder and the DAMSM
//! projections are freshly initialised (their weights do not change the cost); Inception-v3 is
//! the real one from `../shared/models`. Each setting runs one warm-up step, then `--steps`
//! timed steps; the medians of wall-clock and CPU seconds (all threads) are printed.
//! The settings take turns step by step, so other processes on the machine slow them alike;
//! the load average is printed after the run.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use t2i::attngan::AttnGanConfig;
use t2i::damsm::ImageEncoderConfig;
use t2i::inception::Inception;
use t2i_train::attngan::train::{AttnGanFrozen, AttnGanPair, AttnGanTrainOptions};
use t2i_train::data::gan_set::shapes_gan_set;
use t2i_train::device::{Backend, select};
use t2i_train::run::adversarial::{AdversarialPair, read_back};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has used, all threads (`/proc/self/stat` utime + stime, in
/// Linux's fixed 100 ticks per second); `None` where there is no such file.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> Result<()> {
    let batch: usize = arg("--batch", 8);
    let steps: usize = arg("--steps", 3);
    let backend: String = arg("--backend", "flex".to_string());
    let backend =
        <Backend as clap::ValueEnum>::from_str(&backend, true).map_err(anyhow::Error::msg)?;
    let device = select(backend)?;

    let (data, text_encoder) = shapes_gan_set(2 * batch, 256, &device);
    let inception_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/models/inception-2015-12-05.safetensors");
    let inception = Inception::load(&inception_path, &device)
        .with_context(|| format!("loading {}", inception_path.display()))?;
    let frozen = AttnGanFrozen::new(
        text_encoder,
        Some((inception, ImageEncoderConfig::new().init(&device))),
    );

    let train_device = device.clone().autodiff();
    let rows: Vec<usize> = (0..batch).collect();
    println!(
        "AttnGAN small (ngf 16, ndf 16, 1 residual block, 64/128/256 px), batch {batch}, backend {backend}; median of {steps} steps after one warm-up"
    );
    let settings: [(&str, f32, usize); 3] = [
        ("without DAMSM", 0.0, 299),
        ("DAMSM, Inception at 299", 5.0, 299),
        ("DAMSM, Inception at 149", 5.0, 149),
    ];
    let mut pairs: Vec<(&str, AttnGanTrainOptions, Option<AttnGanPair>)> = settings
        .into_iter()
        .map(|(name, lambda, size)| {
            let mut options = AttnGanTrainOptions {
                damsm_lambda: lambda,
                damsm_image_size: size,
                ..AttnGanTrainOptions::birds(AttnGanConfig::small())
            };
            options.run.batch_size = batch;
            let pair = AttnGanPair::new(&options, &frozen, &data, &train_device);
            (name, options, Some(pair))
        })
        .collect();
    // Rounds of one step per setting, so that other load on the machine hits them alike.
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
    for round in 0..=steps {
        for (((name, options, slot), times), cpu) in pairs.iter_mut().zip(&mut times).zip(&mut cpu)
        {
            let pair = slot.take().expect("put back after each step");
            let mut rng = StdRng::seed_from_u64(round as u64);
            let (started, cpu_started) = (Instant::now(), cpu_seconds());
            let (next, losses) = pair.step(&rows, &mut rng, options.lr_g)?;
            // Reading the losses waits for the step's work, as training does.
            let losses = read_back(&[losses])?.remove(0);
            let seconds = started.elapsed().as_secs_f64();
            let cpu_used = cpu_seconds().zip(cpu_started).map(|(b, a)| b - a);
            *slot = Some(next);
            anyhow::ensure!(
                losses.iter().all(|(_, v)| v.is_finite()),
                "{name}: non-finite loss {losses:?}"
            );
            if round > 0 {
                times.push(seconds);
                cpu.extend(cpu_used);
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for (((name, _, _), times), cpu) in pairs.iter().zip(times).zip(cpu) {
        let shown: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "{name:<26} {:>6.2} s/step wall, {:>6.2} CPU s/step  (wall per step: {} s)",
            median(times.clone()),
            median(cpu),
            shown.join(", ")
        );
    }
    println!("load average after the run: {}", load_average());
    Ok(())
}
