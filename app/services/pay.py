"""Pay (DESIGN §5): billable time, weekly timesheets, approvals, adjustments, earnings, budgets.

Rules, in one place:

- An assignment's billable seconds are ``min(active_seconds, project.max_billable_seconds_per_task)``,
  for submitted and skipped work; an annotation excluded as spam earns nothing.
- It counts in the ISO week (UTC, Monday) in which it was assigned, for its trainer and project.
- The rate is the member's ``rate_override_cents`` or the project's ``hourly_rate_cents``.
- A week's amount is ``billable_seconds × rate / 3600`` rounded half-even once, per trainer ×
  project × week. Open weeks are computed live from the work; approving writes a ``Timesheet``
  row that never changes afterwards.
- Time that reaches an approved week later (a late submit) becomes a ``late_time`` adjustment in
  the current week, sized so that the week's timesheet plus its late adjustments always equal
  the week's total rounded once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from app.db import begin_write
from app.models import (
    Annotation,
    Assignment,
    PayAdjustment,
    Project,
    ProjectMember,
    Timesheet,
    User,
    utcnow,
)

from . import audit
from .errors import ValidationError
from .money import cents_for, format_cents

BILLABLE_STATUSES = ("submitted", "skipped")
BUDGET_WARN = 0.8
WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def week_of(moment: datetime | date) -> date:
    """The Monday (UTC) of the ISO week a moment falls in."""
    day = moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def parse_week(text: str) -> date:
    """'2026-W48' or any date of the week ('2026-11-25') -> that week's Monday."""
    raw = (text or "").strip()
    match = WEEK_RE.match(raw)
    try:
        if match:
            return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        return week_of(date.fromisoformat(raw))
    except ValueError:
        raise ValidationError({"week": f"{raw!r} is not a week: use 2026-W48 or a date like 2026-11-23"}) from None


def week_label(week: date) -> str:
    year, number, _ = week.isocalendar()
    return f"{year}-W{number:02d}"


def _start(week: date) -> datetime:
    return datetime.combine(week, time(), UTC)


def billable_seconds_expr():
    return case(
        (Assignment.active_seconds > Project.max_billable_seconds_per_task, Project.max_billable_seconds_per_task),
        else_=Assignment.active_seconds,
    )


def _week_start_expr(session: Session):
    """The Monday (UTC) of ``assigned_at``, computed by the database, so weeks are grouped there."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("week", Assignment.assigned_at)  # ISO weeks start on Monday
    return func.date(Assignment.assigned_at, "weekday 0", "-6 days")  # the Sunday ending the week, less 6 days


def _as_date(value) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date() if isinstance(value, datetime) else value


def billable_by_week(session: Session, first: date, last: date, trainer_id: int | None = None,
                     project_id: int | None = None) -> dict[tuple[int, int, date], int]:
    """{(trainer, project, week): billable seconds} for the weeks first…last (Mondays, inclusive).

    One aggregate query: the database sums and groups, so a project's whole history costs one
    row per trainer and week, not one per task.
    """
    week = _week_start_expr(session).label("week")
    stmt = (
        select(Assignment.trainer_id, Assignment.project_id, week, func.sum(billable_seconds_expr()))
        .join(Project, Project.id == Assignment.project_id)
        .outerjoin(Annotation, Annotation.assignment_id == Assignment.id)
        .where(Assignment.assigned_at >= _start(first), Assignment.assigned_at < _start(last + timedelta(days=7)),
               Assignment.status.in_(BILLABLE_STATUSES),
               or_(Annotation.id.is_(None), Annotation.excluded.is_(False)))
        .group_by(Assignment.trainer_id, Assignment.project_id, week)
    )
    if trainer_id is not None:
        stmt = stmt.where(Assignment.trainer_id == trainer_id)
    if project_id is not None:
        stmt = stmt.where(Assignment.project_id == project_id)
    totals: dict[tuple[int, int, date], int] = defaultdict(int)
    for trainer, project, monday, seconds in session.execute(stmt):
        totals[(trainer, project, _as_date(monday))] += int(seconds or 0)
    return dict(totals)


def rates(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Hourly rate in cents per (trainer, project): the member's override, else the project's rate."""
    if not pairs:
        return {}
    projects = {p.id: p.hourly_rate_cents for p in session.scalars(
        select(Project).where(Project.id.in_({p for _, p in pairs})))}
    overrides = {(m.user_id, m.project_id): m.rate_override_cents for m in session.scalars(
        select(ProjectMember).where(ProjectMember.project_id.in_({p for _, p in pairs}),
                                    ProjectMember.role == "trainer", ProjectMember.rate_override_cents.is_not(None)))}
    return {(t, p): overrides.get((t, p), projects.get(p, 0)) for t, p in pairs}


