#!/usr/bin/env bash
# Runs the test suite while this machine "stalls": each test binary is
# stopped (SIGSTOP) for 50–390 ms at random moments, 100–300 ms apart, and
# continued (SIGCONT). A test that passes only when nothing stops the
# process for a few hundred milliseconds fails here, long before it fails
# now and then in CI on a busy machine (chapter 07, "Tests on a busy
# machine").
#
#   scripts/stall-tests.sh                  # every test binary, 3 rounds
#   scripts/stall-tests.sh 5 time runtime   # 5 rounds of tests/time.rs and tests/runtime.rs
#
# Prints one line per binary and round, then each failure's panic message.
# Output of every run is in target/stall-tests/. Exits 1 if any run failed.
# Only the test binaries are stopped: servers the tests start as child
# processes keep running, as a server on another machine would.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
shift || true
out=target/stall-tests
mkdir -p "$out"

# The test binaries, as cargo names them: "Executable tests/time.rs
# (target/debug/deps/time-…)", and the shootout's unit tests under
# target/debug/examples/.
mapfile -t bins < <(cargo test --no-run 2>&1 | sed -n 's/.*Executable .*(\(target\/debug\/[^)]*\)).*/\1/p' | sort -u)
if (($# > 0)); then
    wanted=()
    for name in "$@"; do
        for bin in "${bins[@]}"; do
            [[ $(basename "$bin") == "$name"-* ]] && wanted+=("$bin")
        done
    done
    bins=("${wanted[@]}")
fi
((${#bins[@]} > 0)) || { echo "no test binaries found" >&2; exit 2; }

# Interrupted: never leave a test binary stopped.
pid=
trap '[[ -n $pid ]] && kill -CONT "$pid" 2>/dev/null && kill "$pid" 2>/dev/null; exit 130' INT TERM

failed=0
for round in $(seq "$rounds"); do
    for bin in "${bins[@]}"; do
        name=$(basename "$bin")
        log="$out/${name%-*}-$round.log"
        "$bin" --test-threads=4 >"$log" 2>&1 &
        pid=$!
        while kill -0 "$pid" 2>/dev/null; do
            sleep "0.$((RANDOM % 3 + 1))"
            kill -STOP "$pid" 2>/dev/null || break
            sleep "0.$(printf '%02d' $((RANDOM % 35 + 5)))"
            kill -CONT "$pid" 2>/dev/null || break
        done
        status=0
        wait "$pid" || status=$?
        echo "round $round ${name%-*}: $(grep -m1 '^test result:' "$log" || echo "exit $status")"
        if ((status != 0)); then
            failed=1
            grep -A2 "panicked at" "$log" | head -20 || true
        fi
    done
done
exit "$failed"
