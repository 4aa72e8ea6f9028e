//! Inception Score (Salimans et al. 2016), `IS = exp(E_x KL(p(y|x) || p(y)))`, and the
//! classifier it is read from.
//!
//! StackGAN and AttnGAN score birds and flowers with an Inception-v3 *fine-tuned on the
//! dataset's classes* (StackGAN's `inception_score.py`). We cannot fine-tune the network here,
//! so [`IsHead`] is a linear softmax classifier (2048 -> K) trained on the **frozen** FID
//! Inception's `pool3` features of real training images with their class labels. Its scores
//! are therefore this project's own and not comparable with the papers' numbers; report it
//! with [`IsHead::description`] and the head's accuracy on held-out real photos.
//!
//! [`inception_score`] follows the reference code (`improved-gan/inception_score/model.py`):
//! the `N` rows are cut into `splits` contiguous parts (`i * N / splits .. (i + 1) * N /
//! splits`), each part gives `exp(mean_x KL(p(y|x) || mean_x p(y|x)))`, and the result is the
//! mean and the (population) standard deviation over the parts. Shuffle rows that arrive
//! grouped by class before calling it, or every part sees only a few classes.

use anyhow::{Context, Result, bail, ensure};
use burn::module::{Initializer, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// How an [`IsHead`] is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct IsHeadOptions {
    /// Most passes over the training rows; raised to reach [`IsHeadOptions::min_updates`]
    /// optimiser steps on small sets.
    pub max_epochs: usize,
    pub min_updates: usize,
    pub batch_size: usize,
    /// Adam's learning rate (betas 0.9, 0.999).
    pub learning_rate: f64,
    /// L2 penalty on the weights (Adam's weight decay, added to the gradient).
    pub weight_decay: f32,
    /// Share of the training rows kept aside to choose the epoch (early stopping); none are
    /// kept aside when fewer than [`IsHeadOptions::min_rows_for_validation`] rows are given.
    pub validation_fraction: f64,
    pub min_rows_for_validation: usize,
    /// Epochs without a better validation loss before training stops.
    pub patience: usize,
}

impl Default for IsHeadOptions {
    fn default() -> Self {
        Self {
            max_epochs: 100,
            min_updates: 2000,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-3,
            validation_fraction: 0.1,
            min_rows_for_validation: 50,
            patience: 5,
        }
    }
}

/// A linear softmax classifier on standardised features: `softmax(W (x - mean) / std + b)`.
/// Class ids are remapped to `0..K` in ascending order ([`IsHead::classes`]).
#[derive(Debug, Clone)]
pub struct IsHead {
    linear: Linear,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    classes: Vec<u32>,
    device: Device,
    /// Rows the head was fitted on (validation rows not included).
    pub train_rows: usize,
    /// Rows kept aside to choose the epoch.
    pub validation_rows: usize,
    /// The epoch whose weights were kept (1-based).
    pub epochs: usize,
}

impl IsHead {
    /// Trains a head with [`IsHeadOptions::default`]: `features` are `labels.len()` rows,
    /// row-major (the width is inferred), `labels` the class id of each row (any ids, at least
    /// two distinct). Seeded: the same inputs and seed give the same head.
    pub fn train(features: &[f32], labels: &[u32], device: &Device, seed: u64) -> Result<Self> {
        Self::train_with(features, labels, &IsHeadOptions::default(), device, seed)
    }

    /// [`IsHead::train`] with explicit options.
    pub fn train_with(
        features: &[f32],
        labels: &[u32],
        options: &IsHeadOptions,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let n = labels.len();
        ensure!(n > 0, "no rows to train the Inception Score head on");
        ensure!(
            !features.is_empty() && features.len().is_multiple_of(n),
            "{} feature values do not make {n} rows",
            features.len()
        );
        ensure!(
            options.batch_size > 0 && options.max_epochs > 0,
            "batch size and epochs must be positive"
        );
        ensure!(
            features.iter().all(|v| v.is_finite()),
            "the features hold a non-finite value"
        );
        let dim = features.len() / n;
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let k = classes.len();
        ensure!(
            k >= 2,
            "the Inception Score head needs at least 2 classes, the labels hold {k}"
        );

        // Standardisation from all rows (it only conditions the optimisation).
        let mut mean = vec![0f64; dim];
        for row in features.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; dim];
        for row in features.chunks_exact(dim) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        let inv_std: Vec<f32> = var
            .iter()
            .map(|s| {
                let std = (s / n as f64).sqrt();
                if std > 1e-6 { (1.0 / std) as f32 } else { 1.0 }
            })
            .collect();
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let targets: Vec<i64> = labels
            .iter()
            .map(|l| classes.binary_search(l).expect("a label of the rows") as i64)
            .collect();

        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = StdRng::seed_from_u64(seed);
        order.shuffle(&mut rng);
        let held = if n >= options.min_rows_for_validation {
            ((n as f64 * options.validation_fraction).round() as usize).min(n - 1)
        } else {
            0
        };
        let (validation, train) = order.split_at(held);
        let mut train = train.to_vec();

