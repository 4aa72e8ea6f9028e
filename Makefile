# The two commands a newcomer needs: `make demo` and `make test`.
# Builds share one target directory outside the clone so repeated runs (and CI) stay fast.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/t2i-target

.PHONY: demo test
demo:
	tools/build_web.sh
	node tools/serve.mjs

# Everything, in a wgpu-enabled build: unit tests, model tests against the shipped test
# vectors, training tests, the PyTorch parity tests and two training steps on flex and on wgpu
# (Vulkan; lavapipe on a CPU-only machine, installed when missing), the wasm builds (pkg/cpu, pkg/gpu: the browser
# entry points compile for wasm32) drawing the shipped bundle in Node and in Chromium (CPU and
# WebGPU). The cargo tests run on each CPU kernel path the machine has: on a CPU with AVX-512,
# the learning tests once with burn's AVX-512 matrix products and once with its AVX2 ones, side
# by side, and the other tests once (tools/test_kernel_paths.sh).
# Each part starts with a time stamp, so a log shows where the minutes went.
test:
	tools/vulkan_driver.sh
	@date +'== %T the cargo tests'
	XDG_RUNTIME_DIR=$${XDG_RUNTIME_DIR:-$$(mktemp -d)} tools/test_kernel_paths.sh --features t2i-train/wgpu
	@date +'== %T the wasm builds'
	tools/build_web.sh
	@date +'== %T the shipped bundle in Node and in Chromium'
	node tests/web/wasm_cpu_smoke.mjs
	tools/browser_test.sh
	@date +'== %T done'
