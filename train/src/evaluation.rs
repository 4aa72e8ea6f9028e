//! Evaluations shared by every model: the FID floor of real images.

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::data::Dataset;
use crate::features::CachedFeatures;
use crate::fid::fid;

/// FID between two random halves of the same real images: the floor a generator's FID on
/// those images is read against (it is not zero for a finite sample).
#[derive(Debug, Serialize)]
pub struct RealFidFloor {
    pub fid_real_halves: f64,
    pub images_per_half: usize,
}

/// Splits `samples` of `dataset` in two random halves (seeded) and measures their FID on
/// cached `pool3` features.
pub fn real_fid_floor(
    dataset: &Dataset,
    samples: &[usize],
    features: &CachedFeatures,
    seed: u64,
) -> Result<RealFidFloor> {
    let mut rows = samples
        .iter()
        .map(|&i| {
            let sample = &dataset.samples[i];
            features.row(&sample.key).with_context(|| {
                format!(
                    "image {} has no cached features",
                    sample.image_path.display()
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    if rows.len() < 4 {
        bail!("{} images are too few for two halves", rows.len());
    }
    rows.shuffle(&mut StdRng::seed_from_u64(seed));
    let half = rows.len() / 2;
    let dim = t2i::inception::POOL3_DIM;
    let fid_real_halves = fid(
        &features.pool3_rows(&rows[..half]),
        &features.pool3_rows(&rows[half..2 * half]),
        dim,
    )?;
    Ok(RealFidFloor {
        fid_real_halves,
        images_per_half: half,
    })
}
