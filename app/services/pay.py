"""Pay: billable time, weekly timesheets, approvals, adjustments, earnings, budgets.

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

from sqlalchemy import Date, and_, bindparam, case, delete, event, func, insert, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bounds import has_visible, one_line_problem, plain_text_problem
from app.db import adding_upsert, begin_write, is_sqlite
from app.errors import Conflict, ValidationError
from app.models import (
    Annotation,
    Assignment,
    AuditEvent,
    BillableWeek,
    PasswordReset,
    PayAdjustment,
    Project,
    ProjectMember,
    Timesheet,
    User,
    utcnow,
)

from . import access, audit
from .money import (
    MAX_ADJUSTMENT_CENTS,
    AmountError,
    cents_for,
    format_cents,
    parse_amount,
    per_hour,
    percent_of,
    plain_amount,
)
from .spreadsheets import spreadsheet_safe

BILLABLE_STATUSES = ("submitted", "skipped")
BUDGET_WARN = 0.8
WEEK_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")
# Pay weeks exist in this range; a week outside it is a typo or a probe (and year 1 or 9999 would
# overflow the date arithmetic of a week).
FIRST_YEAR, LAST_YEAR = 2000, 2100


def week_of(moment: datetime | date) -> date:
    """The Monday (UTC) of the ISO week a moment falls in."""
    day = moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def parse_week(text: str) -> date:
    """'2026-W48' or any date of the week ('2026-11-25') -> that week's Monday."""
    raw = (text or "").strip()[:40]
    match = WEEK_RE.fullmatch(raw)
    try:
        week = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1) if match \
            else week_of(date.fromisoformat(raw))
    except ValueError:
        raise ValidationError({"week": f"{raw!r} is not a week: use 2026-W48 or a date like 2026-11-23"}) from None
    if not FIRST_YEAR <= week.year <= LAST_YEAR:
        raise ValidationError({"week": f"{raw!r} is outside the years {FIRST_YEAR}–{LAST_YEAR}"})
    return week


def week_label(week: date) -> str:
    year, number, _ = week.isocalendar()
    return f"{year}-W{number:02d}"


def _start(week: date) -> datetime:
    return datetime.combine(week, time(), UTC)