        // Zero initial weights (the problem is convex): no draw from the device's shared random
        // generator, so the head depends on `seed` alone.
        let train_device = device.clone().autodiff();
        let mut head = Self {
            linear: LinearConfig::new(dim, k)
                .with_initializer(Initializer::Zeros)
                .init(&train_device),
            mean,
            inv_std,
            classes,
            device: train_device.clone(),
            train_rows: train.len(),
            validation_rows: validation.len(),
            epochs: 0,
        };
        let loss = CrossEntropyLossConfig::new().init(&train_device);
        let mut optim = AdamConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(options.weight_decay)))
            .init();
        let validation_targets: Vec<usize> =
            validation.iter().map(|&r| targets[r] as usize).collect();
        let validation_rows = gather(features, dim, validation);
        let mut best: Option<(f64, Linear, usize)> = None;
        let batches = train.len().div_ceil(options.batch_size);
        let max_epochs = options
            .max_epochs
            .max(options.min_updates.div_ceil(batches.max(1)));
        for epoch in 1..=max_epochs {
            train.shuffle(&mut rng);
            for rows in train.chunks(options.batch_size) {
                let x = head.input(&gather(features, dim, rows), rows.len());
                let y = Tensor::<1, Int>::from_data(
                    TensorData::new(rows.iter().map(|&r| targets[r]).collect(), [rows.len()]),
                    &train_device,
                );
                let value = loss.forward(head.linear.forward(x), y);
                let grads = GradientsParams::from_grads(value.backward(), &head.linear);
                head.linear = optim.step(options.learning_rate, head.linear, grads);
            }
            if validation.is_empty() {
                head.epochs = epoch;
                continue;
            }
            let inference = head.linear.valid();
            let probabilities = predict(
                &inference,
                &head.mean,
                &head.inv_std,
                &validation_rows,
                validation.len(),
                device,
            )?;
            let nll = mean_negative_log_likelihood(&probabilities, k, &validation_targets);
            ensure!(
                nll.is_finite(),
                "the Inception Score head diverged at epoch {epoch}"
            );
            match &best {
                Some((best_nll, _, best_epoch))
                    if nll >= *best_nll && epoch - best_epoch >= options.patience =>
                {
                    break;
                }
                Some((best_nll, _, _)) if nll >= *best_nll => {}
                _ => best = Some((nll, head.linear.clone(), epoch)),
            }
        }
        if let Some((_, linear, epoch)) = best {
            head.linear = linear;
            head.epochs = epoch;
        }
        head.linear = head.linear.valid();
        head.device = device.clone();
        Ok(head)
    }

    /// The original class ids, ascending; column `j` of [`IsHead::probabilities`] is
    /// `classes()[j]`.
    pub fn classes(&self) -> &[u32] {
        &self.classes
    }

    /// Width of the feature rows it reads.
    pub fn feature_dim(&self) -> usize {
        self.mean.len()
    }

    /// `p(y|x)` of each row of `features` (row-major, [`IsHead::feature_dim`] wide):
    /// `[N, K]` row-major.
    pub fn probabilities(&self, features: &[f32]) -> Result<Vec<f32>> {
        let dim = self.feature_dim();
        ensure!(
            features.len().is_multiple_of(dim),
            "{} feature values do not make rows of {dim}",
            features.len()
        );
        let n = features.len() / dim;
        let mut out = Vec::with_capacity(n * self.classes.len());
        for chunk in features.chunks(1024 * dim) {
            out.extend(predict(
                &self.linear,
                &self.mean,
                &self.inv_std,
                chunk,
                chunk.len() / dim,
                &self.device,
            )?);
        }
        Ok(out)
    }

    /// Share of rows whose most probable class is their label. A label the head was not
    /// trained on is an error.
    pub fn accuracy(&self, features: &[f32], labels: &[u32]) -> Result<f64> {
        ensure!(!labels.is_empty(), "no rows to measure the accuracy on");
        ensure!(
            features.len() == labels.len() * self.feature_dim(),
            "{} feature values for {} labels of {} values each",
            features.len(),
            labels.len(),
            self.feature_dim()
        );
        let k = self.classes.len();
        let probabilities = self.probabilities(features)?;
        let mut hits = 0usize;
        for (row, label) in probabilities.chunks_exact(k).zip(labels) {
            let target = self.classes.binary_search(label).map_err(|_| {
                anyhow::anyhow!("class {label} is not one of the head's {k} classes")
            })?;
            if argmax(row) == target {
                hits += 1;
            }
        }
        Ok(hits as f64 / labels.len() as f64)
    }

    /// One sentence saying what the head is, for reports.
    pub fn description(&self) -> String {
        let stopping = if self.validation_rows > 0 {
            format!(
                "early-stopped at epoch {} on {} held-aside rows",
                self.epochs, self.validation_rows
            )
        } else {
            format!("{} epochs", self.epochs)
        };
        format!(
            "Inception Score from a linear softmax head ({} -> {} classes, Adam, cross-entropy, \
             L2, {stopping}) trained on frozen Inception (2015-12-05) pool3 features of {} real \
             training images, not from an Inception fine-tuned on the dataset as in \
             StackGAN/AttnGAN: scores are not comparable with the papers'",
            self.feature_dim(),
            self.classes.len(),
            self.train_rows
        )
    }

    /// Standardised rows as a tensor on the head's device.
    fn input(&self, rows: &[f32], n: usize) -> Tensor<2> {
        standardise(rows, &self.mean, &self.inv_std, n, &self.device)
    }
}

