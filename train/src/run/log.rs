//! What a training run tells its user and leaves on disk besides checkpoints: a progress bar
//! (or plain lines when stderr is not a terminal) and metrics as JSON lines.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A permutation of a training set for one epoch, reproducible from (seed, epoch), so a run
/// resumed mid-epoch sees the same order.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ ((epoch as u64) << 32)));
    order
}

/// A training run's progress: a bar over the steps (plain lines every 50 steps when the bar
/// is hidden) and the recent throughput.
pub struct Progress {
    bar: ProgressBar,
    window_start: Instant,
    last_record: Instant,
    window_images: usize,
    last_step: u64,
}

impl Progress {
    /// A bar from `position` to `last_step`; hidden when `enabled` is false.
    pub fn new(enabled: bool, last_step: u64, position: u64) -> Self {
        Self {
            bar: progress_bar(enabled, last_step, position),
            window_start: Instant::now(),
            last_record: Instant::now(),
            window_images: 0,
            last_step,
        }
    }

    /// Counts the images of a finished step; returns images per second over recent steps.
    pub fn record(&mut self, images: usize) -> f64 {
        let now = Instant::now();
        if self.window_images >= 1000 {
            // A new window starts where the previous step ended, so it spans this step.
            self.window_start = self.last_record;
            self.window_images = 0;
        }
        self.last_record = now;
        self.window_images += images;
        self.window_images as f64 / (now - self.window_start).as_secs_f64().max(1e-9)
    }

    /// Moves the bar to `step` with a status message.
    pub fn advance(&self, step: u64, message: String) {
        self.bar.set_message(message);
        self.bar.inc(1);
        if self.bar.is_hidden() && step.is_multiple_of(50) {
            say(
                &self.bar,
                format!("step {step}/{} {}", self.last_step, self.bar.message()),
            );
        }
    }

    /// A line for the user (see [`say`]).
    pub fn say(&self, line: String) {
        say(&self.bar, line);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A line for the user: above the progress bar, or plainly when the bar is hidden (options,
/// or stderr is not a terminal, as in a background run writing to a log).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

pub fn progress_bar(enabled: bool, total: u64, position: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_position(position);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Metrics as JSON lines; on resume, lines past the checkpoint's step are dropped so the log
/// matches the run.
pub struct MetricsLog {
    file: std::fs::File,
}

impl MetricsLog {
    pub fn open(path: PathBuf, resumed_step: u64) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            let kept: String = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .lines()
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s <= resumed_step)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            crate::run::checkpoint::write_atomic(&path, kept.as_bytes())?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { file })
    }

    pub fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        writeln!(self.file, "{value}")?;
        Ok(())
    }
}
