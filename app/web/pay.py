"""Pay: the trainer's Earnings page and the admin's Payroll (approve, mark paid, adjust, CSV, budgets)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.db import get_session
from app.errors import NotFound, ServiceError, ValidationError, said
from app.models import utcnow
from app.models.pay import TIMESHEET_STATUSES
from app.services import pay
from app.services import projects as project_service
from app.services.money import format_cents
from app.services.spreadsheets import csv_text

from .access import require
from .inputs import row_id

bp = Blueprint("pay", __name__)


@bp.get("/work/earnings")
@require("trainer")
def earnings():
    db = get_session()
    mine = pay.earnings(db, current_user.id)
    projects = project_service.projects_by_id(db, mine.per_project)
    return render_template("pay/earnings.html", earnings=mine, projects=projects, week_label=pay.week_label,
                           current_week=pay.week_of(utcnow()))


def _week_arg() -> tuple:
    raw = request.values.get("week", "").strip()
    if not raw:  # this week, or the latest one before it with anything to pay
        return pay.latest_week(get_session(), pay.week_of(utcnow())), None
    try:
        return pay.parse_week(raw), None
    except ValidationError as exc:
        return pay.week_of(utcnow()), exc.errors["week"]


def _filters():
    db = get_session()
    week, error = _week_arg()
    project = None
    slug = request.values.get("project", "").strip()
    if slug:
        try:
            project = project_service.get_by_slug(db, slug)
        except NotFound:
            error = error or f"no project {slug[:80]!r}"
    status = request.values.get("status", "").strip() or None
    if status is not None and status not in TIMESHEET_STATUSES:
        error, status = error or f"unknown status {status[:20]!r}", None
    return week, project, status, error


# The adjustment form's fields as its labels name them (an error names the field the admin sees).
ADJUSTMENT_FIELDS = {"trainer": "Trainer", "adjust_project": "Project", "kind": "Kind", "amount": "Amount",
                     "reason": "Reason"}


def _payroll_context(week, project, status, error=None, form_errors=None, form_values=None):
    sheet = pay.payroll(get_session(), week, project.id if project else None, status)
    return {
        "current_week_label": pay.week_label(pay.week_of(utcnow())), "form_values": form_values or {},
        "field_names": ADJUSTMENT_FIELDS,
        "week": week, "week_label": pay.week_label(week), "previous": pay.week_label(week - timedelta(days=7)),
        "next": pay.week_label(week + timedelta(days=7)), "is_current": week == pay.week_of(utcnow()),
        "project": project, "status": status, "rows": sheet.lines, "people": sheet.people,
        "projects": sheet.projects, "trainers": sheet.trainers, "budgets": sheet.budgets, "error": error,
        "form_errors": form_errors or {}, "totals": sheet.totals,
    }


@bp.get("/admin/payroll")
@require("admin")
def payroll():
    week, project, status, error = _filters()
    return render_template("pay/payroll.html", **_payroll_context(week, project, status, error)), 422 if error else 200


def _back(week):
    args = {"week": pay.week_label(week)}
    for name in ("project", "status"):
        if request.form.get(name):
            args[name] = request.form[name]
    return redirect(url_for("pay.payroll", **args), code=303)


@bp.post("/admin/payroll/approve")
@require("admin")
def approve():
    week, project, status, error = _filters()
    if error:
        abort(422, description=error)
    keys = []
    for value in request.form.getlist("line"):
        trainer_id, _, project_id = value.partition(":")
        key = (row_id(trainer_id), row_id(project_id))
        if None in key:
            abort(422, description=f"bad line {value[:40]!r}")
        keys.append(key)
    if not keys:
        flash("Tick the timesheets to approve.", "error")
        return _back(week)
    try:
        approved = pay.approve(get_session(), week, keys, current_user.id)
    except ServiceError as exc:  # refused, or already approved meanwhile (a second click, another admin)
        get_session().rollback()
        flash(said(exc), "error")
        return _back(week)
    earned, adjusted = pay.sheets_total(get_session(), week, approved)
    extra = f" ({format_cents(earned)} for the time, {format_cents(adjusted)} in adjustments)" if adjusted else ""
    flash(f"Approved {len(approved)} timesheet(s) of {pay.week_label(week)}: "
          f"{format_cents(earned + adjusted)}{extra}. They are locked now.", "success")
    return _back(week)


@bp.post("/admin/payroll/paid")
@require("admin")
def mark_paid():
    week, _project, _status, _error = _filters()
    ids = [row_id(x) for x in request.form.getlist("timesheet")]
    if None in ids:
        abort(422, description="bad timesheet id")
    if not ids:
        flash("Tick the approved timesheets that were paid.", "error")
        return _back(week)
    try:
        count = pay.mark_paid(get_session(), ids, request.form.get("reference", ""), current_user.id)
    except ServiceError as exc:
        get_session().rollback()
        flash(said(exc), "error")
        return _back(week)
    flash(f"Marked {count} timesheet(s) paid.", "success")
    return _back(week)


@bp.post("/admin/payroll/adjust")
@require("admin")
def adjust():
    week, project, status, _error = _filters()
    db = get_session()
    try:
        adjustment = pay.adjust(db, row_id(request.form.get("trainer")), row_id(request.form.get("adjust_project")),
                                request.form.get("amount", ""), request.form.get("reason", ""), current_user.id,
                                kind=request.form.get("kind", "bonus"))
    except ValidationError as exc:
        db.rollback()
        context = _payroll_context(week, project, status, form_errors=exc.errors, form_values=request.form)
        return render_template("pay/payroll.html", **context), 422
    week_added = pay.week_label(adjustment.week_start)  # this week, or the next when this one is approved
    flash(f"Adjustment added to {week_added}, the trainer's first week not yet approved in that project; they see "
          "it on their Earnings page.", "success")
    return redirect(url_for("pay.payroll", week=week_added), code=303)


@bp.get("/admin/payroll.csv")
@require("admin")
def payroll_csv():
    week, project, status, error = _filters()
    if error:
        abort(422, description=error)
    frame = pay.payroll_frame(get_session(), week, project.id if project else None, status)
    name = f"payroll-{pay.week_label(week)}{'-' + project.slug if project else ''}.csv"
    return Response(csv_text(frame), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})



