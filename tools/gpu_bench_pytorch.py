#!/usr/bin/env python3
"""PyTorch eager speed reference for one training step of each of our GANs at the papers' sizes,
to compare with our Rust/burn trainers on the same GPU (or, small, on a CPU).

    python3 tools/gpu_bench_pytorch.py [--device cuda|cpu|auto]
        [--cases gan_int_cls:64,stackgan1:64,stackgan2:32,attngan:20,attngan:max]
        [--warmup 3] [--steps 10] [--json FILE] [--max-batch 256] [--small]
        [--threads N] [--seed 0] [--tf32 default|on|off] [--adam default|foreach|fused|loop]
        [--cudnn-benchmark] [--damsm-image-size 299] [--timing per-step|together]

Each case ``NAME:BATCH`` (BATCH a number, or ``max``) builds its networks with a fixed seed and
random weights (the Rust initialisations), Adam optimizers as our trainers (lr 2e-4, betas
(0.5, 0.999), eps 1e-8), random inputs already on the device (images in [-1, 1], DAMSM-width
sentence embeddings of 256 values, caption tokens), runs ``--warmup`` steps and times ``--steps``
steps, synchronizing the device before and after each (median reported; ``--timing
together`` times them as one block and reports the mean, as train/examples/gpu_bench.rs does).
Noise is drawn on the device inside each step, as ours; nothing else crosses to or from the
host inside a step (our steps no longer read losses back per step either); the losses are read
after each timed step (after the block with ``together``), outside the timing, and must be
finite.

Cases (the step each mirrors):
- ``gan_int_cls``: ``GanIntClsPair::step`` (train/src/gan_int_cls/train.rs) at
  ``GanIntClsConfig::paper(256)`` (ngf 128, ndf 64): D on real/right, real/wrong, fake/right; G
  on fake/right and on interpolated texts (beta 0.5, weight 1), 64 px.
- ``stackgan1``: Stage-I ``update_stage`` (train/src/stackgan/train.rs) at
  ``StackGanConfig::paper(256)``, 64 px, KL weight 1.
- ``stackgan2``: Stage-II: frozen Stage-I generator (eval, no_grad) -> Stage-II generator ->
  ``update_stage`` with the unconditional logits, 256 px.
- ``attngan``: ``AttnGanPair::step`` (train/src/attngan/train.rs) at ``AttnGanConfig::birds()``:
  frozen text encoder on 18-word captions, G with 3 stages (64/128/256), three D updates (one
  Adam), G on every D + KL + 5 x L_DAMSM (256 px image -> 299 bilinear -> frozen Inception-v3 ->
  frozen DAMSM projections; gammas 4/5/10).
``NAME:max`` looks for the largest batch that fits: doubling from the paper's batch (64, 64, 32,
20) up to ``--max-batch`` (one probe of two steps each, out-of-memory caught), then times the
largest that ran. On a CPU the same doubling applies, capped at ``--max-batch`` (a cap below the
paper's batch is tried alone).

``--small``: the project's small widths (GanIntClsConfig::small, StackGanConfig::small,
AttnGanConfig::small) for a quick CPU test.

Prints a markdown table and writes JSON (``--json``): {"framework": "pytorch", "torch",
"device", "settings", "cases": [{"case", "batch", "images_per_s", "ms_per_step", "steps",
"warmup", ...}]}; a failed case is {"case", "batch", "error"} and the run goes on.
"""

import argparse
import gc
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

# torch warns at import when numpy is absent; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from pytorch_reference import attngan as ag  # noqa: E402
from pytorch_reference import gan_int_cls as gic  # noqa: E402
from pytorch_reference import stackgan as sg  # noqa: E402
from pytorch_reference.inception import InceptionV3  # noqa: E402

TEXT_DIM = 256  # DAMSM's sentence / word feature width
WORDS = 18  # AttnGAN's WORDS_NUM: captions cut to 18 words
VOCAB = 5450  # about the authors' CUB vocabulary; the lookup's cost does not depend on it
CLASSES = 200  # CUB species, for DAMSM's same-class mask
PAPER_BATCH = {"gan_int_cls": 64, "stackgan1": 64, "stackgan2": 32, "attngan": 20}
DEFAULT_CASES = "gan_int_cls:64,stackgan1:64,stackgan2:32,attngan:20,attngan:max"

