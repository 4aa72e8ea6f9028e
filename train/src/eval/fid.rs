//! Fréchet Inception Distance (Heusel et al. 2017) between two sets of Inception `pool3`
//! features: each set is summarised by a Gaussian (mean, covariance) and
//!
//! FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
//!
//! The trace of the matrix square root is computed as the sum of the square roots of the
//! eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric positive semi-definite and has the
//! same eigenvalues as S1 S2; this needs only symmetric eigendecompositions (no complex
//! arithmetic, unlike `scipy.linalg.sqrtm` in pytorch-fid). Covariances are unbiased
//! (divided by n - 1), as numpy's `cov`.

use anyhow::{Result, bail};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance of a feature set.
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub covariance: DMatrix<f64>,
    /// How many feature vectors it summarises.
    pub count: usize,
}

impl Gaussian {
    /// Fits `rows` (row-major, `dim` values per row; at least two rows).
    pub fn fit(rows: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || !rows.len().is_multiple_of(dim) {
            bail!("{} values do not make rows of {dim}", rows.len());
        }
        let n = rows.len() / dim;
        if n < 2 {
            bail!("a covariance needs at least 2 feature vectors, got {n}");
        }
        let data = DMatrix::from_row_slice(n, dim, rows).map(f64::from); // [n, dim]
        let mean = data.row_mean().transpose(); // [dim]
        let mut centred = data;
        for mut row in centred.row_iter_mut() {
            row -= mean.transpose();
        }
        let covariance = centred.transpose() * &centred / (n as f64 - 1.0); // [dim, dim]
        Ok(Self {
            mean,
            covariance,
            count: n,
        })
    }
}

/// The Fréchet distance between two Gaussians.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    if a.mean.len() != b.mean.len() {
        bail!("feature sizes differ: {} vs {}", a.mean.len(), b.mean.len());
    }
    let mean_term = (&a.mean - &b.mean).norm_squared();
    let sqrt_a = psd_sqrt(&a.covariance);
    let middle = &sqrt_a * &b.covariance * &sqrt_a;
    let middle = (&middle + middle.transpose()) * 0.5; // symmetric up to rounding
    let trace_sqrt: f64 = SymmetricEigen::new(middle)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    Ok(mean_term + a.covariance.trace() + b.covariance.trace() - 2.0 * trace_sqrt)
}

/// FID of two feature sets (`pool3` rows of 2048, or any width).
pub fn fid(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    frechet_distance(&Gaussian::fit(a, dim)?, &Gaussian::fit(b, dim)?)
}

/// Square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding are clamped to zero).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m.clone());
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_mean_and_unbiased_covariance() {
        // Rows (1, 2), (3, 6): mean (2, 4), covariance [[2, 4], [4, 8]] (divided by n - 1).
        let g = Gaussian::fit(&[1.0, 2.0, 3.0, 6.0], 2).unwrap();
        assert_eq!(g.mean.as_slice(), &[2.0, 4.0]);
        assert_eq!(g.covariance.as_slice(), &[2.0, 4.0, 4.0, 8.0]);
        assert!(Gaussian::fit(&[1.0, 2.0], 2).is_err());
        assert!(Gaussian::fit(&[1.0, 2.0, 3.0], 2).is_err());
    }

    #[test]
    fn matches_the_closed_form_for_commuting_covariances() {
        // Diagonal covariances commute: FID = |dmu|^2 + sum (s1 - s2)^2 with s the std devs.
        let gaussian = |mean: [f64; 3], var: [f64; 3]| Gaussian {
            mean: DVector::from_row_slice(&mean),
            covariance: DMatrix::from_diagonal(&DVector::from_row_slice(&var)),
            count: 0,
        };
        let a = gaussian([0.0, 1.0, 2.0], [1.0, 4.0, 9.0]);
        let b = gaussian([1.0, 1.0, 0.0], [4.0, 4.0, 1.0]);
        let expected = (1.0 + 0.0 + 4.0) + ((1.0f64 - 2.0).powi(2) + 0.0 + (3.0f64 - 1.0).powi(2));
        assert!((frechet_distance(&a, &b).unwrap() - expected).abs() < 1e-9);
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-9);
    }

    #[test]
    fn is_symmetric_for_general_covariances() {
        // Two full-rank sample sets: FID(a, b) = FID(b, a) and FID(a, a) = 0.
        let a: Vec<f32> = (0..40).map(|i| ((i * 37 % 11) as f32).sin()).collect();
        let b: Vec<f32> = (0..40).map(|i| ((i * 13 % 7) as f32).cos() * 2.0).collect();
        let ab = fid(&a, &b, 4).unwrap();
        let ba = fid(&b, &a, 4).unwrap();
        assert!((ab - ba).abs() < 1e-9 * ab.max(1.0), "{ab} vs {ba}");
        assert!(fid(&a, &a, 4).unwrap().abs() < 1e-9);
        assert!(ab > 0.0);
    }
}
