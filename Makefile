# raiiaf-rs entry points. `make test` is THE test command (README, .ci/run).
# Everything runs serially, in the order listed; any failing step fails the target.
.NOTPARALLEL:
.PHONY: test develop bench lint fmt demo clean setup lint-only cargo-test pytest

VENV    := .venv
PY      := $(VENV)/bin/python
RUFF    := $(VENV)/bin/ruff
PY_DIRS := $(wildcard python tests bench)
export OMP_NUM_THREADS := 1

# Full check: set-up, fmt + clippy + ruff, cargo test, pytest.
test: setup lint-only cargo-test pytest

# System packages, .venv, Python deps, extension build (idempotent, fast when done).
setup:
	@bash scripts/setup.sh

# (Re)build the Rust extension into .venv in release mode, unconditionally.
develop: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release

# Benchmarks: raiiaf-rs against the reference.
bench: setup
	$(PY) bench/bench_format.py

# Format and lint checks only (Rust and Python).
lint: setup lint-only

# Rewrite formatting in place, apply ruff's safe fixes.
fmt: setup
	cargo fmt
	$(RUFF) format $(PY_DIRS)
	$(RUFF) check --fix $(PY_DIRS)

# The end-to-end demo: raiiaf_rs.demo if present, else scripts/demo.py.
demo: setup
	@if $(PY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("raiiaf_rs.demo") is None)'; then \
		$(PY) -m raiiaf_rs.demo; \
	elif [ -f scripts/demo.py ]; then \
		$(PY) scripts/demo.py; \
	else \
		echo "make demo: no raiiaf_rs.demo module or scripts/demo.py yet" >&2; exit 1; \
	fi

# Remove build outputs and the venv.
clean:
	rm -rf target $(VENV)

# --- steps (no set-up of their own) ---
lint-only:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	PYO3_PYTHON=$(CURDIR)/$(PY) cargo clippy --features python --lib -- -D warnings
	$(RUFF) check $(PY_DIRS)
	$(RUFF) format --check $(PY_DIRS)

cargo-test:
	cargo test

# pytest's exit code 5 means no test was collected: that is a failure here.
pytest:
	@rc=0; $(PY) -m pytest tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make pytest: ERROR: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc
