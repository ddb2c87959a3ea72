"""gunicorn settings and hooks for one Polymetrie (Flask) replica.

Loaded by the gunicorn master: pass `-c examples/flask/gunicorn.conf.py` (gunicorn looks for
./gunicorn.conf.py in the directory it was started from, *before* applying --chdir, so
`--chdir` alone does not find it). Argv wins over what is set here (`--bind`, `--workers`).
It:
- checks the configuration before any worker starts (exit 2 with one line, as the Rust
  service does, instead of N workers failing to boot);
- prepares PROMETHEUS_MULTIPROC_DIR (created if missing, stale files of an earlier run
  removed) before anything imports prometheus_client;
- optionally serves the summed metrics from the master on 127.0.0.1:$METRICS_PORT;
- prints one JSON line on stdout once listening, like the Rust service.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import settings  # noqa: E402 - needs the path above

try:
    settings.load()
except settings.ConfigError as e:
    print(f"polymetrie: {e}", file=sys.stderr)
    sys.exit(2)

# prometheus_client picks its value class from this variable when first imported, so it
# must be set (and the folder exist) before any hook or worker imports it.
_created_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _created_dir = tempfile.mkdtemp(prefix="polymetrie-prom-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _created_dir
MULTIPROC_DIR = os.path.abspath(os.environ["PROMETHEUS_MULTIPROC_DIR"])
os.environ["PROMETHEUS_MULTIPROC_DIR"] = MULTIPROC_DIR  # absolute: workers may chdir
os.makedirs(MULTIPROC_DIR, exist_ok=True)
os.environ["POLYMETRIE_GUNICORN_CONF"] = "1"  # tells app.py the folder is prepared

bind = ["127.0.0.1:8000"]  # loadgen always passes --bind
# WEB_CONCURRENCY (gunicorn's own variable) sets it from the environment, e.g. per loadgen run.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"  # the original's model: one request at a time per worker
timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 10  # SIGTERM: in-flight requests get this long, like the Rust --drain-timeout
keepalive = 2  # ignored by sync workers (they close after each response); here for clarity
errorlog = "-"  # stderr
accesslog = None  # no per-request log: it would cost more than the click itself
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "polymetrie-flask"
# gunicorn >= 24 opens a control socket at ~/.gunicorn/gunicorn.ctl by default: one path for
# every replica of the machine, so N replicas would fight over it. Not needed here.
control_socket_disable = True
backlog = 1024

_metrics_server = None


def on_starting(server):
    # Files left by workers of an earlier run of this replica would be summed into ours.
    for name in os.listdir(MULTIPROC_DIR):
        path = os.path.join(MULTIPROC_DIR, name)
        if name.endswith(".db") and os.path.isfile(path):
            os.unlink(path)


def when_ready(server):
    """Runs in the master once the listeners are bound, before the workers are forked."""
    global _metrics_server
    admin_addr = None
    port = os.environ.get("METRICS_PORT", "").strip()
    if port:
        from prometheus_client import CollectorRegistry, multiprocess, start_wsgi_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        host = os.environ.get("METRICS_ADDR", "127.0.0.1")
        # Served by a thread of the master: it sums the workers' files, keeps answering
        # while every worker is busy, and outlives a worker being replaced.
        _metrics_server, _ = start_wsgi_server(int(port), addr=host, registry=registry)
        admin_addr = f"{host}:{_metrics_server.server_port}"
        server.log.info("metrics on http://%s/metrics", admin_addr)
    addrs = []
    for listener in server.LISTENERS:
        name = listener.getsockname()
        addrs.append(f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name))
    print(json.dumps({"event": "listening", "addr": addrs[0] if addrs else None,
                      "admin_addr": admin_addr, "pid": os.getpid()}), flush=True)


def post_fork(server, worker):
    # The worker inherits the master's metrics socket; it never accepts on it, so drop it.
    if _metrics_server is not None:
        _metrics_server.socket.close()


def child_exit(server, worker):
    # A dead worker's counters stay summed (they are history); its live gauges must not.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _created_dir is not None:
        shutil.rmtree(_created_dir, ignore_errors=True)
