"""A small world for probing: two work projects, a qualification, and people in every position."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from app.models import Project, User
from app.services import projects as project_service
from tests.conftest import login
from tests.factories import PASSWORD, make_label_project, make_user


@dataclass
class World:
    project: Project  # the project everyone below is (or is not) a member of
    other: Project  # another work project
    assessment: Project  # a qualification project
    admin: User
    applicant: User  # takes the assessment, nothing else
    trainer: User  # trainer member of ``project``
    outsider: User  # trainer member of ``other`` only
    reviewer: User  # reviewer member of ``project``
    stranger: User  # a reviewer who is a member of nothing


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
    project_service.add_member(session, assessment, applicant, "trainer")
    project_service.add_member(session, project, reviewer, "reviewer")
    session.commit()
    return World(project, other, assessment, admin, applicant, trainer, outsider, reviewer, stranger)


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
