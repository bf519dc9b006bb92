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
#   bench/compare.sh s2s --pairs 50 --duration 10
#   bench/compare.sh hibernate --users 10000 --settle 5
#   bench/compare.sh resume --users 200 --concurrency 20 --duration 10
#   bench/compare.sh archive --pairs 100 --duration 10
#   bench/compare.sh mam-query --pairs 20 --concurrency 10 --duration 10
#
# archive: the messages scenario with each server's message archive (XEP-0313)
# off and then on (bench/configs/*-mam.*: SQLite for all three), per round;
# the archive's rows are counted after each run. mam-query: queries for the
# last 50 messages with a contact in an archive of at least MAMQ_ROWS
# (1,000,000) messages, filled once per server through the server (MAMQ_FILL
# messages, at most MAMQ_FILL_TIMEOUT s) and kept between rounds. See
# bench/compare-archive.sh.
#
# s2s: messages per second from one server to another of the same kind
# (Jabberwock→Jabberwock, Prosody→Prosody, ejabberd→ejabberd): two instances
# per round, a.test on $S2S_NET.1 pinned to SERVER_CORE and b.test on
# $S2S_NET.2 pinned to SERVER_B_CORE, each with c2s on its port and s2s on
# 5269 of its address, from bench/configs/*-s2s.*; the load generator shares
# both cores (BENCH_CORE=0,1). Jabberwock finds its peer in its static map;
# Prosody and ejabberd run in mount namespaces of their own whose
# /etc/resolv.conf names a nameserver of the run's on $S2S_NET.53:53
# (`jabberwock-bench dns`) and whose /etc/hosts names the two domains. A
# round fails unless messages arrived and both servers' logs show the s2s
# stream; the script exits non-zero when any run failed.
#
# What it does:
#  - installs Debian's prosody and ejabberd when missing (apt-get) and keeps
#    their system services stopped; never uses /etc/{prosody,ejabberd};
#  - builds target/release/jabberwock and target/release/jabberwock-bench;
#  - makes a temporary directory with a self-signed certificate (ECDSA P-256,
#    shared by all three servers) and, per server and round, a fresh run
#    directory with the server's config from bench/configs/ (placeholders
#    @RUNDIR@ @PORT@ @DISTPORT@, for s2s @IP@ @DOMAIN@ @PEER_DOMAIN@ @PEER_IP@
#    @DNS@, filled in) and an empty data store;
#  - interleaves the servers, ROUNDS times (J P E, J P E, ...): starts one
#    server pinned to core SERVER_CORE, waits (bounded) for its port, runs the
#    load generator pinned to core BENCH_CORE with --provision register (each
#    round starts from an empty store), then stops the server;
#  - writes the JSON lines and the table to bench/results/.
#
# Environment (all optional):
#   ROUNDS=3  SERVERS="jabberwock prosody ejabberd"
#   SERVER_CORE=0  BENCH_CORE=1 (s2s: BENCH_CORE=0,1)
#   SERVER_B_CORE=1    s2s: the second server's core
#   S2S_NET=127.0.60   s2s: the loopback /24 of the two servers and the nameserver
#   JABBERWOCK_PORT=26222  PROSODY_PORT=27222  EJABBERD_PORT=28222
#   EJABBERD_DIST_PORT=28299   (Erlang distribution, loopback, no epmd)
#   START_TIMEOUT=60   seconds a server may take to listen
#   RUN_TIMEOUT=900    seconds one load-generator run may take (hard kill)
#   EJABBERD_ERL_OPTIONS=""  extra Erlang VM flags for ejabberd (e.g. "+S 2:2")
#   JABBERWOCK_CONFIG, PROSODY_CONFIG, EJABBERD_CONFIG: another config
#                      template than bench/configs/* (for experiments; for
#                      s2s one with the placeholders of the *-s2s.* ones)
#   MAMQ_ROWS=1000000 MAMQ_FILL=500000 MAMQ_FILL_TIMEOUT=1200   mam-query's archive
#   NO_BUILD=1         use the existing release binaries
#   JABBERWOCK_BIN=PATH  run this jabberwock binary instead of
#                      target/release/jabberwock (A/B runs of two builds)
#   RESULTS_DIR=bench/results  KEEP_WORK=1 (keep the run directories)
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
    idle | login | messages | muc | presence | register | s2s | hibernate | resume | archive | mam-query) ;;
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
SERVER_B_CORE=${SERVER_B_CORE:-1}
# s2s: both cores hold a server, so the load generator shares them (see
# docs/performance.md, "The s2s scenario").
if [ "$SCENARIO" = s2s ]; then BENCH_CORE=${BENCH_CORE:-0,1}; else BENCH_CORE=${BENCH_CORE:-1}; fi
S2S_NET=${S2S_NET:-127.0.60}
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
if [ "$SCENARIO" = archive ] || [ "$SCENARIO" = mam-query ]; then
    # The archives are on SQLite: sqlite3 counts them; Prosody's SQL storage and
    # ejabberd's SQLite driver are packages of their own.
    command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)
    for pkg in lua-dbi-sqlite3 erlang-p1-sqlite3; do
        dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need_pkgs+=("$pkg")
    done
