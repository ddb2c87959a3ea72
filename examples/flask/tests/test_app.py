"""End-to-end tests of Polymetrie (Flask) on a real PostgreSQL, a real redis-server and real
gunicorn replicas on free 127.0.0.1 ports: exact counting across two replicas, per-replica
metrics summed over workers, sites added at run time, every bad input's 4xx, readiness when
Redis goes away, the URL cap, configuration errors and SIGTERM."""
import glob
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.mmap_dict import MmapedDict

import support
from conftest import TOKEN
from support import click, get, metric_values, request, scrape

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def clicks_metric(port, site):
    return metric_values(scrape(port), "polymetrie_clicks_total").get(f'{{site="{site}"}}')


def requests_metric(port, code, method="POST", route="/api/clicks"):
    key = f'{{code="{code}",method="{method}",route="{route}"}}'
    return metric_values(scrape(port), "polymetrie_http_requests_total").get(key, 0.0)


def per_worker_clicks(prom_dir, site):
    """{pid: value} of polymetrie_clicks_total{site} in each worker's own file."""
    out = {}
    for path in glob.glob(os.path.join(prom_dir, "counter_*.db")):
        pid = int(path.rsplit("_", 1)[1].split(".")[0])
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(path):
            _family, sample, labels, _help = json.loads(key)
            if sample == "polymetrie_clicks_total" and labels == {"site": site}:
                out[pid] = out.get(pid, 0) + value
    return out


def test_clicks_counted_exactly_across_two_replicas(replicas):
    a, b = replicas
    site = "count.example"
    assert request(a.port, "POST", "/api/sites", {"site": site}, AUTH)[0] == 201
    assert request(b.port, "POST", "/api/sites", {"site": site}, AUTH)[0] == 200  # idempotent
    before = {r.port: requests_metric(r.port, 204) for r in replicas}

    # 8 concurrent clients per replica keep both sync workers of each busy.
    jobs = [(r.port, f"/page/{i % 5}") for i in range(300) for r in replicas]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda job: (job[0], click(job[0], site, job[1])), jobs))
    ok = {r.port: sum(1 for p, s in statuses if p == r.port and s == 204) for r in replicas}
    assert {s for _, s in statuses} <= {204, 503}, {s for _, s in statuses}
    assert sum(ok.values()) >= 590, ok  # a 503 would be a store hiccup, not expected here

    status, _, body = request(a.port, "GET", f"/api/sites/{site}/stats")
    stats = json.loads(body)
    assert status == 200
    assert stats["clicks"] == sum(ok.values())  # Redis total = every 204, exactly
    assert sum(u["clicks"] for u in stats["urls"]) == stats["clicks"]
    assert stats["urls"] == sorted(stats["urls"], key=lambda u: (-u["clicks"], u["url"]))
    for r in replicas:
        # Each replica shows its own clicks, summed over its workers, on both metrics ports.
        assert clicks_metric(r.port, site) == ok[r.port]
        assert metric_values(scrape(r.metrics_port), "polymetrie_clicks_total")[f'{{site="{site}"}}'] == ok[r.port]
        assert requests_metric(r.port, 204) - before[r.port] == ok[r.port]
        workers = per_worker_clicks(r.prom_dir, site)
        assert len([v for v in workers.values() if v > 0]) == 2, workers  # both workers counted
        assert sum(workers.values()) == ok[r.port]


def test_site_added_later_appears_in_metrics_without_restart(replicas):
    a, b = replicas
    site = "late.example"
    assert click(b.port, site, "/") == 404
    assert clicks_metric(a.port, site) is None and clicks_metric(b.port, site) is None
    assert request(a.port, "POST", "/api/sites", {"site": site}, AUTH)[0] == 201
    registered = time.monotonic()
    assert clicks_metric(a.port, site) == 0  # registered here: at 0 at once
    # Replica b's workers learn it from PostgreSQL within their site cache TTL (1 s); a
    # scrape refreshes the cache too, so the series appears at 0 before any click.
    support.wait_until("b to show the new site", lambda: clicks_metric(b.port, site) == 0, 5)
    # Each worker has its own cache: until both refreshed, a click may still get 404
    # (not counted). Both have after one TTL.
    support.wait_until("b to accept clicks", lambda: click(b.port, site, "/new") == 204, 5, interval=0.1)
    assert time.monotonic() - registered < 2.5
    assert clicks_metric(b.port, site) == 1
    assert clicks_metric(a.port, site) == 0
    assert json.loads(get(a.port, f"/api/sites/{site}/stats")[1])["clicks"] == 1
    sites = json.loads(get(b.port, "/api/sites")[1])["sites"]
    assert sites == sorted(sites) and {"a.example", "b.example", site} <= set(sites)


