#!/usr/bin/env bash
# The cross-built artefacts run on this x86_64 Linux machine under emulation (optional, slow:
# not part of `make test`; `make wheels` builds, this runs).
#   aarch64-wheel       the aarch64 wheel (default: newest in target/wheels-dist) under qemu-user:
#                       Debian bookworm's arm64 python3.11 and libc (`apt-get download`, the arm64
#                       dpkg architecture added for the download and removed again) extracted into
#                       target/emulated/arm64-root; numpy (manylinux2014_aarch64) and the wheel
#                       installed by pip --target --platform; tests/wheel/roundtrip.py --no-cli run
#                       by `qemu-aarch64 -L` (round trips, reference files, the CLI in-process).
#   aarch64-cargo-test  `cargo test` for aarch64-unknown-linux-gnu: Debian's cross gcc links,
#                       qemu-aarch64 runs each test binary.
#   windows-cargo-test  `cargo test` for x86_64-pc-windows-gnu: mingw-w64 links, wine runs each
#                       test binary (.exe) in its own prefix, target/emulated/wineprefix (with a
#                       stand-in bcryptprimitives.dll where wine lacks one: Debian's wine 8).
# Usage: bash tests/wheel/emulated_tests.sh [STEP...]   (default: all three)
# Needs (installed here if missing, apt): qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
# gcc-mingw-w64-x86-64, wine. Cargo builds go to target/cross-test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
WORK=$ROOT/target/emulated
CARGO_DIR=${EMULATED_TARGET_DIR:-$ROOT/target/cross-test}
TOOLS=${WHEELS_TOOLS_VENV:-$ROOT/.venv-wheels}

say() { printf 'emulated: %s\n' "$*"; }
die() { printf 'emulated: ERROR: %s\n' "$*" >&2; exit 1; }
apt_install() { # command, packages...
    command -v "$1" >/dev/null 2>&1 && return 0
    shift
    say "installing $* (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
steps=("$@")
((${#steps[@]})) || steps=(aarch64-wheel aarch64-cargo-test windows-cargo-test)
declare -A took=()

aarch64_wheel() {
    apt_install qemu-aarch64 qemu-user
    local whl=${WHEEL:-} rootfs=$WORK/arm64-root site=$WORK/arm64-site added=
    [ -n "$whl" ] || whl=$(find target/wheels-dist -name 'raiiaf_rs-*manylinux*_aarch64.whl' \
        -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    [ -f "$whl" ] || die "no aarch64 wheel (bash dev/build_wheels.sh linux-aarch64)"
    if [ ! -x "$rootfs/usr/bin/python3.11" ]; then
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            dpkg --add-architecture arm64
            added=1
        fi
        apt-get update -qq
        rm -rf "$WORK/arm64-debs" "$rootfs"
        mkdir -p "$WORK/arm64-debs" "$rootfs"
        # python3.11 and what its interpreter and the modules the test imports load
        (cd "$WORK/arm64-debs" && apt-get download -qq \
            libc6:arm64 libgcc-s1:arm64 python3.11-minimal:arm64 libpython3.11-minimal:arm64 \
            libpython3.11-stdlib:arm64 libexpat1:arm64 zlib1g:arm64 libffi8:arm64 libssl3:arm64 \
            libbz2-1.0:arm64 liblzma5:arm64 libuuid1:arm64 libcrypt1:arm64 libsqlite3-0:arm64 \
            libncursesw6:arm64 libtinfo6:arm64 libreadline8:arm64) 2> >(grep -v unsandboxed >&2)
        if [ -n "$added" ]; then
            dpkg --remove-architecture arm64
            apt-get update -qq
        fi
        for deb in "$WORK"/arm64-debs/*.deb; do dpkg -x "$deb" "$rootfs"; done
    fi
    rm -rf "$site"
    local pip=("$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --target "$site"
        --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp --only-binary :all:)
    "${pip[@]}" --retries 5 "numpy>=1.21"
    "${pip[@]}" --no-index --no-deps "$whl"
    say "$(basename "$whl") under qemu-aarch64 with Debian's arm64 python3.11"
    mkdir -p "$WORK/run"
    (cd "$WORK/run" && PYTHONPATH=$site qemu-aarch64 -L "$rootfs" "$rootfs/usr/bin/python3.11" \
        "$ROOT/tests/wheel/roundtrip.py" --no-cli "$ROOT/tests/data/vectors/reference-1.1.0")
}

aarch64_cargo_test() {
    apt_install qemu-aarch64 qemu-user
    apt_install aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
        rustup target add aarch64-unknown-linux-gnu
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
        nice -n 10 cargo test --target aarch64-unknown-linux-gnu --target-dir "$CARGO_DIR"
}

windows_cargo_test() {
    apt_install x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64
    apt_install wine wine wine64
    rustup target list --installed | grep -qx x86_64-pc-windows-gnu ||
        rustup target add x86_64-pc-windows-gnu
    export WINEPREFIX=$WORK/wineprefix WINEDEBUG=-all
    mkdir -p "$WORK" # wine makes the prefix itself, in an existing folder
    local sys32=$WINEPREFIX/drive_c/windows/system32
    [ -d "$sys32" ] || wine wineboot --init >/dev/null 2>&1 || true
    if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
        # Rust's std (>= 1.78) takes random bytes from bcryptprimitives.dll's ProcessPrng,
        # which Debian bookworm's wine 8 lacks: a stand-in on RtlGenRandom, in this prefix only.
        say "wine has no bcryptprimitives.dll: building a ProcessPrng stand-in into the prefix"
        mkdir -p "$WORK/bcryptprimitives"
        cat >"$WORK/bcryptprimitives/bcp.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
C
        printf 'LIBRARY bcryptprimitives\nEXPORTS\n    ProcessPrng\n' >"$WORK/bcryptprimitives/bcp.def"
        x86_64-w64-mingw32-gcc -O2 -shared -o "$sys32/bcryptprimitives.dll" \
            "$WORK/bcryptprimitives/bcp.c" "$WORK/bcryptprimitives/bcp.def" -ladvapi32
    fi
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
        nice -n 10 cargo test --target x86_64-pc-windows-gnu --target-dir "$CARGO_DIR"
}

for step in "${steps[@]}"; do
    start=$SECONDS
    case $step in
        aarch64-wheel) aarch64_wheel ;;
        aarch64-cargo-test) aarch64_cargo_test ;;
        windows-cargo-test) windows_cargo_test ;;
        *) die "unknown step '$step' (aarch64-wheel, aarch64-cargo-test, windows-cargo-test)" ;;
    esac
    took[$step]=$((SECONDS - start))
done
for step in "${steps[@]}"; do say "$step passed (${took[$step]} s)"; done
