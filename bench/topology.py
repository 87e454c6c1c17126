"""Benchmark: the console's topology call vs the SOP's `patronictl topology`.

Same cluster, same run, side by side: latency of POST /api/overview (what the
Overview page calls every second: Patroni members in parallel + history +
HAProxy stats) and of `docker exec pg-0 patronictl -c /home/postgres/postgres0.yml
topology`, p50/p99 and the ratio; then the same with one replica stopped.

Usage: python3 bench/topology.py --console http://127.0.0.1:18080 [--calls 200] [--stop pg-2]
"""
import argparse
import json
import statistics
import subprocess
import time
import urllib.request


def pct(samples, p):
    s = sorted(samples)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def console_call(base):
    req = urllib.request.Request(f"{base}/api/overview", data=b"", method="POST",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    dt = time.perf_counter() - t
    return dt, json.loads(body)


def patronictl_call():
    t = time.perf_counter()
    subprocess.run(["docker", "exec", "pg-0", "patronictl", "-c", "/home/postgres/postgres0.yml", "topology"],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def measure(base, calls, label):
    console_call(base)  # warm up
    c = []
    for _ in range(calls):
        dt, ov = console_call(base)
        c.append(dt * 1000)
    p = [patronictl_call() * 1000 for _ in range(calls)]
    row = {
        "scenario": label,
        "calls": calls,
        "console_p50_ms": pct(c, 50), "console_p99_ms": pct(c, 99), "console_mean_ms": statistics.mean(c),
        "patronictl_p50_ms": pct(p, 50), "patronictl_p99_ms": pct(p, 99), "patronictl_mean_ms": statistics.mean(p),
        "members": len(ov["topology"]["members"]), "unreachable": [u["name"] for u in ov["topology"]["unreachable"]],
    }
    row["ratio_p50"] = row["patronictl_p50_ms"] / row["console_p50_ms"]
    row["ratio_p99"] = row["patronictl_p99_ms"] / row["console_p99_ms"]
    return row


def print_table(rows):
    print(f"{'scenario':22} {'calls':>5} | {'console p50':>11} {'p99':>8} | {'patronictl p50':>14} {'p99':>8} | {'ratio p50':>9} {'p99':>6}")
    for r in rows:
        print(f"{r['scenario']:22} {r['calls']:>5} | {r['console_p50_ms']:9.1f}ms {r['console_p99_ms']:6.1f}ms | "
              f"{r['patronictl_p50_ms']:12.1f}ms {r['patronictl_p99_ms']:6.1f}ms | {r['ratio_p50']:8.1f}x {r['ratio_p99']:5.1f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", default="http://127.0.0.1:18080")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--stop", default="pg-2", help="replica to stop for the degraded scenario")
    args = ap.parse_args()
    rows = [measure(args.console, args.calls, "healthy (3 members)")]
    subprocess.run(["docker", "stop", args.stop], check=True, capture_output=True)
    try:
        time.sleep(2)
        rows.append(measure(args.console, args.calls, f"{args.stop} stopped"))
    finally:
        subprocess.run(["docker", "start", args.stop], check=True, capture_output=True)
    print_table(rows)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
