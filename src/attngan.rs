//! AttnGAN (Xu et al., "AttnGAN: Fine-Grained Text to Image Generation with Attentional
//! Generative Adversarial Networks", CVPR 2018): generator and discriminators.
//!
//! Conditioning augmentation with a GLU turns the sentence feature into a condition c; the
//! first stage draws 64x64 features from [c, z]; each later stage lets every image sub-region
//! attend over the caption's words (padding words masked), joins the word-context with the
//! features, refines them with residual blocks and doubles the size (128, then 256). Every
//! stage has an image head and its own discriminator, with an unconditional logit and a
//! conditional one that sees the sentence feature replicated 4x4.
//!
//! Module structure, field names and tensor shapes follow the authors' PyTorch code
//! (taoxugit/AttnGAN `code/model.py`: `CA_NET`, `INIT_STAGE_G`, `NEXT_STAGE_G`, `GET_IMAGE_G`,
//! `G_NET`, `upBlock`, `ResBlock`, `D_GET_LOGITS`, `D_NET64/128/256`, `downBlock`,
//! `Block3x3_leakRelu`, `encode_image_by_16times`; `code/GlobalAttention.py`:
//! `GlobalAttentionGeneral`). Their `nn.Sequential` children are numbered; here they are named
//! fields, and [`GENERATOR_KEYS`] / [`DISCRIMINATOR_KEYS`] rename the numbered keys of
//! their checkpoints onto these modules (tested against every key of `G_NET` at the birds
//! settings). `Block3x3_relu` exists in their file but no network uses it, so it has no type here.
//!
//! Differences from their code, each said where it happens:
//! - [`WordAttention`] masks padding words per sample; theirs repeats the mask in an order that
//!   gives samples each other's masks when the batch has more than one caption
//!   ([`AttnGanConfig::authors_mask_order`] reproduces it).
//! - Logit heads return logits and the losses use BCE-with-logits (their sigmoid + BCE).
//! - Weights start from a Gaussian with the scale of their orthogonal init, not an exact
//!   orthogonal matrix (see `orthogonal_scale`).
//!
//! Dimension letters: `B` batch, `Z` noise (100), `P` sentence feature (256, the authors'
//! `nef`), `E` word feature (256), `T` words, `C` condition (100), `G` = ngf (32), `F` = ndf
//! (64), `H`, `W` a stage's feature size, `N` = H x W sub-regions.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::store::{PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::TensorData;
use burn::tensor::activation::{glu, leaky_relu, softmax};

use crate::bundle::AttnGanBundle;
use crate::generate::{GenerateError, StageImages, StageInputs, Stages};
use crate::key_map::{Direction, KeyTable, remapping};
use crate::layers::{
    AdversarialLoss, CaGate, Condition, ConditioningAugmentation, batch_norm, image_tanh, kl_loss,
    replicate, upsample_nearest2,
};

/// Slope of the discriminators' LeakyReLUs.
const LEAK: f64 = 0.2;

/// Score given to padding words before the softmax over words: finite (no NaN in gradients),
/// yet `exp` of it is exactly zero in f32, so the weights equal the authors' `-inf` fill.
const MASKED: f32 = -1e9;

/// Weight of the DAMSM term in the generator loss (`TRAIN.SMOOTH.LAMBDA`: 5 for birds, 50 for
/// COCO). The training code adds `DAMSM_LAMBDA_BIRDS * damsm_loss(..).total()` to
/// [`generator_loss`]; see there.
pub const DAMSM_LAMBDA_BIRDS: f32 = 5.0;

/// Sizes of the generator and the discriminators. Presets: [`AttnGanConfig::birds`] (the
/// authors' `cfg/bird_attn2.yml`) and [`AttnGanConfig::small`] (trains on two CPU cores).
#[derive(Config, Debug)]
pub struct AttnGanConfig {
    /// Width of the sentence and word features (`TEXT.EMBEDDING_DIM`: 256, DAMSM's).
    #[config(default = 256)]
    pub text_dim: usize,
    /// Width of the CA condition c (`GAN.CONDITION_DIM`: 100).
    #[config(default = 100)]
    pub condition_dim: usize,
    /// Noise width (`GAN.Z_DIM`: 100).
    #[config(default = 100)]
    pub noise_dim: usize,
    /// `GAN.GF_DIM` (32): the first stage's 4x4 map has 16 times this many channels, every
    /// stage's 64/128/256 features this many.
    #[config(default = 32)]
    pub ngf: usize,
    /// `GAN.DF_DIM` (64): the discriminators' 4x4 features have 8 times this many channels.
    #[config(default = 64)]
    pub ndf: usize,
    /// Residual blocks in each later stage (`GAN.R_NUM`: 2).
    #[config(default = 2)]
    pub residual_blocks: usize,
    /// Stages (`TREE.BRANCH_NUM`: 3, i.e. 64, 128 and 256 px), 1 to 3.
    #[config(default = 3)]
    pub branch_num: usize,
    /// Mask padding words in the authors' order (`mask.repeat(queryL, 1)` against attention
    /// rows laid out batch-major), which hands sample `b`'s region `q` the mask of sample
    /// `(b N + q) mod B`. Off (default): each sample gets its own mask. On only to reproduce
    /// their outputs bit for bit.
    #[config(default = false)]
    pub authors_mask_order: bool,
    /// A factor on the sentence feature before CA (added, as StackGAN's
    /// [`crate::stackgan::StackGanConfig::text_scale`]; 1 is the authors' network). DAMSM's
    /// sentence features spread about 0.25 per value, so with CA's fc at its small initial
    /// weights the condition mean barely moves between captions while CA's noise stays near 1:
    /// in the shipped small model after 2.6 epochs two captions' means lay 0.13 times as far
    /// apart as two draws of one caption, and the 64 px stage, which reads the caption only
    /// through CA, drew nearly the same bird for every caption
    /// (`train/examples/stage1_caption_effect.rs`). `None` (what bundles and checkpoints
    /// written before it read as) is 1.
    #[config(default = "None")]
    pub text_scale: Option<f32>,
}

impl AttnGanConfig {
    /// The authors' birds settings (`cfg/bird_attn2.yml`): EMBEDDING_DIM 256, CONDITION_DIM
    /// 100, Z_DIM 100, GF_DIM 32, DF_DIM 64, R_NUM 2, BRANCH_NUM 3.
    pub fn birds() -> Self {
        Self::new()
    }

    /// Half the generator width and a quarter of the discriminators' (ngf 16, ndf 16), one
    /// residual block per stage.
    pub fn small() -> Self {
        Self::new()
            .with_ngf(16)
            .with_ndf(16)
            .with_residual_blocks(1)
    }

