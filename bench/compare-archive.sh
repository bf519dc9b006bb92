# Sourced by bench/compare.sh for the archive scenarios (docs/performance.md, "The
# archive scenarios"); uses its functions and settings. Not run on its own.
#
#   archive    per server and round: the messages scenario once with the archive off
#              (bench/configs/* as for messages) and once with it on (bench/configs/*-mam.*),
#              each from a fresh store; after the "on" run the server's SQLite database is
#              counted (sqlite3), and the round fails unless it holds every delivered
#              message twice (the sender's and the recipient's archive).
#   mam-query  per server one store kept for all rounds ($WORK/NAME-mamq). While it holds
#              fewer than MAMQ_ROWS archived messages, the round first fills it in a run of
#              its own (jabberwock-bench mam-query --fill N --fill-only): Jabberwock with
#              MAMQ_FILL messages through the server; the servers in MAMQ_SQL_FILL (Prosody
#              and ejabberd, whose archives take a few dozen messages a second on SQLite)
#              with MAMQ_SEED messages through the server, whose rows are then copied in
#              their own table with sqlite3 until it holds MAMQ_ROWS (sql_fill below).
#              Then the queries; the count after each round goes into its JSON line and
#              the round fails below MAMQ_ROWS or when an answer was short.

MAMQ_ROWS=${MAMQ_ROWS:-1000000}
MAMQ_FILL=${MAMQ_FILL:-500000}
MAMQ_FILL_TIMEOUT=${MAMQ_FILL_TIMEOUT:-1200}
MAMQ_SEED=${MAMQ_SEED:-1000}
MAMQ_SQL_FILL=${MAMQ_SQL_FILL:-"prosody ejabberd"}

# Copies the rows of server $1's archive in run directory $2 (stopped) in its own table
# until it holds at least MAMQ_ROWS: every copy of a row keeps its owner, contact and
# stanza. Prosody: a new `key` (the archive id clients see; unique per user) and the same
# `when`; the copies get later sort_ids. ejabberd: the `timestamp` (its archive id and
# order) moves back 1000 s per copy, so ids stay unique and the newest page is the rows
# the server wrote itself.
sql_fill() {
    local rows copies db sql
    rows=$(archive_count "$1" "$2")
    [ "${rows:-0}" -gt 0 ] || die "$1: nothing archived by the seed run, nothing to copy"
    copies=$(((MAMQ_ROWS + rows - 1) / rows - 1))
    [ "$copies" -gt 0 ] || return 0
    case $1 in
        prosody)
            db=$2/data/prosody.sqlite
            sql="INSERT INTO prosodyarchive (host, user, store, key, \"when\", \"with\", type, value)
                 SELECT a.host, a.user, a.store, a.key || '-copy' || c.n, a.\"when\", a.\"with\", a.type, a.value
                 FROM prosodyarchive a, c WHERE a.store = 'archive' ORDER BY c.n, a.sort_id" ;;
        ejabberd)
            db=$2/data/ejabberd.db
            sql="INSERT INTO archive (username, timestamp, peer, bare_peer, xml, txt, kind, nick)
                 SELECT a.username, a.timestamp - c.n * 1000000000, a.peer, a.bare_peer, a.xml, a.txt, a.kind, a.nick
                 FROM archive a, c ORDER BY c.n DESC, a.id" ;;
        *) die "no SQL fill for $1" ;;
    esac
    log "$1: copying its $rows archived messages $copies times (sqlite3)"
    sqlite3 "$db" "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $copies) $sql;" ||
        die "$1: copying the archive failed"
}

# Archived messages in the database of server $1 in run directory $2 (stopped), or nothing
# when there is no database yet.
archive_count() {
    local db query
    case $1 in
        jabberwock) db=$2/data/jabberwock.sqlite query='SELECT count(*) FROM archive' ;;
        prosody) db=$2/data/prosody.sqlite query="SELECT count(*) FROM prosodyarchive WHERE store = 'archive'" ;;
        ejabberd) db=$2/data/ejabberd.db query='SELECT count(*) FROM archive' ;;
    esac
    [ -f "$db" ] || return 0
    sqlite3 "$db" "$query"
}

# ejabberd 23.01 does not create its SQL tables: a new database gets the package's schema.
ejabberd_sql_schema() {
    [ -f "$1/data/ejabberd.db" ] || sqlite3 "$1/data/ejabberd.db" </usr/share/ejabberd/sql/lite.sql ||
        die "could not create $1/data/ejabberd.db from /usr/share/ejabberd/sql/lite.sql"
}

# Starts server $1 in run directory $2 with the archive (MAM=1) or without; runs
# jabberwock-bench with the rest of the arguments into $2/bench.jsonl; stops the server.
archive_run() {
    local name=$1 dir=$2
    shift 2
    IP=127.0.0.1 PORT=$(client_port "$name") DISTPORT=$EJABBERD_DIST_PORT DOMAIN=localhost
    PEER_DOMAIN="" PEER_IP="" NODE="jwbench$$@localhost"
    mkdir -p "$dir/data"
    [ "$name" != ejabberd ] || [ -z "${MAM:-}" ] || ejabberd_sql_schema "$dir"
    start_server "$name" "$dir" "$SERVER_CORE"
    sleep 2
    set +e
    timeout -k 10 "$RUN_TIMEOUT" taskset -c "$BENCH_CORE" "$BENCH" "$@" \
        --server-pid "$SERVER_PID" --host 127.0.0.1 --port "$PORT" --domain localhost \
        --label "$name" --json-only "${EXTRA[@]}" "${BENCH_ARGS[@]}" ${TAIL_ARGS:-} \
        >"$dir/bench.jsonl" 2>"$dir/bench.stderr"
    local rc=$?
    set -e
    stop_servers
    if [ $rc -ne 0 ]; then
        log "$name: jabberwock-bench $1 failed (exit $rc):"
        tail -15 "$dir/bench.stderr" >&2
        tail -5 "$dir/stdout.log" >&2 || true
    fi
    grep -q '^{' "$dir/bench.jsonl" || { log "$name: no JSON line in $dir/bench.jsonl"; return 1; }
}

