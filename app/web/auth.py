from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.db import get_session
from app.services import users as user_service

from .access import public, require
from .errors import render_error

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never send someone to another host after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
    email = ""
    error = None
    status = 200
    if request.method == "POST":
        email = user_service.normalise_email(request.form.get("email", ""))
        password = request.form.get("password", "")
        throttle = current_app.extensions["login_throttle"]
        address = request.remote_addr or "unknown"
        verdict = throttle.check(address, email)
        if not verdict.allowed:
            minutes = max(1, round(verdict.retry_after / 60))
            return render_error(
                429,
                f"Too many failed sign-in attempts. Try again in about {minutes} minute{'s' if minutes > 1 else ''}.",
                {"Retry-After": str(verdict.retry_after)},
            )
        db = get_session()
        user = user_service.authenticate(db, email, password)
        if user is None:
            throttle.failed(address, email)
            db.rollback()
            error = "That e-mail and password do not match an active account."
            status = 401
        else:
            db.commit()
            throttle.succeeded(address, email)
            session.clear()
            login_user(user)
            session.permanent = True
            return redirect(_safe_next(request.form.get("next")) or url_for("home.index"))
    return render_template("auth/login.html", email=email, error=error, next=request.values.get("next", "")), status


@bp.post("/logout")
@require()
def logout():
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))
