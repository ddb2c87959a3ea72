"""Polymetrie, the TD4 team's original click counter: a Flask app served by gunicorn.

Member sites live in PostgreSQL (table `sites`), clicks in Redis (same keys and Lua script
as the Rust rewrite in service/, so both can be loaded by one loadgen template), metrics via
prometheus_client in multiprocess mode (one directory per replica, summed over its gunicorn
workers). Everything is configured from the environment (settings.py); see README.md.

Each gunicorn sync worker imports this module after the fork and handles one request at a
time, so the per-worker state below (one PostgreSQL connection, one Redis pool, the site
cache) needs no locking.
"""
import hashlib
import hmac
import json
import logging
import os
import re
import sys
import time

import prometheus_client
import psycopg
import redis
from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import HTTPException

import settings

CFG = settings.load()

logging.basicConfig(
    stream=sys.stderr,
    level=getattr(logging, CFG["log_level"], logging.INFO),
    format="%(asctime)s [%(process)d] [%(levelname)s] polymetrie: %(message)s",
)
log = logging.getLogger("polymetrie")

if not os.environ.get("POLYMETRIE_GUNICORN_CONF"):
    # gunicorn.conf.py prepares the metrics folder once per replica, in the master; started
    # without it (no `-c`), the best a worker can do is create the folder.
    log.warning("started without gunicorn.conf.py (-c): stale metric files are not cleared")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    else:
        # Each worker would count alone and /metrics would show whichever worker answered.
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: /metrics shows one worker only")

OTHER_URL = "__other__"
MAX_URL_BYTES = 2048
MAX_SITE_BYTES = 253
# URLs longer than this are kept in the store but labelled __other__ in the metrics (a
# label value that long would bloat every scrape).
MAX_URL_LABEL_BYTES = 256
# C0, DEL and C1: the general category Cc, as the Rust version's char::is_control.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
BAD_SITE_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f/]")
STATS_PATH = re.compile(r"^/api/sites/[^/]+/stats$")

# One click, atomically in Redis: the site's total, then the URL's entry under the cap
# (a URL not seen yet gets its own entry only while fewer than `cap` URLs have one, else it
# counts under __other__). A script rather than MULTI: the cap needs a read and the write
# that depends on it in one step, so racing replicas cannot exceed it. Identical to
# service/src/store/redis.rs. Returns 1 when the URL has its own entry, 0 for __other__.
CLICK_SCRIPT = """
redis.call('INCR', KEYS[1])
local url, cap, other = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local own = 1
if url == other then
  own = 0
elseif not redis.call('ZSCORE', KEYS[2], url) then
  local distinct = redis.call('ZCARD', KEYS[2])
  if redis.call('ZSCORE', KEYS[2], other) then distinct = distinct - 1 end
  if distinct >= cap then own = 0 end
end
if own == 0 then url = other end
redis.call('ZINCRBY', KEYS[2], 1, url)
return own
"""

# ---------------------------------------------------------------- metrics
# Counters and histograms are per worker files summed at scrape time; the in-progress gauge
# sums live workers only (child_exit in gunicorn.conf.py marks dead ones).
CLICKS = Counter("polymetrie_clicks", "Clicks this replica stored, by site", ["site"])
URL_CLICKS = Counter(
    "polymetrie_url_clicks",
    "Clicks this replica stored, by site and URL (URL values capped per site; overflow "
    'and URLs over 256 bytes under url="__other__")',
    ["site", "url"],
)
REQUESTS = Counter(
    "polymetrie_http_requests", "Answered HTTP requests", ["method", "route", "code"]
)
DURATION = Histogram(
    "polymetrie_http_request_duration_seconds",
    "Time from the request reaching the worker to the response being built",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_PROGRESS = Gauge(
    "polymetrie_http_requests_in_progress",
    "Requests being handled by this replica's workers now",
    multiprocess_mode="livesum",
)
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}


