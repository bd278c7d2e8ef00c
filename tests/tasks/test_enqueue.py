"""The enqueue adapter runs a real job in-process without Redis, and through RQ with it."""

import threading
import time

import pytest
from sqlalchemy import select, update

from app.db import get_db
from app.models import Item
from tasks import enqueue, get_queue
from tasks.jobs import compute_stats, recount_items
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


# --- keyed jobs: queued once, whoever asks and whenever ------------------------------------------------


def _finished_stats_job(app, rq_worker) -> int:
    """A project whose statistics job (a keyed job) has run and finished; returns the project's id."""
    project_id = _project_with_wrong_counters(app)
    with app.app_context():
        handle = enqueue(compute_stats, project_id)
    rq_worker(app)
    assert handle.refresh().status == "finished"
    return project_id


def test_a_keyed_job_whose_record_vanishes_as_it_is_asked_for_again_is_queued(redis_app, rq_worker, monkeypatch):
    """Between finding the finished job and removing it, its record goes (another process removed it,
    or its kept result expired): it is queued again, not an error for the request that asked."""
    from rq.job import Job

    project_id = _finished_stats_job(redis_app, rq_worker)
    fetch = Job.fetch.__func__

    def fetch_then_vanish(cls, job_id, *args, **kwargs):
        job = fetch(cls, job_id, *args, **kwargs)
        job.connection.delete(job.key)  # what the other process does meanwhile
        return job

    monkeypatch.setattr(Job, "fetch", classmethod(fetch_then_vanish))
    with redis_app.app_context():
        handle = enqueue(compute_stats, project_id)
        assert handle.status == "queued" and handle.rq_job is not None
        assert get_queue(redis_app).count == 1
    monkeypatch.undo()
    rq_worker(redis_app)
    assert handle.refresh().status == "finished"


def test_processes_asking_for_a_keyed_job_at_once_queue_it_once(redis_app, rq_worker, monkeypatch):
    """Eight processes find the finished job at the same moment (each look-up is slowed, so they all
    overlap): one removes it and queues it again, the others find it queued."""
    import tasks

    project_id = _finished_stats_job(redis_app, rq_worker)
    fetch = tasks._fetch_job

    def slow_fetch(job_id, connection):
        job = fetch(job_id, connection)
        time.sleep(0.05)  # the other processes look meanwhile
        return job

    monkeypatch.setattr(tasks, "_fetch_job", slow_fetch)
    asking = 8
    start, handles, errors = threading.Barrier(asking), [], []

    def ask():
        try:
            with redis_app.app_context():
                start.wait(timeout=10)
                handles.append(enqueue(compute_stats, project_id))
        except Exception as exc:  # noqa: BLE001 - collected and shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(asking)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert [h.status for h in handles] == ["queued"] * asking
    with redis_app.app_context():
        assert get_queue(redis_app).count == 1


def test_a_job_redis_refuses_is_delayed_not_raised(redis_app, monkeypatch, caplog):
    """The caller's work is committed before the hand-over: Redis refusing the job (out of memory, a
    read-only replica) is logged and the handle says "delayed" with the reason, never raised into the
    request (which would report stored work as failed). A bug in the call itself still raises."""
    from redis.exceptions import ResponseError
    from rq.queue import Queue

    project_id = _project_with_wrong_counters(redis_app)

    def refuse(self, *args, **kwargs):
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(Queue, "enqueue", refuse)
    with redis_app.app_context(), caplog.at_level("ERROR"):
        for job in (recount_items, compute_stats):
            handle = enqueue(job, project_id)
            assert handle.status == "delayed" and handle.error == "the job queue refused it (the server's log says why)"
    assert f"could not queue job recount_items({project_id},): OOM command not allowed" in caplog.text

    def broken(self, *args, **kwargs):
        raise TypeError("enqueue() got an unexpected keyword argument")

    monkeypatch.setattr(Queue, "enqueue", broken)
    with redis_app.app_context(), pytest.raises(TypeError):
        enqueue(recount_items, project_id)
