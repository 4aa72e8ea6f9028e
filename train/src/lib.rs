//! The native side of t2i: datasets, cached frozen-network features, training loops,
//! evaluation and export. The `t2i` binary (`main.rs`) is a thin command line over this.
//!
//! One folder per paper, each with its training (`train.rs`) and its commands end to end
//! (`commands.rs`: prepare, train, evaluate, export, behind the [`family`] trait that
//! `main.rs` dispatches to once):
//! [`gan_int_cls`], [`stackgan`], [`attngan`] and the [`damsm`] text and image encoders
//! AttnGAN stands on. The machinery they share has one home each: [`run`] (the training loop,
//! checkpoints, logs, pictures), [`data`] (datasets, prepared sets, cached features), [`eval`]
//! (FID, Inception Score, R-precision), [`generate`] (`t2i generate`), [`import`] (the authors'
//! PyTorch checkpoints), [`config`] and [`device`].

pub mod allocator;
pub mod attngan;
pub mod config;
pub mod damsm;
pub mod data;
pub mod device;
pub mod eval;
pub mod family;
pub mod gan_int_cls;
pub mod generate;
pub mod import;
pub mod run;
pub mod stackgan;
