"""Benchmark: restoring the whole cluster from a backup, the console vs by hand, same archive, one run.

By hand (what the plan's shell equivalent says): stop the replicas, the leader and etcd; move pg/ and
etcd/ aside; untar the archive into pg/; start etcd and the backup's member; wait for it to lead; start
the others; wait for two streaming replicas.
Console: prepare + execute "restore the cluster from this backup" through its API (it extracts beside
the running cluster first, so the cluster is down only for the swap), then discard the kept data.
Both: wall time to a healthy cluster (a leader and two replicas streaming with lag <= 1 MiB), and how
long the write endpoint refused writes (host psql every 100 ms). The by-hand route's moved-aside
data is deleted afterwards: this benchmark destroys the cluster's current data.

Usage (scripts/bench restore does this): python3 bench/restore.py --console URL --user U --password P
       --data-dir DEFAULT_DATA_DIR [--scale 35]
"""
import json
import os
import shutil
import subprocess
import threading
import time

from backup import Console, stack_args


def healthy(c):
    t = c.overview()["topology"]
    leaders = [m for m in t["members"] if m["role"] == "Leader" and m["reachable"]]
    ok = [m for m in t["members"] if m["role"] != "Leader" and m["reachable"] and m["state"] == "streaming"
          and (m["lag_bytes"] or 0) <= 1048576]
    return len(leaders) == 1 and len(ok) == len(t["members"]) - 1


def wait(pred, what, timeout=900):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class WriteGap(threading.Thread):
    """Seconds during which the write endpoint refused writes: host psql asks
    `select not pg_is_in_recovery()` every 100 ms (1 s connect timeout)."""

    def __init__(self, bind, port):
        super().__init__(daemon=True)
        self.cmd = ["psql", "-h", bind, "-p", port, "-U", "postgres", "-XAtqc", "select not pg_is_in_recovery()"]
        self.env = dict(os.environ, PGPASSWORD=os.environ["PG_SUPERUSER_PASSWORD"], PGCONNECT_TIMEOUT="1")
        self.stop, self.gap, self.since = False, 0.0, None

    def run(self):
        while not self.stop:
            r = subprocess.run(self.cmd, env=self.env, capture_output=True, text=True)
            up = r.returncode == 0 and r.stdout.strip() == "t"
            now = time.time()
            if not up and self.since is None:
                self.since = now
            if up and self.since is not None:
                self.gap += now - self.since
                self.since = None
            time.sleep(0.1)

    def finish(self):
        self.stop = True
        self.join()
        return self.gap


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def by_hand(c, args, archive, member, members):
    data_dir = args.data_dir
    leader = next(m["name"] for m in c.overview()["topology"]["members"] if m["role"] == "Leader")
    pg, etcd = os.path.join(data_dir, "pg"), os.path.join(data_dir, "etcd")
    probe = WriteGap(args.bind, args.write_port)
    probe.start()
    t0 = time.time()
    for m in [x for x in members if x != leader] + [leader]:
        run(["docker", "stop", m])
    run(["docker", "stop", "etcd"])
    os.rename(pg, pg + ".bench-old")
    os.rename(etcd, etcd + ".bench-old")
    os.makedirs(etcd)
    for m in members:
        d = os.path.join(pg, f"pg{m.rsplit('-', 1)[1]}-data")
        if m != member:
            os.makedirs(d, mode=0o700)
            os.chown(d, 100, 102)
    flag = "--zstd" if archive.endswith(".zst") else "-z"
    run(["tar", flag, "-xf", archive, "-C", pg])
    run(["docker", "start", "etcd"])
    time.sleep(2)
    run(["docker", "start", member])
    wait(lambda: any(m["name"] == member and m["role"] == "Leader" for m in c.overview()["topology"]["members"]),
         f"{member} to lead")
    for m in members:
        if m != member:
            run(["docker", "start", m])
    wait(lambda: healthy(c), "a healthy cluster")
    wall = time.time() - t0
    gap = probe.finish()
    shutil.rmtree(pg + ".bench-old")
    shutil.rmtree(etcd + ".bench-old")
    return wall, gap


