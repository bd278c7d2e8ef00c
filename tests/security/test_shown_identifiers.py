"""Identifiers and labels other people read (an item's external id, a response's model, a token's
name) are one line of visible text: no line breaks, control characters, zero-width characters or
direction overrides that make one read as another."""

from __future__ import annotations

import io

import orjson
import pytest

from app.errors import ValidationError
from app.services import api_tokens, importing
from tests.factories import make_label_project, make_user

HIDDEN = ["a\u202eb", "a\u200bb", "a\nb", "\u200b", "a\x07b"]


@pytest.mark.parametrize("external_id", HIDDEN)
def test_an_external_id_that_hides_or_reorders_text_is_a_line_error(session, external_id):
    project = make_label_project(session, items=0, slug="ids")
    line = orjson.dumps({"external_id": external_id, "prompt": "p", "responses": ["a"]}) + b"\n"
    report = importing.import_file(session, project, io.BytesIO(line), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(1, "external_id")]


@pytest.mark.parametrize("model", [*HIDDEN, "gpt\u001b[31m"])
def test_a_model_name_that_hides_or_reorders_text_is_a_line_error(session, model):
    project = make_label_project(session, items=0, slug="models")
    line = orjson.dumps({"prompt": "p", "responses": [{"text": "a", "model": model}]}) + b"\n"
    report = importing.import_file(session, project, io.BytesIO(line), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(1, "responses[1].model")]


def test_plain_ids_and_models_in_any_script_still_import(session):
    project = make_label_project(session, items=0, slug="fine")
    line = orjson.dumps({"external_id": "réponse-١٢ 七", "prompt": "p",
                         "responses": [{"text": "a", "model": "модель v2 (test)"}]}) + b"\n"
    report = importing.import_file(session, project, io.BytesIO(line), "jsonl")
    assert not report.errors and report.inserted == 1


@pytest.mark.parametrize("name", HIDDEN)
def test_a_token_name_shows_one_line_of_text(session, name):
    user = make_user(session, "trainer")
    with pytest.raises(ValidationError) as refused:
        api_tokens.create(session, user, name)
    assert set(refused.value.errors) == {"name"}
