# Sourced by the set-up scripts of the real hosts the tests run (dev/setup_*.sh): where their
# sources come from and where they are installed.
#
# RAIIAF_HOST_SOURCES  the folder holding the host snapshots that no package registry carries
#                      (code-only tarballs of AUTOMATIC1111 1.10.1, Forge Classic and ComfyUI
#                      0.33.0, with pip lock files): GPL/AGPL code, never committed here. CI
#                      lays that folder beside the checkout as `shared/`, which is the default.
# RAIIAF_HOSTS_DIR     where the hosts (trees, venvs, tiny models) are installed: outside the
#                      checkout, so a fresh clone reuses them (each is keyed by its lock file's
#                      hash and re-installed when that changes). Default $CACHE_DIR/hosts
#                      (dev/cache.sh).
# shellcheck source=dev/cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/cache.sh"
HOST_SOURCES=${RAIIAF_HOST_SOURCES:-$(dirname "$REPO_DIR")/shared}
if [ "$CACHE_DIR" = off ]; then
    HOSTS_DIR=${RAIIAF_HOSTS_DIR:-$REPO_DIR/.hosts}
else
    HOSTS_DIR=${RAIIAF_HOSTS_DIR:-$CACHE_DIR/hosts}
fi

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

# host_lock NAME: hold an exclusive lock on this host's installation until the calling script
# exits, so that a set-up started in the background (dev/setup_hosts.sh) and the same set-up run
# by a test target never install at once: the second one waits, then finds everything done.
host_lock() {
    mkdir -p "$HOSTS_DIR"
    exec {_raiiaf_lock_fd}>"$HOSTS_DIR/.$1.lock"
    if ! flock -n "$_raiiaf_lock_fd"; then
        printf 'waiting for another set-up of %s to finish (lock %s)\n' "$1" "$HOSTS_DIR/.$1.lock" >&2
        flock "$_raiiaf_lock_fd"
    fi
}
