#!/usr/bin/env bash
# One training burst of a GAN config on a lent GPU machine (the `device` tool's `run`), with
# burn's wgpu backend on Vulkan. Everything it needs travels with the call:
#   carry: .gl (Vulkan/EGL loader .debs), runs/gpu (t2i-wgpu.gz: `cargo build --release -p
#   t2i-train --features wgpu --bin t2i`, gzipped), the config's prepared_dir.
# It trains for MINUTES, then packs the portable weights (`t2i portable`), samples, loss curve
# and metrics into $OUT/run.tgz.part-* (15 MB pieces, the tool's per-file limit). Back here:
#   cat run.tgz.part-* | tar xzf - -C runs/<name>_gpu && t2i train --config ... --init-from ...
# If Vulkan cannot be initialised it falls back to the flex CPU backend on that machine's cores.
set -uo pipefail
CONFIG=${1:?config}
MINUTES=${2:?minutes}
OUT=${OUT:-/tmp/out}
. "$(dirname "$0")/gpu_vulkan_env.sh"
gunzip -c runs/gpu/t2i-wgpu.gz > /tmp/t2i && chmod +x /tmp/t2i
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
output_dir=$(grep '^output_dir' "$CONFIG" | sed 's/.*= *"\(.*\)"/\1/')
run_dir="$(dirname "$CONFIG")/$output_dir"
start=$(date +%s)
/tmp/t2i --backend wgpu train --config "$CONFIG" --max-minutes "$MINUTES" 2>&1 | tee /tmp/train.log
status=${PIPESTATUS[0]}
backend=wgpu
if [ "$status" != 0 ] && ! ls "$run_dir"/checkpoints/step-* >/dev/null 2>&1; then
  spent=$(( ($(date +%s) - start) / 60 ))
  echo "wgpu failed (status $status); falling back to flex on $(nproc) cores"
  backend=flex
  /tmp/t2i --backend flex train --config "$CONFIG" --max-minutes "$(echo "$MINUTES - $spent - 1" | bc)" 2>&1 | tee -a /tmp/train.log
fi
echo "backend used: $backend" | tee -a /tmp/train.log
/tmp/t2i --backend flex portable --config "$CONFIG" --out "$run_dir/portable" 2>&1 | tee -a /tmp/train.log
cp /tmp/train.log "$run_dir/train.log"
tar czf - -C "$run_dir" portable samples metrics.jsonl losses.png train.log config.toml \
  | split -b 15M - "$OUT/run.tgz.part-"
ls -la "$OUT"
