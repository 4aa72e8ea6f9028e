#!/usr/bin/env bash
# The long fuzzing runs: every fuzz target of both crates (tests/fuzz.rs, train/tests/fuzz.rs)
# with CASES cases each (default 1,000,000) drawn from a new seed (FUZZ_SEED, printed; `make
# test` always draws seed 0's), one at a time, and a table of cases, minutes and outcome per
# target. A failing target prints proptest's minimal failing input: add it to the
# corpus as crash-<what> (tests/fixtures/fuzz/<target>/) and fix the reader.
#
#   tools/fuzz.sh [CASES]
set -uo pipefail
cases=${1:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/t2i-target}
cd "$(dirname "$0")/.."
log=$(mktemp)
status=0
export FUZZ_SEED=${FUZZ_SEED:-$RANDOM$RANDOM}
echo "seed $FUZZ_SEED"
echo "| target | cases | minutes | outcome |"
echo "|---|---|---|---|"
for crate in t2i t2i-train; do
    FUZZ_CASES=$cases cargo test --release -p "$crate" --test fuzz -- --nocapture --test-threads 1 \
        > "$log" 2>&1 || status=1
    sed -nE 's/.*fuzz ([^:]*): ([0-9]+) cases in ([0-9.]+) s.*/\1|\2|\3/p' "$log" |
        awk -F'|' '{ printf "| %s | %d | %.1f | no failure |\n", $1, $2, $3 / 60 }'
    grep -E 'Test failed|minimal failing' -A3 "$log"
done
rm -f "$log"
exit $status
