//! The layers and small pieces of maths the three GANs share: DCGAN's initialisation and its
//! 4x4 convolutions (GAN-INT-CLS builds from them, StackGAN reuses them), the image head's
//! tanh, nearest-neighbour upsampling, spreading a vector over a grid, conditioning
//! augmentation's draw and KL term (StackGAN's, which AttnGAN keeps), and the adversarial losses
//! (the papers' logistic loss, or the hinge loss).
//! Each model file composes these into its paper's blocks.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{glu, relu, sigmoid, softplus};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// DCGAN initialisation as the authors': convolution weights N(0, 0.02).
pub fn dcgan_weights() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Batch norm with gamma N(1, 0.02) and beta 0, as the authors' `weights_init`.
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    bn.gamma = Initializer::Normal {
        mean: 1.0,
        std: 0.02,
    }
    .init([channels], device);
    bn
}

/// 4x4 transposed convolution: stride 1 / padding 0 maps 1x1 to 4x4, stride 2 / padding 1
/// doubles the size.
pub fn up_conv(
    input: usize,
    output: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([input, output], [4, 4])
        .with_stride([stride, stride])
        .with_padding([padding, padding])
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

/// 4x4 convolution, stride 2, padding 1, no bias: halves the size.
pub fn down_conv(input: usize, output: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

/// Stride-1 convolution of odd or full-size kernel; `kernel` 3 keeps the size (padding 1),
/// 1 and 4 use no padding.
pub fn conv(input: usize, output: usize, kernel: usize, device: &Device) -> Conv2d {
    let pad = if kernel == 3 { 1 } else { 0 };
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

/// tanh computed as 2 sigmoid(2x) - 1: the same values (to 2e-7), but flex evaluates
/// `sigmoid` about 4x faster than `tanh` on an image batch (`[8, 3, 256, 256]`: 5.0 against
/// 21.5 ms). The generators' image heads end with it.
pub fn image_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// Nearest-neighbour upsampling by 2: `[B, C, H, W]` -> `[B, C, 2H, 2W]`.
///
/// burn's own `interpolate` (Nearest): on flex 7-9x faster forward and 2-5x backward than
/// broadcasting through a reshape (`train/examples/profile_ops.rs`), same values.
pub fn upsample_nearest2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]),
    )
}

/// Bilinear resizing to `size` x `size` with aligned corners (PyTorch's `align_corners=True`):
/// `[B, C, H, W]` -> `[B, C, size, size]`, as two products with interpolation matrices. burn's
/// `interpolate` gives the same values, but its GPU backends have no bilinear backward, which
/// AttnGAN's DAMSM term needs (its 256 px images meet Inception at 299 px); matrix products
/// differentiate on every backend.
pub fn resize_bilinear_aligned(x: Tensor<4>, size: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    // [B, C, H, W] x [W, size] -> [B, C, H, size]
    let x = x
        .reshape([b * c * h, w])
        .matmul(interpolation_matrix(w, size, &device))
        .reshape([b, c, h, size]);
    // Along H: [B, C, size, H] x [H, size] -> [B, C, size(W), size(H)], then back.
    x.swap_dims(2, 3)
        .reshape([b * c * size, h])
        .matmul(interpolation_matrix(h, size, &device))
        .reshape([b, c, size, size])
        .swap_dims(2, 3)
}

/// `[from, to]`: column `j` holds the weights of the `from` input positions that output position
/// `j` of a corner-aligned linear interpolation reads (two neighbours, weights summing to 1).
fn interpolation_matrix(from: usize, to: usize, device: &Device) -> Tensor<2> {
    let mut weights = vec![0.0f32; from * to];
    for j in 0..to {
        let source = if to > 1 {
            j as f64 * (from - 1) as f64 / (to - 1) as f64
        } else {
            0.0
        };
        let low = (source.floor() as usize).min(from - 1);
        let high = (low + 1).min(from - 1);
        let frac = (source - low as f64) as f32;
        weights[low * to + j] += 1.0 - frac;
        weights[high * to + j] += frac;
    }
    Tensor::from_data(TensorData::new(weights, [from, to]), device)
}

/// `[B, C]` replicated over a `size` x `size` grid: `[B, C, size, size]`.
pub fn replicate(vector: Tensor<2>, size: usize) -> Tensor<4> {
    let [b, c] = vector.dims();
    vector.reshape([b, c, 1, 1]).expand([b, c, size, size])
}

