//! GAN-INT-CLS (Reed et al., "Generative Adversarial Text to Image Synthesis", ICML 2016).
//!
//! A DCGAN conditioned on a sentence embedding phi(t): the generator compresses phi(t) to 128
//! values (fully connected + LeakyReLU 0.2), joins them with the noise z and upsamples from 4x4
//! to 64x64; the matching-aware discriminator downsamples the image to 4x4, joins the
//! compressed text replicated over the grid, and scores the pair with one logit.
//!
//! The layer list follows the authors' Torch script (reedscot/icml2016 `main_cls_int.lua`),
//! which adds a bottleneck residual block at 4x4 (and at 8x8 in the generator) to the plain
//! DCGAN of the paper's figure. Their script zeroes every convolution bias before each step,
//! so the convolutions here have no bias. Here phi(t) is the DAMSM sentence feature (256
//! values): the paper's char-CNN-RNN encoder cannot be had.
//!
//! Dimension letters: `B` batch, `Z` noise (100), `P` sentence embedding, `N` compressed text
//! (128), `G` = ngf, `F` = ndf.

use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::bundle::GanIntClsBundle;
use crate::generate::{GenerateError, StageImages, StageInputs, Stages};
use crate::layers::{AdversarialLoss, batch_norm, conv, down_conv, image_tanh, up_conv};

/// Slope of every LeakyReLU in the paper.
const LEAK: f64 = 0.2;

/// Sizes of both networks. Presets: [`GanIntClsConfig::paper`] (the authors' CUB script) and
/// [`GanIntClsConfig::small`] (trains on two CPU cores).
#[derive(Config, Debug)]
pub struct GanIntClsConfig {
    /// Width of the sentence embedding phi(t) fed to both networks (DAMSM: 256).
    #[config(default = 256)]
    pub text_dim: usize,
    /// Compressed text width (`nt` in the authors' script).
    #[config(default = 128)]
    pub projected_text_dim: usize,
    /// Noise width (`nz`).
    #[config(default = 100)]
    pub noise_dim: usize,
    /// Generator width (`ngf`: 128 for CUB).
    #[config(default = 128)]
    pub ngf: usize,
    /// Discriminator width (`ndf`: 64).
    #[config(default = 64)]
    pub ndf: usize,
}

impl GanIntClsConfig {
    /// The authors' CUB settings (`main_cls_int.lua`: nt 128, nz 100, ngf 128, ndf 64).
    pub fn paper(text_dim: usize) -> Self {
        Self::new().with_text_dim(text_dim)
    }

    /// A quarter of the paper's widths (ngf 32, ndf 16): 1.9 M generator parameters with a
    /// 256-value text embedding.
    pub fn small(text_dim: usize) -> Self {
        Self::new()
            .with_text_dim(text_dim)
            .with_ngf(32)
            .with_ndf(16)
    }

