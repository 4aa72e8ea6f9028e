#!/usr/bin/env python3
"""Speed of our native flex build against PyTorch (CPU) on the same networks, sizes, weights and
inputs, one framework after the other in one run.

    nice -n 5 python3 tools/bench_vs_pytorch.py [--work /tmp/t2i_bench_vs_pytorch] [--reps 7]
        [--train-reps 3] [--threads 2] [--cases gan_int_cls_b1,...] [--import auto|yes|no]
        [--no-build] [--wait-idle 120] [--profile] [--json FILE]

Cases (all paper / authors' sizes, text width 256 = the DAMSM sentence feature):
- ``gan_int_cls_b{1,8}``: GAN-INT-CLS generator (ngf 128, text 256 -> 128, noise 100).
- ``stackgan_b{1,8}``: StackGAN Stage-I then Stage-II (``StackGanConfig::paper(256)``; the
  authors' ``STAGE2_G`` with its ``STAGE1_G``).
- ``attngan_b{1,8}``: AttnGAN birds ``G_NET`` (ngf 32, 3 stages, 18 words of which 12 real,
  the same for every caption so both mask orders agree).
- ``train_gan_int_cls_b64``: one GAN-INT-CLS training step at batch 64 (G and D forward and
  backward, matching-aware loss with GAN-INT, Adam 2e-4 / beta1 0.5), as
  ``GanIntClsPair::step`` in train/src/gan_int_cls/train.rs, noise given instead of drawn.
Generation is eval mode (batch-norm running statistics) without autograd (``torch.no_grad``;
burn: a plain, non-autodiff flex device). Each case: warm-up runs, then the median of
``--reps`` timed runs (the training step: 2 warm-up steps, then ``--train-reps`` timed steps).

What happens:
1. Each PyTorch network is built with a fixed seed; batch-norm running statistics are
   calibrated on a few random training-mode batches (so eval outputs spread like a trained
   net's and the output comparison means something); the state dict is written with
   ``torch.save`` (``*.pth``) and as safetensors into the work folder.
2. Inputs and PyTorch's outputs are written per case (``<case>.safetensors``), PyTorch is timed.
3. Our bundles are made from the saved ``.pth`` with ``t2i import <family> ... --precision
   f32 --text-encoder weights/damsm_birds.safetensors``. With ``--import auto`` (default),
   when ``t2i import`` does not exist yet, GAN-INT-CLS and AttnGAN load the PyTorch-layout
   safetensors directly (same keys / the AttnGAN key remap) and StackGAN runs on random
   weights (timing only, no difference reported).
4. ``train/examples/bench_vs_pytorch.rs`` loads them, reads the same inputs, times flex and
   reports the max abs difference of every output from PyTorch's. It runs once per case,
   right after PyTorch's timing of that case, so both frameworks see the machine in a similar
   state; before each timing both wait (``--wait-idle``) for a second in which other
   processes use under 10% of the CPU, and the share they used during the timed runs is
   reported per case.
5. A markdown table is printed (ratio = PyTorch ms / ours ms: above 1 we are faster) and the
   numbers are written as JSON (``<work>/results.json`` unless ``--json``).
"""

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from pytorch_reference import gan_int_cls as gic  # noqa: E402

ALL_CASES = [
    "gan_int_cls_b1",
    "gan_int_cls_b8",
    "stackgan_b1",
    "stackgan_b8",
    "attngan_b1",
    "attngan_b8",
    "train_gan_int_cls_b64",
]
TEXT_DIM = 256
WORDS, REAL_WORDS = 18, 12
DAMSM = ROOT / "weights" / "damsm_birds.safetensors"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, and this process's own (user + system)."""
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:9]))
    total = sum(v)
    busy = total - v[3] - v[4]  # minus idle and iowait
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    return busy, total, own


def others_share(before, after):
    """Share of the machine's CPU time that other processes used between two snapshots."""
    (b0, t0, o0), (b1, t1, o1) = before, after
    return max(0.0, (b1 - b0) - (o1 - o0)) / max(1, t1 - t0)


