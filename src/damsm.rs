//! DAMSM, the Deep Attentional Multimodal Similarity Model of AttnGAN (Xu et al., CVPR 2018,
//! section 3.3): a text encoder and an image encoder trained so that words match image
//! regions and captions match images.
//!
//! Field names follow the authors' PyTorch modules (taoxugit/AttnGAN `code/model.py`:
//! `RNN_ENCODER.{encoder, drop, rnn}` and `CNN_ENCODER.{emb_features, emb_cnn_code}`) so their
//! released checkpoints map onto these modules tensor for tensor. The image encoder here holds
//! only the trainable projections; the frozen Inception-v3 it reads from is
//! [`crate::inception::Inception`], whose features are computed once and cached.
//!
//! Dimension letters: `B` batch, `T` words (padded), `E` word embedding (300), `H` hidden size
//! per LSTM direction (128), `D` joint feature size (256 = 2H), `R` image regions (17 x 17).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BiLstm, BiLstmConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear,
    LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, TensorData};

/// Smoothing factors of the DAMSM losses (AttnGAN `cfg.TRAIN.SMOOTH`, birds: `DAMSM.yml`).
#[derive(Config, Debug, Copy)]
pub struct DamsmGammas {
    /// gamma1: sharpness of the word-to-region attention (Eq. 9). Birds: 4.
    #[config(default = 4.0)]
    pub gamma1: f32,
    /// gamma2: how much the best-matching word dominates the caption score (Eq. 10). Birds: 5.
    #[config(default = 5.0)]
    pub gamma2: f32,
    /// gamma3: smoothing of the posterior over the batch (Eq. 11). 10 everywhere.
    #[config(default = 10.0)]
    pub gamma3: f32,
}

/// The caption encoder: word embedding, dropout, one bidirectional LSTM layer.
#[derive(Config, Debug)]
pub struct TextEncoderConfig {
    /// Rows of the embedding table: the vocabulary size, `<end>` included.
    pub vocab_size: usize,
    /// Word embedding width (AttnGAN `ninput`).
    #[config(default = 300)]
    pub embedding_dim: usize,
    /// Dropout on the word embeddings (AttnGAN `drop_prob`).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Output feature width D; each LSTM direction has D / 2 units (AttnGAN `nhidden` 256).
    #[config(default = 256)]
    pub feature_dim: usize,
}

impl TextEncoderConfig {
    /// Initialises the encoder: embedding rows uniform in [-0.1, 0.1] as the authors do.
    pub fn init(&self, device: &Device) -> TextEncoder {
        assert!(
            self.feature_dim.is_multiple_of(2),
            "feature_dim must be even (two LSTM directions), got {}",
            self.feature_dim
        );
        assert!(self.vocab_size > 0, "vocab_size must be positive");
        TextEncoder {
            encoder: EmbeddingConfig::new(self.vocab_size, self.embedding_dim)
                .with_initializer(Initializer::Uniform {
                    min: -0.1,
                    max: 0.1,
                })
                .init(device),
            drop: DropoutConfig::new(self.dropout).init(),
            rnn: BiLstmConfig::new(self.embedding_dim, self.feature_dim / 2, true)
                .with_batch_first(true)
                .init(device),
        }
    }
}

/// AttnGAN's `RNN_ENCODER`.
#[derive(Module, Debug)]
pub struct TextEncoder {
    pub encoder: Embedding,
    pub drop: Dropout,
    pub rnn: BiLstm,
}

/// What the text encoder says about a batch of captions.
#[derive(Debug, Clone)]
pub struct TextFeatures {
    /// Word features e, zero at padding positions: `[B, D, T]`.
    pub words: Tensor<3>,
    /// Sentence feature e-bar, the last hidden states of both directions: `[B, D]`.
    pub sentence: Tensor<2>,
    /// Number of real words of each caption (at least 1: an empty caption reads as `<end>`).
    pub lengths: Vec<usize>,
}

