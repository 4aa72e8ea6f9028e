//! The `t2i` command refuses bad input with a message naming what is wrong, and never panics.

use std::path::{Path, PathBuf};

mod common;
use common::{t2i, t2i_refuses};

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn shipped_config(name: &str) -> String {
    std::fs::read_to_string(config_dir().join(name)).unwrap()
}

fn weights(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../weights")
        .join(name)
}

fn shipped_gan() -> PathBuf {
    weights("gan_int_cls_birds_small.int8.safetensors")
}

/// `path` as a command-line argument.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes `text` as `name` in `dir` and returns its path.
fn write_config(dir: &Path, name: &str, text: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `t2i generate --bundle BUNDLE --out OUT` and `more` arguments.
fn generate(bundle: &Path, out: &Path, more: &[&str]) -> (bool, String) {
    let mut args = vec!["generate", "--bundle", arg(bundle), "--out", arg(out)];
    args.extend(more);
    t2i(&args)
}

#[test]
fn missing_config_is_named() {
    t2i_refuses(
        &["train", "--config", "/nonexistent/damsm.toml"],
        &["/nonexistent/damsm.toml"],
    );
}

#[test]
fn unknown_and_invalid_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = shipped_config("damsm_birds.toml");
    for (from, to, named) in [
        ("batch_size = 48", "batch_sise = 48", "batch_sise"),
        ("batch_size = 48", "batch_size = 1", "train.batch_size"),
        ("model = \"damsm\"", "", "model"),
    ] {
        let path = write_config(dir.path(), "bad.toml", shipped.replace(from, to));
        t2i_refuses(&["train", "--config", arg(&path)], &[named]);
    }
}

#[test]
fn corrupt_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("broken.safetensors");
    std::fs::write(&bundle, b"definitely not a bundle").unwrap();
    let config = config_dir().join("damsm_birds.toml");
    t2i_refuses(
        &[
            "eval",
            "damsm",
            "--config",
            arg(&config),
            "--bundle",
            arg(&bundle),
        ],
        &["broken.safetensors", "not a readable bundle"],
    );
}

/// A backend left out of the build is named with the feature that builds it in. `make test`
/// builds wgpu in and never CUDA (its build needs the network), so CUDA is checked there.
#[test]
fn unavailable_backend_is_explained() {
    let left_out: Vec<&str> = [
        ("wgpu", cfg!(feature = "wgpu")),
        ("cuda", cfg!(feature = "cuda")),
    ]
    .into_iter()
    .filter(|&(_, built)| !built)
    .map(|(name, _)| name)
    .collect();
    if left_out.is_empty() {
        eprintln!("skipped: this build has both GPU backends");
        return;
    }
    for backend in left_out {
        t2i_refuses(
            &["--backend", backend, "features", "--config", "x.toml"],
            &[&format!("--features {backend}")],
        );
    }
}

#[test]
fn generate_writes_an_image_and_names_unknown_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bird.png");
    let caption = "a small yellow bird with grey wings and a blorptastic bill";
    let (ok, err) = generate(&shipped_gan(), &out, &["--caption", caption, "--seed", "5"]);
    assert!(ok, "{err}");
    assert!(err.contains("blorptastic"), "{err}");
    let image = image::open(&out).unwrap();
    assert_eq!((image.width(), image.height()), (256, 256));

    let grid = dir.path().join("grid.png");
    let two = ["--caption", "a red bird", "--caption", "a blue bird"];
    let (ok, err) = generate(
        &shipped_gan(),
        &grid,
        &[&two[..], &["--count", "3"]].concat(),
    );
    assert!(ok, "{err}");
    assert!(image::open(&grid).unwrap().width() > 3 * 64);
}

