//! StackGAN (Zhang et al., "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
//! Generative Adversarial Networks", ICCV 2017).
//!
//! Conditioning augmentation (CA) turns the sentence embedding into a Gaussian N(mu, sigma^2)
//! and draws the condition c from it, with a KL term pulling that Gaussian toward N(0, I).
//! Stage-I draws a rough 64x64 image from [z, c]; Stage-II encodes that image down to 16x16,
//! joins its own condition replicated over the grid, refines it with residual blocks and
//! upsamples to 256x256. Each stage has a matching-aware discriminator that sees the image's
//! 4x4 features joined with its own compression of the sentence embedding; Stage-II's also has
//! an unconditional logit.
//!
//! Module structure, names and tensor shapes follow the authors' PyTorch code
//! (hanzhanggit/StackGAN-Pytorch `model.py`: `CA_NET`, `STAGE1_G`, `STAGE1_D`, `STAGE2_G`,
//! `STAGE2_D`, `D_GET_LOGITS`) so that their generator checkpoints map onto these modules
//! tensor for tensor. Where the code and the paper differ, the difference is said:
//! - CA applies a ReLU to the fully connected output before splitting it into mu and logvar
//!   (the PyTorch code; the TensorFlow code has a LeakyReLU).
//! - The discriminators compress the sentence embedding themselves (fully connected to the
//!   condition width + LeakyReLU 0.2, the paper and the TensorFlow code: `embed_text`), where
//!   the PyTorch code gives them the generator's detached mu. With mu, a discriminator can only
//!   tell captions apart that the generator's CA already separates, and CA only learns to
//!   separate them from the discriminator: on the shapes learning test the caption's colour
//!   stayed at chance for 800 steps. The discriminators' other weights keep the PyTorch shapes.
//! - `STAGE2_G` holds a frozen `STAGE1_G` inside; here [`StageIIGenerator`] takes the Stage-I
//!   image as input and the caller runs Stage-I (importing their Stage-II checkpoint means
//!   dropping the `STAGE1_G.` prefix).
//! - The authors end each logit head with a sigmoid and use BCE; here heads return logits and
//!   the losses use the numerically stable BCE-with-logits (same values, no parameters).
//!
//! The sentence embedding is the DAMSM sentence feature (256 values), not the paper's
//! char-CNN-RNN (1024). Dimension letters: `B` batch, `Z` noise (100), `P` sentence embedding,
//! `C` condition (128), `G` = ngf, `F` = ndf.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::bundle::StackGanBundle;
use crate::generate::{GenerateError, StageImages, StageInputs, Stages};
use crate::layers::{
    AdversarialLoss, CaGate, ConditioningAugmentation, batch_norm, conv, dcgan_weights, down_conv,
    image_tanh, replicate, upsample_nearest2,
};

/// Slope of the discriminators' LeakyReLUs.
const LEAK: f64 = 0.2;

/// Sizes of both stages. Presets: [`StackGanConfig::paper`] (the authors' CUB settings) and
/// [`StackGanConfig::small`] (trains on two CPU cores).
#[derive(Config, Debug)]
pub struct StackGanConfig {
    /// Width of the sentence embedding (`TEXT.DIMENSION`; DAMSM: 256).
    #[config(default = 256)]
    pub text_dim: usize,
    /// Width of the CA condition c (`GAN.CONDITION_DIM`: 128).
    #[config(default = 128)]
    pub condition_dim: usize,
    /// Noise width (`Z_DIM`: 100).
    #[config(default = 100)]
    pub noise_dim: usize,
    /// Stage-I `GAN.GF_DIM` (128 for CUB): the 4x4 map has 8 times this many channels.
    #[config(default = 128)]
    pub stage1_ngf: usize,
    /// Stage-I `GAN.DF_DIM` (64).
    #[config(default = 64)]
    pub stage1_ndf: usize,
    /// Stage-II `GAN.GF_DIM` (128): the 16x16 map has 4 times this many channels.
    #[config(default = 128)]
    pub stage2_ngf: usize,
    /// Stage-II `GAN.DF_DIM` (64).
    #[config(default = 64)]
    pub stage2_ndf: usize,
    /// Residual blocks at 16x16 in Stage-II (`GAN.R_NUM`: 2).
    #[config(default = 2)]
    pub residual_blocks: usize,
    /// Factor on the sentence embedding before CA (added; 1 is the authors' network). CA's
    /// fully connected layer starts at N(0, 0.02) weights, sized for embeddings whose values
    /// spread about 1; DAMSM's spread about 0.25 per dimension, which leaves the condition mean
    /// mu near zero under CA's unit noise for hundreds of steps. Birds configs use 4.
    #[config(default = 1.0)]
    pub text_scale: f32,
}

impl StackGanConfig {
    /// The authors' CUB settings (`GF_DIM` 128, `DF_DIM` 64, `CONDITION_DIM` 128, `Z_DIM` 100,
    /// `R_NUM` 2) with a `text_dim`-value sentence embedding.
    pub fn paper(text_dim: usize) -> Self {
        Self::new().with_text_dim(text_dim)
    }

    /// A quarter of the paper's widths (ngf 32, ndf 16 in both stages).
    pub fn small(text_dim: usize) -> Self {
        Self::new()
            .with_text_dim(text_dim)
            .with_stage1_ngf(32)
            .with_stage1_ndf(16)
            .with_stage2_ngf(32)
            .with_stage2_ndf(16)
    }

    /// Random values one image needs: z, then Stage-I's and Stage-II's CA draws.
    pub fn noise_width(&self) -> usize {
        self.noise_dim + 2 * self.condition_dim
    }

    /// Checks the widths every block can be built with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.stage1_ngf < 2 || self.stage2_ngf < 4 {
            return Err(format!(
                "stage1_ngf must be at least 2 and stage2_ngf at least 4 (the last blocks divide them), got {} and {}",
                self.stage1_ngf, self.stage2_ngf
            ));
        }
        if self.stage1_ndf == 0 || self.stage2_ndf == 0 {
            return Err("stage1_ndf and stage2_ndf must be positive".into());
        }
        if self.text_dim == 0 || self.condition_dim == 0 || self.noise_dim == 0 {
            return Err("text_dim, condition_dim and noise_dim must be positive".into());
        }
        if !(self.text_scale.is_finite() && self.text_scale > 0.0) {
            return Err(format!(
                "text_scale must be a positive number, got {}",
                self.text_scale
            ));
        }
        Ok(())
    }

    fn checked(&self) {
        if let Err(e) = self.validate() {
            panic!("invalid StackGAN config: {e}");
        }
    }

    fn ca(&self, device: &Device) -> ConditioningAugmentation {
        ConditioningAugmentation {
            fc: linear(self.text_dim, 2 * self.condition_dim, true, device),
            text_scale: self.text_scale,
            gate: CaGate::Relu,
        }
    }

    pub fn init_stage1_generator(&self, device: &Device) -> StageIGenerator {
        self.checked();
        let g = 8 * self.stage1_ngf; // the authors' gf_dim
        StageIGenerator {
            ca_net: self.ca(device),
            fc: linear(self.noise_dim + self.condition_dim, g * 16, false, device),
            fc_bn: batch_norm(g * 16, device),
            upsample1: UpBlock::new(g, g / 2, device),
            upsample2: UpBlock::new(g / 2, g / 4, device),
            upsample3: UpBlock::new(g / 4, g / 8, device),
            upsample4: UpBlock::new(g / 8, g / 16, device),
            img: conv3x3(g / 16, 3, device),
        }
    }

    pub fn init_stage1_discriminator(&self, device: &Device) -> StageIDiscriminator {
        self.checked();
        let f = self.stage1_ndf;
        StageIDiscriminator {
            encode_img: DownPath {
                convs: vec![
                    down_conv(3, f, device),
                    down_conv(f, 2 * f, device),
                    down_conv(2 * f, 4 * f, device),
                    down_conv(4 * f, 8 * f, device),
                ],
                norms: vec![
                    batch_norm(2 * f, device),
                    batch_norm(4 * f, device),
                    batch_norm(8 * f, device),
                ],
            },
            embed_text: self.text_embedding(device),
            get_cond_logits: ConditionalLogits::new(f, self.condition_dim, device),
        }
    }

    fn text_embedding(&self, device: &Device) -> TextEmbedding {
        TextEmbedding {
            fc: linear(self.text_dim, self.condition_dim, true, device),
            text_scale: self.text_scale,
        }
    }

    pub fn init_stage2_generator(&self, device: &Device) -> StageIIGenerator {
        self.checked();
        let g = self.stage2_ngf;
        StageIIGenerator {
            ca_net: self.ca(device),
            encoder: StageIIEncoder {
                conv: conv3x3(3, g, device),
                down1: down_conv(g, 2 * g, device),
                down1_bn: batch_norm(2 * g, device),
                down2: down_conv(2 * g, 4 * g, device),
                down2_bn: batch_norm(4 * g, device),
            },
            hr_joint: conv3x3(self.condition_dim + 4 * g, 4 * g, device),
            hr_joint_bn: batch_norm(4 * g, device),
            residual: (0..self.residual_blocks)
                .map(|_| ResBlock::new(4 * g, device))
                .collect(),
            upsample1: UpBlock::new(4 * g, 2 * g, device),
            upsample2: UpBlock::new(2 * g, g, device),
            upsample3: UpBlock::new(g, g / 2, device),
            upsample4: UpBlock::new(g / 2, g / 4, device),
            img: conv3x3(g / 4, 3, device),
        }
    }

    pub fn init_stage2_discriminator(&self, device: &Device) -> StageIIDiscriminator {
        self.checked();
        let f = self.stage2_ndf;
        let widths = [f, 2 * f, 4 * f, 8 * f, 16 * f, 32 * f];
        StageIIDiscriminator {
            encode_img: DownPath {
                convs: std::iter::once(down_conv(3, f, device))
                    .chain(widths.windows(2).map(|w| down_conv(w[0], w[1], device)))
                    .collect(),
                norms: widths[1..].iter().map(|&c| batch_norm(c, device)).collect(),
            },
            narrow1: conv3x3(32 * f, 16 * f, device),
            narrow1_bn: batch_norm(16 * f, device),
            narrow2: conv3x3(16 * f, 8 * f, device),
            narrow2_bn: batch_norm(8 * f, device),
            embed_text: self.text_embedding(device),
            get_cond_logits: ConditionalLogits::new(f, self.condition_dim, device),
            get_uncond_logits: logit_conv(8 * f, device),
        }
    }
}

