//! A GAN's training set in memory: images at the crop's load size with the sentence embeddings
//! (and tokens) of their captions, and the batches a step draws from it — real crops, the right
//! caption, a mismatched one and an interpolation partner. Every family trains on one.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use rand::Rng;
use rand::rngs::StdRng;
use t2i::damsm::{TextEncoder, TextEncoderConfig};
use t2i::vocab::Vocabulary;

use crate::data::preprocess::{
    load_size, pyramid, random_crop_flip, resize_shorter_side, to_chw_normalized,
};

/// Training images with the sentence embeddings of their captions.
pub struct GanSet {
    /// The size of the random crops a step trains on (64, or 256 for StackGAN's Stage-II).
    pub image_size: u32,
    /// Images at the crop's load size (76 for 64), so each step only crops and flips.
    pub images: Vec<RgbImage>,
    pub class_ids: Vec<u32>,
    /// Per image: the embeddings of its captions, `text_dim` values each, concatenated.
    pub embeddings: Vec<Vec<f32>>,
    pub text_dim: usize,
    /// Per image, per caption (in the order of `embeddings`): the caption's token ids. AttnGAN
    /// runs the text encoder on them every step; GAN-INT-CLS and StackGAN read only the
    /// embeddings. `None` for a set prepared before tokens were stored.
    pub tokens: Option<Vec<Vec<Vec<u32>>>>,
}

impl GanSet {
    /// Pairs images with caption embeddings for `image_size` crops; images without any
    /// embedding are dropped.
    pub fn new(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        text_dim: usize,
    ) -> Self {
        Self::build(image_size, images, class_ids, embeddings, None, text_dim)
    }

    /// [`GanSet::new`] with the token ids of every caption: per image, one list per caption,
    /// in the order of its embeddings.
    ///
    /// # Panics
    /// When an image has another number of token lists than of embeddings.
    pub fn with_tokens(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        tokens: Vec<Vec<Vec<u32>>>,
        text_dim: usize,
    ) -> Self {
        assert_eq!(
            tokens.len(),
            embeddings.len(),
            "one token list set per image"
        );
        for (i, (t, e)) in tokens.iter().zip(&embeddings).enumerate() {
            assert_eq!(
                t.len() * text_dim,
                e.len(),
                "image {i}: {} token lists for {} embeddings of {text_dim} values",
                t.len(),
                e.len() / text_dim.max(1)
            );
        }
        Self::build(
            image_size,
            images,
            class_ids,
            embeddings,
            Some(tokens),
            text_dim,
        )
    }

