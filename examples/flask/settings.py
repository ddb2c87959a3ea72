"""Polymetrie (Flask) configuration, read from the environment only.

Kept apart from app.py so that gunicorn.conf.py (run in the gunicorn master) can check it
and fail fast with one line, without importing Flask or creating any metric in the master.
"""
import hashlib
import os

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ConfigError(Exception):
    """A setting that makes starting pointless (the master exits 2 with this message)."""


def _int(name, default, minimum):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def _float(name, default, minimum):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def read_token_digest(path):
    """SHA-256 of the admin token in `path` (whitespace around it ignored), or None without a
    path. Only the digest is kept: comparing digests in constant time leaks neither the
    token nor its length. The token itself is never accepted from env or argv (it would show
    in `ps` and /proc/PID/environ)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except OSError as e:
        raise ConfigError(f"ADMIN_TOKEN_FILE {path!r}: {e.strerror}") from None
    token = raw.strip()
    if not token:
        raise ConfigError(f"ADMIN_TOKEN_FILE {path!r} is empty")
    if any(b <= 0x20 or b >= 0x7F for b in token):
        raise ConfigError(f"ADMIN_TOKEN_FILE {path!r}: the token must be printable ASCII without spaces")
    return hashlib.sha256(token).digest()


def load():
    """Every setting as a dict; raises ConfigError on a bad one."""
    sites = [s.strip() for s in os.environ.get("SITES", "").split(",") if s.strip()]
    return {
        "database_url": os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        "redis_url": os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
        "sites": sites,
        "token_digest": read_token_digest(os.environ.get("ADMIN_TOKEN_FILE", "").strip()),
        # Distinct URLs kept per site (store and metrics labels); the rest count as __other__.
        "url_cap": _int("URL_CAP", 100, 1),
        "top_urls": _int("TOP_URLS", 10, 1),
        # How long a worker trusts its list of known sites before asking PostgreSQL again.
        "site_cache_ttl": _float("SITE_CACHE_TTL", 1.0, 0.0),
        # Bound on each Redis operation, and on connecting to Redis / PostgreSQL.
        "store_timeout": _float("STORE_TIMEOUT", 1.0, 0.05),
        "body_limit": _int("BODY_LIMIT", 16384, 64),
        "log_level": os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
    }
