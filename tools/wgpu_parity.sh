#!/usr/bin/env bash
# The PyTorch parity tests (train/tests/import.rs) and two training steps against flex
# (train/tests/wgpu_training.rs) on burn's wgpu backend: the same kernels the page runs on
# WebGPU, here on Vulkan. Without a GPU that is Mesa's lavapipe (Vulkan on the CPU), installed by
# tools/vulkan_driver.sh when missing. `make test` runs these tests within its one wgpu-enabled
# `cargo test`; this script runs them alone.
#
#   [FEATURES=gpu] tools/wgpu_parity.sh [TEST BINARY ARGS...]
#
# FEATURES=gpu checks the GPU build (wgpu with burn's autotune and fusion) instead. On lavapipe
# autotune benchmarks every new convolution shape's kernels, which takes minutes (import.rs:
# 267 s instead of 10 s on this 2-core machine), so `make test` does not build it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/vulkan_driver.sh
# Mesa warns on every device it opens without a runtime directory.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --release -p t2i-train --features "${FEATURES:-wgpu}" --test import --test wgpu_training \
    -- --nocapture --test-threads 1 "$@"
