"""pg-wal: the cluster's continuous WAL archive.

Runs pg_receivewal against the write endpoint (HAProxy, so it follows the
leader through switchovers and failovers) on the Patroni permanent physical
slot WAL_SLOT, which every member keeps, so the leader of the moment holds
the WAL the archive has not received yet.

Layout under ARCHIVE_DIR (one folder per cluster, by system identifier, so a
reinitialized cluster never mixes its segments with the previous one's):

    <system id>/                       completed segments and timeline
                                       history files, gzip-compressed, fsynced
    <system id>/.receiving/            pg_receivewal's own directory: the
                                       segment being received (.partial) and
                                       the timeline history files

pg_receivewal writes plain WAL (no --compress) and without --synchronous: each
piece it receives is written to the partial segment at once (so a restore can
read the newest WAL there), and fsynced when the segment completes. It reports
only what is fsynced as flushed, so the slot keeps on the leader whatever is
not on disk yet: a crash of this container or of the host loses nothing the
leader cannot send again. (--synchronous would fsync every received piece,
doubling the fsyncs of every commit; pg_receivewal's gzip would keep the
partial segment in its buffer, unreadable, until the segment completes.)

This loop compresses each completed segment into the archive (gzip level 1,
written to a temporary name, fsynced, renamed, the folder fsynced) and removes
it from .receiving/. History files are compressed into the archive too, but
stay in .receiving/: pg_receivewal resuming a partial segment of an older
timeline (it was stopped across a switchover) reads that timeline's history
there, and would otherwise ask the leader for it, which a leader that never
had the file (rebuilt from another member) refuses. So .receiving/ never holds
more segments than the one in progress, and when pg_receivewal has to start
over with no partial segment it starts from the slot's position (PostgreSQL
15: READ_REPLICATION_SLOT), not from an old segment that the server's history
may no longer contain (after a restore) or that the server no longer has
(after the slot was lost). Such a partial segment is kept in the archive as
<name>.partial, never deleted.
Should the slot's own position be WAL the leader no longer has (a slot
created in a race with a checkpoint's WAL removal), pg-wal drops the slot and
Patroni creates it again: the archive then shows a gap instead of pg-wal
failing on the same segment for good.

Runs as root only long enough to own ARCHIVE_DIR, then as postgres.
"""
import gzip
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time

ARCHIVE = os.environ.get("ARCHIVE_DIR", "/wal-archive")
HOST = os.environ.get("BIND_ADDR", "127.0.0.1")
PORT = os.environ["WRITE_PORT"]
SLOT = os.environ.get("WAL_SLOT", "pg_wal_archive")
USER = os.environ.get("REPLICATION_USER", "replicator")
RETRY_SECS = float(os.environ.get("WAL_RETRY_SECS", "2"))
# Messages of the walsender after which the partial segment cannot be
# continued: the server's history no longer contains it (a restore or a
# reinitialization under the same system id), or the WAL is gone.
DEAD_END = (
    "is not in this server's history",
    "is ahead of the WAL flush position",
    "has already been removed",
    # The leader has no history file of the partial segment's timeline, nor has the archive.
    '"TIMELINE_HISTORY": ERROR:',
)

stopping = threading.Event()
child = None


def log(msg):
    print(f"pg-wal: {msg}", flush=True)


def drop_privileges():
    pw = pwd.getpwnam("postgres")
    os.makedirs(ARCHIVE, exist_ok=True)
    os.chown(ARCHIVE, pw.pw_uid, pw.pw_gid)
    os.chmod(ARCHIVE, 0o750)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    os.environ["HOME"] = pw.pw_dir
    os.umask(0o027)


def conninfo(replication):
    extra = " replication=true" if replication else ""
    return f"host={HOST} port={PORT} user={USER} application_name=pg-wal connect_timeout=5{extra}"