/// Fully connected layer initialised as the authors' `weights_init`: N(0, 0.02), bias 0.
fn linear(input: usize, output: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(input, output)
        .with_bias(bias)
        .with_initializer(dcgan_weights())
        .init(device)
}

/// The authors' `conv3x3`: 3x3, stride 1, padding 1, no bias.
fn conv3x3(input: usize, output: usize, device: &Device) -> Conv2d {
    conv(input, output, 3, device)
}

/// The 4x4, stride-4 convolution to one logit (PyTorch's default bias kept).
fn logit_conv(input: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, 1], [4, 4])
        .with_stride([4, 4])
        .with_initializer(dcgan_weights())
        .init(device)
}

/// The authors' `upBlock`: nearest x2, 3x3 conv, batch norm, ReLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl UpBlock {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(input, output, device),
            bn: batch_norm(output, device),
        }
    }

    /// `[B, in, H, W]` -> `[B, out, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(upsample_nearest2(x))))
    }
}

/// The authors' `ResBlock`: conv-BN-ReLU-conv-BN, plus the input, then ReLU.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
}

impl ResBlock {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv1: conv3x3(channels, channels, device),
            bn1: batch_norm(channels, device),
            conv2: conv3x3(channels, channels, device),
            bn2: batch_norm(channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        relu(x + self.bn2.forward(self.conv2.forward(h)))
    }
}

/// A generator's output: the image in [-1, 1] and its CA Gaussian.
#[derive(Debug, Clone)]
pub struct StageOutput {
    pub image: Tensor<4>,
    pub mu: Tensor<2>,
    pub logvar: Tensor<2>,
}

/// Stage-I generator (`STAGE1_G`): [z, c] -> 4x4x(8G) -> four up-blocks -> 64x64x3.
#[derive(Module, Debug)]
pub struct StageIGenerator {
    pub ca_net: ConditioningAugmentation,
    pub fc: Linear,
    pub fc_bn: BatchNorm,
    pub upsample1: UpBlock,
    pub upsample2: UpBlock,
    pub upsample3: UpBlock,
    pub upsample4: UpBlock,
    pub img: Conv2d,
}

impl StageIGenerator {
    /// # Shapes
    /// - text: `[B, P]`, noise: `[B, Z]`, eps (CA's draw): `[B, C]`
    /// - returns the image `[B, 3, 64, 64]`
    pub fn forward(&self, text: Tensor<2>, noise: Tensor<2>, eps: Tensor<2>) -> StageOutput {
        let condition = self.ca_net.forward(text, eps);
        let x = Tensor::cat(vec![noise, condition.code], 1); // [B, Z + C]
        let x = relu(self.fc_bn.forward(self.fc.forward(x))); // [B, 8G * 16]
        let [b, width] = x.dims();
        let x = x.reshape([b, width / 16, 4, 4]); // [B, 8G, 4, 4]
        let x = self.upsample1.forward(x); // [B, 4G, 8, 8]
        let x = self.upsample2.forward(x); // [B, 2G, 16, 16]
        let x = self.upsample3.forward(x); // [B, G, 32, 32]
        let x = self.upsample4.forward(x); // [B, G/2, 64, 64]
        StageOutput {
            image: image_tanh(self.img.forward(x)), // [B, 3, 64, 64]
            mu: condition.mu,
            logvar: condition.logvar,
        }
    }
}

