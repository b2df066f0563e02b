#!/usr/bin/env bash
# Idempotent developer/CI set-up for raiiaf-rs. Fast when everything is done.
#   1. system packages the build needs: a C compiler (zstd-sys and mimalloc compile C; nothing
#      needs cmake or libclang) and Python's venv module; a Java 17+ runtime for the catalog's
#      Spark tests (pyspark runs Spark in a JVM)
#   2. Python venv at .venv (python3 >= 3.9; override with PYTHON=...)
#   3. Python deps from tests/requirements.txt (re-installed only when that file changes)
#   4. the extension, built into the venv with `maturin develop --release`
#      (re-built only when Cargo.*, pyproject.toml, crates/, bindings/ or python/ change)
#   5. ComfyUI 0.3.75, its deps and the tiny test model (dev/setup_comfyui.sh)
#   6. Debian's chromium for the front-end tests (dev/setup_browser.sh)
# Stamps live inside .venv, so deleting .venv starts over. .venv, target/, .comfyui/ and the
# other build outputs are links into a cache outside the checkout (dev/cache.sh), so that a
# fresh clone reuses them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1
# shellcheck source=dev/cache.sh
source dev/cache.sh
cache_link .venv venv
cache_link .venv-torch venv-torch
cache_link .venv-wheels venv-wheels
cache_link .comfyui comfyui
cache_link target target
cache_link fuzz/target fuzz-target

VENV=.venv
REQS=tests/requirements.txt
REQ_STAMP=$VENV/.requirements.sha256
BUILD_STAMP=$VENV/.build.sha256

say() { printf 'setup: %s\n' "$*"; }

# --- 1. system packages ------------------------------------------------------
# Each check runs what the build runs, rather than looking for a file that merely looks
# like the right library: a C compiler that compiles, a Python that can make a venv.
have_cc() {
    local dir rc
    dir=$(mktemp -d)
    printf 'int main(void) { return 0; }\n' >"$dir/t.c"
    "${CC:-cc}" "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 && "$dir/t"
    rc=$?
    rm -rf "$dir"
    return $rc
}
PYTHON=${PYTHON:-python3}
missing=()
have_cc || missing+=(gcc libc6-dev)
if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
else
    missing+=(python3 python3-venv)
fi
# Spark 4 needs Java 17 or newer: run it rather than trust `command -v java`.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
[ "$(java_major 2>/dev/null || echo 0)" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
if ((${#missing[@]})); then
    say "installing system packages: ${missing[*]}"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
for tool in cargo rustc; do
    command -v "$tool" >/dev/null 2>&1 || { say "ERROR: $tool not found (install Rust via rustup)"; exit 1; }
done

# --- 2. virtual environment ---------------------------------------------------
if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
        { say "ERROR: $PYTHON is older than 3.9"; exit 1; }
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    real=$(real_path "$VENV")
    rm -rf "$real"
    "$PYTHON" -m venv "$real"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi

# --- 3. Python dependencies ---------------------------------------------------
# NODEPS: packages whose declared deps conflict with the pins (k-diffusion wants numpy<2
# through dctorch); installed with --no-deps, their real imports pinned in $REQS.
NODEPS=tests/a1111/requirements-nodeps.txt
req_hash=$(cat "$REQS" "$NODEPS" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_hash" ]; then
    say "installing $REQS (first time includes torch, several GB: minutes)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
        --retries 5 -r "$REQS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
        --retries 5 --no-deps -r "$NODEPS"
    echo "$req_hash" >"$REQ_STAMP"
else
    say "python deps up to date"
fi

# --- 4. the extension -----------------------------------------------------------
# The checkout's path is part of it: the editable install points into this checkout, and the
# venv may be shared with another one (dev/cache.sh).
build_hash="$(bash dev/build_inputs_hash.sh) $PWD"
if [ "$(cat "$BUILD_STAMP" 2>/dev/null)" != "$build_hash" ] ||
    ! compgen -G 'python/raiiaf_rs/_raiiaf_rs*.so' >/dev/null; then
    say "building the extension (maturin develop --release)"
    rm -f "$BUILD_STAMP"
    VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release
    "$VENV/bin/python" -c 'import raiiaf_rs._raiiaf_rs'
    echo "$build_hash" >"$BUILD_STAMP"
else
    say "extension up to date"
fi

# --- 5. a real ComfyUI 0.3.75 for the node-pack tests and the demo ------------------
bash dev/setup_comfyui.sh

# --- 6. a browser for the front-end tests (system chromium, driven by Playwright) ----
bash dev/setup_browser.sh
say "done"
