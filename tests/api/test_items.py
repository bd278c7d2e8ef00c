"""Items over the API: a batch is checked like an upload (all or nothing, every error by line and
field), small ones are imported at once, large ones run as an import job; items are listed by cursor."""

from __future__ import annotations

import io
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.models import AuditEvent, ImportJob, Item, Webhook
from app.services import importing, webhooks
from app.services import projects as project_service
from tests.factories import make_user
from tests.receiver import Receiver, drain

from .conftest import token_for

URL = "/api/v1/projects/alpha/items"


def good(n: int, start: int = 1, prefix: str = "new") -> list[dict]:
    return [{"external_id": f"{prefix}-{i}", "prompt": f"Question {i}?", "responses": [f"Answer {i}"],
             "metadata": {"batch": "api", "i": i}} for i in range(start, start + n)]


def push(api, items, as_="admin", content_type="application/json", url=URL, **kwargs):
    if content_type == "application/x-ndjson":
        body = b"\n".join(orjson.dumps(i) for i in items) + b"\n"
    else:
        body = orjson.dumps(items)
    return api.post(url, as_=as_, data=body, content_type=content_type, **kwargs)


def item_count(session, project) -> int:
    session.commit()  # a fresh read: the requests wrote in sessions of their own
    return session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id))


def wait_for_import(api, url: str, as_="admin") -> dict:
    """Poll an import's status until it has finished (in-process jobs run in a thread of the test)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = api.get(url, as_=as_).get_json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"the import did not finish: {body}")


def test_a_small_json_array_is_imported_at_once(api, api_world, session):
    project = api_world.world.project
    before = item_count(session, project)
    response = push(api, good(3))
    assert response.status_code == 201
    body = response.get_json()
    assert body["imported"] == 3 and body["updated"] == 0 and body["skipped"] == 0 and body["lines"] == 3
    assert response.headers["Location"] == body["status_url"]
    assert body["status_url"].endswith(f"/api/v1/imports/{body['import_id']}")
    assert item_count(session, project) == before + 3
    job = session.get(ImportJob, body["import_id"])
    assert job.status == "done" and job.inserted == 3 and job.created_by == api_world.world.admin.id
    items = session.scalars(select(Item).where(Item.import_id == job.id).order_by(Item.id)).all()
    assert [i.external_id for i in items] == ["new-1", "new-2", "new-3"]
    assert items[0].context == [{"role": "user", "content": "Question 1?"}] and items[0].meta == {"batch": "api", "i": 1}
    status = api.get(body["status_url"]).get_json()
    assert status["status"] == "done" and status["imported"] == 3 and status["percent"] == 100
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "items.import")) == 1


def test_a_client_pushes_json_lines(api, api_world, session):
    response = push(api, good(2), as_="client", content_type="application/x-ndjson")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["imported"] == 2
    job = session.get(ImportJob, response.get_json()["import_id"])
    assert job.format == "jsonl" and job.created_by == api_world.client_user.id
    # the same batch again: known external ids are skipped, never duplicated
    again = push(api, good(2), as_="client", content_type="application/x-ndjson").get_json()
    assert again["imported"] == 0 and again["skipped"] == 2


def test_only_an_admin_sets_gold_answers(app, api, api_world, session):
    """Gold decides trainers' accuracy and pauses them: a client's line with gold is refused, inline or
    as a job, and so is a client's update of a gold item; an admin's goes in."""
    gold = [{**good(1, prefix="gold")[0], "gold": {"label": "yes"}}]
    refused = push(api, gold, as_="client")
    assert refused.status_code == 422, refused.get_json()
    assert "only an admin sets gold answers" in str(refused.get_json()["error"])
    app.config["API_INLINE_ITEMS_BYTES"] = 10  # the same through an import job
    queued = push(api, gold, as_="client")
    assert queued.status_code == 202
    status = wait_for_import(api, queued.get_json()["status_url"], as_="client")
    assert status["status"] == "failed" and [e["field"] for e in status["errors"]] == ["gold"]
    app.config["API_INLINE_ITEMS_BYTES"] = 1 << 20
    assert push(api, gold).status_code == 201  # the admin's
    session.commit()
    assert session.scalar(select(Item.is_gold).where(Item.external_id == "gold-1")) is True
    plain = [{k: v for k, v in gold[0].items() if k != "gold"}]  # the client would turn it into work
    changed = push(api, plain, as_="client", url=URL + "?update=true")
    assert changed.status_code == 422 and "is a gold item" in str(changed.get_json()["error"])
    session.commit()
    assert session.scalar(select(Item.is_gold).where(Item.external_id == "gold-1")) is True


def test_update_true_updates_known_items(api, api_world, session):
    assert push(api, good(1)).status_code == 201
    changed = [{**good(1)[0], "prompt": "Question one, reworded?"}]
    body = push(api, changed, url=URL + "?update=true").get_json()
    assert body["updated"] == 1 and body["imported"] == 0
    session.commit()
    item = session.scalar(select(Item).where(Item.external_id == "new-1"))
    assert item.context == [{"role": "user", "content": "Question one, reworded?"}]
    assert push(api, changed, url=URL + "?update=maybe").status_code == 422
    assert push(api, changed, url=URL + "?surprise=1").status_code == 422


BAD_BATCH = [
    {"external_id": "ok-1", "prompt": "Fine", "responses": ["Fine too"]},
    {"external_id": "bad-2", "context": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"},
                                        {"role": "user", "content": "?"}], "responses": ["R"]},
    {"external_id": "bad-3", "prompt": "", "responses": ["R"], "priority": "high", "surprise": 1},
    {"external_id": "ok-4", "prompt": "Fine", "responses": ["Also fine"]},
    {"external_id": "ok-1", "prompt": "Again", "responses": ["R"]},
    {"prompt": "Responses that are not a list", "responses": "R"},
    "not an object",
]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_bad_item_batch_returns_422_with_every_error_and_imports_nothing(api, api_world, session, content_type):
    project = api_world.world.project
    before = item_count(session, project)
    jobs_before = session.scalar(select(func.count(ImportJob.id)))
    response = push(api, BAD_BATCH, content_type=content_type)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    # exactly what the importer says of the same items as a JSONL file, every error keyed by line and field
    jsonl = io.BytesIO(b"\n".join(orjson.dumps(i) for i in BAD_BATCH))
    report = importing.validate_file(session, project, jsonl, "jsonl")
    session.rollback()
    expected = {e.where: e.message for e in report.errors}
    assert error["details"] == expected
    assert {"line 2: context[2].role", "line 3: prompt", "line 3: priority", "line 3: surprise",
            "line 5: external_id", "line 6: responses", "line 7"} == set(expected)
    assert "line 1" not in str(sorted(expected)) and "line 4" not in str(sorted(expected))
    assert f"{report.error_count} problem(s) found; nothing was imported" in error["message"]
    assert item_count(session, project) == before
    assert session.scalar(select(func.count(ImportJob.id))) == jobs_before


def test_errors_are_capped_as_the_importer_caps_them(api, api_world, session):
    project = api_world.world.project
    before = item_count(session, project)
    batch = [{"external_id": f"x{i}", "prompt": "", "responses": ["R"]} for i in range(importing.MAX_REPORTED_ERRORS + 50)]
    error = push(api, batch).get_json()["error"]
    assert len(error["details"]) == importing.MAX_REPORTED_ERRORS
    assert f"{importing.MAX_REPORTED_ERRORS + 50} problem(s) found" in error["message"]
    assert f"the first {importing.MAX_REPORTED_ERRORS} are listed" in error["message"]
    assert item_count(session, project) == before


@pytest.mark.parametrize(("body", "key"), [
    (b'{"prompt": "an object, not an array"}', "line 1"),
    (b'[{"prompt": "Q", "responses": ["R"]},', "line 2"),
    (b'[{"prompt": "Q", "responses": ["R"]}] trailing', "line 2"),
    (b'[{"prompt": "Q", "responses": ["R"]}, {"prompt": }]', "line 2"),
    (b'[{"prompt": "Q", "responses": ["R"]},,{"prompt": "Q2", "responses": ["R"]}]', "line 2"),
    (b"[]", "line 1"),
    (b"", "line 1"),
])
def test_a_body_that_is_not_a_clean_array_is_refused_by_line(api, api_world, session, body, key):
    before = item_count(session, api_world.world.project)
    response = api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 422
    assert key in response.get_json()["error"]["details"], response.get_json()
    assert item_count(session, api_world.world.project) == before


def test_other_content_types_are_refused(api):
    response = api.post(URL, data=b"external_id,prompt\n1,Q\n", content_type="text/csv")
    assert response.status_code == 415
    assert "application/x-ndjson" in response.get_json()["error"]["message"]


def test_the_json_body_cap_does_not_apply_but_the_upload_limit_does(app, api, api_world, session):
    items = [{"external_id": f"big-{i}", "prompt": f"{i} " + "Q" * 1000, "responses": ["R" * 1000]} for i in range(200)]
    body = orjson.dumps(items)
    assert len(body) > 256 * 1024  # larger than any other JSON body may be
    app.config["API_INLINE_ITEMS_BYTES"] = len(body)
    response = api.post(URL, data=body, content_type="application/json")
    assert response.status_code == 201 and response.get_json()["imported"] == 200
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    too_big = api.post(URL, data=body, content_type="application/json")
    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"] == "too_large"


def test_a_large_body_runs_as_an_import_job_with_a_status_url_and_then_the_items_are_there(app, api, api_world, session):
    project = api_world.world.project
    before = item_count(session, project)
    app.config["API_INLINE_ITEMS_BYTES"] = 500
    batch = good(40, prefix="job")
    response = push(api, batch, as_="client")
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == body["status_url"] and body["status"] == "queued"
    status = wait_for_import(api, body["status_url"], as_="client")
    assert status["status"] == "done", status
    assert status["imported"] == 40 and status["lines"] == 40 and status["format"] == "json" and status["errors"] == []
    assert item_count(session, project) == before + 40
    listed, cursor = [], None
    while True:
        page = api.get(URL + "?limit=50" + (f"&cursor={cursor}" if cursor else ""), as_="client").get_json()
        listed += [i["external_id"] for i in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert [f"job-{i}" for i in range(1, 41)] == [x for x in listed if x.startswith("job-")]
    job = session.get(ImportJob, body["import_id"])
    assert job.created_by == api_world.client_user.id


def test_a_large_bad_body_fails_as_a_job_with_every_error_by_line(app, api, api_world, session):
    project = api_world.world.project
    before = item_count(session, project)
    app.config["API_INLINE_ITEMS_BYTES"] = 100
    response = push(api, BAD_BATCH, content_type="application/x-ndjson")
    assert response.status_code == 202
    status = wait_for_import(api, response.get_json()["status_url"])
    assert status["status"] == "failed" and "nothing was imported" in status["message"]
    jsonl = io.BytesIO(b"\n".join(orjson.dumps(i) for i in BAD_BATCH))
    report = importing.validate_file(session, project, jsonl, "jsonl")
    session.rollback()
    assert status["errors"] == [e.as_dict() for e in report.errors] and status["error_count"] == report.error_count
    assert item_count(session, project) == before


def test_items_are_listed_by_cursor_and_only_admins_see_gold_answers(api, api_world, session):
    project = api_world.world.project
    gold = [{"external_id": "gold-1", "prompt": "Is the sky blue?", "responses": ["Yes"], "gold": {"label": "yes"}}]
    assert push(api, gold).status_code == 201
    seen, cursor = [], None
    while True:
        page = api.get(URL + "?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        if not (cursor := page["next_cursor"]):
            break
    assert [i["id"] for i in seen] == sorted(i["id"] for i in seen)
    assert [i["external_id"] for i in seen] == ["it-1", "it-2", "it-3", "it-4", "gold-1"]
    admin_gold = seen[-1]
    assert admin_gold["is_gold"] is True and admin_gold["gold"] == {"label": "yes"}
    assert admin_gold["responses"] == [{"id": "r1", "text": "Yes", "model": None}] and admin_gold["done_count"] == 0
    client_view = api.get(URL + "?limit=200", as_="client").get_json()["data"]
    assert client_view[-1]["is_gold"] is True and client_view[-1]["gold"] is None
    assert all(i["gold"] is None for i in client_view)
    assert api.get(URL + "?cursor=nonsense").status_code == 422
    assert len(seen) == item_count(session, project)


def test_who_may_push_list_and_follow_items(api, api_world, session):
    world = api_world.world
    job = push(api, good(1)).get_json()
    status_url = f"/api/v1/imports/{job['import_id']}"
    # a client of another project: alpha does not exist for them
    other_client = make_user(session, "client", name="Oscar Otherclient")
    project_service.add_member(session, world.other, other_client, "client")
    api.tokens["other_client"] = token_for(session, other_client)
    assert push(api, good(1, prefix="theirs"), as_="other_client").status_code == 404
    assert api.get(URL, as_="other_client").status_code == 404
    assert api.get(status_url, as_="other_client").status_code == 404
    assert api.get("/api/v1/projects/beta/items", as_="other_client").status_code == 200
    # trainers and reviewers are not for items, even in their own project
    for caller in ("trainer", "reviewer"):
        assert push(api, good(1, prefix=caller), as_=caller).status_code == 403
        assert api.get(URL, as_=caller).status_code == 403
        assert api.get(status_url, as_=caller).status_code == 403
    # a read-only token reads but does not push
    assert push(api, good(1, prefix="ro"), as_="admin_ro").status_code == 403
    assert api.get(status_url, as_="admin_ro").status_code == 200
    assert api.get("/api/v1/imports/999999").status_code == 404


def test_an_import_of_another_project_is_not_found_for_a_client(api, api_world, session):
    job = push(api, good(1), url="/api/v1/projects/beta/items").get_json()
    assert api.get(f"/api/v1/imports/{job['import_id']}").status_code == 200
    assert api.get(f"/api/v1/imports/{job['import_id']}", as_="client").status_code == 404


# --- the JSON array reader behind the body ------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def read_array(body: bytes, chunk: int) -> list:
    saved, importing.ARRAY_CHUNK = importing.ARRAY_CHUNK, chunk
    try:
        return list(importing.read_records(io.BytesIO(body), "json"))
    finally:
        importing.ARRAY_CHUNK = saved


@settings(max_examples=200, deadline=None, database=None)
@given(items=st.lists(JSON_VALUES, max_size=8), indent=st.booleans(), chunk=st.sampled_from([1, 3, 64, 1 << 16]))
def test_an_array_is_read_item_by_item_whatever_its_layout_and_blocks(items, indent, chunk):
    body = orjson.dumps(items, option=orjson.OPT_INDENT_2 if indent else 0)
    read = read_array(body, chunk)
    assert [number for number, _, _ in read] == list(range(1, len(items) + 1))
    assert [value for _, _, value in read] == items
    assert [position for _, position, _ in read] == sorted(position for _, position, _ in read)


BODY_PARTS = [b"[", b"]", b"{", b"}", b",", b'"', b"\\", b" ", b"\n", b"1", b'"a"', b":", b"null", "é".encode()]


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=100) | st.lists(st.sampled_from(BODY_PARTS), max_size=40).map(b"".join),
       chunk=st.sampled_from([1, 2, 1 << 16]))
def test_any_body_is_read_to_its_end_with_its_items_numbered_in_turn(body, chunk):
    def plain(read):
        return [(n, v.problems if isinstance(v, importing.LineProblems) else v) for n, _, v in read]

    read = plain(read_array(body, chunk))
    assert [number for number, _ in read] == list(range(1, len(read) + 1))
    assert read == plain(read_array(body, 1 << 16))  # however the body arrives, the same items and problems


def test_an_inline_import_announces_itself_like_an_import_job(app, api, api_world, session):
    receiver = Receiver()
    try:
        hook = Webhook(project_id=api_world.world.project.id, url=receiver.url, secret="whsec_items",
                       events=["import.completed"], created_by=api_world.world.admin.id)
        session.add(hook)
        session.commit()
        job = push(api, good(2)).get_json()
        got = receiver.wait_for(1)
        drain(app)
        assert webhooks.verify(hook.secret, got[0].headers["Groundwork-Signature"], got[0].body)
        assert orjson.loads(got[0].body)["data"] == {"import_id": job["import_id"], "lines": 2, "inserted": 2,
                                                     "updated": 0, "skipped": 0}
        assert push(api, BAD_BATCH).status_code == 422
        drain(app)
        assert len(receiver.requests) == 1  # a refused batch announces nothing
    finally:
        receiver.close()
