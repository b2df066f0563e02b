# Sourced by the set-up scripts: build outputs and venvs live outside the checkout, so that a
# fresh clone (CI clones anew for every run) reuses them instead of downloading torch and
# compiling every Rust configuration again.
#
# RAIIAF_CACHE_DIR  the folder holding them; default ~/.cache/raiiaf-rs. Set it to `off` to keep
#                   everything inside the checkout, as plain folders.
#
# Each cached path of the checkout (.venv, target, ...) becomes a link to a folder there. A path
# that already exists as a real folder is left alone: a checkout keeps what it built itself.
# Everything kept there is guarded by the stamps the set-up scripts already write (requirement
# hashes, build-input hashes including the checkout's own path where an install points into it),
# so a checkout never uses another one's stale build.
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${RAIIAF_CACHE_DIR:-${HOME:-/root}/.cache/raiiaf-rs}

# cache_link PATH NAME: make the checkout's PATH a link to $CACHE_DIR/NAME (created empty).
cache_link() {
    local path=$REPO_DIR/$1 dest=$CACHE_DIR/$2
    [ "$CACHE_DIR" != off ] || return 0
    if [ -L "$path" ]; then
        mkdir -p "$(readlink "$path")"
        return 0
    fi
    [ ! -e "$path" ] || return 0
    mkdir -p "$dest" "$(dirname "$path")"
    ln -s "$dest" "$path"
}

# real_path PATH: where PATH really is (venvs are created there, so that their scripts name a
# path that stays valid whichever checkout links to them).
real_path() { readlink -m "$1"; }
