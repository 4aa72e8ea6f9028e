//! `t2i`: train, evaluate and export the text-to-image models from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use t2i_train::config::DamsmTrainConfig;
use t2i_train::damsm_pipeline;
use t2i_train::device::{self, Backend};

#[derive(Parser)]
#[command(
    name = "t2i",
    version,
    about = "Text-to-image GANs: train, evaluate, export"
)]
struct Cli {
    /// Compute backend.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute the frozen Inception-v3 features (pool3, mixed_7) of a dataset once (resumable).
    Features {
        /// Training config naming the dataset, the Inception weights and the cache folder.
        #[arg(long)]
        config: PathBuf,
    },
    /// Train the model a config describes (`model = "damsm"`).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Continue the run in the config's output_dir from its latest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop (with a checkpoint) after this many steps in total.
        #[arg(long)]
        max_steps: Option<u64>,
    },
    /// Evaluate a trained model; the last line printed is one JSON object.
    Eval {
        #[command(subcommand)]
        model: EvalModel,
    },
    /// Write a run's latest checkpoint as a versioned weight bundle.
    Export {
        #[arg(long)]
        config: PathBuf,
        /// The bundle to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum EvalModel {
    /// R-precision of the DAMSM encoders on real images of held-out species.
    Damsm {
        #[arg(long)]
        config: PathBuf,
        /// A DAMSM bundle to evaluate instead of the run's latest checkpoint.
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// FID between two random halves of the held-out species' real photos: the floor that
    /// generated images are compared against (Inception pool3, this project's FID code).
    RealFid {
        #[arg(long)]
        config: PathBuf,
    },
}

/// Which model a training config describes, from its top-level `model` key.
fn model_of(config: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read config {}", config.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid config {}", config.display()))?;
    match value.get("model") {
        Some(toml::Value::String(model)) => Ok(model.clone()),
        Some(other) => bail!(
            "{}: `model` must be a string, got {other}",
            config.display()
        ),
        None => bail!(
            "{}: missing the top-level `model` key (e.g. model = \"damsm\")",
            config.display()
        ),
    }
}

fn load_damsm_config(path: &std::path::Path) -> Result<DamsmTrainConfig> {
    match model_of(path)?.as_str() {
        "damsm" => DamsmTrainConfig::load(path),
        other => bail!(
            "{}: model {other:?} is not supported yet (supported: damsm)",
            path.display()
        ),
    }
}

fn run(cli: Cli) -> Result<()> {
    let device = device::select(cli.backend)?;
    match cli.command {
        Command::Features { config } => {
            let config = load_damsm_config(&config)?;
            let cache = damsm_pipeline::build_features(&config, &device)?;
            eprintln!(
                "feature cache ready: {} images in {}",
                cache.len(),
                config.features.cache_dir.display()
            );
        }
        Command::Train {
            config,
            resume,
            max_steps,
        } => {
            let config = load_damsm_config(&config)?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || {
                eprintln!("\ninterrupt: finishing the step and writing a checkpoint");
                flag.store(true, Ordering::SeqCst);
            })
            .context("cannot install the Ctrl-C handler")?;
            damsm_pipeline::train(&config, resume, max_steps, &device, &stop)?;
        }
        Command::Eval {
            model: EvalModel::Damsm { config, bundle },
        } => {
            let config = load_damsm_config(&config)?;
            let report = damsm_pipeline::eval(&config, bundle.as_deref(), &device)?;
            eprintln!(
                "held-out species: R-precision {:.4} ± {:.4}, species-aware {:.4} ± {:.4} over {} images ({})",
                report.r_precision,
                report.r_precision_std,
                report.r_precision_species,
                report.r_precision_species_std,
                report.images,
                report.caption_source
            );
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Eval {
            model: EvalModel::RealFid { config },
        } => {
            let config = load_damsm_config(&config)?;
            let floor = damsm_pipeline::real_fid_floor(&config)?;
            eprintln!(
                "held-out species: FID between two halves of the real photos {:.2} ({} images each)",
                floor.fid_real_halves, floor.images_per_half
            );
            println!("{}", serde_json::to_string(&floor)?);
        }
        Command::Export { config, out } => {
            let config = load_damsm_config(&config)?;
            damsm_pipeline::export(&config, &out, &device)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
