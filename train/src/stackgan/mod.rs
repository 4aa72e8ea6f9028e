//! StackGAN (Zhang et al. 2017): Stage-I and Stage-II training ([`train`]) and the commands end
//! to end ([`commands`]). The networks are [`t2i::stackgan`].

pub mod commands;
pub mod train;

pub use commands::StackGan;
