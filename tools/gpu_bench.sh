#!/usr/bin/env bash
# Our training step against PyTorch's on the same networks, one run on a lent GPU: images/s of
# one training step of GAN-INT-CLS (batch 64), StackGAN Stage-I (64) and Stage-II (32) and
# AttnGAN birds (20, and the largest batch PyTorch fits, with its DAMSM term), at the papers'
# sizes, for every build carried (train/examples/gpu_bench.rs) and for PyTorch CUDA eager
# (tools/gpu_bench_pytorch.py). Prints a table of images/s and ours/PyTorch, and writes it as
# JSON to $OUT/gpu_bench.json (commit it under docs/bench/).
#
# Here, once (builds the variants, fetches the Vulkan loaders, all under ignored folders):
#   tools/gpu_bench.sh --prepare [VARIANT...]     # VARIANTs: gpu wgpu-autotune wgpu cuda (default all;
#                                                 # cuda gets its LLVM from PyPI: tools/cuda_llvm.sh)
# Then on the device machine (the `device` tool's run, carry [".gl", "runs/gpu-bench"]):
#   tools/gpu_bench.sh
# Without a GPU, to try it (Mesa's lavapipe, small widths and batches, PyTorch on the CPU):
#   BACKEND=wgpu SMALL=1 CASES=gan_int_cls:4,stackgan1:4,stackgan2:2,attngan:2 MAX_BATCH=4 \
#     DAMSM_IMAGE_SIZE=75 STEPS=2 WARMUP=1 TORCH_DEVICE=cpu BUDGET=1500 OUT=/tmp/bench \
#     tools/gpu_bench.sh
#
# Settings (environment): CASES (default the papers' cases above), WARMUP (3: untimed steps,
# where autotune measures each new shape's kernels), STEPS (10 timed, the median reported),
# BACKEND (wgpu; the cuda build always runs on cuda), SMALL=1 (the project's small widths), TORCH_DEVICE
# (auto), MAX_BATCH (256: the largest AttnGAN batch tried), DAMSM_IMAGE_SIZE (299: AttnGAN's
# images for Inception; 75 makes a lavapipe try quick), BUDGET (seconds for all of it, 450:
# PyTorch gets a third, then each build an equal share of what is left; every command writes
# its JSON after each case, so one cut off keeps what it measured).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=runs/gpu-bench

if [ "${1:-}" = --prepare ]; then
  shift
  variants=("$@")
  [ ${#variants[@]} -gt 0 ] || variants=(gpu wgpu-autotune wgpu cuda)
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/t2i-target}
  mkdir -p "$DIR"
  for variant in "${variants[@]}"; do
    case $variant in
      gpu) features=t2i-train/gpu ;;
      wgpu-autotune) features=t2i-train/wgpu,t2i-train/autotune ;;
      wgpu) features=t2i-train/wgpu ;;
      cuda) features=t2i-train/cuda,t2i-train/autotune ;;
      *) echo "unknown variant $variant (gpu wgpu-autotune wgpu cuda)" >&2; exit 2 ;;
    esac
    # burn's CUDA backend links LLVM 23.1, which its build would download from GitHub.
    if [ "$variant" = cuda ]; then tools/cuda_llvm.sh || exit 1; fi
    # One target folder for all: cargo keeps each feature set's crates apart, so only the
    # crates whose features differ are built again (the binary is copied out at once).
    cargo build --release --workspace --features "$features" --example gpu_bench || exit 1
    strip -o "/tmp/gpu_bench-$variant" "$CARGO_TARGET_DIR/release/examples/gpu_bench"
    xz -T0 -9 -c "/tmp/gpu_bench-$variant" >"$DIR/gpu_bench-$variant.xz"
    rm "/tmp/gpu_bench-$variant"
  done
  # Inception-v3's shapes (its safetensors header): the GPU run draws random weights of them
  # instead of carrying 87 MB.
  python3 - "../shared/models/inception-2015-12-05.safetensors" "$DIR/inception_header.json" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
