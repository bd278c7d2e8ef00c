"""Logs as one JSON object per line (``LOG_FORMAT=json``), each naming the request or job it belongs to.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; inside a request also
``request_id``, ``method``, ``endpoint`` (the route's name, never the raw path: paths can hold reset
links and tokens) and ``user_id`` when someone is signed in; inside an RQ job ``job_id`` and the
``request_id`` of the request that queued it. Fields passed with ``extra=`` (``status``,
``duration_ms`` on the request line) are added as they are, and an exception comes with its
``traceback``. The default, ``text``, leaves logging as it is (Flask's handler, gunicorn's).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from flask import Flask, g, has_app_context, has_request_context, request
from flask.logging import default_handler

# What every LogRecord carries; anything else on a record came from ``extra=`` and is written out.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_CONTEXT = ("request_id", "method", "endpoint", "user_id", "job_id")


def _current_user_id():
    """The signed-in user's id if this request has already loaded them: a log line never queries."""
    user = g.get("_login_user") or g.get("api_user")
    if user is not None and getattr(user, "is_authenticated", False):
        return getattr(user, "id", None)
    return None


class ContextFilter(logging.Filter):
    """Adds the request's (or the job's) identity to every record that passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.method = request.method
            record.endpoint = request.endpoint
            record.user_id = _current_user_id()
        elif has_app_context() and g.get("request_id"):
            record.request_id = g.get("request_id")  # an in-process job started by a request
        rq_job = sys.modules.get("rq.job")  # not imported: this process runs no RQ job
        job = rq_job.get_current_job() if rq_job is not None else None
        if job is not None:
            record.job_id = job.id
            if not getattr(record, "request_id", None):
                record.request_id = (job.meta or {}).get("request_id")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _CONTEXT and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["traceback"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["traceback"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (gunicorn, a test's capture)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(app: Flask) -> None:
    """JSON lines on standard error for the whole process when ``LOG_FORMAT=json``: one handler on the
    root logger (replacing one an earlier app of this process installed), Flask's own handler removed
    so nothing is written twice. ``text`` changes nothing."""
    if app.config.get("LOG_FORMAT") != "json":
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    app.logger.removeHandler(default_handler)
    # gunicorn's error log goes through the same line format; its access log is left to gunicorn
    # (the app writes its own request line, with the request id, to ``groundwork.request``).
    for name in ("gunicorn.error", "rq.worker"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


def remove(app: Flask) -> None:
    """Take the JSON handler off again and give Flask its own back (tests that switched it on)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    if default_handler not in app.logger.handlers:
        app.logger.addHandler(default_handler)
