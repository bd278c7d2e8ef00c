"""The REST API, ``/api/v1``: JSON over the same services as the pages, authenticated by bearer
tokens, described by an OpenAPI 3.1 document generated from the endpoints' models (``base.spec``)."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.extensions import csrf
from app.services import api_tokens

from . import docs, exports, items, members, pay, projects, quality, reviews, work  # noqa: F401 - routes
from .base import TOKEN_USERS, authenticate, bp

bp.before_request(authenticate)
csrf.exempt(bp)  # no session cookie is accepted here: a token in a header is the only credential


def _rate_key() -> str:
    """Limits are per person: a token this process has seen counts as its user (``base.TOKEN_USERS``),
    so several tokens share one allowance; a token not seen yet counts on its own (its first request
    teaches the map, and a bad one is refused and counted on its address too); without a well-formed
    token, per address (after ProxyFix)."""
    header = request.headers.get("Authorization", "")
    raw = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if api_tokens.TOKEN_RE.fullmatch(raw):
        key = api_tokens.digest(raw)[:32]
        owner = TOKEN_USERS.get(key)
        return f"user:{owner}" if owner is not None else "token:" + key
    return _address_key()


def _address_key() -> str:
    return "address:" + (get_remote_address() or "-")


def _refused(response) -> bool:
    return response.status_code == 401


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    storage = app.config.get("REDIS_URL") or "memory://"
    limiter = Limiter(
        key_func=_rate_key, app=app, storage_uri=storage, headers_enabled=True,
        key_prefix=f"{app.config['REDIS_PREFIX']}limits", default_limits=[], application_limits=[],
        strategy="moving-window", swallow_errors=True,
        # Redis away: count in this process's memory meanwhile (never unlimited), and give up connecting fast.
        in_memory_fallback_enabled=True,
        storage_options={"socket_connect_timeout": 2, "socket_timeout": 2} if app.config.get("REDIS_URL") else {},
    )
    limiter.limit(lambda: app.config["API_RATE_LIMIT"])(bp)
    # A made-up token is well formed, so it would get an allowance of its own: every refused request
    # (401) also counts against its address, so guessing or spraying tokens meets the address's limit.
    limiter.limit(lambda: app.config["API_RATE_LIMIT"], key_func=_address_key, deduct_when=_refused,
                  scope="api-refused")(bp)
    # Only the API has limits: every other request skips the limiter's look-up of its (empty) limits,
    # which cost a page or a heartbeat about 3 % of its CPU.
    limiter.request_filter(lambda: request.blueprint != bp.name)
    app.extensions["api_limiter"] = limiter