/// Stride-2 4x4 convolutions with LeakyReLU; every one but the first has batch norm.
#[derive(Module, Debug)]
pub struct DownPath {
    pub convs: Vec<Conv2d>,
    /// Batch norms of `convs[1..]`.
    pub norms: Vec<BatchNorm>,
}

impl DownPath {
    /// `[B, 3, S, S]` -> `[B, F 2^(n-1), S / 2^n, S / 2^n]` for n convolutions.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let mut x = image;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(x);
            if i > 0 {
                x = self.norms[i - 1].forward(x);
            }
            x = leaky_relu(x, LEAK);
        }
        x
    }
}

/// `D_GET_LOGITS` with conditioning: the 4x4 image features joined with the condition
/// replicated 4x4, a 3x3 conv with batch norm and LeakyReLU, then a 4x4 conv to one logit.
#[derive(Module, Debug)]
pub struct ConditionalLogits {
    pub joint: Conv2d,
    pub joint_bn: BatchNorm,
    pub logit: Conv2d,
}

impl ConditionalLogits {
    fn new(ndf: usize, condition_dim: usize, device: &Device) -> Self {
        Self {
            joint: conv3x3(8 * ndf + condition_dim, 8 * ndf, device),
            joint_bn: batch_norm(8 * ndf, device),
            logit: logit_conv(8 * ndf, device),
        }
    }

    /// features `[B, 8F, 4, 4]`, condition `[B, C]` -> logits `[B]`.
    pub fn forward(&self, features: Tensor<4>, condition: Tensor<2>) -> Tensor<1> {
        let [b, _, size, _] = features.dims();
        let x = Tensor::cat(vec![features, replicate(condition, size)], 1); // [B, 8F + C, 4, 4]
        let x = leaky_relu(self.joint_bn.forward(self.joint.forward(x)), LEAK);
        self.logit.forward(x).reshape([b]) // [B]
    }
}

/// A discriminator's compression of the sentence embedding (times `text_scale`): fully
/// connected to the condition width + LeakyReLU 0.2, as the paper's discriminators.
#[derive(Module, Debug)]
pub struct TextEmbedding {
    pub fc: Linear,
    /// [`StackGanConfig::text_scale`] (set from the config).
    #[module(skip)]
    pub text_scale: f32,
}

impl TextEmbedding {
    /// `[B, P]` -> `[B, C]`.
    pub fn forward(&self, text: Tensor<2>) -> Tensor<2> {
        leaky_relu(self.fc.forward(text.mul_scalar(self.text_scale)), LEAK)
    }
}

/// Stage-I discriminator (`STAGE1_D`): 64x64 -> 4x4x(8F), conditional logit only.
#[derive(Module, Debug)]
pub struct StageIDiscriminator {
    pub encode_img: DownPath,
    pub embed_text: TextEmbedding,
    pub get_cond_logits: ConditionalLogits,
}

/// Stage-II's image encoder: 64x64x3 -> 16x16x(4G).
#[derive(Module, Debug)]
pub struct StageIIEncoder {
    pub conv: Conv2d,
    pub down1: Conv2d,
    pub down1_bn: BatchNorm,
    pub down2: Conv2d,
    pub down2_bn: BatchNorm,
}

impl StageIIEncoder {
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv.forward(image)); // [B, G, 64, 64]
        let x = relu(self.down1_bn.forward(self.down1.forward(x))); // [B, 2G, 32, 32]
        relu(self.down2_bn.forward(self.down2.forward(x))) // [B, 4G, 16, 16]
    }
}

/// Stage-II generator (`STAGE2_G` without its embedded Stage-I): the Stage-I image encoded to
/// 16x16, joined with its own condition, residual blocks, four up-blocks to 256x256.
#[derive(Module, Debug)]
pub struct StageIIGenerator {
    pub ca_net: ConditioningAugmentation,
    pub encoder: StageIIEncoder,
    pub hr_joint: Conv2d,
    pub hr_joint_bn: BatchNorm,
    pub residual: Vec<ResBlock>,
    pub upsample1: UpBlock,
    pub upsample2: UpBlock,
    pub upsample3: UpBlock,
    pub upsample4: UpBlock,
    pub img: Conv2d,
}