    /// Checks the sizes every block can be built with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.ngf == 0 || self.ndf == 0 {
            return Err(format!(
                "ngf and ndf must be positive, got {} and {}",
                self.ngf, self.ndf
            ));
        }
        if self.text_dim == 0 || self.condition_dim == 0 || self.noise_dim == 0 {
            return Err(format!(
                "text_dim, condition_dim and noise_dim must be positive, got {}, {} and {}",
                self.text_dim, self.condition_dim, self.noise_dim
            ));
        }
        if !(1..=3).contains(&self.branch_num) {
            return Err(format!(
                "branch_num must be 1, 2 or 3 (64, 128, 256 px), got {}",
                self.branch_num
            ));
        }
        let text_scale = self.ca_text_scale();
        if !(text_scale.is_finite() && text_scale > 0.0) {
            return Err(format!(
                "text_scale must be a positive number, got {text_scale}"
            ));
        }
        Ok(())
    }

    /// The factor on the sentence feature before CA ([`AttnGanConfig::text_scale`]).
    pub fn ca_text_scale(&self) -> f32 {
        self.text_scale.unwrap_or(1.0)
    }

    fn checked(&self) {
        if let Err(e) = self.validate() {
            panic!("invalid AttnGAN config: {e}");
        }
    }

    pub fn init_generator(&self, device: &Device) -> AttnGanGenerator {
        self.checked();
        let g = self.ngf;
        let next = |stage: usize| {
            (self.branch_num > stage).then(|| NextStage {
                att: WordAttention {
                    conv_context: conv_layer(self.text_dim, g, 1, 1, 0, device),
                    authors_mask_order: self.authors_mask_order,
                },
                residual: (0..self.residual_blocks)
                    .map(|_| GluResBlock::new(2 * g, device))
                    .collect(),
                upsample: GluUpBlock::new(2 * g, g, device),
            })
        };
        let head = |stage: usize| (self.branch_num > stage).then(|| ImageHead::new(g, device));
        let h = 16 * g; // INIT_STAGE_G's own `ngf`
        AttnGanGenerator {
            ca_net: ConditioningAugmentation {
                fc: linear(self.text_dim, 4 * self.condition_dim, true, device),
                text_scale: self.ca_text_scale(),
                gate: CaGate::Glu,
            },
            h_net1: InitStage {
                fc: linear(
                    self.condition_dim + self.noise_dim,
                    2 * 16 * h,
                    false,
                    device,
                ),
                fc_bn: batch_norm(2 * 16 * h, device),
                upsample1: GluUpBlock::new(h, h / 2, device),
                upsample2: GluUpBlock::new(h / 2, h / 4, device),
                upsample3: GluUpBlock::new(h / 4, h / 8, device),
                upsample4: GluUpBlock::new(h / 8, h / 16, device),
            },
            img_net1: ImageHead::new(g, device),
            h_net2: next(1),
            img_net2: head(1),
            h_net3: next(2),
            img_net3: head(2),
        }
    }

    /// `D_NET64`.
    pub fn init_d_net64(&self, device: &Device) -> DNet64 {
        self.checked();
        DNet64 {
            img_code_s16: ImageEncoder16::new(self.ndf, device),
            uncond_dnet: DGetLogits::new(self.ndf, None, device),
            cond_dnet: DGetLogits::new(self.ndf, Some(self.text_dim), device),
        }
    }

    /// `D_NET128`.
    pub fn init_d_net128(&self, device: &Device) -> DNet128 {
        self.checked();
        let f = self.ndf;
        DNet128 {
            img_code_s16: ImageEncoder16::new(f, device),
            img_code_s32: DownBlock::new(8 * f, 16 * f, device),
            img_code_s32_1: LeakyBlock3x3::new(16 * f, 8 * f, device),
            uncond_dnet: DGetLogits::new(f, None, device),
            cond_dnet: DGetLogits::new(f, Some(self.text_dim), device),
        }
    }

    /// `D_NET256`.
    pub fn init_d_net256(&self, device: &Device) -> DNet256 {
        self.checked();
        let f = self.ndf;
        DNet256 {
            img_code_s16: ImageEncoder16::new(f, device),
            img_code_s32: DownBlock::new(8 * f, 16 * f, device),
            img_code_s64: DownBlock::new(16 * f, 32 * f, device),
            img_code_s64_1: LeakyBlock3x3::new(32 * f, 16 * f, device),
            img_code_s64_2: LeakyBlock3x3::new(16 * f, 8 * f, device),
            uncond_dnet: DGetLogits::new(f, None, device),
            cond_dnet: DGetLogits::new(f, Some(self.text_dim), device),
        }
    }

    /// One discriminator per stage (the authors' `netsD`).
    pub fn init_discriminators(&self, device: &Device) -> AttnGanDiscriminators {
        AttnGanDiscriminators {
            d_net64: self.init_d_net64(device),
            d_net128: (self.branch_num > 1).then(|| self.init_d_net128(device)),
            d_net256: (self.branch_num > 2).then(|| self.init_d_net256(device)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Initialisation and layer helpers

/// Stand-in for the authors' `weights_init`, which draws convolution and linear weights as
/// orthogonal matrices (gain 1, `nn.init.orthogonal_` on the weight flattened to
/// `[out, in k k]`): rows (or columns, whichever are fewer) of unit norm, so each entry has
/// variance `1 / max(rows, cols)`. This draws a Gaussian with that variance instead: burn's
/// `Initializer::Orthogonal` builds a full `max x max` Q (1 GB for `h_net1.fc`, far more for
/// `D_NET256`) and its QR is too slow on a CPU. Every weight followed by batch norm is
/// indifferent to the scale anyway; the others (CA, attention projection, image heads, first
/// discriminator conv, logits) start at the authors' scale.
fn orthogonal_scale(rows: usize, cols: usize) -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 1.0 / (rows.max(cols) as f64).sqrt(),
    }
}

/// Square-kernel convolution without bias (all of the authors' but the logit heads).
fn conv_layer(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .with_initializer(orthogonal_scale(output, input * kernel * kernel))
        .init(device)
}

/// The authors' `conv3x3`: 3x3, stride 1, padding 1, no bias.
fn conv3x3(input: usize, output: usize, device: &Device) -> Conv2d {
    conv_layer(input, output, 3, 1, 1, device)
}

/// Fully connected layer; the bias (when there is one) starts at zero as the authors'.
fn linear(input: usize, output: usize, bias: bool, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(input, output)
        .with_bias(bias)
        .with_initializer(Initializer::Zeros)
        .init(device);
    // burn stores the weight as [in, out]; PyTorch as [out, in].
    layer.weight = orthogonal_scale(output, input).init([input, output], device);
    layer
}

/// Padding positions of captions with these lengths in a batch `max_words` wide: `[B, T]`,
/// true where the word is padding (the authors' `mask = captions == 0`).
pub fn padding_mask(lengths: &[usize], max_words: usize, device: &Device) -> Tensor<2, Bool> {
    let padding: Vec<bool> = lengths
        .iter()
        .flat_map(|&len| (0..max_words).map(move |t| t >= len))
        .collect();
    Tensor::from_data(TensorData::new(padding, [lengths.len(), max_words]), device)
}

// ---------------------------------------------------------------------------------------------
// Generator

/// The authors' `upBlock`: nearest x2, 3x3 conv to twice `output`, batch norm, GLU
/// (`Sequential` children 1 and 2 are `conv` and `bn`).
#[derive(Module, Debug)]
pub struct GluUpBlock {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl GluUpBlock {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(input, 2 * output, device),
            bn: batch_norm(2 * output, device),
        }
    }

    /// `[B, in, H, W]` -> `[B, out, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        glu(self.bn.forward(self.conv.forward(upsample_nearest2(x))), 1)
    }
}

/// The authors' `ResBlock` (`block.0`, `.1`, `.3`, `.4`): 3x3 conv to twice the channels,
/// batch norm, GLU, 3x3 conv, batch norm, plus the input; no activation after the sum.
#[derive(Module, Debug)]
pub struct GluResBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
}

impl GluResBlock {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv1: conv3x3(channels, 2 * channels, device),
            bn1: batch_norm(2 * channels, device),
            conv2: conv3x3(channels, channels, device),
            bn2: batch_norm(channels, device),
        }
    }

    /// `[B, K, H, W]` -> `[B, K, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = glu(self.bn1.forward(self.conv1.forward(x.clone())), 1); // [B, K, H, W]
        x + self.bn2.forward(self.conv2.forward(h))
    }
}

/// `INIT_STAGE_G` with the authors' `ngf` = 16G: [c, z] -> fully connected to 2 x 16 x 16G,
/// batch norm, GLU -> 4x4x16G -> four GLU up-blocks -> 64x64xG (`fc.0`, `fc.1` are `fc`,
/// `fc_bn`).
#[derive(Module, Debug)]
pub struct InitStage {
    pub fc: Linear,
    pub fc_bn: BatchNorm,
    pub upsample1: GluUpBlock,
    pub upsample2: GluUpBlock,
    pub upsample3: GluUpBlock,
    pub upsample4: GluUpBlock,
}

impl InitStage {
    /// condition `[B, C]`, noise `[B, Z]` -> `[B, G, 64, 64]`.
    pub fn forward(&self, condition: Tensor<2>, noise: Tensor<2>) -> Tensor<4> {
        let x = Tensor::cat(vec![condition, noise], 1); // [B, C + Z], c first as the authors
        let x = glu(self.fc_bn.forward(self.fc.forward(x)), 1); // [B, 16 x 16G]
        let [b, width] = x.dims();
        let x = x.reshape([b, width / 16, 4, 4]); // [B, 16G, 4, 4]
        let x = self.upsample1.forward(x); // [B, 8G, 8, 8]
        let x = self.upsample2.forward(x); // [B, 4G, 16, 16]
        let x = self.upsample3.forward(x); // [B, 2G, 32, 32]
        self.upsample4.forward(x) // [B, G, 64, 64]
    }
}

/// `GlobalAttentionGeneral` (the paper's F^attn, Eq. 2): the words projected to the image
/// feature width by a 1x1 conv; for each sub-region a softmax over the words (padding masked)
/// of the dot products; the word-context of the region is the weighted sum of the projected
/// words.
#[derive(Module, Debug)]
pub struct WordAttention {
    pub conv_context: Conv2d,
    /// [`AttnGanConfig::authors_mask_order`] (set from the config, not a weight).
    #[module(skip)]
    pub authors_mask_order: bool,
}