#[test]
fn generate_refuses_bad_captions_and_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let refused = |bundle: &Path, caption: &str, named: &[&str]| {
        let (ok, err) = generate(bundle, &out, &["--caption", caption]);
        assert!(!ok);
        for name in named {
            assert!(err.contains(name), "{err}");
        }
        assert!(!out.exists());
    };
    refused(&shipped_gan(), "", &["empty"]);

    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(shipped_gan()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &truncated,
        "a red bird",
        &["truncated.safetensors", "not a readable bundle"],
    );
    // A DAMSM bundle is not a generator.
    refused(
        &weights("damsm_birds.safetensors"),
        "a red bird",
        &["t2i-damsm"],
    );
}

#[test]
fn gan_config_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = shipped_config("gan_int_cls_birds.toml");
    let bad = write_config(
        dir.path(),
        "bad.toml",
        shipped.replace("beta = 0.5", "beta = 1.5"),
    );
    t2i_refuses(&["train", "--config", arg(&bad)], &["train.beta"]);
    // Recipe keys: a bad value names its key; an unknown key is named by serde.
    for (section, named) in [
        ("[recipe]\nema_decay = 1.5\n", "recipe.ema_decay"),
        ("[recipe]\nma_gp_power = 5\n", "recipe.ma_gp_power"),
        ("[recipe]\nlr_d = -1.0\n", "recipe.lr_d"),
        ("[recipe]\naugment = [\"flip\"]\n", "flip"),
        ("[recipe]\nspectral = true\n", "spectral"),
    ] {
        let bad = write_config(dir.path(), "bad.toml", format!("{shipped}\n{section}"));
        t2i_refuses(&["train", "--config", arg(&bad)], &[named]);
    }
    let gan = config_dir().join("gan_int_cls_birds.toml");
    t2i_refuses(&["eval", "damsm", "--config", arg(&gan)], &["DAMSM config"]);
}

#[test]
fn stackgan_stage_and_config_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_dir().join("stackgan_birds_small.toml");
    let config = arg(&config);
    t2i_refuses(&["train", "--config", config], &["--stage 1"]);
    t2i_refuses(
        &["train", "--config", config, "--stage", "3"],
        &["--stage must be 1 or 2"],
    );
    let gan = config_dir().join("gan_int_cls_birds.toml");
    t2i_refuses(
        &["train", "--config", arg(&gan), "--stage", "1"],
        &["StackGAN configs"],
    );

    let shipped = shipped_config("stackgan_birds_small.toml");
    let cut = shipped.find("[stage2]").unwrap();
    let eval = &shipped[shipped.find("[eval]").unwrap()..];
    let no_stage2 = format!("{}{eval}", &shipped[..cut]);
    let bad_scale = shipped.replace("text_scale = 4.0", "text_scale = -1.0");
    for (name, text, named) in [
        ("no_stage2.toml", no_stage2, "[stage2]"),
        ("bad_scale.toml", bad_scale, "gan.text_scale"),
    ] {
        let path = write_config(dir.path(), name, text);
        t2i_refuses(&["train", "--config", arg(&path), "--stage", "1"], &[named]);
    }
}

