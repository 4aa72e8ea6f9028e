#!/usr/bin/env bash
# StackGAN Stage-II on a lent GPU machine (the `device` tool's `run`), burn's wgpu backend on
# Vulkan, on top of a Stage-I run trained here. A call carries at most 64 MiB with the tracked
# files, so the 256 px prepared set (148 MB) cannot travel: the machine builds it from the CUB
# photos themselves (227 px JPEGs, ~9 KB each), as many training-species photos as fit.
# Measured 2026-11-27 on an H100 (wgpu/Vulkan), small config: Stage-II 20 img/s at batch 32
# (two CPU cores here: 4-5), Stage-I 330 img/s at batch 64 (here: 47).
#
#   tools/gpu_stackgan_stage2.sh prepare CONFIG BUDGET_MB   # here: fills .gpu/ (git-ignored)
#   tools/gpu_stackgan_stage2.sh run MINUTES                 # there: carry .gl and .gpu
#
# The tracked files travel too (~30 MB, 19 of it the GAN-INT-CLS bundle): with a 36 MB photo
# budget the call fits only with that bundle moved out of the tree for its duration.
#
# `prepare` writes .gpu/t2i.xz (the stripped wgpu build of t2i: `cargo build --release -p
# t2i-train --features wgpu --bin t2i`), .gpu/cub100sub (a CUB-layout subset: every species,
# training species' photos up to BUDGET_MB, one photo of each held-out species), the latest
# Stage-I generator of CONFIG's run, and .gpu/stackgan.toml (CONFIG pointed at those).
# `run` trains Stage-II for MINUTES, then packs generator, frozen Stage-I, state, samples, loss
# curve and log into $OUT/stage2.tgz.part-*. The discriminator and optimiser states (65 MB) stay there:
# what comes back is at most 64 MiB, so the run cannot be resumed here.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
case "${1:-}" in
prepare)
  CONFIG=${2:?config}
  BUDGET_MB=${3:?budget in MB for photos}
  target=${CARGO_TARGET_DIR:-target}
  rm -rf .gpu && mkdir -p .gpu
  grep -qx '/.gpu/' .git/info/exclude || echo /.gpu/ >>.git/info/exclude
  strip -o .gpu/t2i "$target/release/t2i" && xz -T2 -9 .gpu/t2i || exit 1
  config_dir=$(dirname "$CONFIG")
  value() { grep "^$1 *=" "$CONFIG" | head -1 | sed 's/.*= *"\(.*\)"/\1/'; }
  data_dir="$config_dir/$(value data_dir)"
  run_dir="$config_dir/$(value output_dir)"
  heldout=$(grep '^heldout_species' "$CONFIG" | sed 's/.*= *//')
  python3 - "$data_dir" .gpu/cub100sub "$BUDGET_MB" "$heldout" <<'EOF' || exit 1
import os, random, shutil, sys
src, dst, budget, heldout = sys.argv[1], sys.argv[2], float(sys.argv[3]) * 1e6, int(sys.argv[4])
def table(name):
    with open(os.path.join(src, name)) as f:
        return [line.split(maxsplit=1) for line in f if line.strip()]
paths = {i: p.strip() for i, p in table("images.txt")}
labels = {i: int(c) for i, c in table("image_class_labels.txt")}
split = {i: s.strip() for i, s in table("train_test_split.txt")}
classes = sorted({c for c in labels.values()})
# The species t2i holds out (data::heldout_classes): every n/h-th id, ending with the last.
n, h = len(classes), min(heldout, len(classes))
held = {classes[(j + 1) * n // h - 1] for j in range(h)}
ids = sorted(paths, key=int)
keep = [next(i for i in ids if labels[i] == c) for c in sorted(held)]
train = [i for i in ids if labels[i] not in held]
random.Random(0).shuffle(train)
used = sum(os.path.getsize(os.path.join(src, "images", paths[i])) for i in keep)
for i in train:
    size = os.path.getsize(os.path.join(src, "images", paths[i]))
    if used + size > budget:
        continue
    used += size
    keep.append(i)
keep.sort(key=int)
os.makedirs(dst)
shutil.copytree(os.path.join(src, "attributes"), os.path.join(dst, "attributes"))
shutil.copy(os.path.join(src, "classes.txt"), dst)
with open(os.path.join(dst, "images.txt"), "w") as im, \
     open(os.path.join(dst, "image_class_labels.txt"), "w") as lab, \
     open(os.path.join(dst, "train_test_split.txt"), "w") as spl:
    for new, i in enumerate(keep, 1):
        target = os.path.join(dst, "images", paths[i])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(src, "images", paths[i]), target)
        im.write(f"{new} {paths[i]}\n")
        lab.write(f"{new} {labels[i]}\n")
        spl.write(f"{new} {split[i]}\n")
print(f"{len(keep)} photos ({len(keep) - len(held)} of {len(train)} training-species), {used / 1e6:.1f} MB")
EOF
  latest=$(cat "$run_dir/stage1/checkpoints/latest")
  mkdir -p ".gpu/run/stage1/checkpoints/$latest"
  cp "$run_dir/stage1/checkpoints/$latest"/{generator.bpk,state.json} ".gpu/run/stage1/checkpoints/$latest/"
  echo "$latest" >.gpu/run/stage1/checkpoints/latest
  sed -e 's|^data_dir *=.*|data_dir = "cub100sub"|' \
    -e 's|^output_dir *=.*|output_dir = "run"|' \
    -e 's|^text_encoder *=.*|text_encoder = "../weights/damsm_birds.safetensors"|' \
    -e 's|^prepared_dir *= *"\(.*\)64"|prepared_dir = "cache/gan64"|' \
    -e 's|^prepared_dir *= *"\(.*\)256"|prepared_dir = "cache/gan256"|' \
    -e 's|^checkpoint_steps *=.*|checkpoint_steps = 200|' \
    "$CONFIG" >.gpu/stackgan.toml
  du -sh .gpu .gpu/*
  ;;
run)
  MINUTES=${2:?minutes}
  OUT=${OUT:-/tmp/out}
  . tools/gpu_vulkan_env.sh
  xz -dc .gpu/t2i.xz >/tmp/t2i 2>/dev/null ||
    python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(".gpu/t2i.xz").read())' >/tmp/t2i
  chmod +x /tmp/t2i
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
  start=$(date +%s)
  # --max-minutes ends training with a checkpoint; the outer timeout only guards the packing.
  timeout $((MINUTES * 60 + 150)) /tmp/t2i --backend wgpu train --config .gpu/stackgan.toml \
    --stage 2 --max-minutes "$MINUTES" 2>&1 | tee /tmp/train.log
  echo "train status ${PIPESTATUS[0]} after $(($(date +%s) - start)) s" | tee -a /tmp/train.log
  run=.gpu/run/stage2
  cp /tmp/train.log "$run/train.log"
  latest=$(cat "$run/checkpoints/latest" 2>/dev/null) || { ls -R .gpu/run; exit 1; }
  ck="checkpoints/$latest"
  # A file over 16 MiB does not come back: 15 MB pieces (cat stage2.tgz.part-* | tar xzf -).
  tar czf - -C "$run" samples metrics.jsonl losses.png train.log \
    "$ck/generator.bpk" "$ck/stage1_generator.bpk" "$ck/state.json" checkpoints/latest |
    split -b 15M - "$OUT/stage2.tgz.part-"
  ls -la "$OUT"
  ;;
*)
  echo "usage: $0 prepare CONFIG BUDGET_MB | run MINUTES" >&2
  exit 2
  ;;
esac
