# Sourced by the set-up scripts of the real hosts the tests run (dev/setup_*.sh): where their
# sources come from and where they are installed.
#
# RAIIAF_HOST_SOURCES  the folder holding the host snapshots that no package registry carries
#                      (code-only tarballs of AUTOMATIC1111 1.10.1, Forge Classic and ComfyUI
#                      0.33.0, with pip lock files): GPL/AGPL code, never committed here. CI
#                      lays that folder beside the checkout as `shared/`, which is the default.
# RAIIAF_HOSTS_DIR     where the hosts (trees, venvs, tiny models) are installed: outside the
#                      checkout, so a fresh clone reuses them (each is keyed by its lock file's
#                      hash and re-installed when that changes). Default ~/.cache/raiiaf-rs/hosts.
_raiiaf_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST_SOURCES=${RAIIAF_HOST_SOURCES:-$(dirname "$_raiiaf_repo")/shared}
HOSTS_DIR=${RAIIAF_HOSTS_DIR:-${HOME:-/root}/.cache/raiiaf-rs/hosts}

# host_source SUBPATH: the path of a file or folder in HOST_SOURCES, or a clear error.
host_source() {
    local p="$HOST_SOURCES/$1"
    if [ ! -e "$p" ]; then
        printf 'ERROR: %s not found: the real-host tests need the host snapshots (set RAIIAF_HOST_SOURCES to the folder holding them)\n' "$p" >&2
        return 1
    fi
    printf '%s\n' "$p"
}

# host_python VERSION: a CPython of that minor version (PATH, then pyenv), or a clear error.
host_python() {
    local v=$1 c
    for c in "python$v" "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/"$v".*/bin/python"$v"; do
        if "$c" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" \
            >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || printf '%s\n' "$c"
            return 0
        fi
    done
    printf 'ERROR: no Python %s found (PATH or pyenv); the host needs it\n' "$v" >&2
    return 1
}
