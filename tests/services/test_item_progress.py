"""A project's progress counters, kept on the write path, always equal a recount from its items."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import case, func, select, update

from app.db import get_db
from app.models import Annotation, Item, ItemProgress, Project, ProjectMember, utcnow
from app.services import assignment as queue
from app.services import importing
from app.services import projects as project_service
from app.services.maintenance import recount_item_counters
from tests.factories import make_assessment, make_label_project, make_user


def from_items(session, project) -> dict:
    """The progress figures counted from every item, as the pages computed them before the counters."""
    mine = Item.is_gold.is_(project.kind == "qualification")
    total, complete, not_started, done = (int(v or 0) for v in session.execute(
        select(func.count(Item.id),
               func.sum(case((Item.done_count >= project.overlap, 1), else_=0)),
               func.sum(case(((Item.done_count == 0) & (Item.active_count == 0), 1), else_=0)),
               func.sum(Item.done_count)).where(Item.project_id == project.id, mine)).one())
    gold = session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id, Item.is_gold.is_(True)))
    return {"total": total, "complete": complete, "not_started": not_started,
            "in_progress": total - complete - not_started, "gold": gold if project.kind == "work" else 0,
            "annotations_needed": max(total * project.overlap - done, 0) if project.kind == "work" else 0}


def assert_counters_right(session, project) -> dict:
    session.rollback()  # a fresh snapshot, nothing pending
    counted = project_service.progress(session, project)
    assert counted == from_items(session, project)
    return counted


def jsonl(*records) -> io.BytesIO:
    return io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_a_mixed_day_of_work_keeps_the_counters_equal_to_a_recount(session):
    trainers = [make_user(session, "trainer") for _ in range(4)]
    project = make_label_project(session, items=6, overlap=2, trainers=trainers)
    assert assert_counters_right(session, project)["not_started"] == 6
    now = utcnow()
    # Gold added and flagged through the ORM, as the demo does.
    gold = project_service.add_item(session, project, prompt="Gold one", responses=["r"], external_id="gold-1")
    gold.is_gold, gold.gold_answers = True, {"label": "yes"}
    session.commit()
    assert assert_counters_right(session, project)["gold"] == 1
    # Claims, submits, a skip.
    a, b, c, d = trainers
    for trainer in (a, b):
        task = queue.next_task(session, trainer.id, project, now=now)
        queue.submit(session, task.id, trainer.id, {"label": "yes"}, now=now)
    task = queue.next_task(session, c.id, project, now=now)
    queue.skip(session, task.id, c.id, "not sure", now=now)
    assert_counters_right(session, project)
    # A lease that lapses is reclaimed by someone else's claim; a late submit then finds no room or some.
    lapsed = queue.next_task(session, d.id, project, now=now)
    later = now + timedelta(minutes=project.lease_minutes + 1)
    queue._last_reclaim.clear()
    queue.next_task(session, c.id, project, now=later)
    assert_counters_right(session, project)
    try:
        queue.submit(session, lapsed.id, d.id, {"label": "no"}, now=later)
    except Exception:  # noqa: BLE001 - a late submit may lose its slot; the counters must hold either way
        session.rollback()
    assert_counters_right(session, project)
    # A heartbeat that renews a lapsed lease, and a paused member whose lease goes back.
    held = queue.next_task(session, a.id, project, now=later)
    member = session.scalar(select(ProjectMember).where(ProjectMember.project_id == project.id,
                                                        ProjectMember.user_id == a.id))
    project_service.set_member_status(session, member, "paused")
    assert held is not None
    assert_counters_right(session, project)
    # Items imported (one gold), then one flipped to gold by a re-import, then an import undone.
    report = importing.import_file(session, project, jsonl(
        {"external_id": "new-1", "prompt": "New one", "responses": ["x"]},
        {"external_id": "new-2", "prompt": "New two", "responses": ["y"]},
        {"external_id": "new-3", "prompt": "New three", "responses": ["z"], "gold": {"label": "no"}},
    ), "jsonl")
    assert report.inserted == 3
    assert assert_counters_right(session, project)["gold"] == 2
    report = importing.import_file(session, project, jsonl(
        {"external_id": "new-1", "prompt": "New one", "responses": ["x"], "gold": {"label": "yes"}},
        {"external_id": "new-3", "prompt": "New three", "responses": ["z"]},
    ), "jsonl", update_existing=True)
    assert report.updated == 2
    assert assert_counters_right(session, project)["gold"] == 2
    session.execute(update(Item).where(Item.external_id == "new-2").values(import_id=4242))
    session.commit()
    assert importing.undo_import(session, 4242) == 1
    assert assert_counters_right(session, project)["total"] == 6 + 2 - 1
    # The overlap changes: "complete" is measured against the new one.
    before = assert_counters_right(session, project)
    project_service.update_project(session, project, name=project.name, overlap=1)
    after = assert_counters_right(session, project)
    assert after["complete"] > before["complete"]
    # More work on the new overlap, then an item deleted through the ORM.
    task = queue.next_task(session, b.id, project, now=later)
    queue.submit(session, task.id, b.id, {"label": "no"}, now=later)
    assert_counters_right(session, project)
    spare = session.scalar(select(Item).where(Item.project_id == project.id, Item.done_count == 0,
                                              Item.active_count == 0).limit(1))
    session.delete(spare)
    session.commit()
    assert_counters_right(session, project)


def test_an_assessment_counts_its_gold_items(session):
    project = session.get(Project, make_assessment(session, items=5).project_id)
    assert assert_counters_right(session, project)["total"] == 5


def test_a_rolled_back_change_moves_no_counter(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=3, trainers=[trainer])
    task = queue.next_task(session, trainer.id, project)
    queue._move_counters(session, task.item_id, project.overlap, done=1, active=-1)
    session.rollback()
    assert assert_counters_right(session, project)["in_progress"] == 1


def test_a_drifted_counter_is_repaired_by_the_recount(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=4, overlap=1, trainers=[trainer])
    task = queue.next_task(session, trainer.id, project)
    queue.submit(session, task.id, trainer.id, {"label": "yes"})
    right = assert_counters_right(session, project)
    session.execute(update(ItemProgress).where(ItemProgress.project_id == project.id)
                    .values(items=99, complete=-3, not_started=7, done=12))
    session.commit()
    assert project_service.progress(session, project) != right
    recount_item_counters(session, project.id)
    assert assert_counters_right(session, project) == right


def test_the_projects_list_counts_items_and_annotations_from_the_counters(session):
    trainers = [make_user(session, "trainer") for _ in range(2)]
    project = make_label_project(session, items=3, overlap=2, trainers=trainers)
    empty = make_label_project(session, items=0)
    for trainer in trainers:
        task = queue.next_task(session, trainer.id, project)
        queue.submit(session, task.id, trainer.id, {"label": "yes"})
    summaries = {s.slug: s for s in project_service.project_summaries(session)}
    assert summaries[project.slug].items == session.scalar(
        select(func.count(Item.id)).where(Item.project_id == project.id)) == 3
    assert summaries[project.slug].annotations == session.scalar(
        select(func.count(Annotation.id)).where(Annotation.project_id == project.id)) == 2
    assert (summaries[empty.slug].items, summaries[empty.slug].annotations) == (0, 0)


@pytest.mark.slow  # threads racing by design
def test_recounts_racing_submits_leave_the_counters_right(app, session):
    """Trainers submit while the counters are recounted again and again: neither loses the other's work."""
    trainers = [make_user(session, "trainer") for _ in range(6)]
    project = make_label_project(session, items=60, overlap=2, trainers=trainers)
    with app.app_context():
        factory = get_db().session_factory
    failures = []
    recounting = threading.Event()
    recounting.set()

    def work(trainer_id):
        own = factory()
        try:
            # A recount holds every item of the project while it runs, so a claim meanwhile finds the
            # queue empty: only an empty queue after the recounts ended means the work is done.
            while (task := queue.next_task(own, trainer_id, project)) is not None or recounting.is_set():
                if task is not None:
                    queue.submit(own, task.id, trainer_id, {"label": "yes"})
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"trainer {trainer_id}: {exc!r}")
        finally:
            own.close()

    def recount():
        own = factory()
        try:
            for _ in range(10):
                recount_item_counters(own, project.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"recount: {exc!r}")
        finally:
            recounting.clear()
            own.close()

    threads = [threading.Thread(target=work, args=(t.id,)) for t in trainers] + [threading.Thread(target=recount)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == []
    assert assert_counters_right(session, project)["complete"] == 60