# Sizes: (paper, small), from src/gan_int_cls.rs, src/stackgan.rs, src/attngan.rs.
SIZES = {
    "gan_int_cls": ({"ngf": 128, "ndf": 64}, {"ngf": 32, "ndf": 16}),
    "stackgan": (
        {"ngf1": 128, "ndf1": 64, "ngf2": 128, "ndf2": 64, "r_num": 2},
        {"ngf1": 32, "ndf1": 16, "ngf2": 32, "ndf2": 16, "r_num": 2},
    ),
    "attngan": ({"ngf": 32, "ndf": 64, "r_num": 2}, {"ngf": 16, "ndf": 16, "r_num": 1}),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def count(params):
    return sum(p.numel() for p in params if p.requires_grad)


class Case:
    """A built case: ``step()`` runs one training step and returns its losses (device
    tensors); ``params`` counts trainable weights of G and D."""

    def __init__(self, step, params):
        self.step = step
        self.params = params


def make_adam(params, mode):
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True},
              "loop": {"foreach": False}}[mode]
    return sg.gan_adam(list(params), lr=2e-4, **kwargs)


def images(batch, size, device):
    return torch.rand(batch, 3, size, size, device=device) * 2 - 1


def texts(batch, device):
    # DAMSM's sentence features spread about 0.25 per value.
    return torch.randn(batch, TEXT_DIM, device=device) * 0.25


def build_gan_int_cls(batch, args, device):
    s = SIZES["gan_int_cls"][args.small]
    G = gic.Generator(s["ngf"], TEXT_DIM, 128, 100).to(device).train()
    D = gic.Discriminator(s["ndf"], TEXT_DIM, 128).to(device).train()
    opt_g, opt_d = make_adam(G.parameters(), args.adam), make_adam(D.parameters(), args.adam)
    real = images(batch, 64, device)
    right, wrong = texts(batch, device), texts(batch, device)
    partner = right.roll(1, 0)

    def step():
        return gic.train_step_on_device(G, D, opt_g, opt_d, real, right, wrong, partner, 100,
                                        interp_weight=1.0, beta=0.5)

    return Case(step, {"g": count(G.parameters()), "d": count(D.parameters())})


def build_stackgan(stage, batch, args, device):
    s = SIZES["stackgan"][args.small]
    G1 = sg.dcgan_init(sg.STAGE1_G(s["ngf1"], TEXT_DIM, 128, 100)).to(device)
    right, wrong = texts(batch, device), texts(batch, device)
    if stage == 1:
        G1.train()
        D = sg.StageIDiscriminator(s["ndf1"], TEXT_DIM, 128).to(device).train()
        opt_g, opt_d = make_adam(G1.parameters(), args.adam), make_adam(D.parameters(), args.adam)
        real = images(batch, 64, device)

        def step():
            return sg.stage1_train_step(G1, D, opt_g, opt_d, real, right, wrong, kl_weight=1.0)

        return Case(step, {"g": count(G1.parameters()), "d": count(D.parameters())})

    # Stage-II: the Stage-I generator frozen in inference mode (our FrozenStageI).
    G2 = sg.STAGE2_G(s["ngf2"], TEXT_DIM, 128, 100, s["r_num"], stage1=G1)
    for name, module in G2.named_children():
        if name != "STAGE1_G":
            sg.dcgan_init(module)
    G2 = G2.to(device).train()
    G1.eval()
    for p in G1.parameters():
        p.requires_grad_(False)
    D = sg.StageIIDiscriminator(s["ndf2"], TEXT_DIM, 128).to(device).train()
    trainable = [p for p in G2.parameters() if p.requires_grad]
    opt_g, opt_d = make_adam(trainable, args.adam), make_adam(D.parameters(), args.adam)
    real = images(batch, 256, device)

    def step():
        return sg.stage2_train_step(G1, G2, D, opt_g, opt_d, real, right, wrong, kl_weight=1.0)

    return Case(step, {"g": count(trainable), "d": count(D.parameters()),
                       "frozen_stage1": sum(p.numel() for p in G1.parameters())})


