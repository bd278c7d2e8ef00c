"""Two trainers racing never push an item past its overlap, on SQLite and PostgreSQL."""

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.db import get_db
from app.models import Annotation, Assignment, Item
from app.services import assignment as queue
from app.services import projects as project_service
from tests.factories import make_label_project, make_user

CLAIMERS = 16
ITEMS = 200
OVERLAP = 3


@pytest.mark.slow  # seconds of work by design
def test_sixteen_concurrent_claimers_fill_every_item_exactly_to_its_overlap(app, session):
    trainers = [make_user(session, "trainer") for _ in range(CLAIMERS)]
    project = make_label_project(session, items=ITEMS, overlap=OVERLAP, trainers=trainers)
    with app.app_context():
        factory = get_db().session_factory
    over_overlap = []
    failures = []
    start = threading.Barrier(CLAIMERS)

    def work(trainer_id):
        own = factory()
        try:
            start.wait()
            while True:
                assignment = queue.next_task(own, trainer_id, project)
                if assignment is None:
                    return
                # Right after a claim, nobody may hold more than the overlap on that item.
                held = own.scalar(
                    select(func.count(Assignment.id)).where(
                        Assignment.item_id == assignment.item_id, Assignment.status.in_(("active", "submitted"))
                    )
                )
                if held > OVERLAP:
                    over_overlap.append((assignment.item_id, held))
                queue.submit(own, assignment.id, trainer_id, {"label": "yes"})
        except Exception as exc:  # noqa: BLE001 - reported below with the trainer
            failures.append((trainer_id, repr(exc)))
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(t.id,)) for t in trainers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == []
    assert over_overlap == []

    per_item = Counter(session.scalars(select(Annotation.item_id)))
    assert len(per_item) == ITEMS and set(per_item.values()) == {OVERLAP}
    pairs = session.execute(select(Annotation.item_id, Annotation.trainer_id)).all()
    assert len(pairs) == len(set(pairs)) == ITEMS * OVERLAP
    counters = set(session.execute(select(Item.done_count, Item.active_count)).all())
    assert counters == {(OVERLAP, 0)}
    # The work was really shared between racing claimers, not done by one thread after another.
    assert len({trainer for _, trainer in pairs}) >= CLAIMERS // 2
    # The project's sharded progress counters took every racing move: all items complete.
    session.rollback()
    assert project_service.progress(session, project)["complete"] == ITEMS
    assert project_service.progress(session, project)["not_started"] == 0
