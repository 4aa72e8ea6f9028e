#!/usr/bin/env bash
# Builds the browser library into pkg/: pkg/cpu (burn's flex backend, ~1.3 MB) and, unless
# T2I_WEB_CPU_ONLY=1, pkg/gpu (wgpu on WebGPU, ~8 MB). Installs what is missing: the wasm32
# target, wasm-bindgen-cli at exactly the version Cargo.lock pins, and wasm-opt from npm's
# binaryen (Debian's is too old for these modules). Re-running with nothing changed is fast:
# cargo and the version checks do no work.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/t2i-target}
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
rustup target add wasm32-unknown-unknown >/dev/null
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$version"
fi
if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
  (cd tools && npm install --no-save --no-audit --no-fund binaryen@132 >/dev/null)
fi
variants="cpu"
[ "${T2I_WEB_CPU_ONLY:-0}" = 1 ] || variants="cpu gpu"
for variant in $variants; do
  features=web
  [ "$variant" = gpu ] && features=web,wgpu
  cargo build -p t2i --lib --target wasm32-unknown-unknown --profile wasm --features "$features"
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm/t2i.wasm"
  stamp="pkg/$variant/.source-sha256"
  sum=$(sha256sum "$wasm" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "pkg/$variant is up to date"
    continue
  fi
  rm -rf "pkg/$variant"
  wasm-bindgen --target web --no-typescript --out-dir "pkg/$variant" --out-name t2i "$wasm"
  bindgen_size=$(stat -c %s "pkg/$variant/t2i_bg.wasm")
  tools/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals "pkg/$variant/t2i_bg.wasm" -o "pkg/$variant/t2i_bg.wasm"
  # The sizes at each step, for tools/bench_web.mjs (the unoptimised files are not kept).
  printf '{"raw": %s, "wasmBindgen": %s, "optimised": %s}\n' "$(stat -c %s "$wasm")" "$bindgen_size" \
    "$(stat -c %s "pkg/$variant/t2i_bg.wasm")" > "pkg/$variant/sizes.json"
  echo "$sum" > "$stamp"
  echo "pkg/$variant: $(stat -c %s "$wasm") bytes raw, $bindgen_size after wasm-bindgen, $(stat -c %s "pkg/$variant/t2i_bg.wasm") after wasm-opt -Oz"
done
