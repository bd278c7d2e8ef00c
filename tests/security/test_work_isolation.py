"""Findings 2 and 3: a task is reachable only as the caller's own live assignment in the URL's project,
and membership is judged on the project the assignment belongs to."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import Annotation, Assignment
from app.services import assignment as queue
from app.services import projects as project_service
from tests.factories import make_label_project

from .conftest import sign_in, token

ACTIONS = ("submit", "heartbeat", "skip")


@pytest.mark.parametrize("action", ACTIONS)
def test_another_projects_task_is_404_and_shows_nothing(client, session, world, action):
    """A trainer walking assignment ids through their own project's URL sees nothing of others' tasks
    (applicants never reach the work queue at all: 403)."""
    held = queue.next_task(session, world.trainer.id, world.project)
    sign_in(client, world.outsider)
    csrf = token(client, "/work/")
    response = client.post(f"/work/{world.other.slug}/tasks/{held.id}/{action}",
                           data={"csrf_token": csrf, "reason": "", "answer.label": "nope"},
                           headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 404, body[:300]
    assert "Alpha secret prompt" not in body


@pytest.mark.parametrize("action", ACTIONS)
def test_own_task_through_another_projects_url_is_404(client, session, world, action):
    """A trainer on two projects cannot act on project A's task through project B's address."""
    project_service.add_member(session, world.other, world.trainer, "trainer")
    session.commit()
    held = queue.next_task(session, world.trainer.id, world.project)
    sign_in(client, world.trainer)
    csrf = token(client, "/work/")
    response = client.post(f"/work/{world.other.slug}/tasks/{held.id}/{action}",
                           data={"csrf_token": csrf, "reason": "too hard", "answer.label": "yes"})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Assignment, held.id).status == "active"


@pytest.mark.parametrize("status", ["paused", "removed"])
@pytest.mark.parametrize("action", ACTIONS)
def test_paused_or_removed_trainer_cannot_work_through_another_projects_url(client, session, world, action, status):
    """Paused in A, active in B: the A task is dead through every URL, and nothing is paid or stored."""
    project_service.add_member(session, world.other, world.trainer, "trainer")
    session.commit()
    held = queue.next_task(session, world.trainer.id, world.project)
    member = project_service.add_member(session, world.project, world.trainer, "trainer")
    project_service.set_member_status(session, member, status)
    session.commit()
    sign_in(client, world.trainer)
    csrf = token(client, "/work/")
    # through the other project's address: no such task there; through its own: paused 403, removed 404
    for slug, expected in ((world.other.slug, 404), (world.project.slug, 403 if status == "paused" else 404)):
        response = client.post(f"/work/{slug}/tasks/{held.id}/{action}",
                               data={"csrf_token": csrf, "reason": "too hard", "answer.label": "yes"})
        assert response.status_code == expected, (slug, response.status_code)
    session.expire_all()
    after = session.get(Assignment, held.id)
    assert after.status != "skipped" and after.active_seconds == 0
    assert session.scalar(select(func.count(Annotation.id))) == 0


def test_pausing_a_member_ends_their_live_lease(session, world):
    """A paused trainer's slot goes back to the queue at once instead of waiting for the lease to lapse."""
    held = queue.next_task(session, world.trainer.id, world.project)
    member = project_service.add_member(session, world.project, world.trainer, "trainer")
    project_service.set_member_status(session, member, "paused")
    session.commit()
    session.expire_all()
    assert session.get(Assignment, held.id).status == "expired"
    assert session.get(Assignment, held.id).item.active_count == 0


def test_service_refuses_a_task_of_a_project_where_the_trainer_is_paused(session, world):
    held = queue.next_task(session, world.trainer.id, world.project)
    member = project_service.add_member(session, world.project, world.trainer, "trainer")
    member.status = "paused"  # straight in the table: the service must not trust the lease
    session.commit()
    with pytest.raises(queue.Paused):
        queue.submit(session, held.id, world.trainer.id, {"label": "yes"})
    with pytest.raises(queue.Paused):
        queue.record_heartbeat(session, held.id, world.trainer.id)
    with pytest.raises(queue.Paused):
        queue.skip(session, held.id, world.trainer.id, "no")


def test_a_stranger_project_of_the_same_shape_is_not_reachable(client, session, world):
    """Guessing a slug of a project one is not on reads like a project that does not exist."""
    hidden = make_label_project(session, slug="hidden", items=1)
    sign_in(client, world.trainer)
    for path in (f"/work/{hidden.slug}", f"/work/{hidden.slug}/task"):
        assert client.get(path).status_code == 404
