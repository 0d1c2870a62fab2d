.DEFAULT_GOAL := help
PY ?= python

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build-dev: ## build the Rust extension in release mode into the active environment
	maturin develop --release

lint: ## rustfmt, clippy (each feature set) and ruff
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features cuda -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	cargo clippy --all-targets --features python,cuda -- -D warnings
	ruff check python tests benches .ci site_tools docs/tutorials

test: ## Rust unit tests (the boundary's also under valgrind), the Python suite and the CUDA self-test
	cargo test
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="valgrind -q --error-exitcode=1" cargo test --lib boundary
	$(PY) -m pytest
	$(PY) -m snnrs.cuda

bench: ## criterion benches, neurons vs peers (grid, headline settings, training step), op-call overhead, the model zoo, the methods, rate-based vs BPTT
	cargo bench --bench kernels && $(PY) benches/criterion_table.py
	$(PY) benches/bench_neurons.py
	$(PY) benches/bench_headline.py --rounds 3
	$(PY) benches/bench_training.py --batch 16 --repeats 3
	$(PY) benches/bench_overhead.py --rounds 3
	$(PY) benches/bench_events.py
	$(PY) benches/bench_event_cache.py
	$(PY) benches/bench_models.py
	$(PY) benches/bench_methods.py
	$(PY) benches/bench_rate.py --batch 8 --repeats 2

docs: ## build the documentation site into site/, offline, strict, running every tutorial (pip install ".[docs]")
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-check: docs ## build the site, then open every page in headless Chromium: console errors, images, search
	$(PY) site_tools/check_site.py site

wheel: ## sdist, and from it the portable wheel (cp310-abi3, manylinux2014 via zig) into dist/; auditwheel checks it
	bash .ci/build_wheel.sh

wheel-smoke: ## install dist/'s wheel into a fresh environment outside the tree, no Rust on PATH, and smoke-test it
	bash .ci/wheel_smoke.sh

check-targets: ## cargo check the library for aarch64 Linux, macOS and Windows (rustup adds the targets)
	CHECK_TARGETS_STRICT=1 bash .ci/check_targets.sh

.PHONY: help build-dev lint test bench docs docs-check wheel wheel-smoke check-targets
