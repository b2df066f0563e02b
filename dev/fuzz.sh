#!/usr/bin/env bash
# Fuzzing of the reader with cargo-fuzz (libFuzzer + AddressSanitizer, debug assertions and
# overflow checks on). Two modes:
#
#   dev/fuzz.sh replay   (`make fuzz`, the last step of `make test`): every input of the
#                        committed corpus and the seeds runs once, then FUZZ_SECONDS (default
#                        30) of new fuzzing per target. Minutes, not hours.
#   dev/fuzz.sh long     (`make fuzz-long`, outside CI): each target fuzzes for FUZZ_SECONDS
#                        (default 3600) with FUZZ_JOBS workers (default: the cores), growing
#                        fuzz/corpus/<target>, which is then minimised (cargo fuzz cmin) in place:
#                        commit it. Prints a table of executions and coverage per target.
#
#   FUZZ_TARGETS="read manifest"
#
# Targets (fuzz/fuzz_targets/, bodies in crates/raiiaf/tests/fuzz_harness/mod.rs):
#   read      Archive::parse + read_all/verify_all on arbitrary bytes, hashes checked and not
#   manifest  manifest JSON alone and inside a real file's META chunk
#
# Seeds: tests/data/vectors, tests/data/adversarial and small files of every codec that the
# project writes (generated into fuzz/seeds/, not committed). A crash, panic, timeout, leak or
# allocation beyond the format's limits fails the run, and its input is copied to
# tests/data/fuzz-regressions/<target>/, which `cargo test` replays
# (crates/raiiaf/tests/fuzz_regressions.rs): commit it with the fix.
#
# Only the stable toolchain is needed: cargo-fuzz passes nightly `-Z` flags, which
# RUSTC_BOOTSTRAP=1 lets stable rustc accept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODE=${1:-replay}
case "$MODE" in
replay) FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_JOBS=${FUZZ_JOBS:-1} ;;
# nproc honours OMP_NUM_THREADS, which the Makefile sets to 1 for torch: count the cores without it.
long) FUZZ_SECONDS=${FUZZ_SECONDS:-3600} FUZZ_JOBS=${FUZZ_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)} ;;
*)
    echo "usage: dev/fuzz.sh [replay|long]" >&2
    exit 2
    ;;
esac
FUZZ_TARGETS=${FUZZ_TARGETS:-"read manifest"}
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
    -max_len=65536
    -malloc_limit_mb=2100
    -rss_limit_mb=4096
    -timeout=20
    -print_final_stats=1
)

# Sums what libFuzzer's final stats say over the workers of one target's log:
# "execs cov ft" (executions, edges covered, features).
stats_of() {
    awk '/^stat::number_of_executed_units/ { runs += $2 }
         /(INITED|NEW|REDUCE|pulse|DONE) +cov: / {
             for (i = 1; i <= NF; i++) {
                 if ($i == "cov:" && $(i + 1) > cov) cov = $(i + 1)
                 if ($i == "ft:" && $(i + 1) > ft) ft = $(i + 1)
             }
         }
         END { printf "%d %d %d\n", runs, cov, ft }' "$@"
}

status=0
table=()
for target in $FUZZ_TARGETS; do
    corpus=fuzz/corpus/$target
    artifacts=fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    rm -f "$artifacts"/*.log fuzz-*.log

    run() { # log, extra libFuzzer flags...
        local log=$1
        shift
        local rc=0
        cargo fuzz run -O -a "$target" "${dirs[@]}" -- \
            "${LIBFUZZER_FLAGS[@]}" "$@" -artifact_prefix="$PWD/$artifacts/" >"$log" 2>&1 || rc=$?
        # (with -jobs, libFuzzer copies each job's fuzz-<n>.log into its own output)
        rm -f fuzz-*.log
        return $rc
    }
    # libFuzzer adds what it finds to the first folder: the committed corpus only in long mode
    # (then minimised); replay's few seconds of new inputs go to a scratch folder.
    dirs=("$corpus" "fuzz/seeds/$target")
    if [ "$MODE" = replay ]; then
        rm -rf "$artifacts/new" && mkdir -p "$artifacts/new"
        dirs=("$artifacts/new" "${dirs[@]}")
    fi
    rc=0
    start=$SECONDS
    if [ "$MODE" = replay ]; then
        say "$target: replaying $(find "$corpus" "fuzz/seeds/$target" -type f | wc -l) inputs"
        run "$artifacts/replay.log" -runs=0 || rc=$?
    fi
    if [ "$rc" -eq 0 ] && [ "$FUZZ_SECONDS" -gt 0 ]; then
        say "$target: fuzzing for ${FUZZ_SECONDS}s with $FUZZ_JOBS worker(s)"
        parallel=()
        [ "$FUZZ_JOBS" -le 1 ] || parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
        # -jobs=N -max_total_time: each job stops at the time; N jobs, N workers: all at once.
        run "$artifacts/fuzz.log" -max_total_time="$FUZZ_SECONDS" \
            ${parallel[@]+"${parallel[@]}"} || rc=$?
    fi
    seconds=$((SECONDS - start))
    read -r runs cov ft < <(stats_of "$artifacts"/*.log)

    shopt -s nullglob
    crashes=("$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-* "$artifacts"/leak-*)
    shopt -u nullglob
    result=ok
    if ((${#crashes[@]})) || [ "$rc" -ne 0 ]; then
        status=1
        result=FAILED
        mkdir -p "tests/data/fuzz-regressions/$target"
        for f in "${crashes[@]}"; do
            cp "$f" "tests/data/fuzz-regressions/$target/"
            say "FAILURE: $f -> tests/data/fuzz-regressions/$target/$(basename "$f")"
        done
        tail -n 40 "$artifacts"/*.log
    elif [ "$MODE" = long ]; then
        say "$target: minimising the corpus (cargo fuzz cmin)"
        cargo fuzz cmin -O -a "$target" "$corpus" -- -max_len=65536 -rss_limit_mb=4096 \
            >"$artifacts/cmin.log" 2>&1
    fi
    table+=("$(printf '| %s | %s | %d | %d | %d | %d | %d | %s | %s |' "$target" "$MODE" \
        "$seconds" "$runs" "$((runs / (seconds > 0 ? seconds : 1)))" "$cov" "$ft" \
        "$(find "$corpus" -type f | wc -l) ($(du -sh "$corpus" | cut -f1))" "$result")")
done

echo
echo "| target | mode | seconds | executions | exec/s | edges (cov) | features (ft) | corpus | result |"
echo "|---|---|---:|---:|---:|---:|---:|---|---|"
printf '%s\n' "${table[@]}"
exit $status
