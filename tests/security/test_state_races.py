"""Findings 5 and 12: a state change that two people make at once succeeds once; the other gets 409."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, func, select

from app.db import begin_write, get_db
from app.errors import Conflict
from app.models import Annotation, Review, Timesheet
from app.services import assignment as queue
from app.services import pay
from app.services import review as review_service
from tests.factories import make_label_project, make_user

from .conftest import sign_in, token


def _annotation(session):
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    return project, queue.submit(session, a.id, trainer.id, {"label": "yes"})


def _in_thread(fn):
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - the test reads it
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_verdicts_at_once_one_wins_the_other_conflicts(app, session):
    project, annotation = _annotation(session)
    first, second = make_user(session, "reviewer"), make_user(session, "reviewer")
    with app.app_context():
        factory = get_db().session_factory
    a, b = factory(), factory()
    at_commit, go_on = threading.Event(), threading.Event()

    def hold_the_commit(session):  # the first verdict is written, its transaction still open
        if any(isinstance(o, Review) for o in session.new):
            at_commit.set()
            go_on.wait(timeout=60)

    event.listen(a, "before_commit", hold_the_commit)
    try:
        early, early_outcome = _in_thread(
            lambda: review_service.record_verdict(a, annotation.id, first.id, "approve"))
        assert at_commit.wait(timeout=60), early_outcome
        late, outcome = _in_thread(
            lambda: review_service.record_verdict(b, annotation.id, second.id, "reject", "wrong label"))
        time.sleep(0.5)  # the second reviewer is now waiting on the first one's transaction
        go_on.set()
        early.join(timeout=60)
        late.join(timeout=60)
        assert isinstance(early_outcome.get("value"), Review), early_outcome
        assert isinstance(outcome.get("error"), Conflict), outcome
    finally:
        go_on.set()
        b.rollback()
        a.close()
        b.close()
    assert session.scalar(select(func.count(Review.id))) == 1
    assert session.scalar(select(Annotation.review_status)) == "approved"


def test_a_second_verdict_over_the_web_is_409_with_a_reason(client, session):
    project, annotation = _annotation(session)
    first, second = make_user(session, "reviewer"), make_user(session, "reviewer")
    from app.services.projects import add_member

    add_member(session, project, first, "reviewer")
    add_member(session, project, second, "reviewer")
    session.commit()
    review_service.record_verdict(session, annotation.id, first.id, "approve")
    session.commit()
    sign_in(client, second)
    response = client.post(f"/review/{project.slug}/annotations/{annotation.id}/verdict",
                           data={"csrf_token": token(client, "/review/"), "verdict": "reject", "comment": "no"})
    assert response.status_code == 409
    assert "already been reviewed" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(Review.id))) == 1


def test_two_admins_approving_the_same_week_one_gets_409(app, session):
    trainer = make_user(session, "trainer")
    admin_a, admin_b = make_user(session, "admin"), make_user(session, "admin")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    week = pay.week_of(a.assigned_at)
    with app.app_context():
        factory = get_db().session_factory
    other = factory()
    try:
        begin_write(other)
        pay_rows = pay.lines(other, week, week)
        other.add(Timesheet(trainer_id=trainer.id, project_id=project.id, week_start=week,
                            billable_seconds=pay_rows[0].billable_seconds, rate_cents=0, amount_cents=0,
                            status="approved", approved_by=admin_a.id))
        other.flush()  # admin A is mid-approval: the row exists, uncommitted

        def approve_b():
            with factory() as mine:
                return pay.approve(mine, week, None, admin_b.id)

        thread, outcome = _in_thread(approve_b)
        time.sleep(0.5)
        other.commit()
        thread.join(timeout=60)
    finally:
        other.close()
    # SQLite: B waited for A's write lock and found nothing left to approve. PostgreSQL: B read the
    # week before A committed and is told that someone approved it first.
    if session.get_bind().dialect.name == "sqlite":
        assert outcome == {"value": []}, outcome
    else:
        assert isinstance(outcome.get("error"), Conflict), outcome
    assert session.scalar(select(func.count(Timesheet.id))) == 1


@pytest.mark.parametrize("path", ["/admin/payroll/approve"])
def test_approving_an_already_approved_line_over_the_web_changes_nothing_and_says_so(client, session, path):
    """A second click, or another admin first: nothing is approved twice, and the admin is back on the
    payroll with what happened in words (no bare error page)."""
    trainer, admin = make_user(session, "trainer"), make_user(session, "admin")
    project = make_label_project(session, items=2, trainers=[trainer])
    a = queue.next_task(session, trainer.id, project)
    queue.submit(session, a.id, trainer.id, {"label": "yes"})
    week = pay.week_label(pay.week_of(a.assigned_at))
    sign_in(client, admin)
    csrf = token(client, "/admin/payroll")
    data = {"csrf_token": csrf, "week": week, "line": f"{trainer.id}:{project.id}"}
    assert client.post(path, data=data).status_code == 303
    again = client.post(path, data=data)
    assert again.status_code == 303
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "1 of the ticked timesheets was already approved" in page and "line:" not in page
    assert session.scalar(select(func.count(Timesheet.id))) == 1
