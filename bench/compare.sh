#!/usr/bin/env bash
# bench/compare.sh SCENARIO [JABBERWOCK-BENCH ARGS...]
#
# Runs one jabberwock-bench scenario against Jabberwock, Prosody and ejabberd
# on this machine, side by side, and prints one table (median [min–max] over
# the rounds, and ratios). See docs/performance.md.
#
#   bench/compare.sh messages --pairs 100 --duration 10
#   bench/compare.sh login --users 200 --duration 10 --mechanism PLAIN
#   bench/compare.sh idle --users 5000 --steps 5 --duration 5
#   bench/compare.sh muc --rooms 10 --occupants 20 --duration 10
#   bench/compare.sh messages --pairs 100 --duration 10 --transport starttls
#
# What it does:
#  - installs Debian's prosody and ejabberd when missing (apt-get) and keeps
#    their system services stopped; never uses /etc/{prosody,ejabberd};
#  - builds target/release/jabberwock and target/release/jabberwock-bench;
#  - makes a temporary directory with a self-signed certificate (ECDSA P-256,
#    shared by all three servers) and, per server and round, a fresh run
#    directory with the server's config from bench/configs/ (placeholders
#    @RUNDIR@ @PORT@ @DISTPORT@ filled in) and an empty data store;
#  - interleaves the servers, ROUNDS times (J P E, J P E, ...): starts one
#    server pinned to core SERVER_CORE, waits (bounded) for its port, runs the
#    load generator pinned to core BENCH_CORE with --provision register (each
#    round starts from an empty store), then stops the server;
#  - writes the JSON lines and the table to bench/results/.
#
# Environment (all optional):
#   ROUNDS=3  SERVERS="jabberwock prosody ejabberd"
#   SERVER_CORE=0  BENCH_CORE=1
#   JABBERWOCK_PORT=26222  PROSODY_PORT=27222  EJABBERD_PORT=28222
#   EJABBERD_DIST_PORT=28299   (Erlang distribution, loopback, no epmd)
#   START_TIMEOUT=60   seconds a server may take to listen
#   RUN_TIMEOUT=900    seconds one load-generator run may take (hard kill)
#   EJABBERD_ERL_OPTIONS=""  extra Erlang VM flags for ejabberd (e.g. "+S 2:2")
#   JABBERWOCK_CONFIG, PROSODY_CONFIG, EJABBERD_CONFIG: another config
#                      template than bench/configs/* (for experiments)
#   NO_BUILD=1         use the existing release binaries
#   RESULTS_DIR=bench/results  KEEP_WORK=1 (keep the run directories)
set -euo pipefail

usage() {
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
    idle | login | messages | muc | presence | register) ;;
    -h | --help) usage ;;
    *) echo "compare.sh: unknown scenario '$1'" >&2; usage ;;
esac
SCENARIO=$1
shift
BENCH_ARGS=("$@")

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"jabberwock prosody ejabberd"}
SERVER_CORE=${SERVER_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
JABBERWOCK_PORT=${JABBERWOCK_PORT:-26222}
PROSODY_PORT=${PROSODY_PORT:-27222}
EJABBERD_PORT=${EJABBERD_PORT:-28222}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-28299}
START_TIMEOUT=${START_TIMEOUT:-60}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}

log() { printf '[compare %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- packages
need_pkgs=()
for s in $SERVERS; do
    case $s in
        prosody) command -v prosody >/dev/null || need_pkgs+=(prosody) ;;
        ejabberd) command -v ejabberdctl >/dev/null || need_pkgs+=(ejabberd) ;;
        jabberwock) ;;
        *) die "unknown server '$s' in SERVERS" ;;
    esac
done
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v ss >/dev/null || need_pkgs+=(iproute2)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]} (apt-get)"
    [ "$(id -u)" = 0 ] || die "need root to install ${need_pkgs[*]}"
    timeout 900 apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 ||
        { timeout 300 apt-get update >&2 && timeout 900 apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; }
    # The packages' own services are never used (they would hold /var state
    # and the standard ports); on a systemd machine apt starts them.
    if [ -d /run/systemd/system ]; then
        for svc in prosody ejabberd; do
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        done
    fi
fi

# ---------------------------------------------------------------- build
if [ -z "${NO_BUILD:-}" ]; then
    log "cargo build --release -p jabberwock-server -p jabberwock-bench"
    cargo build --release -p jabberwock-server -p jabberwock-bench >&2