impl StageIIGenerator {
    /// # Shapes
    /// - stage1_image: `[B, 3, 64, 64]`, text: `[B, P]`, eps (this stage's CA draw): `[B, C]`
    /// - returns the image `[B, 3, 256, 256]`
    pub fn forward(&self, stage1_image: Tensor<4>, text: Tensor<2>, eps: Tensor<2>) -> StageOutput {
        let encoded = self.encoder.forward(stage1_image); // [B, 4G, 16, 16]
        let condition = self.ca_net.forward(text, eps);
        let [_, _, size, _] = encoded.dims();
        let x = Tensor::cat(vec![encoded, replicate(condition.code, size)], 1); // [B, 4G + C, 16, 16]
        let mut x = relu(self.hr_joint_bn.forward(self.hr_joint.forward(x))); // [B, 4G, 16, 16]
        for block in &self.residual {
            x = block.forward(x);
        }
        let x = self.upsample1.forward(x); // [B, 2G, 32, 32]
        let x = self.upsample2.forward(x); // [B, G, 64, 64]
        let x = self.upsample3.forward(x); // [B, G/2, 128, 128]
        let x = self.upsample4.forward(x); // [B, G/4, 256, 256]
        StageOutput {
            image: image_tanh(self.img.forward(x)), // [B, 3, 256, 256]
            mu: condition.mu,
            logvar: condition.logvar,
        }
    }
}

/// Stage-II discriminator (`STAGE2_D`): 256x256 -> 4x4x(32F) -> 3x3 convs to 4x4x(8F);
/// conditional and unconditional logits.
#[derive(Module, Debug)]
pub struct StageIIDiscriminator {
    pub encode_img: DownPath,
    pub narrow1: Conv2d,
    pub narrow1_bn: BatchNorm,
    pub narrow2: Conv2d,
    pub narrow2_bn: BatchNorm,
    pub embed_text: TextEmbedding,
    pub get_cond_logits: ConditionalLogits,
    pub get_uncond_logits: Conv2d,
}

/// Either stage's discriminator: image features, the compressed text, the conditional logits
/// and (Stage-II only) the unconditional ones. Training reads both stages through it.
pub trait StageDiscriminator {
    /// An image `[B, 3, S, S]` -> features `[B, 8F, 4, 4]`.
    fn encode(&self, image: Tensor<4>) -> Tensor<4>;
    /// The condition the logit heads read: `[B, P]` -> `[B, C]`.
    fn condition(&self, text: Tensor<2>) -> Tensor<2>;
    /// Features and a condition -> conditional logits `[B]`.
    fn cond_logits(&self, features: Tensor<4>, condition: Tensor<2>) -> Tensor<1>;
    /// Features -> unconditional logits `[B]`, where the stage has them.
    fn uncond_logits(&self, features: Tensor<4>) -> Option<Tensor<1>>;
}

impl StageDiscriminator for StageIDiscriminator {
    /// `[B, 3, 64, 64]` -> `[B, 8F, 4, 4]`.
    fn encode(&self, image: Tensor<4>) -> Tensor<4> {
        self.encode_img.forward(image)
    }
    fn condition(&self, text: Tensor<2>) -> Tensor<2> {
        self.embed_text.forward(text)
    }
    fn cond_logits(&self, features: Tensor<4>, condition: Tensor<2>) -> Tensor<1> {
        self.get_cond_logits.forward(features, condition)
    }
    /// Stage-I has none.
    fn uncond_logits(&self, _features: Tensor<4>) -> Option<Tensor<1>> {
        None
    }
}

impl StageDiscriminator for StageIIDiscriminator {
    /// `[B, 3, 256, 256]` -> `[B, 8F, 4, 4]`.
    fn encode(&self, image: Tensor<4>) -> Tensor<4> {
        let x = self.encode_img.forward(image); // [B, 32F, 4, 4]
        let x = leaky_relu(self.narrow1_bn.forward(self.narrow1.forward(x)), LEAK); // [B, 16F, 4, 4]
        leaky_relu(self.narrow2_bn.forward(self.narrow2.forward(x)), LEAK) // [B, 8F, 4, 4]
    }
    fn condition(&self, text: Tensor<2>) -> Tensor<2> {
        self.embed_text.forward(text)
    }
    fn cond_logits(&self, features: Tensor<4>, condition: Tensor<2>) -> Tensor<1> {
        self.get_cond_logits.forward(features, condition)
    }
    fn uncond_logits(&self, features: Tensor<4>) -> Option<Tensor<1>> {
        let [b, ..] = features.dims();
        Some(self.get_uncond_logits.forward(features).reshape([b]))
    }
}

