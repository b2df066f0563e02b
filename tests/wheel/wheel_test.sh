#!/usr/bin/env bash
# `make wheel-test`: the shipped Linux wheel, installed the way a user installs it, then used.
#   1. builds the manylinux2014 x86_64 abi3 wheel exactly as `make wheels` does
#      (dev/build_wheels.sh linux-x86_64: zig, incremental in target/cross, checked by auditwheel);
#   2. creates a new venv (python3, or $PYTHON) and installs the wheel with
#      `pip --no-index --only-binary :all:` (no compiler, no sdist, no index at install time),
#      its one dependency numpy from a folder filled by `pip download` (pip's cache is kept, so a
#      warm machine downloads nothing; numpy is pinned to .venv's version when there is one);
#   3. runs tests/wheel/roundtrip.py with that venv's python, from outside the checkout:
#      round trips with every codec, the reference files, the `raiiaf` console script.
# Why zig rather than a native `maturin build`: the native wheel needs GLIBC_2.34 and is not the
# artefact that is released; the zig build costs ~4-5 min cold on 2 cores, seconds when warm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
WORK=$ROOT/target/wheel-test
PY=${PYTHON:-python3}

bash dev/build_wheels.sh linux-x86_64
# shellcheck disable=SC2012  # our own file names
whl=$(ls -t target/wheels-dist/raiiaf_rs-*-manylinux*_x86_64.whl | head -n 1)

rm -rf "$WORK"
mkdir -p "$WORK/deps" "$WORK/run"
"$PY" -m venv "$WORK/venv"
numpy_req="numpy>=1.21"
if [ -x .venv/bin/python ] && v=$(.venv/bin/python -c 'import numpy; print(numpy.__version__)' 2>/dev/null); then
    numpy_req="numpy==$v"
fi
"$WORK/venv/bin/python" -m pip download --quiet --disable-pip-version-check --retries 5 \
    --only-binary :all: -d "$WORK/deps" "$numpy_req"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --only-binary :all: --find-links "$WORK/deps" "$whl"
echo "wheel-test: installed $(basename "$whl") into $WORK/venv ($("$WORK/venv/bin/python" --version))"
cd "$WORK/run"
"$WORK/venv/bin/python" "$ROOT/tests/wheel/roundtrip.py" "$ROOT/tests/data/vectors/reference-1.1.0"
