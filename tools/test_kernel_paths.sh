#!/usr/bin/env bash
# The workspace's cargo tests on every CPU kernel path this machine has: `make test` runs them
# here.
#
# burn's flex backend picks its matrix-product kernels at run time: AVX-512 (gemm's x86-v4, the
# `avx512` feature of t2i-train, on by default) where the CPU has it, AVX2 elsewhere. The two
# round differently, so a learning test's GAN follows another trajectory on each (README,
# "Learning tests on any CPU"). On a CPU with AVX-512 this builds the tests with `avx512` and
# the learning tests (LEARNING below) again without it, and runs two lanes side by side, one
# thread each: each lane runs one path's learning tests and half of the other test binaries
# (the AVX-512 build's; their results do not hang on a trajectory), so every learning test runs
# on both paths and every other test once. One thread follows the same trajectory as two, and
# two processes of one thread keep both cores busier than one of two. Elsewhere there is one
# path, and all its tests run alone on every core.
#
#   tools/test_kernel_paths.sh [CARGO TEST FLAGS...] [-- TEST BINARY ARGS...]
#
# e.g. `tools/test_kernel_paths.sh --features t2i-train/wgpu`, or `-- --skip learning`.
# T2I_KERNEL_PATHS=native runs the machine's own path only. Every test binary runs even when an
# earlier one failed; the exit status is 1 when any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo_flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  cargo_flags+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
test_args=("$@")

if [ "${T2I_KERNEL_PATHS:-all}" != native ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  paths=(avx512 avx2)
else
  paths=(native)
fi
case "${T2I_KERNEL_PATHS:-all}" in
all | native) ;;
*)
  echo "T2I_KERNEL_PATHS must be 'all' or 'native', not '${T2I_KERNEL_PATHS}'" >&2
  exit 2
  ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The test binaries whose results depend on the kernel path: they train and score a model.
LEARNING=(stackgan gan_int_cls attngan_attention damsm)

# Builds one path's test binaries (on the avx2 path only LEARNING's) and lists them, one
# "PATH<TAB>DIRECTORY<TAB>EXECUTABLE<TAB>NAME" line each (cargo runs a test binary in its
# package's directory; so does the lane below).
build() {
  local path=$1 list=$2 flags=() test
  if [ "$path" = avx2 ]; then
    flags=(--no-default-features)
    for test in "${LEARNING[@]}"; do flags+=(--test "$test"); done
  fi
  echo "== $(date +%T) building the tests for kernel path $path"
  cargo test --release --workspace "${flags[@]}" "${cargo_flags[@]}" --no-run \
    --message-format=json-render-diagnostics |
    python3 -c '
import json, os, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        name = m["target"]["name"] if kind == "test" else kind + " " + m["target"]["name"]
        print(sys.argv[1], os.path.dirname(m["manifest_path"]), m["executable"], name, sep="\t")
' "$path" >"$list"
}

# Runs a list's binaries one after another; one "STATUS<TAB>PATH NAME<TAB>SECONDS" line each
# into RESULTS.
lane() {
  local list=$1 results=$2 threads=$3
  local path dir exe name status start
  while IFS=$'\t' read -r path dir exe name; do
    echo
    echo "== [$path] Running $name ($exe)"
    start=$(date +%s)
    (cd "$dir" && RAYON_NUM_THREADS=$threads "$exe" "${test_args[@]}")
    status=$?
    printf '%s\t%s\t%s\n' "$status" "$path $name" "$(($(date +%s) - start))" >>"$results"
  done <"$list"
}

for path in "${paths[@]}"; do
  build "$path" "$work/$path.list" || exit 1
done

started=$(date +%s)
if [ "${paths[*]}" = native ]; then
  lanes=(native)
  lane "$work/native.list" "$work/native.results" "${RAYON_NUM_THREADS:-}"
else
  lanes=(avx512 avx2)
  # Each lane: its path's learning tests and every other one of the AVX-512 build's remaining
  # binaries.
  awk -F'\t' -v learning="${LEARNING[*]}" -v lanes="$work/lane-avx512.list $work/lane-avx2.list" '
    BEGIN { split(learning, names, " "); for (i in names) is_learning[names[i]]; split(lanes, lane, " ") }
    $4 in is_learning { print > lane[1]; next }
    { print > lane[1 + rest++ % 2] }' "$work/avx512.list"
  cat "$work/avx2.list" >>"$work/lane-avx2.list"
  # The second lane writes to a log shown when both are done, so neither interleaves the other.
  echo "== two lanes side by side, one thread each: the avx512 and the avx2 learning tests, and half the rest each; the avx2 lane's output follows"
  lane "$work/lane-avx2.list" "$work/avx2.results" 1 >"$work/avx2.log" 2>&1 &
  avx2_lane=$!
  lane "$work/lane-avx512.list" "$work/avx512.results" 1
  wait "$avx2_lane"
  cat "$work/avx2.log"
fi

echo
failed=0
for lane_name in "${lanes[@]}"; do
  binaries=$(wc -l <"$work/$lane_name.results")
  bad=$(awk -F'\t' '$1 != 0 { print $2 }' "$work/$lane_name.results" 2>/dev/null)
  if [ -n "$bad" ]; then
    failed=1
    echo "lane $lane_name: $binaries test binaries, failed: $(echo "$bad" | paste -sd, -)"
  else
    echo "lane $lane_name: $binaries test binaries, all passed"
  fi
  # Where `make test`'s minutes go: the slowest binaries of this lane.
  echo "lane $lane_name, slowest test binaries (seconds): $(sort -t$'\t' -k3,3nr "$work/$lane_name.results" |
    head -6 | awk -F'\t' '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $3 }')"
done
echo "tests on ${#paths[@]} kernel path(s) took $(($(date +%s) - started)) s"
exit $failed