BAD_CLICKS = [
    (b'{"site": "a.example", "url": "/x"', 400, "malformed JSON"),
    (b"", 400, "empty body"),
    (b"[]", 400, "not an object"),
    (b'"a.example"', 400, "a string"),
    (b'{"url": "/x"}', 400, "missing site"),
    (b'{"site": "a.example"}', 400, "missing url"),
    (b'{"site": "", "url": "/x"}', 400, "empty site"),
    (b'{"site": "a.example", "url": ""}', 400, "empty url"),
    (b'{"site": 7, "url": "/x"}', 400, "numeric site"),
    (b'{"site": "a.example", "url": ["/x"]}', 400, "list url"),
    (b'{"site": null, "url": "/x"}', 400, "null site"),
    (b'{"site": "a.example", "url": "/a\\nb"}', 400, "newline in url"),
    (b'{"site": "a.example", "url": "/a\\u007fb"}', 400, "DEL in url"),
    (b'{"site": "a.example", "url": "/a\\u0085b"}', 400, "C1 in url"),
    (b'{"site": "a.example", "url": "/\\ud800"}', 400, "lone surrogate in url"),
    (b'{"site": "a.example", "url": "/\xff"}', 400, "invalid UTF-8"),
    (json.dumps({"site": "a.example", "url": "/" + "x" * 2048}).encode(), 400, "url of 2049 bytes"),
    (json.dumps({"site": "a.example", "url": "\u00e9" * 1024 + "x"}, ensure_ascii=False).encode(), 400, "2049 UTF-8 bytes"),
    (b'{"site": "nobody.example", "url": "/x"}', 404, "unknown site"),
    (b'{"site": "a.example", "url": "/x", "pad": "' + b"x" * 20000 + b'"}', 413, "body over the limit"),
]


@pytest.mark.parametrize("body,expected,why", BAD_CLICKS, ids=[c[2] for c in BAD_CLICKS])
def test_bad_clicks_get_their_4xx(replicas, body, expected, why):
    status, headers, resp = request(replicas[0].port, "POST", "/api/clicks", body,
                                    {"Content-Type": "application/json"})
    assert status == expected, (why, resp)
    assert headers["content-type"].startswith("application/json")
    assert "error" in json.loads(resp)


def test_edges_methods_and_registration_errors(replicas):
    a = replicas[0]
    # The longest valid URLs are accepted, in ASCII and in multi-byte UTF-8; %00 is text.
    assert click(a.port, "a.example", "/" + "x" * 2047) == 204
    assert click(a.port, "a.example", "\u00e9" * 1024) == 204
    assert click(a.port, "a.example", "/a%00b") == 204
    for method, path, allow in [("GET", "/api/clicks", "POST"), ("PUT", "/api/clicks", "POST"),
                                ("DELETE", "/api/sites", "GET, HEAD, POST"),
                                ("POST", "/metrics", "GET, HEAD"), ("OPTIONS", "/healthz", "GET, HEAD")]:
        status, headers, _ = request(a.port, method, path)
        assert status == 405, (method, path)
        assert sorted(headers["allow"].split(", ")) == sorted(allow.split(", ")), (method, path)
    assert get(a.port, "/nowhere")[0] == 404
    assert get(a.port, "/api/sites/nobody.example/stats")[0] == 404
    # Registration: no credential 401 (with WWW-Authenticate), wrong token 403, bad names 400.
    status, headers, _ = request(a.port, "POST", "/api/sites", {"site": "x.example"})
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert request(a.port, "POST", "/api/sites", {"site": "x.example"}, {"Authorization": "Basic eDp5"})[0] == 401
    assert request(a.port, "POST", "/api/sites", {"site": "x.example"}, {"Authorization": "Bearer nope"})[0] == 403
    assert request(a.port, "POST", "/api/sites", {"site": "x.example"},
                   {"Authorization": f"bearer {TOKEN}"})[0] == 201  # scheme case-insensitive
    for name in ["", "a b", "a/b", "a\tb", "x" * 254, 5, None]:
        assert request(a.port, "POST", "/api/sites", {"site": name}, AUTH)[0] == 400, name
    assert request(a.port, "POST", "/api/sites", b"{nope", AUTH)[0] == 400
    assert "x" * 254 not in json.loads(get(a.port, "/api/sites")[1])["sites"]
    # Nothing above was a 500, on either replica.
    for r in replicas:
        codes = {k for k in metric_values(scrape(r.port), "polymetrie_http_requests_total")}
        assert not [k for k in codes if 'code="5' in k], codes


