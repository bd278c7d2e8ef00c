"""Finding 4: at most one live lease per trainer and project, time counted only on the live lease,
and an item's overlap never exceeded — not by parallel claims, not by a late submit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import get_db
from app.errors import Conflict
from app.models import Annotation, Assignment, Item, utcnow
from app.services import assignment as queue
from tests.factories import make_label_project, make_user


def _lapse(session, assignment_id, minutes=5):
    a = session.get(Assignment, assignment_id)
    a.expires_at = utcnow() - timedelta(minutes=minutes)
    session.commit()
    return a


def test_heartbeat_on_a_lapsed_lease_adds_no_time(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    start = utcnow()
    held = queue.next_task(session, trainer.id, project, now=start)
    queue.record_heartbeat(session, held.id, trainer.id, now=start, resume=True)
    later = held.expires_at + timedelta(seconds=5)  # the lease lapsed five seconds ago
    a = queue.record_heartbeat(session, held.id, trainer.id, now=later)
    assert a.active_seconds == 0


def test_heartbeat_on_an_expired_lease_adds_no_time(session):
    trainer, other = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=1, trainers=[trainer, other])
    start = utcnow() - timedelta(hours=2)
    held = queue.next_task(session, trainer.id, project, now=start)
    queue.record_heartbeat(session, held.id, trainer.id, now=start, resume=True)
    taken = queue.next_task(session, other.id, project)  # reclaims the lapsed lease and takes its slot
    assert taken is not None and taken.item_id == held.item_id
    session.expire_all()
    assert session.get(Assignment, held.id).status == "expired"
    beat = utcnow()
    for n in range(3):
        a = queue.record_heartbeat(session, held.id, trainer.id, now=beat + timedelta(seconds=15 * n))
    assert a.active_seconds == 0 and a.status == "expired"


def test_a_lapsed_lease_whose_item_has_room_is_renewed_by_the_next_heartbeat(session):
    """Back at the desk after a long break: the task is still there, and the gap is not paid."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer])
    held = queue.next_task(session, trainer.id, project)
    queue.record_heartbeat(session, held.id, trainer.id, resume=True)
    _lapse(session, held.id)
    a = queue.record_heartbeat(session, held.id, trainer.id, resume=True)
    assert a.status == "active" and a.expires_at > utcnow() and a.active_seconds == 0


def test_late_submit_never_pushes_an_item_past_its_overlap(session):
    first, second = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=1, overlap=1, trainers=[first, second])
    late = queue.next_task(session, first.id, project)
    _lapse(session, late.id)
    taken = queue.next_task(session, second.id, project)
    queue.submit(session, taken.id, second.id, {"label": "yes"})
    with pytest.raises(Conflict):
        queue.submit(session, late.id, first.id, {"label": "no"})
    assert session.scalar(select(func.count(Annotation.id))) == 1
    session.expire_all()
    item = session.get(Item, late.item_id)
    assert (item.done_count, item.active_count) == (1, 0)


def test_late_submit_is_kept_while_the_item_still_has_room(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, overlap=2, trainers=[trainer])
    late = queue.next_task(session, trainer.id, project)
    _lapse(session, late.id)
    queue.next_task(session, trainer.id, project)  # reclaims the lapse; nothing else to claim
    annotation = queue.submit(session, late.id, trainer.id, {"label": "yes"})
    assert annotation.answers == {"label": "yes"}
    session.expire_all()
    item = session.get(Item, late.item_id)
    assert (item.done_count, item.active_count) == (1, 0)


def test_the_database_refuses_a_second_live_lease(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    held = queue.next_task(session, trainer.id, project)
    items = list(session.scalars(select(Item.id).where(Item.project_id == project.id, Item.id != held.item_id)))
    session.add(Assignment(item_id=items[0], project_id=project.id, trainer_id=trainer.id, status="active",
                           assigned_at=utcnow(), expires_at=utcnow() + timedelta(minutes=30)))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_parallel_page_loads_of_one_trainer_hold_one_lease(app, session):
    """Eight tabs opened at once (the PostgreSQL probe got seven billable leases)."""
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=20, overlap=1, trainers=[trainer])
    with app.app_context():
        factory = get_db().session_factory
    start = threading.Barrier(8)
    got, errors = [], []

    def claim():
        own = factory()
        try:
            start.wait()
            a = queue.next_task(own, trainer.id, project)
            got.append(a.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            own.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(set(got)) == 1
    live = session.scalar(select(func.count(Assignment.id)).where(Assignment.trainer_id == trainer.id))
    assert live == 1
    assert session.scalar(select(func.sum(Item.active_count)).where(Item.project_id == project.id)) == 1