def build_attngan(batch, args, device):
    if batch < 2:
        raise ValueError("AttnGAN's mismatched pairs need a batch of at least 2")
    s = SIZES["attngan"][args.small]
    G = ag.orthogonal_scale_init(
        ag.G_NET(s["ngf"], TEXT_DIM, 100, 100, s["r_num"], 3)).to(device).train()
    Ds = ag.orthogonal_scale_init(ag.AttnGanDiscriminators(s["ndf"], TEXT_DIM, 3)).to(device)
    Ds.train()
    opt_g, opt_d = make_adam(G.parameters(), args.adam), make_adam(Ds.parameters(), args.adam)

    # Frozen networks: DAMSM's text encoder (eval: no dropout), Inception-v3, DAMSM's image
    # projections. Gradients flow through the last two to the image only.
    text_encoder = ag.RNN_ENCODER(VOCAB, 300, 0.5, TEXT_DIM).to(device).eval()
    image_encoder = ag.CNN_ENCODER_PROJ(TEXT_DIM).to(device).eval()
    inception = InceptionV3().to(device).freeze()
    for p in list(text_encoder.parameters()) + list(image_encoder.parameters()):
        p.requires_grad_(False)

    # Captions: lengths 8..18, sorted descending (packing wants it), the longest 18 words.
    lengths = torch.randint(8, WORDS + 1, (batch,))
    lengths[0] = WORDS
    lengths = lengths.sort(descending=True).values
    positions = torch.arange(WORDS)
    padding_cpu = positions[None, :] >= lengths[:, None]  # [B, T], true at padding
    tokens = torch.randint(1, VOCAB, (batch, WORDS)).masked_fill(padding_cpu, 0).to(device)
    padding = padding_cpu.to(device)
    reals = [images(batch, size, device) for size in (64, 128, 256)]
    class_ids = torch.randint(0, CLASSES, (batch,), device=device)
    same_class = (class_ids[:, None] == class_ids[None, :]) & ~torch.eye(
        batch, dtype=torch.bool, device=device)

    def step():
        return ag.attngan_train_step(
            G, Ds, opt_g, opt_d, text_encoder, inception, image_encoder, tokens, lengths,
            padding, reals, same_class, kl_weight=1.0, damsm_lambda=5.0,
            damsm_image_size=args.damsm_image_size, gammas=(4.0, 5.0, 10.0))

    return Case(step, {"g": count(G.parameters()), "d": count(Ds.parameters()),
                       "frozen_inception": sum(p.numel() for p in inception.parameters())})


