//! The text side of a bundle-to-be, and the bundles `t2i import` writes.

use std::path::Path;

use burn::prelude::*;
use t2i::bundle::{self, AttnGanWeights, BundledWeights, GanIntClsWeights, StackGanWeights};
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
        TextSource::Bundle(path) => Ok(crate::damsm::commands::load_text_side(path, device)?.0),
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// What an imported generator becomes: the bundle at `out`, at `precision`, with the text side
/// of `text`.
pub struct ImportTarget<'a> {
    pub text: TextSource<'a>,
    pub out: &'a Path,
    pub precision: Precision,
}

impl ImportTarget<'_> {
    /// Writes `generators` with the text side as a `W` bundle (refused, naming both widths,
    /// where the text encoder's width is not the one the generators read); `what` is the
    /// bundle's provenance ("imported AttnGAN generator").
    fn write<W: BundledWeights>(
        self,
        generators: W::Generator,
        gan_config: W::GanConfig,
        what: &str,
        device: &Device,
    ) -> anyhow::Result<()> {
        let text = text_side(self.text, device)?;
        eprintln!("text encoder: {} words", text.vocabulary.len());
        let bundle = text.bundle::<W>(generators, gan_config);
        let provenance = format!("{what} and text encoder");
        write_bundle(
            self.out,
            &bundle.to_bytes(self.precision)?,
            self.precision,
            &provenance,
        )
    }
}

/// `t2i import attngan`: the generator with its text side as an AttnGAN bundle.
pub fn write_attngan_bundle(
    generator: &Path,
    target: ImportTarget<'_>,
    device: &Device,
) -> anyhow::Result<()> {
    let (generator, gan_config) = attngan_generator(generator, false, device)?;
    eprintln!(
        "AttnGAN generator: ngf {}, {} stages, {} residual blocks, {}-value text features",
        gan_config.ngf, gan_config.branch_num, gan_config.residual_blocks, gan_config.text_dim,
    );
    target.write::<AttnGanWeights>(generator, gan_config, "imported AttnGAN generator", device)
}

/// `t2i import stackgan`: both generators with a text side as a StackGAN bundle.
pub fn write_stackgan_bundle(
    stage2: &Path,
    stage1: Option<&Path>,
    target: ImportTarget<'_>,
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
    target.write::<StackGanWeights>(
        generators,
        gan_config,
        "imported StackGAN generators",
        device,
    )
}

/// `t2i import gan-int-cls`: a generator saved under this project's names, with a text side.
pub fn write_gan_int_cls_bundle(
    generator: &Path,
    target: ImportTarget<'_>,
    device: &Device,
) -> anyhow::Result<()> {
    let (generator, gan_config) = gan_int_cls_generator(generator, device)?;
    eprintln!(
        "GAN-INT-CLS generator: ngf {}, {}-value text embedding",
        gan_config.ngf, gan_config.text_dim
    );
    target.write::<GanIntClsWeights>(
        generator,
        gan_config,
        "imported GAN-INT-CLS generator",
        device,
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
