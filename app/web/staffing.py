"""Matching vetted trainers to a project, invitations, and the project's staffing.

The admin's staffing page (figures, ranked candidates, the invite form, the project's invitations)
and the trainer's invitations (accept or decline). Rules live in ``services/recruiting/matching``.
"""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import Conflict, ValidationError
from app.extensions import htmx
from app.models import Project
from app.services import projects as project_service
from app.services.money import MAX_RATE_CENTS, AmountError, format_cents, parse_amount, plain_amount
from app.services.recruiting import matching

from .access import require
from .inputs import row_id
from .paging import page_of

bp = Blueprint("staffing", __name__)

PER_PAGE = 50
HOURS_FIELD = re.compile(r"[0-9]{1,3}")
# The service's field names → the form's.
FORM_FIELDS = {"user_ids": "user_id", "rate_cents": "rate"}


def _sort() -> str:
    sort = request.args.get("sort", "score")
    return sort if sort in matching.SORTS else "score"


def _staffing_page(project: Project, values: dict | None = None, errors: dict | None = None, status: int = 200):
    db = get_session()
    sort = _sort()
    page = page_of(matching.count_eligible(db, project), PER_PAGE)
    candidates = matching.eligible(db, project, page=page.number, per_page=PER_PAGE, sort=sort)
    context = {
        "project": project, "candidates": candidates, "parts": matching.PART_NAMES, "weights": matching.WEIGHTS,
        "formula": matching.formula(), "empty_reason": matching.no_candidates_reason(project, candidates),
        "ticked": set((values or {}).get("user_ids", ())),
    }
    if htmx and htmx.target == "candidates":  # sorting and paging swap the table only
        return render_template("staffing/_candidates.html", **context), status
    values = values or {"rate": plain_amount(project.hourly_rate_cents), "expected_hours_per_week": "", "message": ""}
    return render_template(
        "staffing/project.html", **context, staffing=matching.staffing(db, project),
        invitations=matching.project_invitations(db, project), values=values, errors=errors or {},
        max_rate=format_cents(MAX_RATE_CENTS), message_max=matching.MESSAGE_MAX, hours_range=matching.HOURS_RANGE,
    ), status


@bp.get("/admin/projects/<slug>/staffing")
@require("admin")
def project(slug: str):
    return _staffing_page(project_service.get_by_slug(get_session(), slug))


def _read_invite_form(form, errors: dict) -> dict:
    """The invite form's fields as plain values; what cannot be read is reported in ``errors``."""
    ids = [row_id(raw) for raw in form.getlist("user_id")]
    if None in ids:
        errors["user_id"] = "one of the ticked boxes is not a trainer on the list"
    rate = None
    raw_rate = (form.get("rate") or "").strip()
    if raw_rate:
        try:
            rate = parse_amount(raw_rate, max_cents=MAX_RATE_CENTS)
        except AmountError as exc:
            errors["rate"] = str(exc)
    hours = None
    raw_hours = (form.get("expected_hours_per_week") or "").strip()
    if raw_hours:
        if HOURS_FIELD.fullmatch(raw_hours):
            hours = int(raw_hours)
        else:
            low, high = matching.HOURS_RANGE
            errors["expected_hours_per_week"] = f"must be a whole number of hours from {low} to {high}"
    return {"user_ids": [i for i in ids if i is not None], "rate_cents": rate, "expected_hours_per_week": hours,
            "message": form.get("message", "")}


@bp.post("/admin/projects/<slug>/invitations")
@require("admin")
def invite(slug: str):
    db = get_session()
    project = project_service.get_by_slug(db, slug)
    errors: dict = {}
    parsed = _read_invite_form(request.form, errors)
    values = {**request.form.to_dict(), "user_ids": parsed["user_ids"]}
    if not errors:
        try:
            invited = matching.invite(db, project, parsed["user_ids"], current_user.id, rate_cents=parsed["rate_cents"],
                                      expected_hours_per_week=parsed["expected_hours_per_week"],
                                      message=parsed["message"])
        except ValidationError as exc:
            db.rollback()
            errors = {FORM_FIELDS.get(k, k): v for k, v in exc.errors.items()}
        else:
            said = f"Invited {len(invited.created)} trainer{'' if len(invited.created) == 1 else 's'}."
            if invited.already:
                said += f" {len(invited.already)} already had a pending invitation."
            flash(said, "success")
            return redirect(url_for("staffing.project", slug=slug, sort=_sort()) + "#invitations", code=303)
    return _staffing_page(project, values, errors, 422)


@bp.post("/admin/projects/<slug>/invitations/<int:invitation_id>/withdraw")
@require("admin")
def withdraw(slug: str, invitation_id: int):
    db = get_session()
    project = project_service.get_by_slug(db, slug)
    try:
        matching.withdraw(db, project, invitation_id, current_user.id)
        flash("Invitation withdrawn.", "success")
    except Conflict as exc:  # answered (or withdrawn) first: say so where the admin acted
        flash(str(exc), "error")
    return redirect(url_for("staffing.project", slug=slug) + "#invitations", code=303)


# --- the trainer's side ---------------------------------------------------------------------------


@bp.get("/invitations")
@require("trainer")
def invitations():
    return render_template("staffing/invitations.html",
                           invitations=matching.invitations_for(get_session(), current_user))


@bp.get("/invitations/pending")
@require("trainer")
def pending():
    """The box of pending invitations on the trainer's work list (loaded by htmx)."""
    return render_template("staffing/_pending.html", pending=matching.pending_for(get_session(), current_user))


@bp.post("/invitations/<int:invitation_id>/accept")
@require("trainer")
def accept(invitation_id: int):
    try:
        invitation = matching.respond(get_session(), invitation_id, current_user, accept=True)
    except Conflict as exc:  # a second click, or withdrawn meanwhile: the list shows where it stands
        flash(str(exc), "error")
        return redirect(url_for("staffing.invitations"), code=303)
    project = project_service.projects_by_id(get_session(), [invitation.project_id])[invitation.project_id]
    if project.status == "active":
        flash(f"Welcome to {project.name}. Your first task is below.", "success")
        return redirect(url_for("work.workspace", slug=project.slug), code=303)
    flash(f"You joined {project.name}. Its work opens when the project starts.", "success")
    return redirect(url_for("work.index"), code=303)


@bp.post("/invitations/<int:invitation_id>/decline")
@require("trainer")
def decline(invitation_id: int):
    try:
        matching.respond(get_session(), invitation_id, current_user, accept=False)
        flash("Invitation declined.", "info")
    except Conflict as exc:
        flash(str(exc), "error")
    return redirect(url_for("staffing.invitations"), code=303)