def system_identifier():
    """The cluster's system identifier, from the server behind the write endpoint."""
    out = subprocess.run(
        ["psql", "-X", "-At", "-d", conninfo(True), "-c", "IDENTIFY_SYSTEM"],
        capture_output=True, text=True, timeout=15,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"psql exited with {out.returncode}")
    return out.stdout.strip().split("|")[0]


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_order(name):
    """(segment number, timeline) of a WAL file name, for ordering partial segments."""
    return (name[8:24], name[:8])


def archive_file(src, dst):
    """Copies src to dst, durably, then removes src: gzip-compressed when dst
    ends in .gz and src is not compressed yet (partial segments stay plain).
    dst keeps src's modification time, when pg_receivewal last wrote to it:
    the console reads the archive's times from it (the window a point-in-time
    restore can reach, and where a gap begins)."""
    tmp = dst + ".tmp"
    st = os.stat(src)
    with open(src, "rb") as fin:
        if dst.endswith(".gz") and not src.endswith(".gz"):
            with open(tmp, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as out:
                    shutil.copyfileobj(fin, out, 1 << 20)
                raw.flush()
                os.fsync(raw.fileno())
        else:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(fin, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, dst)
    os.unlink(src)


def timeline_history(name):
    """The history file name of the timeline of a WAL file name (None on timeline 1, which has none)."""
    tli = name[:8]
    return None if int(tli, 16) == 1 else f"{tli}.history"


# History files in .receiving known to be in the archive: name -> (size, mtime).
archived_history = {}


def archive_history(receiving, archive, name):
    """Compresses the history file name into the archive unless the archive
    has it with the same content; the file stays in .receiving. 1 if written."""
    src, dst = os.path.join(receiving, name), os.path.join(archive, name + ".gz")
    st = os.stat(src)
    if archived_history.get(name) == (st.st_size, st.st_mtime_ns):
        return 0
    with open(src, "rb") as f:
        content = f.read()
    archived_history[name] = (st.st_size, st.st_mtime_ns)
    try:
        with gzip.open(dst, "rb") as f:
            if f.read() == content:
                return 0
    except (OSError, EOFError):
        pass
    tmp = os.path.join(receiving, "." + name + ".copy")
    shutil.copy2(src, tmp)
    archive_file(tmp, dst)
    return 1


def restore_history(receiving, archive):
    """Puts the history file of the partial segment's timeline back into
    .receiving from the archive, where an earlier version of this loop moved
    it: pg_receivewal resuming that segment would ask the leader for it."""
    partials = sorted((n for n in os.listdir(receiving) if n.endswith(".partial")), key=segment_order)
    name = timeline_history(partials[-1]) if partials else None
    src = os.path.join(archive, f"{name}.gz") if name else ""
    if not name or os.path.exists(os.path.join(receiving, name)) or not os.path.exists(src):
        return
    tmp = os.path.join(receiving, name + ".tmp")
    with gzip.open(src, "rb") as fin, open(tmp, "wb") as out:
        shutil.copyfileobj(fin, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, os.path.join(receiving, name))
    fsync_dir(receiving)
    log(f"put {name} back into {receiving} from the archive, to resume {partials[-1]}")


def move_completed(receiving, archive, partial_too=False):
    """Compresses completed segments and history files into the archive.

    History files stay in .receiving unless partial_too. Partial segments
    stay, except older ones than the newest: a timeline switch leaves the old
    timeline's last segment partial for good (the new timeline's segment holds
    the same WAL up to the switch), and it must not be where pg_receivewal
    would resume."""
    moved = 0
    names = sorted(n for n in os.listdir(receiving) if not n.startswith(".") and not n.endswith(".tmp"))
    partials = sorted((n for n in names if n.endswith(".partial")), key=segment_order)
    keep = set() if partial_too else set(partials[-1:])
    for name in names:
        if name in keep:
            continue
        if name.endswith(".history"):
            moved += archive_history(receiving, archive, name)
            if partial_too:
                # The server's history left the partial's: what pg_receivewal
                # needs from now on, it asks the server for.
                os.unlink(os.path.join(receiving, name))
                archived_history.pop(name, None)
            continue
        dst = name if name.endswith(".partial") or name.endswith(".gz") else name + ".gz"
        archive_file(os.path.join(receiving, name), os.path.join(archive, dst))
        moved += 1
    if moved:
        fsync_dir(archive)
        fsync_dir(receiving)
    return moved


def mover(receiving, archive, done):
    while not done.wait(0.5):
        try:
            move_completed(receiving, archive)
        except OSError as e:
            log(f"moving completed segments failed: {e}")


def is_segment(name):
    """Whether name is a WAL segment pg_receivewal would resume from (whole,
    partial or compressed), not a history file."""
    base = name.split(".", 1)[0]
    return len(base) == 24 and all(c in "0123456789ABCDEF" for c in base)


def drop_slot(why):
    """Drops SLOT on the leader. Called when pg_receivewal started at the
    slot's own position and the leader no longer has that WAL: the slot can
    never serve again, and would keep pg-wal failing for good. Patroni creates
    its permanent slot again within a loop, at the leader's latest checkpoint;
    the archive then has a gap, which the console shows."""
    out = subprocess.run(
        ["psql", "-X", "-At", "-d", conninfo(True), "-c", f'DROP_REPLICATION_SLOT "{SLOT}"'],
        capture_output=True, text=True, timeout=15,
    )
    said = " ".join((out.stderr or out.stdout).split())
    outcome = "dropped it" if out.returncode == 0 else f"could not drop it ({said})"
    log(f"the slot {SLOT} starts at WAL the leader no longer has ({why}); {outcome}, "
        f"so that Patroni creates it again at the leader's latest checkpoint")


def receive(sysid):
    """One run of pg_receivewal into the archive of this system id; its exit status."""
    global child
    archive = os.path.join(ARCHIVE, sysid)
    receiving = os.path.join(archive, ".receiving")
    os.makedirs(receiving, exist_ok=True)
    restore_history(receiving, archive)
    cmd = [
        "pg_receivewal", "-d", conninfo(False), "-D", receiving, "--slot", SLOT,
        "--no-loop", "--no-password",
        "--status-interval=1", "--verbose",
    ]
    from_slot = not any(is_segment(n) for n in os.listdir(receiving))
    log(f"receiving WAL of system {sysid} through {HOST}:{PORT} on slot {SLOT} into {archive}")
    done = threading.Event()
    t = threading.Thread(target=mover, args=(receiving, archive, done), daemon=True)
    t.start()
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    dead_end = ""
    for line in child.stderr:
        line = line.rstrip()
        # pg_receivewal's verbose progress is one line per segment; keep it.
        print(line, flush=True)
        if any(m in line for m in DEAD_END):
            dead_end = line
    rc = child.wait()
    child = None
    done.set()
    t.join()
    move_completed(receiving, archive)
    if dead_end and from_slot and "has already been removed" in dead_end:
        drop_slot(dead_end)
    elif dead_end:
        n = move_completed(receiving, archive, partial_too=True)
        log(f"cannot continue the partial segment ({dead_end}); kept it in the archive ({n} file) "
            f"and starting again from the slot's position")
    return rc


def on_term(signum, _frame):
    stopping.set()
    if child is not None:
        child.send_signal(signal.SIGINT)


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    drop_privileges()
    while not stopping.is_set():
        try:
            sysid = system_identifier()
        except Exception as e:  # the leader is away: a switchover, a restart, a reinit
            log(f"no leader answers through {HOST}:{PORT} ({' '.join(str(e).split())}); retrying")
            stopping.wait(RETRY_SECS)
            continue
        rc = receive(sysid)
        if not stopping.is_set():
            log(f"pg_receivewal exited with {rc}; starting again in {RETRY_SECS:g}s")
            stopping.wait(RETRY_SECS)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
