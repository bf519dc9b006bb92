#!/usr/bin/env bash
# bench/callgrind.sh [SERVER-BINARY]
#
# The server's machine instructions per delivered message on the messages
# scenario, counted by valgrind's callgrind. Instruction counts do not depend
# on what else the machine runs, so this compares two builds (before and after
# a change on the routing path) where timings would be noise; the timings in
# docs/performance.md still come from bench/compare.sh on a quiet machine.
#
# Runs the server under callgrind twice, with the load generator's messages
# scenario for SHORT and then LONG seconds (same pairs, same provisioning,
# PLAIN logins), and divides the difference in instructions by the difference
# in messages delivered: what both runs share (start, registration, logins,
# shutdown) cancels out.
#
#   bench/callgrind.sh                          # target/release/jabberwock
#   bench/callgrind.sh ../other/target/release/jabberwock
#
# Environment (all optional): PAIRS=50 SHORT=2 LONG=8 PORT=26333
#   BENCH=target/release/jabberwock-bench  KEEP_WORK=1 (keep the run directories)
#   CONFIG=bench/configs/jabberwock.toml (an older build needs its own checkout's)
# Needs valgrind and openssl; talks to 127.0.0.1 only; every run is bounded.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SERVER=${1:-$REPO/target/release/jabberwock}
BENCH=${BENCH:-$REPO/target/release/jabberwock-bench}
PAIRS=${PAIRS:-50}
SHORT=${SHORT:-2}
LONG=${LONG:-8}
PORT=${PORT:-26333}
CONFIG=${CONFIG:-$REPO/bench/configs/jabberwock.toml}

die() {
    echo "callgrind.sh: $*" >&2
    exit 2
}
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"
command -v openssl >/dev/null || die "openssl is missing"
[ -x "$SERVER" ] || die "$SERVER missing (cargo build --release -p jabberwock-server)"
[ -x "$BENCH" ] || die "$BENCH missing (cargo build --release -p jabberwock-bench)"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"

# One run: prints "INSTRUCTIONS DELIVERED".
run() {
    local seconds=$1 dir=$WORK/run-$1
    mkdir -p "$dir"
    sed -e "s|@RUNDIR@|$dir|g" -e "s|@PORT@|$PORT|g" "$CONFIG" \
        >"$dir/jabberwock.toml"
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$SERVER" --config "$dir/jabberwock.toml" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local waited=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        sleep 1
        waited=$((waited + 1))
        [ "$waited" -lt 120 ] || die "the server did not listen within 120 s ($dir/server.log)"
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited ($dir/server.log)"
    done
    timeout 600 "$BENCH" messages --port "$PORT" --pairs "$PAIRS" --duration "$seconds" \
        --provision register --mechanism PLAIN --json-only >"$dir/result.json" ||
        die "the load generator failed ($dir/result.json)"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    local instructions delivered
    instructions=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dir/callgrind.out")
    delivered=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"]["received"])' \
        "$dir/result.json")
    [ -n "$instructions" ] || die "no totals in $dir/callgrind.out"
    echo "$instructions $delivered"
}

read -r short_i short_m < <(run "$SHORT")
read -r long_i long_m < <(run "$LONG")
python3 - "$short_i" "$short_m" "$long_i" "$long_m" <<'EOF'
import sys
si, sm, li, lm = map(int, sys.argv[1:])
if lm <= sm:
    sys.exit(f"callgrind.sh: the long run delivered no more messages ({lm} vs {sm})")
print(f"runs: {sm} and {lm} messages delivered, {si} and {li} instructions")
print(f"instructions per delivered message: {(li - si) / (lm - sm):.0f}")
EOF