impl TextEncoder {
    /// Encodes captions given as token ids ([`crate::vocab::Vocabulary::encode`]): pads them
    /// into one batch and runs [`TextEncoder::forward`].
    pub fn encode_ids(&self, captions: &[&[u32]], device: &Device) -> TextFeatures {
        let (ids, width, lengths) = crate::vocab::pad_batch(captions);
        let ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(ids, [captions.len(), width]), device);
        self.forward(tokens, &lengths)
    }

    /// Encodes padded token ids.
    ///
    /// The reference code packs the padded batch (`pack_padded_sequence`) so that each
    /// direction reads only the real words; here the backward direction runs over each caption
    /// reversed within its own length, which gives the same states.
    ///
    /// # Shapes
    /// - tokens: `[B, T]` ids, `0` (`<end>`) past each caption's length
    /// - lengths: `B` lengths, each at most `T`
    pub fn forward(&self, tokens: Tensor<2, Int>, lengths: &[usize]) -> TextFeatures {
        let device = tokens.device();
        let [batch, width] = tokens.dims();
        assert_eq!(lengths.len(), batch, "one length per caption");
        let lengths: Vec<usize> = lengths.iter().map(|&l| l.clamp(1, width)).collect();

        let embedded = self.drop.forward(self.encoder.forward(tokens)); // [B, T, E]
        let [_, _, emb_dim] = embedded.dims();

        let (forward_states, _) = self.rnn.forward.forward(embedded.clone(), None); // [B, T, H]
        let hidden = forward_states.dims()[2];

        // Position t of caption b read backwards within its length (padding stays in place).
        let reversed: Vec<i64> = lengths
            .iter()
            .flat_map(|&len| (0..width).map(move |t| if t < len { len - 1 - t } else { t } as i64))
            .collect();
        let reverse_index =
            Tensor::<3, Int>::from_data(TensorData::new(reversed, [batch, width, 1]), &device);
        let embedded_reversed = embedded.gather(1, reverse_index.clone().repeat_dim(2, emb_dim));
        let (backward_reversed, _) = self.rnn.reverse.forward_iter(
            embedded_reversed.iter_dim(1).enumerate(),
            None,
            batch,
            width,
            &device,
        );
        let backward_states = backward_reversed.gather(1, reverse_index.repeat_dim(2, hidden)); // [B, T, H]

        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&len| (0..width).map(move |t| if t < len { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::<3>::from_data(TensorData::new(mask, [batch, width, 1]), &device);
        let words = Tensor::cat(vec![forward_states.clone(), backward_states.clone()], 2) * mask; // [B, T, D]

        // Forward direction ends at the last word, backward direction at the first.
        let last: Vec<i64> = lengths.iter().map(|&len| (len - 1) as i64).collect();
        let last = Tensor::<3, Int>::from_data(TensorData::new(last, [batch, 1, 1]), &device)
            .repeat_dim(2, hidden);
        let forward_final = forward_states.gather(1, last).reshape([batch, hidden]);
        let backward_final = backward_states.narrow(1, 0, 1).reshape([batch, hidden]);
        let sentence = Tensor::cat(vec![forward_final, backward_final], 1); // [B, D]

        TextFeatures {
            words: words.swap_dims(1, 2),
            sentence,
            lengths,
        }
    }
}

/// The trainable head of the DAMSM image encoder.
#[derive(Config, Debug)]
pub struct ImageEncoderConfig {
    /// Channels of Inception's Mixed_6e output (`mixed_7` in the FID network).
    #[config(default = 768)]
    pub local_dim: usize,
    /// Width of Inception's pooled output (`pool3`).
    #[config(default = 2048)]
    pub global_dim: usize,
    /// Joint feature size D, equal to the text encoder's.
    #[config(default = 256)]
    pub feature_dim: usize,
}

impl ImageEncoderConfig {
    /// Initialises both projections' weights uniform in [-0.1, 0.1] as the authors do.
    pub fn init(&self, device: &Device) -> ImageEncoder {
        let uniform = Initializer::Uniform {
            min: -0.1,
            max: 0.1,
        };
        ImageEncoder {
            emb_features: Conv2dConfig::new([self.local_dim, self.feature_dim], [1, 1])
                .with_bias(false)
                .with_initializer(uniform.clone())
                .init(device),
            emb_cnn_code: LinearConfig::new(self.global_dim, self.feature_dim)
                .with_initializer(uniform)
                .init(device),
        }
    }
}

/// AttnGAN's `CNN_ENCODER` less the frozen Inception it wraps.
#[derive(Module, Debug)]
pub struct ImageEncoder {
    /// 1x1 convolution of the 17 x 17 local features to D (no bias).
    pub emb_features: Conv2d,
    /// Linear map of the pooled feature to D.
    pub emb_cnn_code: Linear,
}

/// Region and global image features in the joint space.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// Local features v: `[B, D, 17, 17]`.
    pub regions: Tensor<4>,
    /// Global feature v-bar: `[B, D]`.
    pub global: Tensor<2>,
}

