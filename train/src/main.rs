//! `t2i`: train, evaluate and export the text-to-image models from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use t2i_train::config::{DamsmTrainConfig, GanTrainConfig};
use t2i_train::data::prepared;
use t2i_train::device::{self, Backend};
use t2i_train::{attngan, damsm, eval, gan_int_cls, generate, import, stackgan};

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
    /// Train the model a config describes (`model = "damsm"`, `"gan_int_cls"`, `"stackgan"` or
    /// `"attngan"`).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Continue the run in the config's output_dir from its latest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop (with a checkpoint) after this many steps in total.
        #[arg(long)]
        max_steps: Option<u64>,
        /// Stop (with a checkpoint) after this many minutes of training (GAN configs).
        #[arg(long)]
        max_minutes: Option<f64>,
        /// Start a new GAN run from portable weights written by `t2i portable`.
        #[arg(long)]
        init_from: Option<PathBuf>,
        /// StackGAN: the stage to train (1, then 2 on the frozen Stage-I).
        #[arg(long)]
        stage: Option<u8>,
    },
    /// Write a GAN run's latest generator and discriminator as f16 safetensors (a sixth of
    /// a checkpoint), to carry a run between machines; `train --init-from` continues it.
    Portable {
        #[arg(long)]
        config: PathBuf,
        /// The folder to write.
        #[arg(long)]
        out: PathBuf,
        /// GAN-INT-CLS: take the generator of this bundle (e.g. the shipped one) instead of the
        /// run's latest checkpoint, with a new discriminator, to continue a shipped model.
        #[arg(long)]
        from_bundle: Option<PathBuf>,
        /// With --from-bundle: the step the continued run counts from (the bundle's steps).
        #[arg(long, default_value_t = 0, requires = "from_bundle")]
        step: u64,
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
        /// Weight precision of GAN bundles: f32, int8 or int4.
        #[arg(long, default_value = "int8")]
        precision: t2i::quant::Precision,
    },
    /// Draw captions with a GAN-INT-CLS, StackGAN or AttnGAN bundle into a PNG (one image, or
    /// a grid with the captions and every stage side by side).
    Generate {
        #[arg(long)]
        bundle: PathBuf,
        /// A caption; repeat for several.
        #[arg(long = "caption", required = true)]
        captions: Vec<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Images per caption (seeds seed, seed + 1, ...).
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Upscaling factor of the written picture (nearest neighbour).
        #[arg(long, default_value_t = 4)]
        scale: u32,
        #[arg(long)]
        out: PathBuf,
        /// AttnGAN: also write this PNG with each caption's image (seed `--seed`) lit by the
        /// word attention of every content word.
        #[arg(long)]
        attention: Option<PathBuf>,
    },
    /// Turn the authors' PyTorch checkpoints (AttnGAN, its DAMSM, StackGAN-Pytorch) into a
    /// bundle that `t2i generate` and the page run. Sizes are read off the checkpoint.
    Import {
        #[command(subcommand)]
        model: ImportModel,
    },
}

/// Where an imported generator's text encoder comes from: `--text-encoder` is either the
/// authors' `text_encoder*.pth` (with `--captions`) or a bundle holding a text encoder.
#[derive(clap::Args)]
struct TextArgs {
    /// The authors' DAMSM `text_encoder*.pth`, or a `.safetensors` bundle with a text encoder
    /// (e.g. weights/damsm_birds.safetensors).
    #[arg(long)]
    text_encoder: PathBuf,
    /// AttnGAN's `captions.pickle` (its vocabulary), needed with a `.pth` text encoder.
    #[arg(long)]
    captions: Option<PathBuf>,
}

impl TextArgs {
    fn source(&self) -> Result<import::TextSource<'_>> {
        let is_bundle = self
            .text_encoder
            .extension()
            .is_some_and(|e| e == "safetensors");
        Ok(match (&self.captions, is_bundle) {
            (_, true) => import::TextSource::Bundle(&self.text_encoder),
            (Some(captions), false) => import::TextSource::Checkpoint {
                encoder: &self.text_encoder,
                captions,
            },
            (None, false) => bail!(
                "--text-encoder {} is a PyTorch checkpoint: its vocabulary comes from \
                 --captions captions.pickle",
                self.text_encoder.display()
            ),
        })
    }
}

