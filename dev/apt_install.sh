#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (idempotent: nothing to do,
# no apt call). Used by the set-up steps that need system tools, e.g. cross C compilers:
#   bash dev/apt_install.sh gcc-mingw-w64-x86-64 gcc-aarch64-linux-gnu
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
((${#missing[@]})) || exit 0
echo "apt_install: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
