"""The span question type: answers, the form, gold scoring and a real submit on both databases."""

from __future__ import annotations

import random

import orjson
import pytest
from werkzeug.datastructures import MultiDict

from app.errors import ValidationError
from app.services import assignment as queue
from app.services import projects as project_service
from app.services.questions import (
    QUESTION_TYPES,
    check_question,
    gold_score,
    parse_form_answers,
    validate_answers,
)
from tests.factories import make_user

SPAN = QUESTION_TYPES["span"]
OPTIONS = {"labels": ["factual error", "unsafe", "irrelevant"]}
RESPONSES = [{"id": "left", "text": "Paris is in Spain. It has 😀 cafés."}, {"id": "right", "text": "Short."}]


class Q:
    key, type, options, required = "problems", "span", OPTIONS, True


def spans(*marks):
    return [{"response": r, "start": s, "end": e, "label": lab, "comment": ""} for r, s, e, lab in marks]


def test_a_clean_answer_is_sorted_by_response_and_position_and_keeps_comments():
    value = [{"response": "right", "start": 0, "end": 5, "label": "irrelevant"},
             {"response": "left", "start": 9, "end": 17, "label": "factual error", "comment": "  France \r\n"},
             {"response": "left", "start": 0, "end": 5, "label": "unsafe"}]
    clean = validate_answers([Q], {"problems": value}, RESPONSES)["problems"]
    assert [(s["response"], s["start"]) for s in clean] == [("left", 0), ("left", 9), ("right", 0)]
    assert clean[1]["comment"] == "France" and clean[0]["comment"] == ""


def test_offsets_count_characters_of_the_text_as_stored():
    text = RESPONSES[0]["text"]
    start = text.index("😀")
    clean = validate_answers([Q], {"problems": spans(("left", start, len(text), "irrelevant"))}, RESPONSES)
    assert text[clean["problems"][0]["start"]:] == "😀 cafés."


@pytest.mark.parametrize(("value", "words"), [
    (spans(("left", 0, 99, "unsafe")), "0 ≤ start < end ≤ 34"),
    (spans(("left", 5, 5, "unsafe")), "start < end"),
    (spans(("left", -1, 3, "unsafe")), "whole-number offsets"),
    ([{"response": "left", "start": 0.5, "end": 3, "label": "unsafe"}], "whole-number offsets"),
    ([{"response": "left", "start": True, "end": 3, "label": "unsafe"}], "whole-number offsets"),
    (spans(("nobody", 0, 3, "unsafe")), "a response this item does not have"),
    (spans(("left", 0, 3, "rude")), "is not one of"),
    (spans(("left", 0, 3, "unsafe"), ("left", 0, 3, "unsafe")), "repeats another span"),
    ([{"response": "left", "start": 0, "end": 3, "label": "unsafe", "extra": 1}], "must be an object"),
    ([{"response": "left", "start": 0, "end": 3, "label": "unsafe", "comment": "x" * 501}], "at most 500"),
    ("not a list", "must be a list of spans"),
    (spans(*[("left", i, i + 1, "unsafe") for i in range(101)]), "at most 100 spans"),
])
def test_bad_spans_are_refused_with_the_reason(value, words):
    with pytest.raises(ValidationError) as caught:
        validate_answers([Q], {"problems": value}, RESPONSES)
    assert words in caught.value.errors["problems"]


def test_a_required_span_question_needs_one_span_and_an_optional_one_takes_none():
    with pytest.raises(ValidationError) as caught:
        validate_answers([Q], {"problems": []}, RESPONSES)
    assert "mark at least one span" in caught.value.errors["problems"]

    class Optional(Q):
        required = False

    assert validate_answers([Optional], {"problems": []}, RESPONSES) == {}


def test_the_form_names_responses_by_letter_and_unknown_letters_match_nothing():
    posted = [{"response": "B", "start": 0, "end": 5, "label": "irrelevant"},
              {"response": "Z", "start": 0, "end": 1, "label": "unsafe"}]
    parsed = parse_form_answers([Q], MultiDict({"answer.problems": orjson.dumps(posted).decode()}), RESPONSES)
    assert parsed["problems"][0]["response"] == "right"
    assert parsed["problems"][1]["response"] not in ("left", "right")
    with pytest.raises(ValidationError):
        validate_answers([Q], parsed, RESPONSES)


def test_options_need_two_to_nine_categories():
    check_question("problems", "span", "Mark problems", OPTIONS)
    with pytest.raises(ValidationError, match="at most 9 labels"):
        check_question("problems", "span", "Mark problems", {"labels": [f"c{i}" for i in range(10)]})
    with pytest.raises(ValidationError, match="at least 2"):
        check_question("problems", "span", "Mark problems", {"labels": ["one"]})
    assert SPAN.breaks_answers(OPTIONS, {"labels": ["unsafe", "irrelevant"]}) is not None
    assert SPAN.breaks_answers(OPTIONS, {"labels": [*OPTIONS["labels"], "new"]}) is None


def test_gold_scoring_is_span_f1():
    gold = spans(("left", 0, 17, "factual error"), ("right", 0, 6, "irrelevant"))
    assert gold_score([Q], {"problems": gold}, {"problems": gold}) == 1.0
    # one of two found (overlap 0..12 of 0..17 is IoU 0.71): F1 = 2·1 / (1 + 2)
    half = spans(("left", 0, 12, "factual error"))
    assert gold_score([Q], {"problems": half}, {"problems": gold}) == pytest.approx(2 / 3)
    # the right place with the wrong category matches nothing
    wrong = spans(("left", 0, 17, "unsafe"), ("right", 0, 6, "irrelevant"))
    assert gold_score([Q], {"problems": wrong}, {"problems": gold}) == pytest.approx(0.5)
    assert gold_score([Q], {"problems": []}, {"problems": []}) == 1.0


def test_spans_are_submitted_scored_against_gold_and_stored(session):
    trainer = make_user(session, "trainer")
    questions = [{"key": "problems", "type": "span", "title": "Mark problems", "options": OPTIONS}]
    project = project_service.create_project(session, name="Spans", slug="spans", status="active",
                                             questions=questions, gold_rate=1.0)
    item = project_service.add_item(session, project, prompt="Where is Paris?", responses=RESPONSES, external_id="s1")
    item.is_gold, item.gold_answers = True, {"problems": spans(("left", 0, 17, "factual error"))}
    project_service.add_item(session, project, prompt="Other", responses=RESPONSES, external_id="s2")
    project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    a = queue.next_task(session, trainer.id, project)
    assert a.item.external_id == "s1"
    annotation = queue.submit(session, a.id, trainer.id, {"problems": spans(("left", 0, 18, "factual error"))},
                              rng=random.Random(0))
    assert annotation.gold_score == 1.0
    assert annotation.answers["problems"][0]["end"] == 18
