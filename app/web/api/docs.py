"""The OpenAPI document and its reference page (server-rendered: no script, no CDN, the app's CSP)."""

from __future__ import annotations

import orjson
from flask import current_app, render_template

from .base import bp, public, spec


def document() -> dict:
    """The OpenAPI 3.1 document, generated from the endpoints' models (once per process)."""
    return spec.spec


@bp.get("/openapi.json")
@public
def openapi():
    return current_app.response_class(orjson.dumps(document()), mimetype="application/json")


@bp.get("/")
@public
def reference():
    doc = document()
    operations = []
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            operations.append({"path": path, "method": method.upper(), **op})
    operations.sort(key=lambda op: (op.get("tags", [{}])[0] if op.get("tags") else "", op["path"], op["method"]))
    return render_template("api/reference.html", doc=doc, operations=operations,
                           pretty=lambda value: orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
