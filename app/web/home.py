from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from .access import public

bp = Blueprint("home", __name__)


@bp.get("/")
@public
def index():
    """Send each person to where their work is."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.has_role("admin"):
        return redirect(url_for("admin.index"))
    if current_user.has_role("reviewer") and not current_user.has_role("trainer"):
        return redirect(url_for("review.index"))
    if current_user.has_role("client") and not current_user.has_role("trainer"):
        return redirect(url_for("client.index"))
    if current_user.has_role("applicant") and not current_user.has_role("trainer"):
        return redirect(url_for("recruiting.candidate"))
    return redirect(url_for("work.index"))


@bp.get("/healthz")
@public
def healthz():
    return {"status": "ok"}


@bp.get("/favicon.ico")
@public
def favicon():
    return redirect(url_for("static", filename="favicon.svg"), code=301)
