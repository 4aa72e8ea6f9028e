//! The Inception preprocessing and the resumable feature cache, with the real Inception weights
//! from `shared/models` (skipped with a notice where they are absent).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use safetensors::SafeTensors;
use t2i::inception::{INPUT_SIZE, Inception};
use t2i_train::data::features::{
    FeatureCache, MIXED_7_LEN, inception_input, inception_input_from_file,
};

mod common;
use common::{INCEPTION, shared_dir, shared_file};

fn load_inception() -> Option<Inception> {
    let path = shared_file(INCEPTION, "this Inception test")?;
    Some(Inception::load(&path, &Device::flex()).unwrap())
}

/// Writes `n` small synthetic images (PNG and JPEG, several sizes) and returns (key, path).
fn synthetic_images(dir: &Path, n: usize) -> Vec<(String, PathBuf)> {
    let sizes = [
        (320, 240),
        (200, 300),
        (299, 299),
        (64, 48),
        (500, 375),
        (128, 128),
    ];
    (0..n)
        .map(|i| {
            let (w, h) = sizes[i % sizes.len()];
            let img = RgbImage::from_fn(w, h, |x, y| {
                let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ (i as u32 * 31)) % 64;
                Rgb([
                    ((x * 255 / w) as u8).wrapping_add(noise as u8),
                    ((y * 255 / h) as u8).wrapping_add((i * 40) as u8),
                    (((x + y) * 3 + i as u32 * 17) % 256) as u8,
                ])
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            let path = dir.join(format!("img{i}.{ext}"));
            img.save(&path).unwrap();
            (format!("birds/img{i}.{ext}"), path)
        })
        .collect()
}

fn direct_features(inception: &Inception, items: &[(String, PathBuf)]) -> (Vec<f32>, Vec<f32>) {
    let mut pixels = Vec::new();
    for (_, path) in items {
        pixels.extend(inception_input_from_file(path).unwrap());
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(pixels, [items.len(), 3, INPUT_SIZE, INPUT_SIZE]),
        &Device::flex(),
    );
    let f = inception.forward(x);
    (
        f.pool3.into_data().try_into_vec_as::<f32>().unwrap(),
        f.mixed_7.into_data().try_into_vec_as::<f32>().unwrap(),
    )
}

/// Largest error beyond f16 rounding (half an ulp, 2^-11 relative) plus 1e-5 for the f32
/// rounding of another batch composition; 0 when everything is within.
fn excess_over_f16(cached: &[f32], direct: &[f32]) -> f32 {
    assert_eq!(cached.len(), direct.len());
    cached
        .iter()
        .zip(direct)
        .map(|(c, d)| (c - d).abs() - (d.abs() * 2f32.powi(-11) + 1e-5))
        .fold(0f32, f32::max)
}

#[test]
fn preprocessing_matches_pil_bilinear() {
    let shared = shared_dir();
    let vectors = shared.join("models/inception-test-vectors.safetensors");
    let image = shared.join("data/cub100/images/014.Indigo_Bunting/0000.jpg");
    if !vectors.is_file() || !image.is_file() {
        eprintln!("NOTICE: test vectors or CUB image absent; skipping");
        return;
    }
    let ours = inception_input_from_file(&image).unwrap();
    let bytes = std::fs::read(&vectors).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("input").unwrap();
    let row0: Vec<f32> = view.data()[..ours.len() * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let diffs: Vec<f32> = ours.iter().zip(&row0).map(|(a, b)| (a - b).abs()).collect();
    let max = diffs.iter().copied().fold(0f32, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    eprintln!(
        "preprocessing vs PIL bilinear: mean abs diff {mean:.5} ({:.2} levels of 255), max {max:.4} ({:.1} levels)",
        mean * 127.5,
        max * 127.5
    );
    // Measured with image 0.25 (zune-jpeg, Triangle filter) against PIL (libjpeg, bilinear):
    // mean 0.0030 (0.38 levels of 255), max 0.031 (4 levels). JPEG decoders and resampling
    // kernels differ a little; the bounds are twice (mean) and 2.5 times (max) that.
    assert!(mean < 0.006, "mean abs diff {mean}");
    assert!(max < 0.08, "max abs diff {max}");
}

#[test]
fn inception_input_layout() {
    // A 299 x 299 image is not resized: values are exactly p / 127.5 - 1, channels first.
    let img = RgbImage::from_fn(299, 299, |x, y| Rgb([x as u8, y as u8, 255]));
    let v = inception_input(&img);
    let plane = 299 * 299;
    assert_eq!(v.len(), 3 * plane);
    assert_eq!(v[0], -1.0);
    assert_eq!(v[5], 5.0 / 127.5 - 1.0); // red = x at (x 5, y 0)
    assert_eq!(v[plane + 2 * 299], 2.0 / 127.5 - 1.0); // green = y at (x 0, y 2)
    assert_eq!(v[2 * plane + 1234], 1.0); // blue = 255
}

#[test]
fn build_resumes_and_matches_a_direct_forward() {
    let Some(inception) = load_inception() else {
        return;
    };
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let items = synthetic_images(tmp.path(), 6);
    let cache_dir = tmp.path().join("cache");

    // An "interrupted" build: only the first half.
    let (cache, report) =
        FeatureCache::build(&cache_dir, &items[..3], &inception, &device, 2, false).unwrap();
    assert_eq!((report.computed, report.already_cached), (3, 0));
    assert_eq!(report.shards_written, 1);
    assert_eq!(cache.len(), 3);

    // Rerun with everything: only the new half is computed.
    let (cache, report) =
        FeatureCache::build(&cache_dir, &items, &inception, &device, 2, false).unwrap();
    assert_eq!((report.computed, report.already_cached), (3, 3));
    assert!(report.skipped.is_empty());
    let keys: Vec<&str> = cache.keys().collect();
    let want: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, want);

    // Once more: nothing to do.
    let (_, report) =
        FeatureCache::build(&cache_dir, &items, &inception, &device, 4, false).unwrap();
    assert_eq!((report.computed, report.already_cached), (0, 6));

    // Reopened from disk, the cached features are the direct forward to f16 precision.
    let cache = FeatureCache::open(&cache_dir).unwrap();
    assert_eq!(cache.len(), 6);
    let all = cache.load_all().unwrap();
    assert!(all.has_mixed_7());
    assert_eq!(all.row("birds/img4.png"), Some(4));
    let rows: Vec<usize> = (0..6).collect();
    let (direct_pool3, direct_mixed_7) = direct_features(&inception, &items);
    let pool3_excess = excess_over_f16(&all.pool3_rows(&rows), &direct_pool3);
    let mixed_7_excess = excess_over_f16(&all.mixed_7_rows(&rows), &direct_mixed_7);
    assert!(
        pool3_excess <= 0.0,
        "pool3 beyond f16 precision by {pool3_excess}"
    );
    assert!(
        mixed_7_excess <= 0.0,
        "mixed_7 beyond f16 precision by {mixed_7_excess}"
    );

    // A minibatch in any order.
    let (m, p) = all.batch(&[5, 0], &device);
    assert_eq!(m.dims(), [2, 768, 17, 17]);
    assert_eq!(p.dims(), [2, 2048]);
    let p = p.into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(&p[..2048], &all.pool3_rows(&[5])[..]);
    let m = m.into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(&m[MIXED_7_LEN..], &all.mixed_7_rows(&[0])[..]);

    let pool3_only = cache.load_pool3().unwrap();
    assert!(!pool3_only.has_mixed_7());
    assert_eq!(pool3_only.pool3, all.pool3);
}

#[test]
fn bad_images_are_errors_or_skipped() {
    let Some(inception) = load_inception() else {
        return;
    };
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let good = synthetic_images(tmp.path(), 1).remove(0);
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 this is not really a JPEG").unwrap();
    let missing = tmp.path().join("missing.png");
    let cache_dir = tmp.path().join("cache");

    let items = vec![
        ("corrupt".to_string(), corrupt.clone()),
        good.clone(),
        ("missing".to_string(), missing.clone()),
    ];
    let err = FeatureCache::build(&cache_dir, &items, &inception, &device, 2, false).unwrap_err();
    assert!(
        err.to_string().contains(&corrupt.display().to_string()),
        "{err:#}"
    );
    let err =
        FeatureCache::build(&cache_dir, &items[1..], &inception, &device, 2, false).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err:#}"
    );

    let (cache, report) =
        FeatureCache::build(&cache_dir, &items, &inception, &device, 2, true).unwrap();
    assert_eq!(report.computed, 1);
    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(skipped, ["corrupt", "missing"]);
    assert_eq!(report.skipped[0].1, corrupt);
    assert_eq!(cache.keys().collect::<Vec<_>>(), [good.0.as_str()]);
}

#[test]
fn opening_a_directory_without_index_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = FeatureCache::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("index.json"), "{err:#}");
    assert!(FeatureCache::open_or_empty(tmp.path()).unwrap().is_empty());
}
