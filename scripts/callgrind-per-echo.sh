#!/usr/bin/env bash
# Instructions per echo, counted by valgrind's callgrind: the noise-free view
# of a server's user-space cost (the kernel's share is not counted).
#
#   scripts/callgrind-per-echo.sh coop 100 4096        # server, connections, bytes
#   scripts/callgrind-per-echo.sh mio_raw 2 4096 10    # ... and seconds of load (default 5)
#   CACHE_SIM=1 scripts/callgrind-per-echo.sh coop 3000 64   # also data-cache misses per echo
#
# Builds the server with line tables into target/callgrind (so the profile
# names source lines), runs it under callgrind, drives it with loadgen,
# counts only between loadgen's window marks, prints "Ir per echo" (over
# the echoes served in that window), and leaves the per-function profile in
# target/callgrind/<server>-<conns>x<size>.txt (callgrind_annotate's output).
#
# Under callgrind a server runs some 50 times slower, so each epoll_wait
# returns a larger batch than it would natively: at 100 connections the
# count is that of a saturated server. Two connections come close to the
# one-event-per-turn pattern of a server that keeps up.
#
# With CACHE_SIM=1, callgrind also simulates the caches (an L1 of 32 KiB
# and a last level the size of this machine's) and the script prints data
# misses per echo: L1 read and write misses, and last-level ones. They count
# how many distinct lines of memory a server's echo touches, which at
# thousands of connections is what separates servers that run about the
# same instructions.
#
# CACHE_LL sets the simulated last level (valgrind's --LL=size,ways,line).
# Sized below the servers' whole working set but well above one batch's,
# as in `CACHE_SIM=1 CACHE_LL=131072,16,64 scripts/callgrind-per-echo.sh
# coop 3000 64`, its misses count the distinct lines of memory an echo
# touches: each connection's lines are evicted before its next echo, and
# a line touched twice within one echo hits the second time.
#
# With CODE_LINES=1, callgrind also records instruction addresses
# (--dump-instr=yes) and scripts/code-lines.py prints the lines of code an
# echo runs: `CODE_LINES=1 scripts/callgrind-per-echo.sh coop 1000 64`.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${1:?server: coop, tokio or mio_raw}
conns=${2:-100}
size=${3:-64}
secs=${4:-5}
case $server in
  coop) example=echo_server ;;
  tokio) example=echo_tokio ;;
  mio_raw) example=echo_mio_raw ;;
  *) echo "unknown server $server (coop, tokio or mio_raw)" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

out=target/callgrind
mkdir -p "$out"
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --quiet --release --example "$example" --target-dir "$out/build"
cargo build --quiet --release --example loadgen

tag="$server-${conns}x$size"
rm -f "$out/$tag.callgrind" "$out/$tag.server.out"
sim=()
[ "${CACHE_SIM:-0}" = 1 ] && sim=(--cache-sim=yes ${CACHE_LL:+--LL=$CACHE_LL})
[ "${CODE_LINES:-0}" = 1 ] && sim+=(--dump-instr=yes)
# Counting starts off (--instr-atstart=no) and is switched on and off at
# loadgen's window marks, so start-up, connecting, the warm-up echoes and
# shutdown are not counted: only the echoes of the window.
RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no "${sim[@]}" \
  --callgrind-out-file="$out/$tag.callgrind" \
  "$out/build/release/examples/$example" --addr 127.0.0.1:0 --buf 4096 \
  >"$out/$tag.server.out" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  grep -q listening "$out/$tag.server.out" 2>/dev/null && break
  sleep 0.1
done
addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$out/$tag.server.out" | head -1)
[ -n "$addr" ] || { echo "the server did not start" >&2; exit 1; }

# With --mark-window --handshake, loadgen prints `window start` and waits
# for a line on stdin before it starts the clock, and before `window end`
# it waits for every echo in flight: the server is idle at both marks, and
# between them it served exactly `served` echoes. callgrind_control reaches
# a server blocked in epoll_wait through vgdb.
coproc LOADGEN { target/release/examples/loadgen --addr "$addr" --conns "$conns" \
  --size "$size" --secs "$secs" --mark-window --handshake 2>/dev/null; }
loadgen_pid=$LOADGEN_PID # bash unsets LOADGEN_PID when the coprocess ends
result=
while IFS= read -r line <&"${LOADGEN[0]}"; do
  case $line in
    "window start") callgrind_control --instr=on "$pid" >/dev/null 2>&1; echo go >&"${LOADGEN[1]}" ;;
    "window end") callgrind_control --instr=off "$pid" >/dev/null 2>&1; echo go >&"${LOADGEN[1]}" ;;
    conns=*) result=$line ;;
  esac
done
wait "$loadgen_pid" 2>/dev/null || true
[ -n "$result" ] || { echo "loadgen printed no result" >&2; exit 1; }
# SIGTERM, not SIGINT: a job started with & in a script ignores SIGINT
# unless it installs its own handler (coop and tokio do; mio_raw does not).
# callgrind writes its counts as the process ends either way.
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT

msgs=$(grep -o 'served=[0-9]*' <<<"$result" | cut -d= -f2)
if [[ -z "$msgs" || "$msgs" -eq 0 ]]; then
  # No echo in the window: nothing to divide by (the server failed, or
  # loadgen could not connect). Say so rather than stop on a division.
  echo "$server $conns conns x $size B: no echo served in the window; loadgen said: ${result:-nothing}" >&2
  exit 1
fi
# `totals:`, the sum of the profile's costs; callgrind's `summary:` line
# says 0 when counting was switched on late.
ir=$(grep -m1 '^totals:' "$out/$tag.callgrind" | awk '{print $2}')
callgrind_annotate "$out/$tag.callgrind" >"$out/$tag.txt" 2>/dev/null || true
echo "$server $conns conns x $size B: $msgs echoes, $ir instructions, $((ir / msgs)) per echo (profile: $out/$tag.txt)"
if [ "${CACHE_SIM:-0}" = 1 ]; then
  # The events line names the columns of the totals line.
  awk -v msgs="$msgs" '
    /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
    /^totals:/ && !done {
      done = 1
      printf "  per echo: L1 data read misses %.2f, write misses %.2f, last-level data misses %.3f\n",
        $(col["D1mr"]) / msgs, $(col["D1mw"]) / msgs, ($(col["DLmr"]) + $(col["DLmw"])) / msgs
    }' "$out/$tag.callgrind"
fi
if [ "${CODE_LINES:-0}" = 1 ]; then
  python3 scripts/code-lines.py "$out/$tag.callgrind" "$msgs"
fi