def in_weeks(first: date, last: date):
    """The one week rule: a task's time and its answer belong to the week (UTC, from Monday) in which
    it was claimed (``assigned_at``), for pay and for the quality bonus alike."""
    return and_(Assignment.assigned_at >= _start(first), Assignment.assigned_at < _start(last + timedelta(days=7)))


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
        .where(in_weeks(first, last), Assignment.status.in_(BILLABLE_STATUSES),
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


ID_CHUNK = 500  # ids bound per statement when a list of them is unavoidable (SQLite allows 32,766)


def users_by_id(session: Session, user_ids) -> dict[int, User]:
    """The users with these ids, a bounded number of ids per statement (a week's payroll can name
    thousands of trainers)."""
    ids = sorted({i for i in user_ids if i is not None})
    found: dict[int, User] = {}
    for n in range(0, len(ids), ID_CHUNK):
        found.update((u.id, u) for u in session.scalars(select(User).where(User.id.in_(ids[n:n + ID_CHUNK]))))
    return found


def rates(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Hourly rate in cents per (trainer, project): the member's override, else the project's rate."""
    if not pairs:
        return {}
    project_ids = sorted({p for _, p in pairs})
    projects, overrides = {}, {}
    for n in range(0, len(project_ids), ID_CHUNK):
        chunk = project_ids[n:n + ID_CHUNK]
        projects.update((p.id, p.hourly_rate_cents) for p in session.scalars(select(Project).where(Project.id.in_(chunk))))
        overrides.update(((m.user_id, m.project_id), m.rate_override_cents) for m in session.scalars(
            select(ProjectMember).where(ProjectMember.project_id.in_(chunk), ProjectMember.role == "trainer",
                                        ProjectMember.rate_override_cents.is_not(None))))
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


def open_billable_by_week(session: Session, first: date, last: date, trainer_id: int | None = None,
                          project_id: int | None = None) -> dict[tuple[int, int, date], int]:
    """``billable_by_week`` for the trainer × project × weeks that have no timesheet, read from the
    billable seconds kept per trainer × project × week (``BillableWeek``): one row per open week,
    however many tasks it holds, and approved history costs nothing."""
    stmt = (
        select(BillableWeek.trainer_id, BillableWeek.project_id, BillableWeek.week_start, BillableWeek.seconds)
        .where(BillableWeek.week_start.between(first, last), BillableWeek.tasks > 0,
               ~select(Timesheet.id).where(Timesheet.trainer_id == BillableWeek.trainer_id,
                                           Timesheet.project_id == BillableWeek.project_id,
                                           Timesheet.week_start == BillableWeek.week_start).exists())
    )
    if trainer_id is not None:
        stmt = stmt.where(BillableWeek.trainer_id == trainer_id)
    if project_id is not None:
        stmt = stmt.where(BillableWeek.project_id == project_id)
    return {(trainer, project, _as_date(week)): int(seconds) for trainer, project, week, seconds in session.execute(stmt)}


# --- billable seconds kept per trainer × project × week --------------------------------------------------
#
# Work becomes billable when it is submitted or skipped, with the seconds it holds then (a heartbeat
# adds time only to a live lease, which is not billable yet). The ORM's flush sees every such change
# (a submit's or skip's status, an annotation created excluded or excluded later) and moves the
# trainer's week at once, in the same transaction: the budget check that follows in a submit reads
# it. Bulk statements recount what they touched (``recount_billable``): excluding a trainer's work,
# changing a project's per-task cap, the counter repair.


def _billable(status: str | None, excluded: bool, active_seconds: int | None, cap: int) -> int | None:
    """An assignment's billable seconds, or None when it is not billable (the one rule, as above)."""
    if status not in BILLABLE_STATUSES or excluded:
        return None
    return min(active_seconds or 0, cap)


def _upsert_billable(session: Session, moves: dict[tuple[int, int, date], list[int]]) -> None:
    stmt = adding_upsert(session, BillableWeek.__table__, ("trainer_id", "project_id", "week_start"),
                         ("seconds", "tasks"))
    connection = session.connection()
    for (trainer, project, week), (seconds, tasks) in sorted(moves.items()):
        if not seconds and not tasks:
            continue
        connection.execute(stmt, {"trainer_id": trainer, "project_id": project, "week_start": week,
                                  "seconds": seconds, "tasks": tasks})


def _old(obj, name: str):
    history = inspect(obj).attrs[name].history
    return history.deleted[0] if history.deleted else history.unchanged[0] if history.unchanged else getattr(obj, name)


_PAID_STATE = ("status", "active_seconds", "assigned_at", "trainer_id", "project_id")


@event.listens_for(Session, "after_flush")
def _work_flushed(session: Session, _context) -> None:
    """Assignments and annotations the ORM changed move their trainers' billable weeks."""
    assignments = [a for a in session.new if isinstance(a, Assignment)] + [
        a for a in session.dirty if isinstance(a, Assignment)
        and any(inspect(a).attrs[n].history.has_changes() for n in _PAID_STATE)]
    seen = {a.id for a in assignments}
    annotations = [n for n in session.new if isinstance(n, Annotation) and n.excluded
                   and n.assignment_id not in seen] + [
        n for n in session.dirty if isinstance(n, Annotation) and n.assignment_id not in seen
        and inspect(n).attrs.excluded.history.has_changes()]
    if not assignments and not annotations:
        return
    connection = session.connection()
    caps: dict[int, int] = {}
    fresh = {n.assignment_id: bool(n.excluded) for n in session.new if isinstance(n, Annotation)}
    moves: dict[tuple[int, int, date], list[int]] = defaultdict(lambda: [0, 0])

    def cap(project_id: int) -> int:
        if project_id not in caps:
            known = session.identity_map.get(session.identity_key(Project, project_id))
            caps[project_id] = known.max_billable_seconds_per_task if known is not None else connection.scalar(
                select(Project.max_billable_seconds_per_task).where(Project.id == project_id)) or 0
        return caps[project_id]

    def move(trainer, project, assigned_at, status, excluded, active_seconds, sign) -> None:
        if status in BILLABLE_STATUSES:  # else nothing to look up: a heartbeat costs no statement here
            seconds = _billable(status, excluded, active_seconds, cap(project))
            if seconds is not None:
                entry = moves[(trainer, project, week_of(assigned_at))]
                entry[0] += sign * seconds
                entry[1] += sign

    for a in assignments:
        old = None if a in session.new else {n: _old(a, n) for n in _PAID_STATE}
        if old is not None and old["status"] in BILLABLE_STATUSES:  # its annotation may be older than this flush
            out = bool(connection.scalar(select(Annotation.excluded).where(Annotation.assignment_id == a.id)))
        else:  # it just became billable: an annotation, if any, is new in this flush
            out = fresh.get(a.id, False)
        if old is not None:
            move(old["trainer_id"], old["project_id"], old["assigned_at"], old["status"], out,
                 old["active_seconds"], -1)
        move(a.trainer_id, a.project_id, a.assigned_at, a.status, out, a.active_seconds, 1)
    for n in annotations:
        row = connection.execute(select(Assignment.trainer_id, Assignment.project_id, Assignment.assigned_at,
                                        Assignment.status, Assignment.active_seconds)
                                 .where(Assignment.id == n.assignment_id)).first()
        if row is not None:
            move(row.trainer_id, row.project_id, row.assigned_at, row.status, False, row.active_seconds,
                 -1 if n.excluded else 1)
    _upsert_billable(session, moves)


def recount_billable(session: Session, project_id: int, trainer_id: int | None = None) -> None:
    """Set a project's billable weeks (or one trainer's there) from the work, after a bulk change or to
    repair them. A building block: the caller's transaction, holding the trainers' pay locks where
    their time may move meanwhile; does not commit."""
    session.flush()
    where = [BillableWeek.project_id == project_id]
    work = [Assignment.project_id == project_id]
    if trainer_id is not None:
        where.append(BillableWeek.trainer_id == trainer_id)
        work.append(Assignment.trainer_id == trainer_id)
    session.execute(delete(BillableWeek).where(*where))
    week = _week_start_expr(session)
    if session.get_bind().dialect.name == "postgresql":
        week = func.cast(week, Date())
    week = week.label("week")
    session.execute(insert(BillableWeek).from_select(
        ["trainer_id", "project_id", "week_start", "seconds", "tasks"],
        select(Assignment.trainer_id, Assignment.project_id, week, func.sum(billable_seconds_expr()),
               func.count(Assignment.id))
        .join(Project, Project.id == Assignment.project_id)
        .outerjoin(Annotation, Annotation.assignment_id == Assignment.id)
        .where(*work, Assignment.status.in_(BILLABLE_STATUSES),
               or_(Annotation.id.is_(None), Annotation.excluded.is_(False)))
        .group_by(Assignment.trainer_id, Assignment.project_id, week)))


def lines(session: Session, first: date, last: date, trainer_id: int | None = None,
          project_id: int | None = None) -> list[Line]:
    """Every trainer × project × week with work, a timesheet or an adjustment, first…last.

    A week with a timesheet shows the timesheet, so the live sums are read only for weeks without
    one (``open_billable_by_week``)."""
    live = open_billable_by_week(session, first, last, trainer_id, project_id)
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


def lock_trainers(session: Session, trainer_ids) -> None:
    """Take the trainers' rows (PostgreSQL; SQLite's write lock already serialises): their submits,
    heartbeats and pay changes wait until this transaction ends, and it waits for theirs. A week is
    approved, or a correction checked, against time that cannot move underneath it."""
    if trainer_ids and not is_sqlite(session):
        # NO KEY UPDATE: rows that only point at these trainers (new assignments, audit events) go on.
        # In id order, a bounded number per statement (approving a week can name thousands).
        ids = sorted(set(trainer_ids))
        for n in range(0, len(ids), ID_CHUNK):
            session.execute(select(User.id).where(User.id.in_(ids[n:n + ID_CHUNK])).order_by(User.id)
                            .with_for_update(key_share=True))


def lock_project_trainers(session: Session, project_id: int) -> None:
    """``lock_trainers`` for every trainer of a project: before a change that moves all their billable
    time there (a cap change, the counter repair), taken before items and the project row."""
    lock_trainers(session, list(session.scalars(select(ProjectMember.user_id).where(
        ProjectMember.project_id == project_id, ProjectMember.role == "trainer"))))


def approve(session: Session, week: date, keys: list[tuple[int, int]] | None, actor_id: int | None,
            now: datetime | None = None) -> list[Timesheet]:
    """Lock open timesheets of a week (all of them, or the given trainer × project keys). Commits.

    Nobody approves their own pay: asked for by key it is refused, and "all" leaves it open. A line
    someone else approved first is a Conflict (and so is losing that race at the database).
    """
    now = now or utcnow()
    if week > week_of(now):
        raise ValidationError({"week": f"{week_label(week)} has not started yet"})
    wanted = set(keys) if keys is not None else None
    if wanted is not None and any(trainer_id == actor_id for trainer_id, _ in wanted):
        raise ValidationError({"line": "nobody may approve their own pay; another admin approves it"})
    begin_write(session)
    locked = {t for t, _ in wanted} if wanted is not None else {line.trainer_id for line in lines(session, week, week)}
    vouched = vouched_for(session, actor_id, locked)
    if wanted is not None and vouched:
        session.rollback()
        raise ValidationError({"line": VOUCHED})
    lock_trainers(session, locked)
    by_key = {(line.trainer_id, line.project_id): line for line in lines(session, week, week)
              if line.project_id is not None and line.trainer_id in locked}
    if wanted is not None:
        unknown = wanted - set(by_key)
        if unknown:
            session.rollback()
            raise ValidationError({"line": f"{len(unknown)} of the ticked lines have no pay in {week_label(week)}"})
        taken = [key for key in wanted if by_key[key].status != "open"]
        if taken:
            session.rollback()
            raise Conflict(f"{len(taken)} of the ticked timesheets {'was' if len(taken) == 1 else 'were'} already "
                           "approved (by someone else, or earlier); the page now shows them as they are")
    approved = []
    try:
        for key, line in sorted(by_key.items()):
            if line.status != "open" or line.trainer_id in (actor_id, *vouched) or (wanted is not None and key not in wanted):
                continue
            sheet = Timesheet(trainer_id=line.trainer_id, project_id=line.project_id, week_start=week,
                              billable_seconds=line.billable_seconds, rate_cents=line.rate_cents,
                              amount_cents=line.amount_cents, status="approved", approved_by=actor_id,
                              approved_at=now)
            session.add(sheet)
            approved.append(sheet)
            _quality_bonus(session, sheet, actor_id)
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("another admin approved some of these timesheets at the same moment; the page now shows "
                       "them as they are") from None
    if approved:
        audit.record(session, actor_id, "pay.approve", "week", week_label(week),
                     {"timesheets": [s.id for s in approved], "amount_cents": sum(s.amount_cents for s in approved)})
    session.commit()
    return approved


VOUCHED = ("nobody may give a bonus to, approve or pay the pay of an account they made, gave roles to or gave "
           "a one-time password link to (they could have worked as it); another admin does")


def vouched_for(session: Session, actor_id: int | None, trainer_ids) -> set[int]:
    """The trainers among ``trainer_ids`` whose account ``actor_id`` made (the audit's ``user.create``),
    gave roles to on the people page (``user.roles``: an account from /apply made a trainer there) or
    gave a one-time password link to: an admin who could have signed in as them, or made them a trainer,
    gives them no bonus and does not approve or pay their pay, as for their own. The command line (no
    actor) vouches for nobody. (Vetting is the recruiting path and does not count: a team with one admin
    vets its trainers and pays them.)"""
    ids = sorted(set(trainer_ids))
    if actor_id is None or not ids:
        return set()
    found = set()
    for n in range(0, len(ids), ID_CHUNK):
        chunk = ids[n:n + ID_CHUNK]
        found.update(int(t) for t in session.scalars(select(AuditEvent.target_id).where(
            AuditEvent.action.in_(("user.create", "user.roles")), AuditEvent.actor_id == actor_id,
            AuditEvent.target_type == "user",
            AuditEvent.target_id.in_([str(i) for i in chunk]))))
        found.update(session.scalars(select(PasswordReset.user_id).where(
            PasswordReset.created_by == actor_id, PasswordReset.user_id.in_(chunk))))
    return found


def sheets_total(session: Session, week: date, sheets: list[Timesheet]) -> tuple[int, int]:
    """(pay, adjustments) of these timesheets of ``week``, in cents: what the payroll's Total column
    shows for their lines, bonuses and corrections included (a quality bonus added at approval too)."""
    keys = {(s.trainer_id, s.project_id) for s in sheets}
    found = [line for line in lines(session, week, week, trainer_id=None) if (line.trainer_id, line.project_id) in keys]
    return sum(line.amount_cents for line in found), sum(line.adjustments_cents for line in found)


def _quality_bonus(session: Session, sheet: Timesheet, actor_id: int | None) -> None:
    """The project's optional bonus: +percent of the week's pay when gold accuracy that week ≥ threshold."""
    project = session.get(Project, sheet.project_id)
    if not project.quality_bonus_percent or project.quality_bonus_min_accuracy is None or not sheet.amount_cents:
        return
    accuracy = session.scalar(
        select(func.avg(Annotation.gold_score)).join(Assignment, Assignment.id == Annotation.assignment_id).where(
            Annotation.trainer_id == sheet.trainer_id, Annotation.project_id == sheet.project_id,
            Annotation.gold_score.is_not(None), Annotation.excluded.is_(False),
            in_weeks(sheet.week_start, sheet.week_start))
    )
    if accuracy is None or accuracy < project.quality_bonus_min_accuracy:
        return
    amount = percent_of(sheet.amount_cents, project.quality_bonus_percent)
    session.add(PayAdjustment(
        trainer_id=sheet.trainer_id, project_id=sheet.project_id, week_start=sheet.week_start, kind="quality_bonus",
        amount_cents=amount, created_by=actor_id,
        reason=f"quality bonus: +{project.quality_bonus_percent} % for gold accuracy {accuracy:.0%} "
               f"(≥ {project.quality_bonus_min_accuracy:.0%})"))


REFERENCE_MAX = 200


def mark_paid(session: Session, timesheet_ids: list[int], reference: str, actor_id: int | None,
              now: datetime | None = None) -> int:
    """Approved timesheets become paid, with the payment's reference. Commits; returns how many.
    Nobody marks their own pay paid; a timesheet someone else marked first is a Conflict."""
    reference = (reference or "").strip()
    if not has_visible(reference):
        raise ValidationError({"reference": "give the payment reference (e.g. the bank transfer id)"})
    if len(reference) > REFERENCE_MAX:
        raise ValidationError({"reference": f"at most {REFERENCE_MAX} characters"})
    if problem := one_line_problem(reference):  # shown to the trainer and in the payroll CSV
        raise ValidationError({"reference": problem})
    ids = sorted(set(timesheet_ids))
    begin_write(session)
    chunks = [ids[n:n + ID_CHUNK] for n in range(0, len(ids), ID_CHUNK)]
    sheets = [sheet for chunk in chunks for sheet in session.scalars(select(Timesheet).where(Timesheet.id.in_(chunk)))]
    if len(sheets) != len(ids) or any(s.status != "approved" for s in sheets):
        session.rollback()
        raise ValidationError({"timesheets": "only approved timesheets that are not paid yet can be marked paid"})
    if any(s.trainer_id == actor_id for s in sheets):
        session.rollback()
        raise ValidationError({"timesheets": "nobody may mark their own pay as paid"})
    if vouched_for(session, actor_id, {s.trainer_id for s in sheets}):
        session.rollback()
        raise ValidationError({"timesheets": VOUCHED})
    # Conditional, so two admins marking the same sheets at once do not both record a payment.
    changed = sum(session.execute(
        update(Timesheet).where(Timesheet.id.in_(chunk), Timesheet.status == "approved")
        .values(status="paid", paid_reference=reference, paid_at=now or utcnow())
    ).rowcount for chunk in chunks)
    if changed != len(ids):
        session.rollback()
        raise Conflict("some of these timesheets were already marked paid; the page now shows them as they are")
    audit.record(session, actor_id, "pay.paid", "timesheets", ",".join(map(str, ids)),
                 {"reference": reference, "timesheets": ids, "amount_cents": sum(s.amount_cents for s in sheets)})
    session.commit()
    return len(ids)


ADJUSTMENT_REASON_MAX = 500


def add_adjustment(session: Session, trainer_id: int, project_id: int | None, amount_cents: int, reason: str,
                   actor_id: int | None, kind: str = "bonus", now: datetime | None = None) -> PayAdjustment:
    """A bonus (> 0) or a correction (±) in the current week, for a trainer of that project; audited.
    Commits.

    Nobody adjusts their own pay, and a correction never takes the trainer's earnings in the project
    below zero.
    """
    now = now or utcnow()
    reason = (reason or "").strip()
    errors = {}
    if kind not in ("bonus", "correction"):
        errors["kind"] = "must be bonus or correction"
    if not has_visible(reason):
        errors["reason"] = "say why (the trainer sees it)"
    elif len(reason) > ADJUSTMENT_REASON_MAX:
        errors["reason"] = f"at most {ADJUSTMENT_REASON_MAX} characters"
    elif problem := plain_text_problem(reason):  # the trainer reads it
        errors["reason"] = problem
    if not isinstance(amount_cents, int) or abs(amount_cents) > MAX_ADJUSTMENT_CENTS:
        errors["amount"] = f"must be at most {format_cents(MAX_ADJUSTMENT_CENTS)}"
    elif amount_cents == 0:
        errors["amount"] = "must not be zero"
    elif kind == "bonus" and amount_cents < 0:
        errors["amount"] = "a bonus is more than zero; take money back with a correction"
    project = session.get(Project, project_id) if project_id is not None else None
    payee = session.get(User, trainer_id)
    if project is None:
        errors["project"] = "choose the project it is paid under"
    elif project.kind != "work":
        errors["project"] = "assessments are not paid work"
    elif payee is None or not payee.has_role("trainer") or access.membership(session, trainer_id, project) is None:
        errors["trainer"] = "is not a trainer of this project"
    if trainer_id == actor_id:
        errors["trainer"] = "nobody may adjust their own pay; another admin does it"
    elif kind == "bonus" and vouched_for(session, actor_id, {trainer_id}):  # a correction takes money back
        errors["trainer"] = VOUCHED
    if errors:
        raise ValidationError(errors)
    begin_write(session)
    lock_trainers(session, [trainer_id])  # two corrections at once must not both see the same total
    if amount_cents < 0:
        first = session.scalar(select(func.min(Assignment.assigned_at)).where(
            Assignment.trainer_id == trainer_id, Assignment.project_id == project.id))
        first_adjusted = session.scalar(select(func.min(PayAdjustment.week_start)).where(
            PayAdjustment.trainer_id == trainer_id, PayAdjustment.project_id == project.id))
        start = min(w for w in (week_of(first) if first else None, first_adjusted, week_of(now)) if w is not None)
        last = open_week(session, trainer_id, project.id, now)
        earned = sum(line.total_cents for line in lines(session, start, last, trainer_id, project.id))
        if earned + amount_cents < 0:
            session.rollback()
            raise ValidationError({"amount": f"would take their earnings in this project below zero "
                                             f"(they have {format_cents(earned)})"})
    adjustment = PayAdjustment(trainer_id=trainer_id, project_id=project.id,
                               week_start=open_week(session, trainer_id, project.id, now),
                               kind=kind, amount_cents=amount_cents, reason=reason, created_by=actor_id)
    session.add(adjustment)
    session.flush()
    audit.record(session, actor_id, "pay.adjust", "user", trainer_id,
                 {"adjustment": adjustment.id, "amount_cents": amount_cents, "project_id": project.id, "kind": kind})
    session.commit()
    return adjustment


def adjust(session: Session, trainer_id: int | None, project_id: int | None, amount: str, reason: str,
           actor_id: int | None, kind: str = "bonus", now: datetime | None = None) -> PayAdjustment:
    """The payroll form's adjustment: the amount as typed, signed (a correction may take money back),
    for the trainer and project chosen; then ``add_adjustment``. Commits."""
    errors = {}
    try:
        cents = parse_amount(amount, signed=True, max_cents=MAX_ADJUSTMENT_CENTS)
    except AmountError as exc:
        errors["amount"], cents = str(exc), 0
    if trainer_id is None or project_id is None:
        errors["trainer"] = "choose the trainer and the project"
    if errors:
        raise ValidationError(errors)
    return add_adjustment(session, trainer_id, project_id, cents, reason, actor_id, kind=kind, now=now)


# --- after work changes -----------------------------------------------------------------------------


# Built once: every submit and skip asks.
_WEEKS_SHEET = select(Timesheet).where(Timesheet.trainer_id == bindparam("trainer"),
                                       Timesheet.project_id == bindparam("project"),
                                       Timesheet.week_start == bindparam("week"))


def after_work(session: Session, assignment: Assignment, now: datetime | None = None) -> None:
    """Called in the transaction of a submit or skip: late time for an approved week becomes an
    adjustment now, and a project that used up its budget pauses. Does not commit."""
    now = now or utcnow()
    sheet = session.scalar(_WEEKS_SHEET, {"trainer": assignment.trainer_id, "project": assignment.project_id,
                                          "week": week_of(assignment.assigned_at)})
    if sheet is not None:
        _late_time(session, sheet, now)
    project = session.get(Project, assignment.project_id)
    if project.budget_cents and project.status == "active":  # a paused project has nothing left to pause
        check_budget(session, project, now)


def open_week(session: Session, trainer_id: int, project_id: int, now: datetime) -> date:
    """The week money added now is paid in: this one, or — when this week's timesheet for the
    trainer and project is already approved (or paid) — the next, so it is never stranded in a
    timesheet that will not be paid again."""
    week = week_of(now)
    while session.scalar(select(Timesheet.id).where(
            Timesheet.trainer_id == trainer_id, Timesheet.project_id == project_id, Timesheet.week_start == week)):
        week += timedelta(days=7)
    return week


def settle_approved_weeks(session: Session, trainer_id: int, project_id: int, now: datetime | None = None) -> int:
    """Bring every approved week of a trainer in a project up to date with the work as it stands
    (work excluded or included again after approval): the difference becomes an adjustment now, in
    an open week, with its reason. Does not commit; returns how many adjustments were made."""
    now = now or utcnow()
    sheets = session.scalars(select(Timesheet).where(Timesheet.trainer_id == trainer_id,
                                                     Timesheet.project_id == project_id))
    return sum(1 for sheet in sheets if _late_time(session, sheet, now) is not None)


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
        trainer_id=sheet.trainer_id, project_id=sheet.project_id,
        week_start=open_week(session, sheet.trainer_id, sheet.project_id, now), kind="late_time",
        for_week=sheet.week_start, billable_seconds=extra_seconds, amount_cents=amount,
        reason=f"time {'added to' if extra_seconds > 0 else 'taken from'} {week_label(sheet.week_start)} "
               "after it was approved")
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
    last_adjustment = session.scalar(select(func.max(PayAdjustment.week_start))
                                     .where(PayAdjustment.project_id == project.id))
    current = week_of(utcnow())
    start, end = week_of(first), max(current, last_adjustment) if last_adjustment else current
    # What lines() would sum, with the approved weeks summed by the database: each timesheet's amount,
    # the open weeks live, and the adjustments.
    sheets = session.scalar(select(func.coalesce(func.sum(Timesheet.amount_cents), 0)).where(
        Timesheet.project_id == project.id, Timesheet.week_start.between(start, end)))
    adjusted = session.scalar(select(func.coalesce(func.sum(PayAdjustment.amount_cents), 0)).where(
        PayAdjustment.project_id == project.id, PayAdjustment.week_start.between(start, end)))
    live = open_billable_by_week(session, start, end, project_id=project.id)
    rate_of = rates(session, {(t, p) for t, p, _ in live})
    return int(sheets) + int(adjusted) + sum(cents_for(seconds, rate_of.get((t, p), 0))
                                             for (t, p, _), seconds in live.items())


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
    """Pause a project that has used up its budget (when it is set to); the reason is shown to trainers.
    A building block (the submit's and the payroll's transaction): does not commit."""
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
        return per_hour(self.pending_cents + self.approved_cents + self.paid_cents, self.billable_seconds)


def earnings(session: Session, trainer_id: int, now: datetime | None = None) -> Earnings:
    now = now or utcnow()
    first = session.scalar(select(func.min(Assignment.assigned_at)).where(Assignment.trainer_id == trainer_id))
    first_adjustment, last_adjustment = session.execute(
        select(func.min(PayAdjustment.week_start), func.max(PayAdjustment.week_start))
        .where(PayAdjustment.trainer_id == trainer_id)).one()
    starts = [w for w in (week_of(first) if first else None, first_adjustment) if w is not None]
    current = week_of(now)
    # money added after a week was approved waits in the next week (open_week): it is pending too
    last = max(current, last_adjustment) if last_adjustment else current
    rows = lines(session, min(starts), last, trainer_id=trainer_id) if starts else []
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


# --- the payroll page ---------------------------------------------------------------------------------


@dataclass
class Payroll:
    """What the payroll page shows for one week: its lines (filtered by project and status), the
    people and projects they name, who may get an adjustment, and the budgets."""

    week: date
    lines: list[Line]
    people: dict[int, User]
    projects: dict[int, Project]  # every project, by name
    trainers: list  # (id, name, email) of everyone who is a trainer member somewhere, by name
    budgets: list[Budget]

    @property
    def totals(self) -> dict[str, int]:
        return {"amount": sum(r.amount_cents for r in self.lines),
                "adjustments": sum(r.adjustments_cents for r in self.lines),
                "seconds": sum(r.billable_seconds for r in self.lines)}


def latest_week(session: Session, up_to: date) -> date:
    """The latest week, up to ``up_to``, with work, a timesheet or an adjustment (what Payroll opens on:
    early in a week, the one before, whose timesheets wait to be approved); ``up_to`` when none has."""
    found = [session.scalar(select(func.max(column)).where(column <= up_to))
             for column in (BillableWeek.week_start, Timesheet.week_start, PayAdjustment.week_start)]
    return max((w for w in found if w is not None), default=up_to)


def payroll(session: Session, week: date, project_id: int | None = None, status: str | None = None) -> Payroll:
    rows = [line for line in lines(session, week, week, project_id=project_id) if status in (None, line.status)]
    people = users_by_id(session, {r.trainer_id for r in rows})
    projects = {p.id: p for p in session.scalars(select(Project).order_by(Project.name))}
    trainers = session.execute(
        select(User.id, User.name, User.email).join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.role == "trainer").distinct().order_by(User.name)).all()
    return Payroll(week, rows, people, projects, trainers, budgets(session))


