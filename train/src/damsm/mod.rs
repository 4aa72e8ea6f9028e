//! DAMSM (Xu et al. 2018), the text and image encoders AttnGAN's loss and the other families'
//! caption embeddings come from: pretraining ([`train`]) and the commands end to end
//! ([`commands`]). The networks are [`t2i::damsm`].

pub mod commands;
pub mod train;
