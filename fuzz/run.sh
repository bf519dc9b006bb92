#!/usr/bin/env bash
# Fuzzes each target for a bounded time with cargo-afl; exits 1 if any input crashed one.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 20 seconds each, every target)
#
# Findings land in target/fuzz/TARGET/default/crashes/; docs/fuzzing.md says how one becomes
# a regression test. Needs `cargo install cargo-afl` (see .ci/run for the pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(stream_xmpp stream_flash websocket_framing bosh_body scram jid)
fi

# No system tuning is assumed (CI runs in a fresh container-like machine, as root).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
    AFL_NO_AFFINITY=1 AFL_BENCH_UNTIL_CRASH=1
# A target dir of its own: the instrumented build must not invalidate the normal one.
export CARGO_TARGET_DIR=target/afl
cargo afl build --release --quiet -p jabberwock-fuzz --features afl --bins

failed=0
for t in "${targets[@]}"; do
    out=target/fuzz/$t
    rm -rf "$out"
    mkdir -p "$out"
    dict=()
    case $t in jid | scram) ;; *) dict=(-x fuzz/xmpp.dict) ;; esac
    # -V stops AFL after $seconds; timeout is the hard bound should it hang.
    timeout --kill-after=10 $((seconds + 60)) \
        cargo afl fuzz -V "$seconds" -i "fuzz/corpus/$t" -o "$out" -G 4096 -t 1000 \
        "${dict[@]}" "target/afl/release/$t" >"$out.log" 2>&1 || true
    stats=$out/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        echo "fuzz $t: AFL did not run, see $out.log:" >&2
        tail -20 "$out.log" >&2
        failed=1
        continue
    fi
    execs=$(awk '/^execs_done/ {print $3}' "$stats")
    crashes=$(find "$out/default/crashes" -name 'id:*' | wc -l)
    # A hang (over 1 s) is reported, not failed on: on a loaded machine a crash can be
    # counted as one (see docs/fuzzing.md); replay hangs/ to tell.
    hangs=$(find "$out/default/hangs" -name 'id:*' | wc -l)
    echo "fuzz $t: ${seconds}s, $execs execs, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ]; then
        find "$out/default/crashes" -name 'id:*' -print >&2
        failed=1
    fi
done
exit $failed