fi
JABBERWOCK=$REPO/target/release/jabberwock
BENCH=$REPO/target/release/jabberwock-bench
[ -x "$JABBERWOCK" ] || die "$JABBERWOCK missing"
[ -x "$BENCH" ] || die "$BENCH missing"

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/jabberwock-compare.XXXXXX)
SERVER_PGID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server || true
    if [ -n "${KEEP_WORK:-}" ]; then log "run directories kept in $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# Stops the server started last: SIGTERM to its process group (setsid made
# it the leader), SIGKILL after 20 s.
stop_server() {
    [ -n "$SERVER_PGID" ] || return 0
    local pg=$SERVER_PGID
    SERVER_PGID=""
    kill -TERM -- "-$pg" 2>/dev/null || return 0
    for _ in $(seq 200); do
        kill -0 -- "-$pg" 2>/dev/null || return 0
        sleep 0.1
    done
    log "server group $pg ignored SIGTERM for 20 s, killing it"
    kill -KILL -- "-$pg" 2>/dev/null || true
}

port_pid() { # the pid listening on 127.0.0.1:$1 (empty if none)
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}
port_busy() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

# ---------------------------------------------------------------- TLS
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"
cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$WORK/tls/combined.pem"

fill() { # template → file, placeholders filled in for run dir $3 and port $4
    sed -e "s|@RUNDIR@|$3|g" -e "s|@PORT@|$4|g" -e "s|@DISTPORT@|$EJABBERD_DIST_PORT|g" \
        -e "s|@ERL_EXTRA@|${EJABBERD_ERL_OPTIONS:-}|g" "$1" >"$2"
}

# Starts server $1 for round $2 in a new session (process group), pinned to
# SERVER_CORE; sets SERVER_PGID, SERVER_PID (the process that owns the
# listening socket: jabberwock, lua5.4, beam.smp) and PORT.
start_server() {
    local name=$1 round=$2 dir="$WORK/$1-r$2"
    mkdir -p "$dir/data"
    case $name in
        jabberwock) PORT=$JABBERWOCK_PORT ;;
        prosody) PORT=$PROSODY_PORT ;;
        ejabberd) PORT=$EJABBERD_PORT ;;
    esac
    port_busy "$PORT" && die "port $PORT is already in use (set ${name^^}_PORT)"
    case $name in
        jabberwock)
            fill "${JABBERWOCK_CONFIG:-bench/configs/jabberwock.toml}" "$dir/jabberwock.toml" "$dir" "$PORT"
            (cd "$dir" && exec setsid taskset -c "$SERVER_CORE" "$JABBERWOCK" --config "$dir/jabberwock.toml" \
                >"$dir/stdout.log" 2>&1 </dev/null) &
            ;;
        prosody)
            fill "${PROSODY_CONFIG:-bench/configs/prosody.cfg.lua}" "$dir/prosody.cfg.lua" "$dir" "$PORT"
            (cd "$dir" && exec setsid taskset -c "$SERVER_CORE" prosody --config "$dir/prosody.cfg.lua" -F \
                >"$dir/stdout.log" 2>&1 </dev/null) &
            ;;
        ejabberd)
            port_busy "$EJABBERD_DIST_PORT" && die "port $EJABBERD_DIST_PORT is already in use (set EJABBERD_DIST_PORT)"
            fill "${EJABBERD_CONFIG:-bench/configs/ejabberd.yml}" "$dir/ejabberd.yml" "$dir" "$PORT"
            fill bench/configs/ejabberdctl.cfg "$dir/ejabberdctl.cfg" "$dir" "$PORT"
            mkdir -p "$dir/log" "$dir/spool"
            : >"$dir/inetrc" # ejabberdctl points ERL_INETRC here; empty = defaults
            (cd "$dir" && HOME=$dir exec setsid taskset -c "$SERVER_CORE" ejabberdctl \
                --config-dir "$dir" --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" \
                --logs "$dir/log" --spool "$dir/spool" --node "jwbench$$@localhost" foreground \
                >"$dir/stdout.log" 2>&1 </dev/null) &
            ;;
    esac
    SERVER_PGID=$!
    SERVER_PID=""
    local deadline=$((SECONDS + START_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        SERVER_PID=$(port_pid "$PORT")
        [ -n "$SERVER_PID" ] && break
        kill -0 "$SERVER_PGID" 2>/dev/null || { tail -20 "$dir/stdout.log" >&2; die "$name exited during start"; }
        sleep 0.2
    done
    [ -n "$SERVER_PID" ] || { tail -20 "$dir/stdout.log" >&2; die "$name did not listen on $PORT within ${START_TIMEOUT}s"; }
    # Let the server finish starting (ejabberd opens its port before the
    # last modules are up) and settle before the first memory reading.
    sleep 2
}

version_of() {
    case $1 in
        jabberwock) echo "jabberwock $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo '+dirty')" ;;
        prosody) echo "prosody $(dpkg-query -W -f '${Version}' prosody 2>/dev/null)" ;;
        ejabberd) echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null)" ;;
    esac
}

