//! Image loading and AttnGAN-style augmentation.
//!
//! AttnGAN (and StackGAN) load an image, resize its shorter side to `base * 76 / 64`
//! (304 for a 256 base), take a random `base x base` crop, flip it horizontally with
//! probability 1/2, and then downsample that crop to every generator scale (64, 128, 256).
//! [`prepare`] is that one function, for training (random crop and flip) and evaluation
//! (centre crop, no flip) alike; [`random_crop_flip`] and [`center_crop`] name the two uses.
//! Resizing is bilinear (`image`'s Triangle filter, antialiased when downsampling).

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{ImageReader, RgbImage};
use rand::{Rng, RngCore};

use super::DataError;

/// Decodes an image file (JPEG or PNG) to 8-bit RGB. A missing, unreadable or corrupt file
/// gives an error naming its path.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let img = reader.decode().map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(img.to_rgb8())
}

/// The size the shorter side is resized to before cropping: `base * 76 / 64`.
pub fn load_size(base_size: u32) -> u32 {
    base_size * 76 / 64
}

/// Resizes so that the shorter side is `target`, keeping the aspect ratio (bilinear).
pub fn resize_shorter_side(img: &RgbImage, target: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || target == 0 {
        return RgbImage::new(target, target);
    }
    let (nw, nh) = if w <= h {
        let nh = ((h as u64 * target as u64 + w as u64 / 2) / w as u64).max(target as u64);
        (target, nh.min(u32::MAX as u64) as u32)
    } else {
        let nw = ((w as u64 * target as u64 + h as u64 / 2) / h as u64).max(target as u64);
        (nw.min(u32::MAX as u64) as u32, target)
    };
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    imageops::resize(img, nw, nh, FilterType::Triangle)
}

/// Resize the shorter side to `load_size(base_size)`, then crop `base_size x base_size`:
/// with `rng`, at a uniformly random position and flipped horizontally with probability 1/2
/// (training); without, at the centre and unflipped (evaluation).
pub fn prepare(img: &RgbImage, base_size: u32, rng: Option<&mut dyn RngCore>) -> RgbImage {
    if base_size == 0 {
        return RgbImage::new(0, 0);
    }
    let resized = resize_shorter_side(img, load_size(base_size));
    let (w, h) = resized.dimensions();
    let (mx, my) = (w.saturating_sub(base_size), h.saturating_sub(base_size));
    let (x, y, flip) = match rng {
        Some(rng) => (
            rng.random_range(0..=mx),
            rng.random_range(0..=my),
            rng.random_bool(0.5),
        ),
        None => (mx / 2, my / 2, false),
    };
    let mut out = imageops::crop_imm(&resized, x, y, base_size, base_size).to_image();
    if out.dimensions() != (base_size, base_size) {
        // Only for degenerate inputs (never after resizing a non-empty image).
        out = imageops::resize(&out, base_size, base_size, FilterType::Triangle);
    }
    if flip {
        imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

/// Training augmentation: [`prepare`] with a random crop and flip.
pub fn random_crop_flip<R: Rng + ?Sized>(img: &RgbImage, base_size: u32, rng: &mut R) -> RgbImage {
    let mut adapter = RngAdapter(rng);
    prepare(img, base_size, Some(&mut adapter))
}

/// Evaluation preprocessing: [`prepare`] with the centre crop and no flip.
pub fn center_crop(img: &RgbImage, base_size: u32) -> RgbImage {
    prepare(img, base_size, None)
}

/// Downsamples a (square) image to each of `sizes` (bilinear), e.g. `[64, 128, 256]` for the
/// three generator stages; a size equal to the input is a copy.
pub fn pyramid(img: &RgbImage, sizes: &[u32]) -> Vec<RgbImage> {
    sizes
        .iter()
        .map(|&s| {
            if img.dimensions() == (s, s) {
                img.clone()
            } else if img.width() == 0 || img.height() == 0 || s == 0 {
                RgbImage::new(s, s)
            } else {
                imageops::resize(img, s, s, FilterType::Triangle)
            }
        })
        .collect()
}

/// Channel-major floats in [-1, 1] (`(x / 255 - 0.5) / 0.5`, as AttnGAN normalises), length
/// `3 * width * height`, ready for a `[3, H, W]` tensor.
pub fn to_chw_normalized(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = w as usize * h as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = p.0[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// Lets a generic `Rng` be used as `&mut dyn RngCore`.
struct RngAdapter<'a, R: Rng + ?Sized>(&'a mut R);

impl<R: Rng + ?Sized> RngCore for RngAdapter<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}
