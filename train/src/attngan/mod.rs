//! AttnGAN (Xu et al. 2018): its training step with the DAMSM loss ([`train`]) and the commands
//! end to end, attention figures included ([`commands`]). The networks are [`t2i::attngan`].

pub mod commands;
pub mod train;

pub use commands::AttnGan;