def wait_idle(limit_s, threshold=0.10):
    """Waits (up to `limit_s`) for a 1 s window in which other processes use less than
    `threshold` of the machine; returns the last window's share."""
    deadline = time.monotonic() + limit_s
    while True:
        before = cpu_jiffies()
        time.sleep(1.0)
        share = others_share(before, cpu_jiffies())
        if share < threshold or time.monotonic() >= deadline:
            return share
        log(f"  waiting for an idle machine: others use {share:.0%}")


WAIT_IDLE_S = 0.0


def median_ms(fn, warmup, reps, wait=True):
    """Median and all runs in ms, and the share of the CPU other processes took meanwhile."""
    if wait and WAIT_IDLE_S > 0:
        wait_idle(WAIT_IDLE_S)
    for _ in range(warmup):
        fn()
    runs = []
    before = cpu_jiffies()
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs), runs, others_share(before, cpu_jiffies())


def calibrate_batch_norm(net, forward, batches=3, exclude=None):
    """Running statistics = the average batch statistics of `batches` random batches
    (momentum None: cumulative average), with only the batch norms of `net` outside `exclude`
    in training mode; then everything in eval mode."""
    skip = set(map(id, exclude.modules())) if exclude is not None else set()
    bns = [m for m in net.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and id(m) not in skip]
    net.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for i in range(batches):
            forward(i)
    for bn in bns:
        bn.momentum = 0.1
    net.eval()


def save_weights(net, work, name):
    state = net.state_dict()
    torch.save(state, work / f"{name}.pth")
    save_file(
        {k: v.detach().contiguous() for k, v in state.items() if v.dtype.is_floating_point},
        str(work / f"{name}.safetensors"),
    )


def text(batch, g):
    """DAMSM-like sentence features: values spread about 0.25."""
    return torch.randn(batch, TEXT_DIM, generator=g) * 0.25


# ---------------------------------------------------------------------------------------------
# Networks and cases


def build_gan_int_cls(work):
    torch.manual_seed(0)
    G = gic.Generator(ngf=128, text_dim=TEXT_DIM, projected_text_dim=128, noise_dim=100)
    D = gic.Discriminator(ndf=64, text_dim=TEXT_DIM, projected_text_dim=128)
    g = torch.Generator().manual_seed(100)
    calibrate_batch_norm(G, lambda i: G(torch.randn(16, 100, generator=g), text(16, g)))
    real = torch.rand(16, 3, 64, 64, generator=g) * 2 - 1
    calibrate_batch_norm(D, lambda i: D(real, text(16, g)))
    save_weights(G, work, "gan_int_cls_netG")
    save_weights(D, work, "gan_int_cls_netD")
    return G, D


def build_stackgan(work):
    from pytorch_reference.stackgan import STAGE2_G

    torch.manual_seed(0)
    G = STAGE2_G(gf_dim=128, t_dim=TEXT_DIM, c_dim=128, z_dim=100, r_num=2)
    g = torch.Generator().manual_seed(101)

    def batch(n):
        return (text(n, g), torch.randn(n, 100, generator=g), torch.randn(n, 128, generator=g),
                torch.randn(n, 128, generator=g))

    # Stage-I first, then Stage-II's batch norms on Stage-I's eval-mode images.
    calibrate_batch_norm(G.STAGE1_G, lambda i: G.STAGE1_G(*batch(16)[:3]))
    calibrate_batch_norm(G, lambda i: G(*batch(8)), batches=2, exclude=G.STAGE1_G)
    save_weights(G, work, "stackgan_netG_stage2")
    return G


def build_attngan(work):
    from pytorch_reference.attngan import G_NET

    torch.manual_seed(0)
    G = G_NET(ngf=32, text_dim=TEXT_DIM, condition_dim=100, z_dim=100, r_num=2, branch_num=3)
    g = torch.Generator().manual_seed(102)
    calibrate_batch_norm(G, lambda i: G(*attngan_inputs(8, g)), batches=2)
    save_weights(G, work, "attngan_netG")
    return G