impl WordAttention {
    /// # Shapes
    /// - hidden (one query per sub-region): `[B, G, H, W]`, words: `[B, E, T]`, padding:
    ///   `[B, T]`, true at padding words ([`padding_mask`])
    /// - returns the word-context `[B, G, H, W]` and the attention maps `[B, T, H, W]`, which
    ///   sum to one over `T` at every region
    pub fn forward(
        &self,
        hidden: Tensor<4>,
        words: Tensor<3>,
        padding: Tensor<2, Bool>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, g, h, w] = hidden.dims();
        let t = words.dims()[2];
        let source = self.project_words(words, g);
        let attention = self.attend(hidden, source.clone(), padding);
        let context = source.matmul(attention.clone()).reshape([b, g, h, w]);
        (context, attention.reshape([b, t, h, w]))
    }

    /// The words in the image features' space: the 1x1 conv.
    ///
    /// # Shapes
    /// - words: `[B, E, T]` -> `[B, G, T]` for `width` = G
    pub fn project_words(&self, words: Tensor<3>, width: usize) -> Tensor<3> {
        let [b, e, t] = words.dims();
        self.conv_context
            .forward(words.reshape([b, e, t, 1]))
            .reshape([b, width, t])
    }

    /// Each sub-region's softmax over the projected words, padding masked.
    ///
    /// # Shapes
    /// - hidden: `[B, G, H, W]`, source ([`Self::project_words`]): `[B, G, T]`, padding:
    ///   `[B, T]` -> attention `[B, T, H W]`
    pub fn attend(
        &self,
        hidden: Tensor<4>,
        source: Tensor<3>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let [b, g, h, w] = hidden.dims();
        let t = source.dims()[2];
        let n = h * w;
        let target = hidden.reshape([b, g, n]).swap_dims(1, 2); // [B, N, G]
        let scores = target.matmul(source); // [B, N, T]
        let mask = if self.authors_mask_order {
            // torch's `mask.repeat(queryL, 1)`: row r of the [N B, T] result is sample r mod B,
            // laid against attention rows r = b N + q.
            padding.repeat_dim(0, n).reshape([b, n, t])
        } else {
            padding.unsqueeze_dim::<3>(1).expand([b, n, t])
        };
        softmax(scores.mask_fill(mask, MASKED), 2).swap_dims(1, 2)
    }
}

/// `NEXT_STAGE_G`: word attention on the previous stage's features, [features, word-context]
/// -> residual blocks -> GLU up-block. (The authors pass c to it too, unused.)
#[derive(Module, Debug)]
pub struct NextStage {
    pub att: WordAttention,
    pub residual: Vec<GluResBlock>,
    pub upsample: GluUpBlock,
}

impl NextStage {
    /// hidden `[B, G, H, W]`, words `[B, E, T]`, padding `[B, T]` -> (`[B, G, 2H, 2W]`,
    /// attention `[B, T, H, W]`).
    pub fn forward(
        &self,
        hidden: Tensor<4>,
        words: Tensor<3>,
        padding: Tensor<2, Bool>,
    ) -> (Tensor<4>, Tensor<4>) {
        let (context, attention) = self.att.forward(hidden.clone(), words, padding);
        let mut x = Tensor::cat(vec![hidden, context], 1); // [B, 2G, H, W]
        for block in &self.residual {
            x = block.forward(x);
        }
        (self.upsample.forward(x), attention) // [B, G, 2H, 2W]
    }
}

/// `GET_IMAGE_G`: 3x3 conv to RGB + tanh (`img.0` is `img`).
#[derive(Module, Debug)]
pub struct ImageHead {
    pub img: Conv2d,
}

impl ImageHead {
    fn new(ngf: usize, device: &Device) -> Self {
        Self {
            img: conv3x3(ngf, 3, device),
        }
    }

    /// `[B, G, S, S]` -> `[B, 3, S, S]` in [-1, 1].
    pub fn forward(&self, hidden: Tensor<4>) -> Tensor<4> {
        image_tanh(self.img.forward(hidden))
    }
}

/// `G_NET`: CA, the first stage and up to two attention stages, each with its image head.
#[derive(Module, Debug)]
pub struct AttnGanGenerator {
    pub ca_net: ConditioningAugmentation,
    pub h_net1: InitStage,
    pub img_net1: ImageHead,
    pub h_net2: Option<NextStage>,
    pub img_net2: Option<ImageHead>,
    pub h_net3: Option<NextStage>,
    pub img_net3: Option<ImageHead>,
}

/// Everything one generator pass gives.
#[derive(Debug, Clone)]
pub struct AttnGanOutput {
    /// One image per stage, smallest first: `[B, 3, 64, 64]`, `[B, 3, 128, 128]`,
    /// `[B, 3, 256, 256]`.
    pub images: Vec<Tensor<4>>,
    /// Word attention of stages 2 and 3: `[B, T, 64, 64]`, `[B, T, 128, 128]`.
    pub attention: Vec<Tensor<4>>,
    /// CA's Gaussian, `[B, C]` each, for [`kl_loss`].
    pub mu: Tensor<2>,
    pub logvar: Tensor<2>,
}

impl AttnGanGenerator {
    /// Number of stages (images) this generator draws.
    pub fn stages(&self) -> usize {
        1 + usize::from(self.h_net2.is_some()) + usize::from(self.h_net3.is_some())
    }

    /// CA on the sentence feature `[B, P]` with its draw `eps` `[B, C]`.
    pub fn condition(&self, sentence: Tensor<2>, eps: Tensor<2>) -> Condition {
        self.ca_net.forward(sentence, eps)
    }

    /// Stage 1: condition code `[B, C]` and noise `[B, Z]` -> (hidden `[B, G, 64, 64]`, image
    /// `[B, 3, 64, 64]`).
    pub fn init_stage(&self, condition: Tensor<2>, noise: Tensor<2>) -> (Tensor<4>, Tensor<4>) {
        let hidden = self.h_net1.forward(condition, noise);
        let image = self.img_net1.forward(hidden.clone());
        (hidden, image)
    }

    /// Stage `stage` (1 = `h_net2`, 128 px; 2 = `h_net3`, 256 px) on the previous stage's
    /// hidden `[B, G, S, S]`, words `[B, E, T]` and padding `[B, T]` -> (hidden
    /// `[B, G, 2S, 2S]`, image `[B, 3, 2S, 2S]`, attention `[B, T, S, S]`).
    pub fn next_stage(
        &self,
        stage: usize,
        hidden: Tensor<4>,
        words: Tensor<3>,
        padding: Tensor<2, Bool>,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let (net, head) = match stage {
            1 => (self.h_net2.as_ref(), self.img_net2.as_ref()),
            2 => (self.h_net3.as_ref(), self.img_net3.as_ref()),
            _ => (None, None),
        };
        let (Some(net), Some(head)) = (net, head) else {
            panic!(
                "stage {stage} does not exist: this generator has stages 0 to {}",
                self.stages() - 1
            );
        };
        let (hidden, attention) = net.forward(hidden, words, padding);
        let image = head.forward(hidden.clone());
        (hidden, image, attention)
    }

    /// The whole generator (`G_NET.forward`).
    ///
    /// # Shapes
    /// - sentence: `[B, P]`, words: `[B, E, T]`, padding: `[B, T]` (true at padding words,
    ///   [`padding_mask`]), noise: `[B, Z]`, eps (CA's draw): `[B, C]`
    /// - returns every stage's image, stages 2 and 3's attention, mu and logvar
    pub fn forward(
        &self,
        sentence: Tensor<2>,
        words: Tensor<3>,
        padding: Tensor<2, Bool>,
        noise: Tensor<2>,
        eps: Tensor<2>,
    ) -> AttnGanOutput {
        let condition = self.condition(sentence, eps);
        let (mut hidden, image) = self.init_stage(condition.code, noise);
        let mut images = vec![image];
        let mut attention = Vec::new();
        for stage in 1..self.stages() {
            let (next, image, maps) =
                self.next_stage(stage, hidden, words.clone(), padding.clone());
            hidden = next;
            images.push(image);
            attention.push(maps);
        }
        AttnGanOutput {
            images,
            attention,
            mu: condition.mu,
            logvar: condition.logvar,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Discriminators

/// `downBlock`: 4x4 conv, stride 2, batch norm, LeakyReLU 0.2 (`.0`, `.1`).
#[derive(Module, Debug)]
pub struct DownBlock {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl DownBlock {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            conv: conv_layer(input, output, 4, 2, 1, device),
            bn: batch_norm(output, device),
        }
    }

    /// `[B, in, S, S]` -> `[B, out, S/2, S/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        leaky_relu(self.bn.forward(self.conv.forward(x)), LEAK)
    }
}

/// `Block3x3_leakRelu`: 3x3 conv, batch norm, LeakyReLU 0.2 (`.0`, `.1`).
#[derive(Module, Debug)]
pub struct LeakyBlock3x3 {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl LeakyBlock3x3 {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(input, output, device),
            bn: batch_norm(output, device),
        }
    }

