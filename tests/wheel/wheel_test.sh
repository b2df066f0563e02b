#!/usr/bin/env bash
# `make wheel-test`: the shipped Linux wheel, installed the way a user installs it, then used,
# under every CPython >= 3.9 this machine has.
#   1. builds the manylinux2014 x86_64 abi3 wheel exactly as `make wheels` does
#      (dev/build_wheels.sh linux-x86_64: zig, incremental in target/cross, checked by auditwheel);
#   2. per interpreter: a new venv, numpy from PyPI (pip's cache is kept, so a warm machine
#      downloads nothing), then the wheel with `pip --no-index --only-binary :all:` (no compiler,
#      no sdist, no index for raiiaf-rs);
#   3. tests/wheel/roundtrip.py run by that venv's python, from outside the checkout: round trips
#      with every codec, the reference files, the `raiiaf` console script; once more with
#      numpy 1.x in the oldest interpreter's venv.
# Interpreters: $WHEEL_TEST_PYTHONS (space-separated) or else python3 plus every other CPython
# found as /usr/bin/python3.N, python3.N on PATH or a pyenv version (~/.pyenv/versions/*), one
# per version. Debian bookworm alone has 3.11 only; nothing here downloads an interpreter.
# Why zig rather than a native `maturin build`: the native wheel needs GLIBC_2.34 and is not the
# artefact that is released; the zig build costs ~4-5 min cold on 2 cores, seconds when warm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
WORK=$ROOT/target/wheel-test

bash dev/build_wheels.sh linux-x86_64
# shellcheck disable=SC2012  # our own file names
whl=$(ls -t target/wheels-dist/raiiaf_rs-*-manylinux*_x86_64.whl | head -n 1)

declare -A by_version=()
pythons=()
add_python() { # candidate: kept if it runs, is CPython >= 3.9 and its version is new to the list
    local v
    v=$("$1" -c 'import sys, platform
ok = platform.python_implementation() == "CPython" and sys.version_info >= (3, 9)
print("%d.%d" % sys.version_info[:2] if ok else "")' 2>/dev/null) || return 0
    [ -n "$v" ] && [ -z "${by_version[$v]:-}" ] || return 0
    by_version[$v]=$1
    pythons+=("$1")
}
if [ -n "${WHEEL_TEST_PYTHONS:-}" ]; then
    for p in $WHEEL_TEST_PYTHONS; do add_python "$p"; done
else
    add_python python3
    for p in /usr/bin/python3.[0-9]* "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3; do
        [[ $p == *-config ]] || { [ -x "$p" ] && add_python "$p"; }
    done
    for v in 9 10 11 12 13 14 15; do
        p=$(command -v "python3.$v" 2>/dev/null) && add_python "$p"
    done
fi
((${#pythons[@]})) || { echo "wheel-test: ERROR: no CPython >= 3.9 found" >&2; exit 1; }
pythons=()
while read -r v; do pythons+=("${by_version[$v]}"); done < <(printf '%s\n' "${!by_version[@]}" | sort -V)

rm -rf "$WORK"
mkdir -p "$WORK/run"
results=()
for py in "${pythons[@]}"; do
    v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv=$WORK/venv-$v
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 5 \
        --only-binary :all: "numpy>=1.21"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
        --only-binary :all: "$whl"
    echo "wheel-test: $(basename "$whl") in a new venv of $py ($("$venv/bin/python" --version))"
    (cd "$WORK/run" && "$venv/bin/python" "$ROOT/tests/wheel/roundtrip.py" \
        "$ROOT/tests/data/vectors/reference-1.1.0")
    results+=("$v")
done
# numpy 1.x too (the wheel says numpy>=1.21): once, in the venv of the oldest CPython <= 3.12.
oldest=$(printf '%s\n' "${results[@]}" | sort -V | head -n 1)
if [ "$(printf '%s\n' "$oldest" 3.12 | sort -V | head -n 1)" = "$oldest" ]; then
    "$WORK/venv-$oldest/bin/python" -m pip install --quiet --disable-pip-version-check --retries 5 \
        --only-binary :all: "numpy>=1.21,<2"
    (cd "$WORK/run" && "$WORK/venv-$oldest/bin/python" "$ROOT/tests/wheel/roundtrip.py" \
        "$ROOT/tests/data/vectors/reference-1.1.0")
    results+=("$oldest+numpy1")
fi
echo "wheel-test: the wheel passed under CPython ${results[*]}"