fi
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
JABBERWOCK=${JABBERWOCK_BIN:-$REPO/target/release/jabberwock}
BENCH=$REPO/target/release/jabberwock-bench
[ -x "$JABBERWOCK" ] || die "$JABBERWOCK missing"
[ -x "$BENCH" ] || die "$BENCH missing"

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/jabberwock-compare.XXXXXX)
SERVER_PGIDS=()
DNS_PGID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_servers || true
    [ -z "$DNS_PGID" ] || kill -TERM -- "-$DNS_PGID" 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then log "run directories kept in $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# Stops the servers started last: SIGTERM to each one's process group (setsid
# made it the leader), SIGKILL after 20 s.
stop_servers() {
    local pg
    for pg in "${SERVER_PGIDS[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
    for pg in "${SERVER_PGIDS[@]}"; do
        for _ in $(seq 200); do
            kill -0 -- "-$pg" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 -- "-$pg" 2>/dev/null; then
            log "server group $pg ignored SIGTERM for 20 s, killing it"
            kill -KILL -- "-$pg" 2>/dev/null || true
        fi
    done
    SERVER_PGIDS=()
}

port_pid() { # the pid listening on TCP $1:$2 (empty if none)
    ss -ltnpH "src $1 and sport = :$2" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}
port_busy() { [ -n "$(ss -ltnH "src $1 and sport = :$2" 2>/dev/null)" ]; }

# ---------------------------------------------------------------- TLS
mkdir -p "$WORK/tls"
# s2s: the certificate names the two domains too; it is self-signed all the
# same, so no server can prove its domain with it and all use dialback.
SAN=DNS:localhost
[ "$SCENARIO" = s2s ] && SAN+=,DNS:a.test,DNS:b.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=$SAN" \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"
cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$WORK/tls/combined.pem"

# template $1 → file $2, placeholders filled in from RUNDIR PORT DISTPORT IP
# DOMAIN PEER_DOMAIN PEER_IP (set by start_server)
fill() {
    sed -e "s|@RUNDIR@|$RUNDIR|g" -e "s|@PORT@|$PORT|g" -e "s|@DISTPORT@|$DISTPORT|g" \
        -e "s|@IP@|$IP|g" -e "s|@DOMAIN@|$DOMAIN|g" -e "s|@PEER_DOMAIN@|$PEER_DOMAIN|g" \
        -e "s|@PEER_IP@|$PEER_IP|g" -e "s|@DNS@|$DNS_IP|g" \
        -e "s|@ERL_EXTRA@|${EJABBERD_ERL_OPTIONS:-}|g" "$1" >"$2"
}