    /// `[B, in, S, S]` -> `[B, out, S, S]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        leaky_relu(self.bn.forward(self.conv.forward(x)), LEAK)
    }
}

/// `encode_image_by_16times`: four stride-2 4x4 convs with LeakyReLU 0.2, batch norm on all
/// but the first (`Sequential` children 0, 2-3, 5-6, 8-9).
#[derive(Module, Debug)]
pub struct ImageEncoder16 {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub conv4: Conv2d,
    pub bn4: BatchNorm,
}

impl ImageEncoder16 {
    fn new(ndf: usize, device: &Device) -> Self {
        let f = ndf;
        Self {
            conv1: conv_layer(3, f, 4, 2, 1, device),
            conv2: conv_layer(f, 2 * f, 4, 2, 1, device),
            bn2: batch_norm(2 * f, device),
            conv3: conv_layer(2 * f, 4 * f, 4, 2, 1, device),
            bn3: batch_norm(4 * f, device),
            conv4: conv_layer(4 * f, 8 * f, 4, 2, 1, device),
            bn4: batch_norm(8 * f, device),
        }
    }

    /// `[B, 3, S, S]` -> `[B, 8F, S/16, S/16]`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let leaky = |x| leaky_relu(x, LEAK);
        let x = leaky(self.conv1.forward(image)); // [B, F, S/2, S/2]
        let x = leaky(self.bn2.forward(self.conv2.forward(x))); // [B, 2F, S/4, S/4]
        let x = leaky(self.bn3.forward(self.conv3.forward(x))); // [B, 4F, S/8, S/8]
        leaky(self.bn4.forward(self.conv4.forward(x))) // [B, 8F, S/16, S/16]
    }
}

/// `D_GET_LOGITS`: with a condition (`bcondition`), the 4x4 image code joined with the
/// sentence feature replicated 4x4 goes through a 3x3 conv block (`jointConv`) first; then a
/// 4x4, stride-4 conv (with bias) to one logit (`outlogits.0`; their sigmoid is left to the
/// loss).
#[derive(Module, Debug)]
pub struct DGetLogits {
    pub joint_conv: Option<LeakyBlock3x3>,
    pub outlogits: Conv2d,
}

impl DGetLogits {
    fn new(ndf: usize, condition_dim: Option<usize>, device: &Device) -> Self {
        let width = 8 * ndf;
        // PyTorch's default bias init (uniform +-1/sqrt(fan_in), which `weights_init` leaves)
        // is burn's default initializer; the weight gets the orthogonal scale.
        let mut outlogits = Conv2dConfig::new([width, 1], [4, 4])
            .with_stride([4, 4])
            .init(device);
        outlogits.weight = orthogonal_scale(1, width * 16).init([1, width, 4, 4], device);
        Self {
            joint_conv: condition_dim.map(|c| LeakyBlock3x3::new(width + c, width, device)),
            outlogits,
        }
    }

    /// image code `[B, 8F, 4, 4]`, sentence feature `[B, P]` (ignored without `joint_conv`)
    /// -> logits `[B]`.
    pub fn forward(&self, code: Tensor<4>, condition: Option<Tensor<2>>) -> Tensor<1> {
        let [b, _, size, _] = code.dims();
        let x = match (&self.joint_conv, condition) {
            (Some(joint), Some(condition)) => {
                joint.forward(Tensor::cat(vec![code, replicate(condition, size)], 1)) // [B, 8F, 4, 4]
            }
            _ => code,
        };
        self.outlogits.forward(x).reshape([b]) // [B]
    }
}

/// `D_NET64`: 64x64 -> 4x4x8F.
#[derive(Module, Debug)]
pub struct DNet64 {
    pub img_code_s16: ImageEncoder16,
    pub uncond_dnet: DGetLogits,
    pub cond_dnet: DGetLogits,
}

impl DNet64 {
    /// `[B, 3, 64, 64]` -> `[B, 8F, 4, 4]`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        self.img_code_s16.forward(image)
    }
}

/// `D_NET128`: 128x128 -> 8x8x8F -> 4x4x16F -> 4x4x8F.
#[derive(Module, Debug)]
pub struct DNet128 {
    pub img_code_s16: ImageEncoder16,
    pub img_code_s32: DownBlock,
    pub img_code_s32_1: LeakyBlock3x3,
    pub uncond_dnet: DGetLogits,
    pub cond_dnet: DGetLogits,
}

impl DNet128 {
    /// `[B, 3, 128, 128]` -> `[B, 8F, 4, 4]`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let x = self.img_code_s16.forward(image); // [B, 8F, 8, 8]
        let x = self.img_code_s32.forward(x); // [B, 16F, 4, 4]
        self.img_code_s32_1.forward(x) // [B, 8F, 4, 4]
    }
}

/// `D_NET256`: 256x256 -> 16x16x8F -> 8x8x16F -> 4x4x32F -> 4x4x16F -> 4x4x8F.
#[derive(Module, Debug)]
pub struct DNet256 {
    pub img_code_s16: ImageEncoder16,
    pub img_code_s32: DownBlock,
    pub img_code_s64: DownBlock,
    pub img_code_s64_1: LeakyBlock3x3,
    pub img_code_s64_2: LeakyBlock3x3,
    pub uncond_dnet: DGetLogits,
    pub cond_dnet: DGetLogits,
}

impl DNet256 {
    /// `[B, 3, 256, 256]` -> `[B, 8F, 4, 4]`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let x = self.img_code_s16.forward(image); // [B, 8F, 16, 16]
        let x = self.img_code_s32.forward(x); // [B, 16F, 8, 8]
        let x = self.img_code_s64.forward(x); // [B, 32F, 4, 4]
        let x = self.img_code_s64_1.forward(x); // [B, 16F, 4, 4]
        self.img_code_s64_2.forward(x) // [B, 8F, 4, 4]
    }
}

/// The discriminators of every stage (the authors' `netsD`, saved by them as `netD0.pth`,
/// `netD1.pth`, `netD2.pth`: one per field here).
#[derive(Module, Debug)]
pub struct AttnGanDiscriminators {
    pub d_net64: DNet64,
    pub d_net128: Option<DNet128>,
    pub d_net256: Option<DNet256>,
}

/// One stage's discriminator logits for the authors' `discriminator_loss`, each `[B]` except
/// `cond_wrong` (`[B - 1]`).
pub struct StageLogits {
    /// Real image, its own sentence.
    pub cond_real: Tensor<1>,
    /// Real image `i` with the sentence of item `i + 1` (the authors' shifted pairs).
    pub cond_wrong: Tensor<1>,
    /// Generated image, its sentence.
    pub cond_fake: Tensor<1>,
    pub uncond_real: Tensor<1>,
    pub uncond_fake: Tensor<1>,
}

/// One stage's logits on generated images for the generator loss, each `[B]`.
pub struct FakeLogits {
    pub cond: Tensor<1>,
    pub uncond: Tensor<1>,
}

impl AttnGanDiscriminators {
    /// Number of stages with a discriminator.
    pub fn stages(&self) -> usize {
        1 + usize::from(self.d_net128.is_some()) + usize::from(self.d_net256.is_some())
    }

    /// Stage `stage`'s image code: `[B, 3, S, S]` -> `[B, 8F, 4, 4]` (S = 64, 128, 256).
    pub fn encode(&self, stage: usize, image: Tensor<4>) -> Tensor<4> {
        match (stage, &self.d_net128, &self.d_net256) {
            (0, _, _) => self.d_net64.forward(image),
            (1, Some(d), _) => d.forward(image),
            (2, _, Some(d)) => d.forward(image),
            _ => panic!(
                "stage {stage} has no discriminator: stages 0 to {}",
                self.stages() - 1
            ),
        }
    }

