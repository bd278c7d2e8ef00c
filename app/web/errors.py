"""Error pages for full loads, and small fragments for HTMX requests (shown in the flash area)."""

from __future__ import annotations

from flask import Flask, g, jsonify, render_template, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.errors import ServiceError, ValidationError
from app.extensions import htmx, login_manager

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Sign in required", "Your session has ended. Please sign in again."),
    403: ("Not allowed", "Your account does not have access to this page."),
    404: ("Not found", "There is nothing here. It may have been moved or you may not have access to it."),
    409: ("Conflict", "That could not be done in the current state."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Too large", "The upload is larger than this server accepts."),
    415: ("Unsupported media type", "The body is not in a format this address accepts."),
    416: ("Range not satisfiable", "The byte range asked for is not in the file."),
    503: ("Busy", "The database is busy or unreachable for a moment. Please try again."),
    507: ("No room", "The server's disk has no room for that."),
    422: ("Invalid input", "Some of what you sent is not valid."),
    429: ("Too many attempts", "Too many attempts. Please wait and try again."),
    500: ("Something went wrong", "An unexpected error happened. It has been logged; please try again."),
}


# The API's machine-readable code for each status.
API_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
             409: "conflict", 413: "too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable", 422: "invalid", 429: "rate_limited", 500: "internal",
             503: "unavailable", 507: "insufficient_storage"}


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def api_error(status: int, message: str, details: dict | None = None, headers: dict | None = None):
    """The API's error body: ``{"error": {"code", "message", "details"}}``."""
    body = {"error": {"code": API_CODES.get(status, "error"), "message": message,
                      "details": {str(k): str(v) for k, v in (details or {}).items()}}}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="groundwork"'
    return jsonify(body), status, headers


def render_error(status: int, detail: str | None = None, headers: dict | None = None, details: dict | None = None):
    if getattr(g.get("_login_user"), "unread", False):
        _without_user()  # a session claim no check has read (``access.Claimed``) draws no page
    title, message = MESSAGES.get(status, ("Error", "An error occurred."))
    if is_api_request():
        return api_error(status, detail or message, details, headers)
    if request_ctx.url_adapter is None:  # refused before routing (a Host not in TRUSTED_HOSTS): no page links
        return f"{status} {title}: {detail or message}\n", status, {"Content-Type": "text/plain; charset=utf-8"}
    context = {"status": status, "title": title, "message": detail or message}
    if htmx:
        body = render_template("errors/_error.html", **context)
        # Errors from a fragment request land in the flash area instead of replacing the task.
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", **(headers or {})}
    else:
        body = render_template("errors/page.html", **context)
    return body, status, headers or {}


def _rollback() -> None:
    """Whatever the failed request had started is undone before the error page is rendered."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def _without_user() -> None:
    """The error page is drawn for nobody in particular: loading the signed-in person (or a lazy
    attribute of theirs after the rollback) would need the database that just failed."""
    g._login_user = login_manager.anonymous_user()


def register(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        _rollback()
        # Our messages are written for the person who caused them; a NotFound says no more than 404.
        detail = None if exc.status == 404 else str(exc)
        details = None
        if isinstance(exc, ValidationError) and "" not in exc.errors:
            detail = "Some of what you sent is not valid: " + str(exc)
            details = exc.errors
        return render_error(exc.status, detail, details=details)

    # The three below are safety nets: each is a rule a service should have caught first, so each is
    # logged with its traceback, and under TESTING the DataError one is raised (a gap in the bounds).
    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError):
        # Two people changed the same thing at once and the database kept the first change.
        _rollback()
        app.logger.error("integrity error reached the edge", exc_info=exc)
        return render_error(409, "Someone else changed this at the same moment. Reload the page to see it.")

    @app.errorhandler(DataError)
    def data_error(exc: DataError):
        _rollback()
        if app.testing:
            raise exc
        app.logger.error("a value the bounds let through was refused by the database", exc_info=exc)
        return render_error(422, "A value was out of the range this field accepts.")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def operational_error(exc: OperationalError | InterfaceError):
        # The database is unreachable (restarting, failing over) or busy: a retryable 503 that needs
        # no database itself. Once a statement meets a dead connection the pool replaces every one it
        # holds, and a connection that rested is pinged before use (app.db), so the next request gets a live one.
        try:
            _rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the pool drops it
            pass
        _without_user()
        app.logger.error("database error reached the edge", exc_info=exc)
        return render_error(503, None, {"Retry-After": "5"})

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return render_error(400, "This form has expired or was not sent by Groundwork. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        headers = dict(exc.get_headers()) if exc.code == 405 else {}
        headers.pop("Content-Type", None)
        # Our own words (abort(403, "…")) are shown; werkzeug's generic defaults are not.
        own = exc.description and exc.description != type(exc).description
        description = exc.description if exc.code in (400, 403, 409, 413, 422) and own else None
        if exc.code == 429 and exc.description:
            description = f"Too many requests ({exc.description}). Wait and try again."
        if exc.response is not None and exc.code == 429:
            headers.update({k: v for k, v in exc.response.headers.items() if k.lower().startswith(("retry-after", "x-ratelimit"))})
        return render_error(exc.code or 500, description, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error", exc_info=exc)
        return render_error(InternalServerError.code)
