.DEFAULT_GOAL := help
PY ?= python

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build-dev: ## build the Rust extension in release mode into the active environment
	maturin develop --release

lint: ## rustfmt, clippy (with and without the Python module) and ruff
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	ruff check python tests benches

test: ## Rust unit tests and the Python suite
	cargo test
	$(PY) -m pytest

bench: ## criterion benches of the kernels, then the side-by-side Python benchmark
	cargo bench --bench kernels
	$(PY) benches/bench_neurons.py

.PHONY: help build-dev lint test bench
