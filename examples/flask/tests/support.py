"""Process and HTTP helpers shared by the tests and bench_cpu.py: free ports, a real
PostgreSQL (via ../start-postgres), a real redis-server and gunicorn replicas, each started
and stopped by its own pid (SIGTERM, then SIGKILL after a grace), never by name. All traffic
goes to 127.0.0.1."""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLASK_DIR = os.path.dirname(HERE)
START_POSTGRES = os.path.join(FLASK_DIR, "start-postgres")
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
HOST = "127.0.0.1"


def free_port():
    """A port free right now (gunicorn cannot bind port 0 and report it back). Racy in
    theory, like every such helper; the kernel hands out ephemeral ports in turn, so a port
    just released is not handed out again at once."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def postgres_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: [int(x) for x in d.split("/")[-2].split(".") if x.isdigit()])
    dirs = [d for d in dirs if os.access(os.path.join(d, "postgres"), os.X_OK)]
    return dirs[-1] if dirs else None


def missing_externals():
    """What a real-stores test lacks on this machine ([] when it can run)."""
    missing = []
    if postgres_bin() is None:
        missing.append("PostgreSQL (/usr/lib/postgresql/*/bin/postgres)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not os.access(GUNICORN, os.X_OK):
        missing.append(f"gunicorn next to {sys.executable}")
    return missing


class Proc:
    """A process we started, stopped by its pid only."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd,
        )
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def children(self):
        """Direct children's pids (a gunicorn master's workers)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def stop(self, grace=10.0):
        """SIGTERM, wait up to `grace`, then SIGKILL; the children we saw are killed by pid
        too if they outlive a killed parent. Returns the exit code."""
        kids = self.children()
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        for kid in kids:
            if os.path.exists(f"/proc/{kid}") and _parent(kid) in (1, self.pid):
                try:
                    os.kill(kid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()
        return self.popen.returncode

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def wait_until(what, check, timeout, proc=None, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}:\n{proc.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}" + (f":\n{proc.tail()}" if proc else ""))


def start_postgres(workdir, port=None):
    """PostgreSQL via start-postgres on a free port; returns (proc, database_url)."""
    port = port or free_port()
    os.chmod(workdir, 0o755)  # start-postgres drops to user postgres, which must reach it
    datadir = os.path.join(workdir, "pg")
    proc = Proc("postgres", [START_POSTGRES, datadir, str(port)], os.path.join(workdir, "postgres.log"))
    isready = os.path.join(postgres_bin(), "pg_isready")

    def ready():
        return subprocess.run([isready, "-q", "-h", HOST, "-p", str(port), "-U", "postgres"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5).returncode == 0

    wait_until("postgres to accept connections", ready, 60, proc, interval=0.1)
    return proc, f"postgresql://postgres@{HOST}:{port}/postgres"


def start_redis(workdir, port=None):
    """redis-server on a free port, no persistence; returns (proc, redis_url)."""
    port = port or free_port()
    rdir = os.path.join(workdir, f"redis-{port}")
    os.makedirs(rdir, exist_ok=True)
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", rdir]
    proc = Proc("redis", argv, os.path.join(workdir, f"redis-{port}.log"))

    def ready():
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    wait_until("redis to answer PING", ready, 20, proc)
    return proc, f"redis://{HOST}:{port}/0"


class Replica:
    """One gunicorn replica (its own port, metrics port and multiprocess folder)."""

    def __init__(self, workdir, name, database_url, redis_url, workers=2, sites=(), token_file=None, extra_env=None):
        self.port = free_port()
        self.metrics_port = free_port()
        self.prom_dir = os.path.join(workdir, f"prom-{name}")
        env = dict(os.environ)
        for key in ("ADMIN_TOKEN_FILE", "SITES", "METRICS_PORT", "GUNICORN_CMD_ARGS"):
            env.pop(key, None)
        env.update({
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PROMETHEUS_MULTIPROC_DIR": self.prom_dir,
            "METRICS_PORT": str(self.metrics_port),
            "SITES": ",".join(sites),
        })
        if token_file:
            env["ADMIN_TOKEN_FILE"] = token_file
        env.update(extra_env or {})
        argv = [GUNICORN, "-c", os.path.join(FLASK_DIR, "gunicorn.conf.py"), "--bind", f"{HOST}:{self.port}",
                "--workers", str(workers), "--chdir", FLASK_DIR, "app:app"]
        self.proc = Proc(f"replica {name}", argv, os.path.join(workdir, f"replica-{name}.log"), env=env)
        self.workers = workers
        # Ready when every worker has booted (a worker logs one line once app.py is imported).
        wait_until(f"replica {name} workers", lambda: self.proc.tail(200).count("ready:") >= workers, 30, self.proc)
        wait_until(f"replica {name} /healthz", lambda: get(self.port, "/healthz")[0] == 200, 30, self.proc)

    def stop(self):
        return self.proc.stop()


def request(port, method, path, body=None, headers=None, timeout=10):
    """One HTTP request on a fresh connection (sync gunicorn workers close each one);
    returns (status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get(port, path):
    status, _, body = request(port, "GET", path)
    return status, body


def click(port, site, url):
    return request(port, "POST", "/api/clicks", {"site": site, "url": url})[0]


def metric_values(text, name):
    """{labels-string: value} of one metric family's samples in exposition text."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key[len(name):]] = float(value)
    return out


def scrape(port):
    status, body = get(port, "/metrics")
    assert status == 200, status
    return body.decode()


def cpu_seconds(pids):
    """utime+stime of these processes (clock ticks → s), from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick
