# raiiaf-rs entry points. `make test` is THE test command (README, .ci/run).
# Targets run serially, in the order listed (the test suites of `test` run in two lanes, see
# `suites`); any failing step fails the target.
.NOTPARALLEL:
.PHONY: test develop bench lint fmt demo fuzz fuzz-long clean setup fmt-check clippy ruff cargo-test pytest \
	torch-test wheels wheel-test cross-clippy hosts-background webui-test diffusers-test \
	comfyui-latest-test comfyui-tests msrv package suites

VENV    := .venv
PY      := $(VENV)/bin/python
RUFF    := $(VENV)/bin/ruff
PY_DIRS := $(wildcard python tests bench dev comfy_nodes workflows scripts lib_raiiaf __init__.py \
	install.py requirement.py)
export OMP_NUM_THREADS := 1

# Full check: set-up, fmt + clippy + ruff, cargo test, pytest (ComfyUI 0.3.75 included), the
# real-ComfyUI tests again on ComfyUI 0.33.0, the extension in the real A1111 1.10.1 and Forge
# Classic, the optional torch build, bounded fuzzing. The real hosts besides ComfyUI 0.3.75 start
# installing in the background right after `setup` (downloads overlap the Rust builds); their test
# targets wait for them. The test suites run in two lanes at once (`suites`). Stops at the first
# failing step; `make -k test` runs every step and still fails at the end.
test: setup hosts-background fmt-check clippy cross-clippy ruff cargo-test msrv package wheel-test \
	suites fuzz

# The test suites in two lanes side by side (dev/lanes.sh): each keeps about one core busy, so
# on 2 cores the two lanes take little longer than the longer one alone. Lane A: pytest (ComfyUI
# 0.3.75 included), then the torch build; lane B: ComfyUI 0.33.0, the webuis, diffusers. Each
# lane's output is prefixed [A] or [B] and kept whole in target/lanes/.
suites:
	@bash dev/lanes.sh "pytest torch-test" "comfyui-latest-test webui-test diffusers-test"

# The install tests in pytest (tests/userenv.py) install the release wheel wheel-test built just
# before, rather than building another one.
test: export RAIIAF_WHEEL_DIR := $(CURDIR)/target/wheels-dist

# System packages, .venv, Python deps, extension build (idempotent, fast when done).
setup:
	@bash dev/setup.sh

# Set-up, forcing a fresh `maturin develop --release` of the extension into .venv.
develop:
	rm -f $(VENV)/.build.sha256
	@bash dev/setup.sh

# Benchmarks: raiiaf-rs against the reference raiiaf, the save path against SaveImage's,
# environment capture and model hashing, torch tensors through both builds, the catalog (20,000
# files: raiiaf index against the reference and a Python loop, DuckDB queries). Tables go to stdout.
bench: setup
	@bash dev/setup_torch.sh
	$(PY) bench/bench_format.py
	$(PY) bench/bench_png.py
	$(PY) bench/bench_env.py
	$(PY) bench/bench_torch.py
	$(PY) bench/bench_zfp.py
	$(PY) bench/bench_capture.py
	$(PY) bench/bench_sidecar_all.py
	$(PY) bench/bench_catalog.py

# Format and lint checks only (Rust and Python).
lint: setup fmt-check clippy ruff

# Rewrite formatting in place and apply ruff's safe fixes (what is left: `make lint`).
fmt: setup
	cargo fmt
	$(RUFF) check --fix --exit-zero --quiet $(PY_DIRS)
	$(RUFF) format $(PY_DIRS)

# The main job end to end (dev/demo.py).
demo: setup
	$(PY) dev/demo.py

# Fuzzing of the reader (cargo-fuzz, ASan), the last step of `test`: every input of the committed
# corpus (fuzz/corpus/) and the seeds runs once, then FUZZ_SECONDS (default 30) of new fuzzing
# per target. A cold cargo-fuzz install + ASan build adds ~3 minutes on 2 cores. Crash inputs land
# in tests/data/fuzz-regressions/, which `cargo test` replays.
fuzz:
	@bash dev/fuzz.sh replay

# Deep fuzzing, outside `test`: each target for FUZZ_SECONDS (default 3600) on every core, the
# corpus then minimised in place (commit fuzz/corpus/); prints executions and coverage per target.
fuzz-long:
	@bash dev/fuzz.sh long

# The real-ComfyUI tests (tests/comfyui: fidelity, server, front end, limits; and the
# ComfyUI-Manager install, tests/install) again, on ComfyUI 0.33.0 run by its own Python
# (dev/setup_comfyui_latest.sh: the 0.33.0 snapshot and its lock layered on .venv; cold: about
# a minute of downloads). `pytest` runs them on ComfyUI 0.3.75.
comfyui-latest-test: setup
	@bash dev/setup_comfyui_latest.sh $(MAKE) --no-print-directory comfyui-tests

# The diffusers host (raiiaf_rs.diffusers, tests/diffusers) on diffusers 0.42.1 and on 0.35.2,
# the oldest it supports: one venv each layered on .venv (dev/setup_diffusers.sh; cold: a few
# MB of downloads), then capture -> replay pixel identity on tiny SD/SDXL pipelines built
# from configs (nothing downloaded), under a minute per version.
diffusers-test: setup
	@bash dev/setup_diffusers.sh --test

# The optional torch build (cargo feature `torch`: tch 0.26 on torch 2.13.0) in its own venv,
# .venv-torch: set-up and build (dev/setup_torch.sh; cold: a ~3 GB torch download and ~4 min
# of compiling), clippy, then the torch and API tests against it and the byte-for-byte comparison
# with the default build (tests/torch_build).
torch-test: setup
	@bash dev/setup_torch.sh cargo clippy --release -p raiiaf-python --features torch -- -D warnings
	RAIIAF_EXPECT_TORCH_BUILD=1 RAIIAF_DEFAULT_PYTHON=$(CURDIR)/$(PY) \
		.venv-torch/bin/python -m pytest tests/test_torch.py tests/test_api.py \
		tests/torch_build

# The release artefacts, cross-built here and checked (dev/build_wheels.sh): abi3 wheels for
# manylinux2014 x86_64 and aarch64 (zig) and Windows x86_64 (mingw-w64), and the sdist, in
# target/wheels-dist/. Cold: ~15 min on 2 cores. macOS wheels: .github/workflows/release.yml.
wheels:
	@bash dev/build_wheels.sh

# Remove the checkout's build outputs and venvs (links into the cache of dev/cache.sh, where
# the builds themselves stay: delete ~/.cache/raiiaf-rs to drop them).
clean:
	rm -rf target $(VENV) .venv-torch python/raiiaf_rs/_raiiaf_rs*.so fuzz/target

# --- single steps (no set-up of their own) ---
# The real hosts' set-ups (dev/setup_hosts.sh), detached: their test targets wait for them.
hosts-background:
	@bash dev/setup_hosts.sh --background

fmt-check:
	cargo fmt --check

# Every crate of the workspace, all targets, in ONE check build: the bindings crate with its abi3
# feature (without it the crate is empty, and the other crates' code does not depend on it), so
# each dependency is checked once with one feature set instead of once per feature set.
clippy:
	PYO3_PYTHON=$(CURDIR)/$(PY) cargo clippy --workspace --all-targets \
		--features raiiaf-python/abi3 -- -D warnings

ruff:
	$(RUFF) check $(PY_DIRS)
	$(RUFF) format --check $(PY_DIRS)

# Unit, integration and doc tests of every crate (the bindings crate is empty without `python`).
cargo-test:
	cargo test --workspace

# The core crate builds on its minimum supported Rust version (rust-version in Cargo.toml): the
# toolchain is installed once (minimal profile) and kept; a check build of the core alone.
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
msrv:
	@rustup toolchain list | grep -q "^$(MSRV)-" || rustup toolchain install $(MSRV) --profile minimal
	cargo +$(MSRV) check -p raiiaf --all-features

# The core crate is ready for crates.io (never published from here): its dependency tree holds
# none of the bindings', catalog's, CLI's or environment's libraries, its docs build without a
# warning, and `cargo package` builds it from the packaged files alone.
package:
	@tree=$$(cargo tree -p raiiaf -e normal --prefix none --all-features) || exit 1; \
	bad=$$(printf '%s\n' "$$tree" | grep -E '^(pyo3|numpy|arrow|parquet|clap|nvml|sysinfo|rayon|mimalloc|tch)' || true); \
	if [ -n "$$bad" ]; then echo "make package: the core crate depends on: $$bad" >&2; exit 1; fi
	RUSTDOCFLAGS="-D warnings" cargo doc -p raiiaf --no-deps --all-features
	cargo package -p raiiaf --allow-dirty

# clippy for the Windows and aarch64 targets (tests/wheel/cross_clippy.sh; check builds only).
cross-clippy:
	@bash tests/wheel/cross_clippy.sh

# The manylinux x86_64 wheel of `make wheels`, installed into a new venv without compiler or
# index, then round trips, the reference files and the CLI (tests/wheel/wheel_test.sh).
wheel-test:
	@bash tests/wheel/wheel_test.sh

# The real-ComfyUI tests alone, on the ComfyUI that COMFYUI_PATH and COMFYUI_PYTHON name
# (default: the 0.3.75 of `make setup`, run by .venv's Python).
comfyui-tests:
	@rc=0; $(PY) -m pytest tests/comfyui tests/install || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make comfyui-tests: ERROR: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

# pytest's exit code 5 means no test was collected: that is a failure here.
pytest:
	@rc=0; $(PY) -m pytest tests --ignore=tests/webui --ignore=tests/diffusers || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make pytest: ERROR: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

# The extension in the real AUTOMATIC1111 1.10.1 and Forge Classic (tests/webui/): set-up from
# the host snapshots (dev/setup_webui.sh; cold: ~2.5 GB of wheels per webui, pip's cache kept),
# then one headless server per webui, the extension git-cloned into it and installed by its
# install.py, driven through the HTTP API. Exit code 5 (nothing collected) is a failure.
webui-test: setup
	@bash dev/setup_webui.sh all
	@rc=0; $(PY) -m pytest tests/webui || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make webui-test: ERROR: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc
