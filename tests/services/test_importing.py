import io

import orjson
import pytest
from sqlalchemy import func, select

from app.models import Item
from app.services import importing
from app.services import projects as project_service
from app.services.presets import preset_questions
from tests.factories import make_label_project


def jsonl(*records) -> io.BytesIO:
    lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def pairwise_project(session):
    project = project_service.create_project(
        session, name="Pairs", slug="pairs", status="active", questions=preset_questions("pairwise")
    )
    session.commit()
    return project


def count_items(session, project):
    return session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id))


def test_five_kinds_of_error_are_all_reported_and_nothing_is_imported(session):
    project = pairwise_project(session)
    data = jsonl(
        {"external_id": "ok-1", "prompt": "Fine", "responses": ["a", "b"]},
        '{"prompt": "broken json"',                                                       # 2: not JSON
        {"prompt": "Too few", "responses": ["only one"]},                                # 3: response count
        {"context": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
         "responses": ["a", "b"]},                                                       # 4: context ends badly
        {"prompt": "Gold", "responses": ["a", "b"], "gold": {"preference": 9}},          # 5: bad gold answer
        {"prompt": "Both", "context": [{"role": "user", "content": "x"}], "responses": ["a", "b"]},  # 6
        {"external_id": "ok-1", "prompt": "Again", "responses": ["a", "b"]},             # 7: duplicate id
    )
    report = importing.import_file(session, project, data, "jsonl")
    found = {(e.line, e.field) for e in report.errors}
    assert found == {
        (2, ""), (3, "responses"), (4, "context"), (5, "gold.preference"), (6, "prompt"), (7, "external_id"),
    }
    assert "this project needs exactly 2 responses, got 1" in {e.message for e in report.errors}
    assert "'ok-1' already appears on line 1" in {e.message for e in report.errors}
    assert report.error_count == 6 and not report.ok
    assert count_items(session, project) == 0


def test_clean_file_imports_and_reimport_skips_or_updates(session):
    project = pairwise_project(session)
    records = [
        {"external_id": "p1", "prompt": "Q1", "responses": ["a", "b"], "metadata": {"topic": "x"}},
        {"prompt": "Q2", "responses": [{"id": "left", "text": "L", "model": "m1"}, {"id": "right", "text": "R"}],
         "gold": {"preference": -2}, "priority": 5},
    ]
    report = importing.import_file(session, project, jsonl(*records), "jsonl")
    assert (report.inserted, report.skipped, report.ok) == (2, 0, True)
    items = {i.external_id: i for i in session.scalars(select(Item).where(Item.project_id == project.id))}
    assert items["p1"].context == [{"role": "user", "content": "Q1"}]
    assert items["p1"].responses == [{"id": "r1", "text": "a"}, {"id": "r2", "text": "b"}]
    assert items["p1"].meta == {"topic": "x"}
    gold = next(i for k, i in items.items() if k != "p1")
    assert gold.external_id.startswith("sha256:") and gold.is_gold and gold.gold_answers == {"preference": -2}
    assert gold.priority == 5

    again = importing.import_file(session, project, jsonl(*records), "jsonl")
    assert (again.inserted, again.skipped) == (0, 2)
    records[0]["metadata"] = {"topic": "y"}
    updated = importing.import_file(session, project, jsonl(*records), "jsonl", update_existing=True)
    assert (updated.inserted, updated.updated) == (0, 2)
    session.rollback()  # end the read snapshot; see what the request committed
    assert session.scalar(select(Item.meta).where(Item.external_id == "p1")) == {"topic": "y"}
    assert count_items(session, project) == 2


def test_reimport_skips_known_ids_written_as_numbers_and_inserts_new_lines(session):
    project = pairwise_project(session)
    first = importing.import_file(session, project, jsonl({"external_id": 7, "prompt": "Q", "responses": ["a", "b"]}),
                                  "jsonl")
    assert first.inserted == 1
    again = importing.import_file(session, project, jsonl(
        {"external_id": 7, "prompt": "Changed", "responses": ["c", "d"]},
        {"external_id": "7b", "prompt": "New", "responses": ["a", "b"]},
        {"prompt": "No id", "responses": ["a", "b"]},
    ), "jsonl")
    assert (again.inserted, again.skipped, again.updated) == (2, 1, 0)
    session.rollback()
    assert session.scalar(select(Item.context).where(Item.external_id == "7")) == [{"role": "user", "content": "Q"}]
    assert count_items(session, project) == 3


