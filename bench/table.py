#!/usr/bin/env python3
"""Side-by-side table of jabberwock-bench JSON lines (bench/compare.sh).

Usage: bench/table.py RESULTS.jsonl

One row per numeric result (nested objects flattened with dots, e.g.
latency_ms.p99), one column per server with `median [min–max]` over the
rounds, then one ratio column per reference server. Ratios are oriented so
that > 1 always means Jabberwock is better: J÷X for rates (more is better),
X÷J for costs (memory, CPU, latency: less is better). Rows that are neither
(counts) get no ratio. Runs with "ok": false are left out and listed below.
"""
import json
import re
import statistics
import sys

ORDER = ["jabberwock", "prosody", "ejabberd"]
SHORT = {"jabberwock": "J", "prosody": "P", "ejabberd": "E"}
# Keys that are not measurements of the server.
SKIP = re.compile(
    r"(^|\.)(errors|mode|pairs|users|roster|rounds|steps|sessions_per_step|worker_cpu_s|workers|rooms|occupants_per_room)$"
    r"|(^|\.)(count|n)$"
)
HIGHER_BETTER = re.compile(r"per_sec|per_s$|_per_second")
LOWER_BETTER = re.compile(
    r"(_ms|_s)(\.|$)|_ms\.|bytes|rss|cpu|gib|lost|bounced|failures|errors|out_of_order|_us"
)
# No ratio: the load generator's own figures, and totals that depend on how
# long a run took (server_cpu_s, and s2s's server_a_/server_b_cpu_s: use the
# per-message/per-login figure).
NOT_SERVER = re.compile(
    r"^(bench_cpu_s|elapsed_s|login_s|join_s|setup_s|server_(a_|b_)?cpu_s)$|^send_lag_ms\."
)


def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, list):
        if len(value) > 0 and all(isinstance(v, (int, float)) for v in value):
            # A series (e.g. memory after each step): keep first and last.
            out[f"{prefix}[first]"] = value[0]
            out[f"{prefix}[last]"] = value[-1]
        elif len(value) > 0 and all(isinstance(v, dict) for v in value):
            flatten(f"{prefix}[last]", value[-1], out)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        out[prefix] = value


def fmt(v):
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.2f} G"
    if a >= 1e6:
        return f"{v / 1e6:.2f} M"
    if a >= 1e4:
        return f"{v / 1e3:.1f} k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def direction(key):
    if NOT_SERVER.search(key):
        return None
    if HIGHER_BETTER.search(key):
        return "up"
    if LOWER_BETTER.search(key):
        return "down"
    return None


def main():
    runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    failed = [r for r in runs if not r.get("ok", True)]
    runs = [r for r in runs if r.get("ok", True)]
    servers = [s for s in ORDER if any(r.get("server", r.get("label")) == s for r in runs)]
    values = {}  # key -> server -> [values]
    keys = []
    for r in runs:
        s = r.get("server", r.get("label"))
        flat = {}
        flatten("", r.get("results", {}), flat)
        for k, v in flat.items():
            if SKIP.search(k):
                continue
            if k not in values:
                values[k] = {}
                keys.append(k)
            values[k].setdefault(s, []).append(float(v))
    if not runs:
        print("no successful runs")
    else:
        r0 = runs[0]
        params = ", ".join(f"{k}={v}" for k, v in sorted(r0.get("params", {}).items()) if k not in ("host", "port", "host_b", "port_b"))
        print(f"Scenario `{r0['scenario']}`, transport `{r0.get('transport')}`; {params}")
        print()
        rounds = {s: sum(1 for r in runs if r.get("server", r.get("label")) == s) for s in servers}
        head = ["metric"] + [f"{s} (n={rounds[s]})" for s in servers]
        refs = [s for s in servers if s != "jabberwock"] if "jabberwock" in servers else []
        head += [f"J vs {SHORT[s]}" for s in refs]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        # Figures with a better direction first (rates, then costs), counts last.
        rank = {"up": 0, "down": 1, None: 2}
        keys.sort(key=lambda k: rank[direction(k)])
        for k in keys:
            row = [f"`{k}`"]
            med = {}
            for s in servers:
                vs = values[k].get(s)
                if not vs:
                    row.append("–")
                    continue
                med[s] = statistics.median(vs)
                cell = fmt(med[s])
                if len(vs) > 1:
                    cell += f" [{fmt(min(vs))}–{fmt(max(vs))}]"
                row.append(cell)
            d = direction(k)
            for s in refs:
                j, x = med.get("jabberwock"), med.get(s)
                if d is None or j is None or x is None:
                    row.append("")
                elif d == "up":
                    row.append(f"{j / x:.2f}× (J÷{SHORT[s]})" if x else "")
                else:
                    row.append(f"{x / j:.2f}× ({SHORT[s]}÷J)" if j else "")
            print("| " + " | ".join(row) + " |")
        print()
        print(
            "Cells: median [min–max] over the rounds. Ratios: > 1 means Jabberwock is better; "
            "J÷X for rates (per_sec), X÷J for costs (memory, CPU, latency, losses)."
        )
    for r in failed:
        print(f"\nFAILED run: {r.get('server', r.get('label'))} round {r.get('round')}: {r.get('error')}")


if __name__ == "__main__":
    main()
