"""The route-level half of the access layer: every view declares who may call it.

``require()`` marks a view with the roles it admits (none = any signed-in user). A test walks the
URL map and checks that every view carries a declaration, then calls each one as every role.
"""

from __future__ import annotations

import re
from functools import wraps

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_login import current_user

from app.bounds import INT32
from app.db import get_session
from app.extensions import htmx, login_manager
from app.models import User
from app.services import users as user_service

PUBLIC = "public"


def require(*roles: str):
    """Allow signed-in users holding any of ``roles`` (any signed-in user when none are given)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
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
        user_id, _, version = (session_id or "").partition(":")
        if not (re.fullmatch(r"[0-9]{1,10}", user_id) and re.fullmatch(r"[0-9]{1,10}", version)) \
                or int(user_id) > INT32[1]:
            return None
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
