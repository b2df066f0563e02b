#!/usr/bin/env bash
# Idempotent set-up of the optional torch build (cargo feature `torch`; README,
# "The torch build"), kept apart from the default build in .venv-torch:
#   1. the venv with torch 2.13.0, the version tch 0.26 links against
#      (tests/torch_build/requirements.txt; re-installed only when it changes)
#   2. the extension built on tch against that torch (LIBTORCH_USE_PYTORCH=1) as a
#      wheel in target/torch/wheels, installed into the venv (not in editable mode:
#      python/raiiaf_rs/ holds the default build's extension)
# Re-built only when the build inputs change. A cold build compiles libtorch's C
# API wrapper (tch): about 4 minutes on 2 cores.
# With arguments, runs them afterwards in the build's environment, e.g.
#   bash dev/setup_torch.sh cargo clippy --release -p raiiaf-python --features torch
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1

VENV=.venv-torch
REQS=tests/torch_build/requirements.txt
REQ_STAMP=$VENV/.requirements.sha256
BUILD_STAMP=$VENV/.build.sha256
PYTHON=${PYTHON:-python3}
# The build's environment: its own target folder; torch-sys runs `python` (the venv's,
# through VIRTUAL_ENV and PATH) to find libtorch.
export CARGO_TARGET_DIR=$PWD/target/torch
export VIRTUAL_ENV=$PWD/$VENV PATH=$PWD/$VENV/bin:$PATH LIBTORCH_USE_PYTORCH=1
export PYO3_PYTHON=$PWD/$VENV/bin/python

say() { printf 'setup-torch: %s\n' "$*"; }

# --venv-only: the venv and its packages, no build (dev/setup_hosts.sh runs that in the
# background, so that the torch download overlaps the other builds). Either way the venv's
# set-up holds a lock, so a later call waits for one running in the background.
VENV_ONLY=0
if [ "${1:-}" = --venv-only ]; then
    VENV_ONLY=1
    shift
fi
# shellcheck source=dev/hosts.sh
source dev/hosts.sh
host_lock torch-build-venv

if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    rm -rf "$(readlink -m "$VENV")"
    "$PYTHON" -m venv "$(readlink -m "$VENV")"  # the real path: it may be a link (dev/cache.sh)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
req_hash=$(sha256sum "$REQS" | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_hash" ]; then
    say "installing $REQS (torch with its CUDA libraries: several GB, minutes)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
        --retries 5 -r "$REQS"
    echo "$req_hash" >"$REQ_STAMP"
else
    say "python deps up to date"
fi

if ((VENV_ONLY)); then
    exit 0
fi

# The build inputs and the installed torch (through the requirements).
build_hash=$({ bash dev/build_inputs_hash.sh && cat "$REQ_STAMP"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$BUILD_STAMP" 2>/dev/null)" != "$build_hash" ] ||
    ! "$VENV/bin/python" -c 'import torch, raiiaf_rs; assert raiiaf_rs.LINKED_TORCH' >/dev/null 2>&1; then
    say "building the torch extension (maturin build --release --features torch)"
    rm -f "$BUILD_STAMP"
    rm -rf "$CARGO_TARGET_DIR/wheels"
    "$VENV/bin/maturin" build --release --features torch --interpreter "$VENV/bin/python" \
        --auditwheel skip --out "$CARGO_TARGET_DIR/wheels"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --force-reinstall "$CARGO_TARGET_DIR"/wheels/*.whl
    "$VENV/bin/python" -c 'import raiiaf_rs; print("setup-torch: linked torch", raiiaf_rs.LINKED_TORCH)'
    echo "$build_hash" >"$BUILD_STAMP"
else
    say "torch extension up to date"
fi

if (($#)); then
    exec "$@"
fi
