//! Where the time of a generator forward goes on flex: every layer of GAN-INT-CLS, StackGAN
//! (Stage-I + Stage-II) and AttnGAN (birds) timed on its own, summed per kind of operation, and
//! micro-benchmarks of the alternatives for the costly ones (nearest upsampling, eval batch
//! norm, the convolution's overhead over its matrix product, the attention's pieces).
//!
//! ```sh
//! cargo run --release -p t2i-train --example profile_ops -- [--models gan_int_cls,stackgan,attngan] \
//!     [--batches 1,8] [--reps 5] [--no-micro] [--train-layers 64]
//! ```
//!
//! The networks are the paper sizes (`GanIntClsConfig::paper(256)`, `StackGanConfig::paper(256)`,
//! `AttnGanConfig::birds()`), randomly initialised and in inference mode: weights do not change
//! the cost. flex runs each operation eagerly, so timing every call on its own adds only the
//! timer; the instrumented forward is checked against the plain one (same output, total time).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::activation::{glu, leaky_relu, relu, sigmoid, tanh};
use burn::tensor::module::{interpolate, unfold4d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, UnfoldOptions};
use burn::tensor::{Bool, Distribution};
use t2i::attngan::{AttnGanConfig, AttnGanGenerator, GluResBlock, GluUpBlock, WordAttention};
use t2i::gan_int_cls::{GanIntClsConfig, Generator, ResidualBlock};
use t2i::layers::upsample_nearest2;
use t2i::stackgan::{ResBlock, StackGanConfig, StageIGenerator, StageIIGenerator, UpBlock};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Accumulated time per operation kind and per convolution layer.
#[derive(Default)]
struct Prof {
    kinds: BTreeMap<&'static str, f64>,
    /// name -> (ms, GFLOP, description)
    convs: BTreeMap<String, (f64, f64, String)>,
    order: Vec<String>,
}

impl Prof {
    fn op<T>(&mut self, kind: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        *self.kinds.entry(kind).or_default() += start.elapsed().as_secs_f64() * 1e3;
        out
    }

    fn record_conv(&mut self, kind: &'static str, name: &str, ms: f64, gflop: f64, what: String) {
        *self.kinds.entry(kind).or_default() += ms;
        if !self.convs.contains_key(name) {
            self.order.push(name.to_string());
        }
        let e = self
            .convs
            .entry(name.to_string())
            .or_insert((0.0, 0.0, what));
        e.0 += ms;
        e.1 += gflop;
    }

    /// Times `forward` on `x` as the convolution `name` of `kind`, whose kernel is `kernel`
    /// ([out, in, kh, kw] as a product counts them) and whose multiply-adds are counted on the
    /// side `per_input` says (the output's for a convolution, the input's for a transposed one).
    fn timed_conv(
        &mut self,
        kind: &'static str,
        name: &str,
        kernel: [usize; 4],
        per_input: bool,
        x: Tensor<4>,
        forward: impl FnOnce(Tensor<4>) -> Tensor<4>,
    ) -> Tensor<4> {
        let [cout, cin, kh, kw] = kernel;
        let [b, _, h, w] = x.dims();
        let start = Instant::now();
        let y = forward(x);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let [_, _, ho, wo] = y.dims();
        let positions = if per_input { h * w } else { ho * wo };
        let gflop = 2.0 * (b * cout * positions * cin * kh * kw) as f64 / 1e9;
        let transposed = if per_input { "T" } else { "" };
        let what = format!("{transposed}{kh}x{kw} {cin}->{cout} {h}x{w}->{ho}x{wo}");
        self.record_conv(kind, name, ms, gflop, what);
        y
    }

    fn conv(&mut self, name: &str, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        let kernel = conv.weight.dims();
        let kind = match kernel[2] {
            1 => "conv 1x1",
            3 => "conv 3x3",
            _ => "conv 4x4",
        };
        self.timed_conv(kind, name, kernel, false, x, |x| conv.forward(x))
    }

    /// A convolution followed by its batch norm.
    fn conv_bn(&mut self, name: &str, conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv(name, conv, x);
        self.bn(bn, y)
    }

    fn conv_t(&mut self, name: &str, conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
        let [cin, cout, kh, kw] = conv.weight.dims();
        let kind = "conv transpose 4x4";
        self.timed_conv(kind, name, [cout, cin, kh, kw], true, x, |x| {
            conv.forward(x)
        })
    }

    fn bn<const D: usize>(&mut self, bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
        self.op("batch norm", || bn.forward(x))
    }

    fn scale(&mut self, by: f64) {
        for v in self.kinds.values_mut() {
            *v *= by;
        }
        for v in self.convs.values_mut() {
            v.0 *= by;
            v.1 *= by;
        }
    }

    fn print(&self, title: &str, plain_ms: f64) {
        let total: f64 = self.kinds.values().sum();
        println!("\n### {title}: {total:.1} ms instrumented, {plain_ms:.1} ms plain forward\n");
        println!("| operation | ms | share |\n|---|---:|---:|");
        let mut kinds: Vec<_> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.total_cmp(a.1));
        for (k, ms) in kinds {
            println!("| {k} | {ms:.1} | {:.0}% |", 100.0 * ms / total);
        }
        let gflop: f64 = self.convs.values().map(|v| v.1).sum();
        let conv_ms: f64 = self.convs.values().map(|v| v.0).sum();
        println!(
            "\nconvolutions: {gflop:.2} GFLOP in {conv_ms:.1} ms = {:.0} GFLOP/s\n",
            gflop / conv_ms * 1e3
        );
        println!("| layer | shape | ms | GFLOP/s |\n|---|---|---:|---:|");
        for name in &self.order {
            let (ms, g, what) = &self.convs[name];
            println!("| {name} | {what} | {ms:.2} | {:.0} |", g / ms * 1e3);
        }
    }
}

fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Median ms of `reps` runs after one warm-up.
fn time_ms<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Instrumented forwards (the same operations as the modules' own `forward`)

fn gan_int_cls_residual(p: &mut Prof, name: &str, r: &ResidualBlock, x: Tensor<4>) -> Tensor<4> {
    let h = p.conv_bn(
        &format!("{name}.reduce"),
        &r.reduce,
        &r.reduce_bn,
        x.clone(),
    );
    let h = p.op("relu / leaky relu", || relu(h));
    let h = p.conv_bn(&format!("{name}.conv"), &r.conv, &r.conv_bn, h);
    let h = p.op("relu / leaky relu", || relu(h));
    let h = p.conv_bn(&format!("{name}.expand"), &r.expand, &r.expand_bn, h);
    p.op("add", || x + h)
}

fn gan_int_cls_forward(
    p: &mut Prof,
    g: &Generator,
    noise: Tensor<2>,
    text: Tensor<2>,
) -> Tensor<4> {
    let [batch, _] = noise.dims();
    let t = p.op("linear", || g.text.fc.forward(text));
    let t = p.op("relu / leaky relu", || leaky_relu(t, 0.2));
    let x = p.op("cat / replicate", || Tensor::cat(vec![noise, t], 1));
    let [_, width] = x.dims();
    let x = x.reshape([batch, width, 1, 1]);
    let x = p.conv_t("project", &g.project, x);
    let x = p.bn(&g.project_bn, x);
    let x = gan_int_cls_residual(p, "residual_4", &g.residual_4, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_t("up_8", &g.up_8, x);
    let x = p.bn(&g.up_8_bn, x);
    let x = gan_int_cls_residual(p, "residual_8", &g.residual_8, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_t("up_16", &g.up_16, x);
    let x = p.bn(&g.up_16_bn, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_t("up_32", &g.up_32, x);
    let x = p.bn(&g.up_32_bn, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_t("to_rgb", &g.to_rgb, x);
    p.op("tanh", || tanh(x))
}

fn up_block(p: &mut Prof, name: &str, up: &UpBlock, x: Tensor<4>) -> Tensor<4> {
    let x = p.op("upsample nearest x2", || upsample_nearest2(x));
    let x = p.conv_bn(name, &up.conv, &up.bn, x);
    p.op("relu / leaky relu", || relu(x))
}

fn stage1_forward(
    p: &mut Prof,
    g: &StageIGenerator,
    text: Tensor<2>,
    noise: Tensor<2>,
    eps: Tensor<2>,
) -> Tensor<4> {
    let c = p.op("linear", || g.ca_net.forward(text, eps));
    let x = p.op("cat / replicate", || Tensor::cat(vec![noise, c.code], 1));
    let x = p.op("linear", || g.fc.forward(x));
    let x = p.bn(&g.fc_bn, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let [b, width] = x.dims();
    let x = x.reshape([b, width / 16, 4, 4]);
    let ups = [&g.upsample1, &g.upsample2, &g.upsample3, &g.upsample4];
    up_to_image(p, "s1", ups, &g.img, x)
}

/// A StackGAN stage's four up-blocks and its image head.
fn up_to_image(
    p: &mut Prof,
    stage: &str,
    ups: [&UpBlock; 4],
    img: &Conv2d,
    mut x: Tensor<4>,
) -> Tensor<4> {
    for (i, up) in ups.into_iter().enumerate() {
        x = up_block(p, &format!("{stage}.upsample{}", i + 1), up, x);
    }
    let x = p.conv(&format!("{stage}.img"), img, x);
    p.op("tanh", || tanh(x))
}

fn res_block(p: &mut Prof, name: &str, r: &ResBlock, x: Tensor<4>) -> Tensor<4> {
    let h = p.conv_bn(&format!("{name}.conv1"), &r.conv1, &r.bn1, x.clone());
    let h = p.op("relu / leaky relu", || relu(h));
    let h = p.conv_bn(&format!("{name}.conv2"), &r.conv2, &r.bn2, h);
    let x = p.op("add", || x + h);
    p.op("relu / leaky relu", || relu(x))
}

fn stage2_forward(
    p: &mut Prof,
    g: &StageIIGenerator,
    low: Tensor<4>,
    text: Tensor<2>,
    eps: Tensor<2>,
) -> Tensor<4> {
    let e = &g.encoder;
    let x = p.conv("s2.encoder.conv", &e.conv, low);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_bn("s2.encoder.down1", &e.down1, &e.down1_bn, x);
    let x = p.op("relu / leaky relu", || relu(x));
    let x = p.conv_bn("s2.encoder.down2", &e.down2, &e.down2_bn, x);
    let encoded = p.op("relu / leaky relu", || relu(x));
    let c = p.op("linear", || g.ca_net.forward(text, eps));
    let [b, _, size, _] = encoded.dims();
    let [_, cw] = c.code.dims();
    let x = p.op("cat / replicate", || {
        let grid = c.code.reshape([b, cw, 1, 1]).expand([b, cw, size, size]);
        Tensor::cat(vec![encoded, grid], 1)
    });
    let x = p.conv_bn("s2.hr_joint", &g.hr_joint, &g.hr_joint_bn, x);
    let mut x = p.op("relu / leaky relu", || relu(x));
    for (i, r) in g.residual.iter().enumerate() {
        x = res_block(p, &format!("s2.residual.{i}"), r, x);
    }
    let ups = [&g.upsample1, &g.upsample2, &g.upsample3, &g.upsample4];
    up_to_image(p, "s2", ups, &g.img, x)
}

fn glu_up(p: &mut Prof, name: &str, up: &GluUpBlock, x: Tensor<4>) -> Tensor<4> {
    let x = p.op("upsample nearest x2", || upsample_nearest2(x));
    let x = p.conv_bn(name, &up.conv, &up.bn, x);
    p.op("glu", || glu(x, 1))
}

fn glu_res(p: &mut Prof, name: &str, r: &GluResBlock, x: Tensor<4>) -> Tensor<4> {
    let h = p.conv_bn(&format!("{name}.conv1"), &r.conv1, &r.bn1, x.clone());
    let h = p.op("glu", || glu(h, 1));
    let h = p.conv_bn(&format!("{name}.conv2"), &r.conv2, &r.bn2, h);
    p.op("add", || x + h)
}

/// `WordAttention::forward` in timed pieces.
fn attention(
    p: &mut Prof,
    att: &WordAttention,
    hidden: Tensor<4>,
    words: Tensor<3>,
    padding: Tensor<2, Bool>,
) -> (Tensor<4>, Tensor<4>) {
    let [b, g, h, w] = hidden.dims();
    let t = words.dims()[2];
    let source = p.op("attention: 1x1 word projection", || {
        att.project_words(words, g)
    });
    let attn = p.op("attention: scores, mask + softmax", || {
        att.attend(hidden, source.clone(), padding)
    });
    let context = p.op("attention: matmul context", || {
        source.matmul(attn.clone()).reshape([b, g, h, w])
    });
    (context, attn.reshape([b, t, h, w]))
}

fn attngan_forward(
    p: &mut Prof,
    g: &AttnGanGenerator,
    sentence: Tensor<2>,
    words: Tensor<3>,
    padding: Tensor<2, Bool>,
    noise: Tensor<2>,
    eps: Tensor<2>,
) -> Vec<Tensor<4>> {
    let c = p.op("linear", || g.ca_net.forward(sentence, eps));
    let s = &g.h_net1;
    let x = p.op("cat / replicate", || Tensor::cat(vec![c.code, noise], 1));
    let x = p.op("linear", || s.fc.forward(x));
    let x = p.bn(&s.fc_bn, x);
    let x = p.op("glu", || glu(x, 1));
    let [b, width] = x.dims();
    let x = x.reshape([b, width / 16, 4, 4]);
    let x = glu_up(p, "h1.upsample1", &s.upsample1, x);
    let x = glu_up(p, "h1.upsample2", &s.upsample2, x);
    let x = glu_up(p, "h1.upsample3", &s.upsample3, x);
    let mut hidden = glu_up(p, "h1.upsample4", &s.upsample4, x);
    let img = p.conv("img1", &g.img_net1.img, hidden.clone());
    let mut images = vec![p.op("tanh", || tanh(img))];
    for (k, (net, head)) in [(&g.h_net2, &g.img_net2), (&g.h_net3, &g.img_net3)]
        .into_iter()
        .enumerate()
    {
        let (Some(net), Some(head)) = (net, head) else {
            continue;
        };
        let (context, _maps) =
            attention(p, &net.att, hidden.clone(), words.clone(), padding.clone());
        let mut x = p.op("cat / replicate", || Tensor::cat(vec![hidden, context], 1));
        for (i, r) in net.residual.iter().enumerate() {
            x = glu_res(p, &format!("h{}.residual.{i}", k + 2), r, x);
        }
        hidden = glu_up(p, &format!("h{}.upsample", k + 2), &net.upsample, x);
        let img = p.conv(&format!("img{}", k + 2), &head.img, hidden.clone());
        images.push(p.op("tanh", || tanh(img)));
    }
    images
}

// ---------------------------------------------------------------------------------------------
// Micro-benchmarks

/// An element-wise operation under test.
type ElementOp = Box<dyn Fn(Tensor<4>) -> Tensor<4>>;

fn micro(device: &Device, reps: usize) {
    println!(
        "\n## Nearest x2 upsampling: `upsample_nearest2` (reshape/expand/reshape) vs burn `interpolate` (Nearest)\n"
    );
    println!(
        "| input | upsample_nearest2 ms | interpolate ms | speed-up | same values |\n|---|---:|---:|---:|---|"
    );
    for shape in [
        [1, 512, 16, 16],
        [1, 128, 64, 64],
        [1, 64, 128, 128],
        [1, 32, 128, 128],
        [8, 256, 32, 32],
        [8, 64, 128, 128],
        [8, 32, 128, 128],
    ] {
        let x = normal(shape, device);
        let [_, _, h, w] = shape;
        let opts =
            || InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]);
        let a = time_ms(reps, || upsample_nearest2(x.clone()));
        let b = time_ms(reps, || interpolate(x.clone(), opts()));
        let same = max_diff(upsample_nearest2(x.clone()), interpolate(x.clone(), opts())) == 0.0;
        println!("| {shape:?} | {a:.2} | {b:.2} | {:.2}x | {same} |", a / b);
    }

    println!(
        "\n## The same, forward + backward on the autodiff device (training: StackGAN / AttnGAN up-blocks)\n"
    );
    println!(
        "| input | upsample_nearest2 ms | interpolate ms | speed-up | same gradient |\n|---|---:|---:|---:|---|"
    );
    let ad = device.clone().autodiff();
    for shape in [[8, 64, 64, 64], [8, 32, 128, 128], [20, 64, 64, 64]] {
        let x = normal(shape, &ad).require_grad();
        let [_, _, h, w] = shape;
        let weight = normal([1, shape[1], 2 * h, 2 * w], &ad);
        let opts =
            || InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]);
        let grad_a = || {
            let g = (upsample_nearest2(x.clone()) * weight.clone())
                .sum()
                .backward();
            x.grad(&g).unwrap()
        };
        let grad_b = || {
            let g = (interpolate(x.clone(), opts()) * weight.clone())
                .sum()
                .backward();
            x.grad(&g).unwrap()
        };
        let a = time_ms(reps, grad_a);
        let b = time_ms(reps, grad_b);
        let same = max_diff(grad_a(), grad_b()) < 1e-4;
        println!("| {shape:?} | {a:.2} | {b:.2} | {:.2}x | {same} |", a / b);
    }

    println!(
        "\n## Eval batch norm: `BatchNorm::forward` vs one fused affine (x * scale + shift, per channel) vs folded into the preceding conv\n"
    );
    println!(
        "| input | BatchNorm ms | x*scale+shift ms | conv ms | conv+BN ms | folded conv (bias) ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let config = StackGanConfig::paper(256);
    let s2 = config.init_stage2_generator(device).valid();
    for (b, up) in [
        (1usize, &s2.upsample4),
        (1, &s2.upsample3),
        (8, &s2.upsample4),
    ] {
        let [cout, cin, _, _] = up.conv.weight.dims();
        let size = if std::ptr::eq(up, &s2.upsample4) {
            256
        } else {
            128
        };
        let input = normal([b, cin, size, size], device);
        let x = up.conv.forward(input.clone());
        let bn = &up.bn;
        let eps = bn.epsilon;
        let scale = bn.gamma.val() / bn.running_var.value().add_scalar(eps).sqrt();
        let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let s4 = scale.clone().reshape([1, cout, 1, 1]);
        let t4 = shift.clone().reshape([1, cout, 1, 1]);
        let t_bn = time_ms(reps, || bn.forward(x.clone()));
        let t_aff = time_ms(reps, || x.clone() * s4.clone() + t4.clone());
        let diff = max_diff(bn.forward(x.clone()), x.clone() * s4.clone() + t4.clone());
        assert!(diff < 1e-4, "fused affine differs by {diff}");
        let t_conv = time_ms(reps, || up.conv.forward(input.clone()));
        let t_conv_bn = time_ms(reps, || bn.forward(up.conv.forward(input.clone())));
        // BN folded into the conv: weight * scale per output channel, shift as the bias.
        let mut folded = up.conv.clone();
        folded.weight = burn::module::Param::from_tensor(
            up.conv.weight.val() * scale.clone().reshape([cout, 1, 1, 1]),
        );
        folded.bias = Some(burn::module::Param::from_tensor(shift.clone()));
        let diff = max_diff(
            folded.forward(input.clone()),
            bn.forward(up.conv.forward(input.clone())),
        );
        assert!(diff < 1e-3, "folded conv differs by {diff}");
        let t_fold = time_ms(reps, || folded.forward(input.clone()));
        println!(
            "| [{b}, {cout}, {size}, {size}] | {t_bn:.2} | {t_aff:.2} | {t_conv:.2} | {t_conv_bn:.2} | {t_fold:.2} |"
        );
    }

    println!("\n## Element-wise ops on [1, 64, 256, 256] (4.2 M values) and [8, 64, 128, 128]\n");
    println!("| op | ms (B=1, 256 px) | ms (B=8, 128 px) |\n|---|---:|---:|");
    let x1 = normal([1, 64, 256, 256], device);
    let x8 = normal([8, 64, 128, 128], device);
    let ops: Vec<(&str, ElementOp)> = vec![
        ("relu", Box::new(relu)),
        ("glu (dim 1)", Box::new(|x| glu(x, 1))),
        ("tanh", Box::new(tanh)),
        ("add (x + x)", Box::new(|x: Tensor<4>| x.clone() + x)),
        ("copy (cat of one)", Box::new(|x| Tensor::cat(vec![x], 1))),
    ];
    for (name, f) in &ops {
        let a = time_ms(reps, || f(x1.clone()));
        let b = time_ms(reps, || f(x8.clone()));
        println!("| {name} | {a:.2} | {b:.2} |");
    }

    println!(
        "\n## tanh, sigmoid and GLU: flex runs them one value at a time on one thread (libm)\n"
    );
    println!("| op | input | ms | alternative | ms | max diff |\n|---|---|---:|---|---:|---:|");
    for shape in [[1, 3, 256, 256], [8, 3, 256, 256]] {
        let x = normal(shape, device);
        let a = time_ms(reps, || tanh(x.clone()));
        let alt = |x: Tensor<4>| sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0);
        let b = time_ms(reps, || alt(x.clone()));
        let d = max_diff(tanh(x.clone()), alt(x.clone()));
        println!("| tanh | {shape:?} | {a:.2} | 2 sigmoid(2x) - 1 | {b:.2} | {d:.1e} |");
    }
    for shape in [[1, 128, 128, 128], [8, 128, 64, 64]] {
        let x = normal(shape, device);
        let a = time_ms(reps, || glu(x.clone(), 1));
        let half = shape[1] / 2;
        let alt = |x: Tensor<4>| {
            let [b, _, h, w] = x.dims();
            x.clone().slice([0..b, 0..half, 0..h, 0..w])
                * sigmoid(x.slice([0..b, half..2 * half, 0..h, 0..w]))
        };
        let b = time_ms(reps, || alt(x.clone()));
        let s = time_ms(reps, || sigmoid(x.clone()));
        let r = time_ms(reps, || relu(x.clone()));
        let d = max_diff(glu(x.clone(), 1), alt(x.clone()));
        println!("| glu | {shape:?} | {a:.2} | slice * sigmoid(slice) | {b:.2} | {d:.1e} |");
        println!(
            "| sigmoid (whole input) | {shape:?} | {s:.2} | relu (whole input, SIMD) | {r:.2} | |"
        );
    }

    println!("\n## Convolutions written with burn ops: unfold4d (im2col) + matmul, batch 1\n");
    println!(
        "`unfold + W·cols`: [out, in·k·k] x [in·k·k, H·W] (the weight needs no re-layout: unfold's \
         rows are in PyTorch's [in, k, k] order); `unfold + colsᵀ·Wᵀ`: [H·W, in·k·k] x [in·k·k, out], \
         then back to NCHW, which suits gemm when `out` is small.\n"
    );
    println!(
        "| conv | conv2d ms | unfold + W·cols ms | unfold + colsᵀ·Wᵀ ms | max diff |\n|---|---:|---:|---:|---:|"
    );
    let gic = GanIntClsConfig::paper(256).init_generator(device).valid();
    let s1b = config.init_stage1_generator(device).valid();
    let cases: Vec<(&str, &Conv2d, usize)> = vec![
        (
            "gan_int_cls residual_4.expand (3x3 256->1024, 4x4)",
            &gic.residual_4.expand,
            4,
        ),
        ("s1.upsample1 (3x3 1024->512, 8x8)", &s1b.upsample1.conv, 8),
        (
            "s2.residual.0.conv1 (3x3 512->512, 16x16)",
            &s2.residual[0].conv1,
            16,
        ),
        ("s2.upsample2 (3x3 256->128, 64x64)", &s2.upsample2.conv, 64),
        ("s1.img (3x3 64->3, 64x64)", &s1b.img, 64),
        ("s2.img (3x3 32->3, 256x256)", &s2.img, 256),
    ];
    for (name, conv, size) in cases {
        let [cout, cin, kh, kw] = conv.weight.dims();
        let x = normal([1, cin, size, size], device);
        let opts = || UnfoldOptions::new([1, 1], [kh / 2, kw / 2], [1, 1]);
        let w2 = conv.weight.val().reshape([cout, cin * kh * kw]);
        let direct = || {
            let cols = unfold4d(x.clone(), [kh, kw], opts()); // [1, in k k, H W]
            w2.clone()
                .unsqueeze_dim::<3>(0)
                .matmul(cols)
                .reshape([1, cout, size, size])
        };
        let w2t = w2.clone().transpose().unsqueeze_dim::<3>(0); // [1, in k k, out]
        let transposed = || {
            let cols = unfold4d(x.clone(), [kh, kw], opts());
            cols.swap_dims(1, 2) // [1, H W, in k k]
                .matmul(w2t.clone()) // [1, H W, out]
                .swap_dims(1, 2)
                .reshape([1, cout, size, size])
        };
        let t_conv = time_ms(reps, || conv.forward(x.clone()));
        let t_a = time_ms(reps, direct);
        let t_b = time_ms(reps, transposed);
        let reference = conv.forward(x.clone());
        let d = max_diff(reference.clone(), direct()).max(max_diff(reference, transposed()));
        println!("| {name} | {t_conv:.2} | {t_a:.2} | {t_b:.2} | {d:.1e} |");
    }

    println!(
        "\n## Convolution vs its bare matrix product (flex matmul of the same sizes, batch 1)\n"
    );
    println!(
        "Flex's conv2d: weight re-laid out on every call ([out, in, k, k] -> [out, k, k, in]), the input copied to NHWC, im2col per 512-pixel tile, gemm, the tile scattered back to NCHW. The matmul column is the gemm alone on flex (`Tensor::matmul` of [out, in*k*k] x [in*k*k, H*W]).\n"
    );
    println!(
        "| conv | conv ms | matmul ms | conv / matmul | conv GFLOP/s |\n|---|---:|---:|---:|---:|"
    );
    let s1 = config.init_stage1_generator(device).valid();
    let cases: Vec<(&str, &Conv2d, usize)> = vec![
        ("s1.upsample1 (3x3 1024->512, 8x8)", &s1.upsample1.conv, 8),
        (
            "s2.residual.0.conv1 (3x3 512->512, 16x16)",
            &s2.residual[0].conv1,
            16,
        ),
        ("s2.upsample1 (3x3 512->256, 32x32)", &s2.upsample1.conv, 32),
        ("s2.upsample2 (3x3 256->128, 64x64)", &s2.upsample2.conv, 64),
        (
            "s2.upsample3 (3x3 128->64, 128x128)",
            &s2.upsample3.conv,
            128,
        ),
        (
            "s2.upsample4 (3x3 64->32, 256x256)",
            &s2.upsample4.conv,
            256,
        ),
        ("s2.img (3x3 32->3, 256x256)", &s2.img, 256),
    ];
    for (name, conv, size) in cases {
        let [cout, cin, kh, kw] = conv.weight.dims();
        let x = normal([1, cin, size, size], device);
        let t_conv = time_ms(reps, || conv.forward(x.clone()));
        let a = normal([cout, cin * kh * kw], device);
        let bmat = normal([cin * kh * kw, size * size], device);
        let t_mm = time_ms(reps, || a.clone().matmul(bmat.clone()));
        let gflop = 2.0 * (cout * cin * kh * kw * size * size) as f64 / 1e9;
        println!(
            "| {name} | {t_conv:.2} | {t_mm:.2} | {:.2} | {:.0} |",
            t_conv / t_mm,
            gflop / t_conv * 1e3
        );
    }
}

/// One layer of the GAN-INT-CLS training step on the autodiff device.
#[derive(Clone, Copy)]
enum TrainLayer<'a> {
    Conv(&'a Conv2d),
    ConvT(&'a ConvTranspose2d),
    Bn(&'a BatchNorm),
}

/// The three convolutions of a GAN-INT-CLS residual block reading `[c, h, w]` (the inner
/// ones have `c / 4` channels).
fn residual_layers<'a>(
    name: &str,
    r: &'a ResidualBlock,
    [c, h, w]: [usize; 3],
) -> Vec<(String, TrainLayer<'a>, [usize; 3])> {
    vec![
        (
            format!("{name}.reduce"),
            TrainLayer::Conv(&r.reduce),
            [c, h, w],
        ),
        (
            format!("{name}.conv"),
            TrainLayer::Conv(&r.conv),
            [c / 4, h, w],
        ),
        (
            format!("{name}.expand"),
            TrainLayer::Conv(&r.expand),
            [c / 4, h, w],
        ),
    ]
}

/// Per-layer forward and forward + backward (input and weight gradients) of every
/// GAN-INT-CLS convolution at `batch` (64 in the paper), as the training step runs them.
fn train_layers(device: &Device, batch: usize, reps: usize) {
    let ad = device.clone().autodiff();
    ad.seed(0);
    let config = GanIntClsConfig::paper(256);
    let g = config.init_generator(&ad);
    let d = config.init_discriminator(&ad);
    let one = |name: &str, layer, shape| vec![(name.to_string(), layer, shape)];
    let layers: Vec<(String, TrainLayer, [usize; 3])> = [
        one("G.project", TrainLayer::ConvT(&g.project), [228, 1, 1]),
        one("G.project_bn", TrainLayer::Bn(&g.project_bn), [1024, 4, 4]),
        residual_layers("G.residual_4", &g.residual_4, [1024, 4, 4]),
        one("G.up_8", TrainLayer::ConvT(&g.up_8), [1024, 4, 4]),
        residual_layers("G.residual_8", &g.residual_8, [512, 8, 8]),
        one("G.up_16", TrainLayer::ConvT(&g.up_16), [512, 8, 8]),
        one("G.up_32", TrainLayer::ConvT(&g.up_32), [256, 16, 16]),
        one("G.up_32_bn", TrainLayer::Bn(&g.up_32_bn), [128, 32, 32]),
        one("G.to_rgb", TrainLayer::ConvT(&g.to_rgb), [128, 32, 32]),
        one("D.down_32", TrainLayer::Conv(&d.down_32), [3, 64, 64]),
        one("D.down_16", TrainLayer::Conv(&d.down_16), [64, 32, 32]),
        one("D.down_16_bn", TrainLayer::Bn(&d.down_16_bn), [128, 16, 16]),
        one("D.down_8", TrainLayer::Conv(&d.down_8), [128, 16, 16]),
        one("D.down_4", TrainLayer::Conv(&d.down_4), [256, 8, 8]),
        residual_layers("D.residual_4", &d.residual_4, [512, 4, 4]),
        one("D.joint", TrainLayer::Conv(&d.joint), [640, 4, 4]),
        one("D.logit", TrainLayer::Conv(&d.logit), [512, 4, 4]),
    ]
    .concat();
    println!(
        "\n## GAN-INT-CLS training layers at batch {batch} (autodiff flex): forward, and forward + \
         backward (input and weight gradients)\n"
    );
    println!("| layer | input | fwd ms | fwd+bwd ms | bwd GFLOP/s |\n|---|---|---:|---:|---:|");
    let (mut total_f, mut total_fb) = (0.0, 0.0);
    for (name, layer, [c, h, w]) in &layers {
        let x = normal([batch, *c, *h, *w], &ad).require_grad();
        let forward = |x: Tensor<4>| match layer {
            TrainLayer::Conv(l) => l.forward(x),
            TrainLayer::ConvT(l) => l.forward(x),
            TrainLayer::Bn(l) => l.forward(x),
        };
        let out_shape = forward(x.clone()).dims();
        let r = normal(out_shape, &ad);
        let f = time_ms(reps, || forward(x.clone()));
        let fb = time_ms(reps, || {
            let grads = (forward(x.clone()) * r.clone()).sum().backward();
            x.grad(&grads)
        });
        let macs = match layer {
            TrainLayer::Conv(l) => {
                let [co, ci, kh, kw] = l.weight.dims();
                (out_shape[0] * out_shape[2] * out_shape[3] * co * ci * kh * kw) as f64
            }
            TrainLayer::ConvT(l) => {
                let [ci, co, kh, kw] = l.weight.dims();
                (batch * h * w * ci * co * kh * kw) as f64
            }
            TrainLayer::Bn(_) => 0.0,
        };
        // Backward = two products of the forward's size (input and weight gradients).
        let bwd = if macs > 0.0 {
            format!("{:.0}", 4.0 * macs / 1e9 / ((fb - f).max(1e-6) / 1e3))
        } else {
            String::new()
        };
        total_f += f;
        total_fb += fb;
        println!("| {name} | [{batch}, {c}, {h}, {w}] | {f:.1} | {fb:.1} | {bwd} |");
    }
    println!("| sum | | {total_f:.0} | {total_fb:.0} | |");
}

fn main() {
    let models = arg("--models").unwrap_or_else(|| "gan_int_cls,stackgan,attngan".into());
    let batches: Vec<usize> = arg("--batches")
        .unwrap_or_else(|| "1,8".into())
        .split(',')
        .filter_map(|b| b.parse().ok())
        .collect();
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(5);
    let device = Device::flex();
    device.seed(0);
    println!(
        "flex, {} rayon threads; median of {reps} runs after one warm-up; per-layer times are the \
         mean over the runs",
        rayon_threads()
    );

    for &batch in &batches {
        if models.contains("gan_int_cls") {
            let g = GanIntClsConfig::paper(256).init_generator(&device).valid();
            let noise = normal([batch, 100], &device);
            let text = normal([batch, 256], &device).mul_scalar(0.25);
            let plain = time_ms(reps, || g.forward(noise.clone(), text.clone()));
            let mut p = Prof::default();
            gan_int_cls_forward(&mut p, &g, noise.clone(), text.clone());
            let mut p = Prof::default();
            let mut out = None;
            for _ in 0..reps {
                out = Some(gan_int_cls_forward(&mut p, &g, noise.clone(), text.clone()));
            }
            p.scale(1.0 / reps as f64);
            let d = max_diff(out.unwrap(), g.forward(noise.clone(), text.clone()));
            assert!(d < 1e-5, "instrumented GAN-INT-CLS differs by {d}");
            p.print(&format!("GAN-INT-CLS generator, batch {batch}"), plain);
        }
        if models.contains("stackgan") {
            let config = StackGanConfig::paper(256);
            let s1 = config.init_stage1_generator(&device).valid();
            let s2 = config.init_stage2_generator(&device).valid();
            let text = normal([batch, 256], &device).mul_scalar(0.25);
            let noise = normal([batch, 100], &device);
            let eps1 = normal([batch, 128], &device);
            let eps2 = normal([batch, 128], &device);
            let plain_run = || {
                let low = s1.forward(text.clone(), noise.clone(), eps1.clone()).image;
                s2.forward(low, text.clone(), eps2.clone()).image
            };
            let plain = time_ms(reps, plain_run);
            let run = |p: &mut Prof| {
                let low = stage1_forward(p, &s1, text.clone(), noise.clone(), eps1.clone());
                stage2_forward(p, &s2, low, text.clone(), eps2.clone())
            };
            run(&mut Prof::default());
            let mut p = Prof::default();
            let mut out = None;
            for _ in 0..reps {
                out = Some(run(&mut p));
            }
            p.scale(1.0 / reps as f64);
            let d = max_diff(out.unwrap(), plain_run());
            assert!(d < 1e-5, "instrumented StackGAN differs by {d}");
            p.print(
                &format!("StackGAN Stage-I + Stage-II, batch {batch}"),
                plain,
            );
        }
        if models.contains("attngan") {
            let g = AttnGanConfig::birds().init_generator(&device).valid();
            let (t, real) = (18usize, 12usize);
            let sentence = normal([batch, 256], &device).mul_scalar(0.25);
            let words = normal([batch, 256, t], &device).mul_scalar(0.25);
            let lengths = vec![real; batch];
            let padding = t2i::attngan::padding_mask(&lengths, t, &device);
            let noise = normal([batch, 100], &device);
            let eps = normal([batch, 100], &device);
            let plain_run = || {
                g.forward(
                    sentence.clone(),
                    words.clone(),
                    padding.clone(),
                    noise.clone(),
                    eps.clone(),
                )
                .images
            };
            let plain = time_ms(reps, plain_run);
            let run = |p: &mut Prof| {
                attngan_forward(
                    p,
                    &g,
                    sentence.clone(),
                    words.clone(),
                    padding.clone(),
                    noise.clone(),
                    eps.clone(),
                )
            };
            run(&mut Prof::default());
            let mut p = Prof::default();
            let mut out = None;
            for _ in 0..reps {
                out = Some(run(&mut p));
            }
            p.scale(1.0 / reps as f64);
            for (a, b) in out.unwrap().into_iter().zip(plain_run()) {
                let d = max_diff(a, b);
                assert!(d < 1e-5, "instrumented AttnGAN differs by {d}");
            }
            p.print(&format!("AttnGAN birds generator, batch {batch}"), plain);
        }
    }
    if let Some(batch) = arg("--train-layers").and_then(|b| b.parse().ok()) {
        train_layers(&device, batch, reps);
    }
    if arg("--no-micro").is_none() && !std::env::args().any(|a| a == "--no-micro") {
        micro(&device, reps);
    }
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    })
}
