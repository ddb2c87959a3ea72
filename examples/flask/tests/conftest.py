"""Fixtures for the Polymetrie (Flask) tests: one PostgreSQL and one redis-server for the
session, two gunicorn replicas sharing them. Missing PostgreSQL/redis-server → every test
that needs them is skipped loudly, or fails when LOADGEN_REQUIRE_EXTERNAL=1. Every process
is stopped by its pid in teardown."""
import os
import shutil
import sys
import tempfile
import warnings

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session")
def externals():
    missing = support.missing_externals()
    if missing:
        msg = "real-stores tests need " + ", ".join(missing)
        if os.environ.get("LOADGEN_REQUIRE_EXTERNAL") == "1":
            pytest.fail(msg + " (LOADGEN_REQUIRE_EXTERNAL=1)", pytrace=False)
        warnings.warn("SKIPPED: " + msg)
        print("\n*** SKIPPING: " + msg + " ***", file=sys.stderr)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def workdir():
    # Under /tmp; PostgreSQL listens on TCP only, so the path length does not matter.
    path = tempfile.mkdtemp(prefix="pmflask-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(externals, workdir):
    proc, url = support.start_postgres(workdir)
    yield url
    assert proc.stop(grace=20) == 0, proc.tail()


@pytest.fixture(scope="session")
def redis_url(externals, workdir):
    proc, url = support.start_redis(workdir)
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def token_file(workdir):
    path = os.path.join(workdir, "admin-token")
    with open(path, "w") as f:
        f.write(f"  {TOKEN}\n")  # surrounding whitespace is ignored
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def replicas(postgres, redis_url, token_file, workdir):
    """Two replicas, 2 sync workers each, same PostgreSQL and Redis."""
    started = []
    try:
        for name in ("a", "b"):
            started.append(support.Replica(workdir, name, postgres, redis_url, workers=2,
                                           sites=("a.example", "b.example"), token_file=token_file))
        yield started
    finally:
        codes = [r.stop() for r in started]
    assert codes == [0] * len(started), [r.proc.tail() for r in started]
