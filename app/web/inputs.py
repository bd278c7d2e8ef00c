"""The input layer at the HTTP edge, before any view runs.

Every URL part, query parameter, form field (and upload name) and JSON body is checked for
characters that no database stores (NUL, unpaired surrogates): such a request gets 400 naming the
field, whatever the view would have done with it. Ids in URLs stay within their column's range, so a
huge number finds no page (404) instead of overflowing a query. Lengths and ranges of particular
fields are the services' rules; ``app.bounds`` is where both meet.
"""

from __future__ import annotations

import re

import orjson
from flask import Flask, abort, current_app, request
from werkzeug.routing import IntegerConverter

from app.bounds import INT32, json_problem, text_problem
from app.db import WRITE_METHODS

# No page takes JSON yet; a body is read only this large before anyone is signed in or trusted.
JSON_BODY_MAX = 256 * 1024


class IdConverter(IntegerConverter):
    """``<int:…>`` in our URLs is a row id: 1 … 2³¹−1, in ASCII digits with no leading zero (werkzeug's
    own ``\\d+`` takes other scripts' digits, and a zero-padded id would be a second address for a row).
    Anything else matches no route, so it is a 404."""

    regex = r"[1-9][0-9]{0,9}"

    def __init__(self, map, fixed_digits=0, min=1, max=INT32[1], signed=False):  # noqa: A002 - werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def failed_precondition(path, response) -> bool:
    """Whether a download's If-Match or If-Unmodified-Since fails (werkzeug answers If-Match with 412
    but still sends the file, and does not read If-Unmodified-Since): the caller sends an empty 412."""
    since = request.if_unmodified_since
    if since is not None and int(path.stat().st_mtime) > since.timestamp():
        return True
    return response.status_code == 412


def whole_number(raw: str | None, digits: int = 9, signed: bool = True) -> int | None:
    """A whole number typed into a form or a query string: ASCII digits (after an optional minus when
    ``signed``), at most ``digits`` of them, else None. Never ``str.isdigit()`` or a bare ``int()``:
    both also take other scripts' digits, and isdigit() superscripts that int() then refuses."""
    raw = (raw or "").strip()
    if not re.fullmatch(rf"{'-?' if signed else ''}[0-9]{{1,{digits}}}", raw):
        return None
    return int(raw)


def row_id(raw: str | None) -> int | None:
    """A row id typed into a form (a select's value, a ticked box): 1 … 2³¹−1, else None."""
    raw = (raw or "").strip()
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not 1 <= int(raw) <= INT32[1]:
        return None
    return int(raw)


def _refuse(where: str, problem: str):
    abort(400, description=f"{where} {problem}.")


def check_request() -> None:
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and (problem := text_problem(value)):
            _refuse(f"The address part “{name}”", problem)
    for key, value in request.args.items(multi=True):
        if problem := text_problem(key) or text_problem(value):
            _refuse(f"The query parameter “{text_problem(key) and '?' or key}”", problem)
    if request.method not in WRITE_METHODS:
        return
    if getattr(current_app.view_functions.get(request.endpoint or ""), "large_body", False):
        return  # the view streams its body to a service that checks every line (the API's item upload)
    if request.is_json:
        if (request.content_length or 0) > JSON_BODY_MAX:
            abort(413, description=f"A JSON body may be at most {JSON_BODY_MAX // 1024} KB.")
        if request.content_length is None:
            # A chunked body gives no length to check: read one byte past the limit at most, so a
            # longer one is refused (413) before anything is parsed, whoever sends it. What was read
            # is the body the views get (werkzeug's own cache of it).
            body = request.stream.read(JSON_BODY_MAX + 1)
            if len(body) > JSON_BODY_MAX:
                abort(413, description=f"A JSON body may be at most {JSON_BODY_MAX // 1024} KB.")
            request._cached_data = body
        body = request.get_data(cache=True)
        if body:
            try:
                # orjson, not the stdlib: it refuses absurd nesting instead of overflowing the stack
                value = orjson.loads(body)
            except orjson.JSONDecodeError:
                abort(400, description="The body is not valid JSON.")
            if problem := json_problem(value):
                _refuse("The JSON body", problem)
        return
    for key, value in request.form.items(multi=True):
        if problem := text_problem(key) or text_problem(value):
            _refuse(f"The field “{text_problem(key) and '?' or key}”", problem)
    for key, upload in request.files.items(multi=True):
        if problem := text_problem(upload.filename or ""):
            _refuse(f"The name of the file in “{key}”", problem)


def register(app: Flask) -> None:
    app.before_request(check_request)