json.dump(header, open(sys.argv[2], "w"))
EOF
  if ! ls .gl/*.deb >/dev/null 2>&1; then
    grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1 libegl1 \
      libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  du -ch "$DIR"/* .gl/* | tail -1
  echo "carry [\".gl\", \"$DIR\"] and run tools/gpu_bench.sh"
  exit 0
fi

OUT=${OUT:-/tmp/out}
BACKEND=${BACKEND:-wgpu}
CASES=${CASES:-gan_int_cls:64,stackgan1:64,stackgan2:32,attngan:20}
WARMUP=${WARMUP:-3}
STEPS=${STEPS:-10}
BUDGET=${BUDGET:-450}
small=()
[ "${SMALL:-0}" = 1 ] && small=(--small)
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
mkdir -p "$OUT"
if [ "$BACKEND" = wgpu ] && ls .gl/*.deb >/dev/null 2>&1; then
  . tools/gpu_vulkan_env.sh
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

# PyTorch first: it also finds AttnGAN's largest batch (doubling from 20 until out of memory).
torch_cases=$CASES
case ",$CASES," in *,attngan:*) torch_cases=$CASES,attngan:max ;; esac
timeout $(($(left) / 3)) python3 tools/gpu_bench_pytorch.py --device "${TORCH_DEVICE:-auto}" \
  --cases "$torch_cases" --warmup "$WARMUP" --steps "$STEPS" --timing together "${small[@]}" \
  --max-batch "${MAX_BATCH:-256}" --damsm-image-size "${DAMSM_IMAGE_SIZE:-299}" \
  --json "$OUT/pytorch.json" 2>&1 | tail -20
max_batch=$(python3 -c '
import json, sys
try:
    cases = json.load(open(sys.argv[1]))["cases"]
except (OSError, ValueError, KeyError):
    cases = []
print(max([c["batch"] for c in cases if c.get("max") and "images_per_s" in c] or [0]))
' "$OUT/pytorch.json")

# Our builds: the packed ones, or the example in the current target folder.
mkdir -p /tmp/gpu-bench-bin
builds=()
for packed in "$DIR"/gpu_bench-*.xz; do
  [ -f "$packed" ] || continue
  name=$(basename "$packed" .xz)
  xz -dc "$packed" >"/tmp/gpu-bench-bin/$name" && chmod +x "/tmp/gpu-bench-bin/$name" &&
    builds+=("$name")
done
if [ ${#builds[@]} = 0 ]; then
  local_build=${CARGO_TARGET_DIR:-$HOME/.cache/t2i-target}/release/examples/gpu_bench
  [ -x "$local_build" ] || { echo "no $DIR/gpu_bench-*.xz and no $local_build: run --prepare" >&2; exit 1; }
  cp "$local_build" /tmp/gpu-bench-bin/gpu_bench-local && builds=(gpu_bench-local)
fi
shapes=()
if [ -f "$DIR/inception_header.json" ] && [ ! -f ../shared/models/inception-2015-12-05.safetensors ]; then
  shapes=(--inception-shapes "$DIR/inception_header.json")
fi
for name in "${builds[@]}"; do
  variant=${name#gpu_bench-}
  ours_cases=$CASES
  [ "$max_batch" -gt 20 ] && ours_cases=$CASES,attngan:$max_batch
  # Each build gets an equal share of what is left; a hang or a crash loses only its cases.
  share=$(($(left) / ${#builds[@]}))
  [ "$share" -gt 20 ] || { echo "$variant: no time left"; continue; }
  backend=$BACKEND
  [ "$variant" = cuda ] && backend=cuda
  timeout "$share" "/tmp/gpu-bench-bin/$name" --backend "$backend" --cases "$ours_cases" \
    --warmup "$WARMUP" --steps "$STEPS" "${small[@]}" "${shapes[@]}" \
    --damsm-image-size "${DAMSM_IMAGE_SIZE:-299}" \
    --json "$OUT/burn-$variant.json" >"$OUT/burn-$variant.log" 2>&1
  echo "$variant: exit $?"
  tail -8 "$OUT/burn-$variant.log"
done

python3 - "$OUT" "$BACKEND" "$(hostname)" <<'EOF'
import glob, json, os, sys
out, backend, host = sys.argv[1:]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
torch = load(os.path.join(out, "pytorch.json")) or {"cases": []}
ours = {os.path.basename(p)[len("burn-"):-len(".json")]: load(p)
        for p in sorted(glob.glob(os.path.join(out, "burn-*.json")))}
ours = {k: v for k, v in ours.items() if v}
def rate(report, case, batch):
    for c in report["cases"]:
        if c["case"] == case and c["batch"] == batch and "images_per_s" in c:
            return c["images_per_s"]
    return None
keys = []
for report in [torch, *ours.values()]:
    for c in report["cases"]:
        if (c["case"], c["batch"]) not in keys:
            keys.append((c["case"], c["batch"]))
rows = []
for case, batch in keys:
    row = {"case": case, "batch": batch, "pytorch": rate(torch, case, batch)}
    for variant, report in ours.items():
        row[variant] = rate(report, case, batch)
    best = max((row[v] for v in ours if row[v]), default=None)
    row["best_ours"] = best
    row["ours_over_pytorch"] = round(best / row["pytorch"], 3) if best and row["pytorch"] else None
    rows.append(row)
heads = ["case", "batch", "PyTorch", *ours, "ours/PyTorch"]
print("| " + " | ".join(heads) + " |")
print("|" + "---|" * len(heads))
fmt = lambda v: "" if v is None else f"{v:.1f}"
for r in rows:
    cells = [r["case"], str(r["batch"]), fmt(r["pytorch"]), *(fmt(r[v]) for v in ours),
             "" if r["ours_over_pytorch"] is None else f"{r['ours_over_pytorch']:.2f}"]
    print("| " + " | ".join(cells) + " |")
report = {"host": host, "backend": backend, "gpu": torch.get("device"),
          "torch": torch.get("torch"), "images_per_s": rows, "pytorch": torch, "ours": ours}
json.dump(report, open(os.path.join(out, "gpu_bench.json"), "w"), indent=1)
print(f"written {os.path.join(out, 'gpu_bench.json')}")
EOF
echo "gpu_bench: $(($(date +%s) - start)) s"
