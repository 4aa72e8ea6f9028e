//! How much each bundle's first stage follows the caption ([`t2i::caption_effect`]): six
//! captions of different colours, eight seeds; the change a caption makes against the change a
//! seed makes, in pixels and in mean colour, and CA's mean between captions against two CA
//! draws of one caption (README, "AttnGAN's first stage").
//!
//!   cargo run --release -p t2i-train --example stage1_caption_effect -- weights/*.safetensors

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use t2i::bundle::load_gan;
use t2i::caption_effect::{COLOUR_CAPTIONS, Spread, first_stage_caption_effect};

fn main() -> Result<()> {
    let device = Device::flex();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        bail!("give one or more bundle files, e.g. weights/attngan_birds_small.int8.safetensors");
    }
    let seeds: Vec<u64> = (0..8).collect();
    let show = |what: &str, s: &Spread| {
        println!(
            "  {what:<12} captions {:7.2}  seeds {:7.2}  ratio {:.2}",
            s.across_captions,
            s.across_seeds,
            s.ratio()
        )
    };
    for path in paths {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
        let bundle = load_gan(&bytes, &device).with_context(|| path.clone())?;
        let effect = first_stage_caption_effect(&bundle, &COLOUR_CAPTIONS, &seeds, &device)?;
        println!(
            "{path} ({}, first stage {} px)",
            bundle.family(),
            effect.size
        );
        show("pixels", &effect.pixels);
        show("mean colour", &effect.colour);
        if let Some(condition) = &effect.condition {
            show("CA", condition);
        }
    }
    Ok(())
}
