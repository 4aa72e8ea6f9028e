#!/usr/bin/env bash
# One training burst of 64 px GAN configs (GAN-INT-CLS, StackGAN Stage-I) on a lent GPU machine
# (the `device` tool's `run`), with burn's wgpu backend on Vulkan. Several configs train at
# once on the one GPU (small models leave most of it idle), each for MINUTES in all.
#
#   tools/gpu_train_burst.sh MINUTES CONFIG [CONFIG...]
#
# Everything it needs travels with the call: carry .gl (the Vulkan/EGL loader .debs, see the
# device tool's README), runs/gpu (the stripped t2i builds, `t2i-NAME.xz`: t2i-gpu.xz from
# `cargo build --release -p t2i-train --features gpu --bin t2i` (wgpu, autotune, fusion,
# persistence), t2i-wgpu-autotune.xz from `--features wgpu,autotune,persistence`, t2i-wgpu.xz
# from `--features wgpu`)
# and the configs' prepared_dir. A file runs/gpu/NAME.args, where
# NAME is a config's file name without .toml, adds arguments to that config's `t2i train`
# (e.g. `--init-from runs/gpu/init`).
#
# With several builds it first trains the first config with each for PROBE_STEPS steps
# (default 40) in a scratch folder, keeps the builds whose losses stay finite, and trains with
# the fastest; the table goes to $OUT/probe.jsonl. A run resumes its config's run folder if it
# has a checkpoint. At the end each config's run is packed into $OUT/NAME.tgz.part-* (15 MB
# pieces, the tool's per-file limit): GAN-INT-CLS as `t2i portable` weights, StackGAN Stage-I
# as its latest checkpoint; with the samples, loss curve, metrics and log. Back here:
#   cat NAME.tgz.part-* | tar xzf - -C RUN_FOLDER   (RUN_FOLDER/stage1 for StackGAN)
# If Vulkan cannot be initialised a run falls back to the flex CPU backend on that machine.
#
# Builds with burn's `persistence` feature (`gpu`) keep autotune's measurements on disk: here in
# runs/gpu/autotune, which travels with the call, and comes back as $OUT/autotune.tgz. Unpack it
# here (`tar xzf autotune.tgz -C runs/gpu`) and the next call skips the benchmarks of every
# convolution shape this one measured (about 90 s of a call on the H200).
set -uo pipefail
MINUTES=${1:?minutes}
shift
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || { echo "usage: $0 MINUTES CONFIG [CONFIG...]" >&2; exit 2; }
OUT=${OUT:-/tmp/out}
PROBE_STEPS=${PROBE_STEPS:-40}
# BACKEND=flex runs the same steps on the CPU (to try the script on a machine without a GPU).
BACKEND=${BACKEND:-wgpu}
start=$(date +%s)
# cubecl reads cubecl.toml from the working folder (ignored by git): its environment, the
# autotune cache among it, lives in the carried runs/gpu/autotune.
mkdir -p runs/gpu/autotune
printf '[environment]\npath = { directory = "%s" }\n' "$PWD/runs/gpu/autotune" >cubecl.toml
. "$(dirname "$0")/gpu_vulkan_env.sh"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
mkdir -p /tmp/t2i-bin
builds=()
for packed in runs/gpu/t2i-*.xz; do
  name=$(basename "$packed" .xz)
  python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' \
    "$packed" >"/tmp/t2i-bin/$name" && chmod +x "/tmp/t2i-bin/$name" && builds+=("$name")