    /// Checks the sizes every block can be built with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.ngf < 4 || self.ndf < 4 {
            return Err(format!(
                "ngf and ndf must be at least 4 (the residual blocks narrow by 4), got {} and {}",
                self.ngf, self.ndf
            ));
        }
        if self.text_dim == 0 || self.projected_text_dim == 0 || self.noise_dim == 0 {
            return Err(format!(
                "text_dim {}, projected_text_dim {} and noise_dim {} must be positive",
                self.text_dim, self.projected_text_dim, self.noise_dim
            ));
        }
        Ok(())
    }

    fn checked(&self) {
        if let Err(e) = self.validate() {
            panic!("invalid GAN-INT-CLS config: {e}");
        }
    }

    pub fn init_generator(&self, device: &Device) -> Generator {
        self.checked();
        let g = self.ngf;
        Generator {
            text: TextProjection::new(self.text_dim, self.projected_text_dim, false, device),
            project: up_conv(
                self.noise_dim + self.projected_text_dim,
                8 * g,
                1,
                0,
                device,
            ),
            project_bn: batch_norm(8 * g, device),
            residual_4: ResidualBlock::new(8 * g, 2 * g, device),
            up_8: up_conv(8 * g, 4 * g, 2, 1, device),
            up_8_bn: batch_norm(4 * g, device),
            residual_8: ResidualBlock::new(4 * g, g, device),
            up_16: up_conv(4 * g, 2 * g, 2, 1, device),
            up_16_bn: batch_norm(2 * g, device),
            up_32: up_conv(2 * g, g, 2, 1, device),
            up_32_bn: batch_norm(g, device),
            to_rgb: up_conv(g, 3, 2, 1, device),
        }
    }

    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        self.checked();
        let f = self.ndf;
        Discriminator {
            down_32: down_conv(3, f, device),
            down_16: down_conv(f, 2 * f, device),
            down_16_bn: batch_norm(2 * f, device),
            down_8: down_conv(2 * f, 4 * f, device),
            down_8_bn: batch_norm(4 * f, device),
            down_4: down_conv(4 * f, 8 * f, device),
            down_4_bn: batch_norm(8 * f, device),
            residual_4: ResidualBlock::new(8 * f, 2 * f, device),
            text: TextProjection::new(self.text_dim, self.projected_text_dim, true, device),
            joint: conv(8 * f + self.projected_text_dim, 8 * f, 1, device),
            joint_bn: batch_norm(8 * f, device),
            logit: conv(8 * f, 1, 4, device),
        }
    }
}

/// phi(t) -> fully connected -> (batch norm in D) -> LeakyReLU 0.2.
#[derive(Module, Debug)]
pub struct TextProjection {
    pub fc: Linear,
    pub bn: Option<BatchNorm>,
}

impl TextProjection {
    fn new(text_dim: usize, output: usize, with_bn: bool, device: &Device) -> Self {
        Self {
            fc: LinearConfig::new(text_dim, output).init(device),
            bn: with_bn.then(|| batch_norm(output, device)),
        }
    }

    /// `[B, P]` -> `[B, N]`.
    pub fn forward(&self, text: Tensor<2>) -> Tensor<2> {
        let x = self.fc.forward(text);
        let x = match &self.bn {
            Some(bn) => bn.forward(x),
            None => x,
        };
        leaky_relu(x, LEAK)
    }
}

/// The authors' bottleneck residual branch: 1x1 to `width/4`-ish, 3x3, 3x3 back, each with
/// batch norm; the caller adds it to the input and applies the activation.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub reduce: Conv2d,
    pub reduce_bn: BatchNorm,
    pub conv: Conv2d,
    pub conv_bn: BatchNorm,
    pub expand: Conv2d,
    pub expand_bn: BatchNorm,
}

impl ResidualBlock {
    fn new(channels: usize, bottleneck: usize, device: &Device) -> Self {
        Self {
            reduce: conv(channels, bottleneck, 1, device),
            reduce_bn: batch_norm(bottleneck, device),
            conv: conv(bottleneck, bottleneck, 3, device),
            conv_bn: batch_norm(bottleneck, device),
            expand: conv(bottleneck, channels, 3, device),
            expand_bn: batch_norm(channels, device),
        }
    }

    /// `x + branch(x)`, the branch's inner activations given by `activation`.
    fn forward(&self, x: Tensor<4>, activation: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
        let h = activation(self.reduce_bn.forward(self.reduce.forward(x.clone())));
        let h = activation(self.conv_bn.forward(self.conv.forward(h)));
        x + self.expand_bn.forward(self.expand.forward(h))
    }
}

/// The text-conditional generator.
#[derive(Module, Debug)]
pub struct Generator {
    pub text: TextProjection,
    pub project: ConvTranspose2d,
    pub project_bn: BatchNorm,
    pub residual_4: ResidualBlock,
    pub up_8: ConvTranspose2d,
    pub up_8_bn: BatchNorm,
    pub residual_8: ResidualBlock,
    pub up_16: ConvTranspose2d,
    pub up_16_bn: BatchNorm,
    pub up_32: ConvTranspose2d,
    pub up_32_bn: BatchNorm,
    pub to_rgb: ConvTranspose2d,
}

