# The two commands a newcomer needs: `make demo` and `make test`.
# Builds share one target directory outside the clone so repeated runs (and CI) stay fast.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/t2i-target

.PHONY: demo test
demo:
	tools/build_web.sh
	node tools/serve.mjs

# Everything, in one wgpu-enabled build (one build of burn, not two): unit tests, model tests
# against the shipped test vectors, training tests, the PyTorch parity tests on flex and on wgpu
# (Vulkan; lavapipe on a CPU-only machine, installed when missing), the wasm builds (pkg/cpu,
# pkg/gpu: the browser entry points compile for wasm32) drawing the shipped bundle in Node and
# in Chromium (CPU and WebGPU).
test:
	tools/vulkan_driver.sh
	XDG_RUNTIME_DIR=$${XDG_RUNTIME_DIR:-$$(mktemp -d)} cargo test --release --workspace --features t2i-train/wgpu
	tools/build_web.sh
	node tests/web/wasm_cpu_smoke.mjs
	tools/browser_test.sh
