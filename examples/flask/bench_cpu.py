#!/usr/bin/env python3
"""Measures the CPU cost of one click on one Polymetrie (Flask) replica.

Starts its own PostgreSQL (start-postgres), redis-server and one gunicorn replica with
--workers 1 (sync) on free 127.0.0.1 ports, sends WARMUP then CLICKS clicks from CLIENTS
client threads (one connection per request, as sync gunicorn closes each), and reads
utime+stime of the gunicorn master + worker (and of redis-server and the postgres tree)
from /proc before and after. Bounded by count and by a DEADLINE in seconds; every process
it started is stopped by pid at the end.

    examples/flask/.venv/bin/python examples/flask/bench_cpu.py [CLICKS] [CLIENTS]
"""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
import support  # noqa: E402

WARMUP = 200
DEADLINE = 120.0


def postgres_tree(pid):
    """The postmaster and its backends/helpers (workers' connections included)."""
    pids = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit() and support._parent(int(p)) == pid:
            pids.append(int(p))
    return pids


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def send(port, n, clients, deadline):
    """n clicks over `clients` threads; returns (count of 204, other statuses)."""
    lock = threading.Lock()
    state = {"left": n, "ok": 0, "other": {}}

    def loop():
        while time.monotonic() < deadline:
            with lock:
                if state["left"] == 0:
                    return
                state["left"] -= 1
                i = state["left"]
            status = support.click(port, "bench.example", f"/page/{i % 20}")
            with lock:
                if status == 204:
                    state["ok"] += 1
                else:
                    state["other"][status] = state["other"].get(status, 0) + 1

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state["ok"], state["other"]


def main():
    clicks = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    missing = support.missing_externals()
    if missing:
        sys.exit("bench_cpu: needs " + ", ".join(missing))
    workdir = tempfile.mkdtemp(prefix="pmbench-")
    procs = []
    try:
        pg, db_url = support.start_postgres(workdir)
        procs.append(pg)
        rd, redis_url = support.start_redis(workdir)
        procs.append(rd)
        replica = support.Replica(workdir, "bench", db_url, redis_url, workers=1, sites=("bench.example",))
        procs.append(replica.proc)
        deadline = time.monotonic() + DEADLINE
        send(replica.port, WARMUP, clients, deadline)  # imports, connections, caches warm

        gunicorn = [replica.proc.pid] + replica.proc.children()
        before = (support.cpu_seconds(gunicorn), support.cpu_seconds([rd.pid]),
                  support.cpu_seconds(postgres_tree(pg.pid)), time.process_time())
        started = time.monotonic()
        ok, other = send(replica.port, clicks, clients, deadline)
        wall = time.monotonic() - started
        after = (support.cpu_seconds(gunicorn), support.cpu_seconds([rd.pid]),
                 support.cpu_seconds(postgres_tree(pg.pid)), time.process_time())
        if ok == 0:
            sys.exit(f"bench_cpu: no click got 204 ({other})")
        g, r, p, c = (a - b for a, b in zip(after, before))
        print(f"clicks: {ok} x 204, other: {other or 'none'}, clients: {clients}, wall {wall:.2f} s "
              f"({ok / wall:.0f} clicks/s)")
        print(f"gunicorn (master+1 worker): {g:.2f} s CPU = {1000 * g / ok:.2f} ms per click "
              f"({g / wall:.2f} cores busy)")
        print(f"redis-server: {1000 * r / ok:.3f} ms per click; postgres: {1000 * p / ok:.3f} ms per click; "
              f"client: {1000 * c / ok:.2f} ms per click")
        print(f"RSS: master {rss_mib(gunicorn[0]):.0f} MiB, worker {rss_mib(gunicorn[1]):.0f} MiB; "
              f"load average: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    finally:
        for proc in reversed(procs):
            proc.stop(grace=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