    /// Stage `stage`'s `(UNCOND_DNET, COND_DNET)`.
    pub fn heads(&self, stage: usize) -> (&DGetLogits, &DGetLogits) {
        match (stage, &self.d_net128, &self.d_net256) {
            (0, _, _) => (&self.d_net64.uncond_dnet, &self.d_net64.cond_dnet),
            (1, Some(d), _) => (&d.uncond_dnet, &d.cond_dnet),
            (2, _, Some(d)) => (&d.uncond_dnet, &d.cond_dnet),
            _ => panic!(
                "stage {stage} has no discriminator: stages 0 to {}",
                self.stages() - 1
            ),
        }
    }

    /// What the authors' `discriminator_loss` computes before its BCEs: real and generated
    /// images (the caller detaches `fake`) of stage `stage`, each `[B, 3, S, S]`, with their
    /// sentence features `[B, P]`. Real and generated images go through the network in separate
    /// calls, as theirs (batch norm sees each set alone). Needs B >= 2 for the wrong pairs.
    pub fn stage_logits(
        &self,
        stage: usize,
        real: Tensor<4>,
        fake: Tensor<4>,
        sentence: Tensor<2>,
    ) -> StageLogits {
        let real = self.encode(stage, real);
        let fake = self.encode(stage, fake);
        let [b, ..] = real.dims();
        assert!(
            b >= 2,
            "the mismatched pairs need a batch of at least 2, got {b}"
        );
        let (uncond, cond) = self.heads(stage);
        StageLogits {
            cond_real: cond.forward(real.clone(), Some(sentence.clone())),
            cond_fake: cond.forward(fake.clone(), Some(sentence.clone())),
            cond_wrong: cond.forward(
                real.clone().narrow(0, 0, b - 1),
                Some(sentence.narrow(0, 1, b - 1)),
            ),
            uncond_real: uncond.forward(real, None),
            uncond_fake: uncond.forward(fake, None),
        }
    }

    /// Stage `stage`'s conditional logits `[B]` of images `[B, 3, S, S]` with sentences
    /// `[B, P]` (what a gradient penalty on the real pairs differentiates).
    pub fn cond_logits(&self, stage: usize, image: Tensor<4>, sentence: Tensor<2>) -> Tensor<1> {
        let (_, cond) = self.heads(stage);
        cond.forward(self.encode(stage, image), Some(sentence))
    }

