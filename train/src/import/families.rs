//! The families: each checkpoint's key table and the reader that sizes its module from it.

use std::collections::BTreeSet;
use std::path::Path;

use burn::prelude::*;
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, GENERATOR_KEYS};
use t2i::damsm::{ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig};
use t2i::gan_int_cls::{GanIntClsConfig, Generator};
use t2i::stackgan::{StackGanConfig, StackGanGenerators};

use super::*;

/// AttnGAN's `G_NET`.
pub(super) const ATTNGAN_GENERATOR_KEYS: KeyMap = KeyMap {
    keys: GENERATOR_KEYS,
    skip: &[],
};

/// DAMSM's `RNN_ENCODER` (`encoder`, `rnn`): the embedding maps as is, the LSTM by gate.
pub(super) const TEXT_ENCODER_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[],
};

/// The Inception-v3 layers the authors' `CNN_ENCODER` holds beside its projections.
pub(super) const INCEPTION_LAYERS: &str = r"^(Conv2d_\d[a-z]_\dx\d|Mixed_\d[a-z]|AuxLogits|fc)\.";

/// DAMSM's `CNN_ENCODER`: the two projections; the Inception-v3 is skipped.
pub(super) const IMAGE_ENCODER_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[INCEPTION_LAYERS],
};

/// StackGAN-Pytorch's `STAGE1_G`.
pub(super) const STAGE1_KEYS: KeyMap = KeyMap {
    keys: &[
        ("^fc.0.", "^fc."),
        ("^fc.1.", "^fc_bn."),
        ("^upsample{n}.1.", "^upsample{n}.conv."),
        ("^upsample{n}.2.", "^upsample{n}.bn."),
        ("^img.0.", "^img."),
    ],
    skip: &[],
};

/// StackGAN-Pytorch's `STAGE2_G` (its `STAGE1_G.` tensors are read separately).
pub(super) const STAGE2_KEYS: KeyMap = KeyMap {
    keys: &[
        ("^encoder.0.", "^encoder.conv."),
        ("^encoder.2.", "^encoder.down1."),
        ("^encoder.3.", "^encoder.down1_bn."),
        ("^encoder.5.", "^encoder.down2."),
        ("^encoder.6.", "^encoder.down2_bn."),
        ("^hr_joint.0.", "^hr_joint."),
        ("^hr_joint.1.", "^hr_joint_bn."),
        ("^residual.{n}.block.0.", "^residual.{n}.conv1."),
        ("^residual.{n}.block.1.", "^residual.{n}.bn1."),
        ("^residual.{n}.block.3.", "^residual.{n}.conv2."),
        ("^residual.{n}.block.4.", "^residual.{n}.bn2."),
        ("^upsample{n}.1.", "^upsample{n}.conv."),
        ("^upsample{n}.2.", "^upsample{n}.bn."),
        ("^img.0.", "^img."),
    ],
    skip: &[r"^STAGE1_G\."],
};

/// GAN-INT-CLS: this project's own module paths.
pub(super) const GAN_INT_CLS_KEYS: KeyMap = KeyMap {
    keys: &[],
    skip: &[],
};

/// `dims[axis]` of tensor `name`, checked to have `rank` dimensions.
pub(super) fn dim(
    checkpoint: &Checkpoint,
    name: &str,
    rank: usize,
    axis: usize,
    what: &str,
) -> Result<usize, ImportError> {
    let shape = checkpoint.require_shape(name, what)?;
    if shape.len() != rank {
        return Err(ImportError::invalid(
            &checkpoint.path,
            format!("{name} has shape {shape:?}, but in {what} it has {rank} dimensions"),
        ));
    }
    Ok(shape[axis])
}