# ---------------------------------------------------------------- runs
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y-%m-%d-%H%M%S)
OUT="$RESULTS_DIR/$STAMP-$SCENARIO"
JSONL="$OUT.jsonl"
: >"$JSONL"
have_provision=""
for a in "${BENCH_ARGS[@]}"; do [ "$a" = "--provision" ] && have_provision=1; done
EXTRA=()
[ -n "$have_provision" ] || EXTRA+=(--provision register)
# The command as typed, with every setting above that differs from its default.
ENV_SET=""
for v in ROUNDS SERVERS SERVER_CORE BENCH_CORE JABBERWOCK_PORT PROSODY_PORT EJABBERD_PORT \
    EJABBERD_DIST_PORT EJABBERD_ERL_OPTIONS JABBERWOCK_CONFIG PROSODY_CONFIG EJABBERD_CONFIG; do
    [ -n "${!v:-}" ] || continue
    case "$v=${!v}" in
        "ROUNDS=3" | "SERVERS=jabberwock prosody ejabberd" | "SERVER_CORE=0" | "BENCH_CORE=1" | \
            "JABBERWOCK_PORT=26222" | "PROSODY_PORT=27222" | "EJABBERD_PORT=28222" | "EJABBERD_DIST_PORT=28299") ;;
        *) ENV_SET+="$v=$(printf '%q' "${!v}") " ;;
    esac
done
COMMAND="${ENV_SET}bench/compare.sh $SCENARIO ${BENCH_ARGS[*]}"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Anything else busy on the two cores skews every figure: say so.
awk '{ exit !($1 > 0.5) }' /proc/loadavg &&
    log "WARNING: load average is $LOAD_START; other processes will disturb the measurements"
log "$COMMAND → $JSONL (work dir $WORK)"

for round in $(seq "$ROUNDS"); do
    for name in $SERVERS; do
        log "round $round/$ROUNDS: $name"
        start_server "$name" "$round"
        dir="$WORK/$name-r$round"
        set +e
        timeout -k 10 "$RUN_TIMEOUT" taskset -c "$BENCH_CORE" "$BENCH" "$SCENARIO" \
            --server-pid "$SERVER_PID" --host 127.0.0.1 --port "$PORT" --domain localhost \
            --label "$name" --json-only "${EXTRA[@]}" "${BENCH_ARGS[@]}" \
            >"$dir/bench.jsonl" 2>"$dir/bench.stderr"
        rc=$?
        set -e
        stop_server
        if [ $rc -ne 0 ]; then
            log "$name round $round: jabberwock-bench failed (exit $rc):"
            tail -15 "$dir/bench.stderr" >&2
            tail -5 "$dir/stdout.log" >&2 || true
        fi
        grep -q '^{' "$dir/bench.jsonl" || { log "$name round $round: no JSON line"; continue; }
        grep '^{' "$dir/bench.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    d["round"] = int(sys.argv[1]); d["server"] = sys.argv[2]; d["server_version"] = sys.argv[3]
    print(json.dumps(d, separators=(",", ":")))' "$round" "$name" "$(version_of "$name")" >>"$JSONL"
    done
done

# ---------------------------------------------------------------- table
{
    echo "# compare.sh $SCENARIO, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`$COMMAND\` (ROUNDS=$ROUNDS, servers on core $SERVER_CORE, load generator on core $BENCH_CORE)"
    echo
    echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
    echo
    echo "Versions: $(for s in $SERVERS; do printf '%s; ' "$(version_of "$s")"; done)"
    echo
    echo "Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    python3 "$REPO/bench/table.py" "$JSONL"
} >"$OUT.md"
cat "$OUT.md"
log "results: $OUT.md and $JSONL"