    fn build(
        image_size: u32,
        images: Vec<RgbImage>,
        class_ids: Vec<u32>,
        embeddings: Vec<Vec<f32>>,
        tokens: Option<Vec<Vec<Vec<u32>>>>,
        text_dim: usize,
    ) -> Self {
        let mut set = GanSet {
            image_size,
            images: Vec::new(),
            class_ids: Vec::new(),
            embeddings: Vec::new(),
            text_dim,
            tokens: tokens.as_ref().map(|_| Vec::new()),
        };
        let mut tokens = tokens.map(Vec::into_iter);
        for ((image, class), embedding) in images.into_iter().zip(class_ids).zip(embeddings) {
            let image_tokens = tokens.as_mut().and_then(Iterator::next);
            if embedding.is_empty() {
                continue;
            }
            set.images
                .push(resize_shorter_side(&image, load_size(image_size)));
            set.class_ids.push(class);
            set.embeddings.push(embedding);
            if let (Some(all), Some(t)) = (set.tokens.as_mut(), image_tokens) {
                all.push(t);
            }
        }
        set
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Number of captions (embeddings) of image `image`.
    pub fn captions(&self, image: usize) -> usize {
        self.embeddings[image].len() / self.text_dim
    }

    /// The embedding of caption `caption` of image `image`: `text_dim` values.
    pub fn embedding(&self, image: usize, caption: usize) -> &[f32] {
        &self.embeddings[image][caption * self.text_dim..(caption + 1) * self.text_dim]
    }

    /// The token ids of caption `caption` of image `image`; `None` when the set has no tokens.
    pub fn caption_tokens(&self, image: usize, caption: usize) -> Option<&[u32]> {
        self.tokens
            .as_ref()
            .map(|all| all[image][caption].as_slice())
    }

    /// One of the image's captions, uniformly at random.
    pub(crate) fn draw_caption(&self, image: usize, rng: &mut StdRng) -> usize {
        rng.random_range(0..self.captions(image))
    }
}

/// Sentence embeddings of captions with a frozen text encoder, in batches; a caption with no
/// known word has none (`None`).
pub fn sentence_embeddings(
    encoder: &TextEncoder,
    vocabulary: &Vocabulary,
    captions: &[&str],
    device: &Device,
) -> Vec<Option<Vec<f32>>> {
    let encoded: Vec<Vec<u32>> = captions
        .iter()
        .map(|c| vocabulary.encode(c).tokens)
        .collect();
    let mut out: Vec<Option<Vec<f32>>> = vec![None; captions.len()];
    let known: Vec<usize> = (0..captions.len())
        .filter(|&i| !encoded[i].is_empty())
        .collect();
    for chunk in known.chunks(256) {
        let tokens: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
        let sentence = encoder.encode_ids(&tokens, device).sentence;
        let dim = sentence.dims()[1];
        let values = sentence
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("converted to f32");
        for (row, &i) in chunk.iter().enumerate() {
            out[i] = Some(values[row * dim..(row + 1) * dim].to_vec());
        }
    }
    out
}

/// `n` coloured shapes ([`crate::data::shapes_dataset`], seed 1) at `size` px as a training set,
/// one caption each, embedded by a freshly initialised DAMSM text encoder over their own words
/// (seeded 0 on `device`): the set and the encoder. For measurements of a training step, where
/// neither the images nor the encoder's weights change the cost.
pub fn shapes_gan_set(n: usize, size: u32, device: &Device) -> (GanSet, TextEncoder) {
    let shapes = crate::data::shapes_dataset(n, size, 1);
    let captions: Vec<&str> = shapes.iter().map(|(_, c, _)| c.as_str()).collect();
    let vocabulary = Vocabulary::build(captions.iter().copied(), 1);
    device.seed(0);
    let config = TextEncoderConfig::new(vocabulary.len());
    let encoder = config.init(device);
    // Every word is in the vocabulary, so every caption has an embedding (an image without
    // one would be dropped).
    let embeddings = sentence_embeddings(&encoder, &vocabulary, &captions, device)
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let text_dim = config.feature_dim;
    let set = GanSet::with_tokens(
        size,
        shapes.iter().map(|(i, _, _)| i.clone()).collect(),
        shapes
            .iter()
            .map(|(_, _, l)| l.class_index() as u32)
            .collect(),
        embeddings,
        captions
            .iter()
            .map(|c| vec![vocabulary.encode(c).tokens])
            .collect(),
        text_dim,
    );
    (set, encoder)
}

/// One training batch of a [`GanSet`].
pub(crate) struct GanBatch {
    /// Real images, cropped and flipped: `[B, 3, S, S]`.
    pub real: Tensor<4>,
    /// The same crops downsampled to each size [`GanBatch::draw_pyramid`] was asked for
    /// (AttnGAN's earlier stages), `[B, 3, s, s]` each; empty from [`GanBatch::draw`].
    pub smaller: Vec<Tensor<4>>,
    /// Which caption of its image each row drew (its embedding is `right`'s row, its tokens
    /// [`GanSet::caption_tokens`]).
    pub caption_ids: Vec<usize>,
    /// One caption embedding of each image: `[B, P]`.
    pub right: Tensor<2>,
    /// A caption of another image, of another class where the batch has one: `[B, P]`.
    pub wrong: Tensor<2>,
    /// The caption embedding GAN-INT mixes with `right` (the next image's): `[B, P]`.
    pub partner: Tensor<2>,
}

impl GanBatch {
    pub(crate) fn draw(data: &GanSet, rows: &[usize], rng: &mut StdRng, device: &Device) -> Self {
        Self::draw_pyramid(data, rows, rng, device, &[])
    }

    /// [`GanBatch::draw`], plus each crop downsampled (bilinear, as the authors' `Scale`) to
    /// every one of `smaller` sizes, into [`GanBatch::smaller`]. Draws the same random numbers
    /// as [`GanBatch::draw`].
    pub(crate) fn draw_pyramid(
        data: &GanSet,
        rows: &[usize],
        rng: &mut StdRng,
        device: &Device,
        smaller: &[u32],
    ) -> Self {
        let n = rows.len();
        let size = data.image_size as usize;
        let mut pixels = Vec::with_capacity(n * 3 * size * size);
        let mut small_pixels: Vec<Vec<f32>> = vec![Vec::new(); smaller.len()];
        for &r in rows {
            let crop = random_crop_flip(&data.images[r], data.image_size, rng);
            for (out, image) in small_pixels.iter_mut().zip(pyramid(&crop, smaller)) {
                out.extend(to_chw_normalized(&image));
            }
            pixels.extend(to_chw_normalized(&crop));
        }
        let caption_ids: Vec<usize> = rows.iter().map(|&r| data.draw_caption(r, rng)).collect();
        let captions: Vec<&[f32]> = rows
            .iter()
            .zip(&caption_ids)
            .map(|(&r, &k)| data.embedding(r, k))
            .collect();
        let wrong: Vec<&[f32]> = (0..n)
            .map(|i| {
                let other = (1..n)
                    .map(|k| (i + k) % n)
                    .find(|&j| data.class_ids[rows[j]] != data.class_ids[rows[i]])
                    .unwrap_or((i + 1) % n);
                captions[other]
            })
            .collect();
        let partner: Vec<&[f32]> = (0..n).map(|i| captions[(i + 1) % n]).collect();
        let text = |rows: &[&[f32]]| {
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [n, data.text_dim]), device)
        };
        GanBatch {
            real: Tensor::from_data(TensorData::new(pixels, [n, 3, size, size]), device),
            smaller: small_pixels
                .into_iter()
                .zip(smaller)
                .map(|(p, &s)| {
                    let s = s as usize;
                    Tensor::from_data(TensorData::new(p, [n, 3, s, s]), device)
                })
                .collect(),
            caption_ids,
            right: text(&captions),
            wrong: text(&wrong),
            partner: text(&partner),
        }
    }
}