/// Indices `N` of the names `{prefix}N.` (residual blocks), counted.
pub(super) fn count_numbered(checkpoint: &Checkpoint, prefix: &str) -> usize {
    checkpoint
        .names()
        .filter_map(|n| {
            n.strip_prefix(prefix)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .collect::<BTreeSet<_>>()
        .len()
}

pub(super) fn has_prefix(checkpoint: &Checkpoint, prefix: &str) -> bool {
    checkpoint.names().any(|n| n.starts_with(prefix))
}

/// AttnGAN's generator (`netG_*.pth`); its sizes come from the file. `authors_mask_order`
/// reproduces the authors' attention masking bit for bit (see [`AttnGanConfig`]).
pub fn attngan_generator(
    path: &Path,
    authors_mask_order: bool,
    device: &Device,
) -> Result<(AttnGanGenerator, AttnGanConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "an AttnGAN generator (G_NET)";
    let ca_width = dim(&checkpoint, "ca_net.fc.weight", 2, 0, what)?;
    let text_dim = dim(&checkpoint, "ca_net.fc.weight", 2, 1, what)?;
    let fc_width = dim(&checkpoint, "h_net1.fc.0.weight", 2, 0, what)?;
    let fc_input = dim(&checkpoint, "h_net1.fc.0.weight", 2, 1, what)?;
    // CA: fc to 4C, GLU to 2C = (mu, logvar). INIT_STAGE_G: fc to 16 ngf x 4 x 4 x 2 (GLU).
    let condition_dim = ca_width / 4;
    let ngf = fc_width / (16 * 16 * 2);
    let branch_num = 1
        + usize::from(has_prefix(&checkpoint, "h_net2."))
        + usize::from(has_prefix(&checkpoint, "h_net3."));
    let residual_blocks = match count_numbered(&checkpoint, "h_net2.residual.") {
        0 => 2,
        n => n,
    };
    if ca_width % 4 != 0 || fc_width % 512 != 0 || ngf == 0 || fc_input <= condition_dim {
        return Err(ImportError::invalid(
            path,
            format!(
                "ca_net.fc.weight {:?} and h_net1.fc.0.weight {:?} do not describe an AttnGAN generator",
                checkpoint.shape("ca_net.fc.weight").unwrap_or_default(),
                checkpoint.shape("h_net1.fc.0.weight").unwrap_or_default()
            ),
        ));
    }
    let config = AttnGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(condition_dim)
        .with_noise_dim(fc_input - condition_dim)
        .with_ngf(ngf)
        .with_residual_blocks(residual_blocks)
        .with_branch_num(branch_num)
        .with_authors_mask_order(authors_mask_order);
    config
        .validate()
        .map_err(|e| ImportError::invalid(path, e))?;
    let what = format!(
        "an AttnGAN generator (ngf {ngf}, {branch_num} stages, {residual_blocks} residual blocks, \
         {text_dim}-value text features)"
    );
    let generator = load_checked(
        config.init_generator(device),
        &checkpoint,
        "",
        &ATTNGAN_GENERATOR_KEYS,
        &what,
    )?;
    Ok((generator, config))
}

/// DAMSM's text encoder (`text_encoder*.pth`); sizes from the file. The dropout rate is not
/// stored (it only acts in training) and is set to the authors' 0.5.
pub fn text_encoder(
    path: &Path,
    device: &Device,
) -> Result<(TextEncoder, TextEncoderConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a DAMSM text encoder (RNN_ENCODER)";
    let vocab_size = dim(&checkpoint, "encoder.weight", 2, 0, what)?;
    let embedding_dim = dim(&checkpoint, "encoder.weight", 2, 1, what)?;
    // [4H, H] in either direction; a file with neither is not an LSTM, one with only the
    // forward direction is reported below as missing the reverse tensors.
    let hidden_from = ["rnn.weight_hh_l0", "rnn.weight_hh_l0_reverse"]
        .into_iter()
        .find(|name| checkpoint.shape(name).is_some())
        .unwrap_or("rnn.weight_hh_l0");
    let hidden = dim(&checkpoint, hidden_from, 2, 1, what)?;
    let config = TextEncoderConfig::new(vocab_size)
        .with_embedding_dim(embedding_dim)
        .with_feature_dim(2 * hidden);
    let what = format!(
        "a DAMSM text encoder ({vocab_size} words, {embedding_dim}-value embeddings, \
         {hidden} LSTM units per direction)"
    );
    let encoder = load_checked(
        config.init(device),
        &checkpoint,
        "",
        &TEXT_ENCODER_KEYS,
        &what,
    )?;
    Ok((encoder, config))
}

/// DAMSM's image encoder projections (`image_encoder*.pth`); the Inception-v3 weights in the
/// file are skipped.
pub fn image_encoder(
    path: &Path,
    device: &Device,
) -> Result<(ImageEncoder, ImageEncoderConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a DAMSM image encoder (CNN_ENCODER)";
    let feature_dim = dim(&checkpoint, "emb_cnn_code.weight", 2, 0, what)?;
    let config = ImageEncoderConfig::new().with_feature_dim(feature_dim);
    let what = format!("a DAMSM image encoder ({feature_dim}-value features)");
    let encoder = load_checked(
        config.init(device),
        &checkpoint,
        "",
        &IMAGE_ENCODER_KEYS,
        &what,
    )?;
    Ok((encoder, config))
}

/// StackGAN-Pytorch's generators: `stage2` (`STAGE2_G`, holding its Stage-I under
/// `STAGE1_G.`), with the Stage-I taken from `stage1` (`STAGE1_G`) instead when given.
pub fn stackgan_generators(
    stage2: &Path,
    stage1: Option<&Path>,
    device: &Device,
) -> Result<(StackGanGenerators, StackGanConfig), ImportError> {
    let second = Checkpoint::open(stage2)?;
    let first_file = stage1.map(Checkpoint::open).transpose()?;
    let (first, first_prefix) = match &first_file {
        Some(c) => (c, ""),
        None => (&second, "STAGE1_G."),
    };
    let what1 = "a StackGAN Stage-I generator (STAGE1_G)";
    let what2 = "a StackGAN Stage-II generator (STAGE2_G)";
    let ca1 = format!("{first_prefix}ca_net.fc.weight");
    let fc1 = format!("{first_prefix}fc.0.weight");
    let condition_dim = dim(first, &ca1, 2, 0, what1)? / 2;
    let text_dim = dim(first, &ca1, 2, 1, what1)?;
    let stage1_ngf = dim(first, &fc1, 2, 0, what1)? / (8 * 16);
    let noise_dim = dim(first, &fc1, 2, 1, what1)?.saturating_sub(condition_dim);
    let stage2_ngf = dim(&second, "encoder.0.weight", 4, 0, what2)?;
    let residual_blocks = count_numbered(&second, "residual.");
    let stage2_text = dim(&second, "ca_net.fc.weight", 2, 1, what2)?;
    let stage2_condition = dim(&second, "ca_net.fc.weight", 2, 0, what2)? / 2;
    if (stage2_text, stage2_condition) != (text_dim, condition_dim) {
        return Err(ImportError::invalid(
            stage2,
            format!(
                "Stage-II's CA reads {stage2_text}-value text into a {stage2_condition}-value \
                 condition, Stage-I's {text_dim} into {condition_dim}: not one model"
            ),
        ));
    }
    let config = StackGanConfig::new()
        .with_text_dim(text_dim)
        .with_condition_dim(condition_dim)
        .with_noise_dim(noise_dim)
        .with_stage1_ngf(stage1_ngf)
        .with_stage2_ngf(stage2_ngf)
        .with_residual_blocks(residual_blocks);
    config
        .validate()
        .map_err(|e| ImportError::invalid(stage2, e))?;
    let stage1 = load_checked(
        config.init_stage1_generator(device),
        first,
        first_prefix,
        &STAGE1_KEYS,
        &format!("{what1} (gf_dim {stage1_ngf}, {text_dim}-value text)"),
    )?;
    let stage2 = load_checked(
        config.init_stage2_generator(device),
        &second,
        "",
        &STAGE2_KEYS,
        &format!("{what2} (gf_dim {stage2_ngf}, {residual_blocks} residual blocks)"),
    )?;
    Ok((StackGanGenerators { stage1, stage2 }, config))
}

/// A GAN-INT-CLS generator saved from PyTorch under this project's module paths.
pub fn gan_int_cls_generator(
    path: &Path,
    device: &Device,
) -> Result<(Generator, GanIntClsConfig), ImportError> {
    let checkpoint = Checkpoint::open(path)?;
    let what = "a GAN-INT-CLS generator";
    let projected = dim(&checkpoint, "text.fc.weight", 2, 0, what)?;
    let text_dim = dim(&checkpoint, "text.fc.weight", 2, 1, what)?;
    // ConvTranspose2d weights are [in, out, k, k] in PyTorch: [Z + N, 8 ngf, 4, 4].
    let project_in = dim(&checkpoint, "project.weight", 4, 0, what)?;
    let ngf = dim(&checkpoint, "project.weight", 4, 1, what)? / 8;
    let config = GanIntClsConfig::new()
        .with_text_dim(text_dim)
        .with_projected_text_dim(projected)
        .with_noise_dim(project_in.saturating_sub(projected))
        .with_ngf(ngf);
    if ngf < 4 || project_in <= projected {
        return Err(ImportError::invalid(
            path,
            format!("text.fc.weight and project.weight do not describe a {what}"),
        ));
    }
    let what = format!("{what} (ngf {ngf}, {text_dim}-value text)");
    let generator = load_checked(
        config.init_generator(device),
        &checkpoint,
        "",
        &GAN_INT_CLS_KEYS,
        &what,
    )?;
    Ok((generator, config))
}
