#!/usr/bin/env bash
# The spread of the learning tests' statistics over seeds and CPU kernel paths: the numbers the
# tests' bounds are set from (README, "Learning tests on any CPU").
#
#   tools/learning_spread.sh build DIR [VARIANT...]  # the learning test binaries into DIR/avx512
#                                                    # (default features) and DIR/avx2 (without
#                                                    # burn's x86-v4 AVX-512 matrix products)
#   tools/learning_spread.sh run DIR JOBS OUT SPEC...
#
# `run` works through SPECs "PATH:TEST:SEED:LR_SCALE:THREADS", JOBS at a time, each a test binary
# DIR/PATH/TEST run once with T2I_LEARNING_SEED=SEED, T2I_LEARNING_RATE_SCALE=LR_SCALE (0 is the
# control that must fail) and RAYON_NUM_THREADS=THREADS. It appends one JSON line per finished
# run to OUT: the test's `learning-statistics`, the kernel path, whether the test passed and how
# long it took; each run's whole output goes to OUT.logs/. TEST is one of attngan_attention,
# gan_int_cls, stackgan. PATH is avx512 or avx2: on a CPU without AVX-512 both run the AVX2
# kernels, and the line says which ran.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

declare -A TEST_NAME=(
  [attngan_attention]=background_colour_word_attends_to_the_background
  [gan_int_cls]=generated_colour_follows_the_caption
  [stackgan]=stage_one_follows_the_caption_and_stage_two_follows_stage_one
)

case "${1:-}" in
build)
  dir=${2:?DIR}
  shift 2
  variants=("$@")
  [ ${#variants[@]} -gt 0 ] || variants=(avx512 avx2)
  for variant in "${variants[@]}"; do
    mkdir -p "$dir/$variant"
    flags=()
    [ "$variant" = avx2 ] && flags=(--no-default-features)
    args=()
    for test in "${!TEST_NAME[@]}"; do args+=(--test "$test"); done
    (cd "$here" && cargo test --release -p t2i-train "${flags[@]}" "${args[@]}" --no-run \
      --message-format=json) |
      python3 -c '
import json, sys, shutil, os
out = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        dest = os.path.join(out, m["target"]["name"])
        shutil.copy(m["executable"], dest)
        print("built", dest)
' "$dir/$variant" || exit 1
  done
  ;;
run)
  dir=${2:?DIR}
  jobs=${3:?JOBS}
  out=${4:?OUT}
  shift 4
  mkdir -p "$out.logs"
  if grep -qw avx512f /proc/cpuinfo; then cpu=avx512; else cpu=avx2; fi
  one() {
    IFS=: read -r variant test seed scale threads <<<"$1"
    name=${TEST_NAME[$test]:?unknown test $test}
    log="$out.logs/$variant-$test-seed$seed-lr$scale-t$threads.log"
    start=$(date +%s.%N)
    T2I_LEARNING_SEED=$seed T2I_LEARNING_RATE_SCALE=$scale RAYON_NUM_THREADS=$threads \
      nice "$dir/$variant/$test" --exact "$name" --nocapture --test-threads 1 >"$log" 2>&1
    status=$?
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    # The kernels that ran: AVX-512 only where the binary has them and the CPU too.
    path=avx2
    [ "$variant" = avx512 ] && [ "$cpu" = avx512 ] && path=avx512
    stats=$(grep -m1 '^learning-statistics ' "$log" | sed 's/^learning-statistics //')
    [ -n "$stats" ] || stats='{}'
    python3 -c '
import json, sys
stats = json.loads(sys.argv[1])
stats.update(path=sys.argv[2], build=sys.argv[3], threads=int(sys.argv[4]),
             passed=sys.argv[5] == "0", seconds=round(float(sys.argv[6]), 1),
             seed=sys.argv[7], lr_scale=sys.argv[8], test=sys.argv[9])
print(json.dumps(stats))
' "$stats" "$path" "$variant" "$threads" "$status" "$seconds" "$seed" "$scale" "$test" >>"$out"
    echo "$variant $test seed $seed lr x$scale threads $threads: status $status in ${seconds%.*} s"
  }
  export dir out cpu
  # Bash cannot export arrays: each worker is given the name table and the function, and its
  # SPEC as an argument (xargs -I would also rewrite the function's own "{}").
  printf '%s\n' "$@" | xargs -P "$jobs" -n 1 bash -c "$(declare -p TEST_NAME); $(declare -f one); one \"\$1\"" one
  ;;
*)
  echo "usage: $0 build DIR | run DIR JOBS OUT PATH:TEST:SEED:LR_SCALE:THREADS..." >&2
  exit 2
  ;;
esac