@dataclass
class Line:
    """One trainer × project × week: what the payroll and the earnings pages show."""

    trainer_id: int
    project_id: int
    week: date
    billable_seconds: int
    rate_cents: int
    amount_cents: int
    status: str = "open"
    timesheet_id: int | None = None
    paid_reference: str | None = None
    adjustments_cents: int = 0
    adjustments: list = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return self.amount_cents + self.adjustments_cents

    @property
    def key(self) -> str:
        return f"{self.trainer_id}:{self.project_id}"


def lines(session: Session, first: date, last: date, trainer_id: int | None = None,
          project_id: int | None = None) -> list[Line]:
    """Every trainer × project × week with work, a timesheet or an adjustment, first…last."""
    live = billable_by_week(session, first, last, trainer_id, project_id)
    sheets_stmt = select(Timesheet).where(Timesheet.week_start >= first, Timesheet.week_start <= last)
    adjust_stmt = select(PayAdjustment).where(PayAdjustment.week_start >= first, PayAdjustment.week_start <= last)
    if trainer_id is not None:
        sheets_stmt = sheets_stmt.where(Timesheet.trainer_id == trainer_id)
        adjust_stmt = adjust_stmt.where(PayAdjustment.trainer_id == trainer_id)
    if project_id is not None:
        sheets_stmt = sheets_stmt.where(Timesheet.project_id == project_id)
        adjust_stmt = adjust_stmt.where(PayAdjustment.project_id == project_id)
    sheets = {(s.trainer_id, s.project_id, s.week_start): s for s in session.scalars(sheets_stmt)}
    adjustments = defaultdict(list)
    for adjustment in session.scalars(adjust_stmt.order_by(PayAdjustment.id)):
        adjustments[(adjustment.trainer_id, adjustment.project_id, adjustment.week_start)].append(adjustment)
    keys = set(live) | set(sheets) | set(adjustments)
    rate_of = rates(session, {(t, p) for t, p, _ in keys if p is not None})
    result = []
    for key in sorted(keys, key=lambda k: (k[2], k[0], k[1] or 0)):
        trainer, project, week = key
        sheet = sheets.get(key)
        extra = adjustments.get(key, [])
        if sheet is not None:
            line = Line(trainer, project, week, sheet.billable_seconds, sheet.rate_cents, sheet.amount_cents,
                        sheet.status, sheet.id, sheet.paid_reference)
        else:
            seconds, rate = live.get(key, 0), rate_of.get((trainer, project), 0)
            line = Line(trainer, project, week, seconds, rate, cents_for(seconds, rate))
        line.adjustments = extra
        line.adjustments_cents = sum(a.amount_cents for a in extra)
        result.append(line)
    return result


# --- approvals and payments -------------------------------------------------------------------------


def approve(session: Session, week: date, keys: list[tuple[int, int]] | None, actor_id: int | None,
            now: datetime | None = None) -> list[Timesheet]:
    """Lock open timesheets of a week (all of them, or the given trainer × project keys). Commits."""
    now = now or utcnow()
    if week > week_of(now):
        raise ValidationError({"week": f"{week_label(week)} has not started yet"})
    begin_write(session)
    wanted = set(keys) if keys is not None else None
    approved = []
    for line in lines(session, week, week):
        if line.status != "open" or line.project_id is None:
            continue
        if wanted is not None and (line.trainer_id, line.project_id) not in wanted:
            continue
        sheet = Timesheet(trainer_id=line.trainer_id, project_id=line.project_id, week_start=week,
                          billable_seconds=line.billable_seconds, rate_cents=line.rate_cents,
                          amount_cents=line.amount_cents, status="approved", approved_by=actor_id, approved_at=now)
        session.add(sheet)
        approved.append(sheet)
        _quality_bonus(session, sheet, actor_id)
    session.flush()
    if approved:
        audit.record(session, actor_id, "pay.approve", "week", week_label(week),
                     {"timesheets": [s.id for s in approved], "amount_cents": sum(s.amount_cents for s in approved)})
    session.commit()
    return approved


def _quality_bonus(session: Session, sheet: Timesheet, actor_id: int | None) -> None:
    """The project's optional bonus: +percent of the week's pay when gold accuracy that week ≥ threshold."""
    project = session.get(Project, sheet.project_id)
    if not project.quality_bonus_percent or project.quality_bonus_min_accuracy is None or not sheet.amount_cents:
        return
    accuracy = session.scalar(
        select(func.avg(Annotation.gold_score)).where(
            Annotation.trainer_id == sheet.trainer_id, Annotation.project_id == sheet.project_id,
            Annotation.gold_score.is_not(None), Annotation.excluded.is_(False),
            Annotation.submitted_at >= _start(sheet.week_start),
            Annotation.submitted_at < _start(sheet.week_start + timedelta(days=7)))
    )
    if accuracy is None or accuracy < project.quality_bonus_min_accuracy:
        return
    amount = int((Decimal(sheet.amount_cents) * project.quality_bonus_percent / 100).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN))
    session.add(PayAdjustment(
        trainer_id=sheet.trainer_id, project_id=sheet.project_id, week_start=sheet.week_start, kind="quality_bonus",
        amount_cents=amount, created_by=actor_id,
        reason=f"quality bonus: +{project.quality_bonus_percent} % for gold accuracy {accuracy:.0%} "
               f"(≥ {project.quality_bonus_min_accuracy:.0%})"))