def attngan_inputs(batch, g):
    """(z, sent_emb, word_embs, mask, eps) with REAL_WORDS real words of WORDS in every
    caption (word features zero past the length, as the text encoder gives)."""
    words = torch.randn(batch, TEXT_DIM, WORDS, generator=g) * 0.25
    words[:, :, REAL_WORDS:] = 0
    mask = torch.zeros(batch, WORDS, dtype=torch.bool)
    mask[:, REAL_WORDS:] = True
    return (torch.randn(batch, 100, generator=g), text(batch, g), words, mask,
            torch.randn(batch, 100, generator=g))


def generation_case(name, batch, net, work, reps, warmup, profile=False):
    """Saves inputs and outputs of one generation case, returns PyTorch's timing."""
    g = torch.Generator().manual_seed(1000 + batch)
    if name == "gan_int_cls":
        noise, t = torch.randn(batch, 100, generator=g), text(batch, g)
        run = lambda: net(noise, t)
        with torch.no_grad():
            image = run()
        tensors = {"noise": noise, "text": t, "expected_image": image}
    elif name == "stackgan":
        t, noise = text(batch, g), torch.randn(batch, 100, generator=g)
        eps1, eps2 = torch.randn(batch, 128, generator=g), torch.randn(batch, 128, generator=g)
        run = lambda: net(t, noise, eps1, eps2)
        with torch.no_grad():
            low, high, _, _ = run()
        tensors = {"text": t, "noise": noise, "eps1": eps1, "eps2": eps2,
                   "expected_stage1": low, "expected_stage2": high}
    elif name == "attngan":
        z, sent, words, mask, eps = attngan_inputs(batch, g)
        run = lambda: net(z, sent, words, mask, eps)
        with torch.no_grad():
            images, maps, _, _ = run()
        tensors = {"noise": z, "sentence": sent, "words": words, "mask": mask.float(), "eps": eps}
        for image, size in zip(images, ["64", "128", "256"]):
            tensors[f"expected_{size}"] = image
        for m, size in zip(maps, ["att_64", "att_128"]):
            tensors[f"expected_{size}"] = m
    else:
        raise ValueError(name)
    save_file({k: v.contiguous() for k, v in tensors.items()},
              str(work / f"{name}_b{batch}.safetensors"))
    spread = {k: float(v.std()) for k, v in tensors.items() if k.startswith("expected_")}
    with torch.no_grad():
        ms, runs, others = median_ms(run, warmup, reps)
    result = {"ms": ms, "runs_ms": runs, "others_cpu": others, "output_std": spread}
    if profile:
        result["profile"] = layer_profile(net, run)
    return result


def train_case(G0, D0, work, reps):
    g = torch.Generator().manual_seed(64)
    b = 64
    real = torch.rand(b, 3, 64, 64, generator=g) * 2 - 1
    right, wrong, partner = text(b, g), text(b, g), text(b, g)
    noise, noise_interp = torch.randn(b, 100, generator=g), torch.randn(b, 100, generator=g)
    G, D = copy.deepcopy(G0).train(), copy.deepcopy(D0).train()
    opt_g, opt_d = gic.adam(G), gic.adam(D)
    losses = []
    step = lambda: losses.append(gic.train_step(G, D, opt_g, opt_d, real, right, wrong, partner,
                                                noise, noise_interp))
    ms, runs, others = median_ms(step, 2, reps)
    tensors = {"real": real, "right": right, "wrong": wrong, "partner": partner,
               "noise": noise, "noise_interp": noise_interp}
    for k in range(2):
        tensors[f"expected_loss_d_{k + 1}"] = torch.tensor([losses[k][0]])
        tensors[f"expected_loss_g_{k + 1}"] = torch.tensor([losses[k][1]])
    save_file({k: v.contiguous() for k, v in tensors.items()},
              str(work / "train_gan_int_cls_b64.safetensors"))
    return {"ms": ms, "runs_ms": runs, "others_cpu": others, "losses": losses}


# ---------------------------------------------------------------------------------------------
# PyTorch per-layer profile (--profile), for comparison with train/examples/profile_ops.rs


def layer_profile(net, run, reps=3):
    """ms per leaf-module type in one eval forward (forward hooks; mean of `reps` runs), and the
    hooked forward's total."""
    times = {}

    def pre(m, inputs):
        m._t2i_start = time.perf_counter()

    def post(m, inputs, output):
        kind = type(m).__name__
        times[kind] = times.get(kind, 0.0) + (time.perf_counter() - m._t2i_start) * 1e3

    hooks = []
    for m in net.modules():
        if not list(m.children()):
            hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    with torch.no_grad():
        run()
        times.clear()
        start = time.perf_counter()
        for _ in range(reps):
            run()
        total = (time.perf_counter() - start) * 1e3 / reps
    for h in hooks:
        h.remove()
    return {"total_ms": total, "ms": {k: v / reps for k, v in sorted(times.items(), key=lambda kv: -kv[1])}}


def train_layer_profile(G, D, batch=64, reps=3):
    """Forward and forward + backward ms of every GAN-INT-CLS conv layer (and the largest batch
    norms) at `batch` in training mode: the PyTorch side of `profile_ops --train-layers 64`."""
    G, D = copy.deepcopy(G).train(), copy.deepcopy(D).train()
    layers = [
        ("G.project", G.project, (228, 1, 1)), ("G.project_bn", G.project_bn, (1024, 4, 4)),
        ("G.residual_4.reduce", G.residual_4.reduce, (1024, 4, 4)),
        ("G.residual_4.conv", G.residual_4.conv, (256, 4, 4)),
        ("G.residual_4.expand", G.residual_4.expand, (256, 4, 4)),
        ("G.up_8", G.up_8, (1024, 4, 4)),
        ("G.residual_8.reduce", G.residual_8.reduce, (512, 8, 8)),
        ("G.residual_8.conv", G.residual_8.conv, (128, 8, 8)),
        ("G.residual_8.expand", G.residual_8.expand, (128, 8, 8)),
        ("G.up_16", G.up_16, (512, 8, 8)), ("G.up_32", G.up_32, (256, 16, 16)),
        ("G.up_32_bn", G.up_32_bn, (128, 32, 32)), ("G.to_rgb", G.to_rgb, (128, 32, 32)),
        ("D.down_32", D.down_32, (3, 64, 64)), ("D.down_16", D.down_16, (64, 32, 32)),
        ("D.down_16_bn", D.down_16_bn, (128, 16, 16)), ("D.down_8", D.down_8, (128, 16, 16)),
        ("D.down_4", D.down_4, (256, 8, 8)),
        ("D.residual_4.reduce", D.residual_4.reduce, (512, 4, 4)),
        ("D.residual_4.conv", D.residual_4.conv, (128, 4, 4)),
        ("D.residual_4.expand", D.residual_4.expand, (128, 4, 4)),
        ("D.joint", D.joint, (640, 4, 4)), ("D.logit", D.logit, (512, 4, 4)),
    ]
    out = {}
    for name, m, (c, h, w) in layers:
        x = torch.randn(batch, c, h, w, requires_grad=True)
        r = torch.randn_like(m(x))

        def fb():
            x.grad = None
            for q in m.parameters():
                q.grad = None
            (m(x) * r).sum().backward()

        out[name] = {"fwd_ms": median_ms(lambda: m(x), 1, reps, wait=False)[0],
                     "fwd_bwd_ms": median_ms(fb, 1, reps, wait=False)[0]}
    return out


# ---------------------------------------------------------------------------------------------
# Our side


