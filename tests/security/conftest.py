"""A small world for probing: two work projects, a qualification, and people in every position."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from app.db import get_db
from app.models import (
    Annotation,
    ImportJob,
    Project,
    ProjectMember,
    User,
    Webhook,
    WebhookDelivery,
    WrittenAnswer,
    utcnow,
)
from app.services import assignment as queue
from app.services import exporting
from app.services import projects as project_service
from tests.conftest import login
from tests.factories import PASSWORD, make_label_project, make_user


@dataclass
class World:
    project: Project  # the project everyone below is (or is not) a member of
    other: Project  # another work project
    assessment: Project  # a qualification project
    admin: User
    applicant: User  # applied and is taking an interview, nothing else
    trainer: User  # trainer member of ``project``
    outsider: User  # trainer member of ``other`` only
    reviewer: User  # reviewer member of ``project``
    stranger: User  # a reviewer who is a member of nothing
    client: User  # a client member of ``project`` (the AI team that ordered its data)


@pytest.fixture
def world(session) -> World:
    admin = make_user(session, "admin", name="Ada Admin")
    applicant = make_user(session, "applicant", name="Alex Applicant")
    trainer = make_user(session, "trainer", name="Tess Trainer")
    outsider = make_user(session, "trainer", name="Otto Outsider")
    reviewer = make_user(session, "reviewer", name="Rui Reviewer")
    stranger = make_user(session, "reviewer", name="Stan Stranger")
    project = make_label_project(session, items=4, slug="alpha", trainers=[trainer],
                                 prompts=["Alpha secret prompt 1", "Alpha secret prompt 2",
                                          "Alpha secret prompt 3", "Alpha secret prompt 4"])
    other = make_label_project(session, items=4, slug="beta", trainers=[outsider])
    assessment = make_label_project(session, items=2, slug="assess")
    assessment.kind = "qualification"
    project_service.add_member(session, project, reviewer, "reviewer")
    client = make_user(session, "client", name="Cleo Client")
    project_service.add_member(session, project, client, "client")
    session.commit()
    return World(project, other, assessment, admin, applicant, trainer, outsider, reviewer, stranger, client)


def sign_in(client, user: User):
    response = login(client, user.email, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def token(client, path: str = "/") -> str:
    """A CSRF token from any page the client may open (the hx-headers of every signed-in page)."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def routes(app):
    """(method, endpoint, rule) for every GET and POST of the URL map, static files and the API aside
    (the API's matrix, with tokens instead of cookies, is tests/api/test_access_matrix.py)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("api."):
            continue
        for method in ("GET", "POST"):
            if method in rule.methods:
                found.append((method, rule.endpoint, rule))
    return found


@pytest.fixture
def matrix_world(app, session, world):
    """The security world plus one of everything a URL can point at, in ``world.project``."""
    held = queue.next_task(session, world.trainer.id, world.project)
    other = queue.next_task(session, world.outsider.id, world.other)
    done = queue.submit(session, other.id, world.outsider.id, {"label": "yes"})
    # an annotation of the project, in its review queue
    second = project_service.add_member(session, world.project, world.outsider, "trainer")
    session.commit()
    mine = queue.next_task(session, world.outsider.id, world.project)
    annotation = queue.submit(session, mine.id, world.outsider.id, {"label": "no"})
    session.get(Annotation, annotation.id).review_reason = "sampled"
    project_service.set_member_status(session, second, "removed")
    job = ImportJob(project_id=world.project.id, filename="items.jsonl", path="/nonexistent", format="jsonl",
                    status="done", finished_at=utcnow())
    session.add(job)
    session.commit()  # create_export takes the write lock first: it refuses changes it did not make
    export = exporting.create_export(session, world.project, {"format": "raw"}, world.admin.id)
    session.commit()
    with app.app_context():
        exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"])
    session.refresh(export)
    member = session.query(ProjectMember).filter_by(project_id=world.project.id, user_id=world.trainer.id).one()
    assert done is not None and held is not None
    recruiting = _recruiting_world(session, world)
    hook = Webhook(project_id=world.project.id, url="http://127.0.0.1:9/hook", secret="whsec_test", events=["export.completed"],
                   created_by=world.admin.id)
    session.add(hook)
    session.flush()
    delivery = WebhookDelivery(webhook_id=hook.id, event="export.completed", event_id="evt_matrix", payload={},
                               status="failed", attempts=1, response_code=500)
    session.add(delivery)
    session.commit()
    return SimpleNamespace(
        world=world,
        values={"slug": world.project.slug, "assignment_id": held.id, "annotation_id": annotation.id,
                "import_id": job.id, "export_id": export.id, "member_id": member.id, "user_id": world.trainer.id,
                "name": exporting.data_files(export)[0], "token": "not-a-real-reset-token-at-all",
                "token_id": 2_000_000, "webhook_id": hook.id, "delivery_id": delivery.id, **recruiting},
    )


def _recruiting_world(session, world) -> dict:
    """The applicant applies and is in an interview; another candidate's written answer awaits grading."""
    from app.models import Application, ApplicationStage, Invitation
    from app.services.recruiting import interviews
    from tests.factories import make_applicant, make_assessment

    assessment = make_assessment(session, "medicine", items=6, prompts=1, min_items=1, max_items=1,
                                 slug="assess-medicine")
    application = Application(user_id=world.applicant.id, domains=["medicine"], stage="applied")
    session.add(application)
    session.flush()
    session.add(ApplicationStage(application_id=application.id, stage="applied"))
    session.commit()
    interview = interviews.start(session, world.applicant.id, assessment.id)
    other = make_applicant(session, ("medicine",))
    theirs = interviews.start(session, other.id, assessment.id)
    interviews.answer(session, other.id, theirs.id, theirs.current_item_id, {"label": "yes"})
    prompt = interviews.prompts_of(session, assessment.id)[0]
    interviews.submit_written(session, other.id, theirs.id, {prompt.id: "Their written answer."})
    answer_id = session.query(WrittenAnswer).filter_by(interview_id=theirs.id).one().id
    invitation = Invitation(project_id=world.project.id, user_id=world.trainer.id, invited_by=world.admin.id,
                            rate_cents=world.project.hourly_rate_cents, expected_hours_per_week=10,
                            message="Join us", status="pending")
    session.add(invitation)
    session.commit()
    return {"assessment_id": assessment.id, "invitation_id": invitation.id, "interview_id": interview.id, "answer_id": answer_id,
            "application_id": application.id, "assessment_slug": "assess-medicine"}


