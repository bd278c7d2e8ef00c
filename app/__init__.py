"""Groundwork: an open workbench for human feedback on AI."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from .config import ROOT, load_config

__version__ = "0.1.0"


def create_app(overrides: dict | None = None, environ: dict | None = None, web: bool = True) -> Flask:
    """Build the app. ``overrides`` win over the environment (tests pass DATABASE_URL etc. here).
    ``web=False`` leaves out the pages (blueprints, login, CSRF): the command line builds that for the
    commands that call services only, which then start without importing the web layer."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    overrides = dict(overrides or {})
    instance = Path(overrides.pop("INSTANCE_PATH", app.instance_path))
    instance.mkdir(parents=True, exist_ok=True)
    app.instance_path = str(instance)  # everything the app keeps (uploads, versions, its key) goes under it
    env = dict(os.environ if environ is None else environ)
    # Settings that are also environment variables go through the same parsing as the environment.
    for key in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "GROUNDWORK_ENV"):
        if key in overrides:
            value = overrides.pop(key)
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
    app.config.update(load_config(instance, env))
    app.config.update(overrides)
    from .logs import configure as configure_logs

    configure_logs(app)  # LOG_FORMAT=json: one JSON object per line, for the web and the workers alike
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from .db import Database

    Database().init_app(app)  # one per app: two apps in a process (tests, scripts) never share an engine
    if web:
        from . import web as pages
        from .extensions import csrf, htmx, login_manager

        csrf.init_app(app)
        htmx.init_app(app)
        login_manager.init_app(app)
        pages.init_app(app)

        from .services.users import dummy_hash

        dummy_hash()  # before the first sign-in, so an unknown e-mail takes as long from the first request on

    from tasks import init_app as init_tasks

    init_tasks(app)

    from .cli import register as register_commands

    register_commands(app)
    return app