def route_of(path):
    """A bounded label value for a path (never the raw path: clients choose it)."""
    if path in ("/api/clicks", "/api/sites", "/metrics", "/healthz", "/readyz"):
        return path
    if STATS_PATH.match(path):
        return "/api/sites/{site}/stats"
    return "other"


# ---------------------------------------------------------------- errors
class ApiError(Exception):
    """An answer other than success, turned into `{"error": …}` with its status."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Unavailable(ApiError):
    """A store did not answer: 503 with Retry-After, never a 500."""

    def __init__(self, what, err):
        super().__init__(503, f"{what} unavailable", {"Retry-After": "1"})
        log.warning("%s unavailable: %s", what, str(err).strip().splitlines()[0] if str(err) else type(err).__name__)


# ---------------------------------------------------------------- PostgreSQL
class Database:
    """One lazily opened autocommit connection per worker, reopened after any failure.

    A sync worker runs one request at a time, so one connection is all it can use; the
    schema is ensured on every new connection (cheap, and it recreates the table if the
    database was wiped while we ran)."""

    # Arbitrary constant naming "polymetrie schema setup" among advisory locks.
    SCHEMA_LOCK = 0x706F6C79

    def __init__(self, url, sites, timeout):
        self.url = url
        self.sites = sites
        self.timeout = timeout
        self.conn = None

    def _open(self):
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            # libpq rounds connect_timeout up to 2 s; statement_timeout bounds each query.
            connect_timeout=max(2, int(self.timeout + 0.999)),
            options=f"-c statement_timeout={int(self.timeout * 2000)}",
        )
        # Several replicas × workers start at once: CREATE TABLE IF NOT EXISTS alone can
        # still fail with a unique violation on pg_type when two run concurrently, so the
        # setup is serialised by a transaction-scoped advisory lock.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sites ("
                " name text PRIMARY KEY,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
            if self.sites:
                conn.execute(
                    "INSERT INTO sites (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                    (self.sites,),
                )
        return conn

    def run(self, fn):
        """fn(conn) with a live connection; any database failure becomes Unavailable."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._open()
            return fn(self.conn)
        except psycopg.Error as e:
            self.close()
            raise Unavailable("postgresql", e) from None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
        self.conn = None

    def all_sites(self):
        return self.run(lambda c: [r[0] for r in c.execute("SELECT name FROM sites ORDER BY name")])

    def add_site(self, name):
        """True when created, False when it already existed (idempotent)."""
        return self.run(
            lambda c: c.execute(
                "INSERT INTO sites (name) VALUES (%s) ON CONFLICT DO NOTHING RETURNING name",
                (name,),
            ).fetchone()
            is not None
        )


class SiteCache:
    """The known sites of this worker, reloaded from PostgreSQL at most once per TTL, so a
    click does not query PostgreSQL each time yet a site added through any replica is seen
    within about a TTL. Sites are never removed, so the cache only grows.

    A failed reload keeps the old list (clicks for known sites go on with Redis alone) and is
    not retried before the TTL, so a down database is not hammered by every click."""

    def __init__(self, db, sites, ttl):
        self.db = db
        self.ttl = ttl
        self.known = set(sites)  # pre-registered sites are known even before PostgreSQL answers
        self.loaded = False
        self.checked_at = float("-inf")
        for s in self.known:
            CLICKS.labels(s)  # series at 0 from the start, so increase() sees the first click

    def _merge(self, names):
        for name in names:
            if name not in self.known:
                self.known.add(name)
                CLICKS.labels(name)  # a new site gets its series without any code change

    def refresh(self, force=False):
        now = time.monotonic()
        if not force and now - self.checked_at < self.ttl:
            return
        self.checked_at = now
        try:
            self._merge(self.db.all_sites())
            self.loaded = True
        except Unavailable:
            if force or not self.loaded:
                raise

    def contains(self, site, fresh_on_miss=False):
        """Whether `site` is a member. Unknown while PostgreSQL was never reached → 503,
        since a 404 would be a lie about a site we simply could not look up."""
        self.refresh()
        if site in self.known:
            return True
        if fresh_on_miss:
            self.refresh(force=True)
            return site in self.known
        if not self.loaded:
            raise ApiError(503, "postgresql unavailable", {"Retry-After": "1"})
        return False

    def add(self, site):
        self._merge([site])


# ---------------------------------------------------------------- Redis
def clicks_key(site):
    return f"polymetrie:site:{site}:clicks"


def urls_key(site):
    return f"polymetrie:site:{site}:urls"


def make_redis(url, timeout):
    # No retry of any command (redis-py retries 3 times by default): a write retried after
    # a lost reply could count a click twice. EVALSHA reloaded on NOSCRIPT is no retry,
    # since NOSCRIPT means nothing ran.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


DB = Database(CFG["database_url"], CFG["sites"], CFG["store_timeout"])
SITES = SiteCache(DB, CFG["sites"], CFG["site_cache_ttl"])
REDIS = make_redis(CFG["redis_url"], CFG["store_timeout"])
CLICK = REDIS.register_script(CLICK_SCRIPT)
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY = CollectorRegistry()
    multiprocess.MultiProcessCollector(REGISTRY)
else:
    REGISTRY = prometheus_client.REGISTRY  # single process: its own values only


def redis_call(fn):
    try:
        return fn()
    except redis.RedisError as e:
        raise Unavailable("redis", e) from None


# ---------------------------------------------------------------- request helpers
def json_object():
    """The request body as a JSON object, else 400 (bad UTF-8, bad JSON, not an object).
    Parsed whatever the Content-Type, as the Rust version does."""
    raw = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH, chunked or not
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "body must be a JSON object") from None
    if not isinstance(value, dict):
        raise ApiError(400, "body must be a JSON object")
    return value


def string_field(body, name):
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"field {name!r} must be a non-empty string")
    return value


