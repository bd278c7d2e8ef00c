"""The post-submit pipeline: its order, each hook on its own, and what a submit costs in statements."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update

from app.models import (
    Annotation,
    AuditEvent,
    Item,
    PayAdjustment,
    Project,
    ProjectMember,
    ProjectStats,
    utcnow,
)
from app.services import after_submit, pay
from app.services import assignment as queue
from app.services import stats as stats_service
from app.services.after_submit import POST_SUBMIT_HOOKS, Submitted
from tests.factories import make_label_project, make_user
from tests.statements import statements

MONDAY = date(2026, 11, 16)
T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)  # a Tuesday in the week of MONDAY


class Dice(random.Random):
    """An rng that always rolls ``value``: a sample at review rate r happens when value < r."""

    def __init__(self, value: float):
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def stored(session, trainer, project, *, gold_score=None, active_seconds=None, flagged_reason=None, rng=None,
           now=None, assignment=None) -> Submitted:
    """A claimed task (``assignment``, else a new claim) brought to where the submit hands it to the
    hooks: finished, its time counted, its annotation added to the session but not written."""
    now = now or utcnow()
    assignment = assignment or queue.next_task(session, trainer.id, project, now=now)
    assert assignment is not None
    item = session.get(Item, assignment.item_id)
    if active_seconds is None:
        active_seconds = assignment.active_seconds
    assignment.status, assignment.finished_at, assignment.active_seconds = "submitted", now, active_seconds
    annotation = Annotation(
        assignment_id=assignment.id, item_id=item.id, project_id=project.id, trainer_id=trainer.id,
        answers={"label": "yes"}, submitted_at=now, active_seconds=active_seconds, gold_score=gold_score,
    )
    session.add(annotation)
    return Submitted(session, assignment, annotation, item, project, flagged_reason, rng or Dice(0.99), now)


def gold_project(session, trainer, golds=4, items=8):
    project = make_label_project(session, items=items, trainers=[trainer])
    for item in session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(golds)):
        item.is_gold, item.gold_answers, item.priority = True, {"label": "yes"}, 10
    project.gold_rate = 1.0  # every claim a gold one while they last
    session.commit()
    return project


def test_the_hooks_run_in_this_order():
    assert POST_SUBMIT_HOOKS == (after_submit.route_to_review, after_submit.pause_on_failed_gold,
                                 after_submit.count_pay, after_submit.announce_completion)


def test_run_calls_every_hook_in_order_with_the_same_context(monkeypatch):
    calls = []
    hooks = tuple((lambda s, n=n: calls.append((n, s))) for n in range(3))
    monkeypatch.setattr(after_submit, "POST_SUBMIT_HOOKS", hooks)
    context = object()
    after_submit.run(context)
    assert calls == [(0, context), (1, context), (2, context)]


# --- route_to_review ---------------------------------------------------------------------------------


def test_route_to_review_sends_failed_gold_first(session):
    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer)
    s = stored(session, trainer, project, gold_score=0.0, flagged_reason="flagged by an admin")
    assert s.item.is_gold
    after_submit.route_to_review(s)
    assert s.annotation.review_reason == "failed_gold"


def test_route_to_review_passes_good_gold_and_plain_work(session):
    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer)
    s = stored(session, trainer, project, gold_score=1.0)
    after_submit.route_to_review(s)
    assert s.annotation.review_reason is None


def test_route_to_review_flags_a_flagged_trainers_work(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    s = stored(session, trainer, project, flagged_reason="looked careless")
    after_submit.route_to_review(s)
    assert s.annotation.review_reason == "flagged_trainer"


def test_route_to_review_samples_at_the_review_rate(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    project.review_rate = 0.25
    session.commit()
    below = stored(session, trainer, project, rng=Dice(0.1))
    after_submit.route_to_review(below)
    assert below.annotation.review_reason == "sampled"
    session.rollback()
    above = stored(session, trainer, project, rng=Dice(0.3))
    after_submit.route_to_review(above)
    assert above.annotation.review_reason is None


def test_route_to_review_catches_an_answer_far_faster_than_the_median(session):
    trainer, other = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=22, trainers=[trainer, other])
    for _ in range(20):  # the history the median needs
        a = queue.next_task(session, other.id, project)
        queue.submit(session, a.id, other.id, {"label": "no"})
    session.execute(update(Annotation).values(active_seconds=60))
    session.commit()
    s = stored(session, trainer, project, active_seconds=19)  # a third of 60 s is 20 s
    after_submit.route_to_review(s)
    assert s.annotation.review_reason == "too_fast"
    assert s.annotation in session.new  # judged against the answers before it, not written by the hook
    session.rollback()
    s = stored(session, trainer, project, active_seconds=20)
    after_submit.route_to_review(s)
    assert s.annotation.review_reason is None


# --- pause_on_failed_gold ----------------------------------------------------------------------------


def _member(session, project, trainer) -> ProjectMember:
    return session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == trainer.id))


def test_pause_on_failed_gold_pauses_at_the_third_failure_and_audits_it(session):
    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer)
    for _ in range(2):
        s = stored(session, trainer, project, gold_score=0.0)
        after_submit.pause_on_failed_gold(s)
        session.commit()
        assert _member(session, project, trainer).status == "active"  # two gold answers: too few to judge
    s = stored(session, trainer, project, gold_score=0.0, now=utcnow())
    after_submit.pause_on_failed_gold(s)
    session.commit()
    member = _member(session, project, trainer)
    assert member.status == "paused" and member.flagged_at == s.now
    assert member.flagged_reason == "gold accuracy 0% over the last 3 gold answers (minimum 60%)"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.auto_pause"))
    assert event.data == {"user_id": trainer.id, "gold_answers": 3, "gold_accuracy": 0.0}


def test_pause_on_failed_gold_keeps_an_accurate_trainer_and_ignores_plain_work(session):
    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer, golds=3)
    for score in (1.0, 0.0, 1.0):
        s = stored(session, trainer, project, gold_score=score)
        after_submit.pause_on_failed_gold(s)
        session.commit()
    assert _member(session, project, trainer).status == "active"  # 67 % is above the line
    s = stored(session, trainer, project)  # the golds are used up: a work item
    assert not s.item.is_gold
    after_submit.pause_on_failed_gold(s)
    assert s.annotation in session.new  # a work item costs the hook nothing, not even a flush
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "member.auto_pause")) == 0


# --- count_pay ---------------------------------------------------------------------------------------


def paid_project(session, trainer, rate_cents=3600, budget=None, items=4) -> Project:
    project = make_label_project(session, items=items, trainers=[trainer])
    project.hourly_rate_cents, project.max_billable_seconds_per_task, project.budget_cents = rate_cents, 3600, budget
    session.commit()
    return project


def test_count_pay_turns_time_added_to_an_approved_week_into_an_adjustment(session):
    admin, trainer = make_user(session, "admin"), make_user(session, "trainer")
    project = paid_project(session, trainer)
    a = queue.next_task(session, trainer.id, project, now=T0)
    a.active_seconds = 100
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=T0 + timedelta(seconds=100))
    late = queue.next_task(session, trainer.id, project, now=T0 + timedelta(hours=1))  # claimed, not submitted
    late.active_seconds = 50
    session.commit()
    approved_at = T0 + timedelta(days=2)
    [sheet] = pay.approve(session, MONDAY, None, admin.id, now=approved_at)
    assert (sheet.billable_seconds, sheet.amount_cents) == (100, 100)
    s = stored(session, trainer, project, assignment=late, now=approved_at + timedelta(days=6))
    after_submit.count_pay(s)
    session.commit()
    [adjustment] = session.scalars(select(PayAdjustment)).all()
    assert (adjustment.kind, adjustment.billable_seconds, adjustment.amount_cents) == ("late_time", 50, 50)
    assert adjustment.for_week == MONDAY and adjustment.week_start == pay.week_of(s.now)
    session.refresh(sheet)
    assert (sheet.billable_seconds, sheet.amount_cents, sheet.status) == (100, 100, "approved")


def test_count_pay_pauses_a_project_that_spent_its_budget(session):
    trainer = make_user(session, "trainer")
    project = paid_project(session, trainer, rate_cents=3600, budget=1000)  # 10.00 = 1,000 s
    s = stored(session, trainer, project, active_seconds=900)
    after_submit.count_pay(s)
    session.commit()
    assert session.get(Project, project.id).status == "active"
    s = stored(session, trainer, project, active_seconds=200)
    after_submit.count_pay(s)
    session.commit()
    session.refresh(project)
    assert project.status == "paused" and "budget is used up (11.00 of 10.00)" in project.paused_reason


def test_count_pay_writes_nothing_for_an_open_week_within_budget(session):
    trainer = make_user(session, "trainer")
    project = paid_project(session, trainer, budget=100_000)
    s = stored(session, trainer, project, active_seconds=60)
    after_submit.count_pay(s)
    session.commit()
    assert session.scalar(select(func.count(PayAdjustment.id))) == 0
    assert session.get(Project, project.id).status == "active"


# --- after the commit: statistics_due ----------------------------------------------------------------


def _one_trainer_project(session):
    """A trainer, a six-item project and a way to submit their next task."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=6, trainers=[trainer])

    def submit_one():
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": "yes"})

    return project, submit_one


