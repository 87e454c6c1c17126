"""Health checks of the postgresql-cluster stack for scripts/stack.

Reads addresses from the environment exported by scripts/stack (stack.env).
  stack_health.py wait --timeout N   block until healthy (exit 1 on timeout)
  stack_health.py status             print topology, HAProxy routing and the WAL archive

Healthy: one leader, two streaming replicas with lag 0, HAProxy routing
writes to the leader and reads to both replicas, and pg-wal streaming from
the leader on its permanent slot (which `wait` adds to the dynamic
configuration of a cluster bootstrapped before the slot existed).
"""
import base64
import csv
import io
import json
import os
import sys
import time
import urllib.request

ENV = os.environ
BIND = ENV.get("BIND_ADDR", "127.0.0.1")
API_PORTS = [ENV.get(f"PG{i}_API_PORT", str(18008 + i)) for i in range(3)]
STATS = f"http://{BIND}:{ENV.get('STATS_PORT', '17000')}/;csv"
LEADER_ROLES = {"leader", "master", "primary"}
REPLICA_ROLES = {"replica", "sync_standby", "quorum_standby"}


WAL_SLOT = "pg_wal_archive"


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def ensure_wal_slot(api_url):
    """Adds pg-wal's permanent slot to Patroni's dynamic configuration if it is missing."""
    config = json.loads(get(f"{api_url}/config"))
    if WAL_SLOT in (config.get("slots") or {}):
        return False
    auth = base64.b64encode(f"{ENV['PATRONI_API_USERNAME']}:{ENV['PATRONI_API_PASSWORD']}".encode()).decode()
    body = json.dumps({"slots": {WAL_SLOT: {"type": "physical"}}}).encode()
    req = urllib.request.Request(f"{api_url}/config", data=body, method="PATCH",
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    print(f"    added the permanent slot {WAL_SLOT} to the cluster's configuration", file=sys.stderr)
    return True


def archive_state(leader):
    """pg-wal's state in the leader's pg_stat_replication (None: not connected)."""
    status = json.loads(get(f"{leader['api_url'].rsplit('/', 1)[0]}/patroni"))
    for r in status.get("replication", []):
        if r.get("application_name") == "pg-wal":
            return r.get("state")
    return None


def cluster():
    for port in API_PORTS:
        try:
            return json.loads(get(f"http://{BIND}:{port}/cluster"))
        except Exception:
            continue
    return None


def haproxy():
    try:
        text = get(STATS)
    except Exception:
        return None
    rows = list(csv.DictReader(io.StringIO(text.lstrip("# "))))
    out = {}
    for row in rows:
        if row["svname"] in ("FRONTEND", "BACKEND"):
            continue
        out.setdefault(row["pxname"], {})[row["svname"]] = row["status"]
    return out


def lag_bytes(m):
    for key in ("lag", "replay_lag", "receive_lag"):
        v = m.get(key)
        if isinstance(v, int):
            return v
    return None


def check(ensure_slot=False):
    """Return (healthy, reason)."""
    c = cluster()
    if c is None:
        return False, "no Patroni REST API answers yet"
    members = c.get("members", [])
    leaders = [m for m in members if m.get("role") in LEADER_ROLES and m.get("state") == "running"]
    if len(leaders) != 1:
        return False, f"{len(leaders)} running leader(s) among {[m.get('name') for m in members]}"
    replicas = [m for m in members if m.get("role") in REPLICA_ROLES]
    ok = [m for m in replicas if m.get("state") in ("streaming", "running") and lag_bytes(m) == 0]
    if len(ok) != 2:
        desc = ", ".join(f"{m.get('name')}={m.get('state')}/lag {m.get('lag')}" for m in replicas) or "none"
        return False, f"waiting for 2 streaming replicas with lag 0 (replicas: {desc})"
    hp = haproxy()
    if hp is None:
        return False, "HAProxy stats page does not answer yet"
    leader = leaders[0]["name"]
    primary = hp.get("primary", {})
    up = sorted(s for s, st in primary.items() if st.startswith("UP"))
    if up != [leader]:
        return False, f"HAProxy write port routes to {up or 'nothing'}, leader is {leader}"
    read_up = sorted(s for s, st in hp.get("replicas", {}).items() if st.startswith("UP"))
    if read_up != sorted(m["name"] for m in ok):
        return False, f"HAProxy read port routes to {read_up or 'nothing'}, replicas are {[m['name'] for m in ok]}"
    api = leaders[0]["api_url"].rsplit("/", 1)[0]
    if ensure_slot:
        ensure_wal_slot(api)
    wal = archive_state(leaders[0])
    if wal != "streaming":
        return False, f"pg-wal is not streaming from {leader} (state: {wal or 'not connected'})"
    return True, (f"leader {leader}, replicas {', '.join(m['name'] for m in ok)}, write port on {leader}, "
                  f"read port on both, pg-wal streaming")


def wait(timeout):
    start = time.time()
    last_print = 0.0
    reason = ""
    while time.time() - start < timeout:
        try:
            healthy, reason = check(ensure_slot=True)
        except Exception as e:  # a member answering mid-change
            healthy, reason = False, f"{type(e).__name__}: {e}"
        if healthy:
            print(f"    healthy after {time.time() - start:.0f}s: {reason}", file=sys.stderr)
            return 0
        if time.time() - last_print >= 10:
            print(f"    [{time.time() - start:3.0f}s] {reason}", file=sys.stderr)
            last_print = time.time()
        time.sleep(1)
    print(f"    timed out: {reason}", file=sys.stderr)
    return 1


def status():
    c = cluster()
    if c is None:
        print("Patroni: no REST API answers")
    else:
        print(f"{'member':8} {'role':14} {'state':12} {'host':20} {'TL':>3} {'lag':>10}")
        for m in c.get("members", []):
            print(f"{m.get('name',''):8} {m.get('role',''):14} {m.get('state',''):12} "
                  f"{m.get('host','')}:{m.get('port','')!s:14} {m.get('timeline','')!s:>3} {m.get('lag','')!s:>10}")
    hp = haproxy()
    if hp is None:
        print("HAProxy: stats page does not answer")
    else:
        for px in ("primary", "replicas"):
            print(f"HAProxy {px}: " + ", ".join(f"{s}={st}" for s, st in sorted(hp.get(px, {}).items())))
    healthy, reason = check()
    print(("healthy: " if healthy else "NOT healthy: ") + reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["wait"]:
        t = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 240
        sys.exit(wait(t))
    if args[:1] == ["status"]:
        sys.exit(status())
    print(__doc__)
    sys.exit(2)