# One round of server $1 (round $2): appends one JSON line to $JSONL; fails when the round
# does not count.
archive_round() {
    local name=$1 round=$2 rows="" version
    version=$(version_of "$name")
    if [ "$SCENARIO" = archive ]; then
        MAM="" archive_run "$name" "$WORK/$name-r$round-off" messages || return 1
        MAM=1 archive_run "$name" "$WORK/$name-r$round-on" messages || return 1
        rows=$(archive_count "$name" "$WORK/$name-r$round-on")
        python3 - "$round" "$name" "$version" "${rows:-0}" \
            "$WORK/$name-r$round-off/bench.jsonl" "$WORK/$name-r$round-on/bench.jsonl" >>"$JSONL" <<'EOF'
import json, sys
round_, name, version, rows, off_file, on_file = sys.argv[1:]
off, on = (json.loads(next(l for l in open(f) if l.startswith("{"))) for f in (off_file, on_file))
keep = ("delivered_per_sec", "server_cpu_us_per_msg", "latency_ms", "sent", "received", "lost", "bounced")
pick = lambda d: {k: d["results"][k] for k in keep if k in d["results"]}
rows = int(rows)
res = {"off": pick(off), "on": pick(on), "archived_messages": rows}
ok, error = off["ok"] and on["ok"], off["error"] or on["error"]
if ok:
    r_on, r_off = on["results"], off["results"]
    res["ratio_on_off"] = {
        "delivered": round(r_on["delivered_per_sec"] / r_off["delivered_per_sec"], 4),
        "cost": round(r_on["server_cpu_us_per_msg"] / r_off["server_cpu_us_per_msg"], 4)
        if r_off.get("server_cpu_us_per_msg") else None,
    }
    res["archived_per_delivered"] = round(rows / max(r_on["received"], 1), 4)
    # Each delivered message is in two archives: its sender's and its recipient's.
    if rows < 2 * r_on["received"]:
        ok, error = False, f"the archive holds {rows} messages for {r_on['received']} delivered (expected twice as many)"
    elif r_on["lost"] or r_off["lost"]:
        ok, error = False, f"messages lost: {r_off['lost']} off, {r_on['lost']} on"
line = {"scenario": "archive", "label": name, "transport": on.get("transport"),
        "params": on.get("params"), "ok": ok, "error": error, "results": res,
        "round": int(round_), "server": name, "server_version": version}
print(json.dumps(line, separators=(",", ":")))
EOF
    else
        local dir=$WORK/$name-mamq fill=$MAMQ_FILL sql=""
        case " $MAMQ_SQL_FILL " in *" $name "*) sql=1 fill=$MAMQ_SEED ;; esac
        rows=$(archive_count "$name" "$dir")
        if [ "${rows:-0}" -lt "$MAMQ_ROWS" ]; then
            log "$name: filling the archive with $fill messages through the server"
            # The fill is a run of its own, without queries.
            MAM=1 TAIL_ARGS=--fill-only archive_run "$name" "$dir" mam-query \
                --fill "$fill" --fill-timeout "$MAMQ_FILL_TIMEOUT" || return 1
            mv "$dir/bench.jsonl" "$dir/fill.jsonl"
            [ -z "$sql" ] || sql_fill "$name" "$dir"
        fi
        MAM=1 archive_run "$name" "$dir" mam-query --fill 0 || return 1
        rows=$(archive_count "$name" "$dir")
        python3 - "$round" "$name" "$version" "${rows:-0}" "$MAMQ_ROWS" "$dir/bench.jsonl" >>"$JSONL" <<'EOF'
import json, sys
round_, name, version, rows, want, f = sys.argv[1:]
d = json.loads(next(l for l in open(f) if l.startswith("{")))
rows, want = int(rows), int(want)
d.update(round=int(round_), server=name, server_version=version)
try:  # the fill run's figures, in the round that filled
    fill = json.loads(next(l for l in open(f.replace("bench.jsonl", "fill.jsonl")) if l.startswith("{")))
    if d["ok"]:
        d["results"].update({k: v for k, v in fill["results"].items() if k.startswith("fill_")})
except FileNotFoundError:
    pass
if d["ok"]:
    d["results"]["archived_messages"] = rows
    r = d["results"]
    if rows < want:
        d["ok"], d["error"] = False, f"the archive holds {rows} messages, fewer than {want}"
    elif r["queries"] == 0 or r["short_pages"]:
        d["ok"], d["error"] = False, f"{r['short_pages']} of {r['queries']} answers carried fewer than {r['page']} results"
print(json.dumps(d, separators=(",", ":")))
EOF
        # The fill's figures go with the round that filled only.
        [ ! -f "$dir/fill.jsonl" ] || mv "$dir/fill.jsonl" "$dir/fill-r$round.jsonl"
    fi
    if tail -1 "$JSONL" | grep -q '"ok":false'; then
        log "ERROR: $name round $round failed: $(tail -1 "$JSONL" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("error"))')"
        return 1
    fi
}
