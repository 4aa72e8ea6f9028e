//! GAN-INT-CLS (Reed et al. 2016): its training step ([`train`]) and its commands end to end
//! ([`commands`]). The networks are [`t2i::gan_int_cls`].

pub mod commands;
pub mod train;

pub use commands::GanIntCls;
