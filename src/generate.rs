//! Caption -> image with a loaded bundle: the one inference path of the command line and the
//! browser. The noise comes from a seeded generator of our own (SplitMix64 + Box-Muller), not
//! from a backend's random numbers, so a caption and a seed give the same image on every
//! device.

use burn::prelude::*;

use crate::attngan::padding_mask;
use crate::bundle::{GanBundle, GanIntClsBundle};
use crate::damsm::{TextEncoder, TextFeatures};
use crate::quant::Precision;
use crate::vocab::{MappedWord, SegmentKind, Vocabulary};

/// Why a caption cannot be drawn.
/// Why a caption cannot be drawn, or a drawing read back.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GenerateError {
    #[error("the caption is empty")]
    EmptyCaption,
    #[error("none of the words of {caption:?} is in the model's vocabulary")]
    NoKnownWords { caption: String },
    #[error(
        "{family} attends over the caption's words: its stages need the text encoder's word \
         features, not sentence embeddings alone"
    )]
    NeedsWords { family: &'static str },
    #[error("{family} has {count} stages, there is no stage {index}")]
    NoSuchStage {
        family: &'static str,
        index: usize,
        count: usize,
    },
    #[error("{family}'s stage {index} continues from stage {previous}'s output, which was not given", previous = index.saturating_sub(1))]
    MissingPreviousStage { family: &'static str, index: usize },
    #[error("the generated values could not be read back: {0}")]
    ReadBack(String),
}

/// What became of a caption's words.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptionReport {
    /// Words the vocabulary does not know (left out).
    pub unknown_words: Vec<String>,
    /// Unknown words read as a known word of the same meaning ("beak" as "bill").
    pub mapped_words: Vec<MappedWord>,
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
/// 256 px"; AttnGAN: "Stage 1 64 px" to "Stage 3 256 px"). The page shows them side by side
/// under their labels.
#[derive(Debug, Clone)]
pub struct StageImages {
    pub label: String,
    pub images: Tensor<4>,
    /// The word attention that drew these images (AttnGAN's stages 2 and 3): `[B, T, S, S]`,
    /// one map per word position over the previous stage's `S x S` features (64 for the
    /// 128 px stage, 128 for the 256 px one); at every region the weights sum to one over the
    /// caption's words and are exactly zero at padding. `None` for stages without attention.
    /// [`AttentionMaps`] and [`word_attention`] turn it into one map per caption word.
    pub attention: Option<Tensor<4>>,
    /// What the next stage continues from, beyond the image (AttnGAN: the hidden features
    /// `[B, G, S, S]`).
    pub(crate) hidden: Option<Tensor<4>>,
}

impl StageImages {
    /// Images alone: no attention, nothing for a next stage beyond the image.
    pub(crate) fn plain(label: String, images: Tensor<4>) -> Self {
        Self {
            label,
            images,
            attention: None,
            hidden: None,
        }
    }
}

/// A family's generator as every caller draws with it (the page, `t2i generate`, training
/// grids and evaluation): seeded noise of [`Stages::noise_width`] values a sample, then its
/// stages one at a time, smallest first. Each model file implements it for its bundle;
/// [`GanBundle`] runs whichever family it holds.
pub trait Stages {
    /// The model family, as people know it.
    fn family(&self) -> &'static str;
    /// How many images a generation gives.
    fn stage_count(&self) -> usize;
    /// Values of seeded noise a sample reads.
    fn noise_width(&self) -> usize;
    /// How the page and the reports name stage `index`'s images ("Stage-II 256 px").
    fn stage_label(&self, index: usize) -> String;
    /// Whether the stages attend over the caption's words, so that [`StageInputs::words`] must
    /// be there.
    fn reads_words(&self) -> bool {
        false
    }
    /// Stage `index`'s images (`index` below [`Stages::stage_count`]); `previous` is stage
    /// `index - 1`'s output.
    fn stage(
        &self,
        index: usize,
        inputs: &StageInputs,
        previous: Option<&StageImages>,
    ) -> Result<StageImages, GenerateError>;
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
pub fn to_rgb_bytes(images: Tensor<4>) -> Result<GeneratedImages, GenerateError> {
    let dims = images.dims();
    rgb_bytes_from_data(images.into_data(), dims)
}

/// [`to_rgb_bytes`] for data already read back (the browser reads asynchronously).
pub fn rgb_bytes_from_data(
    data: TensorData,
    [batch, _, height, width]: [usize; 4],
) -> Result<GeneratedImages, GenerateError> {
    let values = read_f32(data, batch * 3 * height * width)?;
    let plane = height * width;
    let pixels = (0..batch)
        .map(|b| {
            let mut out = Vec::with_capacity(plane * 3);
            for i in 0..plane {
                for c in 0..3 {
                    let v = values[(b * 3 + c) * plane + i];
                    out.push(((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8);
                }
            }
            out
        })
        .collect();
    Ok(GeneratedImages {
        size: width,
        pixels,
    })
}

/// Tensor data read back as `len` f32 values.
fn read_f32(data: TensorData, len: usize) -> Result<Vec<f32>, GenerateError> {
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| GenerateError::ReadBack(format!("{e:?}")))?;
    if values.len() != len {
        return Err(GenerateError::ReadBack(format!(
            "{} values where the shape holds {len}",
            values.len()
        )));
    }
    Ok(values)
}

/// The caption's token ids and what was left out; an error when nothing is left.
pub fn caption_tokens(
    vocabulary: &Vocabulary,
    caption: &str,
) -> Result<(Vec<u32>, CaptionReport), GenerateError> {
    if caption.trim().is_empty() {
        return Err(GenerateError::EmptyCaption);
    }
    let encoded = vocabulary.read(caption);
    if encoded.tokens.is_empty() {
        return Err(GenerateError::NoKnownWords {
            caption: caption.chars().take(200).collect(),
        });
    }
    Ok((
        encoded.tokens,
        CaptionReport {
            unknown_words: encoded.unknown_words,
            mapped_words: encoded.mapped_words,
            truncated_words: encoded.truncated_words,
        },
    ))
}

/// One caption's text features, or the sentence embedding of the mix `(1 - t) a + t b` of two
/// (GAN-INT's interpolation) with the first caption's words, and what was left out of each
/// caption.
fn caption_embedding(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    caption: &str,
    mix: Option<(&str, f32)>,
    device: &Device,
) -> Result<(CaptionText, Vec<CaptionReport>), GenerateError> {
    let encode = |caption: &str| -> Result<(TextFeatures, CaptionReport), GenerateError> {
        let (tokens, report) = caption_tokens(vocabulary, caption)?;
        Ok((encoder.encode_ids(&[&tokens], device), report))
    };
    let (a, report) = encode(caption)?;
    match mix {
        None => Ok((a.into(), vec![report])),
        Some((other, t)) => {
            let (b, report_b) = encode(other)?;
            let t = t.clamp(0.0, 1.0);
            let mut text = CaptionText::from(a);
            text.sentence = text.sentence.mul_scalar(1.0 - t) + b.sentence.mul_scalar(t);
            Ok((text, vec![report, report_b]))
        }
    }
}

/// `[B, width]` noise, row `i` drawn from `seeds[i]`.
fn noise_for_seeds(seeds: &[u64], width: usize, device: &Device) -> Tensor<2> {
    let noise: Vec<f32> = seeds.iter().flat_map(|&s| seeded_noise(s, width)).collect();
    Tensor::<2>::from_data(TensorData::new(noise, [seeds.len(), width]), device)
}

/// The inputs of every stage of `stages` for captions `text` (`[B, ..]`) and one seed per row.
fn stage_inputs(
    stages: &dyn Stages,
    text: CaptionText,
    seeds: &[u64],
    device: &Device,
) -> Result<StageInputs, GenerateError> {
    let words = if stages.reads_words() {
        let words = text.words.ok_or(GenerateError::NeedsWords {
            family: stages.family(),
        })?;
        let [_, _, t] = words.features.dims();
        Some(AttentionInputs {
            padding: padding_mask(&words.lengths, t, device),
            features: words.features,
            lengths: words.lengths,
        })
    } else {
        None
    };
    Ok(StageInputs {
        text: text.sentence,
        noise: noise_for_seeds(seeds, stages.noise_width(), device),
        words,
    })
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
        let inputs = stage_inputs(self, self.embed(&refs, device).into(), seeds, device)?;
        let images = self.stage(0, &inputs, None)?;
        Ok((to_rgb_bytes(images.images)?, reports))
    }
}

/// A batch of captions as the generators read them: the sentence embeddings, and the word
/// features that AttnGAN's attention stages read.
#[derive(Debug, Clone)]
pub struct CaptionText {
    /// Sentence embeddings `[B, P]`.
    pub sentence: Tensor<2>,
    /// The captions' words; `None` when only sentence embeddings are at hand, which is enough
    /// for GAN-INT-CLS and StackGAN but not for AttnGAN.
    pub words: Option<CaptionWords>,
}

/// The word features of a batch of captions.
#[derive(Debug, Clone)]
pub struct CaptionWords {
    /// `[B, E, T]`, `T` the longest caption's word count, zero past each caption's words.
    pub features: Tensor<3>,
    /// Each caption's number of words (at most [`crate::vocab::WORDS_NUM`]).
    pub lengths: Vec<usize>,
}

impl From<Tensor<2>> for CaptionText {
    /// Sentence embeddings alone.
    fn from(sentence: Tensor<2>) -> Self {
        Self {
            sentence,
            words: None,
        }
    }
}

impl From<TextFeatures> for CaptionText {
    fn from(features: TextFeatures) -> Self {
        Self {
            sentence: features.sentence,
            words: Some(CaptionWords {
                features: features.words,
                lengths: features.lengths,
            }),
        }
    }
}

impl CaptionText {
    /// The batch `times` times over (rows `0..B`, then `0..B` again, ...): one caption drawn
    /// with several seeds.
    pub fn repeat(self, times: usize) -> Self {
        Self {
            sentence: self.sentence.repeat_dim(0, times),
            words: self.words.map(|w| CaptionWords {
                features: w.features.repeat_dim(0, times),
                lengths: w.lengths.repeat(times),
            }),
        }
    }
}

/// What every stage of a generation reads: the sentence embeddings `[B, P]`, the seeded noise
/// `[B, width]` (GAN-INT-CLS: z; StackGAN: z and both stages' CA draws; AttnGAN: z and CA's
/// draw) and, for AttnGAN, the words.
pub struct StageInputs {
    pub text: Tensor<2>,
    pub noise: Tensor<2>,
    /// AttnGAN's attention inputs; `None` for the other families.
    pub words: Option<AttentionInputs>,
}

/// The words that AttnGAN's attention stages attend over.
pub struct AttentionInputs {
    /// Word features `[B, E, T]`.
    pub features: Tensor<3>,
    /// `[B, T]`, true at padding positions (past each caption's words): they get zero weight.
    pub padding: Tensor<2, Bool>,
    /// Each caption's number of words.
    pub lengths: Vec<usize>,
}

impl GanBundle {
    /// The model family, as people know it.
    pub fn family(&self) -> &'static str {
        self.family_stages().family()
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        self.text().vocabulary
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        self.text().encoder
    }

    pub fn precision(&self) -> Precision {
        self.text().precision
    }

    /// See [`caption_tokens`].
    pub fn tokens(&self, caption: &str) -> Result<(Vec<u32>, CaptionReport), GenerateError> {
        caption_tokens(self.vocabulary(), caption)
    }

    /// Sentence embeddings `[B, P]` of captions already turned into tokens.
    pub fn embed(&self, tokens: &[&[u32]], device: &Device) -> Tensor<2> {
        self.text_encoder().encode_ids(tokens, device).sentence
    }

    /// Sentence embeddings and word features of captions already turned into tokens: what
    /// every family's stages read.
    pub fn encode(&self, tokens: &[&[u32]], device: &Device) -> CaptionText {
        self.text_encoder().encode_ids(tokens, device).into()
    }

    /// One caption's text (`[1, ..]`), or the mix `(1 - t) a + t b` of two captions' sentence
    /// embeddings (GAN-INT's interpolation; AttnGAN's attention then reads caption `a`'s
    /// words), with what was left out of each caption.
    pub fn caption_embedding(
        &self,
        caption: &str,
        mix: Option<(&str, f32)>,
        device: &Device,
    ) -> Result<(CaptionText, Vec<CaptionReport>), GenerateError> {
        caption_embedding(self.text_encoder(), self.vocabulary(), caption, mix, device)
    }

    /// The family's generator, stage by stage.
    pub fn family_stages(&self) -> &dyn Stages {
        match self {
            GanBundle::GanIntCls(b) => b.as_ref(),
            GanBundle::StackGan(b) => b.as_ref(),
            GanBundle::AttnGan(b) => b.as_ref(),
        }
    }

    /// How many images a generation gives: 1 (GAN-INT-CLS), 2 (StackGAN's two stages) or
    /// AttnGAN's `branch_num` (3: 64, 128 and 256 px).
    pub fn stage_count(&self) -> usize {
        self.family_stages().stage_count()
    }

    /// The inputs of every stage for captions `text` (`[B, ..]`) and one seed per row. AttnGAN
    /// needs the words: [`GanBundle::encode`]'s or [`GanBundle::caption_embedding`]'s text,
    /// not sentence embeddings alone.
    pub fn stage_inputs(
        &self,
        text: impl Into<CaptionText>,
        seeds: &[u64],
        device: &Device,
    ) -> Result<StageInputs, GenerateError> {
        stage_inputs(self.family_stages(), text.into(), seeds, device)
    }

    /// Stage `index`'s images; `previous` is stage `index - 1`'s output (StackGAN's Stage-II
    /// refines Stage-I's image, AttnGAN's later stages continue from the previous stage's
    /// features). Stages run one at a time so a caller can time or show each.
    pub fn stage(
        &self,
        index: usize,
        inputs: &StageInputs,
        previous: Option<&StageImages>,
    ) -> Result<StageImages, GenerateError> {
        let stages = self.family_stages();
        if index >= stages.stage_count() {
            return Err(GenerateError::NoSuchStage {
                family: stages.family(),
                index,
                count: stages.stage_count(),
            });
        }
        if index > 0 && previous.is_none() {
            return Err(GenerateError::MissingPreviousStage {
                family: stages.family(),
                index,
            });
        }
        stages.stage(index, inputs, previous)
    }

    /// Every stage's images for each (caption, seed) pair, smallest first. `text` is
    /// [`GanBundle::encode`]'s (any family) or sentence embeddings `[B, P]` (all but AttnGAN).
    pub fn stages(
        &self,
        text: impl Into<CaptionText>,
        seeds: &[u64],
        device: &Device,
    ) -> Result<Vec<StageImages>, GenerateError> {
        self.first_stages(text, seeds, self.stage_count(), device)
    }

    /// The images of stages `0..count` for each (caption, seed) pair, smallest first (a
    /// training grid of StackGAN's Stage-I alone, or an evaluation of an earlier stage).
    pub fn first_stages(
        &self,
        text: impl Into<CaptionText>,
        seeds: &[u64],
        count: usize,
        device: &Device,
    ) -> Result<Vec<StageImages>, GenerateError> {
        let inputs = self.stage_inputs(text, seeds, device)?;
        let mut out: Vec<StageImages> = Vec::with_capacity(count);
        for index in 0..count {
            let next = self.stage(index, &inputs, out.last())?;
            out.push(next);
        }
        Ok(out)
    }

    /// Draws `caption` with `seed` and reads back, for each of its words, the attention map of
    /// every stage that has attention (AttnGAN's 128 and 256 px stages; no maps for the other
    /// families). A word the model does not read (unknown, or beyond the word limit) gets
    /// none. Native only: it reads the maps back synchronously.
    pub fn caption_attention(
        &self,
        caption: &str,
        seed: u64,
        device: &Device,
    ) -> Result<CaptionAttention, GenerateError> {
        let (tokens, report) = self.tokens(caption)?;
        let stages = self.stages(self.encode(&[&tokens], device), &[seed], device)?;
        let maps: Vec<AttentionMaps> = stages
            .iter()
            .enumerate()
            .filter_map(|(index, stage)| {
                let attention = stage.attention.clone()?;
                let dims = attention.dims();
                Some(AttentionMaps::from_data(
                    index,
                    attention.into_data(),
                    dims,
                    0,
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(CaptionAttention {
            words: word_attention(self.vocabulary(), caption, &maps),
            stages,
            report,
        })
    }
}

/// What [`GanBundle::caption_attention`] gives.
#[derive(Debug, Clone)]
pub struct CaptionAttention {
    /// Every stage's image, smallest first (batch of one).
    pub stages: Vec<StageImages>,
    /// Every word of the caption with its maps.
    pub words: Vec<AttendedWord>,
    pub report: CaptionReport,
}

/// One stage's word attention for one image, read back: `words` maps of `size x size`
/// weights, word-major (`values[(t * size + y) * size + x]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMaps {
    /// The stage whose images the attention drew (AttnGAN: 1 for 128 px, 2 for 256 px).
    pub stage: usize,
    pub size: usize,
    /// Word positions `T` (the batch's longest caption).
    pub words: usize,
    pub values: Vec<f32>,
}

impl AttentionMaps {
    /// Image `sample`'s maps out of a stage's [`StageImages::attention`] read back: `data` of
    /// shape `dims` = `[B, T, S, S]` (the browser reads asynchronously, hence data and dims).
    pub fn from_data(
        stage: usize,
        data: TensorData,
        dims: [usize; 4],
        sample: usize,
    ) -> Result<Self, GenerateError> {
        let [batch, words, height, width] = dims;
        if sample >= batch || height != width {
            return Err(GenerateError::ReadBack(format!(
                "attention maps of sample {sample} in {batch}x{words}x{height}x{width}: \
                 the batch is smaller or the maps are not square"
            )));
        }
        let values = read_f32(data, batch * words * height * width)?;
        let per_sample = words * height * width;
        Ok(Self {
            stage,
            size: width,
            words,
            values: values[sample * per_sample..(sample + 1) * per_sample].to_vec(),
        })
    }

    /// Word position `t`'s map, `size * size` weights row-major; `None` past `T`.
    pub fn word(&self, t: usize) -> Option<&[f32]> {
        let n = self.size * self.size;
        self.values.get(t * n..(t + 1) * n)
    }
}

/// One word of a caption and where the model looked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttendedWord {
    /// Position of the word in [`Vocabulary::segments`] of the caption (the page's
    /// `captionWords`), separators included.
    pub segment: usize,
    /// The word as typed.
    pub word: String,
    /// One map per stage with attention, smallest first; `None` when the model does not read
    /// the word (not in the vocabulary, or beyond the word limit).
    pub maps: Option<Vec<WordMap>>,
}

/// One stage's attention map of one word.
#[derive(Debug, Clone, PartialEq)]
pub struct WordMap {
    /// The stage whose images the attention drew.
    pub stage: usize,
    /// Side of the map (the previous stage's feature size).
    pub size: usize,
    /// `size * size` weights, row-major.
    pub values: Vec<f32>,
}

/// Each word of `caption` (as [`Vocabulary::segments`] cuts it; separators left out) with its
/// map in each of `maps` (the stages' attention of the image drawn from `caption`). The `k`-th
/// word the model reads is token position `k` of the encoded caption; unknown and truncated
/// words get no maps.
pub fn word_attention(
    vocabulary: &Vocabulary,
    caption: &str,
    maps: &[AttentionMaps],
) -> Vec<AttendedWord> {
    let mut position = 0;
    vocabulary
        .segments(caption)
        .into_iter()
        .enumerate()
        .filter(|(_, segment)| segment.kind != SegmentKind::Separator)
        .map(|(index, segment)| {
            let read = matches!(segment.kind, SegmentKind::Word | SegmentKind::Mapped);
            let word_maps = read.then(|| {
                let t = position;
                position += 1;
                maps.iter()
                    .filter_map(|stage| {
                        Some(WordMap {
                            stage: stage.stage,
                            size: stage.size,
                            values: stage.word(t)?.to_vec(),
                        })
                    })
                    .collect()
            });
            AttendedWord {
                segment: index,
                word: segment.text,
                maps: word_maps,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attngan::AttnGanConfig;
    use crate::bundle::{AttnGanWeights, load_gan, save_bundle};
    use crate::damsm::TextEncoderConfig;
    use crate::test_support::values;
    use crate::vocab::WORDS_NUM;

    /// An untrained AttnGAN of the small config (three stages) with a DAMSM-width text
    /// encoder, saved and loaded the way `t2i generate` and the page get it.
    fn attngan_bundle() -> GanBundle {
        let vocabulary = Vocabulary::build(
            [
                "a small red bird with black wings and a short beak",
                "this bird is blue with a white belly and long tail feathers",
            ],
            1,
        );
        let text = TextEncoderConfig::new(vocabulary.len()).with_embedding_dim(32);
        let gan = AttnGanConfig::small();
        let device = Device::flex();
        let weights = AttnGanWeights {
            text_encoder: text.init(&device),
            generator: gan.init_generator(&device),
        };
        let bytes = save_bundle(&weights, &text, &gan, &vocabulary, Precision::F32).unwrap();
        load_gan(&bytes, &device).unwrap()
    }

    /// Checks that at every region of sample `b` the weights of its first `len` words sum to
    /// one and the rest are exactly zero; `maps` is `[B, T, S, S]`.
    fn assert_distribution_over_words(maps: &[f32], dims: [usize; 4], b: usize, len: usize) {
        let [_, t_len, h, w] = dims;
        let n = h * w;
        for q in 0..n {
            let weight = |t: usize| maps[(b * t_len + t) * n + q];
            let sum: f32 = (0..len).map(weight).sum();
            assert!((sum - 1.0).abs() < 1e-4, "sample {b} region {q}: {sum}");
            assert!((0..len).all(|t| weight(t) > 0.0));
            assert!(
                (len..t_len).all(|t| weight(t) == 0.0),
                "padding of sample {b}"
            );
        }
    }

    #[test]
    fn attngan_bundle_draws_three_stages_with_attention() {
        let bundle = attngan_bundle();
        let device = Device::flex();
        assert_eq!((bundle.family(), bundle.stage_count()), ("AttnGAN", 3));
        let (text, reports) = bundle
            .caption_embedding("A small red bird with black wings", None, &device)
            .unwrap();
        assert!(reports[0].unknown_words.is_empty());
        let stages = bundle.stages(text, &[7], &device).unwrap();
        let labels: Vec<&str> = stages.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            ["Stage 1 64 px", "Stage 2 128 px", "Stage 3 256 px"]
        );
        for (stage, size) in stages.iter().zip([64, 128, 256]) {
            assert_eq!(stage.images.dims(), [1, 3, size, size]);
            let pixels = values(stage.images.clone());
            assert!(pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
            assert!(pixels.iter().any(|v| v.abs() > 1e-3), "not blank");
        }
        assert!(stages[0].attention.is_none());
        for (stage, size) in stages[1..].iter().zip([64, 128]) {
            let maps = stage.attention.clone().expect("stages 2 and 3 attend");
            let dims = maps.dims();
            assert_eq!(dims, [1, 7, size, size]);
            assert_distribution_over_words(&values(maps), dims, 0, 7);
        }
        // The same caption and seed give the same image.
        let (again, _) = bundle
            .caption_embedding("a small red bird with black wings", None, &device)
            .unwrap();
        let again = bundle.stages(again, &[7], &device).unwrap();
        assert_eq!(
            values(again[2].images.clone()),
            values(stages[2].images.clone())
        );
    }

    #[test]
    fn every_read_word_gets_a_map_per_stage_and_unknown_words_none() {
        let bundle = attngan_bundle();
        let device = Device::flex();
        let caption = "A small, red zzyzx bird";
        let out = bundle.caption_attention(caption, 3, &device).unwrap();
        assert_eq!(out.report.unknown_words, ["zzyzx"]);
        assert_eq!(out.stages.len(), 3);
        let words: Vec<&str> = out.words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, ["A", "small", "red", "zzyzx", "bird"]);
        let segments = bundle.vocabulary().segments(caption);
        for word in &out.words {
            assert_eq!(segments[word.segment].text, word.word);
        }
        assert_eq!(out.words[3].maps, None, "an unknown word gets no map");
        let read: Vec<&Vec<WordMap>> = out.words.iter().filter_map(|w| w.maps.as_ref()).collect();
        assert_eq!(read.len(), 4);
        for (k, size) in [64, 128].into_iter().enumerate() {
            for maps in &read {
                assert_eq!((maps[k].stage, maps[k].size), (k + 1, size));
                assert_eq!(maps[k].values.len(), size * size);
            }
            // At every region the read words share all the weight.
            for q in 0..size * size {
                let sum: f32 = read.iter().map(|maps| maps[k].values[q]).sum();
                assert!((sum - 1.0).abs() < 1e-4, "stage {k} region {q}: {sum}");
            }
        }
        // They are the generator's own maps, word by word.
        let attention = values(out.stages[2].attention.clone().unwrap());
        assert_eq!(read[3][1].values, attention[3 * 128 * 128..4 * 128 * 128]);

        // Known words past the limit are cut as for the other models, and get no map.
        let long = ["bird"; WORDS_NUM + 2].join(" ");
        let out = bundle.caption_attention(&long, 3, &device).unwrap();
        assert_eq!(out.report.truncated_words, 2);
        let attention = out.stages[1].attention.as_ref().unwrap();
        assert_eq!(attention.dims()[1], WORDS_NUM);
        let mapped = out.words.iter().filter(|w| w.maps.is_some()).count();
        assert_eq!((out.words.len(), mapped), (WORDS_NUM + 2, WORDS_NUM));
        assert!(out.words[WORDS_NUM..].iter().all(|w| w.maps.is_none()));
    }

    #[test]
    fn a_batch_of_captions_gives_each_captions_padding_zero_weight() {
        let bundle = attngan_bundle();
        let device = Device::flex();
        let (long, _) = bundle.tokens("a small red bird with black wings").unwrap();
        let (short, _) = bundle.tokens("blue bird").unwrap();
        let text = bundle.encode(&[&long, &short], &device);
        let stages = bundle.stages(text, &[1, 2], &device).unwrap();
        assert_eq!(stages[2].images.dims(), [2, 3, 256, 256]);
        for stage in &stages[1..] {
            let maps = stage.attention.clone().unwrap();
            let dims = maps.dims();
            assert_eq!(dims[..2], [2, 7]);
            let maps = values(maps);
            assert_distribution_over_words(&maps, dims, 0, 7);
            assert_distribution_over_words(&maps, dims, 1, 2);
            // Sample 1 alone, and in the batch, is the same drawing.
            let from_data =
                AttentionMaps::from_data(1, TensorData::new(maps, dims), dims, 1).unwrap();
            assert_eq!(from_data.words, 7);
            assert!(from_data.word(2).unwrap().iter().all(|&v| v == 0.0));
        }
        let alone = bundle
            .stages(bundle.encode(&[&short], &device), &[2], &device)
            .unwrap();
        let batch = values(stages[2].images.clone().narrow(0, 1, 1));
        let error = values(alone[2].images.clone())
            .iter()
            .zip(&batch)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            error < 1e-4,
            "the padding changed the short caption's image by {error}"
        );
    }

    /// "a red bird" at seed 1 as stage inputs: from its word features and sentence vector
    /// (`words`), or from the sentence vector alone.
    fn red_bird_inputs(bundle: &GanBundle, words: bool) -> Result<StageInputs, GenerateError> {
        let device = Device::flex();
        let (tokens, _) = bundle.tokens("a red bird").unwrap();
        let text = if words {
            bundle.encode(&[&tokens], &device)
        } else {
            bundle.embed(&[&tokens], &device).into()
        };
        bundle.stage_inputs(text, &[1], &device)
    }

    #[test]
    fn attngan_needs_words_not_only_sentences() {
        let bundle = attngan_bundle();
        let error = red_bird_inputs(&bundle, false)
            .err()
            .expect("sentence embeddings alone are refused");
        assert_eq!(error, GenerateError::NeedsWords { family: "AttnGAN" });
        assert!(
            error
                .to_string()
                .contains("attends over the caption's words")
        );
    }

    #[test]
    fn a_stage_out_of_order_is_an_error_naming_it() {
        let bundle = attngan_bundle();
        let inputs = red_bird_inputs(&bundle, true).unwrap();
        assert_eq!(
            bundle.stage(1, &inputs, None).err(),
            Some(GenerateError::MissingPreviousStage {
                family: "AttnGAN",
                index: 1
            })
        );
        let first = bundle.stage(0, &inputs, None).unwrap();
        let error = bundle.stage(3, &inputs, Some(&first)).err().unwrap();
        assert_eq!(
            error.to_string(),
            "AttnGAN has 3 stages, there is no stage 3"
        );
    }

    #[test]
    fn images_that_cannot_be_read_back_are_an_error_not_a_blank() {
        let short = TensorData::new(vec![0.5f32; 10], [10]);
        assert!(matches!(
            rgb_bytes_from_data(short, [1, 3, 2, 2]),
            Err(GenerateError::ReadBack(_))
        ));
        let maps = TensorData::new(vec![0.25f32; 2 * 4], [1, 2, 2, 2]);
        assert!(AttentionMaps::from_data(0, maps.clone(), [1, 2, 2, 2], 1).is_err());
        assert_eq!(
            AttentionMaps::from_data(0, maps, [1, 2, 2, 2], 0)
                .unwrap()
                .word(1),
            Some(&[0.25f32; 4][..])
        );
    }

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
