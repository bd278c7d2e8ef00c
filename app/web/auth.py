"""Signing in and out, one's own password, and one-time reset links."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from app.db import get_session
from app.errors import ValidationError
from app.services import users as user_service

from .access import public, require, sign_in
from .errors import render_error

bp = Blueprint("auth", __name__)

# A browser that signed in to an account before may keep trying it even while its address is
# throttled (see services/throttle): the cookie names the accounts it signed in to, signed, hashed.
DEVICE_COOKIE = "gw_device"
DEVICE_DAYS = 365
DEVICE_ACCOUNTS = 5


NEXT_MAX = 2000  # a path to come back to; longer is no link of ours


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never send someone to another host after login. A path with a control
    character goes nowhere: ``urlsplit`` drops tabs and line breaks before looking, and a line break
    cannot be a header's value."""
    if not target or len(target) > NEXT_MAX or any(c < " " or c == "\x7f" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _devices() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="groundwork-device")


def _account_tag(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def _device_cookie() -> dict | None:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = _devices().loads(raw)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("id"), str) else None


def _known_device(email: str) -> str | None:
    """The id of this browser's device cookie when it signed in to ``email`` before, else None."""
    data = _device_cookie()
    if data and _account_tag(email) in (data.get("accounts") or []):
        return data["id"]
    return None


def _remember_device(response, email: str):
    data = _device_cookie() or {"id": secrets.token_hex(8), "accounts": []}
    tag = _account_tag(email)
    accounts = [a for a in data.get("accounts") or [] if a != tag][-(DEVICE_ACCOUNTS - 1):] + [tag]
    response.set_cookie(
        DEVICE_COOKIE, _devices().dumps({"id": data["id"], "accounts": accounts}), max_age=DEVICE_DAYS * 86400,
        httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
    email = ""
    error = None
    status = 200
    if request.method == "POST":
        email = user_service.normalise_email(request.form.get("email", ""))[: user_service.EMAIL_MAX]
        password = request.form.get("password", "")
        throttle = current_app.extensions["login_throttle"]
        # The client's address as the trusted proxies report it (ProxyFix, TRUSTED_PROXIES).
        address = request.remote_addr or "unknown"
        device = _known_device(email)
        verdict = throttle.attempt(address, email, device)
        if not verdict.allowed:
            return _too_many(verdict, "Too many failed sign-in attempts.")
        db = get_session()
        user = user_service.authenticate(db, email, password)
        if user is None:
            db.rollback()  # the attempt is already counted
            error = "That e-mail and password do not match an active account."
            status = 401
        else:
            throttle.succeeded(address, email, device)
            session.clear()
            sign_in(user)
            response = redirect(_safe_next(request.form.get("next")) or url_for("home.index"))
            return _remember_device(response, email)
    next_value = _safe_next(request.values.get("next")) or ""
    return render_template("auth/login.html", email=email, error=error, next=next_value), status


@bp.post("/logout")
@require()
def logout():
    # Ends this cookie and every copy of it (and the person's other sessions): a copied cookie
    # must not outlive the sign-out it was copied before.
    user_service.sign_out(get_session(), current_user)
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


def confirm_password(typed: str):
    """For an action a copied session cookie must not be able to take alone (making an API token): the
    signed-in person types their password again. Counted like a sign-in attempt, on the same counters.
    Returns None when it is right, else the field's error, or the 429 response once over the limit."""
    throttle = current_app.extensions["login_throttle"]
    address, email = request.remote_addr or "unknown", current_user.email
    verdict = throttle.attempt(address, email)
    if not verdict.allowed:
        return _too_many(verdict, "Too many wrong passwords.")
    if not typed:
        throttle.not_checked(address, email)
        return "type your password to confirm it is you"
    if len(typed) > user_service.MAX_PASSWORD_LENGTH or not user_service.check_password(current_user, typed):
        return "is not your password"
    throttle.succeeded(address, email)
    return None


def _too_many(verdict, what: str):
    """The 429 of a refused sign-in attempt: what happened, and when to try again (Retry-After)."""
    minutes = max(1, round(verdict.retry_after / 60))
    return render_error(429, f"{what} Try again in about {minutes} minute{'s' if minutes > 1 else ''}.",
                        {"Retry-After": str(verdict.retry_after)})


@bp.route("/account/password", methods=["GET", "POST"])
@require()
def change_password():
    errors = {}
    if request.method == "POST":
        db = get_session()
        # A check of the current password is a sign-in attempt: counted before it is made, on the same
        # counters as the sign-in page (this address, and this address with this account).
        throttle = current_app.extensions["login_throttle"]
        address, email = request.remote_addr or "unknown", current_user.email
        verdict = throttle.attempt(address, email)
        if not verdict.allowed:
            return _too_many(verdict, "Too many wrong passwords.")
        try:
            user_service.change_password(db, current_user, request.form.get("current", ""),
                                         request.form.get("new", ""), request.form.get("confirm", ""))
        except ValidationError as exc:
            db.rollback()
            errors = exc.errors
            if "current" not in errors:  # refused before the current password was checked
                throttle.not_checked(address, email)
        else:
            throttle.succeeded(address, email)
            sign_in(current_user)  # this browser carries the new session version
            flash("Your password is changed. Every other browser signed in as you has been signed out, and your API "
                  "tokens are revoked: make new ones on the API tokens page.", "success")
            return redirect(url_for("auth.change_password"), code=303)
    return render_template("auth/password.html", errors=errors), 422 if errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str):
    """A one-time link an admin issued: choose a new password, then sign in with it."""
    db = get_session()
    _reset, user = user_service.reset_for(db, token)
    errors = {}
    if request.method == "POST":
        try:
            user_service.reset_password(db, token, request.form.get("new", ""), request.form.get("confirm", ""))
        except ValidationError as exc:
            db.rollback()
            errors = exc.errors
        else:
            logout_user()
            session.clear()
            flash("Your password is set. Sign in with it now.", "success")
            return redirect(url_for("auth.login"), code=303)
    return render_template("auth/reset.html", person=user, errors=errors), 422 if errors else 200
