#!/usr/bin/env python3
"""Benchmark: the Audit page and `audit verify` on a large audit log.

Fills a fresh console database with N rows chained exactly as the console
chains them (HMAC-SHA256 with the key the console created, head file signed),
so `pg-console audit verify` must find every row intact. Then, in one run:

- `pg-console audit verify`: wall time and peak RSS;
- the Audit page's server function (`POST /api/audit_page`), 200 calls each for
  the newest page, a page half-way down (keyset cursor), and a filter;
- the obvious alternative on the same database, what the console did before:
  `LIMIT 50 OFFSET k` for the page, `COUNT(*)` for the total, and reading the
  whole table to check the chain on every load (the SQL alone, without the
  hashing, which flatters it);

and prints ratios. Not a test: nothing asserts a time.
"""
import argparse
import hashlib
import hmac
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import http.cookiejar

GENESIS = "0" * 64


def canonical(r):
    # serde_json's json!([...]).to_string(): compact, ASCII kept as is.
    return json.dumps(
        [r["at_ms"], r["user_name"], r["role"], r["source_ip"], r["session_hash"], r["action"], r["target"],
         r["params"], r["result"], r["error"], r["correlation_id"], r["duration_ms"]],
        separators=(",", ":"), ensure_ascii=False)


def read_key(path):
    for line in open(path):
        if line.startswith("AUDIT_HMAC_KEY="):
            return bytes.fromhex(line.split("=", 1)[1].strip())
    sys.exit(f"no AUDIT_HMAC_KEY in {path}")


