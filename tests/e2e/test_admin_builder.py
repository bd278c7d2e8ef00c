"""An admin builds a project with the question builder in a real browser."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.db import get_db
from app.models import Project, Question
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_admin_builds_a_project_with_the_question_builder(page, live_app):
    sign_in(page, "admin@groundwork.test")
    page.goto("/admin/projects/new?preset=labelling")
    page.locator("input[name=name]").fill("Radiology report triage")
    page.locator("textarea[name='q-0-labels']").fill("normal\nabnormal\nunclear")

    page.get_by_role("button", name="+ Add a question").click()
    row = page.locator("[data-question-row]").nth(1)
    expect(row).to_be_visible()
    row.locator("input[name='q-1-key']").fill("confidence")
    row.locator("input[name='q-1-title']").fill("How sure are you?")
    row.locator("select[name='q-1-type']").select_option("rating")
    # the row is re-rendered for the new type, keeping what was typed
    expect(page.locator("input[name='q-1-min']")).to_be_visible()
    expect(page.locator("input[name='q-1-key']")).to_have_value("confidence")
    page.locator("input[name='q-1-min']").fill("1")
    page.locator("input[name='q-1-max']").fill("5")

    page.get_by_role("button", name="+ Add a question").click()
    page.locator("[data-question-row]").nth(2).get_by_role("button", name="Remove").click()
    expect(page.locator("[data-question-row]")).to_have_count(2)

    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Radiology report triage")).to_be_visible()
    with live_app.app_context():
        session = get_db().session_factory()
        project = session.scalar(select(Project).where(Project.slug == "radiology-report-triage"))
        questions = session.scalars(select(Question).where(Question.project_id == project.id).order_by(Question.position))
        assert [(q.key, q.type, q.options) for q in questions] == [
            ("label", "label", {"labels": ["normal", "abnormal", "unclear"]}),
            ("confidence", "rating", {"min": 1, "max": 5, "anchors": {}}),
        ]
        session.close()
