//! How much a generator's first stage follows the caption: for captions of different colours
//! drawn with the same seeds, the change a caption makes (same seed) against the change a seed
//! makes (same caption), on the first stage's images, and for the families with conditioning
//! augmentation (StackGAN, AttnGAN) how far CA's mean moves between captions against how far
//! two CA draws of one caption lie apart. A first stage that reads the caption changes with it
//! at least as much as with the seed.

use burn::prelude::*;

use crate::bundle::GanBundle;
use crate::generate::GenerateError;
use crate::layers::ConditioningAugmentation;

/// Captions of clearly different birds, in words every shipped vocabulary reads (the first two
/// are those the AttnGAN stage-1 fault was found with).
pub const COLOUR_CAPTIONS: [&str; 6] = [
    "a small bright red bird with a black face and a thick orange bill",
    "a big brown bird with long narrow wings and a hooked bill",
    "a small yellow bird with black wings and a short pointed bill",
    "a blue bird with a white belly and a long tail",
    "a black bird with a red patch on its wing",
    "a white bird with grey wings and a yellow bill",
];

/// Mean distances between first-stage images, over all pairs of captions at each seed
/// (`across_captions`) and all pairs of seeds for each caption (`across_seeds`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub across_captions: f32,
    pub across_seeds: f32,
}

impl Spread {
    /// How much more a caption changes the images than a seed does.
    pub fn ratio(&self) -> f32 {
        self.across_captions / self.across_seeds
    }
}

/// What [`first_stage_caption_effect`] measures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptionEffect {
    /// The first stage's image side.
    pub size: usize,
    /// Mean absolute pixel difference, 0-255.
    pub pixels: Spread,
    /// Distance between the images' mean RGB colours, 0-255.
    pub colour: Spread,
    /// CA's mean for two captions (`across_captions`: `|mu_a - mu_b|`) against two CA draws of
    /// one caption (`across_seeds`: `sqrt(2 sum sigma^2)`, their expected distance). `None` for
    /// GAN-INT-CLS, which has no CA.
    pub condition: Option<Spread>,
}

/// The first stage's [`CaptionEffect`] for `captions` (at least two) drawn with each of `seeds`
/// (at least two).
pub fn first_stage_caption_effect(
    bundle: &GanBundle,
    captions: &[&str],
    seeds: &[u64],
    device: &Device,
) -> Result<CaptionEffect, GenerateError> {
    assert!(
        captions.len() >= 2 && seeds.len() >= 2,
        "two captions and two seeds at least"
    );
    let tokens = captions
        .iter()
        .map(|caption| bundle.tokens(caption).map(|(ids, _)| ids))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&[u32]> = tokens.iter().map(Vec::as_slice).collect();
    let text = bundle.encode(&refs, device);
    let sentence = text.sentence.clone();
    let k = captions.len();
    // Rows: every caption with the first seed, then every caption with the second, ...
    let row_seeds: Vec<u64> = seeds
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, k))
        .collect();
    let stages = bundle.first_stages(text.repeat(seeds.len()), &row_seeds, 1, device)?;
    let images = stages[0].images.clone().add_scalar(1.0).mul_scalar(127.5); // [B, 3, S, S]
    let [_, _, size, _] = images.dims();
    let pixels = values(images.clone())?;
    let colours = values(images.mean_dims(&[2, 3]))?; // [B, 3]
    let per_image = pixels.len() / row_seeds.len();
    let pixel = |row: usize| &pixels[row * per_image..(row + 1) * per_image];
    let colour = |row: usize| &colours[row * 3..row * 3 + 3];
    let spread = |distance: &dyn Fn(usize, usize) -> f32| {
        let mut captions_sum = Mean::default();
        let mut seeds_sum = Mean::default();
        for s in 0..seeds.len() {
            for (a, b) in pairs(k) {
                captions_sum.add(distance(s * k + a, s * k + b));
            }
        }
        for c in 0..k {
            for (s, t) in pairs(seeds.len()) {
                seeds_sum.add(distance(s * k + c, t * k + c));
            }
        }
        Spread {
            across_captions: captions_sum.get(),
            across_seeds: seeds_sum.get(),
        }
    };
    let condition = match bundle {
        GanBundle::GanIntCls(_) => None,
        GanBundle::StackGan(b) => Some(condition_spread(
            &b.weights.generators.stage1.ca_net,
            sentence,
        )?),
        GanBundle::AttnGan(b) => Some(condition_spread(&b.weights.generator.ca_net, sentence)?),
    };
    Ok(CaptionEffect {
        size,
        pixels: spread(&|a, b| mean_absolute_difference(pixel(a), pixel(b))),
        colour: spread(&|a, b| euclidean(colour(a), colour(b))),
        condition,
    })
}

/// CA's means of the captions' sentences `[K, P]` against two draws of one caption.
fn condition_spread(
    ca: &ConditioningAugmentation,
    sentence: Tensor<2>,
) -> Result<Spread, GenerateError> {
    let [k, _] = sentence.dims();
    let (mu, logvar) = ca.encode(sentence);
    let (mu, variance) = (values(mu)?, values(logvar.exp())?);
    let c = mu.len() / k;
    let row = |v: &[f32], i: usize| v[i * c..(i + 1) * c].to_vec();
    let mut means = Mean::default();
    for (a, b) in pairs(k) {
        means.add(euclidean(&row(&mu, a), &row(&mu, b)));
    }
    let mut draws = Mean::default();
    for a in 0..k {
        draws.add((2.0 * row(&variance, a).iter().sum::<f32>()).sqrt());
    }
    Ok(Spread {
        across_captions: means.get(),
        across_seeds: draws.get(),
    })
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, GenerateError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| GenerateError::ReadBack(format!("{e:?}")))
}

/// Every unordered pair of `0..n`.
fn pairs(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |a| (a + 1..n).map(move |b| (a, b)))
}

fn mean_absolute_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f32>()
        .sqrt()
}

#[derive(Default)]
struct Mean {
    sum: f64,
    count: usize,
}

impl Mean {
    fn add(&mut self, value: f32) {
        self.sum += f64::from(value);
        self.count += 1;
    }
    fn get(&self) -> f32 {
        (self.sum / self.count.max(1) as f64) as f32
    }
}