def test_statistics_are_due_every_stats_every_submissions_at_most_once_a_minute(session, monkeypatch):
    monkeypatch.setattr(stats_service, "STATS_EVERY", 2)
    monkeypatch.setattr(stats_service, "STATS_SHARE", 1)  # the cap, not a small project's share, decides here
    project, submit_one = _one_trainer_project(session)
    submit_one()
    assert after_submit.statistics_due(session, project)  # no figures yet: the first answer makes them
    submit_one()
    assert after_submit.statistics_due(session, project)
    stats_service.compute_project_stats(session, project)
    session.commit()
    submit_one()
    submit_one()
    assert not after_submit.statistics_due(session, project)  # enough new work, but the figures are fresh
    # Within that minute the answer is remembered: the next submits ask the database nothing.
    assert statements(session, lambda: after_submit.statistics_due(session, project)) == []
    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == project.id))
    monkeypatch.setattr(stats_service, "utcnow", lambda: computed_at + timedelta(minutes=2))  # time passes
    assert after_submit.statistics_due(session, project)


def test_a_burst_inside_the_fresh_minute_asks_once_for_figures_a_minute_later(session, monkeypatch):
    """Answers that arrive while the figures are fresh, with nothing after them, would stay out of the
    figures for good: the first such submit asks for a look once the minute is over (one ask per
    computation); by then the figures are due and get recomputed."""
    project, submit_one = _one_trainer_project(session)
    submit_one()
    stats_service.compute_project_stats(session, project)
    session.commit()
    submit_one()
    assert not after_submit.statistics_due(session, project)  # fresh
    wait = after_submit.statistics_later(session, project)
    assert wait is not None and 55 < wait <= 61
    submit_one()
    assert not after_submit.statistics_due(session, project)
    assert after_submit.statistics_later(session, project) is None  # asked once for this computation
    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == project.id))
    monkeypatch.setattr(stats_service, "utcnow", lambda: computed_at + timedelta(seconds=wait))  # the minute is over
    assert after_submit.statistics_due(session, project)  # 2 new answers over the 1 held: due
    stats_service.compute_project_stats(session, project)
    session.commit()
    assert session.scalar(select(ProjectStats.annotations).where(ProjectStats.project_id == project.id)) == 3