template() { # the config template of server $1 for this scenario
    local suffix=""
    [ "$SCENARIO" = s2s ] && suffix=-s2s
    [ -n "${MAM:-}" ] && suffix=-mam
    case $1 in
        jabberwock) echo "${JABBERWOCK_CONFIG:-bench/configs/jabberwock$suffix.toml}" ;;
        prosody) echo "${PROSODY_CONFIG:-bench/configs/prosody$suffix.cfg.lua}" ;;
        ejabberd) echo "${EJABBERD_CONFIG:-bench/configs/ejabberd$suffix.yml}" ;;
    esac
}

wait_listening() { # until $2:$3 listens (bounded); $1 names the server, $4 its run dir
    local deadline=$((SECONDS + START_TIMEOUT))
    until port_busy "$2" "$3"; do
        [ $SECONDS -lt $deadline ] || { tail -20 "$4/stdout.log" >&2; die "$1 did not listen on $2:$3 within ${START_TIMEOUT}s"; }
        sleep 0.2
    done
}

# Starts server $1 in the fresh run directory $2, pinned to core $3, serving
# DOMAIN with c2s on IP:PORT (s2s: 5269 there too, PEER_DOMAIN at PEER_IP),
# in a new session (process group) added to SERVER_PGIDS; sets SERVER_PID
# (the process that owns the c2s socket: jabberwock, lua5.4, beam.smp).
start_server() {
    local name=$1 core=$3
    RUNDIR=$2
    mkdir -p "$RUNDIR/data"
    port_busy "$IP" "$PORT" && die "port $IP:$PORT is already in use (set ${name^^}_PORT)"
    [ "$SCENARIO" != s2s ] || ! port_busy "$IP" 5269 || die "port $IP:5269 is already in use (set S2S_NET)"
    case $name in
        jabberwock)
            fill "$(template jabberwock)" "$RUNDIR/jabberwock.toml"
            # No namespace: its peer is in its static map.
            (cd "$RUNDIR" && exec setsid taskset -c "$core" "$JABBERWOCK" --config "$RUNDIR/jabberwock.toml" \
                >"$RUNDIR/stdout.log" 2>&1 </dev/null) &
            ;;
        prosody)
            fill "$(template prosody)" "$RUNDIR/prosody.cfg.lua"
            (cd "$RUNDIR" && exec setsid "${LAB[@]}" taskset -c "$core" prosody --config "$RUNDIR/prosody.cfg.lua" -F \
                >"$RUNDIR/stdout.log" 2>&1 </dev/null) &
            ;;
        ejabberd)
            port_busy 127.0.0.1 "$DISTPORT" && die "port $DISTPORT is already in use (set EJABBERD_DIST_PORT)"
            fill "$(template ejabberd)" "$RUNDIR/ejabberd.yml"
            fill bench/configs/ejabberdctl.cfg "$RUNDIR/ejabberdctl.cfg"
            mkdir -p "$RUNDIR/log" "$RUNDIR/spool"
            : >"$RUNDIR/inetrc" # ejabberdctl points ERL_INETRC here; empty = defaults
            (cd "$RUNDIR" && HOME=$RUNDIR exec setsid "${LAB[@]}" taskset -c "$core" ejabberdctl \
                --config-dir "$RUNDIR" --config "$RUNDIR/ejabberd.yml" --ctl-config "$RUNDIR/ejabberdctl.cfg" \
                --logs "$RUNDIR/log" --spool "$RUNDIR/spool" --node "$NODE" foreground \
                >"$RUNDIR/stdout.log" 2>&1 </dev/null) &
            ;;
    esac
    local pgid=$!
    SERVER_PGIDS+=("$pgid")
    SERVER_PID=""
    local deadline=$((SECONDS + START_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        SERVER_PID=$(port_pid "$IP" "$PORT")
        [ -n "$SERVER_PID" ] && break
        kill -0 "$pgid" 2>/dev/null || { tail -20 "$RUNDIR/stdout.log" >&2; die "$name exited during start"; }
        sleep 0.2
    done
    [ -n "$SERVER_PID" ] || { tail -20 "$RUNDIR/stdout.log" >&2; die "$name did not listen on $IP:$PORT within ${START_TIMEOUT}s"; }
    [ "$SCENARIO" != s2s ] || wait_listening "$name" "$IP" 5269 "$RUNDIR"
}

client_port() {
    case $1 in
        jabberwock) echo "$JABBERWOCK_PORT" ;;
        prosody) echo "$PROSODY_PORT" ;;
        ejabberd) echo "$EJABBERD_PORT" ;;
    esac
}