def mark_paid(session: Session, timesheet_ids: list[int], reference: str, actor_id: int | None,
              now: datetime | None = None) -> int:
    """Approved timesheets become paid, with the payment's reference. Commits; returns how many."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError({"reference": "give the payment reference (e.g. the bank transfer id)"})
    if len(reference) > 200:
        raise ValidationError({"reference": "at most 200 characters"})
    begin_write(session)
    sheets = list(session.scalars(select(Timesheet).where(Timesheet.id.in_(timesheet_ids))))
    not_approved = [s.id for s in sheets if s.status != "approved"]
    if not_approved or len(sheets) != len(set(timesheet_ids)):
        session.rollback()
        raise ValidationError({"timesheets": "only approved timesheets can be marked paid"})
    for sheet in sheets:
        sheet.status, sheet.paid_reference, sheet.paid_at = "paid", reference, now or utcnow()
    audit.record(session, actor_id, "pay.paid", "timesheets", ",".join(map(str, sorted(timesheet_ids))),
                 {"reference": reference, "amount_cents": sum(s.amount_cents for s in sheets)})
    session.commit()
    return len(sheets)


def add_adjustment(session: Session, trainer_id: int, project_id: int | None, amount_cents: int, reason: str,
                   actor_id: int | None, kind: str = "bonus", now: datetime | None = None) -> PayAdjustment:
    """A bonus or a correction (±cents) in the current week; audited. Commits."""
    reason = (reason or "").strip()
    errors = {}
    if kind not in ("bonus", "correction"):
        errors["kind"] = "must be bonus or correction"
    if not reason:
        errors["reason"] = "say why (the trainer sees it)"
    if amount_cents == 0:
        errors["amount"] = "must not be zero"
    if session.get(User, trainer_id) is None:
        errors["trainer"] = "no such trainer"
    if project_id is None or session.get(Project, project_id) is None:
        errors["project"] = "choose the project it is paid under"
    if errors:
        raise ValidationError(errors)
    begin_write(session)
    adjustment = PayAdjustment(trainer_id=trainer_id, project_id=project_id, week_start=week_of(now or utcnow()),
                               kind=kind, amount_cents=amount_cents, reason=reason[:500], created_by=actor_id)
    session.add(adjustment)
    session.flush()
    audit.record(session, actor_id, "pay.adjust", "user", trainer_id,
                 {"adjustment": adjustment.id, "amount_cents": amount_cents, "project_id": project_id, "kind": kind})
    session.commit()
    return adjustment


# --- after work changes -----------------------------------------------------------------------------


def after_work(session: Session, assignment: Assignment, now: datetime | None = None) -> None:
    """Called in the transaction of a submit or skip: late time for an approved week becomes an
    adjustment now, and a project that used up its budget pauses. Does not commit."""
    now = now or utcnow()
    week = week_of(assignment.assigned_at)
    sheet = session.scalar(select(Timesheet).where(
        Timesheet.trainer_id == assignment.trainer_id, Timesheet.project_id == assignment.project_id,
        Timesheet.week_start == week))
    if sheet is not None:
        _late_time(session, sheet, now)
    project = session.get(Project, assignment.project_id)
    if project.budget_cents and project.status == "active":  # a paused project has nothing left to pause
        check_budget(session, project, now)


def _late_time(session: Session, sheet: Timesheet, now: datetime) -> PayAdjustment | None:
    key = (sheet.trainer_id, sheet.project_id, sheet.week_start)
    seconds = billable_by_week(session, sheet.week_start, sheet.week_start, sheet.trainer_id, sheet.project_id).get(key, 0)
    late = session.execute(
        select(func.coalesce(func.sum(PayAdjustment.billable_seconds), 0),
               func.coalesce(func.sum(PayAdjustment.amount_cents), 0))
        .where(PayAdjustment.trainer_id == sheet.trainer_id, PayAdjustment.project_id == sheet.project_id,
               PayAdjustment.kind == "late_time", PayAdjustment.for_week == sheet.week_start)
    ).one()
    extra_seconds = seconds - sheet.billable_seconds - int(late[0])
    if extra_seconds == 0:
        return None
    # The week is still paid as one rounded total: timesheet + late adjustments = round(all of it).
    amount = cents_for(seconds, sheet.rate_cents) - sheet.amount_cents - int(late[1])
    adjustment = PayAdjustment(
        trainer_id=sheet.trainer_id, project_id=sheet.project_id, week_start=week_of(now), kind="late_time",
        for_week=sheet.week_start, billable_seconds=extra_seconds, amount_cents=amount,
        reason=f"time added to {week_label(sheet.week_start)} after it was approved")
    session.add(adjustment)
    session.flush()
    audit.record(session, None, "pay.late_time", "timesheet", sheet.id,
                 {"adjustment": adjustment.id, "seconds": extra_seconds, "amount_cents": amount})
    return adjustment


# --- budgets ----------------------------------------------------------------------------------------


def project_spend(session: Session, project: Project) -> int:
    """Cents the project has cost so far: every week's pay (rounded per timesheet) and adjustments."""
    first = session.scalar(select(func.min(Assignment.assigned_at)).where(Assignment.project_id == project.id))
    if first is None:
        return int(session.scalar(select(func.coalesce(func.sum(PayAdjustment.amount_cents), 0))
                                  .where(PayAdjustment.project_id == project.id)))
    rows = lines(session, week_of(first), week_of(utcnow()), project_id=project.id)
    return sum(line.total_cents for line in rows)


@dataclass
class Budget:
    project: Project
    spent_cents: int

    @property
    def share(self) -> float:
        return self.spent_cents / self.project.budget_cents if self.project.budget_cents else 0.0

    @property
    def level(self) -> str:
        return "over" if self.share >= 1 else "warn" if self.share >= BUDGET_WARN else "ok"