def test_the_remembered_freshness_is_per_database(session, monkeypatch):
    """Another engine (another database, the same project id) reads its own figures."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session as OrmSession

    monkeypatch.setattr(stats_service, "STATS_EVERY", 1)
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    stats_service.compute_project_stats(session, project)
    session.commit()
    assert not after_submit.statistics_due(session, project)  # fresh, and now remembered for this engine
    other = create_engine(session.get_bind().url)
    try:
        with OrmSession(other) as second:
            seen = statements(second, lambda: after_submit.statistics_due(second, project))
    finally:
        other.dispose()
    assert any("project_stats" in s for s in seen)


# --- the whole submit --------------------------------------------------------------------------------


# A plain submit (a work item, no time to count, no timesheet): the locking read, the questions,
# the assignment, the item's counters, the median's history, the annotation, the timesheet look-up;
# as it completes its item, the look-up for an open item (project.completed), after the project row's
# lock on PostgreSQL; the trainer's billable week (as the assignment is flushed submitted); the
# trainer's sitting (``session_progress``); last, the project's progress counter (one shard row). SQLite adds its BEGIN IMMEDIATE.
SUBMIT_STATEMENTS = {"postgresql": 12, "sqlite": 12}


def test_a_submit_stays_within_its_statement_budget(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    seen = statements(session, lambda: queue.submit(session, a.id, trainer.id, {"label": "yes"}))
    dialect = session.get_bind().dialect.name
    assert len(seen) <= SUBMIT_STATEMENTS[dialect], "\n".join(seen)
    annotation = session.scalar(select(Annotation))
    assert annotation.answers == {"label": "yes"} and annotation.review_reason is None


def _writes(seen: list[str]) -> list[str]:
    """The tables the statements wrote, in order (UPDATE, INSERT and DELETE only)."""
    out = []
    for statement in seen:
        words = statement.split()
        if words[0].upper() == "UPDATE":
            out.append(words[1])
        elif words[0].upper() in ("INSERT", "DELETE"):
            out.append(words[2])
    return out


def test_time_counted_by_a_beat_or_a_submit_writes_the_assignment_once(session):
    """The trainer's clock moves in a statement of its own; the assignment's new time, heartbeat mark
    and lease (or status) go in one UPDATE, not one flushed early for the clock and another at commit."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    start = utcnow()
    queue.record_heartbeat(session, a.id, trainer.id, now=start, resume=True)

    beat = statements(session, lambda: queue.record_heartbeat(session, a.id, trainer.id,
                                                               now=start + timedelta(seconds=10)))
    assert _writes(beat) == ["users", "assignments"], "\n".join(beat)
    submit = statements(session, lambda: queue.submit(session, a.id, trainer.id, {"label": "yes"},
                                                       now=start + timedelta(seconds=25)))
    assert _writes(submit).count("assignments") == 1 and _writes(submit).count("users") == 1, "\n".join(submit)
    session.expire_all()
    done = session.get(type(a), a.id)
    assert done.status == "submitted" and done.active_seconds == 25
    assert session.get(type(trainer), trainer.id).clock_at == start + timedelta(seconds=25)