/// How conditioning augmentation turns its fully connected layer's output into (mu, logvar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaGate {
    /// StackGAN's `CA_NET`: fully connected to 2C, ReLU.
    Relu,
    /// AttnGAN's `CA_NET`: fully connected to 4C, GLU.
    Glu,
}

/// Conditioning augmentation (`CA_NET`, StackGAN's; AttnGAN keeps it with a GLU): sentence
/// embedding (times `text_scale`) -> fully connected -> gate -> (mu, logvar), each `[B, C]`;
/// c = mu + exp(logvar / 2) * eps.
#[derive(Module, Debug)]
pub struct ConditioningAugmentation {
    pub fc: Linear,
    /// A factor on the sentence embedding (StackGAN's `text_scale`; 1 is the authors'
    /// network). Not a weight: set from the config.
    #[module(skip)]
    pub text_scale: f32,
    #[module(skip)]
    pub gate: CaGate,
}

impl ConditioningAugmentation {
    /// `[B, P]` -> (mu, logvar), each `[B, C]`.
    pub fn encode(&self, text: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let text = if self.text_scale == 1.0 {
            text
        } else {
            text.mul_scalar(self.text_scale)
        };
        let x = self.fc.forward(text);
        Condition::split(match self.gate {
            CaGate::Relu => relu(x),  // [B, 2C]
            CaGate::Glu => glu(x, 1), // [B, 4C] -> [B, 2C]
        })
    }

    /// The condition for `text` `[B, P]` with standard normal draws `eps` `[B, C]`.
    pub fn forward(&self, text: Tensor<2>, eps: Tensor<2>) -> Condition {
        let (mu, logvar) = self.encode(text);
        Condition::draw(mu, logvar, eps)
    }
}

/// Conditioning augmentation's output: the condition and the Gaussian it was drawn from, each
/// `[B, C]`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub code: Tensor<2>,
    pub mu: Tensor<2>,
    pub logvar: Tensor<2>,
}

impl Condition {
    /// CA's two halves of `x` `[B, 2C]`: (mu, logvar), each `[B, C]`.
    pub fn split(x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [b, two_c] = x.dims();
        let c = two_c / 2;
        (x.clone().slice([0..b, 0..c]), x.slice([0..b, c..two_c]))
    }

    /// The condition drawn from N(mu, exp(logvar)) with standard normal draws `eps` `[B, C]`.
    pub fn draw(mu: Tensor<2>, logvar: Tensor<2>, eps: Tensor<2>) -> Self {
        Self {
            code: reparameterize(mu.clone(), logvar.clone(), eps),
            mu,
            logvar,
        }
    }
}

/// `mu + exp(logvar / 2) * eps`: a draw of N(mu, exp(logvar)) from a standard normal `eps`.
pub fn reparameterize(mu: Tensor<2>, logvar: Tensor<2>, eps: Tensor<2>) -> Tensor<2> {
    mu + logvar.mul_scalar(0.5).exp() * eps
}

/// KL(N(mu, sigma^2) || N(0, I)) per element, averaged over batch and dimensions as the
/// authors' `KL_loss`: `-0.5 mean(1 + logvar - mu^2 - exp(logvar))`.
pub fn kl_loss(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let element = logvar.clone().add_scalar(1.0) - mu.powi_scalar(2) - logvar.exp();
    element.mean().mul_scalar(-0.5)
}

/// Binary cross-entropy of logits against a constant label, averaged: the numerically stable
/// form of `BCE(sigmoid(x), label)`.
pub fn bce_with_logits(logits: Tensor<1>, label: f32) -> Tensor<1> {
    // -[y log s(x) + (1 - y) log(1 - s(x))] = softplus(x) - y x
    (softplus(logits.clone(), 1.0) - logits.mul_scalar(label)).mean()
}

/// How a discriminator's logits become losses. The papers use the logistic loss (binary
/// cross-entropy against 1 for real, 0 for generated or mismatched); the hinge loss (Lim & Ye
/// 2017, Miyato et al. ICLR 2018; DF-GAN's) stops pushing a logit once it is past the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdversarialLoss {
    /// `BCE(sigmoid(x), y)`: the three papers' loss.
    #[default]
    Logistic,
    /// D: `mean(relu(1 - x))` on real, `mean(relu(1 + x))` on fake; G: `-mean(x)`.
    Hinge,
}