done
[ ${#builds[@]} -gt 0 ] || { echo "no runs/gpu/t2i-*.xz build to run"; exit 1; }

value() { grep "^$2 *=" "$1" | head -1 | sed 's/.*= *"\(.*\)"/\1/'; }
run_dir() {
  local dir
  dir=$(value "$1" output_dir)
  case "$dir" in /*) echo "$dir" ;; *) echo "$(dirname "$1")/$dir" ;; esac
}
# Where a config's checkpoints and metrics are: StackGAN trains its Stage-I here.
stage_dir() {
  if [ "$(value "$1" model)" = stackgan ]; then echo "$(run_dir "$1")/stage1"; else run_dir "$1"; fi
}
train_args() {
  local args=()
  [ "$(value "$1" model)" = stackgan ] && args+=(--stage 1)
  local extra="runs/gpu/$(basename "$1" .toml).args"
  [ -f "$extra" ] && read -r -a more <"$extra" && args+=("${more[@]}")
  echo "${args[@]}"
}

best=${builds[0]}
if [ ${#builds[@]} -gt 1 ]; then
  best_rate=0
  first=${CONFIGS[0]}
  for name in "${builds[@]}"; do
    probe_config="$(dirname "$first")/probe-$name.toml"
    sed "s|^output_dir *=.*|output_dir = \"/tmp/probe-$name\"|" "$first" >"$probe_config"
    probe_start=$(date +%s)
    # shellcheck disable=SC2046
    timeout 100 "/tmp/t2i-bin/$name" --backend "$BACKEND" train --config "$probe_config" \
      --max-steps "$PROBE_STEPS" $(train_args "$first") >"/tmp/probe-$name.log" 2>&1
    status=$?
    line=$(python3 - "$(stage_dir "$probe_config")/metrics.jsonl" "$name" "$status" \
      "$(($(date +%s) - probe_start))" "$first" <<'EOF'
import json, math, sys
path, name, status, seconds, config = sys.argv[1:]
try:
    rows = [json.loads(l) for l in open(path)]
except OSError:
    rows = []
losses = [v for r in rows for k, v in r.items() if k.startswith("loss")]
finite = bool(rows) and all(math.isfinite(v) for v in losses)
print(json.dumps({"build": name, "config": config, "status": int(status), "steps": len(rows),
                  "seconds": int(seconds), "finite_losses": finite,
                  "images_per_s": round(rows[-1]["images_per_s"], 1) if rows else 0.0,
                  "last": {k: round(v, 4) for k, v in (rows[-1] if rows else {}).items()
                           if k.startswith("loss")}}))
EOF
    )
    echo "probe: $line" | tee -a "$OUT/probe.jsonl"
    tail -3 "/tmp/probe-$name.log"
    if python3 -c '
import json, sys
r = json.loads(sys.argv[1])
sys.exit(0 if r["status"] == 0 and r["finite_losses"] and r["images_per_s"] > float(sys.argv[2]) else 1)
' "$line" "$best_rate"; then
      best=$name
      best_rate=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["images_per_s"])' "$line")
    fi
    rm -f "$probe_config"
  done
  if [ "$best_rate" = 0 ]; then
    echo "no build trained on $BACKEND in the probe; training on flex"
    BACKEND=flex
  fi
fi
echo "{\"training_with\": \"$best\", \"backend\": \"$BACKEND\"}" | tee -a "$OUT/probe.jsonl"

train_one() {
  local config=$1 name
  name=$(basename "$config" .toml)
  local dir
  dir=$(stage_dir "$config")
  local log=/tmp/train-$name.log
  local resume=()
  ls "$dir"/checkpoints/step-* >/dev/null 2>&1 && resume=(--resume)
  local left
  left=$(python3 -c "print(max(1.0, $MINUTES - ($(date +%s) - $start) / 60))")
  # --max-minutes ends training with a checkpoint; the timeout only guards against a hang.
  # shellcheck disable=SC2046
  timeout "$(python3 -c "print(int($left * 60 + 90))")" /tmp/t2i-bin/$best --backend "$BACKEND" \
    train --config "$config" --max-minutes "$left" "${resume[@]}" $(train_args "$config") \
    >"$log" 2>&1
  local status=$? backend=$BACKEND
  if [ "$status" != 0 ] && [ "$BACKEND" != flex ] && ! ls "$dir"/checkpoints/step-* >/dev/null 2>&1; then
    left=$(python3 -c "print(max(1.0, $MINUTES - ($(date +%s) - $start) / 60 - 1))")
    echo "wgpu failed (status $status); falling back to flex on $(nproc) cores" >>"$log"
    backend=flex
    # shellcheck disable=SC2046
    /tmp/t2i-bin/$best --backend flex train --config "$config" --max-minutes "$left" \
      $(train_args "$config") >>"$log" 2>&1
  fi
  echo "backend used: $backend ($best)" >>"$log"
  tail -4 "$log"
  cp "$log" "$dir/train.log"
  if [ "$(value "$config" model)" = stackgan ]; then
    local latest
    latest=$(cat "$dir/checkpoints/latest")
    tar czf - -C "$dir" samples metrics.jsonl losses.png train.log "checkpoints/$latest" \
      checkpoints/latest | split -b 15M - "$OUT/$name.tgz.part-"
  else
    /tmp/t2i-bin/$best --backend flex portable --config "$config" --out "$dir/portable" >>"$log" 2>&1
    tar czf - -C "$dir" portable samples metrics.jsonl losses.png train.log config.toml |
      split -b 15M - "$OUT/$name.tgz.part-"
  fi
}

for config in "${CONFIGS[@]}"; do
  train_one "$config" &
done
wait
tar czf "$OUT/autotune.tgz" -C runs/gpu autotune
ls -la "$OUT"