# --- payroll export -----------------------------------------------------------------------------------


def payroll_frame(session: Session, week: date, project_id: int | None = None, status: str | None = None):
    """One row per trainer × project × week, for the payroll CSV (pandas)."""
    import pandas as pd

    rows = [line for line in lines(session, week, week, project_id=project_id) if status in (None, line.status)]
    people = users_by_id(session, {r.trainer_id for r in rows})
    projects = {p.id: p for p in session.scalars(select(Project))}
    columns = ["week", "trainer_email", "trainer_name", "project", "billable_seconds", "billable_hours",
               "rate", "amount", "adjustments", "total", "status", "paid_reference"]
    frame = pd.DataFrame([{
        "week": week_label(r.week), "trainer_email": people[r.trainer_id].email,
        "trainer_name": people[r.trainer_id].name,
        "project": projects[r.project_id].slug if r.project_id in projects else "",
        "billable_seconds": r.billable_seconds, "billable_hours": round(r.billable_seconds / 3600, 4),
        "rate": plain_amount(r.rate_cents), "amount": plain_amount(r.amount_cents),
        "adjustments": plain_amount(r.adjustments_cents), "total": plain_amount(r.total_cents),
        "status": r.status, "paid_reference": r.paid_reference or "",
    } for r in rows], columns=columns)
    frame = spreadsheet_safe(frame)
    frame.attrs["total_cents"] = sum(r.total_cents for r in rows)  # the exact sum, for a summary line
    return frame
