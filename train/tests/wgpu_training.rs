//! burn's GPU path trains as the CPU does. Two GAN-INT-CLS steps (D, then G, with Adam, from
//! the same weights and the same batches) on the wgpu backend give flex's losses. `make test`
//! runs it on Mesa's lavapipe; `FEATURES=gpu tools/wgpu_parity.sh` runs it (and the parity
//! tests) in the GPU build, with burn's autotune and fusion, whose combination gave wrong
//! results on Vulkan in earlier burn releases (tracel-ai/burn issues 5079, 5257, 5626).
#![cfg(feature = "wgpu")]

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use t2i::gan_int_cls::{
    Discriminator, GanIntClsConfig, Generator, discriminator_loss, generator_loss,
};
use t2i::layers::{AdversarialLoss, resize_bilinear_aligned};
use t2i_train::device::{Backend, select};
use t2i_train::run::adversarial::GanNetworks;
use t2i_train::run::recipe::{Augmentation, Recipe};

const STEPS: usize = 2;
const BATCH: usize = 8;
const TEXT_DIM: usize = 32;
/// The paper's Adam rate.
const RATE: f64 = 2e-4;
/// How far a step's loss on wgpu may lie from flex's, relative to the loss (at least 1).
/// Measured on lavapipe (2026-12-07, flex on AVX2): the first step's losses differ by 6e-6 at
/// most, the second's by 6e-5. Adam's first updates move every weight by about the rate
/// whatever its gradient's size, so a gradient that rounds to the other sign moves a weight the
/// other way, and the difference grows with each step (to 8e-3 by the fourth): two steps keep
/// it far below what a kernel computing the wrong thing does. The GPU build (autotune and
/// fusion) gave the same wgpu losses as the plain one to 4e-6.
const TOLERANCE: [f32; STEPS] = [1e-4, 2e-3];

/// One step's inputs, drawn on the host so both backends get the same numbers.
struct Batch {
    real: TensorData,
    right: TensorData,
    wrong: TensorData,
    noise: TensorData,
}

fn normal(rng: &mut StdRng, n: usize) -> Vec<f32> {
    // Box-Muller: the host draws the noise, so the backends' own generators play no part.
    (0..n)
        .map(|_| {
            let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        })
        .collect()
}

fn batches(config: &GanIntClsConfig) -> Vec<Batch> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..STEPS)
        .map(|_| {
            let image: Vec<f32> = (0..BATCH * 3 * 64 * 64)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            Batch {
                real: TensorData::new(image, [BATCH, 3, 64, 64]),
                right: TensorData::new(normal(&mut rng, BATCH * TEXT_DIM), [BATCH, TEXT_DIM]),
                wrong: TensorData::new(normal(&mut rng, BATCH * TEXT_DIM), [BATCH, TEXT_DIM]),
                noise: TensorData::new(
                    normal(&mut rng, BATCH * config.noise_dim),
                    [BATCH, config.noise_dim],
                ),
            }
        })
        .collect()
}

/// (D's loss, G's loss) at each step of training copies of `networks` on `device`.
fn losses(
    networks: &(Generator, Discriminator),
    batches: &[Batch],
    device: &Device,
) -> Vec<(f32, f32)> {
    let train = device.clone().autodiff();
    // `fork`: a copy on `train` whose parameters are leaves of its own graph.
    let mut nets = GanNetworks::new(
        networks.0.clone().fork(&train),
        networks.1.clone().fork(&train),
    );
    let loss = AdversarialLoss::Logistic;
    let mut losses = Vec::new();
    for b in batches {
        let real = Tensor::<4>::from_data(b.real.clone(), &train);
        let [right, wrong, noise] =
            [&b.right, &b.wrong, &b.noise].map(|data| Tensor::<2>::from_data(data.clone(), &train));
        let fake = nets
            .generator
            .forward(noise.clone(), right.clone())
            .detach();
        let d = &nets.discriminator;
        let loss_d = discriminator_loss(
            d.forward(real.clone(), right.clone()),
            d.forward(real, wrong),
            d.forward(fake, right.clone()),
            loss,
        );
        let value_d = loss_d.clone().into_scalar::<f32>();
        nets = nets.update_discriminator(loss_d, RATE);
        let fake = nets.generator.forward(noise, right.clone());
        let loss_g = generator_loss(nets.discriminator.forward(fake, right), None, 0.0, loss);
        let value_g = loss_g.clone().into_scalar::<f32>();
        nets = nets.update_generator(loss_g, RATE);
        losses.push((value_d, value_g));
    }
    losses
}