def test_time_counted_by_a_skip_writes_the_assignment_once(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    start = utcnow()
    queue.record_heartbeat(session, a.id, trainer.id, now=start, resume=True)
    seen = statements(session, lambda: queue.skip(session, a.id, trainer.id, "unclear", now=start + timedelta(seconds=20)))
    assert _writes(seen).count("assignments") == 1 and _writes(seen).count("users") == 1, "\n".join(seen)
    session.expire_all()
    skipped = session.get(type(a), a.id)
    assert skipped.status == "skipped" and skipped.active_seconds == 20


def test_a_submit_leaves_the_database_s_counters_on_the_item_the_session_holds(session):
    """The counters the submit's hooks read on the item (``announce_completion``) are the row's after
    the UPDATE, even when another answer moved them since the item was loaded."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, overlap=3, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    item = session.get(Item, a.item_id)
    assert (item.done_count, item.active_count) == (0, 1)
    session.connection().execute(  # another trainer's answer, committed meanwhile, unseen by the loaded item
        update(Item.__table__).where(Item.__table__.c.id == item.id).values(done_count=1))
    session.commit()
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    assert (item.done_count, item.active_count, item.is_open) == (2, 0, True)
    session.expire_all()
    assert (item.done_count, item.active_count, item.is_open) == (2, 0, True)
