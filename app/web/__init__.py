"""Blueprints: parse the request, call one service, render a page or a fragment."""

from __future__ import annotations

import json

from flask import Flask
from markupsafe import Markup

from app.models import utcnow
from app.models.projects import KIND_NAMES
from app.services.exporting.options import OPTION_LABELS
from app.services.money import format_cents
from app.services.qtypes import FIGURE_NAMES, QUESTION_TYPES, response_name, type_of
from app.services.qtypes.base import RESPONSE_LETTERS
from app.services.rendering import render_markdown
from app.services.throttle import LoginThrottle, MemoryCounter, RedisCounter

from . import (
    access,
    admin,
    api,
    auth,
    client,
    errors,
    exports,
    home,
    inputs,
    observability,
    ops,
    pay,
    recruiting,
    recruiting_admin,
    review,
    staffing,
    tokens,
    webhooks,
    work,
)
from .paging import page_url
from .security import add_security_headers
from .sessions import RememberingCookieSessionInterface


def attribute_safe_json(value) -> str:
    """``tojson`` that returns plain text, so autoescaping applies wherever it lands: inside an
    attribute its quotes become ``&#34;`` and cannot end the attribute (Jinja's own ``tojson``
    returns markup that leaves ``"`` as it is)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def sanitised_markdown(text) -> Markup:
    """Untrusted markdown as HTML: the one place a template gets markup it did not write."""
    return Markup(render_markdown(text))


def filesize(n: int) -> str:
    size = float(n or 0)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def clock_time(seconds) -> str:
    """Paid time as h:mm:ss, exact to the second: hours rounded to two decimals (0.18 h) do not multiply
    out to the amount beside them (0.1847 h at 45.00 is 8.31)."""
    seconds = int(seconds or 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = inputs.IdConverter  # before any rule is added
    app.session_interface = RememberingCookieSessionInterface()  # one per app: its memory knows this app's keys
    observability.register(app)  # first: its hooks see every request, whichever later hook refuses it
    for module in (home, auth, work, review, admin, exports, pay, recruiting, recruiting_admin, staffing, tokens,
                   client, webhooks, ops):
        app.register_blueprint(module.bp)
    api.init_app(app)
    errors.register(app)
    inputs.register(app)
    access.register(app)
    app.after_request(add_security_headers)
    app.jinja_env.filters["markdown"] = sanitised_markdown
    app.jinja_env.filters["tojson"] = attribute_safe_json
    app.jinja_env.globals["now"] = utcnow
    app.jinja_env.filters["thousands"] = lambda n: f"{int(n):,}"
    app.jinja_env.filters["filesize"] = filesize
    app.jinja_env.filters["cents"] = format_cents
    app.jinja_env.globals["currency"] = app.config.get("CURRENCY", "USD")
    app.jinja_env.filters["clock"] = clock_time
    app.jinja_env.globals["question_template"] = lambda question: type_of(question).template
    app.jinja_env.globals["figure_names"] = FIGURE_NAMES
    app.jinja_env.globals["response_name"] = response_name
    app.jinja_env.globals["response_letters"] = RESPONSE_LETTERS
    app.jinja_env.globals["option_labels"] = OPTION_LABELS
    app.jinja_env.globals["kind_names"] = KIND_NAMES
    app.jinja_env.globals["page_url"] = page_url
    app.jinja_env.globals["question_scripts"] = [t.script for t in QUESTION_TYPES.values() if t.script]
    app.jinja_env.tests["side_by_side"] = lambda question: type_of(question).side_by_side

    if app.config.get("REDIS_URL"):
        from redis import Redis

        # A Redis that does not answer must not hold sign-ins for the system's connect timeout: the
        # throttle counts in memory meanwhile.
        counter = RedisCounter(Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2),
                               app.config["REDIS_PREFIX"])
    else:
        counter = MemoryCounter()
    app.extensions["login_throttle"] = LoginThrottle(
        counter, app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_WINDOW_SECONDS"]
    )
