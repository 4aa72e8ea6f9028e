//! Text-to-image GANs — GAN-INT-CLS (Reed et al. 2016), StackGAN (Zhang et al. 2016) and
//! AttnGAN (Xu et al. 2017) — and the networks they stand on, written once for the native
//! trainer and the WebAssembly page.
//!
//! Nothing in this crate picks a device: every constructor and loader takes one.

pub mod attngan;
pub mod bundle;
pub mod caption_effect;
pub mod damsm;
pub mod gan_int_cls;
pub mod generate;
pub mod inception;
pub mod key_map;
pub mod layers;
pub mod metrics;
pub mod quant;
pub mod stackgan;
#[cfg(test)]
mod test_support;
pub mod vocab;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;
pub mod word_map;
