#!/usr/bin/env bash
# The workspace's cargo tests on every CPU kernel path this machine has: `make test` runs them
# here.
#
# burn's flex backend picks its matrix-product kernels at run time: AVX-512 (gemm's x86-v4, the
# `avx512` feature of t2i-train, on by default) where the CPU has it, AVX2 elsewhere. The two
# round differently, so a learning test's GAN follows another trajectory on each (README,
# "Learning tests on any CPU"). On a CPU with AVX-512 this builds the tests twice, with and
# without `avx512`, and runs the two sets side by side, one thread each: one thread follows the
# same trajectory as two, and two processes of one thread keep both cores busier than one of
# two. Elsewhere there is one path, and its set runs alone on every core.
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

# Builds one path's test binaries and lists them, one "DIRECTORY<TAB>EXECUTABLE<TAB>NAME" line
# each (cargo runs a test binary in its package's directory; so does the lane below).
build() {
  local path=$1 list=$2 flags=()
  [ "$path" = avx2 ] && flags=(--no-default-features)
  echo "== building the tests for kernel path $path"
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
        print(os.path.dirname(m["manifest_path"]), m["executable"], name, sep="\t")
' >"$list"
}

# Runs a list's binaries one after another; one "STATUS<TAB>NAME<TAB>SECONDS" line each into
# RESULTS.
lane() {
  local path=$1 list=$2 results=$3 threads=$4
  local dir exe name status start
  while IFS=$'\t' read -r dir exe name; do
    echo
    echo "== [$path] Running $name ($exe)"
    start=$(date +%s)
    (cd "$dir" && RAYON_NUM_THREADS=$threads "$exe" "${test_args[@]}")
    status=$?
    printf '%s\t%s\t%s\n' "$status" "$name" "$(($(date +%s) - start))" >>"$results"
  done <"$list"
}

for path in "${paths[@]}"; do
  build "$path" "$work/$path.list" || exit 1
done

started=$(date +%s)
if [ "${paths[*]}" = native ]; then
  lane native "$work/native.list" "$work/native.results" "${RAYON_NUM_THREADS:-}"
else
  # The AVX2 lane writes to a log shown when both are done, so neither interleaves the other.
  echo "== kernel paths avx512 and avx2 side by side, one thread each; avx2's output follows avx512's"
  lane avx2 "$work/avx2.list" "$work/avx2.results" 1 >"$work/avx2.log" 2>&1 &
  avx2_lane=$!
  lane avx512 "$work/avx512.list" "$work/avx512.results" 1
  wait "$avx2_lane"
  cat "$work/avx2.log"
fi

echo
failed=0
for path in "${paths[@]}"; do
  binaries=$(wc -l <"$work/$path.list")
  bad=$(awk -F'\t' '$1 != 0 { print $2 }' "$work/$path.results" 2>/dev/null)
  if [ -n "$bad" ]; then
    failed=1
    echo "kernel path $path: $binaries test binaries, failed: $(echo "$bad" | paste -sd, -)"
  else
    echo "kernel path $path: $binaries test binaries, all passed"
  fi
  # Where `make test`'s minutes go: the slowest binaries of this path.
  echo "kernel path $path, slowest test binaries (seconds): $(sort -t$'\t' -k3,3nr "$work/$path.results" |
    head -6 | awk -F'\t' '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $3 }')"
done
echo "tests on ${#paths[@]} kernel path(s) took $(($(date +%s) - started)) s"
exit $failed