/// Discriminator logits of one stage for the three pairs of the matching-aware loss, and
/// (Stage-II) the unconditional logits of real and generated images.
pub struct MatchingLogits {
    pub real_right: Tensor<1>,
    pub real_wrong: Tensor<1>,
    pub fake_right: Tensor<1>,
    /// `(real, fake)` unconditional logits.
    pub uncond: Option<(Tensor<1>, Tensor<1>)>,
}

/// A stage's discriminator objective and its conditional terms (the authors' trainer logs them
/// as `errD_real`, `errD_wrong` and `errD_fake`): whether D tells matching from mismatched
/// captions shows in `wrong`, which the total alone hides.
pub struct DiscriminatorLoss {
    pub total: Tensor<1>,
    /// Real image, its caption: BCE against 1.
    pub real: Tensor<1>,
    /// Real image, another image's caption: BCE against 0.
    pub wrong: Tensor<1>,
    /// Generated image, its caption: BCE against 0.
    pub fake: Tensor<1>,
}

/// The authors' `compute_discriminator_loss`: without unconditional logits
/// `real + (fake + wrong) / 2`; with them `(real + uncond_real) / 2 + (fake + wrong +
/// uncond_fake) / 3`.
pub fn discriminator_loss(logits: MatchingLogits, loss: AdversarialLoss) -> DiscriminatorLoss {
    let real = loss.real(logits.real_right);
    let wrong = loss.fake(logits.real_wrong);
    let fake = loss.fake(logits.fake_right);
    let total = match logits.uncond {
        None => real.clone() + (fake.clone() + wrong.clone()).mul_scalar(0.5),
        Some((uncond_real, uncond_fake)) => {
            (real.clone() + loss.real(uncond_real)).mul_scalar(0.5)
                + (fake.clone() + wrong.clone() + loss.fake(uncond_fake)).mul_scalar(1.0 / 3.0)
        }
    };
    DiscriminatorLoss {
        total,
        real,
        wrong,
        fake,
    }
}

/// The authors' `compute_generator_loss` plus the CA term: fool D on the right condition (and
/// unconditionally, Stage-II), plus `kl_weight` times [`kl_loss`].
pub fn generator_loss(
    fake_right: Tensor<1>,
    uncond_fake: Option<Tensor<1>>,
    kl: Tensor<1>,
    kl_weight: f32,
    loss: AdversarialLoss,
) -> Tensor<1> {
    let mut total = loss.generator(fake_right);
    if let Some(logits) = uncond_fake {
        total = total + loss.generator(logits);
    }
    total + kl.mul_scalar(kl_weight)
}

/// The random inputs of one image, split from one draw of [`StackGanConfig::noise_width`]
/// values per row: `(z [B, Z], Stage-I eps [B, C], Stage-II eps [B, C])`.
pub fn split_noise(noise: Tensor<2>, config: &StackGanConfig) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let [b, _] = noise.dims();
    let (z, c) = (config.noise_dim, config.condition_dim);
    (
        noise.clone().slice([0..b, 0..z]),
        noise.clone().slice([0..b, z..z + c]),
        noise.slice([0..b, z + c..z + 2 * c]),
    )
}

/// Both generators, as a bundle ships them.
#[derive(Module, Debug)]
pub struct StackGanGenerators {
    pub stage1: StageIGenerator,
    pub stage2: StageIIGenerator,
}

impl StackGanGenerators {
    /// Stage-I (64 px) and Stage-II (256 px) images for `text` `[B, P]` and `noise`
    /// `[B, noise_width]` (see [`split_noise`]).
    pub fn forward(
        &self,
        text: Tensor<2>,
        noise: Tensor<2>,
        config: &StackGanConfig,
    ) -> (Tensor<4>, Tensor<4>) {
        let (z, eps1, eps2) = split_noise(noise, config);
        let low = self.stage1.forward(text.clone(), z, eps1).image;
        let high = self.stage2.forward(low.clone(), text, eps2).image;
        (low, high)
    }
}