#[test]
fn attngan_config_and_attention_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = shipped_config("attngan_birds_small.toml");
    let gan = shipped_config("gan_int_cls_birds.toml");
    // Each case: a change to the shipped config and the key its error names.
    let cases = [
        (
            "lr = 0.0002",
            "lr = 0.0002\nlr_decay_every = 100",
            "train.lr_decay_every",
        ),
        ("text_scale = 4.0", "text_scale = 0.0", "gan.text_scale"),
        ("branch_num = 3", "branch_num = 4", "attngan.branch_num"),
        (
            "damsm_image_size = 149",
            "damsm_image_size = 64",
            "attngan.damsm_image_size",
        ),
        ("damsm_every = 1", "damsm_every = 0", "attngan.damsm_every"),
    ];
    for (from, to, key) in cases {
        let path = write_config(dir.path(), "bad.toml", shipped.replace(from, to));
        t2i_refuses(&["train", "--config", arg(&path)], &[key]);
    }
    // The [attngan] section in another model's config is named.
    let path = write_config(
        dir.path(),
        "gan.toml",
        format!("{gan}\n[attngan]\nbranch_num = 2\n"),
    );
    t2i_refuses(&["train", "--config", arg(&path)], &["[attngan]"]);
    // Word attention needs an AttnGAN bundle.
    let out = dir.path().join("bird.png");
    let attention = dir.path().join("attention.png");
    let with_attention = |bundle: &Path, caption: &str| {
        generate(
            bundle,
            &out,
            &["--caption", caption, "--attention", arg(&attention)],
        )
    };
    let (ok, err) = with_attention(&shipped_gan(), "a red bird");
    assert!(!ok);
    assert!(
        err.contains("--attention") && err.contains("AttnGAN"),
        "{err}"
    );
    assert!(!attention.exists());
    // With the shipped AttnGAN bundle both pictures are written (the 256 px image as drawn); the
    // figure has one row of seven 256 px tiles (the image and six words) per caption.
    let (ok, err) = with_attention(
        &weights("attngan_birds_small.int8.safetensors"),
        "a small red bird with black wings and a white belly",
    );
    assert!(ok, "{err}");
    assert_eq!(image::open(&out).unwrap().width(), 256);
    let figure = image::open(&attention).unwrap();
    assert!(figure.width() >= 7 * 256, "{}", figure.width());
    assert!(figure.height() > 256 && figure.height() < 2 * 256);
}

/// `t2i portable --from-bundle` turns the shipped GAN-INT-CLS bundle into weights a run can
/// continue from, given a config whose text encoder is the one the bundle was trained with (the
/// small config's, `weights/damsm_birds.safetensors`), and refuses a bundle of another model,
/// size or text encoder by name.
#[test]
fn portable_weights_from_a_shipped_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("portable");
    let absolute = format!("\"{}/../", config_dir().display());
    let in_dir = |name: &str, text: String| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("\"../", &absolute)).unwrap();
        path
    };
    let small = shipped_config("gan_int_cls_birds_small.toml");
    let config = in_dir("small.toml", small.clone());
    let (ok, err) = t2i(&[
        "portable",
        "--config",
        arg(&config),
        "--from-bundle",
        arg(&shipped_gan()),
        "--step",
        "1500",
        "--out",
        arg(&out),
    ]);
    assert!(ok, "{err}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("step.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 1500);
    for file in ["generator.f16.safetensors", "discriminator.f16.safetensors"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    let refused = |config: &Path, bundle: Option<&Path>, named: &str| {
        let out = dir.path().join("refused");
        let mut args = vec!["portable", "--config", arg(config), "--out", arg(&out)];
        match bundle {
            Some(bundle) => args.extend(["--from-bundle", arg(bundle)]),
            None => args.extend(["--step", "3"]),
        }
        t2i_refuses(&args, &[named]);
    };
    // A config on the DAMSM shipped before (the StackGAN bundle's text encoder).
    let earlier_damsm = in_dir(
        "earlier_damsm.toml",
        small.replace(
            "text_encoder = \"../weights/damsm_birds.safetensors\"",
            "text_encoder = \"../weights/stackgan_birds_small.int8.safetensors\"",
        ),
    );
    refused(
        &earlier_damsm,
        Some(&shipped_gan()),
        "its text encoder is not the config's",
    );
    // The paper-size config is another model size.
    refused(
        &config_dir().join("gan_int_cls_birds.toml"),
        Some(&shipped_gan()),
        "is not the config's model",
    );
    // A StackGAN bundle is not a GAN-INT-CLS one.
    refused(
        &config,
        Some(&weights("stackgan_birds_small.int8.safetensors")),
        "not a GAN-INT-CLS bundle",
    );
    // --step needs --from-bundle.
    refused(&config, None, "--from-bundle");
}
