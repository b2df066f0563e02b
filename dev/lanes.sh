#!/usr/bin/env bash
# Runs groups of make targets side by side: each argument is one lane, a space-separated list of
# targets that run one after the other (`make LANE-TARGETS`, so `make -k` goes on in a lane after
# a failure). `make test` runs its test suites in two lanes because each suite keeps about one
# core busy (one pytest process driving one host server at a time, mostly waiting on it), so two
# of them at once take little longer than the longer one alone on a 2-core machine.
#
#   dev/lanes.sh "pytest torch-test" "comfyui-latest-test webui-test diffusers-test"
#
# Every line a lane prints goes to the console as it comes, prefixed with the lane's letter, and
# to target/lanes/<letter>.log whole. A table of the lanes' times and results ends the output.
# Exits non-zero when a lane failed. The suites share nothing that one writes and another reads:
# every host server gets its own free port and throw-away base directory, every pytest run its
# own numbered temporary directory.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAKE=${MAKE:-make}
LOGS=target/lanes
mkdir -p "$LOGS"

letters=(A B C D E F G H)
lanes=("$@")
rm -f "$LOGS"/*.result "$LOGS"/*.log
pids=()
for i in "${!lanes[@]}"; do
    letter=${letters[$i]}
    echo "lanes: [$letter] make ${lanes[$i]}"
    (
        start=$SECONDS
        # shellcheck disable=SC2086  # the lane is a list of targets
        $MAKE --no-print-directory ${lanes[$i]} 2>&1 | tee "$LOGS/$letter.log" | sed -u "s/^/[$letter] /"
        rc=${PIPESTATUS[0]}
        echo "$((SECONDS - start)) $rc" >"$LOGS/$letter.result"
        exit "$rc"
    ) &
    pids+=("$!")
done

status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
echo
echo "| lane | targets | seconds | result |"
echo "|---|---|---:|---|"
for i in "${!lanes[@]}"; do
    seconds=? rc=1
    [ -f "$LOGS/${letters[$i]}.result" ] && read -r seconds rc <"$LOGS/${letters[$i]}.result"
    result=ok
    [ "$rc" -eq 0 ] || result="FAILED (exit $rc)"
    printf '| %s | %s | %s | %s |\n' "${letters[$i]}" "${lanes[$i]}" "$seconds" "$result"
done
exit $status
