"""The enqueue adapter runs a real job in-process without Redis, and through RQ with it."""

from sqlalchemy import select, update

from app.db import get_db
from app.models import Item
from tasks import enqueue
from tasks.jobs import recount_items
from tests.factories import make_label_project, make_user


def _project_with_wrong_counters(app):
    with app.app_context():
        session = get_db().session_factory()
        trainer = make_user(session, "trainer")
        project = make_label_project(session, items=4, trainers=[trainer])
        session.execute(update(Item).where(Item.project_id == project.id).values(done_count=7, active_count=3))
        session.commit()
        session.close()
        return project.id


def _counters(app, project_id):
    with app.app_context():
        session = get_db().session_factory()
        rows = session.execute(select(Item.done_count, Item.active_count).where(Item.project_id == project_id)).all()
        session.close()
        return rows


def test_job_runs_in_process_without_redis(app):
    project_id = _project_with_wrong_counters(app)
    with app.app_context():
        handle = enqueue(recount_items, project_id).wait(timeout=30)
    assert handle.backend == "inline" and handle.status == "finished"
    assert handle.result == {"project_id": project_id, "items_corrected": 4}
    assert _counters(app, project_id) == [(0, 0)] * 4


def test_job_runs_through_redis_and_an_rq_worker(redis_app, rq_worker):
    project_id = _project_with_wrong_counters(redis_app)
    with redis_app.app_context():
        handle = enqueue(recount_items, project_id)
    assert handle.backend == "rq" and handle.status == "queued"
    assert _counters(redis_app, project_id) == [(7, 3)] * 4  # nothing ran yet: it waits for a worker
    rq_worker(redis_app)
    handle.refresh()
    assert handle.status == "finished"
    assert handle.result == {"project_id": project_id, "items_corrected": 4}
    assert _counters(redis_app, project_id) == [(0, 0)] * 4


def test_a_failing_inline_job_reports_failure_on_its_handle(app):
    with app.app_context():
        handle = enqueue(recount_items, 987654).wait(timeout=30)
    assert handle.status == "failed" and handle.error == "no project with id 987654"
