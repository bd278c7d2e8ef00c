"""The route-level half of the access layer: every view declares who may call it.

``require()`` marks a view with the roles it admits (none = any signed-in user). A test walks the
URL map and checks that every view carries a declaration, then calls each one as every role.
"""

from __future__ import annotations

import re
import time
from functools import wraps

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user, login_user

from app.bounds import INT32
from app.db import get_session
from app.errors import Unauthorized
from app.extensions import htmx, login_manager
from app.models import User
from app.services import users as user_service

PUBLIC = "public"
SIGNED_IN_AT = "signed_in_at"  # the session key holding when its sign-in happened (Unix seconds)
CLOCK_SKEW_SECONDS = 60  # how far web nodes' clocks may disagree


def sign_in(user: User) -> None:
    """Start a signed-in session for ``user`` (a sign-in, an application, a changed password): it lasts
    ``SESSION_LIFETIME_HOURS`` from now, however often the cookie is written again meanwhile."""
    login_user(user, fresh=True)
    session[SIGNED_IN_AT] = int(time.time())
    session.permanent = True


def _within_lifetime() -> bool:
    """Whether this session's sign-in is younger than the lifetime: an absolute limit, not one a
    rewritten cookie (a flash, a CSRF token) moves on. A session without the mark never counts."""
    started = session.get(SIGNED_IN_AT)
    if not isinstance(started, int) or isinstance(started, bool):
        return False
    age = time.time() - started
    # A sign-in a minute "in the future": another web node's clock a little ahead of this one's.
    return -CLOCK_SKEW_SECONDS <= age <= current_app.permanent_session_lifetime.total_seconds()


class Claimed:
    """The person a session cookie names, not yet read: what a view ``require(..., at_door=True)``
    gets as ``current_user``. Its own locking read checks them (account active, this session version
    current, the role held); nothing else may rely on it, so it answers no role question."""

    is_authenticated, is_active, is_anonymous = True, True, False
    unread = True  # what the error pages look for: they draw nobody rather than an unread claim

    def __init__(self, user_id: int, session_version: int):
        self.id, self.session_version = user_id, session_version

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def has_role(self, *_roles: str) -> bool:
        raise RuntimeError("a claimed session is checked by its view's own statement, not by role")


_AT_DOOR = "_user_at_door"


def unread_session_version() -> int | None:
    """For an ``at_door`` view: the session version its service must check, while the signed-in user
    is an unread ``Claimed``; None once the user was read the usual way (nothing left to check)."""
    user = current_user._get_current_object()
    return user.session_version if isinstance(user, Claimed) else None


def require(*roles: str, at_door: bool = False):
    """Allow signed-in users holding any of ``roles`` (any signed-in user when none are given).

    ``at_door``: the view's service checks the session itself, in the locking read it makes anyway (a
    heartbeat, most of a busy server's requests; its door checks the trainer role, so only
    ``require("trainer", at_door=True)`` exists), and the user is not read first. The view gets a
    ``Claimed`` as ``current_user`` — only for the session's own user id, never a remember cookie's;
    if it fails for any reason, the usual check runs after all and its answer comes first (401, 403),
    exactly as without ``at_door``; a session the view refused but the usual check accepts (changed
    in between) has the view run again with the user read.
    """
    if at_door and roles != ("trainer",):
        raise ValueError("only the trainer's heartbeat door checks the sign-in itself")

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if at_door:  # the id the session names now: a remember cookie's load does not match it
                setattr(g, _AT_DOOR, session.get("_user_id"))
            try:
                authenticated = current_user.is_authenticated
            finally:
                g.pop(_AT_DOOR, None)  # honoured for this load only
            if not authenticated:
                return login_manager.unauthorized()
            if at_door and isinstance(current_user._get_current_object(), Claimed):
                try:
                    return view(*args, **kwargs)
                except Exception as exc:
                    get_session().rollback()
                    g.pop("_login_user", None)  # read the user the usual way
                    if not current_user.is_authenticated:
                        return login_manager.unauthorized()
                    if not current_user.has_role(*roles):
                        abort(403)
                    if not isinstance(exc, Unauthorized):
                        raise
                return view(*args, **kwargs)  # the session changed in between: once more, with the user read
            if roles and not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapper.access_roles = roles or ("signed-in",)
        return wrapper

    return decorate


def public(view):
    view.access_roles = (PUBLIC,)
    return view


def register(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        """The session's user, while the account is active and the cookie's session version is the
        account's current one (sign-out, a password change or an admin ends older ones)."""
        if not _within_lifetime():
            return None
        user_id, _, version = (session_id or "").partition(":")
        if not (re.fullmatch(r"[0-9]{1,10}", user_id) and re.fullmatch(r"[0-9]{1,10}", version)) \
                or int(user_id) > INT32[1]:
            return None
        if session_id is not None and g.get(_AT_DOOR) == session_id:  # the session's own id, unread
            return Claimed(int(user_id), int(version))
        return user_service.session_user(get_session(), int(user_id), int(version))

    @login_manager.unauthorized_handler
    def unauthorized():
        if htmx:
            # A fragment request whose session ended: send the whole page to the login screen.
            response = current_app.response_class(status=401)
            response.headers["HX-Redirect"] = url_for("auth.login", next=request.referrer or None)
            return response
        if request.accept_mimetypes.best == "application/json":
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
