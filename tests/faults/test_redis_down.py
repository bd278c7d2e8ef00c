"""Redis stopped: work goes on (sign in, claim, heartbeat, submit), sign-in throttling still limits
(each process counts in memory meanwhile), a version asked for is remembered as queued, and once
Redis is back the first worker's sweep queues it and it is built."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import get_db
from app.models import Annotation, Base, DatasetExport
from tasks import enqueue, run_worker
from tasks.jobs import build_export
from tests.conftest import CSRF_RE, build_app, csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/tasks/(\d+)/submit)"')


@pytest.fixture
def down_app(database_url, tmp_path, private_redis):
    app = build_app(database_url, tmp_path, REDIS_URL=private_redis.url,
                    REDIS_PREFIX=f"gwfault:{uuid.uuid4().hex[:8]}:", LOGIN_MAX_FAILURES=3)
    with app.app_context():
        engine = get_db().engine
    Base.metadata.create_all(engine)
    yield app
    Base.metadata.drop_all(engine)
    engine.dispose()


def _work_one(client, slug: str) -> int:
    page = client.get(f"/work/{slug}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    url, assignment_id = SUBMIT_RE.search(text).groups()
    token = CSRF_RE.search(text).group(1)
    beat = client.post(f"/work/{slug}/tasks/{assignment_id}/heartbeat", data={"csrf_token": token},
                       headers={"HX-Request": "true"})
    assert beat.status_code == 200 and beat.get_json()["status"] == "active"
    done = client.post(url, data={"answer.label": "yes", "csrf_token": token}, headers={"HX-Request": "true"})
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    return int(assignment_id)


def test_with_redis_stopped_work_goes_on_and_a_version_waits_for_it(down_app, private_redis):
    app = down_app
    with app.app_context():
        session = get_db().session_factory()
        trainer = make_user(session, "trainer")
        admin = make_user(session, "admin")
        project = make_label_project(session, items=6, trainers=[trainer])
        slug, trainer_email, admin_email = project.slug, trainer.email, admin.email
        session.close()

    private_redis.stop()
    # Trainers sign in and work as usual.
    trainer_client = app.test_client()
    assert login(trainer_client, trainer_email, PASSWORD).status_code == 302
    submitted = [_work_one(trainer_client, slug) for _ in range(3)]

    # Sign-in throttling still holds: the fourth wrong password within the window is refused, politely.
    guesser = app.test_client()
    statuses = [login(guesser, trainer_email, "wrong password").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses
    refused = login(guesser, trainer_email, PASSWORD)
    assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()

    # An admin asks for a version: the page answers, the version is remembered as queued.
    admin_client = app.test_client()
    assert login(admin_client, admin_email, PASSWORD).status_code == 302
    exports = f"/admin/projects/{slug}/exports/"
    response = admin_client.post(exports, data={"csrf_token": csrf_token(admin_client, exports), "format": "raw"})
    assert response.status_code == 303
    assert admin_client.get(response.headers["Location"]).status_code == 200
    with app.app_context():
        session = get_db().session_factory()
        export = session.scalars(select(DatasetExport)).one()
        export_id = export.id
        assert export.status == "queued"
        # enqueue() says the job is delayed rather than failing its caller.
        with app.test_request_context():
            assert enqueue(build_export, export_id).status == "delayed"
        session.close()

    # Redis comes back empty (no persistence: the queue is lost). A minute passes; a worker starts.
    private_redis.start()
    with app.app_context():
        session = get_db().session_factory()
        created = session.get(DatasetExport, export_id).created_at
        session.execute(update(DatasetExport).values(created_at=created - timedelta(minutes=2)))
        session.commit()
        session.close()
    assert login(app.test_client(), trainer_email, PASSWORD).status_code == 302  # Redis counts again
    run_worker(app, burst=True, simple=True)
    with app.app_context():
        session = get_db().session_factory()
        export = session.get(DatasetExport, export_id)
        assert export.status == "done", export.error
        assert export.attempts == 1  # built once, not once per request to queue it
        stored = set(session.scalars(select(Annotation.assignment_id)))
        assert export.row_count == len(stored) == 3 and stored == set(submitted)
        session.close()


def test_a_waiting_version_is_queued_once_however_often_it_is_asked(down_app, private_redis):
    from rq import Queue

    from app.services.exporting import create_export
    from tasks import queue_name

    app = down_app
    with app.app_context():
        session = get_db().session_factory()
        project = make_label_project(session, items=2)
        export_id = create_export(session, project, {"format": "raw"}, None).id
        session.close()
        handles = [enqueue(build_export, export_id) for _ in range(3)]
        assert len({h.id for h in handles}) == 1 and handles[0].status == "queued"
        from tasks import redis_connection

        assert Queue(queue_name(app), connection=redis_connection(app)).count == 1


def test_statistics_asked_for_by_many_submits_are_queued_once(down_app):
    from rq import Queue

    from tasks import queue_name, redis_connection
    from tasks.jobs import compute_stats

    app = down_app
    with app.app_context():
        session = get_db().session_factory()
        project_id = make_label_project(session, items=1).id
        session.close()
        handles = [enqueue(compute_stats, project_id) for _ in range(5)]
        assert len({h.id for h in handles}) == 1
        assert Queue(queue_name(app), connection=redis_connection(app)).count == 1
    run_worker(app, burst=True, simple=True)
    assert handles[0].refresh().status == "finished"