/// StackGAN draws in two stages: Stage-I at 64 px from the caption, then Stage-II at 256 px
/// from Stage-I's image and the caption, each with its own CA draw (see [`split_noise`]).
impl Stages for StackGanBundle {
    fn family(&self) -> &'static str {
        "StackGAN"
    }

    fn stage_count(&self) -> usize {
        2
    }

    fn noise_width(&self) -> usize {
        self.gan_config.noise_width()
    }

    fn stage_label(&self, index: usize) -> String {
        if index == 0 {
            "Stage-I 64 px"
        } else {
            "Stage-II 256 px"
        }
        .to_string()
    }

    fn stage(
        &self,
        index: usize,
        inputs: &StageInputs,
        previous: Option<&StageImages>,
    ) -> Result<StageImages, GenerateError> {
        let (z, eps1, eps2) = split_noise(inputs.noise.clone(), &self.gan_config);
        let generators = &self.weights.generators;
        let text = inputs.text.clone();
        match (index, previous) {
            (0, _) => Ok(StageImages::plain(
                self.stage_label(0),
                generators.stage1.forward(text, z, eps1).image,
            )),
            (1, Some(stage1)) => Ok(StageImages::plain(
                self.stage_label(1),
                generators
                    .stage2
                    .forward(stage1.images.clone(), text, eps2)
                    .image,
            )),
            (1, None) => Err(GenerateError::MissingPreviousStage {
                family: self.family(),
                index,
            }),
            _ => Err(GenerateError::NoSuchStage {
                family: self.family(),
                index,
                count: self.stage_count(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{device, values};
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn ca_samples_have_the_predicted_mean_and_variance() {
        let config = StackGanConfig::small(8).with_condition_dim(4);
        let g = config.init_stage1_generator(&device());
        let text = Tensor::<2>::random([1, 8], Distribution::Normal(0.0, 1.0), &device());
        let (mu, logvar) = g.ca_net.encode(text.clone());
        let (mu, var) = (values(mu), values(logvar.exp()));
        let n = 20_000;
        let eps = Tensor::<2>::random([n, 4], Distribution::Normal(0.0, 1.0), &device());
        let c = g.ca_net.forward(text.repeat_dim(0, n), eps).code;
        let c = values(c);
        for k in 0..4 {
            let column: Vec<f32> = (0..n).map(|i| c[i * 4 + k]).collect();
            let mean = column.iter().sum::<f32>() / n as f32;
            let v = column.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
            // Standard error of the mean sqrt(var / n), of the variance ~ var sqrt(2 / n).
            assert!(
                (mean - mu[k]).abs() < 5.0 * (var[k] / n as f32).sqrt(),
                "{k}: {mean} vs {}",
                mu[k]
            );
            assert!(
                (v - var[k]).abs() < 5.0 * var[k] * (2.0 / n as f32).sqrt(),
                "{k}: {v} vs {}",
                var[k]
            );
        }
    }

    #[test]
    fn stages_have_the_authors_shapes() {
        let config = StackGanConfig::small(16);
        let d = device();
        let g1 = config.init_stage1_generator(&d);
        let g2 = config.init_stage2_generator(&d);
        let d1 = config.init_stage1_discriminator(&d);
        let d2 = config.init_stage2_discriminator(&d);
        let text = Tensor::<2>::random([2, 16], Distribution::Normal(0.0, 1.0), &d);
        let noise = Tensor::<2>::random(
            [2, config.noise_width()],
            Distribution::Normal(0.0, 1.0),
            &d,
        );
        let generators = StackGanGenerators {
            stage1: g1,
            stage2: g2,
        };
        let (low, high) = generators.forward(text.clone(), noise, &config);
        assert_eq!(low.dims(), [2, 3, 64, 64]);
        assert_eq!(high.dims(), [2, 3, 256, 256]);
        assert!(
            values(high.clone())
                .iter()
                .all(|v| (-1.0..=1.0).contains(v))
        );
        let mu = d1.condition(text.clone());
        assert_eq!(mu.dims(), [2, config.condition_dim]);
        let f1 = d1.encode(low);
        assert_eq!(f1.dims(), [2, 8 * 16, 4, 4]);
        assert_eq!(d1.cond_logits(f1, mu.clone()).dims(), [2]);
        let f2 = d2.encode(high);
        assert_eq!(f2.dims(), [2, 8 * 16, 4, 4]);
        assert_eq!(d2.cond_logits(f2.clone(), mu).dims(), [2]);
        assert_eq!(d2.uncond_logits(f2).unwrap().dims(), [2]);
    }

    #[test]
    fn paper_sizes_match_the_authors_networks() {
        // Counted from STAGE1_G / STAGE2_G of the authors' model.py at GF_DIM 128, DF_DIM 64,
        // CONDITION_DIM 128, Z_DIM 100, R_NUM 2 with a 1024-value text embedding. burn counts a
        // batch norm's running mean and variance with its gamma and beta: 4 values a channel
        // (PyTorch's `parameters()` has 2, its `state_dict()` these 4 plus a counter).
        let config = StackGanConfig::paper(1024);
        let d = device();
        let bn = |o: usize| 4 * o;
        let ca = 1024 * 256 + 256;
        let fc = 228 * 16384 + bn(16384);
        let up = |i: usize, o: usize| i * o * 9 + bn(o);
        let g1 = ca + fc + up(1024, 512) + up(512, 256) + up(256, 128) + up(128, 64) + 64 * 3 * 9;
        assert_eq!(config.init_stage1_generator(&d).num_params(), g1);
        let encoder = 3 * 128 * 9 + 128 * 256 * 16 + bn(256) + 256 * 512 * 16 + bn(512);
        let joint = (128 + 512) * 512 * 9 + bn(512);
        let res = 2 * (2 * (512 * 512 * 9 + bn(512)));
        let ups = up(512, 256) + up(256, 128) + up(128, 64) + up(64, 32) + 32 * 3 * 9;
        assert_eq!(
            config.init_stage2_generator(&d).num_params(),
            ca + encoder + joint + res + ups
        );
    }

    #[test]
    fn nearest_upsampling_repeats_pixels() {
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device(),
        );
        assert_eq!(
            values(upsample_nearest2(x)),
            vec![
                1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0
            ]
        );
    }

    #[test]
    fn nearest_upsampling_gradient_sums_each_block() {
        // The gradient of every input pixel is the sum over its 2x2 copies.
        let d = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 1, 2, 3]),
            &d,
        )
        .require_grad();
        let weights = Tensor::<4>::from_data(
            TensorData::new((0..24).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 6]),
            &d,
        );
        let loss = (upsample_nearest2(x.clone()) * weights).sum();
        let grads = loss.backward();
        let grad = x.grad(&grads).unwrap();
        // Block of input (i, j): rows 2i, 2i+1 and columns 2j, 2j+1 of the 4x6 weights.
        let expected: Vec<f32> = (0..2)
            .flat_map(|i| {
                (0..3).map(move |j| {
                    let w = |r: usize, c: usize| (r * 6 + c) as f32;
                    w(2 * i, 2 * j)
                        + w(2 * i, 2 * j + 1)
                        + w(2 * i + 1, 2 * j)
                        + w(2 * i + 1, 2 * j + 1)
                })
            })
            .collect();
        assert_eq!(values(grad), expected);
    }

    #[test]
    fn losses_follow_the_authors_weighting() {
        let l = |v: f32| Tensor::<1>::from_data([v], &device());
        let bce = |x: f32, y: f32| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(y * s.ln() + (1.0 - y) * (1.0 - s).ln())
        };
        let stage1 = discriminator_loss(
            MatchingLogits {
                real_right: l(2.0),
                real_wrong: l(0.5),
                fake_right: l(-1.0),
                uncond: None,
            },
            AdversarialLoss::Logistic,
        );
        let expect = bce(2.0, 1.0) + 0.5 * (bce(-1.0, 0.0) + bce(0.5, 0.0));
        assert!((stage1.total.into_scalar::<f32>() - expect).abs() < 1e-6);
        assert!((stage1.wrong.into_scalar::<f32>() - bce(0.5, 0.0)).abs() < 1e-6);
        assert!((stage1.real.into_scalar::<f32>() - bce(2.0, 1.0)).abs() < 1e-6);
        assert!((stage1.fake.into_scalar::<f32>() - bce(-1.0, 0.0)).abs() < 1e-6);
        let stage2 = discriminator_loss(
            MatchingLogits {
                real_right: l(2.0),
                real_wrong: l(0.5),
                fake_right: l(-1.0),
                uncond: Some((l(1.5), l(-0.3))),
            },
            AdversarialLoss::Logistic,
        )
        .total
        .into_scalar::<f32>();
        let expect = (bce(2.0, 1.0) + bce(1.5, 1.0)) / 2.0
            + (bce(-1.0, 0.0) + bce(0.5, 0.0) + bce(-0.3, 0.0)) / 3.0;
        assert!((stage2 - expect).abs() < 1e-6);
        let g = generator_loss(
            l(-1.0),
            Some(l(0.2)),
            l(0.3),
            2.0,
            AdversarialLoss::Logistic,
        )
        .into_scalar::<f32>();
        assert!((g - (bce(-1.0, 1.0) + bce(0.2, 1.0) + 0.6)).abs() < 1e-6);
    }
}
