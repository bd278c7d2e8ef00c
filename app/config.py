"""Configuration from the environment: every setting the README's table lists, and nothing else."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    pass


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret_key(instance_path: Path) -> str:
    """Generate a key once per checkout so dev sessions survive restarts; never used in production."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    # A notice, not a Python warning: it reads as one plain line on the console of `make run`.
    logging.getLogger("groundwork.config").warning(
        "SECRET_KEY is not set; generated a development key into %s under the instance folder. "
        "Set SECRET_KEY in production.", path.name)
    return key


def _proxies(value: str | None) -> int:
    raw = (value or "0").strip()
    if raw not in {"0", "1", "2", "3", "4", "5"}:
        raise ConfigError(f"TRUSTED_PROXIES must be the number of reverse proxies in front of the app (0–5), not {raw!r}")
    return int(raw)


_HOST = re.compile(r"\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _hosts(value: str | None) -> list[str] | None:
    """TRUSTED_HOSTS: the host names requests may name (comma-separated; ".example.org" takes its
    subdomains too), or None to take any (development, or a proxy that already checks)."""
    hosts = [h.strip() for h in (value or "").split(",") if h.strip()]
    for host in hosts:
        if len(host) > 253 or not _HOST.fullmatch(host):
            raise ConfigError(f"TRUSTED_HOSTS takes host names separated by commas (like groundwork.example.org, "
                              f"or .example.org for its subdomains too), not {host[:60]!r}")
    return hosts or None


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
METRICS_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")


def _choice(name: str, value: str | None, default: str, choices: tuple[str, ...], normalise=str.lower) -> str:
    raw = normalise((value or default).strip())
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _currency(value: str | None) -> str:
    """The currency every amount is in: an ISO 4217 code (USD by default)."""
    raw = (value or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", raw):
        raise ConfigError(f"CURRENCY must be a three-letter ISO 4217 code such as USD or EUR, not {raw[:20]!r}")
    return raw


def _metrics_token(value: str | None) -> str | None:
    raw = (value or "").strip()
    if not raw:
        return None
    if not METRICS_TOKEN_RE.fullmatch(raw):
        raise ConfigError("METRICS_TOKEN must be 16–256 characters of letters, digits and ._~+/=- "
                          "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return raw


def _seconds(name: str, value: str | None, default: float, low: float, high: float) -> float:
    raw = (value or "").strip() or str(default)
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not low <= seconds <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, not {raw}")
    return seconds


def _hsts(value: str | None) -> int:
    raw = (value or "0").strip()
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) > 2 * 365 * 86400:
        raise ConfigError(f"HSTS_SECONDS must be a whole number of seconds from 0 (off) to 63072000 (two years), not {raw!r}")
    return int(raw)


def _multiproc_dir(value: str | None) -> str | None:
    raw = (value or "").strip()
    if raw and not Path(raw).is_dir():
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR must be an existing folder the web workers can write to ({raw!r} is not)")
    return raw or None


def load_config(instance_path: Path, environ: dict[str, str] | None = None) -> dict:
    env = os.environ if environ is None else environ
    mode = env.get("GROUNDWORK_ENV", "development").strip().lower()
    if mode not in {"development", "production"}:
        raise ConfigError(f"GROUNDWORK_ENV must be 'development' or 'production', not {mode!r}")
    production = mode == "production"

    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if production:
            raise ConfigError("SECRET_KEY is required when GROUNDWORK_ENV=production")
        secret_key = _dev_secret_key(instance_path)

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'groundwork.sqlite3'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    return {
        "GROUNDWORK_ENV": mode,
        "SECRET_KEY": secret_key,
        "DATABASE_URL": database_url,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "REDIS_PREFIX": env.get("REDIS_PREFIX", "groundwork:"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        # Only send the session cookie when it changed: parallel requests (heartbeats, the favicon)
        # must not write back a stale copy over a newer one.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "PERMANENT_SESSION_LIFETIME": int(env.get("SESSION_LIFETIME_HOURS", "12")) * 3600,
        # Trainers keep the workspace open all day; the token lives as long as the session.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": production,
        "MAX_CONTENT_LENGTH": int(env.get("MAX_UPLOAD_MB", "100")) * 1024 * 1024,
        "LOGIN_MAX_FAILURES": int(env.get("LOGIN_MAX_FAILURES", "5")),
        "LOGIN_WINDOW_SECONDS": int(env.get("LOGIN_WINDOW_SECONDS", "900")),
        # How many reverse proxies sit in front of the app; their X-Forwarded-For/-Proto/-Host are
        # believed, nobody else's (0: the connection's own address is the client's).
        "TRUSTED_PROXIES": _proxies(env.get("TRUSTED_PROXIES")),
        # The Host a request may name (Flask answers any other with 400): links the app writes in
        # full (reset links, the API's Location and status URLs) take the request's host.
        "TRUSTED_HOSTS": _hosts(env.get("TRUSTED_HOSTS")),
        "SQL_ECHO": _bool(env.get("SQL_ECHO"), False),
        # Dataset versions are written here (a folder per version); keep it on a disk with room.
        "EXPORT_DIR": env.get("EXPORT_DIR") or str(instance_path / "exports"),
        # Uploads wait here for their import job (each is removed when its job ends, however it ends).
        "IMPORT_DIR": env.get("IMPORT_DIR") or str(instance_path / "imports"),
        # Free space a new dataset version must leave on the disk of EXPORT_DIR, beside its own size
        # (estimated by the project's largest version): a version is refused (507) without it.
        "EXPORT_MIN_FREE_MB": int(env.get("EXPORT_MIN_FREE_MB", "256")),
        # How often (in annotations read) a running export saves its progress.
        "EXPORT_PROGRESS_ROWS": int(env.get("EXPORT_PROGRESS_ROWS", "20000")),
        # Processes a large JSONL export is split across (this one plus forked helpers).
        "EXPORT_PROCESSES": int(env.get("EXPORT_PROCESSES") or min(2, os.cpu_count() or 1)),
        # The currency of every rate, budget and payment (shown beside amounts; one per installation).
        "CURRENCY": _currency(env.get("CURRENCY")),
        # Applications one address may send per hour (the public /apply form).
        "APPLY_MAX_PER_HOUR": int(env.get("APPLY_MAX_PER_HOUR", "5")),
        # Optional model-assisted grading of written answers: any OpenAI-compatible chat endpoint.
        "GRADER_URL": (env.get("GRADER_URL") or "").strip(),
        "GRADER_MODEL": (env.get("GRADER_MODEL") or "").strip(),
        "GRADER_API_KEY": env.get("GRADER_API_KEY") or None,
        "GRADER_TIMEOUT": float(env.get("GRADER_TIMEOUT", "20")),
        # Requests one API token (or one address without a token) may make, in flask-limiter's notation.
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        # An item upload to the API larger than this runs as an import job (202 and a status URL).
        "API_INLINE_ITEMS_BYTES": int(env.get("API_INLINE_ITEMS_BYTES", str(1024 * 1024))),
        # Webhooks: seconds a receiver has to answer, and attempts per event before it is marked failed
        # (retried after 10 s, 1 min, 5 min, 30 min, then every 2 h).
        "WEBHOOK_TIMEOUT": float(env.get("WEBHOOK_TIMEOUT", "10")),
        "WEBHOOK_MAX_ATTEMPTS": int(env.get("WEBHOOK_MAX_ATTEMPTS", "6")),
        "WEBHOOK_RETRY_DELAYS": (10, 60, 300, 1800, 7200),
        # Logs: one JSON object per line (json) for a log collector, or plain text (the default).
        "LOG_FORMAT": _choice("LOG_FORMAT", env.get("LOG_FORMAT"), "text", LOG_FORMATS),
        "LOG_LEVEL": _choice("LOG_LEVEL", env.get("LOG_LEVEL"), "INFO", LOG_LEVELS, str.upper),
        # /metrics: with a token, only `Authorization: Bearer <token>` is served; without one, only
        # requests from loopback and private addresses that did not come through a proxy.
        "METRICS_TOKEN": _metrics_token(env.get("METRICS_TOKEN")),
        # Set (in the environment, before the workers start) when gunicorn runs several workers: each
        # writes its counters there and /metrics adds them up.
        "PROMETHEUS_MULTIPROC_DIR": _multiproc_dir(env.get("PROMETHEUS_MULTIPROC_DIR")),
        # /readyz: seconds each check (database, Redis) may take before it counts as failed.
        "READY_TIMEOUT": _seconds("READY_TIMEOUT", env.get("READY_TIMEOUT"), 2.0, 0.1, 30.0),
        # PostgreSQL: a pooled connection that rested longer than this is pinged before use (one used
        # a moment ago is not: a ping per request is a round trip per request).
        "DATABASE_PING_AFTER_SECONDS": _seconds("DATABASE_PING_AFTER_SECONDS",
                                                env.get("DATABASE_PING_AFTER_SECONDS"), 1.0, 0.0, 3600.0),
        # Strict-Transport-Security on HTTPS responses, in seconds (0: off; the proxy may send it instead).
        "HSTS_SECONDS": _hsts(env.get("HSTS_SECONDS")),
    }
