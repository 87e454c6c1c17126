"""Benchmark: the console's replica backup vs the SOP's procedure, same replica, one run.

SOP (section 4):  docker stop pg-1; tar -czf pg1-backup.tar.gz ${DEFAULT_DATA_DIR}/pg/pg1-data; docker start pg-1
Console:          prepare + execute a backup of the same replica (zstd), through the console's API.
Both: wall time until the replica streams again with lag 0, replica down-time, archive size; ratios.

Usage (scripts/bench backup does this): python3 bench/backup.py --console URL --user U --password P
       --data-dir DEFAULT_DATA_DIR --out DIR [--member REPLICA] [--scale 35]
"""
import argparse
import http.cookiejar
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request


class Console:
    def __init__(self, base, user, password):
        self.base = base
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
        self.post("/login", {"username": user, "password": password, "next": "/"}, expect_json=False)

    def post(self, path, form, expect_json=True):
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"origin": self.base, "content-type": "application/x-www-form-urlencoded"})
        try:
            with self.opener.open(req, timeout=600) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400 and not expect_json:
                return None
            raise RuntimeError(f"{path}: HTTP {e.code}: {e.read()[:300]!r}")
        return json.loads(body) if expect_json else body

    def overview(self):
        return self.post("/api/overview", {})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def wait_caught_up(c, member, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        for m in c.overview()["topology"]["members"]:
            if m["name"] == member and m["reachable"] and m["state"] == "streaming" and m["lag_bytes"] == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{member} did not catch up")


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def stack_args():
    """The arguments every stack benchmark takes: the console, its admin, the stack's data."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--write-port", default=os.environ.get("WRITE_PORT", "15000"))
    ap.add_argument("--bind", default=os.environ.get("BIND_ADDR", "127.0.0.1"))
    return ap


def main():
    ap = stack_args()
    ap.add_argument("--out", required=True)
    ap.add_argument("--member", default=None, help="a replica (default: the first streaming one)")
    ap.add_argument("--scale", type=int, default=35)
    args = ap.parse_args()
    c = Console(args.console, args.user, args.password)
    members = c.overview()["topology"]["members"]
    replicas = [m["name"] for m in members if m["role"] in ("Replica", "SyncStandby", "QuorumStandby") and m["state"] == "streaming"]
    if args.member is None:
        if not replicas:
            raise SystemExit("no streaming replica to back up")
        args.member = replicas[0]
    elif args.member not in replicas:
        raise SystemExit(f"{args.member} is not a streaming replica (replicas: {', '.join(replicas) or 'none'})")
    n = args.member.rsplit("-", 1)[1]
    data = os.path.join(args.data_dir, "pg", f"pg{n}-data")
    os.makedirs(args.out, exist_ok=True)

    pw = os.environ["PG_SUPERUSER_PASSWORD"]
    have = subprocess.run(["docker", "exec", "-e", f"PGPASSWORD={pw}", "pg-0", "psql", "-XAtq", "-h", args.bind, "-p",
                           args.write_port, "-U", "postgres", "-c",
                           "select coalesce((select count(*) from pgbench_branches), 0)"],
                          capture_output=True, text=True)
    if have.returncode != 0 or int(have.stdout.strip() or 0) < args.scale:
        print(f"loading pgbench scale {args.scale} (about {args.scale * 15} MB)...", flush=True)
        subprocess.run(["docker", "exec", "-e", f"PGPASSWORD={pw}", "pg-0", "pgbench", "-i", "-q", "-s", str(args.scale),
                        "-h", args.bind, "-p", args.write_port, "-U", "postgres", "postgres"], check=True,
                       capture_output=True)
    wait_caught_up(c, args.member)
    size = du(data)
    print(f"{args.member} data directory: {size / 1e6:.0f} MB", flush=True)

    # The SOP's procedure.
    sop_file = os.path.join(args.out, f"pg{n}-backup.tar.gz")
    t0 = time.time()
    subprocess.run(["docker", "stop", args.member], check=True, capture_output=True)
    subprocess.run(["tar", "-czf", sop_file, "-C", os.path.dirname(data), os.path.basename(data)], check=True)
    subprocess.run(["docker", "start", args.member], check=True, capture_output=True)
    sop_down = time.time() - t0
    wait_caught_up(c, args.member)
    sop_wall = time.time() - t0
    sop_size = os.path.getsize(sop_file)
    print(f"SOP: wall {sop_wall:.1f} s, down {sop_down:.1f} s, {sop_size / 1e6:.0f} MB", flush=True)

    # The console's backup of the same replica.
    t0 = time.time()
    plan = c.post("/api/op_prepare", {"kind": "backup", "member": args.member, "scheduled_at": "",
                                     "only_if_pending": "false", "compression": "zstd"})
    if not plan["token"]:
        raise RuntimeError(f"refused: {plan['preconditions']}")
    prepared = time.time() - t0
    job_id = c.post("/api/op_execute", {"token": plan["token"], "typed_name": plan["confirm_name"], "password": ""})
    while True:
        job = c.post("/api/op_status", {"id": job_id})
        if job and job.get("outcome"):
            break
        time.sleep(0.1)
    con_wall = time.time() - t0
    print(f"console job (prepare took {prepared:.2f} s; step start times from the job's start):")
    for st in job["steps"]:
        print(f"  {(st['at_ms'] - job['started_at_ms']) / 1000:6.2f} s  {st['text']}")
    print(f"  {(job['finished_at_ms'] - job['started_at_ms']) / 1000:6.2f} s  finished")
    if "Err" in job["outcome"]:
        raise RuntimeError(job["outcome"])
    row = c.post("/api/backups_list", {})[0]
    con_down = row["downtime_ms"] / 1000
    con_size = row["archive_bytes"]
    gb = size / 1e9
    print()
    print(f"{'':28} {'SOP (tar -czf)':>16} {'console (zstd)':>16} {'ratio':>8}")
    print(f"{'wall time (to lag 0)':28} {sop_wall:14.1f} s {con_wall:14.1f} s {sop_wall / con_wall:7.1f}x")
    print(f"{'replica down-time':28} {sop_down:14.1f} s {con_down:14.1f} s {sop_down / max(con_down, 0.001):7.1f}x")
    print(f"{'down-time per GB of data':28} {sop_down / gb:14.1f} s {con_down / gb:14.1f} s")
    print(f"{'archive size':28} {sop_size / 1e6:13.0f} MB {con_size / 1e6:13.0f} MB {sop_size / max(con_size, 1):7.2f}x")
    print(f"console: {row['compressed_running_bytes'] / 1e6:.0f} MB compressed while {args.member} ran, "
          f"{row['compressed_stopped_bytes'] / 1e6:.2f} MB again while it was down; "
          f"{row.get('recycled_wal_bytes', 0) / 1e6:.0f} MB of recycled WAL segments left out "
          f"(the SOP's tar includes them)")
    print(json.dumps({"data_bytes": size, "sop": {"wall_s": sop_wall, "down_s": sop_down, "bytes": sop_size},
                      "console": {"wall_s": con_wall, "down_s": con_down, "bytes": con_size}}))


if __name__ == "__main__":
    main()
