//! Caption -> image with a loaded bundle: the one inference path of the command line and the
//! browser. The noise comes from a seeded generator of our own (SplitMix64 + Box-Muller), not
//! from a backend's random numbers, so a caption and a seed give the same image on every
//! device.

use burn::prelude::*;

use crate::bundle::{GanBundle, GanIntClsBundle};
use crate::damsm::TextEncoder;
use crate::quant::Precision;
use crate::stackgan::split_noise;
use crate::vocab::Vocabulary;

/// Why a caption cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GenerateError {
    #[error("the caption is empty")]
    EmptyCaption,
    #[error("none of the words of {caption:?} is in the model's vocabulary")]
    NoKnownWords { caption: String },
}

/// What became of a caption's words.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptionReport {
    /// Words the vocabulary does not know (left out).
    pub unknown_words: Vec<String>,
    /// Known words beyond the encoder's limit (left out).
    pub truncated_words: usize,
}

/// Images in RGB, row-major, `size * size * 3` bytes each.
#[derive(Debug, Clone)]
pub struct GeneratedImages {
    pub size: usize,
    pub pixels: Vec<Vec<u8>>,
}

/// One named output of a model, `[B, 3, H, W]` in [-1, 1]. GAN-INT-CLS has one ("64×64"); a
/// multi-stage model has one per stage, smallest first (StackGAN: "Stage-I 64 px", "Stage-II
/// 256 px"). The page shows them side by side under their labels.
#[derive(Debug, Clone)]
pub struct StageImages {
    pub label: String,
    pub images: Tensor<4>,
}

