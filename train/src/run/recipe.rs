//! The training recipe: how the papers' networks are trained, beyond their architecture. The
//! default is the papers' own (logistic loss, Adam at beta1 0.5 with one learning rate, no
//! averaging, no augmentation, no penalty), so every existing config trains as before. Each
//! option below is one `[recipe]` key of a GAN config, and every family honours it:
//!
//! - `ema_decay`: an exponential moving average of G's weights (Karras et al. ICLR 2018;
//!   Yazici et al. ICLR 2019). Samples, evaluation and export use the averaged G.
//! - `augment`: differentiable augmentation of every image D sees, real and generated, in D's
//!   and in G's update (DiffAugment, Zhao et al. NeurIPS 2020): `color`, `translation`,
//!   `cutout`, with their paper's strengths.
//! - `loss`: `logistic` (the papers') or `hinge` (Lim & Ye 2017; Miyato et al. ICLR 2018).
//! - `r1_gamma`: R1, a zero-centred gradient penalty on real images (Mescheder et al. ICML
//!   2018), `gamma / 2 * E ||grad_x D(x, t)||^2`.
//! - `ma_gp_weight`, `ma_gp_power`: DF-GAN's matching-aware gradient penalty (Tao et al. CVPR
//!   2022), `k * E ||grad_(x, t) D(x, t)||^p` on real images with their own captions (k 2, p 6).
//! - `lr_g`, `lr_d`, `betas_g`, `betas_d`: learning rate and Adam betas per network (TTUR,
//!   Heusel et al. NeurIPS 2017).
//!
//! burn's autodiff has no second-order gradients, so the penalties cannot differentiate
//! `grad_x D`. They use a directional finite difference instead: with `delta ~ N(0, I)` on the
//! inputs, `g = (D(x + h delta) - D(x)) / h` is `grad . delta` to first order, and for even `p`
//! `E[g^p] = (p - 1)!! ||grad||^p` (the Gaussian moments), so `g^p / (p - 1)!!` is an unbiased
//! estimate of `||grad||^p` whose gradient with respect to D's weights needs only first-order
//! autodiff. It costs one more D forward and backward on the real batch.
//!
//! Spectral normalization is not offered: burn 0.22 has no spectral norm, and adding one means
//! a power-iteration state in every discriminator layer of all three families, which changes
//! their checkpoints and the import of the authors' weights.

use anyhow::{Result, bail};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};
use t2i::layers::AdversarialLoss;

/// The `[recipe]` section of a GAN config; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// `logistic` (the papers') or `hinge`.
    pub loss: AdversarialLoss,
    /// Decay of the moving average of G's weights per step; 0 keeps no average.
    pub ema_decay: f64,
    /// DiffAugment's transformations, applied in this order to every image D sees.
    pub augment: Vec<Augmentation>,
    /// R1's gamma; 0 turns it off.
    pub r1_gamma: f32,
    /// MA-GP's weight k (DF-GAN: 2); 0 turns it off.
    pub ma_gp_weight: f32,
    /// MA-GP's power p (DF-GAN: 6); an even number from 2 to 8.
    pub ma_gp_power: u32,
    /// G's learning rate; `[train] lr` when absent. The schedule's decay applies to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_g: Option<f64>,
    /// D's learning rate; `[train] lr` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_d: Option<f64>,
    /// G's Adam (beta1, beta2).
    pub betas_g: [f64; 2],
    /// D's Adam (beta1, beta2).
    pub betas_d: [f64; 2],
}

/// One of DiffAugment's transformations (Zhao et al. 2020, their `DiffAugment_pytorch.py`
/// policy names and strengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// Brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5], per image.
    Color,
    /// A shift of up to an eighth of the side in each direction, zeros shifted in.
    Translation,
    /// A square of half the side, anywhere, set to zero.
    Cutout,
}

impl Augmentation {
    /// DiffAugment's full policy, `["color", "translation", "cutout"]`, in the order applied.
    pub const ALL: [Augmentation; 3] = [
        Augmentation::Color,
        Augmentation::Translation,
        Augmentation::Cutout,
    ];
}

