#!/usr/bin/env bash
# The release artefacts of raiiaf-rs, cross-built on one Linux x86_64 machine and checked (`make wheels`):
#   linux-x86_64    cp39-abi3-manylinux_2_17_x86_64   maturin --zig
#   linux-aarch64   cp39-abi3-manylinux_2_17_aarch64  maturin --zig --target aarch64-unknown-linux-gnu
#   windows-x86_64  cp39-abi3-win_amd64               Debian's mingw-w64, pyo3's python3.dll import lib
#   sdist           raiiaf_rs-<version>.tar.gz
# abi3: one wheel per platform for every CPython >= 3.9. Why zig: a plain `maturin build` links
# this machine's glibc and the extension then needs GLIBC_2.34, too new for manylinux2014; zig
# (the `ziglang` PyPI package) links against glibc 2.17. macOS needs Apple's SDK (sysinfo links
# CoreFoundation and IOKit), so its wheels come from .github/workflows/release.yml only.
#
# Usage: bash dev/build_wheels.sh [linux-x86_64|linux-aarch64|windows-x86_64|sdist ...]  (default: all)
# Out:   target/wheels-dist/ (a target's previous artefact is replaced); cargo builds in target/cross
#        (its own dir, so the in-place `maturin develop` build is not invalidated).
# Tools, set up idempotently: .venv-wheels (pinned maturin, ziglang, auditwheel), the rustup
# targets, Debian's gcc-mingw-w64-x86-64 and binutils-mingw-w64-x86-64.
# Checks per artefact: tags and contents (tests/wheel/check_wheel.py); `auditwheel show` for the
# Linux wheels (manylinux_2_17, no external library); for Windows the .pyd's imports (system DLLs
# and python3.dll only, no MinGW runtime DLL) and its PyInit__raiiaf_rs export. Prints a table;
# any failed build or check exits non-zero. Installing and running the wheels: tests/wheel/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1

OUT=${WHEELS_OUT:-target/wheels-dist}
CARGO_DIR=${WHEELS_TARGET_DIR:-target/cross}
TOOLS=${WHEELS_TOOLS_VENV:-.venv-wheels}
TOOL_PINS="maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2"
ALL_TARGETS=(linux-x86_64 linux-aarch64 windows-x86_64 sdist)
# DLLs a Windows install always has (lower case); anything else the .pyd imports fails the check.
SYSTEM_DLLS='^(python3|kernel32|ntdll|advapi32|bcrypt|bcryptprimitives|userenv|ws2_32|ole32|oleaut32|psapi|pdh|powrprof|iphlpapi|netapi32|secur32|shell32|user32|msvcrt|ucrtbase|dbghelp|version|setupapi|cfgmgr32|shlwapi|crypt32|synchronization|api-ms-win-[a-z0-9-]+)\.dll$'

say() { printf 'build_wheels: %s\n' "$*"; }
die() { printf 'build_wheels: ERROR: %s\n' "$*" >&2; exit 1; }

targets=("$@")
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (one of: ${ALL_TARGETS[*]})"
done
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }

# --- tools ----------------------------------------------------------------------------
if [ "$(cat "$TOOLS/.pins" 2>/dev/null)" != "$TOOL_PINS" ]; then
    say "setting up $TOOLS ($TOOL_PINS)"
    rm -rf "$(readlink -m "$TOOLS")"
    python3 -m venv "$(readlink -m "$TOOLS")"  # the real path: it may be a link (dev/cache.sh)
    # shellcheck disable=SC2086  # the pins are separate words
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --retries 5 $TOOL_PINS
    echo "$TOOL_PINS" >"$TOOLS/.pins"
fi
# maturin finds zig as `python -m ziglang` of the python first on PATH.
TOOLS=$(cd "$TOOLS" && pwd)
export PATH="$TOOLS/bin:$PATH"

rust_targets=()
wants linux-x86_64 && rust_targets+=(x86_64-unknown-linux-gnu)
wants linux-aarch64 && rust_targets+=(aarch64-unknown-linux-gnu)
wants windows-x86_64 && rust_targets+=(x86_64-pc-windows-gnu)
installed=$(rustup target list --installed)
for rt in "${rust_targets[@]}"; do
    grep -qx "$rt" <<<"$installed" || rustup target add "$rt" ||
        die "rustup target add $rt failed (it downloads the target's std from Rust's servers)"
done
if wants windows-x86_64; then
    bash dev/apt_install.sh gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64
fi

# --- build ------------------------------------------------------------------------------
mkdir -p "$OUT"
if [ -n "$(git status --porcelain -- crates bindings python Cargo.toml Cargo.lock pyproject.toml 2>/dev/null)" ]; then
    say "note: building uncommitted changes of the work tree (git status)"
fi
declare -A artefact seconds checks
maturin_build() { # target-name, extra maturin args...
    local name=$1 start
    shift
    start=$SECONDS
    say "building $name: maturin build --release --strip $*"
    nice -n 10 maturin build --release --strip --target-dir "$CARGO_DIR" -o "$OUT" "$@" ||
        die "$name: maturin build failed"
    seconds[$name]=$((SECONDS - start))
}
newest() { # glob: the newest match, or die
    local f
    # shellcheck disable=SC2012,SC2086  # names are ours (no spaces); the glob must expand
    f=$(ls -t $1 2>/dev/null | head -n 1)
    [ -n "$f" ] || die "no artefact matches $1"
    echo "$f"
}

if wants linux-x86_64; then
    rm -f "$OUT"/raiiaf_rs-*-manylinux*_x86_64.whl
    maturin_build linux-x86_64 --zig --compatibility manylinux2014 -i python3 \
        --target x86_64-unknown-linux-gnu
    artefact[linux-x86_64]=$(newest "$OUT/raiiaf_rs-*-manylinux*_x86_64.whl")
fi
if wants linux-aarch64; then
    rm -f "$OUT"/raiiaf_rs-*-manylinux*_aarch64.whl
    maturin_build linux-aarch64 --zig --compatibility manylinux2014 -i python3 \
        --target aarch64-unknown-linux-gnu
    artefact[linux-aarch64]=$(newest "$OUT/raiiaf_rs-*-manylinux*_aarch64.whl")
fi
if wants windows-x86_64; then
    rm -f "$OUT"/raiiaf_rs-*-win_amd64.whl
    # No Windows Python here: pyo3 generates the python3.dll import library itself, and
    # maturin knows the Windows sysconfig of the named version.
    maturin_build windows-x86_64 --target x86_64-pc-windows-gnu -i python3.12 \
        --features abi3,pyo3/generate-import-lib
    artefact[windows-x86_64]=$(newest "$OUT/raiiaf_rs-*-win_amd64.whl")
fi
if wants sdist; then
    rm -f "$OUT"/raiiaf_rs-*.tar.gz
    start=$SECONDS
    maturin sdist -o "$OUT" || die "maturin sdist failed"
    seconds[sdist]=$((SECONDS - start))
    artefact[sdist]=$(newest "$OUT/raiiaf_rs-*.tar.gz")
fi

# --- checks -----------------------------------------------------------------------------
check_linux() { # name, arch
    local whl=${artefact[$1]} report
    "$TOOLS/bin/python" tests/wheel/check_wheel.py "$whl" --platform "manylinux_2_17_$2" ||
        die "$1: tag/contents check failed"
    report=$(auditwheel show "$whl") || die "$1: auditwheel show failed"
    # auditwheel wraps its lines: join them before matching.
    report=$(tr '\n' ' ' <<<"$report")
    [[ $report == *"consistent with the following platform tag: \"manylinux_2_17_$2\""* ]] ||
        die "$1: auditwheel does not find it manylinux_2_17_$2: $report"
    [[ $report != *"following external shared libraries are required"* ]] ||
        die "$1: the wheel needs external shared libraries: $report"
    checks[$1]="tags+contents, auditwheel: manylinux_2_17_$2, no external libs"
}
check_windows() {
    local whl=${artefact[windows-x86_64]} dir dlls bad
    "$TOOLS/bin/python" tests/wheel/check_wheel.py "$whl" --platform win_amd64 ||
        die "windows-x86_64: tag/contents check failed"
    dir=$(mktemp -d)
    "$TOOLS/bin/python" -m zipfile -e "$whl" "$dir"
    x86_64-w64-mingw32-objdump -p "$dir/raiiaf_rs/_raiiaf_rs.pyd" >"$dir/objdump.txt"
    dlls=$(sed -n 's/^[[:space:]]*DLL Name: //p' "$dir/objdump.txt" | tr '[:upper:]' '[:lower:]' | sort -u)
    bad=$(grep -Ev "$SYSTEM_DLLS" <<<"$dlls" || true)
    grep -qx python3.dll <<<"$dlls" || bad+=" (no python3.dll import: not abi3)"
    grep -Eq '[[:space:]]PyInit__raiiaf_rs$' "$dir/objdump.txt" || bad+=" (no PyInit__raiiaf_rs export)"
    rm -rf "$dir"
    [ -z "$bad" ] || die "windows-x86_64: .pyd imports/exports: $bad (imports: ${dlls//$'\n'/ })"
    checks[windows-x86_64]="tags+contents, .pyd imports python3.dll + $(($(wc -w <<<"$dlls") - 1)) system DLLs, exports PyInit__raiiaf_rs"
}
wants linux-x86_64 && check_linux linux-x86_64 x86_64
wants linux-aarch64 && check_linux linux-aarch64 aarch64
wants windows-x86_64 && check_windows
if wants sdist; then
    "$TOOLS/bin/python" tests/wheel/check_wheel.py "${artefact[sdist]}" || die "sdist: contents check failed"
    checks[sdist]="contents (pyproject, Cargo.toml/lock, crates, bindings, python)"
fi

printf '\n%-15s %-72s %8s %6s  %s\n' target artefact size build checks
for t in "${targets[@]}"; do
    f=${artefact[$t]}
    printf '%-15s %-72s %7sK %5ss  %s\n' "$t" "$(basename "$f")" "$(($(stat -c %s "$f") / 1024))" \
        "${seconds[$t]}" "${checks[$t]}"
done
say "all ${#targets[@]} artefacts built and checked in $OUT"
