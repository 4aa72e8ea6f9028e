# The two commands a newcomer needs: `make demo` and `make test`.
# Builds share one target directory outside the clone so repeated runs (and CI) stay fast.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/t2i-target

.PHONY: demo test
demo:
	tools/build_web.sh
	node tools/serve.mjs

# Everything: unit tests, model tests against the shipped test vectors, training tests, the
# PyTorch parity tests again on wgpu (Vulkan; lavapipe on a CPU-only machine), a check that the
# browser entry points compile for wasm32, the wasm builds (pkg/cpu, pkg/gpu)
# drawing the shipped bundle in Node and in Chromium (CPU and WebGPU).
test:
	cargo test --release --workspace
	tools/wgpu_parity.sh
	rustup target add wasm32-unknown-unknown
	cargo check -p t2i --target wasm32-unknown-unknown --features web
	tools/build_web.sh
	node tests/web/wasm_cpu_smoke.mjs
	tools/browser_test.sh
