//! `t2i import` against PyTorch: each fixture in tests/fixtures/pytorch/ is a tiny network with
//! the authors' tensor names, saved by `torch.save` (zip and legacy containers) with fixed
//! inputs and the outputs PyTorch computed from them (tools/make_parity_fixtures.py). Importing
//! it and running our module on the same inputs must give the same outputs to 1e-4. The broken
//! checkpoints in tests/fixtures/pytorch/bad/ (tools/make_import_error_fixtures.py) must each
//! give their own error. None of this needs torch.
//!
//! The parity tests run on flex, and also on burn's wgpu backend in a build with
//! `--features wgpu` (`tools/wgpu_parity.sh` runs them on Mesa's lavapipe, Vulkan on the CPU).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use safetensors::{Dtype, SafeTensors};
use t2i::attngan::padding_mask;
use t2i_train::import::{self, ImportError};

mod common;
use common::{t2i_refuses, t2i_runs};

/// Largest difference allowed between PyTorch's outputs and ours.
const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pytorch")
        .join(name)
}

fn device() -> Device {
    Device::flex()
}

/// The devices the parity tests run on: flex, and wgpu in a build with that feature.
fn parity_devices() -> Vec<(&'static str, Device)> {
    let mut devices = vec![("flex", Device::flex())];
    if cfg!(feature = "wgpu") {
        let wgpu = t2i_train::device::select(t2i_train::device::Backend::Wgpu)
            .expect("a build with the wgpu feature has the wgpu device");
        devices.push(("wgpu", wgpu));
    }
    devices
}

/// A test named `$test` that runs `$check` on every parity device.
macro_rules! parity_test {
    ($test:ident, $check:ident) => {
        #[test]
        fn $test() {
            for device in parity_devices() {
                $check(&device);
            }
        }
    };
}

/// A fixture's inputs and reference outputs: name -> (shape, values as f64), and the device
/// our side runs on.
struct Io {
    values: HashMap<String, (Vec<usize>, Vec<f64>)>,
    device: Device,
    backend: &'static str,
}

impl Io {
    fn read(name: &str, (backend, device): &(&'static str, Device)) -> Self {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut map = HashMap::new();
        for (key, view) in file.tensors() {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{name}: {key} has dtype {other:?}"),
            };
            map.insert(key, (view.shape().to_vec(), values));
        }
        Self {
            values: map,
            device: device.clone(),
            backend,
        }
    }

    fn get(&self, key: &str) -> &(Vec<usize>, Vec<f64>) {
        self.values
            .get(key)
            .unwrap_or_else(|| panic!("the fixture has no {key}"))
    }

    fn float<const D: usize>(&self, key: &str) -> Tensor<D> {
        let (shape, values) = self.get(key);
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(values, shape.clone()), &self.device)
    }

    fn ints(&self, key: &str) -> Vec<usize> {
        self.get(key).1.iter().map(|&v| v as usize).collect()
    }

    /// Asserts `ours` equals the reference output `key` to [`TOLERANCE`]; returns the largest
    /// difference.
    fn check<const D: usize>(&self, key: &str, ours: Tensor<D>) -> f32 {
        self.check_within(key, ours, TOLERANCE)
    }

    fn check_within<const D: usize>(&self, key: &str, ours: Tensor<D>, tolerance: f32) -> f32 {
        let (shape, theirs) = self.get(key);
        assert_eq!(&ours.dims().to_vec(), shape, "{key}: shape");
        let ours = ours.into_data().try_into_vec::<f32>().unwrap();
        let worst = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (*a - *b as f32).abs())
            .fold(0.0f32, f32::max);
        let mean = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (*a as f64 - *b).abs())
            .sum::<f64>()
            / ours.len() as f64;
        let spread = theirs.iter().map(|v| v.abs()).fold(0.0f64, f64::max);
        let backend = self.backend;
        eprintln!(
            "{backend} {key}: max |ours - PyTorch| = {worst:.2e}, mean {mean:.2e} (values up to {spread:.3})"
        );
        assert!(
            worst <= tolerance,
            "{backend} {key}: max difference {worst:e} > {tolerance:e}"
        );
        worst
    }
}