#[derive(Subcommand)]
enum ImportModel {
    /// AttnGAN's generator (`netG_*.pth`) with its DAMSM text encoder.
    Attngan {
        #[arg(long)]
        generator: PathBuf,
        #[command(flatten)]
        text: TextArgs,
        #[arg(long)]
        out: PathBuf,
        /// Weight precision: f32, int8 or int4.
        #[arg(long, default_value = "int8")]
        precision: t2i::quant::Precision,
    },
    /// AttnGAN's DAMSM: `text_encoder*.pth`, `image_encoder*.pth` (its projections) and
    /// `captions.pickle`.
    Damsm {
        #[arg(long)]
        text_encoder: PathBuf,
        #[arg(long)]
        image_encoder: PathBuf,
        #[arg(long)]
        captions: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// StackGAN-Pytorch's generators: the Stage-II `netG_*.pth` (which holds its Stage-I),
    /// optionally with a separate Stage-I file, and a text encoder of the same width.
    Stackgan {
        #[arg(long)]
        stage2: PathBuf,
        /// A Stage-I `netG_*.pth` to use instead of the one inside the Stage-II file.
        #[arg(long)]
        stage1: Option<PathBuf>,
        #[command(flatten)]
        text: TextArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "int8")]
        precision: t2i::quant::Precision,
    },
    /// A GAN-INT-CLS generator saved from PyTorch under this project's module names.
    GanIntCls {
        #[arg(long)]
        generator: PathBuf,
        #[command(flatten)]
        text: TextArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "int8")]
        precision: t2i::quant::Precision,
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
    /// FID, Inception Score and R-precision of a GAN's images for held-out species' captions.
    Gan {
        #[arg(long)]
        config: PathBuf,
        /// A bundle to evaluate (e.g. the int8 export) instead of the run's latest checkpoint.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Generated images (one per caption drawn); default: the config's eval.samples.
        #[arg(long)]
        samples: Option<usize>,
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

/// A training config of any supported model.
enum AnyConfig {
    Damsm(DamsmTrainConfig),
    Gan(GanTrainConfig),
}

fn load_config(path: &std::path::Path) -> Result<AnyConfig> {
    match model_of(path)?.as_str() {
        "damsm" => Ok(AnyConfig::Damsm(DamsmTrainConfig::load(path)?)),
        "gan_int_cls" | "stackgan" | "attngan" => Ok(AnyConfig::Gan(GanTrainConfig::load(path)?)),
        other => bail!(
            "{}: model {other:?} is not supported (supported: damsm, gan_int_cls, stackgan, attngan)",
            path.display()
        ),
    }
}

fn load_damsm_config(path: &std::path::Path) -> Result<DamsmTrainConfig> {
    match load_config(path)? {
        AnyConfig::Damsm(config) => Ok(config),
        AnyConfig::Gan(_) => bail!(
            "{}: this command needs a DAMSM config (model = \"damsm\")",
            path.display()
        ),
    }
}

fn load_gan_config(path: &std::path::Path) -> Result<GanTrainConfig> {
    match load_config(path)? {
        AnyConfig::Gan(config) => Ok(config),
        AnyConfig::Damsm(_) => bail!(
            "{}: this command needs a GAN config (model = \"gan_int_cls\", \"stackgan\" or \"attngan\")",
            path.display()
        ),
    }
}

/// One line of a GAN evaluation for people (the JSON follows on stdout).
fn print_gan_scores(prefix: &str, report: &eval::GanEvaluation) {
    eprintln!(
        "{prefix}FID {:.2} (real-vs-real floor {:.2}), Inception Score {:.2} ± {:.2}, R-precision {:.4} (species-aware {:.4}) over {} samples",
        report.scores.fid,
        report.fid_real_halves,
        report.scores.inception_score,
        report.scores.inception_score_std,
        report.scores.r_precision,
        report.scores.r_precision_species,
        report.scores.samples
    );
}

fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        eprintln!("\ninterrupt: finishing the step and writing a checkpoint");
        flag.store(true, Ordering::SeqCst);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

fn run(cli: Cli) -> Result<()> {
    let device = device::select(cli.backend)?;
    match cli.command {
        Command::Features { config } => match load_config(&config)? {
            AnyConfig::Damsm(config) => {
                let cache = damsm::commands::build_features(&config, &device)?;
                eprintln!(
                    "feature cache ready: {} images in {}",
                    cache.len(),
                    config.features.cache_dir.display()
                );
            }
            AnyConfig::Gan(config) if attngan::commands::is_attngan(&config) => {
                let set = attngan::commands::prepare(&config, &device)?;
                eprintln!(
                    "prepared set ready: {} images at {} px with caption tokens",
                    set.images.len(),
                    set.info.image_size()
                );
            }
            AnyConfig::Gan(config) if stackgan::commands::is_stackgan(&config) => {
                let sets = stackgan::commands::prepare_both(&config, &device)?;
                for set in sets {
                    eprintln!(
                        "prepared set ready: {} images at {} px",
                        set.images.len(),
                        set.info.image_size()
                    );
                }
            }
            AnyConfig::Gan(config) => {
                let set = prepared::prepare(&config, &device)?;
                eprintln!(
                    "prepared set ready: {} images in {}",
                    set.images.len(),
                    config.prepared_dir.display()
                );
            }
        },
        Command::Train {
            config,
            resume,
            max_steps,
            max_minutes,
            init_from,
            stage,
        } => {
            let stop = ctrl_c_flag()?;
            let config = load_config(&config)?;
            let stackgan =
                matches!(&config, AnyConfig::Gan(c) if stackgan::commands::is_stackgan(c));
            if stage.is_some() && !stackgan {
                bail!("--stage applies to StackGAN configs");
            }
            match config {
                AnyConfig::Damsm(config) => {
                    if max_minutes.is_some() || init_from.is_some() {
                        bail!("--max-minutes and --init-from apply to GAN configs");
                    }
                    damsm::commands::train(&config, resume, max_steps, &device, &stop)?
                }
                AnyConfig::Gan(config) if attngan::commands::is_attngan(&config) => {
                    if init_from.is_some() {
                        bail!("--init-from applies to GAN-INT-CLS configs");
                    }
                    attngan::commands::train(
                        &config,
                        resume,
                        max_steps,
                        max_minutes.map(|m| m * 60.0),
                        &device,
                        &stop,
                    )?
                }
                AnyConfig::Gan(config) if stackgan => {
                    if init_from.is_some() {
                        bail!("--init-from applies to GAN-INT-CLS configs");
                    }
                    stackgan::commands::train(
                        &config,
                        stackgan::commands::parse_stage(stage)?,
                        resume,
                        max_steps,
                        max_minutes.map(|m| m * 60.0),
                        &device,
                        &stop,
                    )?
                }
                AnyConfig::Gan(config) => gan_int_cls::commands::train(
                    &config,
                    resume,
                    max_steps,
                    max_minutes.map(|m| m * 60.0),
                    init_from.as_deref(),
                    &device,
                    &stop,
                )?,
            }
        }
        Command::Portable {
            config,
            out,
            from_bundle,
            step,
        } => {
            let config = load_gan_config(&config)?;
            if stackgan::commands::is_stackgan(&config) || attngan::commands::is_attngan(&config) {
                bail!(
                    "portable weights are written for GAN-INT-CLS runs; {} runs resume from their checkpoints",
                    config.model
                );
            }
            match from_bundle {
                Some(bundle) => gan_int_cls::commands::write_portable_from_bundle(
                    &config, &bundle, step, &out, &device,
                )?,
                None => gan_int_cls::commands::write_portable(&config, &out, &device)?,
            }
        }
        Command::Eval {
            model: EvalModel::Damsm { config, bundle },
        } => {
            let config = load_damsm_config(&config)?;
            let report = damsm::commands::eval(&config, bundle.as_deref(), &device)?;
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
            model:
                EvalModel::Gan {
                    config,
                    bundle,
                    samples,
                },
        } => {
            let config = load_gan_config(&config)?;
            let source = match &bundle {
                Some(path) => eval::GeneratorSource::Bundle(path),
                None => eval::GeneratorSource::Checkpoint,
            };
            if attngan::commands::is_attngan(&config) {
                let report = attngan::commands::evaluate(&config, source, samples, &device)?;
                print_gan_scores("stage 1, 64 px: ", &report.stage_64px);
                if let Some(stage) = &report.stage_128px {
                    print_gan_scores("stage 2, 128 px: ", stage);
                }
                if let Some(stage) = &report.stage_256px {
                    print_gan_scores("stage 3, 256 px: ", stage);
                }
                println!("{}", serde_json::to_string(&report)?);
            } else if stackgan::commands::is_stackgan(&config) {
                let report = stackgan::commands::evaluate(&config, source, samples, &device)?;
                print_gan_scores("Stage-I 64 px: ", &report.stage1_64px);
                print_gan_scores("Stage-II 256 px: ", &report.stage2_256px);
                println!("{}", serde_json::to_string(&report)?);
            } else {
                let report = gan_int_cls::commands::evaluate(&config, source, samples, &device)?;
                print_gan_scores("", &report);
                println!("{}", serde_json::to_string(&report)?);
            }
        }
        Command::Eval {
            model: EvalModel::RealFid { config },
        } => {
            let config = load_damsm_config(&config)?;
            let floor = damsm::commands::real_fid_floor(&config)?;
            eprintln!(
                "held-out species: FID between two halves of the real photos {:.2} ({} images each)",
                floor.fid_real_halves, floor.images_per_half
            );
            println!("{}", serde_json::to_string(&floor)?);
        }
        Command::Export {
            config,
            out,
            precision,
        } => match load_config(&config)? {
            AnyConfig::Damsm(config) => damsm::commands::export(&config, &out, &device)?,
            AnyConfig::Gan(config) if stackgan::commands::is_stackgan(&config) => {
                stackgan::commands::export(&config, &out, precision, &device)?
            }
            AnyConfig::Gan(config) if attngan::commands::is_attngan(&config) => {
                attngan::commands::export(&config, &out, precision, &device)?
            }
            AnyConfig::Gan(config) => {
                gan_int_cls::commands::export(&config, &out, precision, &device)?
            }
        },
        Command::Import { model } => match model {
            ImportModel::Attngan {
                generator,
                text,
                out,
                precision,
            } => {
                import::write_attngan_bundle(&generator, text.source()?, &out, precision, &device)?
            }
            ImportModel::Damsm {
                text_encoder,
                image_encoder,
                captions,
                out,
            } => {
                import::write_damsm_bundle(&text_encoder, &image_encoder, &captions, &out, &device)?
            }
            ImportModel::Stackgan {
                stage2,
                stage1,
                text,
                out,
                precision,
            } => import::write_stackgan_bundle(
                &stage2,
                stage1.as_deref(),
                text.source()?,
                &out,
                precision,
                &device,
            )?,
            ImportModel::GanIntCls {
                generator,
                text,
                out,
                precision,
            } => import::write_gan_int_cls_bundle(
                &generator,
                text.source()?,
                &out,
                precision,
                &device,
            )?,
        },
        Command::Generate {
            bundle,
            captions,
            seed,
            count,
            scale,
            out,
            attention,
        } => generate::generate(
            &bundle,
            &captions,
            &generate::GenerateOptions {
                seed,
                per_caption: count,
                scale,
                attention: attention.as_deref(),
            },
            &out,
            &device,
        )?,
    }
    Ok(())
}

fn main() -> ExitCode {
    t2i_train::allocator::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