def fill(db_path, key, n):
    db = sqlite3.connect(db_path)
    last_id, prev = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone() or (0, GENESIS)
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
    actions = [("login", "ok"), ("login_failed", "refused"), ("logout", "ok"), ("op_prepare", "ok"),
               ("op_execute", "ok"), ("backup_download", "ok"), ("authorization_refused", "refused")]
    rng = random.Random(42)
    t0 = int(time.time() * 1000) - n * 10
    batch = []
    cols = ("at_ms, user_name, role, source_ip, session_hash, action, target, params, result, error, "
            "correlation_id, duration_ms, prev_hash, hash")
    sql = f"INSERT INTO audit ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    db.execute("BEGIN")
    for i in range(n):
        action, result = actions[rng.randrange(len(actions))] if i % 1000 else ("user_add", "ok")
        r = {
            "at_ms": t0 + i * 10, "user_name": users[rng.randrange(len(users))], "role": "operator",
            "source_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "session_hash": hashlib.sha256(str(i).encode()).hexdigest(), "action": action,
            "target": "pg-2" if action.startswith("op_") else "", "params": json.dumps({"n": i}, separators=(",", ":")),
            "result": result, "error": "", "correlation_id": f"{i:016x}", "duration_ms": 0,
        }
        h = hmac.new(key, (prev + canonical(r)).encode(), hashlib.sha256).hexdigest()
        batch.append((r["at_ms"], r["user_name"], r["role"], r["source_ip"], r["session_hash"], r["action"],
                      r["target"], r["params"], r["result"], r["error"], r["correlation_id"], r["duration_ms"],
                      prev, h))
        prev = h
        if len(batch) == 10_000:
            db.executemany(sql, batch)
            batch = []
    db.executemany(sql, batch)
    db.commit()
    last = db.execute("SELECT id, hash, at_ms FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    db.close()
    return last


def sign_head(key, head_path, last):
    legacy = 0
    if os.path.exists(head_path):
        for kv in open(head_path).read().split():
            if kv.startswith("legacy_through="):
                legacy = int(kv.split("=", 1)[1])
    body = f"audit-head v1 id={last[0]} hash={last[1]} at_ms={last[2]} legacy_through={legacy}"
    sig = hmac.new(key, b"pg-console audit head v1\n" + body.encode(), hashlib.sha256).hexdigest()
    with open(head_path, "w") as f:
        f.write(f"{body} sig={sig}\n")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--port", type=int, default=18191)
    a = ap.parse_args()
    env = dict(os.environ, PGC_DATA_DIR=a.data_dir, PGC_LOG="warn")
    pw = "long enough phrase " + os.urandom(6).hex()
    subprocess.run([a.bin, "user", "add", "bench", "--role", "admin"], input=pw + "\n", text=True, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    key = read_key(os.path.join(a.data_dir, "console-secrets.env"))
    t = time.time()
    last = fill(os.path.join(a.data_dir, "console.db"), key, a.rows)
    sign_head(key, os.path.join(a.data_dir, "audit-head.json"), last)
    print(f"filled {a.rows} rows in {time.time() - t:.1f} s (last #{last[0]})")

    t = time.time()
    out = subprocess.run([a.bin, "audit", "verify"], env=env, capture_output=True, text=True)
    verify_s = time.time() - t
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"audit verify: {out.stdout.strip()} in {verify_s:.2f} s, peak RSS {rss_mb:.0f} MB")
    if out.returncode != 0:
        sys.exit(f"audit verify failed: {out.stdout}{out.stderr}")

    base = f"http://127.0.0.1:{a.port}"
    srv = subprocess.Popen([a.bin, "serve"], env=dict(env, PGC_LISTEN=f"127.0.0.1:{a.port}", PGC_PUBLIC_URL=base))
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kw):
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        login = urllib.parse.urlencode({"username": "bench", "password": pw, "next": "/"}).encode()
        try:
            opener.open(urllib.request.Request(base + "/login", data=login, headers={"Origin": base}))
        except urllib.error.HTTPError as e:
            if e.code != 303:
                raise

        def page(form):
            body = urllib.parse.urlencode(dict({"user": "", "action": "", "result": "", "from": "", "to": ""},
                                               **form)).encode()
            t = time.perf_counter()
            r = opener.open(urllib.request.Request(base + "/api/audit_page", data=body, headers={"Origin": base}))
            data = json.loads(r.read())
            assert data["rows"], data
            return (time.perf_counter() - t) * 1000

        # The console checks the whole chain once at start, in the background: wait for it.
        for _ in range(600):
            body = urllib.parse.urlencode({"user": "", "action": "", "result": "", "from": "", "to": ""}).encode()
            r = json.loads(opener.open(urllib.request.Request(base + "/api/audit_page", data=body,
                                                              headers={"Origin": base})).read())
            if r["full_check_at_ms"]:
                break
            time.sleep(0.5)
        cases = [("newest page", {}), ("page half-way down", {"before": str(last[0] // 2)}),
                 ("filter user=alice", {"user": "alice"}), ("filter action=user_add", {"action": "user_add"})]
        results = {}
        for name, form in cases:
            page(form)
            xs = [page(form) for _ in range(a.calls)]
            results[name] = (pct(xs, 50), pct(xs, 99))
    finally:
        srv.terminate()
        srv.wait()

    # The alternative, on the same file: OFFSET + COUNT + reading every row.
    db = sqlite3.connect(os.path.join(a.data_dir, "console.db"))
    alt = []
    for _ in range(5):
        t = time.perf_counter()
        db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT 50 OFFSET ?", (last[0] // 2,)).fetchall()
        db.execute("SELECT COUNT(*) FROM audit").fetchone()
        db.execute("SELECT * FROM audit ORDER BY id").fetchall()
        alt.append((time.perf_counter() - t) * 1000)
    alt_p50 = pct(alt, 50)
    print()
    print(f"| Audit page ({a.rows} rows) | console p50 | console p99 | OFFSET + COUNT + whole-table read p50 | ratio p50 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (p50, p99) in results.items():
        print(f"| {name} | {p50:.1f} ms | {p99:.1f} ms | {alt_p50:.0f} ms | {alt_p50 / p50:.0f}x |")
    print()
    print(f"audit verify of {last[0]} rows: {verify_s:.2f} s, peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
