//! `t2i import`: the authors' PyTorch checkpoints as ordinary bundles.
//!
//! Reads what the reference code saves with `torch.save(net.state_dict(), ..)`:
//! - AttnGAN (taoxugit/AttnGAN): the generator `netG_*.pth`, the DAMSM text encoder
//!   `text_encoder*.pth`, the image encoder `image_encoder*.pth` (only its two trainable
//!   projections are read: the Inception-v3 it also holds is the frozen ImageNet network this
//!   project already has) and the vocabulary in `captions.pickle`;
//! - StackGAN-Pytorch (hanzhanggit): the Stage-I and Stage-II generators (`netG_epoch_*.pth`;
//!   a Stage-II file holds its Stage-I under `STAGE1_G.`);
//! - GAN-INT-CLS: a state dict whose names are this project's module paths.
//!
//! Files are parsed by `pytorch-reader` (burn's reader, pure Rust): both the zip container of
//! PyTorch 1.6+ and the legacy zip-less stream of the PyTorch 0.3 / 0.4 the authors used.
//! Nothing in a pickle is ever executed; a state dict holding anything but tensors (a class
//! instance, a function call) is refused with the entry's name and Python type.
//!
//! Sizes are read off the checkpoint (e.g. AttnGAN's `ngf` from `h_net1.fc.0.weight`), the
//! module is built at those sizes, and every tensor is then checked against it in the
//! checkpoint's own names and layout: missing, unexpected and mis-shaped tensors are all listed
//! in one error. Names map onto the modules one to one through the key tables (`families.rs`); PyTorch
//! layouts are adapted on load (linear weights transposed, batch norm `weight`/`bias` as
//! `gamma`/`beta`, an LSTM's four stacked gates split into burn's per-gate layers).

use std::fmt;
use std::path::{Path, PathBuf};

mod bundles;
mod families;
mod matching;
mod state_dict;
mod vocabulary;

pub use bundles::*;
pub use families::*;
#[allow(unused_imports)]
use matching::*;
pub use state_dict::*;
pub use vocabulary::*;

/// What is wrong with a checkpoint, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot open: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: not a readable PyTorch checkpoint (truncated or corrupted?): {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("{}: {mismatch}", path.display())]
    Mismatch { path: PathBuf, mismatch: Mismatch },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl ImportError {
    fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// How a checkpoint's tensors differ from the module they should fill, in the checkpoint's
/// names and PyTorch layout.
#[derive(Debug, Default, PartialEq)]
pub struct Mismatch {
    /// What the tensors were read as (e.g. "an AttnGAN generator (ngf 32, 3 stages)").
    pub what: String,
    /// Tensors the module needs that the file lacks: (name, expected shape).
    pub missing: Vec<(String, Vec<usize>)>,
    /// Tensors in the file the module has no place for: (name, shape).
    pub unexpected: Vec<(String, Vec<usize>)>,
    /// (name, shape in the file, shape the module needs).
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl Mismatch {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.misshaped.is_empty()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the tensors do not fit {}", self.what)?;
        for (name, shape) in &self.missing {
            write!(f, "\n  missing    {name} {shape:?}")?;
        }
        for (name, shape) in &self.unexpected {
            write!(f, "\n  unexpected {name} {shape:?}")?;
        }
        for (name, found, expected) in &self.misshaped {
            write!(
                f,
                "\n  mis-shaped {name}: {found:?} in the file, {expected:?} expected"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;
    use t2i::key_map::Direction;

    #[test]
    fn key_tables_invert_each_other() {
        let cases: [(&KeyMap, &[&str]); 3] = [
            (
                &ATTNGAN_GENERATOR_KEYS,
                &[
                    "h_net1.fc.0.weight",
                    "h_net1.fc.1.running_var",
                    "h_net1.upsample1.1.weight",
                    "h_net1.upsample4.2.bias",
                    "img_net2.img.0.weight",
                    "h_net3.residual.1.block.0.weight",
                    "h_net3.residual.1.block.4.running_mean",
                    "h_net2.upsample.1.weight",
                    "h_net2.upsample.2.weight",
                    "h_net2.att.conv_context.weight",
                    "ca_net.fc.weight",
                ],
            ),
            (
                &STAGE1_KEYS,
                &[
                    "fc.0.weight",
                    "fc.1.bias",
                    "upsample3.1.weight",
                    "upsample3.2.running_var",
                    "img.0.weight",
                    "ca_net.fc.bias",
                ],
            ),
            (
                &STAGE2_KEYS,
                &[
                    "encoder.0.weight",
                    "encoder.2.weight",
                    "encoder.3.weight",
                    "encoder.5.weight",
                    "encoder.6.running_mean",
                    "hr_joint.0.weight",
                    "hr_joint.1.bias",
                    "residual.1.block.3.weight",
                    "residual.0.block.4.bias",
                    "upsample2.1.weight",
                    "img.0.weight",
                ],
            ),
        ];
        for (keys, names) in cases {
            for name in names {
                let module = apply_rules(name, &compile_rules(keys.keys, Direction::ToModule));
                let back = apply_rules(&module, &compile_rules(keys.keys, Direction::ToCheckpoint));
                assert_eq!(&back, name);
            }
        }
    }

    #[test]
    fn lstm_gates_come_from_pytorch_stacks() {
        assert_eq!(
            lstm_source("rnn.forward.input_gate.input_transform.weight"),
            Some(("rnn.weight_ih_l0".into(), 0))
        );
        assert_eq!(
            lstm_source("rnn.reverse.output_gate.hidden_transform.bias"),
            Some(("rnn.bias_hh_l0_reverse".into(), 3))
        );
        assert_eq!(
            lstm_source("rnn.forward.cell_gate.hidden_transform.weight"),
            Some(("rnn.weight_hh_l0".into(), 2))
        );
        assert_eq!(lstm_source("encoder.weight"), None);
    }

    #[test]
    fn inception_layers_are_recognised() {
        let re = Regex::new(INCEPTION_LAYERS).unwrap();
        for name in [
            "Conv2d_1a_3x3.conv.weight",
            "Conv2d_3b_1x1.bn.running_mean",
            "Mixed_7c.branch_pool.conv.weight",
            "Mixed_5b.branch1x1.bn.bias",
        ] {
            assert!(re.is_match(name), "{name}");
        }
        for name in ["emb_features.weight", "emb_cnn_code.bias"] {
            assert!(!re.is_match(name), "{name}");
        }
    }
}