def test_csv_import_with_response_columns_and_json_cells(session):
    project = pairwise_project(session)
    data = io.BytesIO(
        b'external_id,prompt,response_1,response_2,metadata,gold\n'
        b'c1,"Which, with a comma?",yes,no,"{""k"": 1}",\n'
        b'c2,Second,"multi\nline",other,,"{""preference"": 1}"\n'
    )
    report = importing.import_file(session, project, data, "csv")
    assert report.ok and report.inserted == 2
    c2 = session.scalar(select(Item).where(Item.external_id == "c2"))
    assert c2.responses[0]["text"] == "multi\nline" and c2.gold_answers == {"preference": 1}


def test_a_csv_response_keeps_its_column_number_as_its_id(session):
    project = project_service.create_project(session, name="Rank", slug="rank", status="active",
                                             questions=preset_questions("ranking"))
    session.commit()
    data = io.BytesIO(b"external_id,prompt,response_1,response_2,response_3\nr1,Q,one,,three\n")
    assert importing.import_file(session, project, data, "csv").inserted == 1
    item = session.scalar(select(Item).where(Item.external_id == "r1"))
    assert [(r["id"], r["text"]) for r in item.responses] == [("r1", "one"), ("r3", "three")]


def test_csv_errors_name_the_line_and_column(session):
    project = pairwise_project(session)
    data = io.BytesIO(b"prompt,response_1,response_2,metadata\nok,a,b,\nbad,a,b,{not json\n")
    report = importing.import_file(session, project, data, "csv")
    assert [(e.line, e.field, e.message) for e in report.errors] == [(3, "metadata", "is not valid JSON")]
    assert count_items(session, project) == 0


def test_a_csv_record_spanning_lines_is_named_by_its_first_line(session):
    project = pairwise_project(session)
    data = io.BytesIO(b'prompt,response_1,response_2,metadata\n'
                      b'"two\nlines",a,b,\n'                     # lines 2-3
                      b'"three\nmore\nlines",a,b,{not json\n'    # lines 4-6
                      b'\n'                                       # line 7, blank
                      b'ok,a,"b\nb",{bad\n')                      # lines 8-9
    report = importing.import_file(session, project, data, "csv")
    assert [(e.line, e.field) for e in report.errors] == [(4, "metadata"), (8, "metadata")]


def test_unknown_csv_column_is_reported(session):
    project = make_label_project(session, items=0)
    report = importing.import_file(session, project, io.BytesIO(b"prompt,colour\nx,red\n"), "csv")
    assert [(e.line, e.field) for e in report.errors] == [(1, "colour")]


def test_an_empty_file_is_an_error(session):
    project = make_label_project(session, items=0)
    report = importing.import_file(session, project, io.BytesIO(b"\n\n"), "jsonl")
    assert [e.message for e in report.errors] == ["the file holds no items"]


@pytest.mark.parametrize(("name", "fmt"), [("a.jsonl", "jsonl"), ("b.NDJSON", "jsonl"), ("c.csv", "csv")])
def test_format_is_detected_from_the_file_name(name, fmt):
    assert importing.detect_format(name) == fmt


def test_unknown_extension_is_refused():
    with pytest.raises(Exception, match="use a .jsonl or .csv file"):
        importing.detect_format("items.xlsx")


def _turns(*roles):
    return [{"role": role, "content": f"{role} says something"} for role in roles]


@pytest.mark.parametrize(("roles", "field", "words"), [
    (("user", "user"), "context[2].role", "must be assistant"),
    (("assistant", "user"), "context[1].role", "must be user"),
    (("user", "system", "user"), "context[2].role", "a system message may only come first"),
    (("system", "system", "user"), "context[2].role", "a system message may only come first"),
    (("system", "assistant", "user"), "context[2].role", "must be user"),
    (("user", "assistant"), "context", "must end with a user turn"),
])
def test_chats_strict_templates_reject_are_refused_by_line_and_turn(session, roles, field, words):
    project = pairwise_project(session)
    report = importing.import_file(session, project, jsonl(
        {"context": _turns("system", "user", "assistant", "user"), "responses": ["a", "b"]},  # fine
        {"context": _turns(*roles), "responses": ["a", "b"]},
    ), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(2, field)]
    assert words in report.errors[0].message
    assert count_items(session, project) == 0


