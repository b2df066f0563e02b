#!/usr/bin/env bash
# Idempotent set-up of the diffusers host's venvs for `make diffusers-test`: one per lock
# file dev/diffusers/diffusers-<version>-lock.txt (0.42.1, current on PyPI; 0.35.2, the
# oldest raiiaf_rs.diffusers supports). Needs the project's .venv (make setup).
# Into $HOSTS_DIR/diffusers-<version>/venv (dev/hosts.sh), each made the way
# dev/setup_comfyui_latest.sh makes ComfyUI's: a venv of .venv's Python whose own
# site-packages come first, then .venv's (a .pth file appends them, with their .pth files,
# so torch, transformers and raiiaf_rs are .venv's: a few MB instead of a second torch).
# Only the pins of the lock it does not see are installed (--no-deps: the lock is complete
# with .venv), then every pin is checked and the Stable Diffusion pipelines and
# DPMSolverSDEScheduler (torchsde) must import.
#   bash dev/setup_diffusers.sh            set up every version
#   bash dev/setup_diffusers.sh --test ARGS  set up, then run `pytest tests/diffusers ARGS`
#                                         with each venv's Python (exit code 5, nothing
#                                         collected, is a failure)
# Any failure exits non-zero: the tests must fail, never skip, when the host cannot be set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=dev/hosts.sh
source dev/hosts.sh
export OMP_NUM_THREADS=1

PROJECT_PY=.venv/bin/python
say() { printf 'setup-diffusers: %s\n' "$*"; }
die() {
    printf 'setup-diffusers: ERROR: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR
[ -x "$PROJECT_PY" ] || die ".venv not found: run make setup first"
project_site=$(readlink -m "$("$PROJECT_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")

# missing PY LOCK: the pins of LOCK that PY does not see (own packages first, then .venv's).
missing() { "$1" dev/lock_missing.py "$2"; }

# setup_one LOCK: the venv of one lock file; prints its Python.
setup_one() {
    local lock=$1 version venv py site todo pins stamp
    version=$(basename "$lock" -lock.txt)
    version=${version#diffusers-}
    venv=$HOSTS_DIR/diffusers-$version/venv
    py=$venv/bin/python
    mkdir -p "$HOSTS_DIR/diffusers-$version"
    if declare -F host_lock >/dev/null; then host_lock "diffusers-$version"; fi
    if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        say "creating $venv on .venv's Python" >&2
        rm -rf "$venv"
        "$PROJECT_PY" -m venv --without-pip "$venv"
    fi
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf 'import site; site.addsitedir(%s)\n' "'$project_site'" >"$site/_raiiaf_project_venv.pth"
    todo=$(missing "$py" "$lock")
    if [ -n "$todo" ]; then
        say "installing into $venv: $(echo "$todo" | wc -l) pins of $(basename "$lock")" >&2
        pins=$(mktemp)
        echo "$todo" >"$pins"
        # .venv's pip, run by this Python: it installs here, shadowing (never removing)
        # a package .venv has in another version.
        # shellcheck disable=SC2086
        "$py" -m pip install --quiet --disable-pip-version-check --progress-bar off \
            --retries 5 --no-deps ${PIP_ARGS:-} -r "$pins" >&2 ||
            die "pip could not install the pins of $lock"
        rm -f "$pins"
        todo=$(missing "$py" "$lock")
        [ -z "$todo" ] || die "still not as pinned in $lock after installing: $todo"
    else
        say "$venv matches $(basename "$lock")" >&2
    fi
    # The import check (torch, transformers: seconds) once per lock; its stamp is the lock's hash.
    stamp=$venv/.checked-lock.sha256
    if [ "$(cat "$stamp" 2>/dev/null)" = "$(sha256sum "$lock" | cut -d' ' -f1)" ] && [ -z "$todo" ]; then
        echo "$py"
        return 0
    fi
    rm -f "$stamp"
    "$py" -W ignore -c "import diffusers
assert diffusers.__version__ == '$version', diffusers.__version__
from diffusers import (StableDiffusionPipeline, StableDiffusionXLPipeline,
    StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline, DPMSolverSDEScheduler)
import torchsde, raiiaf_rs" >&2 ||
        die "diffusers $version's Python ($py) cannot import diffusers $version, its pipelines, torchsde or raiiaf_rs"
    sha256sum "$lock" | cut -d' ' -f1 >"$stamp"
    echo "$py"
}

test_mode=0
if [ "${1:-}" = --test ]; then
    test_mode=1
    shift
fi
pythons=()
for lock in dev/diffusers/diffusers-*-lock.txt; do
    pythons+=("$(setup_one "$lock")")
done
[ "$test_mode" = 1 ] || exit 0
trap - ERR
rc=0
for py in "${pythons[@]}"; do
    say "pytest tests/diffusers with $py"
    # The checkout's raiiaf_rs (python/) first, as the other test targets import it.
    r=0
    PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH} "$py" -m pytest tests/diffusers "$@" || r=$?
    if [ "$r" -eq 5 ]; then
        echo "setup-diffusers: ERROR: pytest collected no tests with $py" >&2
    fi
    [ "$r" -eq 0 ] || rc=1
done
exit "$rc"
