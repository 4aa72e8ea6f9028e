#!/usr/bin/env bash
# The PyTorch parity tests (train/tests/import.rs) on burn's wgpu backend as well as flex: the
# same kernels the page runs on WebGPU, here on Vulkan. Without a GPU that is Mesa's lavapipe
# (Vulkan on the CPU), installed from Debian when missing; with no Vulkan driver that can be
# installed it says so and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "installing Mesa's Vulkan drivers (lavapipe) for the wgpu parity tests"
  packages="mesa-vulkan-drivers libvulkan1"
  if [ "$(id -u)" = 0 ]; then
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null
  else
    sudo apt-get update >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null
  fi
fi
# Mesa warns on every device it opens without a runtime directory.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --release -p t2i-train --features wgpu --test import -- --nocapture --test-threads 1 "$@"
