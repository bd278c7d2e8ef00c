"""API: pay — a trainer's own timesheets (the Earnings page) and the week's payroll (admins; the Payroll
page's figures). Money is integer cents; weeks run Monday to Sunday, UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.db import get_session
from app.errors import NotFound, ValidationError
from app.models import utcnow
from app.models.pay import TIMESHEET_STATUSES
from app.services import pay
from app.services import projects as project_service

from .base import Query, allow, bp, responses, spec, user


class PayAdjustmentOut(BaseModel):
    kind: str = Field(description="bonus, correction, late_time or quality_bonus")
    amount_cents: int
    reason: str
    created_at: datetime


class PayLine(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W48")
    week_start: date = Field(description="Its Monday")
    project: str | None = Field(description="The project's slug (null for an adjustment outside any project)")
    billable_seconds: int = Field(description="Active time, capped per task by the project")
    rate_cents: int = Field(description="Per hour")
    amount_cents: int
    adjustments_cents: int
    adjustments: list[PayAdjustmentOut]
    total_cents: int
    status: Literal[TIMESHEET_STATUSES] = Field(  # type: ignore[valid-type]
        description="open (pending approval), approved or paid")
    paid_reference: str | None


class TimesheetOut(PayLine):
    project_name: str | None


class Timesheets(BaseModel):
    this_week_cents: int
    pending_cents: int
    approved_cents: int
    paid_cents: int
    billable_seconds: int
    effective_hourly_cents: int | None
    data: list[TimesheetOut] = Field(description="Every week with work or an adjustment, newest first")


class PayrollTrainer(BaseModel):
    id: int
    name: str
    email: str


class PayrollLine(PayLine):
    trainer: PayrollTrainer
    timesheet_id: int | None = Field(description="Set once the week is approved")


class PayrollTotals(BaseModel):
    billable_seconds: int
    amount_cents: int
    adjustments_cents: int
    total_cents: int


class PayrollOut(BaseModel):
    week: str
    week_start: date
    data: list[PayrollLine]
    totals: PayrollTotals


class PayrollQuery(Query):
    week: str | None = Field(None, max_length=40, description="Any date of the week (2026-11-25) or an ISO week "
                                                              "(2026-W48); the current week when left out")
    project: str | None = Field(None, max_length=80, description="Only this project (its slug)")
    status: Literal[TIMESHEET_STATUSES] | None = Field(None, description="Only lines in this state")  # type: ignore[valid-type]


def _line_fields(line: pay.Line, slugs: dict) -> dict:
    return {
        "week": pay.week_label(line.week), "week_start": line.week, "project": slugs.get(line.project_id),
        "billable_seconds": line.billable_seconds, "rate_cents": line.rate_cents, "amount_cents": line.amount_cents,
        "adjustments_cents": line.adjustments_cents, "total_cents": line.total_cents, "status": line.status,
        "paid_reference": line.paid_reference,
        "adjustments": [PayAdjustmentOut(kind=a.kind, amount_cents=a.amount_cents, reason=a.reason,
                                      created_at=a.created_at) for a in line.adjustments],
    }


@bp.get("/me/timesheets")
@allow("trainer")
@spec.validate(resp=responses(HTTP_200=Timesheets), tags=["pay"])
def my_timesheets():
    """The caller's own pay, as the Earnings page shows it: totals and one line per week and project."""
    db = get_session()
    mine = pay.earnings(db, user().id)
    projects = project_service.projects_by_id(db, mine.per_project)
    slugs = {pid: p.slug for pid, p in projects.items()}
    return Timesheets(
        this_week_cents=mine.this_week_cents, pending_cents=mine.pending_cents, approved_cents=mine.approved_cents,
        paid_cents=mine.paid_cents, billable_seconds=mine.billable_seconds,
        effective_hourly_cents=mine.effective_hourly_cents,
        data=[TimesheetOut(**_line_fields(line, slugs),
                           project_name=projects[line.project_id].name if line.project_id in projects else None)
              for line in mine.lines],
    )


@bp.get("/payroll")
@allow("admin")
@spec.validate(query=PayrollQuery, resp=responses(HTTP_200=PayrollOut), tags=["pay"])
def payroll(query: PayrollQuery):
    """One week's payroll, as the Payroll page shows it: a line per trainer and project with work, a
    timesheet or an adjustment that week, filtered by project and status (admins)."""
    db = get_session()
    errors: dict[str, str] = {}
    week = pay.week_of(utcnow())
    if query.week:
        try:
            week = pay.parse_week(query.week)
        except ValidationError as exc:
            errors.update(exc.errors)
    project = None
    if query.project:
        try:
            project = project_service.get_by_slug(db, query.project)
        except NotFound:
            errors["project"] = "no such project"
    if errors:
        raise ValidationError(errors)
    sheet = pay.payroll(db, week, project.id if project else None, query.status)
    slugs = {pid: p.slug for pid, p in sheet.projects.items()}
    totals = sheet.totals
    return PayrollOut(
        week=pay.week_label(week), week_start=week,
        data=[PayrollLine(**_line_fields(line, slugs), timesheet_id=line.timesheet_id,
                          trainer=PayrollTrainer(id=line.trainer_id, name=sheet.people[line.trainer_id].name,
                                         email=sheet.people[line.trainer_id].email))
              for line in sheet.lines],
        totals=PayrollTotals(billable_seconds=totals["seconds"], amount_cents=totals["amount"],
                             adjustments_cents=totals["adjustments"],
                             total_cents=totals["amount"] + totals["adjustments"]),
    )
