#!/usr/bin/env bash
# `make cross-clippy`: clippy (-D warnings) for the release targets this machine cannot test
# natively, x86_64-pc-windows-gnu and aarch64-unknown-linux-gnu, so that code which only
# compiles (or only warns) off x86_64 Linux fails `make test` rather than the release build.
# Per target: one check build of the whole workspace, all targets, with the bindings' abi3 feature
# (pyo3 needs no interpreter for an abi3 cross check): every dependency is checked once per
# target with one feature set, not once for the core and again for the bindings. Check builds
# only, nothing is linked: each
# target needs its std (`rustup target add`, from Rust's own servers) and its C compiler (below).
# Where the std download fails the step fails: a check that did not run never passes.
# Builds in target/cross-check, apart from the native and the wheel builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DIR=target/cross-check
# Check builds still run build scripts: zstd-sys and mimalloc compile their C with the
# target's C compiler, so each target needs its cross gcc and C library headers (Debian's).
bash dev/apt_install.sh gcc-mingw-w64-x86-64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
installed=$(rustup target list --installed)
for t in x86_64-pc-windows-gnu aarch64-unknown-linux-gnu; do
    if ! grep -qx "$t" <<<"$installed" && ! rustup target add "$t"; then
        echo "cross-clippy: ERROR: 'rustup target add $t' failed (no access to Rust's servers?)" >&2
        exit 1
    fi
    start=$SECONDS
    PYO3_CROSS=1 nice -n 10 cargo clippy --quiet --target "$t" --target-dir "$DIR" --workspace \
        --all-targets --features raiiaf-python/abi3 -- -D warnings
    echo "cross-clippy: $t clean ($((SECONDS - start)) s)"
done
