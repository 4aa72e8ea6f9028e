#!/usr/bin/env bash
# Makes sure a Vulkan driver is installed for burn's wgpu backend: without a GPU that is Mesa's
# lavapipe (Vulkan on the CPU), installed from Debian when no driver is there. With no driver
# that can be installed it says so and fails.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  exit 0
fi
echo "installing Mesa's Vulkan drivers (lavapipe) for the wgpu tests"
packages="mesa-vulkan-drivers libvulkan1"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if ! { $sudo apt-get update >/dev/null &&
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages >/dev/null; }; then
  echo "no Vulkan driver: install $packages (Debian/Ubuntu) or your GPU's Vulkan driver" >&2
  exit 1
fi
