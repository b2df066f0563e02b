#!/usr/bin/env bash
# Idempotent set-up of a real ComfyUI 0.33.0 (upstream release commit 2f35f4a, Aug 2026; CPU,
# headless) for `make comfyui-latest-test`, which runs the tests/comfyui suite against it as
# well as against the 0.3.75 of dev/setup_comfyui.sh. Needs the project's .venv (make setup).
# Into $HOSTS_DIR/comfyui-0.33.0 (dev/hosts.sh):
#   ComfyUI/  the code-only snapshot $(host_source comfyui-latest/ComfyUI-0.33.0-2f35f4a.tar.gz)
#             (ComfyUI core is on no package registry), re-unpacked only when its sha256 changes
#   venv/     its Python: the project's .venv with the packages of the lock file
#             comfyui-latest/comfyui-0.33.0-cpu-lock.txt that .venv lacks or has in another
#             version layered on top (about 60 MB), instead of a second multi-GB torch
#             download: both pin torch 2.14.1. The venv's own site-packages come first on
#             sys.path; a .pth file appends .venv's (with its .pth files, so raiiaf_rs is
#             importable in the server as it is in the tests). Only the pins it does not see
#             are installed (--no-deps: the lock is complete), and the result is checked
#             against every pin of the lock. A venv already holding the whole lock (made by
#             the snapshot's own setup script) is reused as it is.
# The tiny checkpoint is the project's (.comfyui/models, dev/setup_comfyui.sh): the tests
# link it into each server's throw-away base directory.
# With arguments, runs them afterwards with COMFYUI_PATH and COMFYUI_PYTHON naming the tree
# and its Python (tests/comfyui/harness.py), e.g.
#   bash dev/setup_comfyui_latest.sh .venv/bin/python -m pytest tests/comfyui
# Any failure exits non-zero: the tests must fail, never skip, when the host cannot be set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=dev/hosts.sh
source dev/hosts.sh
export OMP_NUM_THREADS=1

VERSION=0.33.0
NAME=ComfyUI-0.33.0-2f35f4a
TARBALL_SHA256=bb300155dd1e699ef9f0ac6d0e789a1ba8e36add669c7ea13879bef6bcfb1d84
DEST=$HOSTS_DIR/comfyui-$VERSION
TREE=$DEST/ComfyUI
HOST_VENV=$DEST/venv
HOST_PY=$HOST_VENV/bin/python
PROJECT_PY=.venv/bin/python

say() { printf 'setup-comfyui-latest: %s\n' "$*"; }
die() {
    printf 'setup-comfyui-latest: ERROR: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

[ -x "$PROJECT_PY" ] || die ".venv not found: run make setup first"
tarball=$(host_source "comfyui-latest/$NAME.tar.gz") || exit 1
lock=$(host_source "comfyui-latest/comfyui-$VERSION-cpu-lock.txt") || exit 1
mkdir -p "$DEST"
# Another set-up of this host (started in the background) finishes first.
if declare -F host_lock >/dev/null; then host_lock "comfyui-$VERSION"; fi

# --- 1. the ComfyUI tree --------------------------------------------------------------------
if [ "$(cat "$TREE/.tarball-sha256" 2>/dev/null)" = "$TARBALL_SHA256" ] && [ -f "$TREE/main.py" ]; then
    say "ComfyUI $VERSION tree up to date"
else
    [ "$(sha256sum "$tarball" | cut -d' ' -f1)" = "$TARBALL_SHA256" ] ||
        die "$tarball is not the expected snapshot (sha256 differs)"
    say "unpacking $NAME"
    tmp=$(mktemp -d "$DEST/.unpack.XXXXXX")
    tar -xzf "$tarball" -C "$tmp"
    grep -q "__version__ = \"$VERSION\"" "$tmp/$NAME/comfyui_version.py" ||
        die "$tarball does not hold ComfyUI $VERSION"
    rm -rf "$TREE"
    mv "$tmp/$NAME" "$TREE"
    rmdir "$tmp"
    echo "$TARBALL_SHA256" >"$TREE/.tarball-sha256"
fi

# --- 2. its Python ----------------------------------------------------------------------------
if ! "$HOST_PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    say "creating $HOST_VENV on .venv's Python"
    rm -rf "$HOST_VENV"
    # Made by .venv's python: the same base interpreter (3.11, as the lock file was made with).
    "$PROJECT_PY" -m venv --without-pip "$HOST_VENV"
fi
site=$("$HOST_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
project_site=$(readlink -m "$("$PROJECT_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")
printf 'import site; site.addsitedir(%s)\n' "'$project_site'" >"$site/_raiiaf_project_venv.pth"

# The pins of the lock this Python does not see (own packages first, then .venv's).
missing() { "$HOST_PY" dev/lock_missing.py "$lock"; }
todo=$(missing)
if [ -n "$todo" ]; then
    say "installing into $HOST_VENV: $(echo "$todo" | wc -l) pins of $(basename "$lock") that .venv lacks"
    # .venv's pip, run by this Python: it installs here. A package .venv has in another
    # version is shadowed, not removed ("outside environment").
    pins=$(mktemp)
    echo "$todo" >"$pins"
    # shellcheck disable=SC2086
    "$HOST_PY" -m pip install --quiet --disable-pip-version-check --progress-bar off \
        --retries 5 --no-deps ${PIP_ARGS:-} -r "$pins" ||
        die "pip could not install the pins of $lock"
    rm -f "$pins"
    todo=$(missing)
    [ -z "$todo" ] || die "still not as pinned in $lock after installing: $todo"
else
    say "$HOST_VENV matches $(basename "$lock")"
fi
# What the server and its built-in nodes import at start-up, and the pack's library.
"$HOST_PY" -W ignore -c 'import aiohttp, av, comfy_aimdo, comfy_kitchen, comfyui_frontend_package
import raiiaf_rs, safetensors, torch, torchaudio, transformers' ||
    die "ComfyUI $VERSION's Python ($HOST_PY) cannot import its packages or raiiaf_rs"
say "done: COMFYUI_PATH=$TREE COMFYUI_PYTHON=$HOST_PY"

if [ $# -gt 0 ]; then
    trap - ERR
    export COMFYUI_PATH=$TREE COMFYUI_PYTHON=$HOST_PY
    exec "$@"
fi
