"""A user's own API tokens: make one (shown once), see when each was last used, revoke."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import ValidationError
from app.services import api_tokens

from .access import require
from .auth import confirm_password
from .inputs import whole_number

bp = Blueprint("tokens", __name__, url_prefix="/account/tokens")


def _page(errors=None, values=None, new_secret=None, status=200):
    db = get_session()
    return render_template("tokens/index.html", tokens=api_tokens.tokens_of(db, current_user.id),
                           errors=errors or {}, values=values or {}, new_secret=new_secret,
                           max_days=api_tokens.MAX_EXPIRY_DAYS), status


@bp.get("/")
@require()
def index():
    return _page()


@bp.post("/")
@require()
def create():
    db = get_session()
    values = {"name": request.form.get("name", ""), "expires_in_days": request.form.get("expires_in_days", "").strip(),
              "read_only": "read_only" in request.form}
    days = values["expires_in_days"]
    refused = confirm_password(request.form.get("password", ""))
    if refused is not None and not isinstance(refused, str):
        return refused  # over the sign-in attempts' limit
    try:
        if refused:
            raise ValidationError({"password": refused})
        if days and whole_number(days, digits=5, signed=False) is None:
            raise ValidationError({"expires_in_days": "must be a whole number of days, or empty for no expiry"})
        new = api_tokens.create(db, current_user, values["name"], read_only=values["read_only"],
                                expires_in_days=whole_number(days, digits=5, signed=False))
    except ValidationError as exc:
        db.rollback()
        return _page(exc.errors, values, status=422)
    return _page(new_secret=new.secret)


@bp.post("/<int:token_id>/revoke")
@require()
def revoke(token_id: int):
    token = api_tokens.revoke(get_session(), current_user.id, token_id)
    flash(f"Token {token.name} (gw_{token.prefix}_…) is revoked; it no longer works.", "success")
    return redirect(url_for("tokens.index"), code=303)