/// The papers' Adam: beta1 0.5, beta2 0.999.
const PAPERS_BETAS: [f64; 2] = [0.5, 0.999];

/// Finite-difference step of the gradient penalties, in input units.
const PENALTY_STEP: f32 = 1e-2;

impl Default for Recipe {
    fn default() -> Self {
        Self::papers()
    }
}

impl Recipe {
    /// The three papers' recipe.
    pub fn papers() -> Self {
        Self {
            loss: AdversarialLoss::Logistic,
            ema_decay: 0.0,
            augment: Vec::new(),
            r1_gamma: 0.0,
            ma_gp_weight: 0.0,
            ma_gp_power: 6,
            lr_g: None,
            lr_d: None,
            betas_g: PAPERS_BETAS,
            betas_d: PAPERS_BETAS,
        }
    }

    /// Rejects values no training could run with; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.ema_decay) {
            bail!(
                "recipe.ema_decay must be at least 0 and below 1, got {}",
                self.ema_decay
            );
        }
        for (key, value) in [
            ("recipe.r1_gamma", self.r1_gamma),
            ("recipe.ma_gp_weight", self.ma_gp_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{key} must be a number of at least 0, got {value}");
            }
        }
        if !(2..=8).contains(&self.ma_gp_power) || !self.ma_gp_power.is_multiple_of(2) {
            bail!(
                "recipe.ma_gp_power must be 2, 4, 6 or 8, got {}",
                self.ma_gp_power
            );
        }
        for (key, value) in [("recipe.lr_g", self.lr_g), ("recipe.lr_d", self.lr_d)] {
            if let Some(lr) = value
                && !(lr.is_finite() && lr > 0.0)
            {
                bail!("{key} must be a positive number, got {lr}");
            }
        }
        for (key, [beta1, beta2]) in [
            ("recipe.betas_g", self.betas_g),
            ("recipe.betas_d", self.betas_d),
        ] {
            if !((0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2)) {
                bail!("{key} must be two numbers in [0, 1), got [{beta1}, {beta2}]");
            }
        }
        let mut seen = Vec::new();
        for augmentation in &self.augment {
            if seen.contains(augmentation) {
                bail!("recipe.augment names {augmentation:?} twice");
            }
            seen.push(*augmentation);
        }
        Ok(())
    }

    /// G's and D's learning rates as factors of the schedule's rate `base` (`[train] lr`).
    pub fn rate_factors(&self, base: f64) -> (f64, f64) {
        (
            self.lr_g.map_or(1.0, |lr| lr / base),
            self.lr_d.map_or(1.0, |lr| lr / base),
        )
    }

    /// Adam for G and for D, with this recipe's betas.
    pub fn optimizers(&self) -> (ModuleOptimizer, ModuleOptimizer) {
        (adam(self.betas_g), adam(self.betas_d))
    }

    /// `images` `[B, C, H, W]` as D sees them: this recipe's augmentations in order, each with
    /// its own random draw per image. Differentiable, so G learns through it. Use one call's
    /// result wherever the same real image meets D twice (with its caption and with another).
    pub fn augment(&self, images: Tensor<4>) -> Tensor<4> {
        self.augment
            .iter()
            .fold(images, |images, augmentation| match augmentation {
                Augmentation::Color => color(images),
                Augmentation::Translation => translation(images, 0.125),
                Augmentation::Cutout => cutout(images, 0.5),
            })
    }

    /// Whether a gradient penalty is on (and D needs its real logits' inputs kept).
    pub fn penalizes(&self) -> bool {
        self.r1_gamma > 0.0 || self.ma_gp_weight > 0.0
    }

    /// R1 and MA-GP, as configured, for D's conditional logits `logits(image, text)` at the
    /// real pair (`real`, `text`), whose logits `real_logits` D already computed. `None` when
    /// both are off.
    pub fn gradient_penalty(
        &self,
        logits: impl Fn(Tensor<4>, Tensor<2>) -> Tensor<1>,
        real: Tensor<4>,
        text: Tensor<2>,
        real_logits: Tensor<1>,
    ) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        let mut add = |term: Tensor<1>| {
            total = Some(match total.take() {
                Some(sum) => sum + term,
                None => term,
            })
        };
        if self.r1_gamma > 0.0 {
            let squared = gradient_norm_power(
                &logits,
                real.clone(),
                text.clone(),
                real_logits.clone(),
                false,
                2,
            );
            add(squared.mean().mul_scalar(self.r1_gamma / 2.0));
        }
        if self.ma_gp_weight > 0.0 {
            let power =
                gradient_norm_power(&logits, real, text, real_logits, true, self.ma_gp_power);
            add(power.mean().mul_scalar(self.ma_gp_weight));
        }
        total
    }
}