# One server of kind $1 for round $2 on 127.0.0.1; sets SERVER_PID, PORT.
start_one() {
    IP=127.0.0.1 PORT=$(client_port "$1") DISTPORT=$EJABBERD_DIST_PORT DOMAIN=localhost
    PEER_DOMAIN="" PEER_IP="" NODE="jwbench$$@localhost"
    start_server "$1" "$WORK/$1-r$2" "$SERVER_CORE"
    # Let the server finish starting (ejabberd opens its port before the
    # last modules are up) and settle before the first memory reading.
    sleep 2
}

# s2s: a.test (SERVER_PID_A) and b.test (SERVER_PID_B) of kind $1 for round $2.
A_IP=$S2S_NET.1 B_IP=$S2S_NET.2 DNS_IP=$S2S_NET.53
# How a server is started: as it is, or (s2s, Prosody and ejabberd) in a mount
# namespace of its own whose /etc/resolv.conf names the run's nameserver and
# whose /etc/hosts names the two domains, the machine's files untouched.
# Prosody asks DNS only (not /etc/hosts); ejabberd asks DNS (Erlang's
# resolver) for SRV records, then the system resolver (getaddrinfo: /etc/hosts
# first) for addresses. No question reaches the machine's nameserver.
LAB=()
if [ "$SCENARIO" = s2s ]; then
    # shellcheck disable=SC2016 # expanded by the inner shell
    LAB=(unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
        sh "$WORK/resolv.conf" "$WORK/hosts")
fi
start_pair() {
    PORT=$(client_port "$1")
    IP=$A_IP DOMAIN=a.test PEER_IP=$B_IP PEER_DOMAIN=b.test DISTPORT=$EJABBERD_DIST_PORT NODE="jwbench$$a@localhost"
    start_server "$1" "$WORK/$1-r$2-a" "$SERVER_CORE"
    SERVER_PID_A=$SERVER_PID
    IP=$B_IP DOMAIN=b.test PEER_IP=$A_IP PEER_DOMAIN=a.test DISTPORT=$((EJABBERD_DIST_PORT + 1)) NODE="jwbench$$b@localhost"
    start_server "$1" "$WORK/$1-r$2-b" "$SERVER_B_CORE"
    SERVER_PID_B=$SERVER_PID
    sleep 2
}