def test_responses_that_differ_only_in_spacing_are_refused(session):
    project = pairwise_project(session)
    report = importing.import_file(session, project, jsonl(
        {"prompt": "Q", "responses": ["Hi!", "Hi! "]},
        {"prompt": "Q", "responses": ["Two  words\n", "Two words"]},
        {"prompt": "Q", "responses": ["Hi!", "hi!"]},  # different text: fine
    ), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(1, "responses[2]"), (2, "responses[2]")]
    assert "same text as responses[1]" in report.errors[0].message


def test_an_assistant_first_chat_is_refused_until_the_project_allows_it(session):
    project = pairwise_project(session)
    opening = {"context": _turns("system", "assistant", "user"), "responses": ["a", "b"]}
    bare = {"context": _turns("assistant", "user", "assistant", "user"), "responses": ["c", "d"]}
    report = importing.import_file(session, project, jsonl(opening, bare), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(1, "context[2].role"), (2, "context[1].role")]
    assert count_items(session, project) == 0

    project_service.update_project(session, project, name=project.name, allow_assistant_first=True)
    report = importing.import_file(session, project, jsonl(opening, bare), "jsonl")
    assert report.ok and count_items(session, project) == 2


@pytest.mark.parametrize(("roles", "field", "words"), [
    (("assistant", "assistant", "user"), "context[2].role", "must be user"),
    (("assistant", "user", "user"), "context[3].role", "must be assistant"),
    (("assistant", "system", "user"), "context[2].role", "a system message may only come first"),
    (("system", "assistant", "user", "assistant"), "context", "must end with a user turn"),
    (("assistant",), "context", "must end with a user turn"),
])
def test_assistant_first_relaxes_only_the_opening_turn(session, roles, field, words):
    project = pairwise_project(session)
    project_service.update_project(session, project, name=project.name, allow_assistant_first=True)
    report = importing.import_file(session, project, jsonl(
        {"context": _turns("user", "assistant", "user"), "responses": ["a", "b"]},  # user first still fine
        {"context": _turns(*roles), "responses": ["a", "b"]},
    ), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(2, field)]
    assert words in report.errors[0].message
    assert count_items(session, project) == 0


@pytest.mark.parametrize(("record", "field"), [
    ({"context": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "  "},
                  {"role": "user", "content": "Q2"}], "responses": ["a", "b"]}, "context[2].content"),
    ({"context": [{"role": "user", "content": ""}], "responses": ["a", "b"]}, "context[1].content"),
    ({"prompt": " \n", "responses": ["a", "b"]}, "prompt"),
    ({"prompt": "Q", "responses": ["a", "\t"]}, "responses[2]"),
    ({"prompt": "Q", "responses": [{"id": "x", "text": "a"}, {"id": "y", "text": ""}]}, "responses[2].text"),
])
def test_empty_turns_and_responses_are_refused_by_line(session, record, field):
    project = pairwise_project(session)
    report = importing.import_file(session, project, jsonl(
        {"prompt": "Fine", "responses": ["a", "b"]}, record), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(2, field)]
    assert count_items(session, project) == 0


def test_the_api_upload_follows_the_projects_assistant_first_setting(session):
    project = pairwise_project(session)
    body = io.BytesIO(orjson.dumps([{"context": _turns("assistant", "user"), "responses": ["a", "b"]}]))
    with pytest.raises(importing.BatchRefused) as refused:
        importing.import_now(session, project, body, "json", filename="items.json", actor_id=None)
    assert list(refused.value.errors) == ["line 1: context[1].role"]
    project_service.update_project(session, project, name=project.name, allow_assistant_first=True)
    body.seek(0)
    job = importing.import_now(session, project, body, "json", filename="items.json", actor_id=None)
    assert job.inserted == 1