parity_test!(
    attngan_generator_reproduces_pytorch,
    attngan_generator_reproduces_pytorch_on
);

fn attngan_generator_reproduces_pytorch_on(device: &(&'static str, Device)) {
    let io = Io::read("attngan_netG.io.safetensors", device);
    // The authors' masking order: the reference is their code, quirk included.
    let (g, config) =
        import::attngan_generator(&fixture("attngan_netG.pth"), true, &device.1).unwrap();
    assert_eq!(
        (config.ngf, config.branch_num, config.residual_blocks),
        (4, 3, 2)
    );
    let g = g.valid();
    let words: Tensor<3> = io.float("words_embs");
    let [_, _, t] = words.dims();
    let padding = padding_mask(&io.ints("cap_lens"), t, &device.1);

    // Stage by stage, each on PyTorch's own input (its previous stage's hidden features).
    let condition = g.condition(io.float("sent_emb"), io.float("eps"));
    io.check("mu", condition.mu);
    io.check("logvar", condition.logvar);
    let (hidden, image) = g.init_stage(condition.code.clone(), io.float("z"));
    io.check("h_code.0", hidden);
    io.check("fake_imgs.0", image);
    for stage in 1..3 {
        let previous = io.float(&format!("h_code.{}", stage - 1));
        let (hidden, image, maps) = g.next_stage(stage, previous, words.clone(), padding.clone());
        if stage == 1 {
            io.check("h_code.1", hidden);
        }
        io.check(&format!("fake_imgs.{stage}"), image);
        io.check(&format!("att_maps.{}", stage - 1), maps);
    }

    // The whole generator in one pass: rounding differences grow through the three stages
    // (about 3e-4 at 256 px on these random weights, the mean stays near 1e-6).
    let out = g.forward(
        io.float("sent_emb"),
        words,
        padding,
        io.float("z"),
        io.float("eps"),
    );
    for (stage, image) in out.images.into_iter().enumerate() {
        io.check_within(&format!("fake_imgs.{stage}"), image, 1e-3);
    }
}

parity_test!(
    damsm_text_encoder_reproduces_pytorch,
    damsm_text_encoder_reproduces_pytorch_on
);

fn damsm_text_encoder_reproduces_pytorch_on(device: &(&'static str, Device)) {
    let io = Io::read("attngan_text_encoder.io.safetensors", device);
    let (encoder, config) =
        import::text_encoder(&fixture("attngan_text_encoder.pth"), &device.1).unwrap();
    assert_eq!(
        (config.vocab_size, config.embedding_dim, config.feature_dim),
        (12, 6, 8)
    );
    let encoder = encoder.valid();
    let (shape, ids) = io.get("captions");
    let ids: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, shape.clone()), &device.1);
    let features = encoder.forward(tokens, &io.ints("cap_lens"));
    io.check("words_emb", features.words);
    io.check("sent_emb", features.sentence);
}

parity_test!(
    damsm_image_encoder_reproduces_pytorch,
    damsm_image_encoder_reproduces_pytorch_on
);

