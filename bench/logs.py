"""Benchmark: how soon a container's log line reaches the browser through the
console's live tail (`/ws/logs/etcd`, masked, over a websocket), against the
obvious alternative on a shell, `docker logs -f etcd`, in the same run.

N lines are written to etcd's output (its main process's stdout, the way it
logs) one every `--every` ms, each carrying the time it was written; both
readers note when each line arrives. Prints p50/p95/max of the delay for
both and the ratio.

Usage: python3 bench/logs.py --console http://127.0.0.1:18190 --user U --password P [--lines 200] [--every 20]
(scripts/bench logs creates the user and passes both.)
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse

from topology import Client, login, pct


def ws_connect(base, path, cookie):
    """A websocket client with the standard library: the upgrade, then frames."""
    u = urllib.parse.urlsplit(base)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {base}\r\nCookie: {cookie}\r\n\r\n")
    sock.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"upgrade refused: {head.decode(errors='replace')}")
    return sock


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def frames(sock):
    """Text messages (server frames are unmasked; pings are skipped)."""
    while True:
        b0, b1 = read_exact(sock, 2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(read_exact(sock, 2), "big")
        elif n == 127:
            n = int.from_bytes(read_exact(sock, 8), "big")
        payload = read_exact(sock, n)
        if b0 & 0x0F == 1:
            yield payload.decode()
        elif b0 & 0x0F == 8:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--every", type=int, default=20, help="ms between lines")
    a = ap.parse_args()
    client = Client(a.console)
    login(client, a.user, a.password)
    tag = f"pgc-bench-{os.getpid()}"
    arrived = {"console": {}, "docker logs -f": {}}

    sock = ws_connect(a.console, "/ws/logs/etcd?tail=1", client.cookie)

    def console_reader():
        try:
            for text in frames(sock):
                now = time.time_ns()
                msg = json.loads(text)
                for line in msg.get("lines", []):
                    if tag in line["text"]:
                        arrived["console"][line["text"].split()[-2]] = now
        except (EOFError, OSError):
            pass

    follow = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", "etcd"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)

    def docker_reader():
        for raw in follow.stdout:
            now = time.time_ns()
            text = raw.decode(errors="replace")
            if tag in text:
                arrived["docker logs -f"][text.split()[-2]] = now

    threads = [threading.Thread(target=console_reader, daemon=True), threading.Thread(target=docker_reader, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    writer = subprocess.Popen(["docker", "exec", "-i", "etcd", "sh", "-c", "cat > /proc/1/fd/1"], stdin=subprocess.PIPE)
    written = {}
    for i in range(a.lines):
        seq = f"{i:06d}"
        written[seq] = time.time_ns()
        writer.stdin.write(f"{tag} {seq} end\n".encode())
        writer.stdin.flush()
        time.sleep(a.every / 1000)
    writer.stdin.close()
    writer.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(len(v) < a.lines for v in arrived.values()):
        time.sleep(0.1)
    follow.kill()
    sock.close()
    print(f"{a.lines} lines written to etcd's output, one every {a.every} ms")
    results = {}
    for name, got in arrived.items():
        delays = [(got[s] - written[s]) / 1e6 for s in written if s in got]
        if not delays:
            raise SystemExit(f"{name}: no line arrived")
        results[name] = delays
        print(f"  {name:16} received {len(delays):4}/{a.lines}  delay p50 {pct(delays, 50):7.1f} ms"
              f"  p95 {pct(delays, 95):7.1f} ms  max {max(delays):7.1f} ms")
    c, d = results["console"], results["docker logs -f"]
    print(f"  ratio console / docker logs -f: p50 {pct(c, 50) / max(pct(d, 50), 0.001):.2f}x,"
          f" p95 {pct(c, 95) / max(pct(d, 95), 0.001):.2f}x")
    if len(c) < a.lines:
        raise SystemExit(f"the console delivered {len(c)} of {a.lines} lines")


if __name__ == "__main__":
    main()