fn adam([beta1, beta2]: [f64; 2]) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(beta1 as f32)
        .with_beta_2(beta2 as f32)
        .with_epsilon(1e-8)
        .init()
}

/// Per row, an unbiased estimate of `||grad D||^power` at (`image`, `text`), the gradient
/// taken over the image (and the text when `with_text`); see the module documentation.
/// `base` is `logits(image, text)`. Even `power` only.
///
/// # Shapes
/// - image `[B, C, H, W]`, text `[B, T]`, base and result `[B]`
pub fn gradient_norm_power(
    logits: &impl Fn(Tensor<4>, Tensor<2>) -> Tensor<1>,
    image: Tensor<4>,
    text: Tensor<2>,
    base: Tensor<1>,
    with_text: bool,
    power: u32,
) -> Tensor<1> {
    let device = image.device();
    let normal = Distribution::Normal(0.0, 1.0);
    let image_step = Tensor::<4>::random(image.dims(), normal, &device).mul_scalar(PENALTY_STEP);
    let text = if with_text {
        let text_step = Tensor::<2>::random(text.dims(), normal, &device).mul_scalar(PENALTY_STEP);
        text + text_step
    } else {
        text
    };
    let moved = logits(image + image_step, text);
    let slope = (moved - base).div_scalar(PENALTY_STEP); // grad . delta, [B]
    let double_factorial: u32 = (1..power).step_by(2).product();
    slope
        .powi_scalar(power as i32)
        .div_scalar(double_factorial as f32)
}

/// Uniform draws in [0, 1), one per image: `[B, 1, 1, 1]`.
fn per_image(images: &Tensor<4>) -> Tensor<4> {
    let [batch, _, _, _] = images.dims();
    Tensor::random(
        [batch, 1, 1, 1],
        Distribution::Uniform(0.0, 1.0),
        &images.device(),
    )
}

/// DiffAugment's colour: brightness, then saturation, then contrast.
fn color(images: Tensor<4>) -> Tensor<4> {
    let dims = images.dims();
    let images = images.clone() + per_image(&images).sub_scalar(0.5).expand(dims);
    let mean = images.clone().mean_dim(1).expand(dims); // over channels
    let images = (images - mean.clone()) * per_image(&mean).mul_scalar(2.0).expand(dims) + mean;
    let mean = images
        .clone()
        .mean_dim(1)
        .mean_dim(2)
        .mean_dim(3)
        .expand(dims);
    (images - mean.clone()) * per_image(&mean).add_scalar(0.5).expand(dims) + mean
}

/// Random integers in `[-reach, reach]`, one per image, as floats `[B, 1, 1, 1]`.
fn shifts(images: &Tensor<4>, reach: usize) -> Tensor<4> {
    per_image(images)
        .mul_scalar((2 * reach + 1) as f32)
        .floor()
        .sub_scalar(reach as f32)
}

/// Row or column positions `0..n` along `axis` (2 or 3) of a `[1, 1, H, W]`-like shape.
fn positions(n: usize, axis: usize, device: &Device) -> Tensor<4> {
    let line = Tensor::<1, Int>::arange(0..n as i64, device).float();
    match axis {
        2 => line.reshape([1, 1, n, 1]),
        _ => line.reshape([1, 1, 1, n]),
    }
}