impl ImageEncoder {
    /// # Shapes
    /// - mixed_7: `[B, 768, 17, 17]`, pool3: `[B, 2048]`
    pub fn forward(&self, mixed_7: Tensor<4>, pool3: Tensor<2>) -> ImageFeatures {
        ImageFeatures {
            regions: self.emb_features.forward(mixed_7),
            global: self.emb_cnn_code.forward(pool3),
        }
    }
}

/// Both DAMSM encoders, as one module so they save and load together.
#[derive(Module, Debug)]
pub struct Damsm {
    pub text_encoder: TextEncoder,
    pub image_encoder: ImageEncoder,
}

/// Configuration of both encoders; saved beside their weights.
#[derive(Config, Debug)]
pub struct DamsmConfig {
    pub text: TextEncoderConfig,
    #[config(default = "ImageEncoderConfig::new()")]
    pub image: ImageEncoderConfig,
}

impl DamsmConfig {
    /// Initialises both encoders.
    pub fn init(&self, device: &Device) -> Damsm {
        assert_eq!(
            self.text.feature_dim, self.image.feature_dim,
            "text and image feature sizes must agree"
        );
        Damsm {
            text_encoder: self.text.init(device),
            image_encoder: self.image.init(device),
        }
    }
}

/// The four DAMSM loss terms of a batch (image-to-text and text-to-image, word and sentence).
#[derive(Debug, Clone)]
pub struct DamsmLoss {
    pub words_image_to_text: Tensor<1>,
    pub words_text_to_image: Tensor<1>,
    pub sentence_image_to_text: Tensor<1>,
    pub sentence_text_to_image: Tensor<1>,
    /// Each matched pair's word attention over regions: `[B, T, 17, 17]`.
    pub attention: Tensor<4>,
}

impl DamsmLoss {
    /// L_DAMSM = L1^w + L2^w + L1^s + L2^s (Eq. 13 of the paper).
    pub fn total(&self) -> Tensor<1> {
        self.words_image_to_text.clone()
            + self.words_text_to_image.clone()
            + self.sentence_image_to_text.clone()
            + self.sentence_text_to_image.clone()
    }
}

/// Large negative score for pairs taken out of the batch softmax (finite, so no NaN appears
/// in gradients, yet `exp` of it is exactly zero in f32).
const MASKED: f32 = -1e9;

/// Computes the DAMSM losses of a batch of matched (image, caption) pairs.
///
/// `class_ids`, when given, removes from each softmax the other captions of the same class, as
/// the reference code does: on CUB they describe the same species and are not wrong matches.
pub fn damsm_loss(
    image: &ImageFeatures,
    text: &TextFeatures,
    class_ids: Option<&[u32]>,
    gammas: DamsmGammas,
) -> DamsmLoss {
    let (word_scores, attention) = word_scores(
        image.regions.clone(),
        text.words.clone(),
        &text.lengths,
        gammas,
    );
    let sentence_scores = cosine_matrix(image.global.clone(), text.sentence.clone());
    let word_scores = word_scores.mul_scalar(gammas.gamma3);
    let sentence_scores = sentence_scores.mul_scalar(gammas.gamma3);
    let (words_image_to_text, words_text_to_image) = batch_matching_loss(word_scores, class_ids);
    let (sentence_image_to_text, sentence_text_to_image) =
        batch_matching_loss(sentence_scores, class_ids);
    DamsmLoss {
        words_image_to_text,
        words_text_to_image,
        sentence_image_to_text,
        sentence_text_to_image,
        attention,
    }
}

/// Cosine similarity of every row of `a` with every row of `b`: `[B, D] x [B, D] -> [B, B]`.
pub fn cosine_matrix(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let a_norm = l2_norm(a.clone(), 1); // [B, 1]
    let b_norm = l2_norm(b.clone(), 1); // [B, 1]
    let dots = a.matmul(b.transpose()); // [B, B]
    let norms = a_norm.matmul(b_norm.transpose()).clamp_min(1e-8);
    dots / norms
}

/// Euclidean norm along `dim`, kept dimension. The tiny term under the root keeps the
/// gradient finite for all-zero vectors (the padding words), where `sqrt` has an infinite slope.
fn l2_norm<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    x.powf_scalar(2.0).sum_dim(dim).add_scalar(1e-16).sqrt()
}