impl AdversarialLoss {
    /// D's loss on logits that should say "real" (a real image with its own caption).
    pub fn real(self, logits: Tensor<1>) -> Tensor<1> {
        match self {
            Self::Logistic => bce_with_logits(logits, 1.0),
            Self::Hinge => relu(logits.neg().add_scalar(1.0)).mean(),
        }
    }

    /// D's loss on logits that should say "fake" (a generated image, or a mismatched caption).
    pub fn fake(self, logits: Tensor<1>) -> Tensor<1> {
        match self {
            Self::Logistic => bce_with_logits(logits, 0.0),
            Self::Hinge => relu(logits.add_scalar(1.0)).mean(),
        }
    }

    /// G's loss on D's logits for generated images: fool D.
    pub fn generator(self, logits: Tensor<1>) -> Tensor<1> {
        match self {
            Self::Logistic => bce_with_logits(logits, 1.0),
            Self::Hinge => logits.mean().neg(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{device, values};

    #[test]
    fn kl_matches_a_hand_computed_value() {
        let mu = Tensor::<2>::from_data([[0.5f32, -1.0], [0.0, 2.0]], &device());
        let logvar = Tensor::<2>::from_data([[0.0f32, 1.0], [-0.5, 0.2]], &device());
        let got = kl_loss(mu, logvar).into_scalar::<f32>();
        let pairs = [(0.5f32, 0.0f32), (-1.0, 1.0), (0.0, -0.5), (2.0, 0.2)];
        let expect = pairs
            .iter()
            .map(|&(m, lv)| -0.5 * (1.0 + lv - m * m - lv.exp()))
            .sum::<f32>()
            / 4.0;
        assert!((got - expect).abs() < 1e-6, "{got} vs {expect}");
        // N(0, I) itself costs nothing.
        let zero = Tensor::<2>::zeros([3, 5], &device());
        assert!(kl_loss(zero.clone(), zero).into_scalar::<f32>().abs() < 1e-7);
    }

    #[test]
    fn matrix_bilinear_resizing_gives_burns_interpolation() {
        // Up (256 -> 299, as AttnGAN's DAMSM term), down, and to one row/column.
        for (from, to) in [(16, 29), (29, 16), (7, 7), (5, 1)] {
            let x = Tensor::<4>::random(
                [2, 3, from, from + 1],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device(),
            );
            let ours = resize_bilinear_aligned(x.clone(), to);
            let burns = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(true)
                    .with_output_size([to, to]),
            );
            assert_eq!(ours.dims(), burns.dims());
            let gap = values(ours)
                .iter()
                .zip(values(burns))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(gap < 1e-5, "{from} -> {to}: {gap}");
        }
    }

    #[test]
    fn hinge_and_logistic_losses_match_hand_computed_values() {
        let logits = || Tensor::<1>::from_data([2.0f32, 0.5, -3.0], &device());
        let value = |t: Tensor<1>| t.into_scalar::<f32>();
        let close = |a: f32, b: f32| assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        // Hinge: relu(1 - x) = [0, 0.5, 4]; relu(1 + x) = [3, 1.5, 0]; -x = [-2, -0.5, 3].
        close(value(AdversarialLoss::Hinge.real(logits())), 4.5 / 3.0);
        close(value(AdversarialLoss::Hinge.fake(logits())), 4.5 / 3.0);
        close(value(AdversarialLoss::Hinge.generator(logits())), 0.5 / 3.0);
        // Logistic: softplus(-x) against 1, softplus(x) against 0.
        let softplus = |x: f32| (1.0 + x.exp()).ln();
        let xs = [2.0f32, 0.5, -3.0];
        let real = xs.iter().map(|&x| softplus(-x)).sum::<f32>() / 3.0;
        let fake = xs.iter().map(|&x| softplus(x)).sum::<f32>() / 3.0;
        close(value(AdversarialLoss::Logistic.real(logits())), real);
        close(value(AdversarialLoss::Logistic.fake(logits())), fake);
        close(value(AdversarialLoss::Logistic.generator(logits())), real);
    }
}