/// DiffAugment's translation: each image moved by up to `ratio` of its side along each axis,
/// zeros shifted in.
fn translation(images: Tensor<4>, ratio: f32) -> Tensor<4> {
    let [batch, channels, height, width] = images.dims();
    let device = images.device();
    let reach_y = (height as f32 * ratio + 0.5) as usize;
    let reach_x = (width as f32 * ratio + 0.5) as usize;
    let (shift_y, shift_x) = (shifts(&images, reach_y), shifts(&images, reach_x));
    // Padded with zeros, then each output (i, j) reads padded (i + reach - shift, ...).
    let padded = images.pad((reach_x, reach_x, reach_y, reach_y), 0.0);
    let [_, _, _, padded_w] = padded.dims();
    let rows = (positions(height, 2, &device) - shift_y)
        .add_scalar(reach_y as f32)
        .expand([batch, channels, height, padded_w])
        .int();
    let padded = padded.gather(2, rows); // [B, C, H, W + 2 reach]
    let columns = (positions(width, 3, &device) - shift_x)
        .add_scalar(reach_x as f32)
        .expand([batch, channels, height, width])
        .int();
    padded.gather(3, columns) // [B, C, H, W]
}

/// DiffAugment's cutout: a square of `ratio` of the side, centred anywhere in the image,
/// zeroed.
fn cutout(images: Tensor<4>, ratio: f32) -> Tensor<4> {
    let [batch, channels, height, width] = images.dims();
    let device = images.device();
    let size_y = (height as f32 * ratio + 0.5) as usize;
    let size_x = (width as f32 * ratio + 0.5) as usize;
    let inside = |n: usize, size: usize, axis: usize| {
        // The square's first row (column): centre in [0, n + (1 - size % 2)) minus size / 2.
        let start = per_image(&images)
            .mul_scalar((n + 1 - size % 2) as f32)
            .floor()
            .sub_scalar((size / 2) as f32);
        let at = positions(n, axis, &device);
        let shape = if axis == 2 {
            [batch, 1, n, 1]
        } else {
            [batch, 1, 1, n]
        };
        let at = at.expand(shape);
        let start = start.expand(shape);
        at.clone()
            .greater_equal(start.clone())
            .float()
            .mul(at.lower(start.add_scalar(size as f32)).float())
    };
    let hole = inside(height, size_y, 2).expand([batch, 1, height, width])
        * inside(width, size_x, 3).expand([batch, 1, height, width]);
    let keep = hole
        .neg()
        .add_scalar(1.0)
        .expand([batch, channels, height, width]);
    images * keep
}

/// The moving average of a generator's weights (and its batch-norm statistics), kept in
/// inference mode on the plain device.
pub struct WeightAverage<G> {
    pub average: G,
    pub decay: f64,
    /// Updates so far (the run's step).
    pub steps: u64,
}

impl<G: Module> WeightAverage<G> {
    /// Starts at `live`'s weights.
    pub fn new(live: &G, decay: f64) -> Self {
        Self {
            average: live.valid(),
            decay,
            steps: 0,
        }
    }

    /// Moves the average towards `live` after one more training step. The decay ramps up as
    /// `min(decay, (1 + step) / (10 + step))`, so early weights fade quickly.
    pub fn update(self, live: &G) -> Self {
        let step = self.steps + 1;
        let decay = self.decay.min((1.0 + step as f64) / (10.0 + step as f64));
        let mut gather = Gather(Vec::new());
        live.valid().visit(&mut gather);
        let mut blend = Blend {
            live: gather.0.into_iter(),
            decay: decay as f32,
        };
        Self {
            average: self.average.map(&mut blend),
            decay: self.decay,
            steps: step,
        }
    }
}

/// Every float tensor of a module (parameters and batch-norm statistics), flattened, in visit
/// order.
struct Gather(Vec<Tensor<1>>);

impl ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.0.push(value.reshape([n]));
    }
}

/// Replaces each float tensor `a` by `decay a + (1 - decay) live`, `live` taken in visit order.
struct Blend<I> {
    live: I,
    decay: f32,
}