# s2s: the log lines of server kind $1 in run directories $2 (a.test) and $3
# (b.test) that show the stream from a.test to b.test established, one per
# side; fails when either side has none.
s2s_evidence() {
    local out="" in=""
    case $1 in
        jabberwock)
            out=$(grep -h -m1 'authenticated direction=outgoing local=a.test remote=b.test' "$2/stdout.log" || true)
            in=$(grep -h -m1 'authenticated direction=incoming local=b.test remote=a.test' "$3/stdout.log" || true)
            ;;
        prosody)
            out=$(grep -h -m1 'Outgoing s2s connection a.test->b.test complete' "$2/prosody.log" || true)
            in=$(grep -h -m1 'Incoming s2s connection a.test->b.test complete' "$3/prosody.log" || true)
            ;;
        ejabberd)
            out=$(grep -h -m1 'Accepted outbound s2s [a-z]* authentication a.test -> b.test' "$2/log/ejabberd.log" || true)
            in=$(grep -h -m1 'Accepted inbound s2s [a-z]* authentication a.test -> b.test' "$3/log/ejabberd.log" || true)
            ;;
    esac
    [ -n "$out" ] && [ -n "$in" ] || return 1
    printf '%s\n%s\n' "$out" "$in"
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
for v in ROUNDS SERVERS SERVER_CORE SERVER_B_CORE BENCH_CORE S2S_NET JABBERWOCK_PORT PROSODY_PORT \
    EJABBERD_PORT EJABBERD_DIST_PORT EJABBERD_ERL_OPTIONS JABBERWOCK_CONFIG PROSODY_CONFIG EJABBERD_CONFIG; do
    [ -n "${!v:-}" ] || continue
    case "$v=${!v}" in
        "ROUNDS=3" | "SERVERS=jabberwock prosody ejabberd" | "SERVER_CORE=0" | "SERVER_B_CORE=1" | \
            "S2S_NET=127.0.60" | "JABBERWOCK_PORT=26222" | "PROSODY_PORT=27222" | "EJABBERD_PORT=28222" | \
            "EJABBERD_DIST_PORT=28299") ;;
        "BENCH_CORE=0,1") [ "$SCENARIO" = s2s ] || ENV_SET+="$v=${!v} " ;;
        "BENCH_CORE=1") [ "$SCENARIO" != s2s ] || ENV_SET+="$v=${!v} " ;;
        *) ENV_SET+="$v=$(printf '%q' "${!v}") " ;;
    esac
done
COMMAND="${ENV_SET}bench/compare.sh $SCENARIO ${BENCH_ARGS[*]}"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Anything else busy on the two cores skews every figure: say so.
awk '{ exit !($1 > 0.5) }' /proc/loadavg &&
    log "WARNING: load average is $LOAD_START; other processes will disturb the measurements"
log "$COMMAND → $JSONL (work dir $WORK)"

if [ "$SCENARIO" = s2s ]; then
    # The nameserver for the whole run (UDP port 53 needs root), answering A
    # records for the two domains; it ends with the run (cleanup) or after
    # a bound on the whole run.
    [ "$(id -u)" = 0 ] || die "s2s needs root (a nameserver on port 53, unshare -m for Prosody)"
    [ -z "$(ss -lunH "src $DNS_IP and sport = :53" 2>/dev/null)" ] || die "$DNS_IP:53 is in use (set S2S_NET)"
    printf 'nameserver %s\n' "$DNS_IP" >"$WORK/resolv.conf"
    printf '127.0.0.1 localhost\n%s a.test\n%s b.test\n' "$A_IP" "$B_IP" >"$WORK/hosts"
    setsid "$BENCH" dns --listen "$DNS_IP:53" --record "a.test=$A_IP" --record "b.test=$B_IP" \
        --timeout $((ROUNDS * 3 * (RUN_TIMEOUT + 2 * START_TIMEOUT + 60))) \
        >"$WORK/dns.log" 2>&1 </dev/null &
    DNS_PGID=$!
    for _ in $(seq 50); do
        [ -n "$(ss -lunH "src $DNS_IP and sport = :53" 2>/dev/null)" ] && break
        sleep 0.1
    done
    [ -n "$(ss -lunH "src $DNS_IP and sport = :53" 2>/dev/null)" ] || { cat "$WORK/dns.log" >&2; die "the nameserver did not start"; }
fi

ARCHIVE=""
if [ "$SCENARIO" = archive ] || [ "$SCENARIO" = mam-query ]; then
    ARCHIVE=1
    # shellcheck source=bench/compare-archive.sh
    . "$REPO/bench/compare-archive.sh"
    [ "$SCENARIO" = archive ] || RUN_TIMEOUT=$((RUN_TIMEOUT + MAMQ_FILL_TIMEOUT))
