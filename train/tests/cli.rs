//! The `t2i` command refuses bad input with a message naming what is wrong, and never panics.

use std::path::Path;

mod common;
use common::t2i;

fn config_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

#[test]
fn missing_config_is_named() {
    let (ok, err) = t2i(&["train", "--config", "/nonexistent/damsm.toml"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/damsm.toml"), "{err}");
}

#[test]
fn unknown_and_invalid_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(config_dir().join("damsm_birds.toml")).unwrap();

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, shipped.replace("batch_size = 48", "batch_sise = 48")).unwrap();
    let (ok, err) = t2i(&["train", "--config", typo.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("batch_sise"), "{err}");

    let zero = dir.path().join("zero.toml");
    std::fs::write(&zero, shipped.replace("batch_size = 48", "batch_size = 1")).unwrap();
    let (ok, err) = t2i(&["train", "--config", zero.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("train.batch_size"), "{err}");

    let no_model = dir.path().join("no_model.toml");
    std::fs::write(&no_model, shipped.replace("model = \"damsm\"", "")).unwrap();
    let (ok, err) = t2i(&["train", "--config", no_model.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("model"), "{err}");
}

#[test]
fn corrupt_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("broken.safetensors");
    std::fs::write(&bundle, b"definitely not a bundle").unwrap();
    let config = config_dir().join("damsm_birds.toml");
    let (ok, err) = t2i(&[
        "eval",
        "damsm",
        "--config",
        config.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("broken.safetensors") && err.contains("not a readable bundle"),
        "{err}"
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
        let (ok, err) = t2i(&["--backend", backend, "features", "--config", "x.toml"]);
        assert!(!ok, "--backend {backend} ran in a build without it");
        assert!(err.contains(&format!("--features {backend}")), "{err}");
    }
}

fn shipped_gan() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights/gan_int_cls_birds.int8.safetensors")
}

#[test]
fn generate_writes_an_image_and_names_unknown_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bird.png");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        shipped_gan().to_str().unwrap(),
        "--caption",
        "a small yellow bird with grey wings and a blorptastic bill",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("blorptastic"), "{err}");
    let image = image::open(&out).unwrap();
    assert_eq!((image.width(), image.height()), (256, 256));

    let grid = dir.path().join("grid.png");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        shipped_gan().to_str().unwrap(),
        "--caption",
        "a red bird",
        "--caption",
        "a blue bird",
        "--count",
        "3",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(image::open(&grid).unwrap().width() > 3 * 64);
}

#[test]
fn generate_refuses_bad_captions_and_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        shipped_gan().to_str().unwrap(),
        "--caption",
        "",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("empty"), "{err}");
    assert!(!out.exists());

    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(shipped_gan()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        truncated.to_str().unwrap(),
        "--caption",
        "a red bird",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("truncated.safetensors") && err.contains("not a readable bundle"),
        "{err}"
    );
    // A DAMSM bundle is not a generator.
    let damsm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights/damsm_birds.safetensors");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        damsm.to_str().unwrap(),
        "--caption",
        "a red bird",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("t2i-damsm"), "{err}");
}

