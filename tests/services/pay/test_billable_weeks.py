"""The billable seconds kept per trainer × project × week always equal a recount from the work."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.models import BillableWeek
from app.services import assignment as queue
from app.services import pay
from app.services import projects as project_service
from app.services.maintenance import recount_item_counters
from app.services.stats import exclude_trainer_work
from tests.factories import make_user
from tests.services.pay.test_pay import MONDAY, T0, member, project, work


def assert_kept_equals_the_work(session) -> dict:
    """Every kept week (with work) equals the sum over its tasks; no week with work is missing."""
    session.rollback()
    kept = {(r.trainer_id, r.project_id, r.week_start): r.seconds
            for r in session.scalars(select(BillableWeek).where(BillableWeek.tasks > 0))}
    first, last = MONDAY - timedelta(weeks=4), MONDAY + timedelta(weeks=4)
    assert kept == pay.billable_by_week(session, first, last)
    return kept


def test_submits_skips_exclusions_and_a_cap_change_keep_the_weeks_right(session):
    admin = make_user(session, "admin")
    ann, bob = make_user(session, "trainer"), make_user(session, "trainer")
    p = project(session, "kept", 3600, cap=600, items=8)
    member(session, p, ann)
    member(session, p, bob)
    work(session, ann, p, 100)
    work(session, ann, p, 900)  # capped at 600
    work(session, bob, p, 50, skip=True)
    work(session, bob, p, 0)  # a task of no time still has a line
    work(session, bob, p, 70, when=T0 + timedelta(days=7))  # the next week
    assert assert_kept_equals_the_work(session)[(ann.id, p.id, MONDAY)] == 700
    # Heartbeats on a live lease add time, which becomes billable when submitted.
    live = queue.next_task(session, ann.id, p, now=T0 + timedelta(hours=2))
    queue.record_heartbeat(session, live.id, ann.id, now=T0 + timedelta(hours=2), resume=True)
    queue.record_heartbeat(session, live.id, ann.id, now=T0 + timedelta(hours=2, seconds=15))
    assert_kept_equals_the_work(session)
    queue.submit(session, live.id, ann.id, {"label": "no"}, now=T0 + timedelta(hours=2, seconds=20))
    assert assert_kept_equals_the_work(session)[(ann.id, p.id, MONDAY)] == 700 + 20
    # Excluding and including a trainer's work, after their week was approved.
    pay.approve(session, MONDAY, [(bob.id, p.id)], admin.id, now=T0 + timedelta(days=3))
    exclude_trainer_work(session, p, bob.id, admin.id)
    assert (bob.id, p.id, MONDAY) in assert_kept_equals_the_work(session)  # the skip stays billable
    exclude_trainer_work(session, p, bob.id, admin.id, excluded=False)
    assert_kept_equals_the_work(session)
    # The per-task cap changes: every task is capped anew.
    project_service.update_project(session, p, name=p.name, max_billable_seconds_per_task=60)
    assert assert_kept_equals_the_work(session)[(ann.id, p.id, MONDAY)] == 60 + 60 + 20
    # The open weeks and the spend read the kept rows and still equal the lines.
    lines = pay.lines(session, MONDAY, MONDAY + timedelta(weeks=1), project_id=p.id)
    assert pay.project_spend(session, p) == sum(line.total_cents for line in lines)


def test_a_drifted_week_is_repaired_by_the_recount(session):
    trainer = make_user(session, "trainer")
    p = project(session, "drift", 3600)
    member(session, p, trainer)
    work(session, trainer, p, 100)
    right = assert_kept_equals_the_work(session)
    session.execute(update(BillableWeek).values(seconds=5, tasks=9))
    session.commit()
    recount_item_counters(session, p.id)
    assert assert_kept_equals_the_work(session) == right