impl Generator {
    /// # Shapes
    /// - noise: `[B, Z]`, text: `[B, P]`
    /// - returns `[B, 3, 64, 64]` in [-1, 1]
    pub fn forward(&self, noise: Tensor<2>, text: Tensor<2>) -> Tensor<4> {
        let [batch, _] = noise.dims();
        let text = self.text.forward(text); // [B, N]
        let x = Tensor::cat(vec![noise, text], 1); // [B, Z + N]
        let [_, width] = x.dims();
        let x = x.reshape([batch, width, 1, 1]);
        let x = self.project_bn.forward(self.project.forward(x)); // [B, 8G, 4, 4]
        let x = relu(self.residual_4.forward(x, relu));
        let x = self.up_8_bn.forward(self.up_8.forward(x)); // [B, 4G, 8, 8]
        let x = relu(self.residual_8.forward(x, relu));
        let x = relu(self.up_16_bn.forward(self.up_16.forward(x))); // [B, 2G, 16, 16]
        let x = relu(self.up_32_bn.forward(self.up_32.forward(x))); // [B, G, 32, 32]
        image_tanh(self.to_rgb.forward(x)) // [B, 3, 64, 64]
    }
}

/// The matching-aware discriminator: one logit per (image, text) pair, high for real.
#[derive(Module, Debug)]
pub struct Discriminator {
    pub down_32: Conv2d,
    pub down_16: Conv2d,
    pub down_16_bn: BatchNorm,
    pub down_8: Conv2d,
    pub down_8_bn: BatchNorm,
    pub down_4: Conv2d,
    pub down_4_bn: BatchNorm,
    pub residual_4: ResidualBlock,
    pub text: TextProjection,
    pub joint: Conv2d,
    pub joint_bn: BatchNorm,
    pub logit: Conv2d,
}

impl Discriminator {
    /// # Shapes
    /// - image: `[B, 3, 64, 64]`, text: `[B, P]`
    /// - returns logits `[B]` (the authors apply a sigmoid; the losses here take logits)
    pub fn forward(&self, image: Tensor<4>, text: Tensor<2>) -> Tensor<1> {
        let leaky = |x| leaky_relu(x, LEAK);
        let x = leaky(self.down_32.forward(image)); // [B, F, 32, 32]
        let x = leaky(self.down_16_bn.forward(self.down_16.forward(x))); // [B, 2F, 16, 16]
        // The authors' script has no activation between these two (8x8 and 4x4) blocks.
        let x = self.down_8_bn.forward(self.down_8.forward(x)); // [B, 4F, 8, 8]
        let x = self.down_4_bn.forward(self.down_4.forward(x)); // [B, 8F, 4, 4]
        let x = leaky(self.residual_4.forward(x, leaky));
        let [batch, _, height, width] = x.dims();
        let text = self.text.forward(text); // [B, N]
        let [_, n] = text.dims();
        let text = text
            .reshape([batch, n, 1, 1])
            .expand([batch, n, height, width]); // [B, N, 4, 4]
        let x = Tensor::cat(vec![x, text], 1); // [B, 8F + N, 4, 4]
        let x = leaky(self.joint_bn.forward(self.joint.forward(x)));
        self.logit.forward(x).reshape([batch]) // [B]
    }
}

/// GAN-CLS discriminator loss: real image with its text is real; real image with a wrong text
/// and generated image with the right text are fake, weighted half each
/// (`cls_weight` 0.5 in the authors' script). `loss` is the authors' logistic loss or the hinge.
pub fn discriminator_loss(
    real_right: Tensor<1>,
    real_wrong: Tensor<1>,
    fake_right: Tensor<1>,
    loss: AdversarialLoss,
) -> Tensor<1> {
    loss.real(real_right) + (loss.fake(real_wrong) + loss.fake(fake_right)).mul_scalar(0.5)
}

/// Generator loss: fool D on the right text, and (GAN-INT) on interpolated embeddings
/// `beta t1 + (1 - beta) t2`, for which no real image exists, weighted by `interp_weight`.
pub fn generator_loss(
    fake_right: Tensor<1>,
    fake_interpolated: Option<Tensor<1>>,
    interp_weight: f32,
    loss: AdversarialLoss,
) -> Tensor<1> {
    let fooled = loss.generator(fake_right);
    match fake_interpolated {
        Some(logits) => fooled + loss.generator(logits).mul_scalar(interp_weight),
        None => fooled,
    }
}

