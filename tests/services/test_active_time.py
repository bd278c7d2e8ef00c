"""Active time with a controlled clock: the server counts, gaps and hidden periods do not."""

from datetime import timedelta

import pytest

from app.models import Annotation, utcnow
from app.services import assignment as queue
from tests.factories import make_label_project, make_user


@pytest.fixture
def task(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer], lease_minutes=10)
    t0 = utcnow()
    assignment = queue.next_task(session, trainer.id, project, now=t0)
    return trainer, project, assignment, t0


def beat(session, trainer, assignment, t, resume=False):
    return queue.record_heartbeat(session, assignment.id, trainer.id, now=t, resume=resume).active_seconds


def test_heartbeats_add_the_time_between_them(session, task):
    trainer, _project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    for k in range(1, 5):
        seconds = beat(session, trainer, a, t0 + timedelta(seconds=15 * k))
    assert seconds == 60


def test_a_late_heartbeat_adds_at_most_twenty_seconds(session, task):
    trainer, _project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    assert beat(session, trainer, a, t0 + timedelta(minutes=7)) == 20


def test_idle_and_hidden_spells_are_not_counted(session, task):
    """The page stops beating when the tab is hidden or the trainer idles, and resumes with a mark."""
    trainer, _project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    beat(session, trainer, a, t0 + timedelta(seconds=15))
    beat(session, trainer, a, t0 + timedelta(seconds=30))  # 30 s of work
    # hidden tab / idle for five minutes: no beats; then activity resumes
    back = t0 + timedelta(seconds=330)
    assert beat(session, trainer, a, back, resume=True) == 30
    assert beat(session, trainer, a, back + timedelta(seconds=15)) == 45


def test_submit_counts_the_last_stretch_and_stores_it_on_the_annotation(session, task):
    trainer, _project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    beat(session, trainer, a, t0 + timedelta(seconds=15))
    annotation = queue.submit(session, a.id, trainer.id, {"label": "no"}, now=t0 + timedelta(seconds=24))
    assert annotation.active_seconds == 24
    assert session.get(Annotation, annotation.id).active_seconds == 24
    # beats after submit change nothing
    assert beat(session, trainer, a, t0 + timedelta(seconds=39)) == 24


def test_a_working_trainer_keeps_the_lease(session, task):
    trainer, project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    beat(session, trainer, a, t0 + timedelta(minutes=9))
    still_mine = queue.next_task(session, trainer.id, project, now=t0 + timedelta(minutes=15))
    assert still_mine.id == a.id


def test_the_clock_is_the_servers_time_in_the_view(app, client, session, task):
    """Through HTTP: a heartbeat answers with the server's figure; a stranger's beat is a 404."""
    from tests.conftest import csrf_token, login
    from tests.factories import PASSWORD

    trainer, project, a, _t0 = task
    login(client, trainer.email, PASSWORD)
    token = csrf_token(client, f"/work/{project.slug}")
    url = f"/work/{project.slug}/tasks/{a.id}/heartbeat"
    response = client.post(url, data={"resume": "1"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.json["active_seconds"] == 0
    assert client.post(url, headers={}).status_code == 400  # no CSRF token
    other = make_user(session, "trainer")
    client.post("/logout", data={"csrf_token": token})
    login(client, other.email, PASSWORD)
    project_service_add(session, project, other)
    token = csrf_token(client, "/work/")
    assert client.post(url, headers={"X-CSRFToken": token}).status_code == 404


def project_service_add(session, project, user):
    from app.services.projects import add_member

    add_member(session, project, user, "trainer")
    session.commit()


def test_a_heartbeat_through_the_page_is_one_locking_read_and_its_writes(app, client, session, task):
    """Heartbeats are most of the traffic: a beat reads only through the one door (the signed-in
    trainer, project by slug, membership, task, clock in one statement) — no separate user, project or
    membership lookup — and writes the clock and the lease."""
    from sqlalchemy import event

    from app.db import get_db
    from tests.conftest import csrf_token, login
    from tests.factories import PASSWORD

    trainer, project, a, _t0 = task
    login(client, trainer.email, PASSWORD)
    token = csrf_token(client, f"/work/{project.slug}")
    url = f"/work/{project.slug}/tasks/{a.id}/heartbeat"
    client.post(url, data={"resume": "1"}, headers={"X-CSRFToken": token})
    with app.app_context():
        engine = get_db().engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()[:4]).lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.post(url, headers={"X-CSRFToken": token})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200
    reads = [s for s in seen if s.startswith("select")]
    assert not any(s.startswith(("select projects.", "select project_members.id")) for s in reads), seen
    assert len(reads) == 1, seen  # the one door
    assert not any(s.startswith("select users.") for s in reads), seen  # the user is checked by the door
    assert sum(s.startswith("update") for s in seen) <= 2, seen  # the clock and the lease


@pytest.mark.parametrize("every", [0.52, 0.49, 1.5, 7.3, 14.99])
def test_beats_however_frequent_add_up_to_the_time_that_passed_never_more(session, task, every):
    """Each beat counts whole seconds and leaves the fraction for the next: a beat every half second
    (rounded up, each was paid a whole second) adds what passed, give or take the last fraction."""
    trainer, _project, a, t0 = task
    beat(session, trainer, a, t0, resume=True)
    beats = int(18 / every) + 1  # under the per-task cap of a short project, over 18 s in all
    for k in range(1, beats + 1):
        seconds = beat(session, trainer, a, t0 + timedelta(seconds=every * k))
    passed = every * beats
    assert int(passed) - 1 <= seconds <= passed


def test_two_tabs_beating_out_of_step_are_paid_the_time_once(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=2, trainers=[trainer], lease_minutes=10)
    t0 = utcnow()
    first = queue.next_task(session, trainer.id, project, now=t0)
    beat(session, trainer, first, t0, resume=True)
    for k in range(1, 9):  # a second tab's beats land between this one's
        beat(session, trainer, first, t0 + timedelta(seconds=15 * k))
        beat(session, trainer, first, t0 + timedelta(seconds=15 * k + 7.3))
    assert beat(session, trainer, first, t0 + timedelta(seconds=135)) == 135
