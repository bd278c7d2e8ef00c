"""The load test's check: a short real load passes it, and planted faults (a lost submit, time counted
twice, an item past its overlap, pay that differs from the counted time) are caught."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import get_db
from app.models import Annotation, Assignment, Item, Project, User, utcnow
from app.services import assignment as queue
from bench.load import check as load_check
from bench.load.seed import seed


def _acks(path, rows) -> str:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)


@pytest.fixture
def worked(app, database_url, tmp_path):
    """Three trainers' real work through the services, and the acknowledgements a client would have
    recorded for it: each claims, beats twice 10 s apart, then submits (the third skips)."""
    plan = seed(database_url, trainers=3, reviewers=1, items=5, overlap=2, migrate=False)
    acks = []
    start = utcnow()
    with app.app_context():
        session = get_db().session_factory()
        project = session.scalar(select(Project).where(Project.slug == plan["slug"]))
        for n, email in enumerate(plan["trainers"]):
            trainer = session.scalar(select(User.id).where(User.email == email))
            assignment = queue.next_task(session, trainer, project, now=start)
            queue.record_heartbeat(session, assignment.id, trainer, now=start, resume=True)
            for k in (1, 2):
                queue.record_heartbeat(session, assignment.id, trainer, now=start + timedelta(seconds=10 * k))
                acks.append({"kind": "beat", "email": email, "assignment": assignment.id,
                             "at": (start + timedelta(seconds=10 * k)).timestamp()})
            at = start + timedelta(seconds=25)
            if n == 2:
                queue.skip(session, assignment.id, trainer, "outside my expertise", now=at)
                acks.append({"kind": "skip", "email": email, "assignment": assignment.id, "at": at.timestamp()})
            else:
                queue.submit(session, assignment.id, trainer, {"label": "good", "score": 4}, now=at)
                acks.append({"kind": "submit", "email": email, "assignment": assignment.id, "at": at.timestamp()})
        session.close()
    return _acks(tmp_path / "acks.jsonl", acks), acks


def test_real_work_passes(worked, database_url):
    path, acks = worked
    problems, summary = load_check.check(database_url, path)
    assert problems == []
    assert summary["acknowledged submits"] == 2 == summary["answers stored"]
    assert summary["seconds counted"] == 3 * 25 == summary["seconds paid"]  # 10 + 10 + 5 each


def _change(app, statement) -> None:
    with app.app_context():
        session = get_db().session_factory()
        session.execute(statement)
        session.commit()
        session.close()


def _first_submitted(acks) -> int:
    return next(a["assignment"] for a in acks if a["kind"] == "submit")


def test_a_lost_submit_is_caught(app, worked, database_url):
    path, acks = worked
    with app.app_context():
        session = get_db().session_factory()
        session.delete(session.scalar(select(Annotation).where(Annotation.assignment_id == _first_submitted(acks))))
        session.commit()
        session.close()
    problems, _ = load_check.check(database_url, path)
    assert any("is stored 0 times" in p for p in problems), problems


def test_time_counted_twice_is_caught(app, worked, database_url):
    path, acks = worked
    # The same seconds paid again: as if a second tab's beats had counted them too.
    assignment_id = _first_submitted(acks)
    _change(app, update(Assignment).where(Assignment.id == assignment_id)
            .values(active_seconds=Assignment.active_seconds + 25))
    _change(app, update(Annotation).where(Annotation.assignment_id == assignment_id)
            .values(active_seconds=Annotation.active_seconds + 25))
    problems, _ = load_check.check(database_url, path)
    assert any("counted in a span" in p for p in problems), problems


def test_pay_that_differs_from_counted_time_is_caught(app, worked, database_url):
    path, acks = worked
    _change(app, update(Annotation).where(Annotation.assignment_id == _first_submitted(acks))
            .values(active_seconds=1))
    problems, _ = load_check.check(database_url, path)
    assert any("its answer carries 1 s" in p for p in problems), problems


def test_an_item_past_its_overlap_is_caught(app, worked, database_url):
    path, _ = worked
    _change(app, update(Item).where(Item.done_count > 0).values(done_count=Item.done_count + 2))
    problems, _ = load_check.check(database_url, path)
    assert any("> overlap 2" in p for p in problems), problems
    assert any("counters say" in p for p in problems), problems


@pytest.mark.slow
def test_a_short_load_keeps_every_acknowledged_submit(tmp_path):
    """15 trainers for 12 s against a live server on SQLite (``groundwork run``), thinking half a
    second to a second and beating every quarter second, then the check."""
    from bench.load.run import run_load
    from bench.load.server import serve

    url = f"sqlite:///{tmp_path / 'load.sqlite3'}"
    plan = seed(url, trainers=15, reviewers=1, items=300, overlap=2, instance_path=str(tmp_path))
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    with serve("sqlite", url, str(tmp_path)) as (base_url, _):
        rows, acks = run_load(base_url, str(tmp_path), str(plan_path), users=15, seconds=12, spawn_rate=15,
                              think=(0.5, 1.0), beat=0.25, reviewers=1)
    assert sum(r.failures for r in rows) == 0, rows
    problems, summary = load_check.check(url, acks)
    assert problems == []
    assert summary["acknowledged submits"] > 0
    assert summary["heartbeats acknowledged"] > 0
