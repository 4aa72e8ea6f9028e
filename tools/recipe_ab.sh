#!/usr/bin/env bash
# The A/B runs of the training recipe (README, "The training recipe"): one GAN-INT-CLS run per
# arm from the same base config (same seed, data, widths), each for its own number of steps,
# then `t2i eval gan` at 1,000 samples on the held-out species (the same captions and seeds for
# every arm). Prints one Markdown table row per arm.
#
#   tools/recipe_ab.sh BASE_CONFIG WORK_DIR ARM:STEPS [ARM:STEPS ...]
#
# ARM: paper (the papers' recipe), ema, augment, hinge, ttur, ma_gp, r1, or modern (DF-GAN's
# hinge + MA-GP + TTUR with DiffAugment and the weight average). For a budget of equal minutes,
# give each arm the steps it takes in that time on an otherwise idle machine (measure its
# images/s first: a penalty adds a second discriminator pass per step).
#
# Each arm's config is BASE_CONFIG with its own config_name, output_dir (WORK_DIR/ARM) and
# [recipe] section, written to WORK_DIR/ARM.toml: paths in BASE_CONFIG must be absolute.
# Runs resume, so the script can be stopped and started again; an arm whose run has reached
# its steps is only evaluated. T2I names the binary (default: the release build in
# CARGO_TARGET_DIR).
set -euo pipefail

if [ $# -lt 3 ]; then
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
base=$1
work=$(realpath -m "$2")
shift 2
t2i=${T2I:-${CARGO_TARGET_DIR:-target}/release/t2i}
[ -f "$base" ] || { echo "no base config $base" >&2; exit 2; }
[ -x "$t2i" ] || { echo "no t2i binary at $t2i (build it or set T2I)" >&2; exit 2; }
mkdir -p "$work"

recipe_of() {
    case $1 in
        paper) ;;
        ema) echo 'ema_decay = 0.999' ;;
        augment) echo 'augment = ["color", "translation", "cutout"]' ;;
        hinge) echo 'loss = "hinge"' ;;
        ttur) printf 'lr_g = 0.0001\nlr_d = 0.0004\nbetas_g = [0.0, 0.9]\nbetas_d = [0.0, 0.9]\n' ;;
        ma_gp) printf 'ma_gp_weight = 2.0\nma_gp_power = 6\n' ;;
        r1) echo 'r1_gamma = 1.0' ;;
        modern)
            printf 'loss = "hinge"\nema_decay = 0.999\naugment = ["color", "translation", "cutout"]\n'
            printf 'ma_gp_weight = 2.0\nma_gp_power = 6\nlr_g = 0.0001\nlr_d = 0.0004\n'
            printf 'betas_g = [0.0, 0.9]\nbetas_d = [0.0, 0.9]\n'
            ;;
        *) echo "unknown arm '$1' (paper ema augment hinge ttur ma_gp r1 modern)" >&2; return 1 ;;
    esac
}

echo "| arm | steps | images/s | minutes | FID | IS | R-precision | species-aware R-precision |"
echo "|---|---|---|---|---|---|---|---|"
for spec in "$@"; do
    arm=${spec%%:*}
    steps=${spec#*:}
    [[ "$steps" =~ ^[0-9]+$ ]] || { echo "'$spec': give ARM:STEPS" >&2; exit 2; }
    config=$work/$arm.toml
    {
        grep -v -e '^config_name' -e '^output_dir' "$base" | sed '/^\[recipe\]/,$d'
        printf '\n[recipe]\n'
        recipe_of "$arm"
    } > "$config.body"
    { echo "config_name = \"ab_$arm\""; echo "output_dir = \"$work/$arm\""; cat "$config.body"; } > "$config"
    rm "$config.body"
    resume=()
    [ -d "$work/$arm/checkpoints" ] && resume=(--resume)
    "$t2i" train --config "$config" --max-steps "$steps" "${resume[@]}" >> "$work/$arm.train.log" 2>&1
    # An interrupted run (Ctrl-C writes a checkpoint and exits cleanly) is not scored as if done.
    latest=$(cat "$work/$arm/checkpoints/latest" 2>/dev/null || echo step-0)
    reached=$((10#${latest#step-}))
    if [ "$reached" -lt "$steps" ]; then
        echo "arm $arm stopped at step $reached of $steps: not scored; run again to resume it" >&2
        exit 1
    fi
    "$t2i" eval gan --config "$config" --samples 1000 > "$work/$arm.eval.json" 2>> "$work/$arm.eval.log"
    python3 - "$config" "$work/$arm.eval.json" "$arm" "$steps" <<'PY'
import json, statistics, sys, tomllib
config, evaluation, arm, steps = sys.argv[1:]
settings = tomllib.load(open(config, "rb"))
run = settings["output_dir"]
rows = [json.loads(line) for line in open(f"{run}/metrics.jsonl") if line.strip()]
speeds = [r["images_per_s"] for r in rows if "images_per_s" in r]
speed = statistics.median(speeds)
lines = [line for line in open(evaluation) if line.startswith("{")]
e = json.loads(lines[-1])
minutes = int(steps) * settings["train"]["batch_size"] / speed / 60
print(f"| {arm} | {steps} | {speed:.0f} | {minutes:.0f} | {e['fid']:.1f} | "
      f"{e['inception_score']:.2f} ± {e['inception_score_std']:.2f} | "
      f"{e['r_precision']:.3f} | {e['r_precision_species']:.3f} |")
PY
done