#[test]
fn gan_config_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(config_dir().join("gan_int_cls_birds.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, shipped.replace("beta = 0.5", "beta = 1.5")).unwrap();
    let (ok, err) = t2i(&["train", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("train.beta"), "{err}");
    // Recipe keys: a bad value names its key; an unknown key is named by serde.
    for (section, named) in [
        ("[recipe]\nema_decay = 1.5\n", "recipe.ema_decay"),
        ("[recipe]\nma_gp_power = 5\n", "recipe.ma_gp_power"),
        ("[recipe]\nlr_d = -1.0\n", "recipe.lr_d"),
        ("[recipe]\naugment = [\"flip\"]\n", "flip"),
        ("[recipe]\nspectral = true\n", "spectral"),
    ] {
        std::fs::write(&bad, format!("{shipped}\n{section}")).unwrap();
        let (ok, err) = t2i(&["train", "--config", bad.to_str().unwrap()]);
        assert!(!ok, "{section}");
        assert!(err.contains(named), "{section}: {err}");
    }
    let (ok, err) = t2i(&[
        "eval",
        "damsm",
        "--config",
        config_dir()
            .join("gan_int_cls_birds.toml")
            .to_str()
            .unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("DAMSM config"), "{err}");
}

#[test]
fn stackgan_stage_and_config_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_dir().join("stackgan_birds_small.toml");
    let config = config.to_str().unwrap();
    let (ok, err) = t2i(&["train", "--config", config]);
    assert!(!ok);
    assert!(err.contains("--stage 1"), "{err}");
    let (ok, err) = t2i(&["train", "--config", config, "--stage", "3"]);
    assert!(!ok);
    assert!(err.contains("--stage must be 1 or 2"), "{err}");
    let gan = config_dir().join("gan_int_cls_birds.toml");
    let (ok, err) = t2i(&["train", "--config", gan.to_str().unwrap(), "--stage", "1"]);
    assert!(!ok);
    assert!(err.contains("StackGAN configs"), "{err}");

    let shipped = std::fs::read_to_string(config_dir().join("stackgan_birds_small.toml")).unwrap();
    let cut = shipped.find("[stage2]").unwrap();
    let no_stage2 = dir.path().join("no_stage2.toml");
    let eval = shipped[shipped.find("[eval]").unwrap()..].to_string();
    std::fs::write(&no_stage2, format!("{}{eval}", &shipped[..cut])).unwrap();
    let (ok, err) = t2i(&[
        "train",
        "--config",
        no_stage2.to_str().unwrap(),
        "--stage",
        "1",
    ]);
    assert!(!ok);
    assert!(err.contains("[stage2]"), "{err}");
    let bad_scale = dir.path().join("bad_scale.toml");
    std::fs::write(
        &bad_scale,
        shipped.replace("text_scale = 4.0", "text_scale = -1.0"),
    )
    .unwrap();
    let (ok, err) = t2i(&[
        "train",
        "--config",
        bad_scale.to_str().unwrap(),
        "--stage",
        "1",
    ]);
    assert!(!ok);
    assert!(err.contains("gan.text_scale"), "{err}");
}

#[test]
fn attngan_config_and_attention_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(config_dir().join("attngan_birds_small.toml")).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cases = [
        (
            "decay.toml",
            shipped.replace("lr = 0.0002", "lr = 0.0002\nlr_decay_every = 100"),
            "train.lr_decay_every",
        ),
        (
            "scale.toml",
            shipped.replace("text_scale = 4.0", "text_scale = 0.0"),
            "gan.text_scale",
        ),
        (
            "branches.toml",
            shipped.replace("branch_num = 3", "branch_num = 4"),
            "attngan.branch_num",
        ),
        (
            "resize.toml",
            shipped.replace("damsm_image_size = 149", "damsm_image_size = 64"),
            "attngan.damsm_image_size",
        ),
        (
            "every.toml",
            shipped.replace("damsm_every = 1", "damsm_every = 0"),
            "attngan.damsm_every",
        ),
    ];
    for (name, text, key) in cases {
        let path = write(name, text);
        let (ok, err) = t2i(&["train", "--config", path.to_str().unwrap()]);
        assert!(!ok, "{name}");
        assert!(err.contains(key), "{name}: {err}");
    }
    // The [attngan] section in another model's config is named.
    let gan = std::fs::read_to_string(config_dir().join("gan_int_cls_birds.toml")).unwrap();
    let path = write("gan.toml", format!("{gan}\n[attngan]\nbranch_num = 2\n"));
    let (ok, err) = t2i(&["train", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("[attngan]"), "{err}");
    // Word attention needs an AttnGAN bundle.
    let out = dir.path().join("bird.png");
    let attention = dir.path().join("attention.png");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        shipped_gan().to_str().unwrap(),
        "--caption",
        "a red bird",
        "--out",
        out.to_str().unwrap(),
        "--attention",
        attention.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("--attention") && err.contains("AttnGAN"),
        "{err}"
    );
    assert!(!attention.exists());
    // With the shipped AttnGAN bundle both pictures are written (the 256 px image as drawn); the
    // figure has one row of
    // seven 256 px tiles (the image and six words) per caption.
    let attngan = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../weights/attngan_birds_small.int8.safetensors");
    let (ok, err) = t2i(&[
        "generate",
        "--bundle",
        attngan.to_str().unwrap(),
        "--caption",
        "a small red bird with black wings and a white belly",
        "--out",
        out.to_str().unwrap(),
        "--attention",
        attention.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(image::open(&out).unwrap().width(), 256);
    let figure = image::open(&attention).unwrap();
    assert!(figure.width() >= 7 * 256, "{}", figure.width());
    assert!(figure.height() > 256 && figure.height() < 2 * 256);
}

/// `t2i portable --from-bundle` turns the shipped GAN-INT-CLS bundle into weights a run can
/// continue from, and refuses a bundle of another model or size by name.
#[test]
fn portable_weights_from_a_shipped_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("portable");
    let config = config_dir().join("gan_int_cls_birds.toml");
    let (ok, err) = t2i(&[
        "portable",
        "--config",
        config.to_str().unwrap(),
        "--from-bundle",
        shipped_gan().to_str().unwrap(),
        "--step",
        "767",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("step.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 767);
    for file in ["generator.f16.safetensors", "discriminator.f16.safetensors"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    // The small config is another model size.
    let small = config_dir().join("gan_int_cls_birds_small.toml");
    let (ok, err) = t2i(&[
        "portable",
        "--config",
        small.to_str().unwrap(),
        "--from-bundle",
        shipped_gan().to_str().unwrap(),
        "--out",
        dir.path().join("small").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("is not the config's model"), "{err}");
    // A StackGAN bundle is not a GAN-INT-CLS one.
    let stackgan = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../weights/stackgan_birds_small.int8.safetensors");
    let (ok, err) = t2i(&[
        "portable",
        "--config",
        config.to_str().unwrap(),
        "--from-bundle",
        stackgan.to_str().unwrap(),
        "--out",
        dir.path().join("stackgan").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("not a GAN-INT-CLS bundle"), "{err}");
    // --step needs --from-bundle.
    let (ok, err) = t2i(&[
        "portable",
        "--config",
        config.to_str().unwrap(),
        "--step",
        "3",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("--from-bundle"), "{err}");
}
