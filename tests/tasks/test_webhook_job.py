"""Webhook delivery as a background job: a commit that emitted an event queues it by itself; failures
come back through the queue after their backoff — in-process (a timer) and through RQ."""

from __future__ import annotations

from sqlalchemy import select

from app.db import begin_write, get_db
from app.models import Webhook, WebhookDelivery, utcnow
from app.services import webhooks
from tasks import WEBHOOK_QUEUE, get_queue
from tests.conftest import build_app, get_db_engine
from tests.factories import make_label_project
from tests.receiver import Receiver, drain


def _world(app, url):
    with app.app_context():
        session = get_db().session_factory()
    project = make_label_project(session, items=1)
    hook = Webhook(project_id=project.id, url=url, secret=webhooks.new_secret(), events=["export.completed"])
    session.add(hook)
    session.commit()
    return session, project, hook


def _deliveries(session):
    session.rollback()
    return session.scalars(select(WebhookDelivery).execution_options(populate_existing=True)).all()


def test_a_failing_receiver_gets_the_event_on_the_third_attempt_through_the_job_queue(database_url, tmp_path):
    from app.models import Base

    app = build_app(database_url, tmp_path, WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_DELAYS=(0.05, 0))
    engine = get_db_engine(app)
    Base.metadata.create_all(engine)
    receiver = Receiver((500, 502, 200))
    try:
        session, project, hook = _world(app, receiver.url)
        webhooks.emit(session, project.id, "export.completed", {"export_id": 1})
        session.commit()  # nobody enqueues anything: the commit does
        requests = receiver.wait_for(3)  # the second attempt after a 50 ms timer, the third at once
        drain(app)
        [row] = _deliveries(session)
        assert (row.status, row.attempts, row.response_code, row.error) == ("delivered", 3, 200, None)
        assert [webhooks.verify(hook.secret, r.headers["Groundwork-Signature"], r.body) for r in requests] == [True] * 3
        session.close()
    finally:
        receiver.close()
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_a_delivery_that_runs_out_of_attempts_fails_and_a_sweep_sends_an_overdue_one(app, session):
    from tasks.jobs import deliver_webhooks

    receiver = Receiver((404,))
    try:
        project = make_label_project(session, items=1)
        session.add(Webhook(project_id=project.id, url=receiver.url, secret="whsec_x", events=["export.completed"]))
        session.commit()
        webhooks.emit(session, project.id, "export.completed", {"export_id": 1})
        session.commit()
        receiver.wait_for(1)
        drain(app)
        [row] = _deliveries(session)
        assert (row.status, row.attempts, row.response_code, row.error) == ("failed", 1, 404, "HTTP 404")

        # a delivery whose dispatch was lost (the process died after the commit) is swept up later
        lost = WebhookDelivery(webhook_id=row.webhook_id, event="export.completed", event_id="evt_lost",
                               payload={"id": "evt_lost"}, status="pending",
                               created_at=utcnow() - webhooks.OVERDUE_AFTER * 2)
        session.add(lost)
        session.commit()
        with app.app_context():
            assert deliver_webhooks([], sweep=True) == {str(lost.id): "failed"}
        assert len(receiver.wait_for(2)) == 2
    finally:
        receiver.close()


def test_delivery_runs_through_redis_and_an_rq_worker(redis_app, rq_worker):
    redis_app.config.update(WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_DELAYS=(0,))
    receiver = Receiver((503, 200))
    try:
        session, project, hook = _world(redis_app, receiver.url)
        webhooks.emit(session, project.id, "export.completed", {"export_id": 1})
        session.commit()
        with redis_app.app_context():  # queued by the commit on the deliveries' own queue, waiting for a worker
            assert get_queue(redis_app, WEBHOOK_QUEUE).count == 1 and get_queue(redis_app).count == 0
        assert receiver.requests == []
        rq_worker(redis_app)  # the first attempt fails; its retry is queued and run in the same burst
        requests = receiver.wait_for(2)
        [row] = _deliveries(session)
        assert (row.status, row.attempts, row.response_code) == ("delivered", 2, 200)
        assert webhooks.verify(hook.secret, requests[1].headers["Groundwork-Signature"], requests[1].body)

        # with a real backoff the retry waits in RQ's scheduled registry for the worker's scheduler
        redis_app.config.update(WEBHOOK_RETRY_DELAYS=(600,))
        receiver.statuses = [500]
        webhooks.emit(session, project.id, "export.completed", {"export_id": 2})
        session.commit()
        rq_worker(redis_app)
        with redis_app.app_context():
            assert get_queue(redis_app, WEBHOOK_QUEUE).scheduled_job_registry.count == 1
        pending = [r for r in _deliveries(session) if r.status == "pending"]
        assert [(r.attempts, r.response_code) for r in pending] == [(1, 500)]
        assert pending[0].next_attempt_at > utcnow()
        session.close()
    finally:
        receiver.close()


def test_a_receiver_that_never_answers_holds_up_no_other_job(database_url, tmp_path):
    """In-process, deliveries have threads of their own: with every delivery thread stuck on a
    receiver that does not answer, a job of the default queue (an export, an import) still runs."""
    import threading

    from app.models import Base
    from tasks import enqueue

    app = build_app(database_url, tmp_path, WEBHOOK_TIMEOUT=20)
    Base.metadata.create_all(get_db_engine(app))
    hold = threading.Event()
    receiver = Receiver((200,), hold=hold)
    try:
        session, project, _hook = _world(app, receiver.url)
        for n in range(4):  # more deliveries than delivery threads
            begin_write(session)  # the write lock first, as the services take it: delivery threads write too
            webhooks.emit(session, project.id, "export.completed", {"export_id": n})
            session.commit()
        receiver.wait_for(2)  # both delivery threads are now waiting on the receiver
        with app.test_request_context():
            handle = enqueue(sum, [1, 2, 3])
        handle.wait(timeout=5)
        assert handle.status == "finished" and handle.result == 6
        assert len(receiver.requests) == 2  # the other deliveries still wait for a delivery thread
    finally:
        hold.set()
        drain(app)
        receiver.close()