impl<I: Iterator<Item = Tensor<1>>> ModuleMapper for Blend<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let live = self
            .live
            .next()
            .expect("the average and the live module have the same tensors");
        let decay = self.decay;
        param.map(|average| {
            let dims = average.dims();
            average.mul_scalar(decay) + live.reshape(dims).mul_scalar(1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn the_weight_average_moves_by_one_minus_decay() {
        let device = Device::flex();
        let live: Linear = LinearConfig::new(2, 1).init(&device);
        let start = values(live.weight.val());
        let average = WeightAverage::new(&live, 0.9);
        // The live weights move by +1; the ramp caps the first decay at (1 + 1) / (10 + 1).
        let moved = live.clone().map(&mut Shift(1.0));
        let average = average.update(&moved);
        let decay = 2.0f32 / 11.0;
        for (got, was) in values(average.average.weight.val()).iter().zip(&start) {
            assert!((got - (was + (1.0 - decay))).abs() < 1e-6, "{got} vs {was}");
        }
        // Late in a run the configured decay holds: 0.9 a + 0.1 live.
        let late = WeightAverage {
            steps: 1000,
            ..WeightAverage::new(&live, 0.9)
        }
        .update(&moved);
        for (got, was) in values(late.average.weight.val()).iter().zip(&start) {
            assert!((got - (was + 0.1)).abs() < 1e-6, "{got} vs {was}");
        }
        assert_eq!(late.steps, 1001);
    }

    struct Shift(f32);
    impl ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let by = self.0;
            param.map(|t| t.add_scalar(by))
        }
    }

    fn ramp(batch: usize, device: &Device) -> Tensor<4> {
        let n = batch * 3 * 16 * 16;
        Tensor::<1, Int>::arange(0..n as i64, device)
            .float()
            .div_scalar(n as f32)
            .reshape([batch, 3, 16, 16])
    }

    #[test]
    fn translation_moves_whole_images_and_shifts_in_zeros() {
        let device = Device::flex();
        device.seed(3);
        let images = ramp(4, &device).add_scalar(1.0); // every pixel > 0
        let moved = values(translation(images.clone(), 0.125));
        let original = values(images);
        for image in 0..4 {
            let at =
                |v: &[f32], c: usize, y: usize, x: usize| v[((image * 3 + c) * 16 + y) * 16 + x];
            // Find the shift from where the zeros are, then check every pixel against it.
            let shift = (-2i64..=2)
                .flat_map(|dy| (-2i64..=2).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..16).all(|y| {
                        (0..16).all(|x| {
                            let (sy, sx) = (y as i64 - dy, x as i64 - dx);
                            let expect = if (0..16).contains(&sy) && (0..16).contains(&sx) {
                                at(&original, 1, sy as usize, sx as usize)
                            } else {
                                0.0
                            };
                            at(&moved, 1, y, x) == expect
                        })
                    })
                });
            assert!(shift.is_some(), "image {image} is not a shifted copy");
        }
    }

    #[test]
    fn cutout_zeroes_one_square_of_half_the_side_in_every_channel() {
        let device = Device::flex();
        device.seed(5);
        let images = Tensor::<4>::ones([3, 3, 16, 16], &device);
        let cut = values(cutout(images, 0.5));
        for image in 0..3 {
            let plane = |c: usize| &cut[(image * 3 + c) * 256..(image * 3 + c + 1) * 256];
            assert_eq!(plane(0), plane(1));
            assert_eq!(plane(0), plane(2));
            let zeros = plane(0).iter().filter(|&&v| v == 0.0).count();
            // An 8 x 8 square, clipped at the border to no less than 4 x 4.
            assert!((16..=64).contains(&zeros), "image {image}: {zeros} zeros");
        }
    }

    #[test]
    fn augmentation_is_differentiable() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let recipe = Recipe {
            augment: Augmentation::ALL.to_vec(),
            ..Recipe::papers()
        };
        let images = ramp(2, &device).require_grad();
        let grads = recipe.augment(images.clone()).sum().backward();
        let grad = values(images.grad(&grads).expect("a gradient reaches the images"));
        assert!(grad.iter().all(|g| g.is_finite()));
        assert!(
            grad.iter().any(|&g| g != 0.0),
            "the gradient is not all zero"
        );
        // Without colour (whose means reach every pixel), cut-out pixels get no gradient and
        // the rest get exactly 1 (a shift moves values, it does not scale them).
        let geometric = Recipe {
            augment: vec![Augmentation::Translation, Augmentation::Cutout],
            ..Recipe::papers()
        };
        let grads = geometric.augment(images.clone()).sum().backward();
        let grad = values(images.grad(&grads).unwrap());
        assert!(
            grad.contains(&0.0),
            "cut-out and shifted-out pixels get none"
        );
        assert!(grad.iter().all(|&g| g == 0.0 || g == 1.0), "{grad:?}");
    }

    #[test]
    fn the_gradient_penalty_estimates_the_squared_gradient_norm() {
        // D(x, t) = sum(a * x) + sum(b * t) has gradient (a, b) everywhere.
        let device = Device::flex();
        device.seed(11);
        let a = Tensor::<4>::full([1, 1, 4, 4], 0.5, &device);
        let b = Tensor::<2>::full([1, 3], -1.0, &device);
        let logits = |image: Tensor<4>, text: Tensor<2>| {
            let rows = image.dims()[0];
            (image * a.clone().expand([rows, 1, 4, 4]))
                .sum_dim(1)
                .sum_dim(2)
                .sum_dim(3)
                .reshape([rows])
                + (text * b.clone().expand([rows, 3]))
                    .sum_dim(1)
                    .reshape([rows])
        };
        let rows = 4096;
        let image = Tensor::<4>::zeros([rows, 1, 4, 4], &device);
        let text = Tensor::<2>::zeros([rows, 3], &device);
        let base = logits(image.clone(), text.clone());
        // The mean over rows of the gradient norm's `p`-th power, with or without the text.
        let norm_power = |with_text, p| {
            let power = gradient_norm_power(
                &logits,
                image.clone(),
                text.clone(),
                base.clone(),
                with_text,
                p,
            );
            power.mean().into_scalar::<f32>()
        };
        // ||a||^2 = 16 * 0.25 = 4; with the text, 4 + 3 = 7.
        let image_only = norm_power(false, 2);
        assert!((image_only - 4.0).abs() < 0.4, "{image_only} vs 4");
        let both = norm_power(true, 2);
        assert!((both - 7.0).abs() < 0.7, "{both} vs 7");
        // p = 4: E[g^4] / 3 = ||grad||^4 = 49.
        let fourth = norm_power(true, 4);
        assert!((fourth - 49.0).abs() < 10.0, "{fourth} vs 49");
        let recipe = Recipe {
            r1_gamma: 2.0,
            ..Recipe::papers()
        };
        let r1 = recipe
            .gradient_penalty(logits, image, text, base)
            .unwrap()
            .into_scalar::<f32>();
        assert!(
            (r1 - 4.0).abs() < 0.4,
            "R1 with gamma 2 is the squared norm: {r1}"
        );
        assert!(
            Recipe::papers()
                .gradient_penalty(
                    logits,
                    Tensor::zeros([1, 1, 4, 4], &device),
                    Tensor::zeros([1, 3], &device),
                    Tensor::zeros([1], &device)
                )
                .is_none()
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        // Each key with a change of the papers' recipe that makes it invalid.
        type Change = fn(&mut Recipe);
        let bad: [(&str, Change); 6] = [
            ("recipe.ema_decay", |r| r.ema_decay = 1.0),
            ("recipe.r1_gamma", |r| r.r1_gamma = -1.0),
            ("recipe.ma_gp_power", |r| r.ma_gp_power = 3),
            ("recipe.lr_d", |r| r.lr_d = Some(0.0)),
            ("recipe.betas_g", |r| r.betas_g = [0.5, 1.0]),
            ("recipe.augment", |r| {
                r.augment = vec![Augmentation::Cutout, Augmentation::Cutout]
            }),
        ];
        for (key, change) in bad {
            let mut recipe = Recipe::papers();
            change(&mut recipe);
            let message = recipe.validate().unwrap_err().to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
        Recipe::papers().validate().unwrap();
    }
}
