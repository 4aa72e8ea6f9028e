#!/usr/bin/env bash
# The long fuzzing runs: every fuzz target of both crates (tests/fuzz.rs, train/tests/fuzz.rs)
# with CASES cases each (default 1,000,000) or FUZZ_MINUTES minutes each (default 60),
# whichever comes first, drawn from a new seed (FUZZ_SEED, printed; `make test` always draws
# seed 0's), one at a time, and a table of cases, minutes and outcome per target. The tests are
# built as `make test` builds them, so a tree `make test` has built fuzzes at once. A failing
# target prints proptest's minimal failing input: add it to the corpus as crash-<what>
# (tests/fixtures/fuzz/<target>/) and fix the reader.
#
#   tools/fuzz.sh [CASES]
set -uo pipefail
cases=${1:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/t2i-target}
export FUZZ_MINUTES=${FUZZ_MINUTES:-60}
cd "$(dirname "$0")/.."
log=$(mktemp)
status=0
export FUZZ_SEED=${FUZZ_SEED:-$RANDOM$RANDOM}
echo "seed $FUZZ_SEED, at most $cases cases or $FUZZ_MINUTES minutes per target"
FUZZ_CASES=$cases cargo test --release --workspace --features t2i-train/wgpu --no-fail-fast \
    --test fuzz -- --nocapture --test-threads 1 >"$log" 2>&1 || status=1
echo "| target | cases | minutes | outcome |"
echo "|---|---|---|---|"
sed -nE 's/.*fuzz ([^:]*): ([0-9]+) cases in ([0-9.]+) s.*/\1|\2|\3/p' "$log" |
    awk -F'|' '{ printf "| %s | %d | %.1f | no failure |\n", $1, $2, $3 / 60 }'
grep -E 'panicked|Test failed|minimal failing' -A3 "$log"
[ $status = 0 ] || tail -30 "$log"
rm -f "$log"
exit $status