BUILDERS = {
    "gan_int_cls": build_gan_int_cls,
    "stackgan1": lambda b, a, d: build_stackgan(1, b, a, d),
    "stackgan2": lambda b, a, d: build_stackgan(2, b, a, d),
    "attngan": build_attngan,
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_finite(losses, where):
    values = {k: float(v) for k, v in losses.items()}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    assert not bad, f"non-finite loss at {where}: {bad}"
    return values


def run_steps(case, device, warmup, steps, together=False):
    """Warm-up steps, then timed steps; returns the seconds of each timed step and the last
    losses. ``together``: the steps are timed as one block, their losses read back once at the
    end (as our training loop reads them every few steps), and each gets the block's mean."""
    losses = {}
    for i in range(warmup):
        losses = check_finite(case.step(), f"warm-up step {i + 1}")
    if together and steps:
        sync(device)
        started = time.perf_counter()
        outs = [case.step() for _ in range(steps)]
        sync(device)
        elapsed = time.perf_counter() - started
        for i, out in enumerate(outs):
            losses = check_finite(out, f"timed step {i + 1}")
        return [elapsed / steps] * steps, losses
    times = []
    for i in range(steps):
        sync(device)
        started = time.perf_counter()
        out = case.step()
        sync(device)
        times.append(time.perf_counter() - started)
        losses = check_finite(out, f"timed step {i + 1}")
    return times, losses


def is_oom(error):
    if isinstance(error, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    text = str(error).lower()
    return isinstance(error, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate" in text or isinstance(error, MemoryError))


def free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def seeded_build(name, batch, args, device):
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(args.seed)
    return BUILDERS[name](batch, args, device)


def timed_case(name, batch, args, device):
    """Builds and times one case; returns its record."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    case = seeded_build(name, batch, args, device)
    times, losses = run_steps(case, device, args.warmup, args.steps,
                              args.timing == "together")
    median = statistics.median(times)
    record = {
        "case": name,
        "batch": batch,
        "images_per_s": batch / median,
        "ms_per_step": 1000 * median,
        "steps": args.steps,
        "warmup": args.warmup,
        "ms_min": 1000 * min(times),
        "ms_max": 1000 * max(times),
        "params": case.params,
        "losses": losses,
    }
    if device.type == "cuda":
        record["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return record


def max_batch_case(name, args, device):
    """Doubles the batch from the paper's up to --max-batch while two steps fit in memory, then
    times the largest that ran."""
    start = PAPER_BATCH[name]
    candidates = []
    b = start
    while b <= args.max_batch:
        candidates.append(b)
        b *= 2
    if not candidates:
        candidates = [args.max_batch]
    probes, largest = [], None
    for batch in candidates:
        log(f"  probing {name} at batch {batch}")
        oom = None
        try:
            case = seeded_build(name, batch, args, device)
            run_steps(case, device, 2, 0)
            sync(device)
        except Exception as e:  # noqa: BLE001
            if not is_oom(e):
                raise
            oom = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        case = None
        free(device)
        probes.append({"batch": batch, "fits": oom is None, **({"error": oom} if oom else {})})
        if oom is not None:
            break
        largest = batch
    if largest is None:
        raise RuntimeError(f"out of memory already at batch {candidates[0]}")
    record = timed_case(name, largest, args, device)
    record["max"] = True  # the case keeps its plain name: tools/gpu_bench.sh matches on it
    record["probes"] = probes
    record["max_batch_cap"] = args.max_batch
    return record


def parse_cases(text):
    cases = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, batch = item.partition(":")
        if name not in BUILDERS:
            raise SystemExit(f"unknown case {name!r}; cases: {', '.join(BUILDERS)}")
        if batch in ("", None):
            batch = PAPER_BATCH[name]
        elif batch != "max":
            batch = int(batch)
        cases.append((name, batch))
    return cases


def tf32_flags():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--small", action="store_true",
                        help="the project's small widths instead of the papers'")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for torch (default: 1 on a CPU run, torch's otherwise)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tf32", default="default", choices=["default", "on", "off"],
                        help="TF32 for convolutions and matmuls (default: PyTorch's defaults)")
    parser.add_argument("--adam", default="default",
                        choices=["default", "foreach", "fused", "loop"],
                        help="torch.optim.Adam implementation (default: PyTorch's choice)")
    parser.add_argument("--cudnn-benchmark", action="store_true")
    parser.add_argument("--timing", default="per-step", choices=["per-step", "together"],
                        help="per-step: synchronize around every step, report the median "
                        "(default); together: time the steps as one block, report the mean")
    parser.add_argument("--damsm-image-size", type=int, default=299,
                        help="side the AttnGAN image is resized to before Inception (ours: 299)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be at least 1 and --warmup at least 0")

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device")
        device_name = torch.cuda.get_device_name(device)
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        if args.tf32 != "default":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
                torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
    else:
        device_name = "cpu"
        torch.set_num_threads(args.threads or 1)
        torch.set_flush_denormal(True)
    if args.threads and device.type == "cuda":
        torch.set_num_threads(args.threads)
    args.small = int(args.small)

    settings = {
        "sizes": "small" if args.small else "paper",
        "adam": args.adam,
        "cudnn_benchmark": (bool(torch.backends.cudnn.benchmark)
                            if device.type == "cuda" else None),
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "timing": args.timing,
        "damsm_image_size": args.damsm_image_size,
        "dtype": "float32",
        **(tf32_flags() if device.type == "cuda" else {}),
    }
    log(f"torch {torch.__version__} on {device_name}; {settings}")

    records = []
    for name, batch in parse_cases(args.cases):
        label = f"{name}:{batch}"
        log(f"case {label}")
        try:
            if batch == "max":
                record = max_batch_case(name, args, device)
            else:
                record = timed_case(name, batch, args, device)
            log(f"  {record['batch']} images: {record['ms_per_step']:.1f} ms/step, "
                f"{record['images_per_s']:.1f} images/s, losses {record['losses']}")
        except Exception as e:  # noqa: BLE001
            first = str(e).strip().splitlines()[0][:500] if str(e).strip() else ""
            message = f"{type(e).__name__}: {first}"
            log(f"  failed: {message}")
            record = {"case": name, "batch": batch, "error": message}
            if batch == "max":
                record["max"] = True
        records.append(record)
        free(device)
        # Written after every case, so a run cut off by its time limit keeps what it measured.
        write_report(args.json, device_name, settings, records)

    write_report(args.json, device_name, settings, records)
    summary = "median" if args.timing == "per-step" else "mean (timed together)"
    print(f"\nPyTorch {torch.__version__} eager, {device_name}, "
          f"{'small' if args.small else 'paper'} sizes, {summary} of {args.steps} steps "
          f"after {args.warmup} warm-up\n")
    print("| case | batch | images/s | ms/step |")
    print("|---|---:|---:|---:|")
    for r in records:
        case = f"{r['case']} (largest batch)" if r.get("max") else r["case"]
        if "error" in r:
            print(f"| {case} | {r['batch']} | error: {r['error']} | |")
        else:
            print(f"| {case} | {r['batch']} | {r['images_per_s']:.1f} "
                  f"| {r['ms_per_step']:.1f} |")
    if args.json:
        log(f"wrote {args.json}")


def write_report(path, device_name, settings, records):
    """The JSON report of the cases measured so far (nothing when no --json)."""
    if not path:
        return
    out = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device_name,
        "settings": settings,
        "cases": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
