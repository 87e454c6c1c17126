"""Benchmark: the console's topology call vs the SOP's `patronictl topology`.

Same cluster, same run, side by side: latency of POST /api/overview (what the
Overview page calls every second: Patroni members in parallel + history +
HAProxy stats) and of `docker exec pg-0 patronictl -c /home/postgres/postgres0.yml
topology`, p50/p99 and the ratio; then the same with one replica stopped.

Usage: python3 bench/topology.py --console http://127.0.0.1:18080 --user U --password P [--calls 200] [--stop pg-2]
(scripts/bench topology creates the user and passes both.)
"""
import argparse
import http.cookiejar
import json
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect())


def login(base, user, password):
    data = urllib.parse.urlencode({"username": user, "password": password, "next": "/"}).encode()
    try:
        OPENER.open(urllib.request.Request(f"{base}/login", data=data, headers={"origin": base}), timeout=10)
    except urllib.error.HTTPError as e:
        if e.code != 303 or e.headers.get("location") != "/":
            raise SystemExit(f"login as {user} failed: HTTP {e.code} {e.headers.get('location')}")


def pct(samples, p):
    s = sorted(samples)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def console_call(base):
    req = urllib.request.Request(f"{base}/api/overview", data=b"", method="POST",
                                 headers={"content-type": "application/x-www-form-urlencoded", "origin": base})
    t = time.perf_counter()
    with OPENER.open(req, timeout=10) as r:
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
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    args = ap.parse_args()
    login(args.console, args.user, args.password)
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