/// Opaque RGBA bytes from RGB bytes (what a canvas's `ImageData` takes).
pub fn rgba_from_rgb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// `count` standard normal values from `seed`: the generator's noise for that seed.
pub fn seeded_noise(seed: u64, count: usize) -> Vec<f32> {
    let mut state = seed;
    let mut next = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(count + 1);
    while out.len() < count {
        // Box-Muller on two uniforms in (0, 1].
        let u1 = ((next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        out.push((radius * angle.cos()) as f32);
        out.push((radius * angle.sin()) as f32);
    }
    out.truncate(count);
    out
}

/// `[B, 3, H, W]` in [-1, 1] -> one RGB byte buffer per image.
pub fn to_rgb_bytes(images: Tensor<4>) -> GeneratedImages {
    let dims = images.dims();
    rgb_bytes_from_data(images.into_data(), dims)
}

/// [`to_rgb_bytes`] for data already read back (the browser reads asynchronously).
pub fn rgb_bytes_from_data(
    data: TensorData,
    [batch, _, height, width]: [usize; 4],
) -> GeneratedImages {
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let plane = height * width;
    let pixels = (0..batch)
        .map(|b| {
            let mut out = Vec::with_capacity(plane * 3);
            for i in 0..plane {
                for c in 0..3 {
                    let v = values.get((b * 3 + c) * plane + i).copied().unwrap_or(0.0);
                    out.push(((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8);
                }
            }
            out
        })
        .collect();
    GeneratedImages {
        size: width,
        pixels,
    }
}

/// The caption's token ids and what was left out; an error when nothing is left.
pub fn caption_tokens(
    vocabulary: &Vocabulary,
    caption: &str,
) -> Result<(Vec<u32>, CaptionReport), GenerateError> {
    if caption.trim().is_empty() {
        return Err(GenerateError::EmptyCaption);
    }
    let encoded = vocabulary.encode(caption);
    if encoded.tokens.is_empty() {
        return Err(GenerateError::NoKnownWords {
            caption: caption.chars().take(200).collect(),
        });
    }
    Ok((
        encoded.tokens,
        CaptionReport {
            unknown_words: encoded.unknown_words,
            truncated_words: encoded.truncated_words,
        },
    ))
}

/// The sentence embedding of one caption, or of the mix `(1 - t) a + t b` of two
/// (GAN-INT's interpolation): `[1, P]`, with what was left out of each caption.
fn caption_embedding(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    caption: &str,
    mix: Option<(&str, f32)>,
    device: &Device,
) -> Result<(Tensor<2>, Vec<CaptionReport>), GenerateError> {
    let embed = |caption: &str| -> Result<(Tensor<2>, CaptionReport), GenerateError> {
        let (tokens, report) = caption_tokens(vocabulary, caption)?;
        Ok((encoder.encode_ids(&[&tokens], device).sentence, report))
    };
    let (a, report) = embed(caption)?;
    match mix {
        None => Ok((a, vec![report])),
        Some((other, t)) => {
            let (b, report_b) = embed(other)?;
            let t = t.clamp(0.0, 1.0);
            Ok((
                a.mul_scalar(1.0 - t) + b.mul_scalar(t),
                vec![report, report_b],
            ))
        }
    }
}

/// `[B, width]` noise, row `i` drawn from `seeds[i]`.
fn noise_for_seeds(seeds: &[u64], width: usize, device: &Device) -> Tensor<2> {
    let noise: Vec<f32> = seeds.iter().flat_map(|&s| seeded_noise(s, width)).collect();
    Tensor::<2>::from_data(TensorData::new(noise, [seeds.len(), width]), device)
}

impl GanIntClsBundle {
    /// The caption's token ids and what was left out; an error when nothing is left.
    pub fn tokens(&self, caption: &str) -> Result<(Vec<u32>, CaptionReport), GenerateError> {
        caption_tokens(&self.vocabulary, caption)
    }

    /// Sentence embeddings `[B, P]` of captions already turned into tokens.
    pub fn embed(&self, tokens: &[&[u32]], device: &Device) -> Tensor<2> {
        self.weights
            .text_encoder
            .encode_ids(tokens, device)
            .sentence
    }

    /// The generator's output `[B, 3, H, W]` for each (embedding row, seed) pair: `text`
    /// `[B, P]`, `seeds.len() == B`.
    pub fn images(&self, text: Tensor<2>, seeds: &[u64], device: &Device) -> Tensor<4> {
        let noise = noise_for_seeds(seeds, self.gan_config.noise_dim, device);
        self.weights.generator.forward(noise, text)
    }

    /// [`GanIntClsBundle::images`] as RGB bytes.
    pub fn generate_from_embeddings(
        &self,
        text: Tensor<2>,
        seeds: &[u64],
        device: &Device,
    ) -> GeneratedImages {
        to_rgb_bytes(self.images(text, seeds, device))
    }

    /// Draws each caption with its seed.
    pub fn generate(
        &self,
        captions: &[&str],
        seeds: &[u64],
        device: &Device,
    ) -> Result<(GeneratedImages, Vec<CaptionReport>), GenerateError> {
        let mut all_tokens = Vec::with_capacity(captions.len());
        let mut reports = Vec::with_capacity(captions.len());
        for caption in captions {
            let (tokens, report) = self.tokens(caption)?;
            all_tokens.push(tokens);
            reports.push(report);
        }
        let refs: Vec<&[u32]> = all_tokens.iter().map(Vec::as_slice).collect();
        let text = self.embed(&refs, device);
        Ok((self.generate_from_embeddings(text, seeds, device), reports))
    }
}

/// What every stage of a generation reads: the sentence embeddings `[B, P]` and the seeded
/// noise `[B, width]` (GAN-INT-CLS: z; StackGAN: z and both stages' CA draws).
pub struct StageInputs {
    pub text: Tensor<2>,
    pub noise: Tensor<2>,
}

impl GanBundle {
    /// The model family, as people know it.
    pub fn family(&self) -> &'static str {
        match self {
            GanBundle::GanIntCls(_) => "GAN-INT-CLS",
            GanBundle::StackGan(_) => "StackGAN",
        }
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        match self {
            GanBundle::GanIntCls(b) => &b.vocabulary,
            GanBundle::StackGan(b) => &b.vocabulary,
        }
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        match self {
            GanBundle::GanIntCls(b) => &b.weights.text_encoder,
            GanBundle::StackGan(b) => &b.weights.text_encoder,
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            GanBundle::GanIntCls(b) => b.precision,
            GanBundle::StackGan(b) => b.precision,
        }
    }

    /// See [`caption_tokens`].
    pub fn tokens(&self, caption: &str) -> Result<(Vec<u32>, CaptionReport), GenerateError> {
        caption_tokens(self.vocabulary(), caption)
    }

    /// Sentence embeddings `[B, P]` of captions already turned into tokens.
    pub fn embed(&self, tokens: &[&[u32]], device: &Device) -> Tensor<2> {
        self.text_encoder().encode_ids(tokens, device).sentence
    }

    /// The sentence embedding of one caption, or of the mix `(1 - t) a + t b` of two
    /// (GAN-INT's interpolation): `[1, P]`, with what was left out of each caption.
    pub fn caption_embedding(
        &self,
        caption: &str,
        mix: Option<(&str, f32)>,
        device: &Device,
    ) -> Result<(Tensor<2>, Vec<CaptionReport>), GenerateError> {
        caption_embedding(self.text_encoder(), self.vocabulary(), caption, mix, device)
    }

    /// How many images a generation gives: 1 (GAN-INT-CLS) or 2 (StackGAN's two stages).
    pub fn stage_count(&self) -> usize {
        match self {
            GanBundle::GanIntCls(_) => 1,
            GanBundle::StackGan(_) => 2,
        }
    }

    /// The inputs of every stage for embeddings `text` `[B, P]` and one seed per row.
    pub fn stage_inputs(&self, text: Tensor<2>, seeds: &[u64], device: &Device) -> StageInputs {
        let width = match self {
            GanBundle::GanIntCls(b) => b.gan_config.noise_dim,
            GanBundle::StackGan(b) => b.gan_config.noise_width(),
        };
        StageInputs {
            text,
            noise: noise_for_seeds(seeds, width, device),
        }
    }

    /// Stage `index`'s images; `previous` is stage `index - 1`'s (StackGAN's Stage-II refines
    /// Stage-I's image). Stages run one at a time so a caller can time or show each.
    ///
    /// # Panics
    /// When `index` is not below [`GanBundle::stage_count`], or Stage-II gets no Stage-I image.
    pub fn stage(
        &self,
        index: usize,
        inputs: &StageInputs,
        previous: Option<Tensor<4>>,
    ) -> StageImages {
        let text = inputs.text.clone();
        match (self, index) {
            (GanBundle::GanIntCls(b), 0) => {
                let images = b.weights.generator.forward(inputs.noise.clone(), text);
                let [_, _, height, width] = images.dims();
                StageImages {
                    label: format!("{width}×{height}"),
                    images,
                }
            }
            (GanBundle::StackGan(b), 0) => {
                let (z, eps1, _) = split_noise(inputs.noise.clone(), &b.gan_config);
                StageImages {
                    label: "Stage-I 64 px".to_string(),
                    images: b.weights.generators.stage1.forward(text, z, eps1).image,
                }
            }
            (GanBundle::StackGan(b), 1) => {
                let (_, _, eps2) = split_noise(inputs.noise.clone(), &b.gan_config);
                let low = previous.expect("Stage-II refines the Stage-I image");
                StageImages {
                    label: "Stage-II 256 px".to_string(),
                    images: b.weights.generators.stage2.forward(low, text, eps2).image,
                }
            }
            (_, index) => panic!("{} has no stage {index}", self.family()),
        }
    }

    /// Every stage's images for each (embedding row, seed) pair, smallest first.
    pub fn stages(&self, text: Tensor<2>, seeds: &[u64], device: &Device) -> Vec<StageImages> {
        let inputs = self.stage_inputs(text, seeds, device);
        let mut out: Vec<StageImages> = Vec::with_capacity(self.stage_count());
        for index in 0..self.stage_count() {
            let previous = out.last().map(|stage| stage.images.clone());
            out.push(self.stage(index, &inputs, previous));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_noise_is_standard_normal_and_reproducible() {
        let a = seeded_noise(7, 20_000);
        assert_eq!(a, seeded_noise(7, 20_000));
        assert_ne!(a[..100], seeded_noise(8, 100)[..]);
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert_eq!(seeded_noise(7, 3), a[..3].to_vec());
    }

    #[test]
    fn rgba_is_opaque_rgb() {
        assert_eq!(
            rgba_from_rgb(&[1, 2, 3, 4, 5, 6]),
            [1, 2, 3, 255, 4, 5, 6, 255]
        );
    }
}
