//! Evaluation metrics that need no network of their own.
//!
//! R-precision (AttnGAN, section 4): for each image, rank its own caption against 99 others by
//! the cosine similarity of DAMSM global vectors; a hit when its own caption ranks first. No
//! official code was released (AttnGAN issue #71), so the protocol is written out here:
//! - every image is scored against its own caption and `candidates - 1` mismatched captions
//!   drawn without replacement from the other rows;
//! - a tie with a mismatch counts as a miss (identical synthesised captions can tie);
//! - the hit rate over all images is one repeat; mean and standard deviation are taken over
//!   `repeats` repeats with fresh mismatches.
//!
//! The species-aware variant draws the mismatches only from rows of other classes. It matters
//! when captions describe the species rather than the photo (captions synthesised from CUB's
//! per-species attribute table): a mismatch from the same species is then as right as the
//! caption itself.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::index::sample;
use serde::Serialize;

/// How the mismatched captions are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatches<'a> {
    /// From any other row (the paper's protocol).
    AnyOther,
    /// Only from rows whose class differs from the image's class.
    OtherClass(&'a [u32]),
}

/// Mean and spread of R-precision over repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RPrecision {
    /// Mean hit rate over repeats, in [0, 1].
    pub mean: f64,
    /// Standard deviation of the hit rate over repeats (population).
    pub std: f64,
    /// Images scored per repeat.
    pub images: usize,
}

/// Why R-precision could not be computed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    #[error("{what} has {got} values, expected {expected}")]
    Shape {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error(
        "row {row} has only {available} possible mismatched captions, {needed} are needed; evaluate more images or fewer candidates"
    )]
    TooFewMismatches {
        row: usize,
        available: usize,
        needed: usize,
    },
    #[error("candidates must be at least 2 and repeats at least 1")]
    Protocol,
}

/// R-precision of `images` (row i) against `captions` (row i is image i's caption), both
/// `n x dim` row-major.
pub fn r_precision(
    images: &[f32],
    captions: &[f32],
    dim: usize,
    mismatches: Mismatches<'_>,
    candidates: usize,
    repeats: usize,
    seed: u64,
) -> Result<RPrecision, MetricError> {
    if candidates < 2 || repeats == 0 || dim == 0 {
        return Err(MetricError::Protocol);
    }
    let n = images.len() / dim;
    if images.len() != n * dim {
        return Err(MetricError::Shape {
            what: "images",
            got: images.len(),
            expected: n * dim,
        });
    }
    if captions.len() != images.len() {
        return Err(MetricError::Shape {
            what: "captions",
            got: captions.len(),
            expected: images.len(),
        });
    }
    if let Mismatches::OtherClass(classes) = mismatches
        && classes.len() != n
    {
        return Err(MetricError::Shape {
            what: "class ids",
            got: classes.len(),
            expected: n,
        });
    }
    let images = normalised_rows(images, dim);
    let captions = normalised_rows(captions, dim);
    let dot = |i: usize, j: usize| -> f32 {
        images[i * dim..(i + 1) * dim]
            .iter()
            .zip(&captions[j * dim..(j + 1) * dim])
            .map(|(a, b)| a * b)
            .sum()
    };

    // The pool of admissible mismatches of each row.
    let pools: Vec<Vec<usize>> = (0..n)
        .map(|i| match mismatches {
            Mismatches::AnyOther => (0..n).filter(|&j| j != i).collect(),
            Mismatches::OtherClass(classes) => {
                (0..n).filter(|&j| classes[j] != classes[i]).collect()
            }
        })
        .collect();
    let needed = candidates - 1;
    if let Some((row, pool)) = pools.iter().enumerate().find(|(_, p)| p.len() < needed) {
        return Err(MetricError::TooFewMismatches {
            row,
            available: pool.len(),
            needed,
        });
    }

    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rates = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let mut hits = 0usize;
        for (i, pool) in pools.iter().enumerate() {
            let own = dot(i, i);
            let beaten_or_tied = sample(&mut rng, pool.len(), needed)
                .iter()
                .any(|k| dot(i, pool[k]) >= own);
            if !beaten_or_tied {
                hits += 1;
            }
        }
        rates.push(hits as f64 / n as f64);
    }
    let mean = rates.iter().sum::<f64>() / repeats as f64;
    let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / repeats as f64;
    Ok(RPrecision {
        mean,
        std: var.sqrt(),
        images: n,
    })
}

fn normalised_rows(rows: &[f32], dim: usize) -> Vec<f32> {
    rows.chunks(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
            row.iter().map(move |x| x / norm)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows on distinct axes: every image matches its own caption exactly.
    fn identity(n: usize) -> Vec<f32> {
        (0..n * n)
            .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn perfect_and_chance_scores() {
        let n = 120;
        let rows = identity(n);
        let perfect = r_precision(&rows, &rows, n, Mismatches::AnyOther, 100, 10, 1).unwrap();
        assert_eq!(perfect.mean, 1.0);
        assert_eq!(perfect.std, 0.0);
        // Captions that match nothing: all scores tie at zero, and ties are misses.
        let shuffled: Vec<f32> = (0..n * n)
            .map(|k| if (k / n + 1) % n == k % n { 1.0 } else { 0.0 })
            .collect();
        let none = r_precision(&rows, &shuffled, n, Mismatches::AnyOther, 100, 10, 1).unwrap();
        assert!(none.mean < 0.05, "{none:?}");
    }

    #[test]
    fn species_aware_variant_skips_same_class() {
        // Two classes; every caption of a class is the same vector. With any mismatches a
        // same-class tie often spoils the hit, with other-class mismatches every image hits.
        let n = 10;
        let classes: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        let images: Vec<f32> = classes
            .iter()
            .flat_map(|&c| if c == 0 { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let any = r_precision(&images, &images, 2, Mismatches::AnyOther, 3, 5, 3).unwrap();
        assert!(any.mean < 0.6, "{any:?}");
        let aware = r_precision(
            &images,
            &images,
            2,
            Mismatches::OtherClass(&classes),
            3,
            5,
            3,
        )
        .unwrap();
        assert_eq!(aware.mean, 1.0);
    }

    #[test]
    fn refuses_impossible_protocols() {
        let rows = identity(5);
        assert_eq!(
            r_precision(&rows, &rows, 5, Mismatches::AnyOther, 100, 10, 0),
            Err(MetricError::TooFewMismatches {
                row: 0,
                available: 4,
                needed: 99
            })
        );
        assert!(matches!(
            r_precision(&rows[..7], &rows, 5, Mismatches::AnyOther, 2, 1, 0),
            Err(MetricError::Shape { .. })
        ));
    }
}