fi
FAILED_ROUNDS=0
for round in $(seq "$ROUNDS"); do
    for name in $SERVERS; do
        log "round $round/$ROUNDS: $name"
        if [ -n "$ARCHIVE" ]; then
            archive_round "$name" "$round" || FAILED_ROUNDS=$((FAILED_ROUNDS + 1))
            continue
        fi
        if [ "$SCENARIO" = s2s ]; then
            start_pair "$name" "$round"
            dir="$WORK/$name-r$round-a"
            TARGET=(--server-pid "$SERVER_PID_A" --host "$A_IP" --port "$PORT" --domain a.test
                --server-pid-b "$SERVER_PID_B" --host-b "$B_IP" --port-b "$PORT" --domain-b b.test)
        else
            start_one "$name" "$round"
            dir="$WORK/$name-r$round"
            TARGET=(--server-pid "$SERVER_PID" --host 127.0.0.1 --port "$PORT" --domain localhost)
        fi
        set +e
        timeout -k 10 "$RUN_TIMEOUT" taskset -c "$BENCH_CORE" "$BENCH" "$SCENARIO" "${TARGET[@]}" \
            --label "$name" --json-only "${EXTRA[@]}" "${BENCH_ARGS[@]}" \
            >"$dir/bench.jsonl" 2>"$dir/bench.stderr"
        rc=$?
        set -e
        stop_servers
        if [ $rc -ne 0 ]; then
            log "$name round $round: jabberwock-bench failed (exit $rc):"
            tail -15 "$dir/bench.stderr" >&2
            tail -5 "$dir/stdout.log" >&2 || true
        fi
        grep -q '^{' "$dir/bench.jsonl" || { log "$name round $round: no JSON line"; FAILED_ROUNDS=$((FAILED_ROUNDS + 1)); continue; }
        # s2s: the round counts only if messages arrived and both logs show
        # the stream between the servers.
        evidence=""
        if [ "$SCENARIO" = s2s ]; then
            evidence=$(s2s_evidence "$name" "$WORK/$name-r$round-a" "$WORK/$name-r$round-b") ||
                evidence="NONE"
        fi
        grep '^{' "$dir/bench.jsonl" | python3 -c '
import json, sys
evidence = sys.argv[4]
for line in sys.stdin:
    d = json.loads(line)
    d["round"] = int(sys.argv[1]); d["server"] = sys.argv[2]; d["server_version"] = sys.argv[3]
    if d.get("scenario") == "s2s" and d.get("ok"):
        d["s2s_log"] = evidence.splitlines()
        if not d["results"].get("received"):
            d["ok"], d["error"] = False, "no message crossed from a.test to b.test"
        elif evidence == "NONE":
            d["ok"], d["error"] = False, "the logs show no s2s stream from a.test to b.test"
    print(json.dumps(d, separators=(",", ":")))' "$round" "$name" "$(version_of "$name")" "$evidence" >>"$JSONL"
        if tail -1 "$JSONL" | grep -q '"ok":false'; then
            FAILED_ROUNDS=$((FAILED_ROUNDS + 1))
            log "ERROR: $name round $round failed: $(tail -1 "$JSONL" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("error"))')"
        fi
    done
done

# ---------------------------------------------------------------- table
{
    echo "# compare.sh $SCENARIO, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    if [ "$SCENARIO" = s2s ]; then
        echo "Command: \`$COMMAND\` (ROUNDS=$ROUNDS, a.test on core $SERVER_CORE, b.test on core $SERVER_B_CORE, load generator on core(s) $BENCH_CORE)"
    else
        echo "Command: \`$COMMAND\` (ROUNDS=$ROUNDS, servers on core $SERVER_CORE, load generator on core $BENCH_CORE)"
    fi
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
[ "$FAILED_ROUNDS" -eq 0 ] || die "$FAILED_ROUNDS run(s) failed (see above and $OUT.md)"
