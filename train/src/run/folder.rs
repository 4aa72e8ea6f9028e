//! The folder a GAN training run writes besides its checkpoints: the config it ran with,
//! `samples/` (the sample pictures of every `sample_steps`, each also as `latest`),
//! `metrics.jsonl` and the loss curve `losses.png`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;

use crate::config::GanTrainConfig;
use crate::family::TrainRequest;
use crate::run::adversarial::{RunPlace, SampleHook};
use crate::run::checkpoint::{Checkpoints, write_atomic};
use crate::run::plot::write_loss_curve;

/// A run's folder, created with its `samples/`.
pub struct RunFolder {
    dir: PathBuf,
    samples: PathBuf,
    /// The config's `train.sample_steps`.
    sample_steps: u64,
}

impl RunFolder {
    /// Creates `dir` and `dir/samples`, and writes `config` as `config.toml` in the config's
    /// `output_dir` (a StackGAN stage's folder lies inside it).
    pub fn create(dir: &Path, config: &GanTrainConfig) -> Result<Self> {
        let samples = dir.join("samples");
        std::fs::create_dir_all(&samples)
            .with_context(|| format!("cannot create {}", samples.display()))?;
        write_atomic(
            &config.output_dir.join("config.toml"),
            toml::to_string(config)?.as_bytes(),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            samples,
            sample_steps: config.train.sample_steps,
        })
    }

    /// Calls `write` every `train.sample_steps` steps and at the end.
    pub fn sample_hook<'a, G>(
        &self,
        write: &'a dyn Fn(u64, &G) -> Result<()>,
    ) -> SampleHook<'a, G> {
        SampleHook {
            every: self.sample_steps,
            write,
        }
    }

    /// Where a run of `request` writes: `checkpoints`, this folder's metrics log and `hook`'s
    /// samples; on the request's device, stopped by its flag.
    pub fn place<'a, G>(
        &self,
        checkpoints: &'a Checkpoints,
        request: &TrainRequest<'a>,
        hook: &'a SampleHook<'a, G>,
    ) -> RunPlace<'a, G> {
        RunPlace::new(checkpoints, request.device, request.stop)
            .with_metrics(self.metrics())
            .with_samples(hook)
    }

    /// `metrics.jsonl`, the loop's log of every step's losses.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }

    /// Saves `image` as `samples/{name}-{step}.png` and `samples/{name}-latest.png`; the name
    /// `step` writes `step-{step}.png` and `latest.png`.
    pub fn save_sample(&self, image: &RgbImage, name: &str, step: u64) -> Result<()> {
        let latest = match name {
            "step" => "latest.png".to_string(),
            name => format!("{name}-latest.png"),
        };
        for path in [
            self.samples.join(format!("{name}-{step:07}.png")),
            self.samples.join(latest),
        ] {
            image
                .save(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Redraws `losses.png` from the metrics: the curves of `keys` under `title`.
    pub fn write_losses(&self, keys: &[&str], title: &str) -> Result<()> {
        write_loss_curve(&self.metrics(), &self.dir.join("losses.png"), keys, title)
    }

    /// The line a run ends with: how it ended, after how many steps, where its samples are.
    pub fn report_end(&self, what: &str, interrupted: bool, steps: u64) {
        let how = if interrupted {
            "interrupted"
        } else {
            "stopped"
        };
        let line = format!(
            "{what} {how} after {steps} steps; samples in {}",
            self.samples.display()
        );
        eprintln!("{}", line.trim_start());
    }
}