@pytest.fixture
def solo(postgres, externals, workdir):
    """A replica of its own (1 worker, URL cap 3, no token file) on a Redis of its own, so
    stopping that Redis disturbs no other test."""
    redis_proc, redis_url = support.start_redis(workdir)
    replica = None
    try:
        replica = support.Replica(workdir, f"solo-{redis_proc.pid}", postgres, redis_url, workers=1,
                                  sites=("solo.example",), extra_env={"URL_CAP": "3"})
        yield replica, redis_proc, redis_url
    finally:
        if replica is not None:
            replica.stop()
        redis_proc.stop()


def test_readyz_follows_redis_and_registration_is_off_without_token(solo, workdir):
    replica, redis_proc, redis_url = solo
    port = replica.port
    status, _, body = request(port, "POST", "/api/sites", {"site": "y.example"}, AUTH)
    assert status == 403 and b"ADMIN_TOKEN_FILE" in body
    assert get(port, "/readyz")[0] == 200
    assert click(port, "solo.example", "/") == 204
    assert redis_proc.stop() == 0
    status, headers, _ = request(port, "GET", "/readyz")
    assert status == 503 and headers["retry-after"] == "1"
    status, headers, _ = request(port, "POST", "/api/clicks", {"site": "solo.example", "url": "/"})
    assert status == 503 and headers["retry-after"] == "1"
    assert get(port, "/healthz")[0] == 200
    assert clicks_metric(port, "solo.example") == 1  # the refused click was not counted
    # A new redis-server on the same port: the replica recovers by itself.
    restarted, _ = support.start_redis(workdir, port=int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    try:
        support.wait_until("readyz 200 again", lambda: get(port, "/readyz")[0] == 200, 10)
        assert click(port, "solo.example", "/") == 204
    finally:
        restarted.stop()


def test_url_cap_folds_extra_urls_into_other(solo):
    replica, _, _ = solo
    for url in ["/1", "/2", "/3", "/4", "/5", "/1", "__other__"]:
        assert click(replica.port, "solo.example", url) == 204
    stats = json.loads(get(replica.port, "/api/sites/solo.example/stats")[1])
    assert stats["clicks"] == 7
    assert stats["urls"] == [{"url": "__other__", "clicks": 3}, {"url": "/1", "clicks": 2},
                             {"url": "/2", "clicks": 1}, {"url": "/3", "clicks": 1}]
    labels = metric_values(scrape(replica.port), "polymetrie_url_clicks_total")
    assert labels == {'{site="solo.example",url="/1"}': 2, '{site="solo.example",url="/2"}': 1,
                      '{site="solo.example",url="/3"}': 1, '{site="solo.example",url="__other__"}': 3}


def test_bad_configuration_exits_2_at_once(tmp_path):
    if not os.access(support.GUNICORN, os.X_OK):
        pytest.skip("gunicorn not installed next to this python")
    env = dict(os.environ, ADMIN_TOKEN_FILE=str(tmp_path / "missing"), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "p"))
    started = time.monotonic()
    done = subprocess.run([support.GUNICORN, "-c", os.path.join(support.FLASK_DIR, "gunicorn.conf.py"),
                           "--bind", f"127.0.0.1:{support.free_port()}", "--chdir", support.FLASK_DIR, "app:app"],
                          env=env, capture_output=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert b"ADMIN_TOKEN_FILE" in done.stderr and time.monotonic() - started < 10


def test_sigterm_stops_master_and_workers(postgres, redis_url, workdir):
    replica = support.Replica(workdir, "term", postgres, redis_url, workers=2, sites=("a.example",))
    workers = replica.proc.children()
    assert len(workers) == 2
    assert click(replica.port, "a.example", "/term") == 204
    assert replica.stop() == 0
    assert not [w for w in workers if os.path.exists(f"/proc/{w}")]
