from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, ValidationError
from app.models import Annotation, Assignment, Item, utcnow
from app.services import assignment as queue
from tests.factories import make_label_project, make_user


def test_claim_returns_the_same_task_on_reload(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    first = queue.next_task(session, trainer.id, project)
    again = queue.next_task(session, trainer.id, project)
    assert first is not None and again.id == first.id
    assert session.scalar(select(func.count(Assignment.id))) == 1


def test_items_are_handed_out_by_priority_then_age(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    items = list(session.scalars(select(Item).order_by(Item.id)))
    items[2].priority = 5
    session.commit()
    order = []
    for _ in range(3):
        a = queue.next_task(session, trainer.id, project)
        order.append(a.item.external_id)
        queue.submit(session, a.id, trainer.id, {"label": "yes"})
    assert order == ["it-3", "it-1", "it-2"]


def test_overlap_is_respected_and_nobody_sees_an_item_twice(session):
    trainers = [make_user(session, "trainer") for _ in range(3)]
    project = make_label_project(session, items=2, overlap=2, trainers=trainers)
    seen = {t.id: [] for t in trainers}
    for _ in range(3):
        for t in trainers:
            a = queue.next_task(session, t.id, project)
            if a is None:
                continue
            seen[t.id].append(a.item_id)
            queue.submit(session, a.id, t.id, {"label": "no"})
    for items in seen.values():
        assert len(items) == len(set(items))
    counts = session.execute(select(Item.done_count, Item.active_count)).all()
    assert sorted(counts) == [(2, 0), (2, 0)]
    assert session.scalar(select(func.count(Annotation.id))) == 4


def test_submit_is_idempotent_and_says_so_when_the_answers_differ(session):
    """A double click or a retry (the same answers, or none that are valid) gets the first answer; a
    client sending other answers is told the first ones stand, not that it saved."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    first = queue.submit(session, a.id, trainer.id, {"label": "yes"})
    again = queue.submit(session, a.id, trainer.id, {"label": "yes"})
    broken = queue.submit(session, a.id, trainer.id, {"label": "maybe"})
    assert again.id == broken.id == first.id and again.answers == {"label": "yes"}
    with pytest.raises(Conflict, match="first answers stand"):
        queue.submit(session, a.id, trainer.id, {"label": "no"})
    assert session.scalar(select(func.count(Annotation.id))) == 1
    assert session.get(Annotation, first.id).answers == {"label": "yes"}
    assert session.get(Item, a.item_id).done_count == 1


def test_invalid_answer_stores_nothing(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    with pytest.raises(ValidationError) as err:
        queue.submit(session, a.id, trainer.id, {"label": "maybe"})
    assert "label" in err.value.errors
    with pytest.raises(ValidationError):
        queue.submit(session, a.id, trainer.id, {"label": "yes", "typo": "x"})
    assert session.scalar(select(func.count(Annotation.id))) == 0
    assert session.get(Assignment, a.id).status == "active"


def test_expired_lease_frees_the_slot_and_a_late_submit_never_takes_it_back(session):
    slow, other = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=1, overlap=1, trainers=[slow, other], lease_minutes=10)
    start = utcnow() - timedelta(minutes=30)
    lapsed = queue.next_task(session, slow.id, project, now=start)
    assert queue.next_task(session, other.id, project, now=start + timedelta(minutes=5)) is None
    taken = queue.next_task(session, other.id, project, now=start + timedelta(minutes=11))
    assert taken is not None and taken.item_id == lapsed.item_id
    assert session.get(Assignment, lapsed.id).status == "expired"
    with pytest.raises(Conflict):  # the slot is someone else's now: the overlap is never exceeded
        queue.submit(session, lapsed.id, slow.id, {"label": "yes"})
    session.expire_all()
    item = session.get(Item, lapsed.item_id)
    assert (item.done_count, item.active_count) == (0, 1)


def test_skip_frees_the_slot_and_needs_a_reason(session):
    first, second = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=1, overlap=1, trainers=[first, second])
    a = queue.next_task(session, first.id, project)
    with pytest.raises(ValidationError):
        queue.skip(session, a.id, first.id, "  ")
    queue.skip(session, a.id, first.id, "outside my expertise")
    assert queue.next_task(session, first.id, project) is None  # never the same item twice
    b = queue.next_task(session, second.id, project)
    assert b is not None and b.item_id == a.item_id
    with pytest.raises(Conflict):
        queue.submit(session, a.id, first.id, {"label": "yes"})


def test_paused_project_hands_out_nothing(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer], status="paused")
    assert queue.next_task(session, trainer.id, project) is None


def test_gold_items_are_mixed_in_at_the_gold_rate_and_ignore_overlap(session):
    import random

    trainers = [make_user(session, "trainer") for _ in range(2)]
    project = make_label_project(session, items=40, overlap=1, trainers=trainers)
    golds = list(session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(4)))
    for item in golds:
        item.is_gold, item.gold_answers = True, {"label": "yes"}
    project.gold_rate = 0.25
    session.commit()
    rng = random.Random(3)
    served = {t.id: [] for t in trainers}
    for t in trainers:
        for _ in range(12):
            a = queue.next_task(session, t.id, project, rng=rng)
            served[t.id].append(a.item.is_gold)
            annotation = queue.submit(session, a.id, t.id, {"label": "yes" if a.item.is_gold else "no"})
            assert annotation.gold_score == (1.0 if a.item.is_gold else None)
    # both trainers met gold items, including the same ones (gold is shown to everyone)
    assert all(any(flags) for flags in served.values())
    assert all(not all(flags) for flags in served.values())


def test_done_this_session_counts_back_to_the_last_long_pause(session):
    from datetime import timedelta

    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=6, trainers=[trainer])
    start = utcnow() - timedelta(hours=3)
    moments = [start, start + timedelta(minutes=5), start + timedelta(hours=2), start + timedelta(hours=2, minutes=10)]
    for when in moments:
        a = queue.next_task(session, trainer.id, project, now=when)
        queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=when)
    later = start + timedelta(hours=2, minutes=20)
    assert queue.session_progress(session, trainer.id, project.id, now=later) == 2
    assert queue.session_progress(session, trainer.id, project.id, now=later + timedelta(hours=1)) == 0



def gold_project(session, trainer, golds=4, items=10):
    project = make_label_project(session, items=items, trainers=[trainer])
    for item in session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(golds)):
        item.is_gold, item.gold_answers, item.priority = True, {"label": "yes"}, 10
    project.gold_rate = 1.0  # every claim a gold one while they last
    session.commit()
    return project


def test_failing_three_of_three_gold_pauses_the_trainer_until_reinstated(session):
    from app.models import AuditEvent, ProjectMember
    from app.services.projects import set_member_status

    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer)
    for _ in range(3):
        a = queue.next_task(session, trainer.id, project)
        assert a.item.is_gold
        queue.submit(session, a.id, trainer.id, {"label": "no"})
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id))
    assert member.status == "paused" and "gold accuracy 0% over the last 3" in member.flagged_reason
    with pytest.raises(queue.Paused, match="paused in this project"):
        queue.next_task(session, trainer.id, project)
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "member.auto_pause"))

    set_member_status(session, member, "active", actor_id=None)
    session.commit()
    assert member.flagged_reason is None
    a = queue.next_task(session, trainer.id, project)
    assert a is not None  # reinstated: work again, and the old failures no longer count
    queue.submit(session, a.id, trainer.id, {"label": "no"})
    session.refresh(member)
    assert member.status == "active"


def test_passing_gold_keeps_the_trainer_working_and_failed_gold_goes_to_review(session):
    from app.models import Annotation

    trainer = make_user(session, "trainer")
    project = gold_project(session, trainer)
    answers = ["yes", "no", "yes", "yes"]  # 75 % correct
    for answer in answers:
        a = queue.next_task(session, trainer.id, project)
        queue.submit(session, a.id, trainer.id, {"label": answer})
    assert queue.next_task(session, trainer.id, project) is not None
    reasons = [r for r in session.scalars(select(Annotation.review_reason).order_by(Annotation.id))]
    assert reasons[:4] == [None, "failed_gold", None, None]


def test_a_sitting_goes_on_across_pauses_up_to_the_gap_and_no_further(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=6, trainers=[trainer])
    start = utcnow() - timedelta(hours=5)
    gap = queue.SITTING_GAP
    # a pause of exactly the gap goes on; one second more starts a new sitting
    moments = [start, start + gap, start + 2 * gap + timedelta(seconds=1), start + 2 * gap + timedelta(minutes=1)]
    for when in moments:
        a = queue.next_task(session, trainer.id, project, now=when)
        queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=when)
        if when == start + gap:
            assert queue.session_progress(session, trainer.id, project.id, now=when) == 2
    last = moments[-1]
    assert queue.session_progress(session, trainer.id, project.id, now=last + gap) == 2
    assert queue.session_progress(session, trainer.id, project.id, now=last + gap + timedelta(seconds=1)) == 0
    # a submit stamped before the latest (seeding) counts toward the sitting and keeps the latest
    a = queue.next_task(session, trainer.id, project, now=last)
    queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=last - timedelta(minutes=5))
    assert queue.session_progress(session, trainer.id, project.id, now=last + gap) == 3


def test_the_sitting_is_stored_in_utc_whatever_the_connection_s_time_zone(session):
    """The submit's moment reaches the naive UTC column as itself, also where PostgreSQL's session time
    zone is not UTC (a bare datetime in an expression would be read as timestamptz and shifted)."""
    from sqlalchemy import event

    from app.models import ProjectMember

    engine = session.get_bind()
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    session.commit()

    def new_york(dbapi_connection, _record, _proxy):
        if engine.dialect.name == "postgresql":
            dbapi_connection.execute("SET TIME ZONE 'America/New_York'")

    session.close()
    engine.dispose()
    event.listen(engine, "checkout", new_york)
    try:
        when = utcnow().replace(microsecond=0) - timedelta(minutes=3)
        a = queue.next_task(session, trainer.id, project, now=when)
        queue.submit(session, a.id, trainer.id, {"label": "yes"}, now=when)
        if engine.dialect.name == "postgresql":
            assert session.execute(select(func.current_setting("TimeZone"))).scalar() == "America/New_York"
        stored = session.scalar(select(ProjectMember.last_submitted_at).where(ProjectMember.user_id == trainer.id))
        assert stored == when
        assert queue.session_progress(session, trainer.id, project.id) == 1
    finally:
        session.close()
        event.remove(engine, "checkout", new_york)
        engine.dispose()
