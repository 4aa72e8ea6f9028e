//! What every training run shares: the adversarial loop ([`adversarial`]), crash-safe
//! checkpoints ([`checkpoint`]), progress and metrics ([`log`]), the run's folder ([`folder`]), the
//! pictures a run leaves on disk ([`plot`]) and the training recipe ([`recipe`]).

pub mod adversarial;
pub mod checkpoint;
pub mod folder;
pub mod log;
pub mod plot;
pub mod recipe;