    /// What the authors' `generator_loss` reads from stage `stage`'s discriminator: generated
    /// images `[B, 3, S, S]` with their sentence features `[B, P]`.
    pub fn fake_logits(&self, stage: usize, fake: Tensor<4>, sentence: Tensor<2>) -> FakeLogits {
        let code = self.encode(stage, fake);
        let (uncond, cond) = self.heads(stage);
        FakeLogits {
            cond: cond.forward(code.clone(), Some(sentence)),
            uncond: uncond.forward(code, None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Losses

/// The authors' `discriminator_loss` for one stage (with the unconditional head, as every
/// AttnGAN discriminator has): `(uncond_real + cond_real) / 2 + (uncond_fake + cond_fake +
/// cond_wrong) / 3`, each a mean BCE, 1 for real and 0 for generated or mismatched. The total
/// discriminator loss is the sum over stages (`errD_total`).
pub fn discriminator_loss(logits: StageLogits, loss: AdversarialLoss) -> Tensor<1> {
    let real = loss.real(logits.uncond_real) + loss.real(logits.cond_real);
    let fake =
        loss.fake(logits.uncond_fake) + loss.fake(logits.cond_fake) + loss.fake(logits.cond_wrong);
    real.mul_scalar(0.5) + fake.mul_scalar(1.0 / 3.0)
}

/// One stage's adversarial term of the authors' `generator_loss`: unconditional +
/// conditional, both against the "real" label.
pub fn generator_stage_loss(logits: FakeLogits, loss: AdversarialLoss) -> Tensor<1> {
    loss.generator(logits.uncond) + loss.generator(logits.cond)
}

/// The generator loss without DAMSM: the adversarial terms of every stage summed, plus
/// `kl_weight` (the authors: 1) times CA's KL term ([`kl_loss`]).
///
/// The authors' total adds the DAMSM term on the last stage's images:
/// `lambda * (w_loss0 + w_loss1 + s_loss0 + s_loss1)`, with `lambda` =
/// [`DAMSM_LAMBDA_BIRDS`]; here that is `lambda * crate::damsm::damsm_loss(image, text,
/// Some(class_ids), gammas).total()`, with the DAMSM image features of the largest generated
/// image (Inception-v3 at 299 x 299, gradients flowing to the generator) and the same text
/// features that conditioned the generator. The training code adds it.
pub fn generator_loss(
    stages: Vec<FakeLogits>,
    mu: Tensor<2>,
    logvar: Tensor<2>,
    kl_weight: f32,
    loss: AdversarialLoss,
) -> Tensor<1> {
    let kl = kl_loss(mu, logvar).mul_scalar(kl_weight);
    stages
        .into_iter()
        .map(|stage| generator_stage_loss(stage, loss))
        .fold(kl, |total, stage| total + stage)
}

// ---------------------------------------------------------------------------------------------
// The authors' checkpoints

/// The authors' `G_NET` state dict (`netG_*.pth`, converted to safetensors) against this
/// module's paths ([`crate::key_map`]): their `nn.Sequential` children are numbered, here they
/// are named.
pub const GENERATOR_KEYS: KeyTable = &[
    ("^h_net1.fc.0.", "^h_net1.fc."),
    ("^h_net1.fc.1.", "^h_net1.fc_bn."),
    (".upsample{n}.1.", ".upsample{n}.conv."),
    (".upsample{n}.2.", ".upsample{n}.bn."),
    ("^img_net{n}.img.0.", "^img_net{n}.img."),
    (".block.0.", ".conv1."),
    (".block.1.", ".bn1."),
    (".block.3.", ".conv2."),
    (".block.4.", ".bn2."),
];

/// One of the authors' discriminators (`D_NET64/128/256` state dicts) against [`DNet64`] /
/// [`DNet128`] / [`DNet256`] paths.
pub const DISCRIMINATOR_KEYS: KeyTable = &[
    ("^img_code_s16.0.", "^img_code_s16.conv1."),
    ("^img_code_s16.2.", "^img_code_s16.conv2."),
    ("^img_code_s16.3.", "^img_code_s16.bn2."),
    ("^img_code_s16.5.", "^img_code_s16.conv3."),
    ("^img_code_s16.6.", "^img_code_s16.bn3."),
    ("^img_code_s16.8.", "^img_code_s16.conv4."),
    ("^img_code_s16.9.", "^img_code_s16.bn4."),
    ("^img_code_s{w}.0.", "^img_code_s{w}.conv."),
    ("^img_code_s{w}.1.", "^img_code_s{w}.bn."),
    ("^UNCOND_DNET.", "^uncond_dnet."),
    ("^COND_DNET.", "^cond_dnet."),
    (".jointConv.0.", ".joint_conv.conv."),
    (".jointConv.1.", ".joint_conv.bn."),
    (".outlogits.0.", ".outlogits."),
];

/// A safetensors store reading one of the authors' state dicts: their keys renamed by `keys`
/// ([`GENERATOR_KEYS`], [`DISCRIMINATOR_KEYS`]) and PyTorch layouts adapted (linear
/// weights transposed, batch norm `weight`/`bias` as `gamma`/`beta`). Their batch norms'
/// `num_batches_tracked` counters have no counterpart and come back as unused.
pub fn authors_store(bytes: Vec<u8>, keys: KeyTable) -> SafetensorsStore {
    remapping(keys, Direction::ToModule).into_iter().fold(
        SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter),
        |store, (from, to)| store.with_key_remapping(&from, &to),
    )
}

/// AttnGAN draws in `branch_num` stages: stage 1 at 64 px from CA's code of the sentence and
/// z, then each later stage at twice the size from the previous stage's features and its
/// attention over the caption's words.
impl Stages for AttnGanBundle {
    fn family(&self) -> &'static str {
        "AttnGAN"
    }

    fn stage_count(&self) -> usize {
        self.weights.generator.stages()
    }

    fn noise_width(&self) -> usize {
        self.gan_config.noise_dim + self.gan_config.condition_dim
    }

    fn stage_label(&self, index: usize) -> String {
        format!("Stage {} {} px", index + 1, 64 << index)
    }

    fn reads_words(&self) -> bool {
        true
    }

    fn stage(
        &self,
        index: usize,
        inputs: &StageInputs,
        previous: Option<&StageImages>,
    ) -> Result<StageImages, GenerateError> {
        let generator = &self.weights.generator;
        if index >= self.stage_count() {
            return Err(GenerateError::NoSuchStage {
                family: self.family(),
                index,
                count: self.stage_count(),
            });
        }
        let (hidden, images, attention) = if index == 0 {
            // z first, then CA's draw.
            let (z, c) = (self.gan_config.noise_dim, self.gan_config.condition_dim);
            let noise = inputs.noise.clone().narrow(1, 0, z);
            let eps = inputs.noise.clone().narrow(1, z, c);
            let condition = generator.condition(inputs.text.clone(), eps);
            let (hidden, images) = generator.init_stage(condition.code, noise);
            (hidden, images, None)
        } else {
            let hidden = previous.and_then(|p| p.hidden.clone()).ok_or(
                GenerateError::MissingPreviousStage {
                    family: self.family(),
                    index,
                },
            )?;
            let words = inputs.words.as_ref().ok_or(GenerateError::NeedsWords {
                family: self.family(),
            })?;
            let (hidden, images, attention) =
                generator.next_stage(index, hidden, words.features.clone(), words.padding.clone());
            (hidden, images, Some(attention))
        };
        Ok(StageImages {
            label: self.stage_label(index),
            images,
            attention,
            hidden: Some(hidden),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{device, values};
    use burn::store::ModuleSnapshot;
    use burn::tensor::Distribution;
    use safetensors::tensor::{Dtype, TensorView};

    /// Deterministic values in [-1, 1].
    fn wave(n: usize, frequency: f32, phase: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * frequency + phase).sin())
            .collect()
    }

    fn attention(e: usize, g: usize, authors_mask_order: bool) -> WordAttention {
        WordAttention {
            conv_context: conv_layer(e, g, 1, 1, 0, &device()),
            authors_mask_order,
        }
    }

    /// A config written before `text_scale` (bundles, checkpoints) reads as the authors' CA;
    /// a set one survives its JSON and reaches CA.
    #[test]
    fn text_scale_defaults_to_one_and_reaches_ca() {
        let mut old: serde_json::Value =
            serde_json::from_str(&AttnGanConfig::small().to_string()).unwrap();
        old.as_object_mut().unwrap().remove("text_scale");
        let old: AttnGanConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.init_generator(&device()).ca_net.text_scale, 1.0);
        let scaled = AttnGanConfig::small().with_text_scale(Some(4.0));
        let scaled: AttnGanConfig = serde_json::from_str(&scaled.to_string()).unwrap();
        assert_eq!(scaled.init_generator(&device()).ca_net.text_scale, 4.0);
        let bad = AttnGanConfig::small().with_text_scale(Some(0.0)).validate();
        assert!(bad.unwrap_err().contains("text_scale"));
    }

    /// Attention weights of region `q` of sample `b` on word `t`: `[B, T, H, W]` flattened.
    fn at(maps: &[f32], (t_len, n): (usize, usize), b: usize, t: usize, q: usize) -> f32 {
        maps[(b * t_len + t) * n + q]
    }

    #[test]
    fn attention_matches_a_scalar_reference_in_both_mask_orders() {
        let (b_len, g_len, e_len, t_len, side) = (2, 3, 4, 5, 2);
        let n = side * side;
        let lengths = [5, 2];
        let d = device();
        let hidden_v = wave(b_len * g_len * n, 0.7, 0.3);
        let words_v = wave(b_len * e_len * t_len, 1.3, 1.1);
        let hidden = Tensor::<4>::from_data(
            TensorData::new(hidden_v.clone(), [b_len, g_len, side, side]),
            &d,
        );
        let words =
            Tensor::<3>::from_data(TensorData::new(words_v.clone(), [b_len, e_len, t_len]), &d);
        for authors in [false, true] {
            let att = attention(e_len, g_len, authors);
            let weight = values(att.conv_context.weight.val()); // [G, E, 1, 1]
            let (context, maps) = att.forward(
                hidden.clone(),
                words.clone(),
                padding_mask(&lengths, t_len, &d),
            );
            let (context, maps) = (values(context), values(maps));
            for b in 0..b_len {
                // Projected words: source[g][t] = sum_e W[g][e] words[b][e][t].
                let source: Vec<Vec<f32>> = (0..g_len)
                    .map(|g| {
                        (0..t_len)
                            .map(|t| {
                                (0..e_len)
                                    .map(|e| {
                                        weight[g * e_len + e] * words_v[(b * e_len + e) * t_len + t]
                                    })
                                    .sum()
                            })
                            .collect()
                    })
                    .collect();
                for q in 0..n {
                    // The sample whose mask region q of sample b gets.
                    let owner = if authors { (b * n + q) % b_len } else { b };
                    let scores: Vec<f32> = (0..t_len)
                        .map(|t| {
                            (0..g_len)
                                .map(|g| hidden_v[(b * g_len + g) * n + q] * source[g][t])
                                .sum()
                        })
                        .collect();
                    let top = (0..lengths[owner])
                        .map(|t| scores[t])
                        .fold(f32::MIN, f32::max);
                    let exp: Vec<f32> = (0..t_len)
                        .map(|t| {
                            if t < lengths[owner] {
                                (scores[t] - top).exp()
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let sum: f32 = exp.iter().sum();
                    for (t, weight) in exp.iter().map(|x| x / sum).enumerate() {
                        let got = at(&maps, (t_len, n), b, t, q);
                        if t >= lengths[owner] {
                            assert_eq!(got, 0.0, "authors {authors}: b {b} q {q} t {t}");
                        } else {
                            assert!(got > 0.0, "authors {authors}: b {b} q {q} t {t}");
                            assert!((got - weight).abs() < 1e-6, "{got} vs {weight}");
                        }
                    }
                    for g in 0..g_len {
                        let expect: f32 = (0..t_len).map(|t| source[g][t] * exp[t] / sum).sum();
                        let got = context[(b * g_len + g) * n + q];
                        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
                    }
                }
            }
        }
    }

    #[test]
    fn attention_maps_are_distributions_over_the_real_words() {
        let (b_len, t_len, side) = (3, 7, 8);
        let lengths = [7, 4, 1];
        let d = device();
        let att = attention(16, 8, false);
        let hidden =
            Tensor::<4>::random([b_len, 8, side, side], Distribution::Normal(0.0, 1.0), &d);
        let words = Tensor::<3>::random([b_len, 16, t_len], Distribution::Normal(0.0, 1.0), &d);
        let (context, maps) = att.forward(hidden, words, padding_mask(&lengths, t_len, &d));
        assert_eq!(context.dims(), [b_len, 8, side, side]);
        assert_eq!(maps.dims(), [b_len, t_len, side, side]);
        let sums = values(maps.clone().sum_dim(1)); // [B, 1, H, W]
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        let maps = values(maps);
        let n = side * side;
        for (b, &len) in lengths.iter().enumerate() {
            for t in len..t_len {
                assert!((0..n).all(|q| at(&maps, (t_len, n), b, t, q) == 0.0));
            }
        }
    }

    #[test]
    fn authors_mask_order_hands_samples_each_others_masks() {
        // Two captions: 5 words, and 2 words + 3 padding. 4x4 regions, so N = 16 is even and
        // the authors' order gives sample b's region q the mask of sample q mod 2.
        let (t_len, side) = (5, 4);
        let n = side * side;
        let lengths = [5, 2];
        let d = device();
        let hidden = Tensor::<4>::random([2, 6, side, side], Distribution::Normal(0.0, 1.0), &d);
        let words = Tensor::<3>::random([2, 10, t_len], Distribution::Normal(0.0, 1.0), &d);
        let run = |authors: bool| {
            let mut att = attention(10, 6, authors);
            att.conv_context = attention(10, 6, false).conv_context; // any weights will do
            let (_, maps) = att.forward(
                hidden.clone(),
                words.clone(),
                padding_mask(&lengths, t_len, &d),
            );
            values(maps)
        };

        // Fixed: sample 1's padding has exactly zero weight everywhere, sample 0's words none.
        let fixed = run(false);
        for q in 0..n {
            for t in 2..t_len {
                assert_eq!(at(&fixed, (t_len, n), 1, t, q), 0.0);
                assert!(at(&fixed, (t_len, n), 0, t, q) > 0.0);
            }
        }

        // The authors' order: sample 1's padding words get weight at the even regions (sample
        // 0's mask), and sample 0 loses its words 2..5 at the odd regions (sample 1's mask).
        let authors = run(true);
        for q in 0..n {
            for t in 2..t_len {
                let padding_of_1 = at(&authors, (t_len, n), 1, t, q);
                let word_of_0 = at(&authors, (t_len, n), 0, t, q);
                if q % 2 == 0 {
                    assert!(padding_of_1 > 0.0, "q {q} t {t}");
                    assert!(word_of_0 > 0.0);
                } else {
                    assert_eq!(padding_of_1, 0.0);
                    assert_eq!(word_of_0, 0.0, "q {q} t {t}");
                }
            }
        }
    }

    #[test]
    fn small_config_stages_have_the_authors_shapes() {
        let config = AttnGanConfig::small();
        let d = device();
        let g = config.init_generator(&d);
        let nets_d = config.init_discriminators(&d);
        assert_eq!((g.stages(), nets_d.stages()), (3, 3));
        let (b, t) = (2, 6);
        let lengths = [6, 3];
        let sentence = Tensor::<2>::random([b, 256], Distribution::Normal(0.0, 1.0), &d);
        let words = Tensor::<3>::random([b, 256, t], Distribution::Normal(0.0, 1.0), &d);
        let noise = Tensor::<2>::random([b, 100], Distribution::Normal(0.0, 1.0), &d);
        let eps = Tensor::<2>::random([b, 100], Distribution::Normal(0.0, 1.0), &d);
        let out = g.forward(
            sentence.clone(),
            words.clone(),
            padding_mask(&lengths, t, &d),
            noise.clone(),
            eps.clone(),
        );
        let sizes: Vec<[usize; 4]> = out.images.iter().map(|i| i.dims()).collect();
        assert_eq!(sizes, [[b, 3, 64, 64], [b, 3, 128, 128], [b, 3, 256, 256]]);
        for image in &out.images {
            assert!(
                values(image.clone())
                    .iter()
                    .all(|v| (-1.0..=1.0).contains(v))
            );
        }
        let sizes: Vec<[usize; 4]> = out.attention.iter().map(|a| a.dims()).collect();
        assert_eq!(sizes, [[b, t, 64, 64], [b, t, 128, 128]]);
        for maps in &out.attention {
            let sums = values(maps.clone().sum_dim(1));
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
            // Caption 1's words 3..6 are padding.
            let padding = maps.clone().narrow(0, 1, 1).narrow(1, 3, 3);
            assert!(values(padding).iter().all(|&v| v == 0.0));
        }
        assert_eq!(out.mu.dims(), [b, 100]);
        assert_eq!(out.logvar.dims(), [b, 100]);

        // Stage by stage (the page's path) gives the same images.
        let condition = g.condition(sentence.clone(), eps);
        let (hidden, first) = g.init_stage(condition.code, noise);
        assert_eq!(hidden.dims(), [b, 16, 64, 64]);
        let (hidden, second, _) =
            g.next_stage(1, hidden, words.clone(), padding_mask(&lengths, t, &d));
        assert_eq!(hidden.dims(), [b, 16, 128, 128]);
        assert_eq!(values(first), values(out.images[0].clone()));
        assert_eq!(values(second), values(out.images[1].clone()));

        for (stage, image) in out.images.iter().enumerate() {
            assert_eq!(
                nets_d.encode(stage, image.clone()).dims(),
                [b, 8 * 16, 4, 4]
            );
            let logits = nets_d.stage_logits(stage, image.clone(), image.clone(), sentence.clone());
            assert_eq!(logits.cond_real.dims(), [b]);
            assert_eq!(logits.cond_wrong.dims(), [b - 1]);
            assert_eq!(logits.cond_fake.dims(), [b]);
            assert_eq!(logits.uncond_real.dims(), [b]);
            assert_eq!(logits.uncond_fake.dims(), [b]);
            let fake = nets_d.fake_logits(stage, image.clone(), sentence.clone());
            assert_eq!((fake.cond.dims(), fake.uncond.dims()), ([b], [b]));
        }
    }

    #[test]
    fn config_validation_names_the_bad_key() {
        assert!(AttnGanConfig::birds().validate().is_ok());
        assert!(AttnGanConfig::small().validate().is_ok());
        let err = AttnGanConfig::birds()
            .with_branch_num(4)
            .validate()
            .unwrap_err();
        assert!(err.contains("branch_num"), "{err}");
        let err = AttnGanConfig::birds().with_ngf(0).validate().unwrap_err();
        assert!(err.contains("ngf"), "{err}");
        let err = AttnGanConfig::birds()
            .with_noise_dim(0)
            .validate()
            .unwrap_err();
        assert!(err.contains("noise_dim"), "{err}");
    }

    #[test]
    fn birds_generator_has_the_authors_size() {
        // The authors' G_NET at GF_DIM 32, EMBEDDING_DIM 256, CONDITION_DIM 100, Z_DIM 100,
        // R_NUM 2, BRANCH_NUM 3, counted from their layer list (PyTorch `parameters()`; a
        // batch norm has 2 per channel):
        //   ca_net.fc             256 x 400 + 400                                   =   102,800
        //   h_net1.fc             200 x 16,384 + BN 16,384 (2 x 16,384)             = 3,309,568
        //   h_net1.upsample1..4   3x3 convs 512->512, 256->256, 128->128, 64->64
        //                         (2,359,296 + 589,824 + 147,456 + 36,864) + BN 2 x 960
        //                                                                           = 3,135,360
        //   img_net1..3           3 x (32 x 3 x 9)                                  =     2,592
        //   h_net2, h_net3, each: att.conv_context 256 x 32                         =     8,192
        //                         2 ResBlock(64): 64->128 3x3 + BN 128, 64->64 3x3 + BN 64
        //                                         2 x (73,728 + 256 + 36,864 + 128) =   221,952
        //                         upsample 64->64 3x3 + BN 64                       =    36,992
        //                         = 267,136, twice                                  =   534,272
        //   total                                                                     7,084,592
        // (papers.md: "G about 7.1 M"). burn also counts every batch norm's running mean and
        // variance: 16,384 + 960 + 2 x (2 x (128 + 64) + 64) = 18,240 channels, 2 more each.
        let authors = 7_084_592;
        let state = authors_generator_state(&AttnGanConfig::birds());
        let counted: usize = state
            .iter()
            .filter(|(k, _)| !k.contains("running_") && !k.ends_with("num_batches_tracked"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(counted, authors);
        let g = AttnGanConfig::birds().init_generator(&device());
        assert_eq!(g.num_params(), authors + 2 * 18_240);
    }

    #[test]
    fn authors_generator_checkpoint_maps_tensor_for_tensor() {
        let config = AttnGanConfig::birds();
        let state = authors_generator_state(&config);
        let mut g = config.init_generator(&device());
        let loaded = load_authors(&mut g, &state, GENERATOR_KEYS);
        assert_eq!(loaded, tensors(&state));
        // ca_net.fc.weight is [400, 256] in PyTorch, [256, 400] here: transposed on load.
        let fc = values(g.ca_net.fc.weight.val());
        let theirs = key_values(0, 400 * 256);
        assert!((0..400).all(|o| (0..256).all(|i| fc[i * 400 + o] == theirs[o * 256 + i])));
        // A batch norm's running variance lands unchanged.
        let index = state
            .iter()
            .position(|(k, _)| k == "h_net2.upsample.2.running_var")
            .unwrap();
        let h2 = g.h_net2.as_ref().unwrap();
        assert_eq!(
            values(h2.upsample.bn.running_var.value()),
            key_values(index, 64)
        );
    }

    #[test]
    fn authors_discriminator_checkpoints_map_tensor_for_tensor() {
        let config = AttnGanConfig::small();
        let d = device();
        let remap = DISCRIMINATOR_KEYS;
        let s = authors_discriminator_state(&config, 64);
        assert_eq!(
            load_authors(&mut config.init_d_net64(&d), &s, remap),
            tensors(&s)
        );
        let s = authors_discriminator_state(&config, 128);
        assert_eq!(
            load_authors(&mut config.init_d_net128(&d), &s, remap),
            tensors(&s)
        );
        let s = authors_discriminator_state(&config, 256);
        assert_eq!(
            load_authors(&mut config.init_d_net256(&d), &s, remap),
            tensors(&s)
        );
    }

    #[test]
    fn losses_follow_the_authors_weighting() {
        let l = |v: &[f32]| Tensor::<1>::from_data(v, &device());
        let bce = |x: f32, y: f32| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(y * s.ln() + (1.0 - y) * (1.0 - s).ln())
        };
        let mean = |v: &[f32], y: f32| v.iter().map(|&x| bce(x, y)).sum::<f32>() / v.len() as f32;
        let (real, wrong, fake, u_real, u_fake) =
            ([2.0, 0.5], [-0.3], [-1.0, 0.4], [1.5, 0.1], [-0.2, -2.0]);
        let got = discriminator_loss(
            StageLogits {
                cond_real: l(&real),
                cond_wrong: l(&wrong),
                cond_fake: l(&fake),
                uncond_real: l(&u_real),
                uncond_fake: l(&u_fake),
            },
            AdversarialLoss::Logistic,
        )
        .into_scalar::<f32>();
        let expect = (mean(&u_real, 1.0) + mean(&real, 1.0)) / 2.0
            + (mean(&u_fake, 0.0) + mean(&fake, 0.0) + mean(&wrong, 0.0)) / 3.0;
        assert!((got - expect).abs() < 1e-6, "{got} vs {expect}");

        let mu = Tensor::<2>::from_data([[0.5f32, -1.0]], &device());
        let logvar = Tensor::<2>::from_data([[0.0f32, 1.0]], &device());
        let kl = (-0.5 * (1.0 + 0.0 - 0.25 - 1.0) + -0.5 * (1.0 + 1.0 - 1.0 - 1f32.exp())) / 2.0;
        let got = generator_loss(
            vec![
                FakeLogits {
                    cond: l(&[-1.0, 0.3]),
                    uncond: l(&[0.2, 0.0]),
                },
                FakeLogits {
                    cond: l(&[2.0, -0.5]),
                    uncond: l(&[-3.0, 1.0]),
                },
            ],
            mu,
            logvar,
            1.0,
            AdversarialLoss::Logistic,
        )
        .into_scalar::<f32>();
        let expect = mean(&[-1.0, 0.3], 1.0)
            + mean(&[0.2, 0.0], 1.0)
            + mean(&[2.0, -0.5], 1.0)
            + mean(&[-3.0, 1.0], 1.0)
            + kl;
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }

    // --- The authors' state dicts, read off their model.py (key, PyTorch shape) ---

    type State = Vec<(String, Vec<usize>)>;

    fn bn(state: &mut State, prefix: &str, channels: usize) {
        for p in ["weight", "bias", "running_mean", "running_var"] {
            state.push((format!("{prefix}.{p}"), vec![channels]));
        }
        state.push((format!("{prefix}.num_batches_tracked"), vec![]));
    }

    fn conv(state: &mut State, key: &str, shape: [usize; 4]) {
        state.push((key.to_string(), shape.to_vec()));
    }

    /// `upBlock(in, out)`: `.1` conv3x3(in, 2 out), `.2` BatchNorm2d(2 out).
    fn up_block(state: &mut State, prefix: &str, input: usize, output: usize) {
        conv(
            state,
            &format!("{prefix}.1.weight"),
            [2 * output, input, 3, 3],
        );
        bn(state, &format!("{prefix}.2"), 2 * output);
    }

    fn authors_generator_state(c: &AttnGanConfig) -> State {
        let (g, nef, ncf, nz) = (c.ngf, c.text_dim, c.condition_dim, c.noise_dim);
        let mut s = vec![
            ("ca_net.fc.weight".to_string(), vec![4 * ncf, nef]),
            ("ca_net.fc.bias".to_string(), vec![4 * ncf]),
        ];
        let h = 16 * g; // INIT_STAGE_G(ngf * 16, ncf)
        s.push((
            "h_net1.fc.0.weight".to_string(),
            vec![h * 4 * 4 * 2, ncf + nz],
        ));
        bn(&mut s, "h_net1.fc.1", h * 4 * 4 * 2);
        for (i, (input, output)) in [(h, h / 2), (h / 2, h / 4), (h / 4, h / 8), (h / 8, h / 16)]
            .into_iter()
            .enumerate()
        {
            up_block(&mut s, &format!("h_net1.upsample{}", i + 1), input, output);
        }
        conv(&mut s, "img_net1.img.0.weight", [3, g, 3, 3]);
        for stage in 2..=c.branch_num {
            let p = format!("h_net{stage}");
            conv(
                &mut s,
                &format!("{p}.att.conv_context.weight"),
                [g, nef, 1, 1],
            );
            for r in 0..c.residual_blocks {
                let q = format!("{p}.residual.{r}.block"); // ResBlock(ngf * 2)
                conv(&mut s, &format!("{q}.0.weight"), [4 * g, 2 * g, 3, 3]);
                bn(&mut s, &format!("{q}.1"), 4 * g);
                conv(&mut s, &format!("{q}.3.weight"), [2 * g, 2 * g, 3, 3]);
                bn(&mut s, &format!("{q}.4"), 2 * g);
            }
            up_block(&mut s, &format!("{p}.upsample"), 2 * g, g);
            conv(
                &mut s,
                &format!("img_net{stage}.img.0.weight"),
                [3, g, 3, 3],
            );
        }
        s
    }

    fn authors_discriminator_state(c: &AttnGanConfig, size: usize) -> State {
        let (f, nef) = (c.ndf, c.text_dim);
        let mut s = State::new();
        conv(&mut s, "img_code_s16.0.weight", [f, 3, 4, 4]);
        conv(&mut s, "img_code_s16.2.weight", [2 * f, f, 4, 4]);
        bn(&mut s, "img_code_s16.3", 2 * f);
        conv(&mut s, "img_code_s16.5.weight", [4 * f, 2 * f, 4, 4]);
        bn(&mut s, "img_code_s16.6", 4 * f);
        conv(&mut s, "img_code_s16.8.weight", [8 * f, 4 * f, 4, 4]);
        bn(&mut s, "img_code_s16.9", 8 * f);
        let block = |s: &mut State, name: &str, shape: [usize; 4]| {
            conv(s, &format!("{name}.0.weight"), shape);
            bn(s, &format!("{name}.1"), shape[0]);
        };
        if size >= 128 {
            block(&mut s, "img_code_s32", [16 * f, 8 * f, 4, 4]);
        }
        if size == 128 {
            block(&mut s, "img_code_s32_1", [8 * f, 16 * f, 3, 3]);
        }
        if size == 256 {
            block(&mut s, "img_code_s64", [32 * f, 16 * f, 4, 4]);
            block(&mut s, "img_code_s64_1", [16 * f, 32 * f, 3, 3]);
            block(&mut s, "img_code_s64_2", [8 * f, 16 * f, 3, 3]);
        }
        for head in ["UNCOND_DNET", "COND_DNET"] {
            if head == "COND_DNET" {
                block(&mut s, "COND_DNET.jointConv", [8 * f, 8 * f + nef, 3, 3]);
            }
            conv(
                &mut s,
                &format!("{head}.outlogits.0.weight"),
                [1, 8 * f, 4, 4],
            );
            s.push((format!("{head}.outlogits.0.bias"), vec![1]));
        }
        s
    }

    /// Tensors of a state that burn has too (all but the batch-norm counters).
    fn tensors(state: &State) -> usize {
        state
            .iter()
            .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
            .count()
    }

    /// The values written for the `index`-th key of a state.
    fn key_values(index: usize, n: usize) -> Vec<f32> {
        wave(n, 0.37, index as f32)
    }

    /// Writes `state` as a safetensors file (f32 values from [`key_values`]; the batch-norm
    /// counters as i64 scalars, as PyTorch has them), loads it into `module` through
    /// [`authors_store`] and checks that every tensor of either side found its partner with
    /// the right shape. Returns the number of tensors applied.
    fn load_authors<M: ModuleSnapshot>(module: &mut M, state: &State, remap: KeyTable) -> usize {
        let bytes: Vec<Vec<u8>> = state
            .iter()
            .enumerate()
            .map(|(i, (key, shape))| {
                if key.ends_with("num_batches_tracked") {
                    7i64.to_le_bytes().to_vec()
                } else {
                    let n = shape.iter().product();
                    key_values(i, n)
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect()
                }
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = state
            .iter()
            .zip(&bytes)
            .map(|((key, shape), data)| {
                let dtype = if key.ends_with("num_batches_tracked") {
                    Dtype::I64
                } else {
                    Dtype::F32
                };
                (
                    key.clone(),
                    TensorView::new(dtype, shape.clone(), data).unwrap(),
                )
            })
            .collect();
        let file = safetensors::serialize(views, None).unwrap();
        let result = module.load_from(&mut authors_store(file, remap)).unwrap();
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        assert!(result.missing.is_empty(), "missing {:?}", result.missing);
        let counters = state
            .iter()
            .filter(|(k, _)| k.ends_with("num_batches_tracked"))
            .count();
        assert_eq!(result.unused.len(), counters, "unused {:?}", result.unused);
        assert!(
            result
                .unused
                .iter()
                .all(|k| k.ends_with("num_batches_tracked")),
            "unused {:?}",
            result.unused
        );
        result.applied.len()
    }
}
