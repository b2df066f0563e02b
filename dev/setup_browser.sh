#!/usr/bin/env bash
# Idempotent set-up of the browser for the front-end tests (tests/comfyui/test_frontend.py):
# Debian's `chromium` package, driven by Playwright for Python (pinned in
# tests/requirements.txt, installed by dev/setup.sh). Playwright never downloads a
# browser here: the tests launch the system Chromium by path (executable_path).
# Also extracts a current ComfyUI front end (tests/comfyui/frontend-current.txt) into
# .comfyui/frontend-current, served by a second test server with --front-end-root.
# Called at the end of dev/setup.sh; fast when done. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
FRONT_REQ=tests/comfyui/frontend-current.txt
FRONT=.comfyui/frontend-current
FRONT_STAMP=$FRONT/.raiiaf-extracted.sha256
say() { printf 'setup-browser: %s\n' "$*"; }
die() {
    printf 'setup-browser: ERROR: %s\n' "$*" >&2
    exit 1
}

if ! command -v chromium >/dev/null 2>&1; then
    say "installing Debian's chromium (apt)"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq || die "apt-get update failed"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium >/dev/null || die "apt-get could not install chromium"
fi
# The launcher script prints shell noise on some machines; the version line is what counts.
version=$(chromium --version 2>/dev/null | grep -i chromium) || die "chromium does not run"
"$PY" -c 'import playwright.sync_api' 2>/dev/null ||
    die "the playwright package is missing from .venv (tests/requirements.txt; run dev/setup.sh)"
say "$version; playwright $("$PY" -c 'from importlib.metadata import version; print(version("playwright"))')"

# A current front end: the static/ tree of the pinned wheel, nothing installed.
front_hash=$(sha256sum "$FRONT_REQ" | cut -d' ' -f1)
if [ "$(cat "$FRONT_STAMP" 2>/dev/null)" = "$front_hash" ] && [ -f "$FRONT/static/index.html" ]; then
    say "current front end up to date"
else
    say "downloading the current ComfyUI front end (hash-checked)"
    mkdir -p .comfyui
    tmp=$(mktemp -d .comfyui/.tmp-front.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r "$FRONT_REQ" -d "$tmp/wheel" || die "could not download the front end in $FRONT_REQ"
    "$PY" dev/extract_wheel_tree.py "$tmp/wheel" comfyui_frontend_package/static/ \
        "$tmp/front/static" || die "could not extract the front end"
    [ -f "$tmp/front/static/index.html" ] || die "the front-end wheel has no static/index.html"
    rm -rf "$FRONT"
    mv "$tmp/front" "$FRONT"
    echo "$front_hash" >"$FRONT_STAMP"
    rm -rf "$tmp"
    trap - EXIT
    say "front end $(sed -n 's/^comfyui-frontend-package==\([^ ]*\).*/\1/p' "$FRONT_REQ") in $FRONT"
fi
