//! The native side of t2i: datasets, cached frozen-network features, training loops,
//! evaluation and export. The `t2i` binary (`main.rs`) is a thin command line over this.

pub mod adversarial;
pub mod allocator;
pub mod attngan_pipeline;
pub mod attngan_train;
pub mod checkpoint;
pub mod config;
pub mod damsm_pipeline;
pub mod damsm_train;
pub mod data;
pub mod device;
pub mod evaluation;
pub mod features;
pub mod fid;
pub mod gan_data;
pub mod gan_eval;
pub mod gan_pipeline;
pub mod gan_train;
pub mod import;
pub mod inception_score;
pub mod plot;
pub mod run_log;
pub mod stackgan_pipeline;
pub mod stackgan_train;