#[test]
fn wgpu_training_steps_give_the_losses_of_flex() {
    let config = GanIntClsConfig::new()
        .with_text_dim(TEXT_DIM)
        .with_ngf(16)
        .with_ndf(16);
    let flex = Device::flex();
    let init = flex.clone().autodiff();
    init.seed(3);
    let networks = (
        config.init_generator(&init),
        config.init_discriminator(&init),
    );
    let batches = batches(&config);
    let wgpu = select(Backend::Wgpu).expect("a build with the wgpu feature has the wgpu device");
    let on_flex = losses(&networks, &batches, &flex);
    let on_wgpu = losses(&networks, &batches, &wgpu);
    eprintln!("losses (D, G) per step: flex {on_flex:?}, wgpu {on_wgpu:?}");
    for (step, ((a, b), tolerance)) in on_flex.iter().zip(&on_wgpu).zip(TOLERANCE).enumerate() {
        for (name, x, y) in [("D", a.0, b.0), ("G", a.1, b.1)] {
            assert!(
                x.is_finite() && (x - y).abs() <= tolerance * x.abs().max(1.0),
                "step {step}: {name}'s loss is {y} on wgpu and {x} on flex (tolerance {tolerance} relative)"
            );
        }
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The gradient of `sum(resize(x) * weights)` with respect to `x` on `device`.
fn resize_gradient(x: &TensorData, weights: &TensorData, size: usize, device: &Device) -> Vec<f32> {
    let train = device.clone().autodiff();
    let x = Tensor::<4>::from_data(x.clone(), &train).require_grad();
    let weights = Tensor::<4>::from_data(weights.clone(), &train);
    let grads = (resize_bilinear_aligned(x.clone(), size) * weights)
        .sum()
        .backward();
    values(x.grad(&grads).expect("a gradient reaches the image"))
}

/// AttnGAN's DAMSM term resizes its images for Inception (256 to 299 px) and back-propagates
/// through the resize. burn's GPU backends have no bilinear `interpolate` backward (a training
/// step panicked on lavapipe), so the resize is two matrix products: their gradient on wgpu is
/// flex's. The recipe's augmentations, in every update of D and G, also differentiate there.
#[test]
fn the_damsm_resize_and_the_augmentations_differentiate_on_wgpu() {
    let mut rng = StdRng::seed_from_u64(11);
    let (from, to) = (12, 17);
    let x = TensorData::new(normal(&mut rng, 2 * 3 * from * from), [2, 3, from, from]);
    let weights = TensorData::new(normal(&mut rng, 2 * 3 * to * to), [2, 3, to, to]);
    let wgpu = select(Backend::Wgpu).expect("a build with the wgpu feature has the wgpu device");
    let on_flex = resize_gradient(&x, &weights, to, &Device::flex());
    let on_wgpu = resize_gradient(&x, &weights, to, &wgpu);
    let gap = on_flex
        .iter()
        .zip(&on_wgpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(gap < 1e-4, "the resize's gradient differs by {gap} on wgpu");

    let recipe = Recipe {
        augment: Augmentation::ALL.to_vec(),
        ..Recipe::papers()
    };
    let train = wgpu.autodiff();
    train.seed(3);
    let images = Tensor::<4>::from_data(x, &train).require_grad();
    let grads = recipe.augment(images.clone()).sum().backward();
    let grad = values(images.grad(&grads).expect("a gradient reaches the images"));
    assert!(grad.iter().all(|g| g.is_finite()) && grad.iter().any(|&g| g != 0.0));
}
