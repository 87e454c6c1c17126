"""Benchmark: the Overview's live feed with many viewers, against the page's
old way (every tab polls POST /api/overview each second), in one run.

The console is started here with each member's Patroni REST API behind a
counting TCP proxy, so Patroni's load is counted on the wire: requests per
second with 1 viewer and with N, by feed and by polling. Also the console's
CPU (share of one core) and RSS, and, with N viewers following, the delay
from a switchover in Patroni (seen by polling Patroni's /cluster directly
every 20 ms) to the new leader arriving in each viewer's rebuilt Overview.

Usage: python3 bench/feed.py --bin target/release/pg-console --data-dir DIR [--viewers 200] [--seconds 60]
(scripts/bench feed passes --bin and --data-dir; the stack's settings come from the environment.)
"""
import argparse
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from logs import frames, ws_connect
from topology import Client, login, pct

NEEDLE = b" HTTP/1.1\r\n"


class CountingProxy:
    """Forwards 127.0.0.1:<port> to one Patroni REST API and counts requests."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.requests = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            try:
                up = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self.pump, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(up, client, False), daemon=True).start()

    def pump(self, src, dst, count):
        tail = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    tail += data
                    with self.lock:
                        self.requests += tail.count(NEEDLE)
                    tail = tail[-(len(NEEDLE) - 1):]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def apply(doc, patch):
    """The feed's merge patch (model/src/merge_patch.rs): RFC 7396, plus arrays
    of unchanged length patched by index."""
    if not isinstance(patch, dict):
        return patch
    if isinstance(doc, list):
        for k, v in patch.items():
            i = int(k)
            doc[i] = None if v is None else apply(doc[i], v)
        return doc
    if not isinstance(doc, dict):
        doc = {}
    for k, v in patch.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = apply(doc.get(k), v)
    return doc


def leader_of(topology):
    return next((m["name"] for m in topology["members"] if m["role"] == "Leader"), None)


class Viewer:
    """One tab following /ws/overview: rebuilds the Overview from the frames
    and notes when it first sees `watch_leader` as the leader."""

    def __init__(self, base, cookie):
        self.sock = ws_connect(base, "/ws/overview", cookie)
        self.doc, self.seq, self.frames, self.bytes = None, 0, 0, 0
        self.watch_leader, self.saw_leader_at = None, None
        self.error = None
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        try:
            for text in frames(self.sock):
                now = time.time()
                f = json.loads(text)
                self.frames += 1
                self.bytes += len(text)
                if "full" in f:
                    self.doc = f["full"]
                elif "patch" in f:
                    if f["seq"] != self.seq + 1:
                        self.error = f"patch {f['seq']} after {self.seq}"
                        return
                    self.doc = apply(self.doc, f["patch"])
                else:
                    self.error = f.get("error", "an empty frame")
                    return
                self.seq = f["seq"]
                if self.watch_leader and self.saw_leader_at is None and leader_of(self.doc["topology"]) == self.watch_leader:
                    self.saw_leader_at = now
        except (EOFError, OSError) as e:
            self.error = self.error or f"closed: {e}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Console:
    def __init__(self, a, proxies):
        self.env = dict(os.environ, PGC_DATA_DIR=a.data_dir, PGC_BACKUPS_DIR=os.path.join(a.data_dir, "backups"),
                        PGC_LOG="warn", PGC_MEMBERS=",".join(f"pg-{i}={p.url}" for i, p in enumerate(proxies)))
        self.base = f"http://127.0.0.1:{a.port}"
        self.pw = "long enough phrase " + os.urandom(6).hex()
        subprocess.run([a.bin, "user", "add", "bench", "--role", "viewer"], input=self.pw + "\n", text=True,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen([a.bin, "serve"], env=dict(self.env, PGC_LISTEN=f"127.0.0.1:{a.port}",
                                                                 PGC_PUBLIC_URL=self.base))
        for _ in range(300):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit("the console did not start")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return kb / 1024


def measure(label, console, proxies, seconds, during=None):
    """Patroni requests per second, console CPU share and RSS over `seconds`."""
    r0, c0, t0 = sum(p.requests for p in proxies), console.cpu_seconds(), time.time()
    timer = threading.Timer(seconds / 3, during) if during else None
    if timer:
        timer.start()
    time.sleep(seconds)
    if timer:
        timer.join()
    dt = time.time() - t0
    rps = (sum(p.requests for p in proxies) - r0) / dt
    cpu = (console.cpu_seconds() - c0) / dt * 100
    print(f"  {label:34} Patroni {rps:6.1f} req/s   console CPU {cpu:5.1f} % of a core   RSS {console.rss_mb():5.0f} MB")
    return rps


def poll(client, stop):
    while not stop.is_set():
        t = time.time()
        r, _ = client.post("/api/overview", "")
        if r.status != 200:
            raise SystemExit(f"POST /api/overview: HTTP {r.status}")
        stop.wait(max(0.0, 1.0 - (time.time() - t)))


def switchover(patroni, viewers, seen):
    """Switch the leader to a streaming replica with patronictl (as the SOP
    would), and note when Patroni itself first reports the new leader."""
    cluster = lambda: json.load(urllib.request.urlopen(f"{patroni}/cluster", timeout=2))
    members = cluster()["members"]
    old = next(m["name"] for m in members if m["role"] == "leader")
    new = next(m["name"] for m in members if m["role"] != "leader" and m.get("state") == "streaming")
    seen["name"] = new
    for v in viewers:
        v.watch_leader = new
    proc = subprocess.Popen(["docker", "exec", "pg-0", "patronictl", "-c", "/home/postgres/postgres0.yml",
                             "switchover", "--leader", old, "--candidate", new, "--force"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if any(m["name"] == new and m["role"] == "leader" for m in cluster()["members"]):
                seen["at"] = time.time()
                break
        except OSError:
            pass
        time.sleep(0.02)
    proc.wait()
    print(f"  (switchover {old} -> {new} during the measure)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--viewers", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--port", type=int, default=18192)
    a = ap.parse_args()
    # The stack's members, as the console would reach them (PGC_MEMBERS: pg-0=http://host:port,...).
    apis = [m.split("=", 1)[1].strip() for m in os.environ["PGC_MEMBERS"].split(",")]
    proxies = [CountingProxy((urllib.parse.urlsplit(u).hostname, urllib.parse.urlsplit(u).port)) for u in apis]
    console = Console(a, proxies)
    try:
        t = time.time()
        clients = []
        for _ in range(a.viewers):
            c = Client(console.base)
            login(c, "bench", console.pw)
            clients.append(c)
        print(f"{a.viewers} viewer sessions logged in ({time.time() - t:.1f} s); {a.seconds} s per measure")
        console.cpu_seconds()
        measure("nobody looking", console, proxies, min(a.seconds, 5))

        print("the feed (/ws/overview, one sampler):")
        first = [Viewer(console.base, clients[0].cookie)]
        one_feed = measure("1 viewer", console, proxies, a.seconds)
        viewers = first + [Viewer(console.base, c.cookie) for c in clients[1:]]
        seen = {}
        many_feed = measure(f"{a.viewers} viewers, with a switchover", console, proxies, max(a.seconds, 10),
                            during=lambda: switchover(apis[0], viewers, seen))
        errors = [v.error for v in viewers if v.error]
        frames_n = sum(v.frames for v in viewers)
        print(f"    {frames_n} frames, {sum(v.bytes for v in viewers) / max(frames_n, 1):.0f} bytes each on average;"
              f" {len(errors)} viewer(s) broken{': ' + errors[0] if errors else ''}")
        for v in viewers:
            v.close()
        delays = [(v.saw_leader_at - seen["at"]) * 1000 for v in viewers if v.saw_leader_at and "at" in seen]
        if not delays:
            raise SystemExit("no viewer saw the new leader")
        print(f"    switchover to screen: {len(delays)}/{len(viewers)} viewers saw {seen['name']} lead,"
              f" delay p50 {pct(delays, 50):.0f} ms  p99 {pct(delays, 99):.0f} ms  max {max(delays):.0f} ms"
              " (Patroni polled every 20 ms)")

        print("polling (POST /api/overview each second per tab, as the page did before the feed):")
        time.sleep(2)
        for n, label in ((1, "1 viewer"), (a.viewers, f"{a.viewers} viewers")):
            stop = threading.Event()
            threads = [threading.Thread(target=poll, args=(c, stop), daemon=True) for c in clients[:n]]
            for th in threads:
                th.start()
            rps = measure(label, console, proxies, a.seconds)
            stop.set()
            for th in threads:
                th.join()
            if n == 1:
                one_poll = rps
            else:
                many_poll = rps
        print(f"  Patroni load, {a.viewers} viewers vs 1: feed {many_feed / max(one_feed, 0.01):.2f}x,"
              f" polling {many_poll / max(one_poll, 0.01):.2f}x;"
              f" feed vs polling at {a.viewers}: {many_poll / max(many_feed, 0.01):.1f}x fewer requests")
        if errors:
            raise SystemExit(f"{len(errors)} viewer(s) lost the feed: {errors[0]}")
    finally:
        console.proc.terminate()
        console.proc.wait()


if __name__ == "__main__":
    main()
