"""Hostile span answers: refused with 422 and re-rendered without a crash; only well-formed spans are
shown again, by letter."""

from __future__ import annotations

import re

import orjson
import pytest

from app.services import projects as project_service
from app.services.questions import gold_score
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

RESPONSES = [{"id": "secret-id-1", "text": "Water boils at 50 degrees."}, {"id": "secret-id-2", "text": "Fine."}]
OPTIONS = {"labels": ["factual error", "unclear"]}


def span_project(session, trainer):
    project = project_service.create_project(
        session, name="Spans", slug="span-inputs", status="active",
        questions=[{"key": "marks", "type": "span", "title": "Mark the problems", "options": OPTIONS}])
    project_service.add_item(session, project, prompt="Check this", responses=RESPONSES, external_id="s1")
    project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    return project


DEEP = "[" * 900 + "1" + "]" * 900  # deeper than orjson writes (it reads up to 1,024 levels)


def deep(_levels: int) -> str:
    return "@DEEP@"


HOSTILE = [
    [{"response": {"nested": "object"}, "start": 0, "end": 5, "label": "unclear"}],
    [{"response": ["A"], "start": 0, "end": 5, "label": "unclear"}],
    [{"response": "A", "start": deep(900), "end": 5, "label": "unclear"}],
    [{"response": "A", "start": 0, "end": 5, "label": "unclear", "comment": deep(900)}],
    [{"response": "A", "start": 0, "end": 5, "label": {"x": 1}}],
    [{"response": "A", "start": 0, "end": "@BIG@", "label": "unclear"}],
    [{"response": "A", "start": 0, "end": 5, "label": "unclear", "comment": 0}],
    [{"response": "secret-id-1", "start": 0, "end": 5, "label": "unclear"}],
    ["not a span", 3, None],
    {"response": "A"},
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_span_answer_is_refused_and_the_task_shown_again(client, session, value):
    trainer = make_user(session, "trainer")
    project = span_project(session, trainer)
    login(client, trainer.email, PASSWORD)
    page = client.get(f"/work/{project.slug}").text
    token = csrf_token(client, f"/work/{project.slug}")
    url = re.search(r'hx-post="(/work/[^"]+/submit)"', page).group(1)
    posted = orjson.dumps(value).decode().replace('"@DEEP@"', DEEP).replace('"@BIG@"', "1" + "0" * 30)
    response = client.post(url, data={"answer.marks": posted, "csrf_token": token}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "secret-id" not in response.text
    shown = re.search(r'data-span-value value="([^"]*)"', response.text).group(1)
    assert shown == "[]"  # nothing malformed is echoed back


def test_a_well_formed_span_survives_a_failed_submit_by_letter(client, session):
    trainer = make_user(session, "trainer")
    project = span_project(session, trainer)
    login(client, trainer.email, PASSWORD)
    page = client.get(f"/work/{project.slug}").text
    token = csrf_token(client, f"/work/{project.slug}")
    url = re.search(r'hx-post="(/work/[^"]+/submit)"', page).group(1)
    spans = [{"response": "A", "start": 15, "end": 25, "label": "factual error"},
             {"response": "B", "start": 0, "end": 99, "label": "unclear"}]  # the second is out of range
    response = client.post(url, data={"answer.marks": orjson.dumps(spans).decode(), "csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422 and "span 2 must have whole-number offsets" in response.text
    shown = re.search(r'data-span-value value="([^"]*)"', response.text).group(1)
    assert "&#34;response&#34;: &#34;A&#34;" in shown or "&#34;response&#34;:&#34;A&#34;" in shown
    assert "secret-id" not in response.text


class Q:
    key, type, options, required = "marks", "span", OPTIONS, False


def test_gold_spans_score_an_unanswered_span_question_as_nothing_marked():
    gold = {"marks": [{"response": "secret-id-1", "start": 15, "end": 25, "label": "factual error", "comment": ""}]}
    assert gold_score([Q], {}, gold) == 0.0  # marking nothing misses the gold span
    assert gold_score([Q], {}, {"marks": []}) == 1.0  # gold says there is nothing to mark
    from app.services.questions import validate_answers
    assert validate_answers([Q], {"marks": []}, RESPONSES, partial=True) == {"marks": []}  # such gold is kept