def console_restore(c, args, backup_id, password):
    probe = WriteGap(args.bind, args.write_port)
    probe.start()
    t0 = time.time()
    plan = c.post("/api/op_prepare", {"kind": "restore_cluster", "member": "", "backup_id": backup_id})
    if not plan["token"]:
        raise RuntimeError(f"refused: {[p for p in plan['preconditions'] if not p['ok']]}")
    job_id = c.post("/api/op_execute", {"token": plan["token"], "typed_name": plan["confirm_name"], "password": password})
    while True:
        job = c.post("/api/op_status", {"id": job_id})
        if job and job.get("outcome"):
            break
        time.sleep(0.1)
    if "Err" in job["outcome"]:
        raise RuntimeError(job["outcome"])
    wait(lambda: healthy(c), "a healthy cluster")
    wall = time.time() - t0
    gap = probe.finish()
    print("console job (step start times from the job's start):")
    for st in job["steps"]:
        print(f"  {(st['at_ms'] - job['started_at_ms']) / 1000:6.2f} s  {st['text']}")
    for k in c.post("/api/kept_list", {}):
        p = c.post("/api/op_prepare", {"kind": "discard_kept", "member": "", "kept_id": k["id"]})
        jid = c.post("/api/op_execute", {"token": p["token"], "typed_name": p["confirm_name"], "password": password})
        wait(lambda: (c.post("/api/op_status", {"id": jid}) or {}).get("outcome"), "the discard")
    return wall, gap


def main():
    ap = stack_args()
    ap.add_argument("--backups-dir", required=True)
    ap.add_argument("--scale", type=int, default=35)
    args = ap.parse_args()
    c = Console(args.console, args.user, args.password)
    pw = os.environ["PG_SUPERUSER_PASSWORD"]
    psql = ["docker", "exec", "-e", f"PGPASSWORD={pw}", "pg-0", "psql", "-XAtq", "-h", args.bind, "-p", args.write_port,
            "-U", "postgres", "-c"]
    have = subprocess.run(psql + ["select coalesce((select count(*) from pgbench_branches), 0)"], capture_output=True, text=True)
    if have.returncode != 0 or int(have.stdout.strip() or 0) < args.scale:
        print(f"loading pgbench scale {args.scale} (about {args.scale * 15} MB)...", flush=True)
        subprocess.run(["docker", "exec", "-e", f"PGPASSWORD={pw}", "pg-0", "pgbench", "-i", "-q", "-s", str(args.scale),
                        "-h", args.bind, "-p", args.write_port, "-U", "postgres", "postgres"], check=True, capture_output=True)
    wait(lambda: healthy(c), "a healthy cluster")
    t = c.overview()["topology"]
    members = [m["name"] for m in t["members"]]
    replica = next(m["name"] for m in t["members"] if m["role"] != "Leader")
    plan = c.post("/api/op_prepare", {"kind": "backup", "member": replica, "compression": "zstd"})
    jid = c.post("/api/op_execute", {"token": plan["token"], "typed_name": plan["confirm_name"], "password": ""})
    wait(lambda: (c.post("/api/op_status", {"id": jid}) or {}).get("outcome"), "the backup")
    row = c.post("/api/backups_list", {})[0]
    c.post("/api/backup_verify", {"id": row["id"]})
    archive = os.path.join(args.backups_dir, row["archive"])
    gb = row["data_bytes"] / 1e9
    print(f"backup of {replica}: {row['data_bytes'] / 1e6:.0f} MB of data, {row['archive_bytes'] / 1e6:.0f} MB archive", flush=True)
    wait(lambda: healthy(c), "a healthy cluster")

    hand_wall, hand_gap = by_hand(c, args, archive, replica, members)
    print(f"by hand: healthy after {hand_wall:.1f} s, writes refused for {hand_gap:.1f} s", flush=True)
    con_wall, con_gap = console_restore(c, args, row["id"], args.password)
    print(f"console: healthy after {con_wall:.1f} s, writes refused for {con_gap:.1f} s", flush=True)
    print()
    print(f"{'restore of ' + format(gb, '.2f') + ' GB':28} {'by hand':>12} {'console':>12} {'ratio':>8}")
    print(f"{'wall time to healthy':28} {hand_wall:10.1f} s {con_wall:10.1f} s {hand_wall / con_wall:7.2f}x")
    print(f"{'writes refused':28} {hand_gap:10.1f} s {con_gap:10.1f} s {hand_gap / max(con_gap, 0.001):7.2f}x")
    print("(the console also checks the sha256, compares row counts, keeps the previous data and can roll back)")
    print(json.dumps({"data_bytes": row["data_bytes"], "by_hand": {"wall_s": hand_wall, "writes_refused_s": hand_gap},
                      "console": {"wall_s": con_wall, "writes_refused_s": con_gap}}))


if __name__ == "__main__":
    main()
