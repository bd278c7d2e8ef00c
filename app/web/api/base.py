"""What every API endpoint shares: the blueprint, the OpenAPI document's builder, authentication by
bearer token, the role and read-only checks, the error shape and cursor pagination.

An endpoint is a view on ``bp`` with three decorators, outermost first: the route, ``allow(...)``
(who may call it: authentication, roles, read-only tokens) and ``spec.validate(...)`` (the request and
response models, declared once: they validate the request on the way in and make the document).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import wraps
from importlib.metadata import version
from typing import Annotated

import orjson
from flask import Blueprint, current_app, g, request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from spectree import Response, SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from app.db import WRITE_METHODS, get_session
from app.errors import Forbidden, ServiceError, Unauthorized, ValidationError
from app.models import ApiToken, User
from app.services import api_tokens

from ..inputs import whole_number

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC = "public"
ANY = "signed-in"


class UnsupportedMediaType(ServiceError):
    status = 415


# --- request and response models ------------------------------------------------------------------


class In(BaseModel):
    """A request body: unknown fields are an error, not silently dropped, and values are taken as the
    JSON types they are declared as (strict: "3" is no number, "yes" no boolean, "1e-1" no fraction;
    an instant is the one kind of text that becomes a value)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """A query string: unknown parameters are an error; its values are text, read as their types
    (numbers in ASCII digits only: ``ascii_count``)."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    code: str = Field(description="A stable machine-readable code: invalid, not_found, conflict, …")
    message: str = Field(description="What went wrong, in words a person can act on")
    details: dict[str, str] = Field(default_factory=dict,
                                    description="Field (or line:field) → what is wrong with it")


class ErrorBody(BaseModel):
    error: Problem


def ascii_count(value):
    """A query's number as sent: ASCII digits only ("+5", " 5" and "5.0" name no count)."""
    if isinstance(value, str) and (value != value.strip() or whole_number(value, signed=False) is None):
        raise ValueError("must be a whole number written in digits 0-9")
    return value


class PageQuery(Query):
    limit: Annotated[int, BeforeValidator(ascii_count)] = Field(50, ge=1, le=200, description="Rows per page")
    cursor: str | None = Field(None, max_length=200, description="next_cursor from the previous page")


# Statuses any authenticated endpoint may answer with, besides its own.
COMMON_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429)


def responses(errors: tuple[int, ...] = (), **ok) -> Response:
    """``spectree.Response`` with the endpoint's own responses (``HTTP_200=Model``, ``HTTP_204=None``) and
    the error body for the common errors and ``errors`` (409, 503, …)."""
    codes = {f"HTTP_{c}": ErrorBody for c in (*COMMON_ERRORS, *errors)}
    return Response(**codes, **ok)


spec = SpecTree(
    "flask",
    mode="strict",
    title="Groundwork API",
    version=version("groundwork"),
    description=("The REST API of Groundwork. Authenticate with a personal access token from the "
                 "API tokens page: `Authorization: Bearer gw_…`. An error is an object `error` holding "
                 "`code`, `message` and `details` (field → problem); lists are paged with `limit` and "
                 "`cursor` (pass the `next_cursor` of the previous page)."),
    path="api/v1/openapi",  # spectree leaves routes under this out of the document (ours: the docs)
    filename="openapi.json",
    page_templates={},
    validation_error_status=422,
    naming_strategy=lambda model: model.__name__,  # models are named once across the API
    nested_naming_strategy=lambda parent, child: child,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"bearer": []},
)


# --- authentication and access --------------------------------------------------------------------


BEARER_RE = re.compile(r"Bearer[ ]+(\S+)", re.IGNORECASE)


def authenticate() -> None:
    """Before every API view: the bearer token's user in ``g.api_user`` (public views need none).
    Session cookies are not accepted here, so the API needs no CSRF token and a browser tab cannot be
    made to call it."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or PUBLIC in getattr(view, "access_roles", ()):
        return
    header = request.headers.get("Authorization", "")
    match = BEARER_RE.fullmatch(header.strip())
    if not match:
        raise Unauthorized("Send a token: Authorization: Bearer gw_…")
    found = api_tokens.authenticate(get_session(), match.group(1))
    if found is None:
        raise Unauthorized("The token is unknown, revoked or expired, or its account is suspended.")
    g.api_user, g.api_token = found
    note_token_user(g.api_token.token_hash, g.api_user.id)
    form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    if request.method in WRITE_METHODS and not getattr(view, "large_body", False) \
            and (form or (request.content_length and request.mimetype != "application/json")):
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).")


# Whose each token seen here is (its digest's start → user id): the rate limit counts per person, not
# per token, since anyone may make several. A token's owner never changes, so nothing goes stale;
# the map is emptied when it grows past its bound.
TOKEN_USERS: dict[str, int] = {}
TOKEN_USERS_MAX = 100_000


def note_token_user(token_hash: str, user_id: int) -> None:
    if len(TOKEN_USERS) >= TOKEN_USERS_MAX:
        TOKEN_USERS.clear()
    TOKEN_USERS[token_hash[:32]] = user_id


def user() -> User:
    return g.api_user


def token() -> ApiToken:
    return g.api_token


def allow(*roles: str):
    """Admit tokens whose user holds any of ``roles`` (any authenticated user when none are given).
    Writes (POST, PATCH, PUT, DELETE) need a token that is not read-only."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if roles and not g.api_user.has_role(*roles):
                raise Forbidden(f"This needs the {' or '.join(roles)} role.")
            if request.method in WRITE_METHODS and g.api_token.read_only:
                raise Forbidden("This token is read-only.")
            return view(*args, **kwargs)

        wrapper.access_roles = roles or (ANY,)
        return wrapper

    return decorate


def public(view):
    view.access_roles = (PUBLIC,)
    return view


# --- validation hooks: our error shape for spectree's checks ------------------------------------------


def _location(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "__root__")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def before_validation(req, resp, req_validation_error, instance, model_adapter=None) -> None:
    """A request that breaks its model is a ValidationError naming every field (422)."""
    if req_validation_error is None:
        return
    details: dict[str, str] = {}
    for error in req_validation_error.errors():
        key = _location(error.get("loc", ())) or "body"
        details.setdefault(key, error.get("msg", "is not valid"))
    raise ValidationError(details)


def after_validation(req, resp, resp_validation_error, instance, model_adapter=None) -> None:
    """A response that breaks its own model is our bug: logged (the client gets a 500)."""
    if resp_validation_error is not None:
        current_app.logger.error("API response broke its schema: %s %s: %s", req.method, req.path,
                                 resp_validation_error)


spec.before = before_validation
spec.after = after_validation


# --- cursor pagination ------------------------------------------------------------------------------


def decode_cursor(cursor: str | None) -> int | None:
    """The id a page starts after, from an opaque cursor; a cursor we did not write is a 422."""
    if not cursor:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
        after = value["after"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise ValidationError({"cursor": "is not a cursor this API gave out; start without one"}) from None
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 2**31 - 1:
        raise ValidationError({"cursor": "is not a cursor this API gave out; start without one"})
    return after


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def page(rows: list, limit: int, key=lambda row: row.id) -> tuple[list, str | None]:
    """``rows`` fetched with ``limit + 1``: the page and the next cursor (None on the last page)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(key(rows[-1]))
    return rows, None