def cargo(*args):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "t2i-target"))
    cmd = ["cargo", *args]
    log("$", " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return Path(env["CARGO_TARGET_DIR"]) / "release"


def import_works(t2i):
    r = subprocess.run([str(t2i), "import", "--help"], cwd=ROOT, capture_output=True)
    return r.returncode == 0


def make_bundles(t2i, work, families):
    """`t2i import` of every family's saved .pth; returns {family: bundle path}."""
    out = {}
    args = {
        "gan_int_cls": ["gan-int-cls", "--generator", work / "gan_int_cls_netG.pth"],
        "stackgan": ["stackgan", "--stage2", work / "stackgan_netG_stage2.pth"],
        "attngan": ["attngan", "--generator", work / "attngan_netG.pth"],
    }
    for family in families:
        bundle = work / f"{family}.f32.safetensors"
        cmd = [str(t2i), "import", *map(str, args[family]), "--text-encoder", str(DAMSM),
               "--out", str(bundle), "--precision", "f32"]
        log("$", " ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True)
        out[family] = bundle
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/t2i_bench_vs_pytorch"))
    p.add_argument("--reps", type=int, default=7, help="timed runs per generation case")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--train-reps", type=int, default=3, help="timed training steps")
    p.add_argument("--threads", type=int, default=2,
                   help="torch.set_num_threads and RAYON_NUM_THREADS for ours")
    p.add_argument("--cases", default=",".join(ALL_CASES))
    p.add_argument("--import", dest="import_", choices=["auto", "yes", "no"], default="auto")
    p.add_argument("--no-build", action="store_true", help="use the already built binaries")
    p.add_argument("--wait-idle", type=float, default=120.0,
                   help="before each case, wait up to this many seconds for a second in which "
                        "other processes use under 10%% of the CPU (0: don't wait)")
    p.add_argument("--profile", action="store_true",
                   help="also print PyTorch's time per layer type of every generation case and "
                        "per GAN-INT-CLS layer at batch 64 (compare: cargo run --release -p "
                        "t2i-train --example profile_ops)")
    p.add_argument("--json", type=Path, help="results file (default <work>/results.json)")
    a = p.parse_args()
    cases = [c for c in a.cases.split(",") if c]
    unknown = set(cases) - set(ALL_CASES)
    if unknown:
        p.error(f"unknown cases {sorted(unknown)}; known: {ALL_CASES}")
    a.work.mkdir(parents=True, exist_ok=True)
    global WAIT_IDLE_S
    WAIT_IDLE_S = a.wait_idle
    torch.set_num_threads(a.threads)
    families = [f for f in ["gan_int_cls", "stackgan", "attngan"]
                if any(c.startswith(f + "_b") for c in cases)]
    if "train_gan_int_cls_b64" in cases and "gan_int_cls" not in families:
        families.insert(0, "gan_int_cls")

    # Our binaries first: `t2i import` makes each family's bundle as soon as its weights exist.
    if not a.no_build:
        release = cargo("build", "--release", "-p", "t2i-train", "--bin", "t2i",
                        "--example", "bench_vs_pytorch")
    else:
        release = Path(os.environ.get("CARGO_TARGET_DIR",
                                      Path.home() / ".cache" / "t2i-target")) / "release"
    t2i = release / "t2i"
    use_import = a.import_ == "yes" or (a.import_ == "auto" and import_works(t2i))
    if a.import_ == "yes" and not use_import:
        sys.exit("t2i import is not available")
    if not use_import:
        log("t2i import not used: GAN-INT-CLS and AttnGAN load the PyTorch-layout safetensors "
            "directly; StackGAN runs on random weights (no difference)")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))

    def run_ours(case, weights):
        cmd = [str(release / "examples" / "bench_vs_pytorch"), "--work", str(a.work),
               "--cases", case, "--reps", str(a.reps), "--warmup", str(a.warmup),
               "--train-reps", str(a.train_reps), "--wait-idle", str(a.wait_idle)]
        family = "gan_int_cls" if case.startswith("train_") else case.rsplit("_b", 1)[0]
        if weights.get(family):
            cmd += [f"--{family.replace('_', '-')}", weights[family]]
        if case.startswith("train_"):
            cmd += ["--train-d", str(a.work / "gan_int_cls_netD.safetensors")]
        log("$", " ".join(cmd))
        done = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True,
                              text=True)
        sys.stderr.write(done.stderr)
        return json.loads(done.stdout.strip().splitlines()[-1])[case]

    # Per family: PyTorch network, weights, our bundle; then per case PyTorch's timing
    # directly followed by ours, so that both see the machine in a similar state.
    torch_results, ours, weights = {}, {}, {}
    for family in families:
        log(f"PyTorch: building {family}")
        if family == "gan_int_cls":
            G, D = build_gan_int_cls(a.work)
        elif family == "stackgan":
            G = build_stackgan(a.work)
        else:
            G = build_attngan(a.work)
        if use_import:
            weights.update({k: str(v) for k, v in make_bundles(t2i, a.work, [family]).items()})
        elif family != "stackgan":
            weights[family] = str(a.work / f"{family}_netG.safetensors")
        family_cases = [c for c in cases if c.startswith(family + "_b")]
        if family == "gan_int_cls" and "train_gan_int_cls_b64" in cases:
            family_cases.append("train_gan_int_cls_b64")
        for case in family_cases:
            log(f"PyTorch: {case}")
            if case.startswith("train_"):
                torch_results[case] = train_case(G, D, a.work, a.train_reps)
                if a.profile:
                    torch_results[case]["layers"] = train_layer_profile(G, D)
            else:
                batch = int(case.rsplit("_b", 1)[1])
                torch_results[case] = generation_case(family, batch, G, a.work, a.reps,
                                                      a.warmup, a.profile)
            log(f"ours: {case}")
            ours[case] = run_ours(case, weights)
            log(f"  PyTorch {torch_results[case]['ms']:.1f} ms, ours {ours[case]['ms']:.1f} ms")
        del G

    # 5. Table and JSON.
    rows = []
    header = ("| case | PyTorch ms | ours ms | ratio (PyTorch / ours) | max abs diff "
              "| other processes' CPU (PyTorch / ours) |\n|---|---:|---:|---:|---|---|")
    for case in cases:
        t, o = torch_results[case], ours[case]
        ratio = t["ms"] / o["ms"]
        diff = ", ".join(f"{k} {v:.1e}" for k, v in o["max_abs_diff"].items()) or "n/a"
        if o["weights"] != "bundle":
            diff += f" ({o['weights']} weights)"
        rows.append(f"| {case} | {t['ms']:.1f} | {o['ms']:.1f} | {ratio:.2f} | {diff} | "
                    f"{t['others_cpu']:.0%} / {o['others_cpu']:.0%} |")
    table = header + "\n" + "\n".join(rows)
    print(table)
    if "train_gan_int_cls_b64" in cases:
        print(f"\ntraining losses (loss_d, loss_g) per step: PyTorch "
              f"{[[round(x, 4) for x in l] for l in torch_results['train_gan_int_cls_b64']['losses']]}"
              f", ours {[[round(x, 4) for x in l] for l in ours['train_gan_int_cls_b64']['losses']]}")
    if a.profile:
        for case in cases:
            t = torch_results[case]
            if "profile" in t:
                prof = t["profile"]
                print(f"\nPyTorch {case}, per layer type ({prof['total_ms']:.1f} ms with hooks): "
                      + ", ".join(f"{k} {v:.1f}" for k, v in prof["ms"].items()))
            if "layers" in t:
                print(f"\nPyTorch {case}, per layer at batch 64 (ms forward / forward + backward):")
                print("| layer | fwd ms | fwd+bwd ms |\n|---|---:|---:|")
                for name, v in t["layers"].items():
                    print(f"| {name} | {v['fwd_ms']:.1f} | {v['fwd_bwd_ms']:.1f} |")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    results = {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "threads": a.threads,
                    "load_after": load, "torch": torch.__version__},
        "reps": a.reps, "warmup": a.warmup, "train_reps": a.train_reps,
        "weights": "t2i import bundles (f32)" if use_import else "direct / random",
        "pytorch": torch_results, "ours": ours,
        "ratio": {c: torch_results[c]["ms"] / ours[c]["ms"] for c in cases},
        "table": table,
    }
    out = a.json or a.work / "results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\n{cpu}, {os.cpu_count()} cores, {a.threads} threads each; torch {torch.__version__}; "
          f"load average after: {' '.join(load)}; JSON: {out}")


if __name__ == "__main__":
    main()
