#!/usr/bin/env bash
# Bounded fuzzing of the reader with cargo-fuzz (libFuzzer + AddressSanitizer,
# debug assertions and overflow checks on). `make fuzz` runs it.
#
#   FUZZ_SECONDS=60        time per target (default 60)
#   FUZZ_TARGETS="read manifest"
#   FUZZ_JOBS=1            parallel libFuzzer workers per target
#
# Targets (fuzz/fuzz_targets/, bodies in crates/raiiaf/tests/fuzz_harness/mod.rs):
#   read      Archive::parse + read_all/verify_all on arbitrary bytes, hashes checked and not
#   manifest  manifest JSON alone and inside a real file's META chunk
#
# Seeds: tests/data/vectors, tests/data/adversarial and small files of every codec that
# the project writes (generated into fuzz/seeds/). The growing corpus stays in
# fuzz/corpus/<target> (not committed). A crash, panic, timeout, leak or allocation beyond
# the format's limits fails the run, and its input is copied to
# tests/data/fuzz-regressions/<target>/, which `cargo test` replays
# (crates/raiiaf/tests/fuzz_regressions.rs): commit it with the fix.
#
# Only the stable toolchain is needed: cargo-fuzz passes nightly `-Z` flags, which
# RUSTC_BOOTSTRAP=1 lets stable rustc accept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-"read manifest"}
FUZZ_JOBS=${FUZZ_JOBS:-1}
export RUSTC_BOOTSTRAP=1
say() { printf 'fuzz: %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

say "generating seeds"
rm -rf fuzz/seeds
mkdir -p fuzz/seeds/read fuzz/seeds/manifest
RAIIAF_FUZZ_SEEDS="$PWD/fuzz/seeds" cargo test --quiet -p raiiaf --test fuzz_regressions write_fuzz_seeds \
    -- --ignored >/dev/null
find tests/data/vectors tests/data/adversarial -type f \( -name '*.raiiaf' -o -name '*.gen5' \) \
    -exec cp {} fuzz/seeds/read/ \;

say "building the targets (release, ASan, debug assertions)"
cargo fuzz build -O -a

# Every allocation must stay within the format's inflation limit: 32768 x the
# input, for inputs up to 64 KiB 2 GiB (+ a little); anything larger is a bug.
LIBFUZZER_FLAGS=(
    -max_total_time="$FUZZ_SECONDS"
    -max_len=65536
    -malloc_limit_mb=2100
    -rss_limit_mb=4096
    -timeout=20
    -print_final_stats=1
)
status=0
for target in $FUZZ_TARGETS; do
    corpus=fuzz/corpus/$target
    artifacts=fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    log=fuzz/artifacts/$target.log
    say "running $target for ${FUZZ_SECONDS}s"
    parallel=()
    [ "$FUZZ_JOBS" -le 1 ] || parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    rc=0
    cargo fuzz run -O -a "$target" "$corpus" "fuzz/seeds/$target" -- \
        "${LIBFUZZER_FLAGS[@]}" ${parallel[@]+"${parallel[@]}"} \
        -artifact_prefix="$PWD/$artifacts/" >"$log" 2>&1 || rc=$?
    if ((${#parallel[@]})); then
        cat fuzz-*.log >>"$log" 2>/dev/null || true
        rm -f fuzz-*.log
    fi
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs|^#[0-9]+ +DONE' "$log" || true
    say "$target: corpus $(find "$corpus" -type f | wc -l) inputs, exit $rc"
    shopt -s nullglob
    crashes=("$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-* "$artifacts"/leak-*)
    shopt -u nullglob
    if ((${#crashes[@]})) || [ "$rc" -ne 0 ]; then
        status=1
        mkdir -p "tests/data/fuzz-regressions/$target"
        for f in "${crashes[@]}"; do
            cp "$f" "tests/data/fuzz-regressions/$target/"
            say "FAILURE: $f -> tests/data/fuzz-regressions/$target/$(basename "$f")"
        done
        tail -n 40 "$log"
    fi
done
exit $status
