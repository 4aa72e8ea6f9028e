//! How far two builds' trainings drift apart: the same GAN-INT-CLS run (small widths, coloured
//! shapes, a fixed seed) recorded by each build, and the largest parameter difference between
//! the two after 1, 2, 5, ... steps. Run it once per kernel path (burn's AVX-512 matrix products
//! are the `avx512` feature; `--no-default-features` leaves them out) and compare:
//!
//! ```text
//! cargo run --release -p t2i-train --example kernel_path_drift -- record /tmp/avx512.bin
//! cargo run --release -p t2i-train --no-default-features --example kernel_path_drift -- record /tmp/avx2.bin
//! cargo run --release -p t2i-train --example kernel_path_drift -- compare /tmp/avx512.bin /tmp/avx2.bin
//! ```
//!
//! Two records of one build on one machine are identical; `RAYON_NUM_THREADS` shows whether
//! the thread count matters too.

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use t2i::gan_int_cls::{GanIntClsConfig, Generator};
use t2i_train::data::gan_set::GanSet;
use t2i_train::data::shapes::shapes_dataset;
use t2i_train::gan_int_cls::train::{GanIntClsLosses, GanTrainOptions, train_gan_int_cls};
use t2i_train::run::adversarial::{RunPlace, SampleHook};
use t2i_train::run::checkpoint::{Checkpoints, parameter_values};

/// The steps at which the generator's parameters are recorded.
const STEPS: [u64; 9] = [1, 2, 5, 10, 20, 50, 100, 200, 400];
const TEXT_DIM: usize = 32;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["record", out] => record(out),
        ["compare", a, b] => compare(a, b),
        _ => bail!("usage: kernel_path_drift record OUT | compare A B"),
    }
}

/// Trains and writes, per recorded step: the step, the number of values, the values (f32 LE).
fn record(out: &str) -> Result<()> {
    let shapes = shapes_dataset(1024, 64, 11);
    // A fixed random embedding per class (shape and colour): the drift needs a real training
    // signal, not a trained text encoder.
    let mut state = 0x5eedu64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let classes: Vec<Vec<f32>> = (0..64)
        .map(|_| (0..TEXT_DIM).map(|_| uniform()).collect())
        .collect();
    let class_ids: Vec<u32> = shapes
        .iter()
        .map(|(_, _, l)| l.class_index() as u32)
        .collect();
    let embeddings = class_ids
        .iter()
        .map(|&c| classes[c as usize % classes.len()].clone())
        .collect();
    let images = shapes.into_iter().map(|(i, _, _)| i).collect();
    let data = GanSet::new(64, images, class_ids, embeddings, TEXT_DIM);
    let options = GanTrainOptions {
        model: GanIntClsConfig::new()
            .with_text_dim(TEXT_DIM)
            .with_ngf(32)
            .with_ndf(16),
        run: t2i_train::run::adversarial::RunOptions {
            max_steps: Some(*STEPS.last().unwrap()),
            ..t2i_train::run::adversarial::RunOptions::new(32, 1000, 9)
        },
        lr: 2e-4,
        lr_decay_every: 100,
        family: GanIntClsLosses {
            interp_weight: 0.0,
            beta: 0.5,
        },
        recipe: t2i_train::run::recipe::Recipe::papers(),
    };
    let mut file = std::fs::File::create(out).with_context(|| format!("cannot create {out}"))?;
    let write = std::cell::RefCell::new(|step: u64, generator: &Generator| -> Result<()> {
        if !STEPS.contains(&step) {
            return Ok(());
        }
        let bytes: Vec<u8> = parameter_values(generator)?
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect();
        file.write_all(&step.to_le_bytes())?;
        file.write_all(&((bytes.len() / 4) as u64).to_le_bytes())?;
        file.write_all(&bytes)?;
        Ok(())
    });
    let hook_fn = |step: u64, generator: &Generator| (write.borrow_mut())(step, generator);
    let hook = SampleHook {
        every: 1,
        write: &hook_fn,
    };
    let dir = tempfile::tempdir()?;
    let (checkpoints, device, stop) = (
        Checkpoints::new(dir.path(), 1),
        Device::flex(),
        AtomicBool::new(false),
    );
    let place = RunPlace::new(&checkpoints, &device, &stop).with_samples(&hook);
    train_gan_int_cls(&options, &data, &place)?;
    println!("recorded steps {STEPS:?} in {out}");
    Ok(())
}

fn read(path: &str) -> Result<Vec<(u64, Vec<f32>)>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {path}"))?
        .read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut at = 0;
    let word = |at: usize| -> Result<u64> {
        let b = bytes
            .get(at..at + 8)
            .with_context(|| format!("{path} is truncated"))?;
        Ok(u64::from_le_bytes(b.try_into().unwrap()))
    };
    while at < bytes.len() {
        let (step, n) = (word(at)?, word(at + 8)? as usize);
        let values = bytes
            .get(at + 16..at + 16 + 4 * n)
            .with_context(|| format!("{path} is truncated"))?
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        records.push((step, values));
        at += 16 + 4 * n;
    }
    Ok(records)
}

fn compare(a: &str, b: &str) -> Result<()> {
    let (a, b) = (read(a)?, read(b)?);
    println!("step  max |a - b|  mean |a - b|  mean |a|");
    for ((step, x), (step_b, y)) in a.iter().zip(&b) {
        if step != step_b || x.len() != y.len() {
            bail!("the records differ in their steps or sizes: not the same run");
        }
        let diff = x.iter().zip(y).map(|(p, q)| (p - q).abs());
        let max = diff.clone().fold(0.0f32, f32::max);
        let mean = diff.sum::<f32>() / x.len() as f32;
        let scale = x.iter().map(|v| v.abs()).sum::<f32>() / x.len() as f32;
        println!("{step:>4}  {max:>11.3e}  {mean:>12.3e}  {scale:>8.3e}");
    }
    Ok(())
}
