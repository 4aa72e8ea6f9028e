# The two commands a newcomer needs: `make demo` and `make test`.
# Builds share one target directory outside the clone so repeated runs (and CI) stay fast.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/t2i-target

.PHONY: demo test
demo:
	@echo "not yet: the web page arrives with the web-demo issue. Meanwhile see README.md (t2i eval damsm)."

# Everything: unit tests, model tests against the shipped test vectors, training tests, a
# check that the browser entry points compile for wasm32, and the CPU wasm build (pkg/cpu)
# drawing the shipped bundle in Node.
test:
	cargo test --release --workspace
	rustup target add wasm32-unknown-unknown
	cargo check -p t2i --target wasm32-unknown-unknown --features web
	T2I_WEB_CPU_ONLY=1 tools/build_web.sh
	node tests/web/wasm_cpu_smoke.mjs
