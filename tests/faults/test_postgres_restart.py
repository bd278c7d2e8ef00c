"""PostgreSQL restarted while trainers submit: the app reconnects by itself, every submit that was
acknowledged is stored exactly once, and a request caught by the restart gets a retryable 503 (a
fragment for HTMX, JSON on the API, with Retry-After), never a 500."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import func, select

from app.db import get_db
from app.models import Annotation, Base
from tests.conftest import CSRF_RE, build_app, login
from tests.factories import PASSWORD, make_label_project, make_user

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SUBMIT_RE = re.compile(r'hx-post="(/work/[^"]+/tasks/(\d+)/submit)"')
TRAINERS = 4


@pytest.fixture
def restart_app(private_postgres, tmp_path):
    app = build_app(private_postgres.url, tmp_path)
    with app.app_context():
        engine = get_db().engine
    Base.metadata.create_all(engine)
    yield app
    engine.dispose()


class Trainer(threading.Thread):
    """Works through the queue over HTTP: load the task, submit it, again; records what the server said."""

    def __init__(self, app, email: str, slug: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = app.test_client()
        self.email, self.slug, self.stop = email, slug, stop
        self.acknowledged: list[int] = []  # assignment ids whose submit got a success response
        self.acknowledged_at: list[float] = []
        self.refused: list[tuple[int, str, str, str]] = []  # (status, Retry-After, content type, start of body)
        self.unexpected: list[str] = []

    def _note(self, response, htmx: bool = False) -> None:
        body = response.get_data(as_text=True)
        if response.status_code == 503:
            self.refused.append((htmx, response.headers.get("Retry-After", ""), response.headers.get("HX-Retarget"),
                                 body))
        else:
            self.unexpected.append(f"{response.status_code}: {body[:300]}")

    def run(self) -> None:
        while not self.stop.is_set():
            response = login(self.client, self.email, PASSWORD)
            if response.status_code == 302:
                break
            self._note(response)
            time.sleep(0.05)
        while not self.stop.is_set():
            page = self.client.get(f"/work/{self.slug}")
            if page.status_code != 200:
                self._note(page)
                time.sleep(0.05)
                continue
            text = page.get_data(as_text=True)
            found, token = SUBMIT_RE.search(text), CSRF_RE.search(text)
            if not found:
                return  # the queue is empty
            response = self.client.post(found.group(1), data={"answer.label": "yes", "csrf_token": token.group(1)},
                                        headers={"HX-Request": "true"})
            if response.status_code == 200:
                self.acknowledged.append(int(found.group(2)))
                self.acknowledged_at.append(time.monotonic())
            elif response.status_code in (404, 409):
                pass  # submitted before the connection dropped (the answer was kept): the task is gone
            else:
                self._note(response, htmx=True)
                time.sleep(0.05)


def test_a_postgres_restart_loses_no_acknowledged_submit_and_shows_no_500(restart_app, private_postgres):
    app = restart_app
    with app.app_context():
        session = get_db().session_factory()
        trainers = [make_user(session, "trainer") for _ in range(TRAINERS)]
        project = make_label_project(session, items=2000, trainers=trainers)
        emails, slug = [t.email for t in trainers], project.slug
        session.close()
    stop = threading.Event()
    workers = [Trainer(app, email, slug, stop) for email in emails]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 30
        while sum(len(w.acknowledged) for w in workers) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        restarted_at = time.monotonic()
        private_postgres.restart()  # fast: open connections are cut, new ones refused while it is down
        back_at = time.monotonic()
        deadline = back_at + 30
        while time.monotonic() < deadline:
            if all(any(t > back_at for t in w.acknowledged_at) for w in workers):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    before = sum(1 for w in workers for t in w.acknowledged_at if t < restarted_at)
    after = sum(1 for w in workers for t in w.acknowledged_at if t > back_at)
    assert before >= 20
    assert all(any(t > back_at for t in w.acknowledged_at) for w in workers), "the app did not recover by itself"
    assert not [u for w in workers for u in w.unexpected], [u for w in workers for u in w.unexpected][:5]
    for htmx, retry_after, retarget, body in (r for w in workers for r in w.refused):
        assert retry_after.isdigit() and "Please try again" in body and "Traceback" not in body
        if htmx:  # a fragment for the flash area, not a page swapped into the task
            assert "<html" not in body and retarget == "#flash"
    acknowledged = [a for w in workers for a in w.acknowledged]
    with app.app_context():
        session = get_db().session_factory()
        stored = dict(session.execute(select(Annotation.assignment_id, func.count())
                                      .group_by(Annotation.assignment_id)).all())
        session.close()
    assert len(acknowledged) == len(set(acknowledged)) == before + after + sum(
        1 for w in workers for t in w.acknowledged_at if restarted_at <= t <= back_at)
    assert all(stored.get(a) == 1 for a in acknowledged), "an acknowledged submit is missing or stored twice"
    assert all(n == 1 for n in stored.values())


def test_while_postgres_is_down_pages_fragments_and_the_api_say_try_again(restart_app, private_postgres):
    from app.services import api_tokens

    app = restart_app
    with app.app_context():
        session = get_db().session_factory()
        trainer = make_user(session, "trainer")
        project = make_label_project(session, items=3, trainers=[trainer])
        token = api_tokens.create(session, trainer, "fault test").secret
        session.commit()
        session.close()
    client = app.test_client()
    assert login(client, trainer.email, PASSWORD).status_code == 302
    page = client.get(f"/work/{project.slug}").get_data(as_text=True)
    url, csrf = SUBMIT_RE.search(page).group(1), CSRF_RE.search(page).group(1)
    private_postgres.stop()
    try:
        full = client.get(f"/work/{project.slug}")
        assert full.status_code == 503 and full.headers["Retry-After"] == "5"
        assert "<html" in full.get_data(as_text=True) and "Please try again" in full.get_data(as_text=True)
        fragment = client.post(url, data={"answer.label": "yes", "csrf_token": csrf}, headers={"HX-Request": "true"})
        assert fragment.status_code == 503 and fragment.headers["HX-Retarget"] == "#flash"
        assert "<html" not in fragment.get_data(as_text=True)
        api = client.post(f"/api/v1/projects/{project.slug}/tasks/next", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and api.headers["Retry-After"].isdigit()  # the rate limiter may set its own
        assert api.get_json()["error"]["code"] == "unavailable"
    finally:
        private_postgres.start()
    # Back by itself: the same client submits the same task.
    again = client.post(url, data={"answer.label": "yes", "csrf_token": csrf}, headers={"HX-Request": "true"})
    assert again.status_code == 200
    with app.app_context():
        session = get_db().session_factory()
        assert session.scalar(select(func.count(Annotation.id))) == 1
        session.close()
