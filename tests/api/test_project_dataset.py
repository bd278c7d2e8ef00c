"""A project's dataset settings over the API: licence, citation and language for the cards, and the two
chat settings; checked by the same service as the form, readable by admins and the project's clients."""

from __future__ import annotations

import orjson
import pytest

LABEL = [{"key": "ok", "type": "label", "title": "OK?", "options": {"labels": ["yes", "no"]}}]
CITATION = "@misc{apidata,\n  title = {Made over HTTP},\n  year = {2026}\n}"


def test_the_admin_sets_the_dataset_settings_and_reads_them_back(api):
    created = api.post("/api/v1/projects", json={
        "name": "Made over HTTP", "questions": LABEL, "license": "cc-by-sa-4.0", "citation": CITATION,
        "language": "en, de", "allow_assistant_first": True, "always_messages": True})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["dataset"] == {"license": "cc-by-sa-4.0", "citation": CITATION, "language": "en,de",
                               "allow_assistant_first": True, "always_messages": True}
    assert body["settings"]["license"] == "cc-by-sa-4.0" and body["settings"]["always_messages"] is True

    updated = api.patch("/api/v1/projects/made-over-http", json={"license": "other: Acme data licence",
                                                                 "always_messages": False})
    assert updated.status_code == 200, updated.get_json()
    dataset = updated.get_json()["dataset"]
    assert dataset["license"] == "other: Acme data licence" and dataset["always_messages"] is False
    assert dataset["citation"] == CITATION and dataset["allow_assistant_first"] is True  # unsent fields stay
    assert api.patch("/api/v1/projects/made-over-http", json={"license": ""}).get_json()["dataset"]["license"] == ""


def test_a_new_project_states_english_and_no_licence(api):
    body = api.post("/api/v1/projects", json={"name": "Defaults", "questions": LABEL}).get_json()
    assert body["dataset"] == {"license": "", "citation": "", "language": "en", "allow_assistant_first": False,
                               "always_messages": False}


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"license": "CC BY 4.0"}, "license", "must be a licence id"),
    ({"license": "other:  "}, "license", "needs the licence"),
    ({"license": "x" * 101}, "license", "at most 100 characters"),  # the model's bound
    ({"language": "English"}, "language", "must be language tags"),
    ({"language": "en_US"}, "language", "must be language tags"),
    ({"citation": "c" * 5001}, "citation", "at most 5000 characters"),
    ({"allow_assistant_first": "perhaps"}, "allow_assistant_first", "valid boolean"),
])
def test_bad_dataset_settings_are_refused_by_field(api, fields, field, words):
    response = api.patch("/api/v1/projects/alpha", json=fields)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["error"]["details"]
    assert list(details) == [field] and words in details[field]
    assert api.get("/api/v1/projects/alpha").get_json()["dataset"]["license"] == ""  # nothing changed


def test_a_citation_with_a_nul_never_reaches_the_service(api):
    response = api.patch("/api/v1/projects/alpha", json={"citation": "nul \x00 inside"})
    assert response.status_code == 400 and "NUL" in response.get_json()["error"]["message"]


def test_clients_read_the_dataset_settings_and_others_do_not(api):
    assert api.get("/api/v1/projects/alpha", as_="client").get_json()["dataset"]["language"] == "en"
    assert api.get("/api/v1/projects/alpha", as_="trainer").get_json()["dataset"] is None
    assert api.get("/api/v1/projects/alpha", as_="reviewer").get_json()["dataset"] is None
    assert api.patch("/api/v1/projects/alpha", as_="client", json={"license": "mit"}).status_code == 403


def test_pushed_items_follow_the_projects_assistant_first_setting(api, api_world):
    items = [{"external_id": "greeting-1", "responses": ["Answer"],
              "context": [{"role": "assistant", "content": "Hello! How can I help?"},
                          {"role": "user", "content": "Is the sky blue?"}]}]
    refused = api.post("/api/v1/projects/alpha/items", data=orjson.dumps(items), content_type="application/json")
    assert refused.status_code == 422
    assert list(refused.get_json()["error"]["details"]) == ["line 1: context[1].role"]
    assert api.patch("/api/v1/projects/alpha", json={"allow_assistant_first": True}).status_code == 200
    accepted = api.post("/api/v1/projects/alpha/items", data=orjson.dumps(items), content_type="application/json")
    assert accepted.status_code == 201, accepted.get_json()
