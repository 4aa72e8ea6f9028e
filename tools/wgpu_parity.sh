#!/usr/bin/env bash
# The PyTorch parity tests (train/tests/import.rs) on burn's wgpu backend as well as flex: the
# same kernels the page runs on WebGPU, here on Vulkan. Without a GPU that is Mesa's lavapipe
# (Vulkan on the CPU), installed by tools/vulkan_driver.sh when missing. `make test` runs these
# tests within its one wgpu-enabled `cargo test`; this script runs them alone.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/vulkan_driver.sh
# Mesa warns on every device it opens without a runtime directory.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --release -p t2i-train --features wgpu --test import -- --nocapture --test-threads 1 "$@"