/// GAN-INT's text mix: row i of the result is `beta a_i + (1 - beta) b_i`.
pub fn interpolate_text(a: Tensor<2>, b: Tensor<2>, beta: f32) -> Tensor<2> {
    a.mul_scalar(beta) + b.mul_scalar(1.0 - beta)
}

/// GAN-INT-CLS draws in one stage: `G(z, phi(t))` at 64 px.
impl Stages for GanIntClsBundle {
    fn family(&self) -> &'static str {
        "GAN-INT-CLS"
    }

    fn stage_count(&self) -> usize {
        1
    }

    fn noise_width(&self) -> usize {
        self.gan_config.noise_dim
    }

    fn stage_label(&self, _index: usize) -> String {
        "64×64".to_string()
    }

    fn stage(
        &self,
        _index: usize,
        inputs: &StageInputs,
        _previous: Option<&StageImages>,
    ) -> Result<StageImages, GenerateError> {
        let images = self
            .weights
            .generator
            .forward(inputs.noise.clone(), inputs.text.clone());
        Ok(StageImages::plain(self.stage_label(0), images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::device;
    use burn::tensor::Distribution;

    fn parameters<M: Module>(m: &M) -> usize {
        m.num_params()
    }

    #[test]
    fn shapes_and_range() {
        let config = GanIntClsConfig::small(16);
        let g = config.init_generator(&device());
        let d = config.init_discriminator(&device());
        let z = Tensor::<2>::random([2, 100], Distribution::Normal(0.0, 1.0), &device());
        let t = Tensor::<2>::random([2, 16], Distribution::Normal(0.0, 1.0), &device());
        let image = g.forward(z, t.clone());
        assert_eq!(image.dims(), [2, 3, 64, 64]);
        let values: Vec<f32> = image.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(d.forward(image, t).dims(), [2]);
    }

    #[test]
    fn paper_generator_has_the_papers_size() {
        // papers.md: G about 19 M parameters at ngf 128 (with the 1024-d text of the paper).
        let g = GanIntClsConfig::paper(1024).init_generator(&device());
        let n = parameters(&g);
        assert!((18_000_000..20_000_000).contains(&n), "{n}");
    }

    #[test]
    fn losses_match_hand_computed_values() {
        let logits = |v: &[f32]| Tensor::<1>::from_data(v, &device());
        let bce = |x: f32, y: f32| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(y * s.ln() + (1.0 - y) * (1.0 - s).ln())
        };
        let got = crate::layers::bce_with_logits(logits(&[2.0, -1.0]), 1.0).into_scalar::<f32>();
        assert!((got - (bce(2.0, 1.0) + bce(-1.0, 1.0)) / 2.0).abs() < 1e-6);

        // CLS: the wrong-text pairs count as fake, half weight with the generated pairs.
        let d = discriminator_loss(
            logits(&[3.0]),
            logits(&[0.5]),
            logits(&[-2.0]),
            AdversarialLoss::Logistic,
        )
        .into_scalar::<f32>();
        let expect = bce(3.0, 1.0) + 0.5 * (bce(0.5, 0.0) + bce(-2.0, 0.0));
        assert!((d - expect).abs() < 1e-6, "{d} vs {expect}");

        let g = generator_loss(
            logits(&[-1.0]),
            Some(logits(&[0.0])),
            1.0,
            AdversarialLoss::Logistic,
        )
        .into_scalar::<f32>();
        assert!((g - (bce(-1.0, 1.0) + bce(0.0, 1.0))).abs() < 1e-6);
        let mixed = interpolate_text(
            Tensor::<2>::from_data([[2.0f32, 0.0]], &device()),
            Tensor::<2>::from_data([[0.0f32, 4.0]], &device()),
            0.5,
        );
        assert_eq!(
            mixed.into_data().try_to_vec::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
    }
}