def budgets(session: Session) -> list[Budget]:
    return [Budget(p, project_spend(session, p)) for p in session.scalars(
        select(Project).where(Project.budget_cents.is_not(None), Project.budget_cents > 0).order_by(Project.name))]


def check_budget(session: Session, project: Project, now: datetime | None = None) -> Budget:
    """Pause a project that has used up its budget (when it is set to); the reason is shown to trainers."""
    budget = Budget(project, project_spend(session, project))
    if budget.level == "over" and project.pause_at_budget and project.status == "active":
        project.status = "paused"
        project.paused_reason = (f"its budget is used up ({format_cents(budget.spent_cents)} of "
                                 f"{format_cents(project.budget_cents)})")
        audit.record(session, None, "project.budget_pause", "project", project.id,
                     {"spent_cents": budget.spent_cents, "budget_cents": project.budget_cents})
    return budget


# --- earnings (the trainer's page) -------------------------------------------------------------------


@dataclass
class Earnings:
    this_week_cents: int
    pending_cents: int
    approved_cents: int
    paid_cents: int
    billable_seconds: int
    lines: list[Line]
    per_project: dict

    @property
    def effective_hourly_cents(self) -> int | None:
        total = self.pending_cents + self.approved_cents + self.paid_cents
        return round(total * 3600 / self.billable_seconds) if self.billable_seconds else None


def earnings(session: Session, trainer_id: int, now: datetime | None = None) -> Earnings:
    now = now or utcnow()
    first = session.scalar(select(func.min(Assignment.assigned_at)).where(Assignment.trainer_id == trainer_id))
    first_adjustment = session.scalar(select(func.min(PayAdjustment.week_start))
                                      .where(PayAdjustment.trainer_id == trainer_id))
    starts = [w for w in (week_of(first) if first else None, first_adjustment) if w is not None]
    current = week_of(now)
    rows = lines(session, min(starts), current, trainer_id=trainer_id) if starts else []
    totals = {"open": 0, "approved": 0, "paid": 0}
    per_project: dict = defaultdict(lambda: {"seconds": 0, "cents": 0})
    for line in rows:
        totals[line.status] += line.total_cents
        per_project[line.project_id]["seconds"] += line.billable_seconds
        per_project[line.project_id]["cents"] += line.total_cents
    this_week = sum(line.total_cents for line in rows if line.week == current)
    return Earnings(this_week, totals["open"], totals["approved"], totals["paid"],
                    sum(line.billable_seconds for line in rows), sorted(rows, key=lambda x: (x.week, x.project_id or 0),
                                                                         reverse=True), dict(per_project))


# --- payroll export -----------------------------------------------------------------------------------


def payroll_frame(session: Session, week: date, project_id: int | None = None, status: str | None = None):
    """One row per trainer × project × week, for the payroll CSV (pandas)."""
    import pandas as pd

    rows = [line for line in lines(session, week, week, project_id=project_id) if status in (None, line.status)]
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_({r.trainer_id for r in rows})))}
    projects = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_({r.project_id for r in rows})))}
    columns = ["week", "trainer_email", "trainer_name", "project", "billable_seconds", "billable_hours",
               "rate", "amount", "adjustments", "total", "status", "paid_reference"]
    frame = pd.DataFrame([{
        "week": week_label(r.week), "trainer_email": people[r.trainer_id].email,
        "trainer_name": people[r.trainer_id].name,
        "project": projects[r.project_id].slug if r.project_id in projects else "",
        "billable_seconds": r.billable_seconds, "billable_hours": round(r.billable_seconds / 3600, 4),
        "rate": f"{r.rate_cents / 100:.2f}", "amount": f"{r.amount_cents / 100:.2f}",
        "adjustments": f"{r.adjustments_cents / 100:.2f}", "total": f"{r.total_cents / 100:.2f}",
        "status": r.status, "paid_reference": r.paid_reference or "",
    } for r in rows], columns=columns)
    return frame