fn standardise(
    rows: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    n: usize,
    device: &Device,
) -> Tensor<2> {
    let dim = mean.len();
    let values: Vec<f32> = rows
        .chunks_exact(dim)
        .flat_map(|row| {
            row.iter()
                .zip(mean)
                .zip(inv_std)
                .map(|((v, m), s)| (v - m) * s)
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, dim]), device)
}

fn predict(
    linear: &Linear,
    mean: &[f32],
    inv_std: &[f32],
    rows: &[f32],
    n: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let x = standardise(rows, mean, inv_std, n, device);
    softmax(linear.forward(x), 1)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the head's output: {e:?}"))
        .context("Inception Score head")
}

fn gather(features: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| features[r * dim..(r + 1) * dim].iter().copied())
        .collect()
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 { (i, p) } else { best }
        })
        .0
}

fn mean_negative_log_likelihood(probabilities: &[f32], k: usize, targets: &[usize]) -> f64 {
    probabilities
        .chunks_exact(k)
        .zip(targets)
        .map(|(row, &t)| -f64::from(row[t]).max(1e-30).ln())
        .sum::<f64>()
        / targets.len().max(1) as f64
}

/// Inception Score of `probabilities` (`N` rows of `classes` values, each a distribution)
/// over `splits` contiguous parts: `(mean, std)` (see the module documentation; the papers
/// use 10 splits). Needs at least `splits` rows.
pub fn inception_score(probabilities: &[f32], classes: usize, splits: usize) -> Result<(f64, f64)> {
    ensure!(classes > 0, "the class count must be positive");
    ensure!(splits > 0, "the split count must be positive");
    ensure!(
        probabilities.len().is_multiple_of(classes),
        "{} probabilities do not make rows of {classes}",
        probabilities.len()
    );
    let n = probabilities.len() / classes;
    if n < splits {
        bail!("{n} images are too few for an Inception Score over {splits} splits");
    }
    if let Some(bad) = probabilities
        .iter()
        .position(|p| !p.is_finite() || *p < 0.0)
    {
        bail!(
            "row {} holds {}, not a probability",
            bad / classes,
            probabilities[bad]
        );
    }
    let rows: Vec<&[f32]> = probabilities.chunks_exact(classes).collect();
    let mut scores = Vec::with_capacity(splits);
    for i in 0..splits {
        let part = &rows[i * n / splits..(i + 1) * n / splits];
        let mut marginal = vec![0f64; classes];
        for row in part {
            for (m, &p) in marginal.iter_mut().zip(*row) {
                *m += f64::from(p);
            }
        }
        marginal.iter_mut().for_each(|m| *m /= part.len() as f64);
        let kl: f64 = part
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&marginal)
                    .filter(|(p, _)| **p > 0.0)
                    .map(|(&p, &m)| {
                        let p = f64::from(p);
                        p * (p.ln() - m.ln())
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / part.len() as f64;
        scores.push(kl.exp());
    }
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok((mean, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_predictions_score_one() {
        let k = 7;
        let p = vec![1.0 / k as f32; 50 * k];
        let (mean, std) = inception_score(&p, k, 10).unwrap();
        assert!((mean - 1.0).abs() < 1e-6, "{mean}");
        assert!(std < 1e-6);
    }

    #[test]
    fn confident_even_predictions_score_the_class_count() {
        // 40 one-hot rows cycling over 4 classes: every split of 4 rows holds each class once,
        // p(y) is uniform, KL = ln 4 for each row, IS = 4.
        let k = 4;
        let p: Vec<f32> = (0..40 * k)
            .map(|i| if (i / k) % k == i % k { 1.0 } else { 0.0 })
            .collect();
        let (mean, std) = inception_score(&p, k, 10).unwrap();
        assert!((mean - 4.0).abs() < 1e-9, "{mean}");
        assert!(std < 1e-9);
        // All rows of one class: p(y) = p(y|x), KL = 0, IS = 1.
        let same: Vec<f32> = (0..40 * k)
            .map(|i| if i % k == 2 { 1.0 } else { 0.0 })
            .collect();
        assert!((inception_score(&same, k, 10).unwrap().0 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn matches_a_hand_computed_score() {
        // Rows (0.5, 0.5) and (1, 0): p(y) = (0.75, 0.25);
        // KL1 = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25) = 0.5 ln(4/3), KL2 = ln(4/3);
        // IS = exp(0.75 ln(4/3)) = (4/3)^0.75.
        let (mean, std) = inception_score(&[0.5, 0.5, 1.0, 0.0], 2, 1).unwrap();
        assert!((mean - (4.0f64 / 3.0).powf(0.75)).abs() < 1e-7, "{mean}");
        assert_eq!(std, 0.0);
        // Two splits, one per row: each split has one row, KL = 0, IS = 1 each.
        let (mean, _) = inception_score(&[0.5, 0.5, 1.0, 0.0], 2, 2).unwrap();
        assert!((mean - 1.0).abs() < 1e-9);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(inception_score(&[0.5, 0.5], 2, 10).is_err());
        assert!(inception_score(&[0.5, 0.5, 0.2], 2, 1).is_err());
        assert!(inception_score(&[0.5, f32::NAN], 2, 1).is_err());
        assert!(inception_score(&[0.5, 0.5], 2, 0).is_err());
        let device = Device::flex();
        assert!(IsHead::train(&[1.0, 2.0, 3.0, 4.0], &[1, 1], &device, 0).is_err());
        assert!(IsHead::train(&[1.0, 2.0, 3.0], &[1, 2], &device, 0).is_err());
        assert!(IsHead::train(&[], &[], &device, 0).is_err());
    }

    /// Separable synthetic features: class c has a mean on axis c, plus noise.
    fn synthetic(
        n_per_class: usize,
        classes: &[u32],
        dim: usize,
        seed: u64,
    ) -> (Vec<f32>, Vec<u32>) {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n_per_class * classes.len() {
            let c = i % classes.len();
            for d in 0..dim {
                let centre = if d == c { 6.0 } else { 0.0 };
                features.push(centre + rng.random_range(-1.0f32..1.0) + 5.0);
            }
            labels.push(classes[c]);
        }
        (features, labels)
    }

    #[test]
    fn head_learns_separable_classes() {
        let device = Device::flex();
        let classes = [12, 3, 40, 7, 25];
        let (train, train_labels) = synthetic(40, &classes, 16, 1);
        let (test, test_labels) = synthetic(20, &classes, 16, 2);
        let head = IsHead::train(&train, &train_labels, &device, 5).unwrap();
        assert_eq!(head.classes(), &[3, 7, 12, 25, 40]);
        assert_eq!(head.feature_dim(), 16);
        assert_eq!(head.train_rows + head.validation_rows, 200);
        let accuracy = head.accuracy(&test, &test_labels).unwrap();
        assert!(accuracy > 0.95, "accuracy {accuracy}");
        // Confident, evenly spread predictions: IS close to the 5 classes.
        let p = head.probabilities(&test).unwrap();
        assert_eq!(p.len(), 100 * 5);
        for row in p.chunks(5) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
        let (is, _) = inception_score(&p, 5, 10).unwrap();
        assert!(is > 3.5 && is <= 5.0 + 1e-6, "IS {is}");
        // Same seed, same head.
        let again = IsHead::train(&train, &train_labels, &device, 5).unwrap();
        assert_eq!(again.probabilities(&test).unwrap(), p);
        // A label it never saw is an error, not a miss.
        assert!(head.accuracy(&test[..16], &[99]).is_err());
        assert!(
            head.description()
                .contains("not from an Inception fine-tuned")
        );
    }
}
