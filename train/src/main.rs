//! `t2i`: train, evaluate and export the text-to-image models from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use t2i_train::config::{GanModel, TrainConfig};
use t2i_train::device::{self, Backend};
use t2i_train::family::{self, TrainRequest};
use t2i_train::{damsm, eval, gan_int_cls, generate, import};

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
        /// Stop (with a checkpoint) after this many minutes of training.
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

/// The bundle an import writes: its text side, file and precision.
#[derive(clap::Args)]
struct BundleArgs {
    #[command(flatten)]
    text: TextArgs,
    #[arg(long)]
    out: PathBuf,
    /// Weight precision: f32, int8 or int4.
    #[arg(long, default_value = "int8")]
    precision: t2i::quant::Precision,
}

impl BundleArgs {
    fn target(&self) -> Result<import::ImportTarget<'_>> {
        Ok(import::ImportTarget {
            text: self.text.source()?,
            out: &self.out,
            precision: self.precision,
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
        bundle: BundleArgs,
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
        bundle: BundleArgs,
    },
    /// A GAN-INT-CLS generator saved from PyTorch under this project's module names.
    GanIntCls {
        #[arg(long)]
        generator: PathBuf,
        #[command(flatten)]
        bundle: BundleArgs,
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
        /// Also score the images against captions people wrote for their species (a file of
        /// `tests/fixtures/natural_captions/captions.tsv`'s layout), read as the page reads them.
        #[arg(long)]
        captions: Option<PathBuf>,
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
        Command::Features { config } => match TrainConfig::load(&config)? {
            TrainConfig::Damsm(config) => {
                let cache = damsm::commands::build_features(&config, &device)?;
                eprintln!(
                    "feature cache ready: {} images in {}",
                    cache.len(),
                    config.features.cache_dir.display()
                );
            }
            TrainConfig::Gan(config) => family::prepare(&config, &device)?,
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
            let request = TrainRequest {
                resume,
                max_steps,
                max_seconds: max_minutes.map(|m| m * 60.0),
                init_from: init_from.as_deref(),
                stage,
                device: &device,
                stop: &stop,
            };
            match TrainConfig::load(&config)? {
                TrainConfig::Damsm(config) => {
                    request.refuse_options_but(false, false)?;
                    damsm::commands::train(&config, &request)?
                }
                TrainConfig::Gan(config) => family::train(&config, &request)?,
            }
        }
        Command::Portable {
            config,
            out,
            from_bundle,
            step,
        } => {
            let config = TrainConfig::load_gan(&config)?;
            if config.model != GanModel::GanIntCls {
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
            model:
                EvalModel::Damsm {
                    config,
                    bundle,
                    captions,
                },
        } => {
            let config = TrainConfig::load_damsm(&config)?;
            let report =
                damsm::commands::eval(&config, bundle.as_deref(), captions.as_deref(), &device)?;
            eprintln!(
                "held-out species: R-precision {:.4} ± {:.4}, species-aware {:.4} ± {:.4} over {} images ({})",
                report.r_precision,
                report.r_precision_std,
                report.r_precision_species,
                report.r_precision_species_std,
                report.images,
                report.caption_source
            );
            if let Some(natural) = &report.natural_captions {
                eprintln!(
                    "natural captions ({}): held-out species R-precision {:.4}, species-aware {:.4} over {} images; seen species {:.4}, species-aware {:.4}",
                    natural.file,
                    natural.heldout_species.any.mean,
                    natural.heldout_species.species.mean,
                    natural.heldout_species.any.images,
                    natural.train_species_test_images.any.mean,
                    natural.train_species_test_images.species.mean
                );
            }
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
            let config = TrainConfig::load_gan(&config)?;
            let source = match &bundle {
                Some(path) => eval::GeneratorSource::Bundle(path),
                None => eval::GeneratorSource::Checkpoint,
            };
            let report = family::evaluate(&config, source, samples, &device)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Eval {
            model: EvalModel::RealFid { config },
        } => {
            let config = TrainConfig::load_damsm(&config)?;
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
        } => match TrainConfig::load(&config)? {
            TrainConfig::Damsm(config) => damsm::commands::export(&config, &out, &device)?,
            TrainConfig::Gan(config) => family::export(&config, &out, precision, &device)?,
        },
        Command::Import { model } => match model {
            ImportModel::Attngan { generator, bundle } => {
                import::write_attngan_bundle(&generator, bundle.target()?, &device)?
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
                bundle,
            } => import::write_stackgan_bundle(
                &stage2,
                stage1.as_deref(),
                bundle.target()?,
                &device,
            )?,
            ImportModel::GanIntCls { generator, bundle } => {
                import::write_gan_int_cls_bundle(&generator, bundle.target()?, &device)?
            }
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
