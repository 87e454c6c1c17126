"""Benchmark: the console's topology call vs the SOP's `patronictl topology`.

Same cluster, same run, side by side: latency of POST /api/overview (what the
Overview page calls on load and the live feed's sampler makes once a second: Patroni members in parallel + history +
HAProxy stats) and of `docker exec pg-0 patronictl -c /home/postgres/postgres0.yml
topology`, p50/p99 and the ratio; then the same with one replica stopped.

Usage: python3 bench/topology.py --console http://127.0.0.1:18080 --user U --password P [--calls 200] [--stop pg-2]
(scripts/bench topology creates the user and passes both.)
"""
import argparse
import http.client
import json
import socket
import ssl
import statistics
import subprocess
import time
import urllib.parse


class Client:
    """One kept-alive connection to a console, as a browser keeps one, with
    its session cookie. Over HTTPS (`ca` given) it connects to `addr`
    (host:port) whatever the URL's host name resolves to (*.localhost does not
    resolve outside browsers and curl) and checks the certificate against
    `ca`. `origin` is the console's public origin (what CSRF checks compare)."""

    def __init__(self, base, ca=None, addr=None, origin=None):
        u = urllib.parse.urlsplit(base)
        self.origin = origin or base
        self.cookie = ""
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca)
            host, port = addr.rsplit(":", 1) if addr else (u.hostname, u.port or 443)
            self.conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx, timeout=10)
            self.conn.connect = lambda: self._connect_tls(ctx, host, int(port), u.hostname)
        else:
            self.conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)

    def _connect_tls(self, ctx, host, port, name):
        sock = socket.create_connection((host, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.sock = ctx.wrap_socket(sock, server_hostname=name)

    def post(self, path, body, ctype="application/x-www-form-urlencoded"):
        headers = {"content-type": ctype, "origin": self.origin}
        if self.cookie:
            headers["cookie"] = self.cookie
        try:
            self.conn.request("POST", path, body=body, headers=headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # An idle connection closed meanwhile (as a browser would, reconnect).
            self.conn.close()
            self.conn.request("POST", path, body=body, headers=headers)
            r = self.conn.getresponse()
        data = r.read()
        for v in r.headers.get_all("set-cookie") or []:
            pair = v.split(";", 1)[0]
            if pair.split("=", 1)[1]:
                self.cookie = pair
        return r, data

    def shares_session_with(self, other):
        self.cookie = other.cookie
        return self


def login(client, user, password):
    data = urllib.parse.urlencode({"username": user, "password": password, "next": "/"})
    r, _ = client.post("/login", data)
    if r.status != 303 or r.headers.get("location") != "/":
        raise SystemExit(f"login as {user} failed: HTTP {r.status} {r.headers.get('location')}")


def pct(samples, p):
    s = sorted(samples)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def console_call(client):
    t = time.perf_counter()
    r, body = client.post("/api/overview", "")
    dt = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit(f"POST /api/overview: HTTP {r.status}")
    return dt, json.loads(body)


def patronictl_call():
    t = time.perf_counter()
    subprocess.run(["docker", "exec", "pg-0", "patronictl", "-c", "/home/postgres/postgres0.yml", "topology"],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def sample_console(client, calls):
    console_call(client)  # warm up
    c = []
    for _ in range(calls):
        dt, ov = console_call(client)
        c.append(dt * 1000)
    return c, ov


def measure(targets, calls, label):
    """Each target's console call, then patronictl, `calls` times each."""
    p = None
    rows = []
    for name, client in targets:
        c, ov = sample_console(client, calls)
        if p is None:
            p = [patronictl_call() * 1000 for _ in range(calls)]
        row = {
            "scenario": f"{label}, {name}",
            "calls": calls,
            "console_p50_ms": pct(c, 50), "console_p99_ms": pct(c, 99), "console_mean_ms": statistics.mean(c),
            "patronictl_p50_ms": pct(p, 50), "patronictl_p99_ms": pct(p, 99), "patronictl_mean_ms": statistics.mean(p),
            "members": len(ov["topology"]["members"]),
            "unreachable": [u["name"] for u in ov["topology"]["unreachable"]],
        }
        row["ratio_p50"] = row["patronictl_p50_ms"] / row["console_p50_ms"]
        row["ratio_p99"] = row["patronictl_p99_ms"] / row["console_p99_ms"]
        rows.append(row)
    return rows


def print_table(rows):
    print(f"{'scenario':52} {'calls':>5} | {'console p50':>11} {'p99':>8} | {'patronictl p50':>14} {'p99':>8} | {'ratio p50':>9} {'p99':>6}")
    for r in rows:
        print(f"{r['scenario']:52} {r['calls']:>5} | {r['console_p50_ms']:9.1f}ms {r['console_p99_ms']:6.1f}ms | "
              f"{r['patronictl_p50_ms']:12.1f}ms {r['patronictl_p99_ms']:6.1f}ms | {r['ratio_p50']:8.1f}x {r['ratio_p99']:5.1f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", default="http://127.0.0.1:18080")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--stop", default="pg-2", help="replica to stop for the degraded scenario")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--label", default="direct", help="what --console is (e.g. 'debug, direct')")
    ap.add_argument("--edge", help="also the console behind Traefik, e.g. https://pg-console.localhost")
    ap.add_argument("--edge-ca", help="the edge's CA certificate")
    ap.add_argument("--edge-addr", default="127.0.0.1:443", help="where the edge listens")
    ap.add_argument("--edge-user")
    ap.add_argument("--edge-password")
    ap.add_argument("--edge-label", default="release container via Traefik (TLS)")
    ap.add_argument("--edge-direct", help="the same container on its own port, e.g. http://127.0.0.1:18088")
    args = ap.parse_args()
    direct = Client(args.console)
    login(direct, args.user, args.password)
    targets = [(args.label, direct)]
    if args.edge:
        edge = Client(args.edge, args.edge_ca, args.edge_addr)
        login(edge, args.edge_user, args.edge_password)
        targets.append((args.edge_label, edge))
        if args.edge_direct:
            # The same session, plain HTTP to the container's own port.
            targets.append(("release container, direct", Client(args.edge_direct, origin=args.edge).shares_session_with(edge)))
    rows = measure(targets, args.calls, "healthy")
    subprocess.run(["docker", "stop", args.stop], check=True, capture_output=True)
    try:
        time.sleep(2)
        rows += measure(targets, args.calls, f"{args.stop} stopped")
    finally:
        subprocess.run(["docker", "start", args.stop], check=True, capture_output=True)
    print_table(rows)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