/// Cross-entropy of the batch posteriors in both directions, with the matching pair on the
/// diagonal. Rows of `scores` are images, columns captions.
fn batch_matching_loss(scores: Tensor<2>, class_ids: Option<&[u32]>) -> (Tensor<1>, Tensor<1>) {
    let device = scores.device();
    let [batch, _] = scores.dims();
    let scores = match class_ids {
        Some(ids) => {
            assert_eq!(ids.len(), batch, "one class id per pair");
            let same_class: Vec<bool> = (0..batch)
                .flat_map(|i| (0..batch).map(move |j| i != j && ids[i] == ids[j]))
                .collect();
            let mask =
                Tensor::<2, Bool>::from_data(TensorData::new(same_class, [batch, batch]), &device);
            scores.mask_fill(mask, MASKED)
        }
        None => scores,
    };
    let eye = Tensor::<2>::eye(batch, &device);
    let image_to_text = -(log_softmax(scores.clone(), 1) * eye.clone()).sum() / batch as f32;
    let text_to_image = -(log_softmax(scores.transpose(), 1) * eye).sum() / batch as f32;
    (image_to_text, text_to_image)
}

/// Word-level matching scores R(Q_j, D_i) of every image j with every caption i (Eqs. 7-10),
/// and each matched pair's attention maps.
///
/// # Shapes
/// - regions: `[B, D, h, w]`, words: `[B, D, T]` (zero past each length)
/// - returns scores `[B images, B captions]` and attention `[B, T, h, w]`
pub fn word_scores(
    regions: Tensor<4>,
    words: Tensor<3>,
    lengths: &[usize],
    gammas: DamsmGammas,
) -> (Tensor<2>, Tensor<4>) {
    let device = regions.device();
    let [batch, dim, height, width] = regions.dims();
    let [captions, _, max_words] = words.dims();
    let n_regions = height * width;
    let regions = regions.reshape([batch, dim, n_regions]); // [Bi, D, R]

    // Padding words, per caption: [1, 1, Bc, T] (true where padding).
    let padding: Vec<bool> = lengths
        .iter()
        .flat_map(|&len| (0..max_words).map(move |t| t >= len))
        .collect();
    let padding = Tensor::<4, Bool>::from_data(
        TensorData::new(padding, [1, 1, captions, max_words]),
        &device,
    );

    // Eq. 7: s = e^T v for every region of every image and every word of every caption.
    let all_words = words
        .clone()
        .swap_dims(0, 1)
        .reshape([dim, captions * max_words]); // [D, Bc*T]
    let region_rows = regions
        .clone()
        .swap_dims(1, 2)
        .reshape([batch * n_regions, dim]); // [Bi*R, D]
    let similarity = region_rows
        .matmul(all_words)
        .reshape([batch, n_regions, captions, max_words]); // [Bi, R, Bc, T]

    // Eq. 8: normalise over the words of each caption, for each region.
    let similarity = softmax(similarity.mask_fill(padding.clone(), MASKED), 3);
    // Eq. 9: attention of each word over the regions, sharpened by gamma1.
    let attention = softmax(similarity.mul_scalar(gammas.gamma1), 1); // [Bi, R, Bc, T]

    // Region-context vector c of each word: c = sum_r alpha_r v_r.
    let context = regions
        .matmul(
            attention
                .clone()
                .reshape([batch, n_regions, captions * max_words]),
        )
        .reshape([batch, dim, captions, max_words]); // [Bi, D, Bc, T]

    // Cosine of each word with its context, R(c_i, e_i).
    let words_b = words.swap_dims(0, 1).unsqueeze_dim::<4>(0); // [1, D, Bc, T]
    let dots = (context.clone() * words_b.clone()).sum_dim(1); // [Bi, 1, Bc, T]
    let context_norm = l2_norm(context, 1);
    let word_norm = l2_norm(words_b, 1);
    let cosine = dots / (context_norm * word_norm).clamp_min(1e-8);

    // Eq. 10: R(Q, D) = log sum_i exp(gamma2 R(c_i, e_i)), over the real words only.
    let real_words = padding.bool_not().float();
    let scores = (cosine.mul_scalar(gammas.gamma2).exp() * real_words)
        .sum_dim(3)
        .log()
        .reshape([batch, captions]);

    // Attention of each image's own caption: diagonal of [Bi, Bc], as [B, T, h, w].
    let diagonal: Vec<i64> = (0..batch as i64).collect();
    let own = attention
        .swap_dims(1, 2) // [Bi, Bc, R, T]
        .reshape([batch * captions, n_regions, max_words])
        .select(
            0,
            Tensor::<1, Int>::from_data(
                TensorData::new(
                    diagonal
                        .iter()
                        .map(|&i| i * captions as i64 + i)
                        .collect::<Vec<_>>(),
                    [batch],
                ),
                &device,
            ),
        ) // [B, R, T]
        .swap_dims(1, 2)
        .reshape([batch, max_words, height, width]);
    (scores, own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::device;

    fn text_encoder(vocab: usize) -> TextEncoder {
        TextEncoderConfig::new(vocab)
            .with_embedding_dim(8)
            .with_feature_dim(6)
            .init(&device())
    }

    fn ids(rows: &[&[i64]]) -> Tensor<2, Int> {
        let width = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), width]), &device())
    }

    #[test]
    fn padding_does_not_change_a_caption() {
        // The same caption, alone and padded in a batch beside a longer one, must encode the
        // same: padding is invisible to both LSTM directions.
        let encoder = text_encoder(10);
        let alone = encoder.forward(ids(&[&[3, 4, 5]]), &[3]);
        let padded = encoder.forward(ids(&[&[3, 4, 5, 0, 0], &[1, 2, 3, 4, 5]]), &[3, 5]);
        let a: Vec<f32> = alone.sentence.into_data().try_to_vec::<f32>().unwrap();
        let p: Vec<f32> = padded
            .sentence
            .narrow(0, 0, 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (x, y) in a.iter().zip(&p) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {p:?}");
        }
        let words: Vec<f32> = padded
            .words
            .narrow(0, 0, 1)
            .narrow(2, 3, 2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(words.iter().all(|&w| w == 0.0), "padding words are zero");
        assert_eq!(padded.lengths, vec![3, 5]);
    }

    #[test]
    fn matching_loss_is_hand_computed_cross_entropy() {
        // scores [[2, 0], [1, 3]]: image->text rows, text->image columns.
        let scores = Tensor::<2>::from_data([[2.0f32, 0.0], [1.0, 3.0]], &device());
        let (i2t, t2i) = batch_matching_loss(scores.clone(), None);
        let ce = |own: f32, other: f32| -(own - (own.exp() + other.exp()).ln());
        let expect_i2t = (ce(2.0, 0.0) + ce(3.0, 1.0)) / 2.0;
        let expect_t2i = (ce(2.0, 1.0) + ce(3.0, 0.0)) / 2.0;
        assert!((i2t.into_scalar::<f32>() - expect_i2t).abs() < 1e-5);
        assert!((t2i.into_scalar::<f32>() - expect_t2i).abs() < 1e-5);
        // Same class: the other caption leaves the softmax, so the loss is zero.
        let (i2t, t2i) = batch_matching_loss(scores, Some(&[7, 7]));
        assert!(i2t.into_scalar::<f32>().abs() < 1e-6);
        assert!(t2i.into_scalar::<f32>().abs() < 1e-6);
    }

    #[test]
    fn word_attention_is_a_distribution_over_regions() {
        let regions =
            Tensor::<4>::random([2, 6, 3, 3], burn::tensor::Distribution::Default, &device());
        let words = Tensor::<3>::random([2, 6, 4], burn::tensor::Distribution::Default, &device());
        let (scores, attention) = word_scores(regions, words, &[4, 2], DamsmGammas::new());
        assert_eq!(scores.dims(), [2, 2]);
        assert_eq!(attention.dims(), [2, 4, 3, 3]);
        let sums: Vec<f32> = attention
            .sum_dim(3)
            .sum_dim(2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for s in sums {
            assert!((s - 1.0).abs() < 1e-5, "{s}");
        }
    }

    #[test]
    fn word_score_matches_a_scalar_reference() {
        // One image with two regions, one caption with one word: the attention picks regions
        // by softmax(gamma1 * softmax_words(s)) and the score is log(exp(gamma2 * cos)).
        let regions = Tensor::<4>::from_data([[[[1.0f32, 0.0]], [[0.0, 1.0]]]], &device()); // [1, 2, 1, 2]
        let words = Tensor::<3>::from_data([[[2.0f32], [1.0]]], &device()); // [1, 2, 1]
        let gammas = DamsmGammas::new();
        let (scores, _) = word_scores(regions, words, &[1], gammas);
        // One word: the word softmax is 1 for both regions, so attention is uniform.
        let context = [0.5f32, 0.5];
        let cos =
            (context[0] * 2.0 + context[1] * 1.0) / ((0.5f32.powi(2) * 2.0).sqrt() * 5.0f32.sqrt());
        let expect = gammas.gamma2 * cos;
        let got = scores.into_scalar::<f32>();
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }
}