def utf8_len(text):
    """Byte length, or None for text that is not valid Unicode (a lone surrogate such as
    "\\ud800" is legal JSON but no UTF-8)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def valid_site_name(name):
    n = utf8_len(name)
    return n is not None and 0 < n <= MAX_SITE_BYTES and not BAD_SITE_CHAR.search(name)


def json_response(status, payload, headers=None):
    return Response(json.dumps(payload), status, headers or {}, mimetype="application/json")


# ---------------------------------------------------------------- app
app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = CFG["body_limit"]
NO_OPTIONS = {"provide_automatic_options": False}  # OPTIONS → 405 with Allow, as in Rust


@app.errorhandler(ApiError)
def api_error(e):
    return json_response(e.status, {"error": e.message}, e.headers)


@app.errorhandler(HTTPException)
def http_error(e):
    # Flask's own 404/405/413…, in the same JSON shape, keeping headers such as Allow.
    resp = e.get_response()
    resp.set_data(json.dumps({"error": e.description if e.code != 404 else "not found"}))
    resp.mimetype = "application/json"
    return resp


@app.errorhandler(Exception)
def unexpected(e):
    log.exception("unexpected error")
    return json_response(500, {"error": "internal error"})


@app.route("/api/clicks", methods=["POST"], **NO_OPTIONS)
def post_click():
    body = json_object()
    site = string_field(body, "site")
    url = string_field(body, "url")
    n = utf8_len(url)
    if n is None or n > MAX_URL_BYTES or CONTROL.search(url):
        raise ApiError(400, "url must be 1-2048 bytes without control characters")
    if not SITES.contains(site):
        raise ApiError(404, "unknown site")
    own = redis_call(
        lambda: CLICK(keys=[clicks_key(site), urls_key(site)], args=[url, CFG["url_cap"], OTHER_URL])
    )
    # Counted only once Redis has applied it: the metrics never run ahead of the store.
    CLICKS.labels(site).inc()
    label = url if own == 1 and n <= MAX_URL_LABEL_BYTES else OTHER_URL
    URL_CLICKS.labels(site, label).inc()
    return Response(status=204)


@app.route("/api/sites", methods=["GET"], **NO_OPTIONS)
def list_sites():
    names = DB.all_sites()
    for name in names:
        SITES.add(name)
    return json_response(200, {"sites": sorted(names)})


@app.route("/api/sites", methods=["POST"], **NO_OPTIONS)
def register_site():
    # The credential is checked before the body is read: an anonymous client learns
    # nothing from its body and makes us parse nothing.
    digest = CFG["token_digest"]
    if digest is None:
        raise ApiError(
            403,
            "site registration over HTTP is disabled: start polymetrie with ADMIN_TOKEN_FILE "
            "set to a file holding the admin token, or pre-register sites with SITES",
        )
    scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise ApiError(
            401, "missing Bearer credential", {"WWW-Authenticate": 'Bearer realm="polymetrie"'}
        )
    given = hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
    if not hmac.compare_digest(given, digest):
        raise ApiError(403, "wrong admin token")
    body = json_object()
    name = body.get("site")
    if not isinstance(name, str) or not valid_site_name(name):
        raise ApiError(400, "site must be 1-253 bytes without whitespace, control characters or '/'")
    created = DB.add_site(name)
    SITES.add(name)
    if created:
        log.info("site registered: %s", name)
    return json_response(201 if created else 200, {"site": name, "created": created})


@app.route("/api/sites/<site>/stats", methods=["GET"], **NO_OPTIONS)
def site_stats(site):
    if not SITES.contains(site, fresh_on_miss=True):
        raise ApiError(404, "unknown site")

    def read():
        pipe = REDIS.pipeline(transaction=True)  # total and URLs from one instant
        pipe.get(clicks_key(site))
        pipe.zrange(urls_key(site), 0, -1, withscores=True)
        return pipe.execute()

    total, urls = redis_call(read)
    entries = [{"url": u.decode("utf-8", "replace"), "clicks": int(c)} for u, c in urls]
    # By clicks, then URL, as the Rust version (ZREVRANGE would break ties by URL descending).
    entries.sort(key=lambda e: (-e["clicks"], e["url"]))
    return json_response(
        200, {"site": site, "clicks": int(total or 0), "urls": entries[: CFG["top_urls"]]}
    )


@app.route("/metrics", methods=["GET"], **NO_OPTIONS)
def metrics():
    # A scrape also refreshes the site list (once per TTL), so a site added through another
    # replica shows up here at 0 without waiting for this replica's first click on it.
    try:
        SITES.refresh()
    except ApiError:
        pass  # metrics must stay readable while PostgreSQL is down
    return Response(generate_latest(REGISTRY), 200, mimetype=None, content_type=CONTENT_TYPE_LATEST)


@app.route("/healthz", methods=["GET"], **NO_OPTIONS)
def healthz():
    return json_response(200, {"status": "ok"})


@app.route("/readyz", methods=["GET"], **NO_OPTIONS)
def readyz():
    checks = {}
    try:
        DB.run(lambda c: c.execute("SELECT 1").fetchone())
        checks["postgresql"] = "ok"
    except ApiError:
        checks["postgresql"] = "unavailable"
    try:
        redis_call(REDIS.ping)
        checks["redis"] = "ok"
    except ApiError:
        checks["redis"] = "unavailable"
    if all(v == "ok" for v in checks.values()):
        return json_response(200, {"status": "ready", **checks})
    return json_response(503, {"status": "unready", **checks}, {"Retry-After": "1"})


class Instrumented:
    """WSGI wrapper counting every answer, Flask's own errors and 500s included (Flask's
    after_request would miss an unhandled exception), with a bounded route label."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        route = route_of(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in KNOWN_METHODS else "other"
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["code"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        IN_PROGRESS.inc()
        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            IN_PROGRESS.dec()
            REQUESTS.labels(method, route, seen.get("code", "500")).inc()
            DURATION.labels(route).observe(time.perf_counter() - started)


app.wsgi_app = Instrumented(app.wsgi_app)
log.info(
    "worker %d ready: %d pre-registered sites, site registration %s",
    os.getpid(),
    len(CFG["sites"]),
    "by admin token" if CFG["token_digest"] else "disabled",
)
