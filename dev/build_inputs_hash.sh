#!/usr/bin/env bash
# Prints one hash of everything an extension build reads (plus the compiler version).
# dev/setup.sh and dev/setup_torch.sh rebuild when it changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
{
    rustc -V
    for f in Cargo.toml Cargo.lock pyproject.toml; do
        [ ! -f "$f" ] || sha256sum "$f"
    done
    # The workspace's crates (their manifests, sources, build.rs) and the Python package; the
    # crates' tests/ are not read by the extension build.
    find crates bindings python -type f ! -path 'crates/*/tests/*' ! -name '*.so' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
        LC_ALL=C sort -z | xargs -0 -r sha256sum
} | sha256sum | cut -d' ' -f1