fn damsm_image_encoder_reproduces_pytorch_on(device: &(&'static str, Device)) {
    let io = Io::read("attngan_image_encoder.io.safetensors", device);
    // The file also holds (decoy) Inception-v3 tensors: skipped, not reported as unexpected.
    let (encoder, config) =
        import::image_encoder(&fixture("attngan_image_encoder.pth"), &device.1).unwrap();
    assert_eq!(config.feature_dim, 8);
    let out = encoder
        .valid()
        .forward(io.float("features"), io.float("cnn_code_in"));
    io.check("features_out", out.regions);
    io.check("cnn_code", out.global);
}

parity_test!(
    stackgan_generators_reproduce_pytorch,
    stackgan_generators_reproduce_pytorch_on
);

fn stackgan_generators_reproduce_pytorch_on(device: &(&'static str, Device)) {
    // Stage-II's file holds its own Stage-I (STAGE1_G.*), which draws the 64 px image.
    let io = Io::read("stackgan_stage2_netG.io.safetensors", device);
    let (generators, config) =
        import::stackgan_generators(&fixture("stackgan_stage2_netG.pth"), None, &device.1).unwrap();
    assert_eq!(config.residual_blocks, 2);
    let generators = generators.valid();
    let text: Tensor<2> = io.float("text_embedding");
    let first = generators
        .stage1
        .forward(text.clone(), io.float("noise"), io.float("eps1"));
    io.check("stage1_img", first.image);
    // Stage-II from PyTorch's Stage-I image, so each network is compared on the same input.
    let second = generators
        .stage2
        .forward(io.float("stage1_img"), text, io.float("eps2"));
    io.check("fake_img", second.image);
    io.check("mu", second.mu);
    io.check("logvar", second.logvar);

    // A separate Stage-I file (legacy container) replaces the one inside Stage-II's.
    let io = Io::read("stackgan_stage1_netG.io.safetensors", device);
    let (generators, _) = import::stackgan_generators(
        &fixture("stackgan_stage2_netG.pth"),
        Some(&fixture("stackgan_stage1_netG.pth")),
        &device.1,
    )
    .unwrap();
    let out = generators.valid().stage1.forward(
        io.float("text_embedding"),
        io.float("noise"),
        io.float("eps"),
    );
    io.check("fake_img", out.image);
    io.check("mu", out.mu);
    io.check("logvar", out.logvar);
}

#[test]
fn captions_pickle_gives_the_authors_vocabulary() {
    let vocabulary = import::captions_vocabulary(&fixture("captions.pickle")).unwrap();
    assert_eq!(vocabulary.len(), 12);
    assert_eq!(vocabulary.word(0), Some("<end>"));
    assert!(vocabulary.index("bird").is_some());
    // A checkpoint is not a captions pickle.
    let err = import::captions_vocabulary(&fixture("attngan_text_encoder.pth")).unwrap_err();
    assert!(err.to_string().contains("ixtoword"), "{err}");
}

#[test]
fn renamed_tensor_is_listed_as_missing_and_unexpected() {
    let err = import::text_encoder(&fixture("bad/text_encoder_renamed.pth"), &device())
        .expect_err("a renamed tensor is an error");
    let ImportError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(mismatch.missing.len(), 1, "{err}");
    assert_eq!(mismatch.missing[0].0, "rnn.weight_hh_l0");
    assert_eq!(mismatch.unexpected.len(), 1, "{err}");
    assert_eq!(mismatch.unexpected[0].0, "rnn.weight_hh_l1");
    assert!(mismatch.misshaped.is_empty(), "{err}");
    let message = err.to_string();
    assert!(message.contains("text_encoder_renamed.pth"), "{message}");
    assert!(
        message.contains("missing    rnn.weight_hh_l0 [16, 4]"),
        "{message}"
    );
}

#[test]
fn wrong_shape_is_listed_with_both_shapes() {
    let err = import::text_encoder(&fixture("bad/text_encoder_misshaped.pth"), &device())
        .expect_err("a mis-shaped tensor is an error");
    let ImportError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(
        mismatch.misshaped,
        vec![("rnn.bias_ih_l0".to_string(), vec![15], vec![16])]
    );
    assert!(mismatch.missing.is_empty() && mismatch.unexpected.is_empty());
    assert!(
        err.to_string()
            .contains("rnn.bias_ih_l0: [15] in the file, [16] expected"),
        "{err}"
    );
}

#[test]
fn truncated_file_is_unreadable() {
    let err = import::text_encoder(&fixture("bad/text_encoder_truncated.pth"), &device())
        .expect_err("a truncated file is an error");
    assert!(matches!(err, ImportError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");

    // A missing file says so.
    let err = import::text_encoder(&fixture("bad/no_such.pth"), &device())
        .err()
        .unwrap();
    assert!(matches!(err, ImportError::Open { .. }), "{err}");
}

#[test]
fn pickled_code_is_refused_without_running_it() {
    let marker = Path::new("/tmp/t2i-import-payload-ran");
    let _ = std::fs::remove_file(marker);
    for name in ["bad/text_encoder_payload.pth", "bad/payload_legacy.pth"] {
        let err = import::text_encoder(&fixture(name), &device())
            .expect_err("a state dict holding a function call is refused");
        assert!(matches!(err, ImportError::Refused { .. }), "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("\"payload\"") && message.contains("posix.system"),
            "{message}"
        );
    }
    assert!(!marker.exists(), "the pickled command ran");
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn imported_checkpoints_become_bundles_that_generate() {
    let dir = tempfile::tempdir().unwrap();
    let text = fixture("attngan_text_encoder.pth");
    let captions = fixture("captions.pickle");

    // AttnGAN: generator + the authors' text encoder and captions.pickle -> bundle -> images.
    let attngan = dir.path().join("attngan.safetensors");
    t2i_runs(&[
        "import",
        "attngan",
        "--generator",
        arg(&fixture("attngan_netG.pth")),
        "--text-encoder",
        arg(&text),
        "--captions",
        arg(&captions),
        "--out",
        arg(&attngan),
    ]);
    let png = dir.path().join("bird.png");
    t2i_runs(&[
        "generate",
        "--bundle",
        arg(&attngan),
        "--caption",
        "a small red bird with black wings",
        "--out",
        arg(&png),
    ]);
    let image = image::open(&png).unwrap();
    assert!(image.width() >= 256, "{}", image.width());

    // The DAMSM encoders as a DAMSM bundle, whose text encoder then serves StackGAN's import.
    let damsm = dir.path().join("damsm.safetensors");
    t2i_runs(&[
        "import",
        "damsm",
        "--text-encoder",
        arg(&text),
        "--image-encoder",
        arg(&fixture("attngan_image_encoder.pth")),
        "--captions",
        arg(&captions),
        "--out",
        arg(&damsm),
    ]);
    let stackgan = dir.path().join("stackgan.safetensors");
    t2i_runs(&[
        "import",
        "stackgan",
        "--stage2",
        arg(&fixture("stackgan_stage2_netG.pth")),
        "--text-encoder",
        arg(&damsm),
        "--out",
        arg(&stackgan),
        "--precision",
        "f32",
    ]);
    let bytes = std::fs::read(&stackgan).unwrap();
    assert!(matches!(
        t2i::bundle::load_gan(&bytes, &device()).unwrap(),
        t2i::bundle::GanBundle::StackGan(_)
    ));
}

#[test]
fn import_errors_name_the_file_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");

    // `t2i import attngan` with a generator, a text encoder (and its captions) refused,
    // naming what is wrong.
    let attngan_refuses =
        |generator: &Path, text_encoder: &Path, captions: bool, named: &[&str]| {
            let mut args = vec![
                "import",
                "attngan",
                "--generator",
                arg(generator),
                "--text-encoder",
                arg(text_encoder),
                "--out",
                arg(&out),
            ];
            let pickle = fixture("captions.pickle");
            if captions {
                args.extend(["--captions", arg(&pickle)]);
            }
            t2i_refuses(&args, named);
        };
    let generator = fixture("attngan_netG.pth");
    let text_encoder = fixture("attngan_text_encoder.pth");
    // A .pth text encoder needs its captions.pickle.
    attngan_refuses(&generator, &text_encoder, false, &["--captions"]);
    // A StackGAN generator given as an AttnGAN one.
    attngan_refuses(
        &fixture("stackgan_stage1_netG.pth"),
        &text_encoder,
        true,
        &["stackgan_stage1_netG.pth", "not an AttnGAN generator"],
    );
    // A text encoder of another width than the generator reads.
    attngan_refuses(
        &generator,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights/damsm_birds.safetensors"),
        false,
        &["reads 8-value text features", "gives 256"],
    );

    // The hostile pickle, through the command line.
    t2i_refuses(
        &[
            "import",
            "damsm",
            "--text-encoder",
            arg(&fixture("bad/payload_legacy.pth")),
            "--image-encoder",
            arg(&fixture("attngan_image_encoder.pth")),
            "--captions",
            arg(&fixture("captions.pickle")),
            "--out",
            arg(&out),
        ],
        &["posix.system"],
    );
    assert!(!out.exists(), "a failed import wrote {}", out.display());
}
