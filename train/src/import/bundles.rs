//! The text side of a bundle-to-be, and the bundles `t2i import` writes.

use std::path::Path;

use burn::prelude::*;
use t2i::bundle::{self, AttnGanWeights, GanIntClsWeights, StackGanWeights};
use t2i::damsm::{Damsm, DamsmConfig};
use t2i::quant::Precision;

use super::*;
use crate::damsm::commands::TextSide;
use crate::run::checkpoint::write_bundle;

/// Where an imported generator's text encoder and vocabulary come from.
pub enum TextSource<'a> {
    /// The authors' `text_encoder*.pth` and `captions.pickle`.
    Checkpoint {
        encoder: &'a Path,
        captions: &'a Path,
    },
    /// Any bundle holding a text encoder (a DAMSM or generator bundle).
    Bundle(&'a Path),
}

/// Reads the text side of a bundle-to-be; the vocabulary must fill the embedding table.
pub fn text_side(source: TextSource<'_>, device: &Device) -> anyhow::Result<TextSide> {
    use anyhow::Context;
    match source {
        TextSource::Checkpoint { encoder, captions } => {
            let vocabulary = captions_vocabulary(captions)?;
            let (encoder_module, config) = text_encoder(encoder, device)?;
            if vocabulary.len() != config.vocab_size {
                anyhow::bail!(
                    "{} has {} words, but the text encoder {} has {} embedding rows: they are \
                     not from the same training",
                    captions.display(),
                    vocabulary.len(),
                    encoder.display(),
                    config.vocab_size
                );
            }
            Ok(TextSide {
                encoder: encoder_module,
                config,
                vocabulary,
            })
        }
        TextSource::Bundle(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let format = bundle::bundle_format(&bytes)
                .with_context(|| format!("{} is not a bundle", path.display()))?;
            let context = || format!("cannot load the text encoder of {}", path.display());
            if format == "t2i-damsm" {
                let (damsm, config, vocabulary) =
                    bundle::load_damsm(&bytes, device).with_context(context)?;
                return Ok(TextSide {
                    encoder: damsm.text_encoder,
                    config: config.text,
                    vocabulary,
                });
            }
            let gan = bundle::load_gan(&bytes, device).with_context(context)?;
            let text = gan.text();
            Ok(TextSide {
                encoder: text.encoder.clone(),
                config: text.config.clone(),
                vocabulary: text.vocabulary.clone(),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// `t2i import attngan`: the generator with its text side as an AttnGAN bundle.
pub fn write_attngan_bundle(
    generator: &Path,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let text = text_side(text, device)?;
    let (generator, gan_config) = attngan_generator(generator, false, device)?;
    eprintln!(
        "AttnGAN generator: ngf {}, {} stages, {} residual blocks, {}-value text features; \
         text encoder: {} words",
        gan_config.ngf,
        gan_config.branch_num,
        gan_config.residual_blocks,
        gan_config.text_dim,
        text.vocabulary.len()
    );
    let bundle = text.bundle::<AttnGanWeights>(generator, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported AttnGAN generator and text encoder",
    )
}

/// `t2i import stackgan`: both generators with a text side as a StackGAN bundle.
pub fn write_stackgan_bundle(
    stage2: &Path,
    stage1: Option<&Path>,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let (generators, gan_config) = stackgan_generators(stage2, stage1, device)?;
    eprintln!(
        "StackGAN generators: Stage-I gf_dim {}, Stage-II gf_dim {}, {} residual blocks, \
         {}-value text embedding",
        gan_config.stage1_ngf,
        gan_config.stage2_ngf,
        gan_config.residual_blocks,
        gan_config.text_dim
    );
    let text = text_side(text, device)?;
    if text.config.feature_dim != gan_config.text_dim {
        anyhow::bail!(
            "the generators read {}-value text embeddings (StackGAN-Pytorch's own birds models \
             read the 1024-value char-CNN-RNN embedding, which this project has no encoder \
             for), but the text encoder gives {}: pass a generator trained on DAMSM sentence \
             features of that width",
            gan_config.text_dim,
            text.config.feature_dim
        );
    }
    let bundle = text.bundle::<StackGanWeights>(generators, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported StackGAN generators and text encoder",
    )
}

/// `t2i import gan-int-cls`: a generator saved under this project's names, with a text side.
pub fn write_gan_int_cls_bundle(
    generator: &Path,
    text: TextSource<'_>,
    out: &Path,
    precision: Precision,
    device: &Device,
) -> anyhow::Result<()> {
    let (generator, gan_config) = gan_int_cls_generator(generator, device)?;
    eprintln!(
        "GAN-INT-CLS generator: ngf {}, {}-value text embedding",
        gan_config.ngf, gan_config.text_dim
    );
    let text = text_side(text, device)?;
    let bundle = text.bundle::<GanIntClsWeights>(generator, gan_config);
    write_bundle(
        out,
        &bundle.to_bytes(precision)?,
        precision,
        "imported GAN-INT-CLS generator and text encoder",
    )
}

/// `t2i import damsm`: both DAMSM encoders and the vocabulary as a DAMSM bundle.
pub fn write_damsm_bundle(
    text_encoder_path: &Path,
    image_encoder_path: &Path,
    captions: &Path,
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let text = text_side(
        TextSource::Checkpoint {
            encoder: text_encoder_path,
            captions,
        },
        device,
    )?;
    let (image_encoder, image_config) = image_encoder(image_encoder_path, device)?;
    if image_config.feature_dim != text.config.feature_dim {
        anyhow::bail!(
            "{} gives {}-value features but {} gives {}: not one DAMSM",
            image_encoder_path.display(),
            image_config.feature_dim,
            text_encoder_path.display(),
            text.config.feature_dim
        );
    }
    let config = DamsmConfig {
        text: text.config,
        image: image_config,
    };
    let damsm = Damsm {
        text_encoder: text.encoder,
        image_encoder,
    };
    let bytes = bundle::save_damsm(&damsm, &config, &text.vocabulary)?;
    write_bundle(
        out,
        &bytes,
        Precision::F32,
        "imported DAMSM text and image encoders",
    )
}
