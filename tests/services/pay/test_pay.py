"""Pay rules with worked examples, exact to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.models import Annotation, Assignment, PayAdjustment, Project
from app.services import assignment as queue
from app.services import pay
from app.services import projects as project_service
from tests.factories import make_user

MONDAY = date(2026, 11, 16)
T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)  # a Tuesday in the week of MONDAY


def project(session, slug, rate_cents, cap=1800, items=5, budget=None, **extra):
    p = project_service.create_project(
        session, name=slug, slug=slug, status="active", overlap=1, hourly_rate_cents=rate_cents,
        max_billable_seconds_per_task=cap, budget_cents=budget,
        questions=[{"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["yes", "no"]}}], **extra)
    for n in range(items):
        project_service.add_item(session, p, prompt=f"{slug} {n}", responses=["r"], external_id=f"{slug}-{n}")
    session.commit()
    return p


def work(session, trainer, p, seconds, when=T0, skip=False, submit_at=None):
    """One task: claimed at ``when``, ``seconds`` of active time, then submitted (or skipped)."""
    a = queue.next_task(session, trainer.id, p, now=when)
    a.active_seconds = seconds
    session.commit()
    done_at = submit_at or when + timedelta(seconds=seconds)
    if skip:
        queue.skip(session, a.id, trainer.id, "unclear", now=done_at)
    else:
        queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=done_at)
    return a


def member(session, p, user, override=None):
    m = project_service.add_member(session, p, user, "trainer")
    m.rate_override_cents = override
    session.commit()
    return m


def week_lines(session, week=MONDAY):
    return {(line.trainer_id, line.project_id): line for line in pay.lines(session, week, week)}


def test_one_hour_and_one_second_at_37_50(session):
    trainer = make_user(session, "trainer")
    p = project(session, "hour", 3750, cap=7200)
    member(session, p, trainer)
    work(session, trainer, p, 3601)
    line = week_lines(session)[(trainer.id, p.id)]
    # 3601 s × 37.50 / 3600 = 37.5104… -> 37.51
    assert (line.billable_seconds, line.rate_cents, line.amount_cents) == (3601, 3750, 3751)


def test_three_projects_different_rates_and_one_override(session):
    trainer = make_user(session, "trainer")
    a, b, c = project(session, "pa", 3000), project(session, "pb", 4500), project(session, "pc", 2000)
    member(session, a, trainer)
    member(session, b, trainer)
    member(session, c, trainer, override=6000)  # the member's rate wins over the project's 20.00
    for p, seconds in ((a, 1200), (b, 1000), (c, 1500)):
        work(session, trainer, p, seconds)
    lines = week_lines(session)
    assert lines[(trainer.id, a.id)].amount_cents == 1000  # 1200 s at 30.00/h = 10.00
    assert lines[(trainer.id, b.id)].amount_cents == 1250  # 1000 s at 45.00/h = 12.50
    assert lines[(trainer.id, c.id)].amount_cents == 2500  # 1500 s at 60.00/h (override) = 25.00
    assert lines[(trainer.id, c.id)].rate_cents == 6000


def test_a_capped_task_a_skipped_task_and_an_excluded_annotation(session):
    trainer = make_user(session, "trainer")
    p = project(session, "mixed", 3600, cap=600)  # 36.00/h = 1 cent a second
    member(session, p, trainer)
    work(session, trainer, p, 900)  # capped at 600 s
    work(session, trainer, p, 120, skip=True)  # skipped work is paid, capped the same way
    spam = work(session, trainer, p, 300)
    annotation = session.scalar(select(Annotation).where(Annotation.assignment_id == spam.id))
    annotation.excluded = True  # excluded as spam: not paid
    session.commit()
    line = week_lines(session)[(trainer.id, p.id)]
    assert (line.billable_seconds, line.amount_cents) == (720, 720)


def test_rounding_happens_once_per_timesheet_not_per_task(session):
    trainer = make_user(session, "trainer")
    p = project(session, "round", 1)  # 0.01/h: every task alone would round to 0
    member(session, p, trainer)
    for _ in range(4):
        work(session, trainer, p, 1800)
    assert week_lines(session)[(trainer.id, p.id)].amount_cents == 2  # 7200 s at 1 cent/h


def test_weeks_are_iso_weeks_in_utc(session):
    trainer = make_user(session, "trainer")
    p = project(session, "weeks", 3600)
    member(session, p, trainer)
    work(session, trainer, p, 60, when=datetime(2026, 11, 22, 23, 59, tzinfo=UTC))  # Sunday night: week of 16th
    work(session, trainer, p, 60, when=datetime(2026, 11, 23, 0, 1, tzinfo=UTC))  # Monday: next week
    lines = pay.lines(session, MONDAY, MONDAY + timedelta(days=7))
    assert [(line.week, line.billable_seconds) for line in lines] == [(MONDAY, 60), (MONDAY + timedelta(days=7), 60)]
    assert pay.parse_week("2026-W47") == MONDAY and pay.parse_week("2026-11-19") == MONDAY
    assert pay.week_label(MONDAY) == "2026-W47"
    with pytest.raises(ValidationError):
        pay.parse_week("week 47")


def test_approving_locks_the_week_and_late_time_becomes_an_adjustment(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = project(session, "lock", 3600)
    member(session, p, trainer)
    work(session, trainer, p, 100)
    late = queue.next_task(session, trainer.id, p, now=T0 + timedelta(hours=1))  # claimed, not yet submitted
    late.active_seconds = 50
    session.commit()
    now = T0 + timedelta(days=2)
    [sheet] = pay.approve(session, MONDAY, None, admin.id, now=now)
    assert (sheet.billable_seconds, sheet.amount_cents, sheet.status) == (100, 100, "approved")
    # Heartbeats on the still-open task add active time but change nothing approved...
    queue.record_heartbeat(session, late.id, trainer.id, now=now, resume=True)
    queue.record_heartbeat(session, late.id, trainer.id, now=now + timedelta(seconds=15))
    session.refresh(sheet)
    assert (sheet.billable_seconds, sheet.amount_cents) == (100, 100)
    assert session.scalar(select(PayAdjustment)) is None
    # ...its late submit (next week) does, as an adjustment in that week.
    later = now + timedelta(days=6)
    queue.submit(session, late.id, trainer.id, {"label": "no"}, now=later)
    session.refresh(sheet)
    assert (sheet.billable_seconds, sheet.amount_cents, sheet.status) == (100, 100, "approved")
    [adjustment] = session.scalars(select(PayAdjustment)).all()
    late_seconds = session.get(Assignment, late.id).active_seconds
    assert late_seconds >= 50  # the 50 s it had, plus what the heartbeats counted
    assert (adjustment.kind, adjustment.amount_cents, adjustment.billable_seconds) == ("late_time", late_seconds,
                                                                                        late_seconds)
    assert adjustment.week_start == pay.week_of(later) and adjustment.for_week == MONDAY
    assert pay.approve(session, MONDAY, None, admin.id, now=later) == []  # nothing left open that week


def test_mark_paid_needs_a_reference_and_an_approved_sheet(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = project(session, "paid", 3600)
    member(session, p, trainer)
    work(session, trainer, p, 100)
    [sheet] = pay.approve(session, MONDAY, None, admin.id, now=T0 + timedelta(days=1))
    for blank_or_hidden in ("  ", "\u200b", "\u2060 \u200b", "SEPA\u202e42", "SEPA\n42"):
        with pytest.raises(ValidationError) as refused:
            pay.mark_paid(session, [sheet.id], blank_or_hidden, admin.id)
        assert "reference" in refused.value.errors, repr(blank_or_hidden)
    assert pay.mark_paid(session, [sheet.id], "SEPA-2026-0042", admin.id) == 1
    session.refresh(sheet)
    assert (sheet.status, sheet.paid_reference) == ("paid", "SEPA-2026-0042")
    with pytest.raises(ValidationError):
        pay.mark_paid(session, [sheet.id], "again", admin.id)


def test_adjustments_and_the_quality_bonus(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = project(session, "bonus", 3600, quality_bonus_percent=10, quality_bonus_min_accuracy=0.9)
    member(session, p, trainer)
    gold = session.scalar(select(Project).where(Project.id == p.id))
    work(session, trainer, gold, 1000)
    annotation = session.scalar(select(Annotation).where(Annotation.trainer_id == trainer.id))
    annotation.gold_score = 1.0
    session.commit()
    pay.approve(session, MONDAY, None, admin.id, now=T0 + timedelta(days=1))
    bonus = session.scalar(select(PayAdjustment).where(PayAdjustment.kind == "quality_bonus"))
    assert bonus.amount_cents == 100  # 10 % of 10.00
    extra = pay.add_adjustment(session, trainer.id, p.id, -250, "Duplicate payment last week", admin.id,
                               kind="correction", now=T0 + timedelta(days=8))
    assert extra.week_start == MONDAY + timedelta(days=7)
    with pytest.raises(ValidationError) as caught:
        pay.add_adjustment(session, trainer.id, p.id, 0, "", admin.id)
    assert set(caught.value.errors) == {"reason", "amount"}
    with pytest.raises(ValidationError) as caught:  # a reason that shows nothing says nothing
        pay.add_adjustment(session, trainer.id, p.id, 100, "\u200b\u2060", admin.id, now=T0 + timedelta(days=8))
    assert set(caught.value.errors) == {"reason"}


def test_earnings_sum_states_and_effective_rate(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = project(session, "earn", 3600)
    member(session, p, trainer)
    work(session, trainer, p, 600)
    work(session, trainer, p, 1200, when=T0 + timedelta(days=7))
    pay.approve(session, MONDAY, None, admin.id, now=T0 + timedelta(days=8))
    mine = pay.earnings(session, trainer.id, now=T0 + timedelta(days=8))
    assert (mine.this_week_cents, mine.pending_cents, mine.approved_cents, mine.paid_cents) == (1200, 1200, 600, 0)
    assert mine.effective_hourly_cents == 3600
    assert mine.per_project[p.id] == {"seconds": 1800, "cents": 1800}


def test_a_project_over_budget_pauses_and_says_why(session):
    trainer = make_user(session, "trainer")
    p = project(session, "budget", 3600, budget=1000)  # 10.00 = 1,000 s of work
    member(session, p, trainer)
    work(session, trainer, p, 700)
    assert session.get(Project, p.id).status == "active"
    assert pay.budgets(session)[0].level == "ok"
    work(session, trainer, p, 200)
    assert pay.budgets(session)[0].level == "warn"  # 90 %
    work(session, trainer, p, 200)
    refreshed = session.get(Project, p.id)
    session.refresh(refreshed)
    assert refreshed.status == "paused" and "budget is used up (11.00 of 10.00)" in refreshed.paused_reason
    assert queue.next_task(session, trainer.id, refreshed) is None
    project_service.update_project(session, refreshed, name=refreshed.name, status="active", budget_cents=5000)
    session.commit()
    assert refreshed.paused_reason is None and queue.next_task(session, trainer.id, refreshed) is not None


def test_the_bonus_reads_gold_of_the_week_the_pay_comes_from(session):
    # Claimed late on Sunday, submitted early on Monday: the task's time is paid in the first week,
    # and its gold answer counts for that week's bonus too (one week rule), not the next week's.
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    p = project(session, "bonus-week", 3600, cap=3600, quality_bonus_percent=10, quality_bonus_min_accuracy=0.9)
    member(session, p, trainer)
    sunday_night = datetime.combine(MONDAY + timedelta(days=6), datetime.min.time(), UTC) + timedelta(hours=23, minutes=50)
    work(session, trainer, p, 1200, when=sunday_night, submit_at=sunday_night + timedelta(minutes=20))
    session.execute(Annotation.__table__.update().values(gold_score=1.0))
    session.commit()
    assert week_lines(session)[(trainer.id, p.id)].billable_seconds == 1200
    pay.approve(session, MONDAY, None, admin.id, now=sunday_night + timedelta(days=2))
    bonus = session.scalar(select(PayAdjustment).where(PayAdjustment.kind == "quality_bonus"))
    assert bonus is not None and bonus.week_start == MONDAY and bonus.amount_cents == 120  # 10 % of 12.00
