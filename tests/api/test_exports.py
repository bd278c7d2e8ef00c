"""Dataset versions over the API: built in the background, followed by a status URL, listed, and
downloaded as streamed files (ETag, ranges) that match what the command line builds byte for byte;
clients see pseudonyms only."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.models import DatasetExport, utcnow
from app.services import exporting
from app.services import projects as project_service
from app.services.exporting.source import Pseudonyms
from tests.factories import make_user
from tests.services.exporting.conftest import annotate

from .conftest import token_for

URL = "/api/v1/projects/alpha/exports"


@pytest.fixture
def annotated(api_world, session):
    """world.project answered twice over by two trainers whose names and e-mails must never leak."""
    world = api_world.world
    second = make_user(session, "trainer", email="quentin.quillsby@pii.example", name="Quentin Quillsby")
    world.trainer.name = "Tess Trainerova"
    world.project.overlap = 2
    session.commit()
    project_service.add_member(session, world.project, second, "trainer")
    annotate(session, world.trainer, world.project, {f"it-{i}": {"label": "yes"} for i in range(1, 5)})
    annotate(session, second, world.project, {f"it-{i}": {"label": "no" if i % 2 else "yes"} for i in range(1, 5)})
    return [world.trainer, second]


def build(api, options: dict, as_="admin") -> dict:
    """Create a version over HTTP and follow its status URL until it has finished."""
    response = api.post(URL, as_=as_, json=options)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == body["status_url"] and body["status"] == "queued"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = api.get(body["status_url"], as_=as_).get_json()
        if status["status"] in ("done", "failed"):
            assert status["status"] == "done", status
            return status
        time.sleep(0.05)
    raise AssertionError(f"the export did not finish: {status}")


def cli_build(app, slug: str, fmt: str, out: Path) -> bytes:
    result = app.test_cli_runner().invoke(args=["export", slug, "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.parametrize(("fmt", "name"), [("raw", "train.jsonl"), ("parquet", "train.parquet")])
def test_the_admin_builds_a_version_over_http_and_the_file_matches_the_cli_byte_for_byte(
        app, api, annotated, tmp_path, fmt, name):
    version = build(api, {"format": fmt})
    files = {f["name"]: f for f in version["files"]}
    assert {n for n, f in files.items() if f["role"] == "data"} == {name}
    assert {f["role"] for f in files.values()} >= {"data", "meta", "items", None}  # None: the manifest and card
    assert {"manifest.json", "README.md", "items.jsonl", "train.meta.jsonl"} <= set(files)
    assert version["manifest"]["format"] == fmt and version["manifest"]["counts"]["rows"] == 8
    download = api.get(files[name]["url"])
    assert download.status_code == 200
    assert download.mimetype == exporting.media_type(name)
    assert f"alpha-v{version['version']}-{fmt}-{name}" in download.headers["Content-Disposition"]
    served = download.get_data()
    assert len(served) == files[name]["bytes"] == int(download.headers["Content-Length"])
    assert hashlib.sha256(served).hexdigest() == files[name]["sha256"] == version["sha256"]
    # the command line builds its own version from the same data: the data file is the same, byte for byte
    built = cli_build(app, "alpha", fmt, tmp_path / f"cli-{name}")
    assert built == served
    if fmt == "parquet":
        assert pq.read_table(tmp_path / f"cli-{name}").num_rows == 8


def test_downloads_carry_an_etag_and_serve_ranges(api, annotated):
    version = build(api, {"format": "raw"})
    url = version["files"][0]["url"]
    whole = api.get(url, buffered=False)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.is_streamed  # sent block by block, not read into memory first
    body = whole.get_data()
    etag = whole.headers["ETag"]
    unchanged = api.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b"" and unchanged.headers["ETag"] == etag
    assert api.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200
    # Preconditions that fail send nothing but the 412; those that hold send the file.
    for failing in ({"If-Match": '"nope"'}, {"If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}):
        refused = api.get(url, headers=failing)
        assert refused.status_code == 412 and refused.get_data() == b"", failing
    for holding in ({"If-Match": etag}, {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        assert api.get(url, headers=holding).get_data() == body, holding
    part = api.get(url, headers={"Range": "bytes=10-29"})
    assert part.status_code == 206 and part.get_data() == body[10:30]
    assert part.headers["Content-Range"] == f"bytes 10-29/{len(body)}"
    rest = api.get(url, headers={"Range": f"bytes={len(body) - 5}-"})
    assert rest.status_code == 206 and rest.get_data() == body[-5:]
    beyond = api.get(url, headers={"Range": f"bytes={len(body) + 10}-{len(body) + 20}"})
    assert beyond.status_code == 416 and set(beyond.get_json()["error"]) == {"code", "message", "details"}
    manifest = api.get(next(f["url"] for f in version["files"] if f["name"] == "manifest.json"))
    assert manifest.mimetype == "application/json" and manifest.get_json()["export_id"] == version["id"]
    card = api.get(next(f["url"] for f in version["files"] if f["name"] == "README.md"))
    assert card.mimetype == "text/markdown" and b"# " in card.get_data()
    assert api.get(f"/api/v1/exports/{version['id']}/files/secrets.txt").status_code == 404
    assert api.get(f"/api/v1/exports/{version['id']}/files/..%2Fmanifest.json").status_code == 404


def test_a_client_builds_and_downloads_a_version_that_names_no_trainer(app, api, api_world, annotated):
    version = build(api, {"format": "raw", "test_fraction": 0.5}, as_="client")
    seen = [orjson.dumps(version), api.get(URL, as_="client").get_data()]
    rows = []
    for f in version["files"]:
        data = api.get(f["url"], as_="client")
        assert data.status_code == 200
        seen.append(data.get_data())
        if f["role"] == "data":
            rows += [orjson.loads(line) for line in data.get_data().splitlines()]
    assert {f["name"] for f in version["files"] if f["role"] == "data"} == {"train.jsonl", "test.jsonl"}
    assert {"train.meta.jsonl", "test.meta.jsonl", "items.jsonl", "manifest.json", "README.md"} <= {
        f["name"] for f in version["files"]}  # every file, provenance included, names no trainer either
    text = b"\n".join(seen).decode()
    for trainer in annotated:
        for word in (trainer.email, trainer.name, *trainer.name.split(), trainer.email.split("@")[0]):
            assert word not in text
    pseudonym = Pseudonyms(app.config["SECRET_KEY"])
    assert len(rows) == 8 and {r["trainer"] for r in rows} == {pseudonym(t.id) for t in annotated}
    assert "Annotator pool: 2 people" in text


def test_who_may_build_list_and_download_versions(api, api_world, annotated, session):
    world = api_world.world
    version = build(api, {"format": "raw"})
    urls = [URL, f"/api/v1/exports/{version['id']}", version["files"][0]["url"]]
    other_client = make_user(session, "client", name="Oscar Otherclient")
    project_service.add_member(session, world.other, other_client, "client")
    api.tokens["other_client"] = token_for(session, other_client)
    for url in urls:
        assert api.get(url, as_="client").status_code == 200
        assert api.get(url, as_="admin_ro").status_code == 200
        assert api.get(url, as_="other_client").status_code == 404  # another project's client: it does not exist
        for caller in ("trainer", "reviewer", "applicant"):
            assert api.get(url, as_=caller).status_code == 403
        assert api.get(url, as_="anonymous").status_code == 401
    assert api.post(URL, as_="admin_ro", json={"format": "raw"}).status_code == 403  # read-only: no new version
    assert api.post(URL, as_="other_client", json={"format": "raw"}).status_code == 404
    assert api.post(URL, as_="trainer", json={"format": "raw"}).status_code == 403
    assert api.get("/api/v1/projects/beta/exports", as_="other_client").status_code == 200
    assert api.get("/api/v1/exports/999999").status_code == 404


def test_bad_options_are_refused_by_the_forms_parser_and_create_nothing(api, api_world, session):
    def refused(options):
        response = api.post(URL, json=options)
        assert response.status_code == 422, response.get_json()
        return response.get_json()["error"]["details"]

    assert "format" in refused({"format": "helpsteer"})  # this project has no rubric questions
    assert "format" in refused({"format": "no-such-format"})
    assert "date_to" in refused({"format": "raw", "date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert "date_from" in refused({"format": "raw", "date_from": "1999-12-31"})
    assert "min_agreement" in refused({"format": "raw", "min_agreement": 2})
    assert "test_fraction" in refused({"format": "raw", "test_fraction": 1})
    assert "pairs" in refused({"format": "raw", "pairs": "sideways"})
    assert "surprise" in refused({"format": "raw", "surprise": True})
    session.commit()
    assert session.scalar(select(func.count(DatasetExport.id))) == 0


def test_a_version_that_is_not_finished_has_no_files_yet(api, api_world, session):
    export = exporting.create_export(session, api_world.world.project, {"format": "raw"}, api_world.world.admin.id)
    status = api.get(f"/api/v1/exports/{export.id}").get_json()
    assert status["status"] == "queued" and status["files"] == [] and status["manifest"] is None
    assert status["percent"] == 0 and status["stalled"] is False
    assert api.get(f"/api/v1/exports/{export.id}/files/train.jsonl").status_code == 404


def _made_and_failed(session, project) -> int:
    """A version that is no longer pending (a project builds only a few at a time)."""
    export = exporting.create_export(session, project, {"format": "raw"}, None)
    export.status = "failed"
    session.commit()
    return export.id


def test_a_project_builds_a_few_versions_at_a_time(api, api_world, session):
    """Anyone who may ask for a version (a client too) cannot queue without end: past three queued or
    running, a 409 until one is done; another project is not held up, and a stalled one stops counting."""
    project, client = api_world.world.project, api_world.client_user.id
    queued = [exporting.create_export(session, project, {"format": "raw"}, client) for _ in range(3)]
    refused = api.post(URL, json={"format": "raw"}, as_="client")
    assert refused.status_code == 409 and "3 versions of this project asked for by its clients are being built" in \
        refused.get_json()["error"]["message"]
    assert exporting.create_export(session, api_world.world.other, {"format": "raw"}, client).status == "queued"
    assert api.post(URL, json={"format": "raw"}, as_="admin").status_code == 202  # the admins' own slots
    queued[0].status = "done"
    session.commit()
    assert exporting.create_export(session, project, {"format": "raw"}, client).status == "queued"
    queued[1].progress_at = queued[1].created_at = utcnow() - timedelta(minutes=10)  # stopped reporting
    session.commit()
    assert exporting.create_export(session, project, {"format": "raw"}, client).status == "queued"
    assert session.scalar(select(func.count(DatasetExport.id)).where(DatasetExport.project_id == project.id)) == 6


def test_versions_are_numbered_per_project(api, api_world, session):
    """v1, v2… in each project, whatever other projects made meanwhile: the number pages, cards and
    citations use."""
    first = _made_and_failed(session, api_world.world.project)
    _made_and_failed(session, api_world.world.other)
    second = _made_and_failed(session, api_world.world.project)
    listed = {v["id"]: v["version"] for v in api.get(URL).get_json()["data"]}
    assert listed == {first: 1, second: 2}
    assert api.get(f"/api/v1/exports/{second}").get_json()["version"] == 2


def test_versions_are_listed_newest_first_by_cursor(api, api_world, session):
    made = [_made_and_failed(session, api_world.world.project) for _ in range(5)]
    exporting.create_export(session, api_world.world.other, {"format": "raw"}, None)
    seen, cursor = [], None
    while True:
        page = api.get(URL + "?limit=2" + (f"&cursor={cursor}" if cursor else ""), as_="client").get_json()
        assert len(page["data"]) <= 2
        seen += [v["id"] for v in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == sorted(made, reverse=True)


@pytest.fixture
def served(app):
    """The app on a free local port, for clients that speak real HTTP."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_a_version_loads_straight_from_the_server_in_datasets_with_the_token(api, api_world, annotated, served,
                                                                              tmp_path):
    datasets = pytest.importorskip("datasets")
    version = build(api, {"format": "raw"}, as_="client")
    url = served + urlsplit(version["files"][0]["url"]).path
    token = {"headers": {"Authorization": f"Bearer {api_world.tokens['client']}"}}
    loaded = datasets.load_dataset("json", data_files=url, split="train", cache_dir=str(tmp_path / "hf"),
                                   storage_options=token)
    assert len(loaded) == 8 and set(loaded.column_names) >= {"item_id", "trainer", "answers"}
    with pytest.raises(FileNotFoundError):  # without the token the file is not there for anyone
        datasets.load_dataset("json", data_files=url, split="train", cache_dir=str(tmp_path / "hf-anonymous"))


def settle(api, export_id: int) -> str:
    """Wait until a version's background build has finished, whichever way (so no build outlives its test)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = api.get(f"/api/v1/exports/{export_id}").get_json()["status"]
        if status not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"export {export_id} did not finish")


def test_the_new_options_reach_the_version_as_the_form_sends_them(api, api_world, session):
    idle = api.post(URL, json={"format": "raw", "with_ids": True, "margin": True})  # raw rows have their ids
    assert idle.status_code == 422 and set(idle.get_json()["error"]["details"]) == {"with_ids", "margin"}
    response = api.post(URL, json={
        "format": "raw", "validation_fraction": 0.1, "test_fraction": 0.1,
        "date_from": "2026-01-01", "date_to": "2026-03-01", "as_of": "2026-03-01T12:00:00.250000Z"})
    assert response.status_code == 202, response.get_json()
    session.commit()
    export = session.get(DatasetExport, response.get_json()["export_id"])
    assert export.filters["pairs"] == "consensus"  # the default
    assert {k: export.filters[k] for k in ("validation_fraction", "date_from", "date_to", "as_of")} == {
        "validation_fraction": 0.1,
        "date_from": "2026-01-01T00:00:00.000000Z",
        "date_to": "2026-03-01T23:59:59.999999Z",  # a bare day takes the whole day
        "as_of": "2026-03-01T12:00:00.250000Z"}
    instant = api.post(URL, json={"format": "raw", "date_to": "2026-03-01T08:30:00.5+01:00"})
    assert instant.status_code == 202
    session.commit()
    assert session.get(DatasetExport, instant.get_json()["export_id"]).filters["date_to"] == "2026-03-01T07:30:00.500000Z"
    for made in (response, instant):
        settle(api, made.get_json()["export_id"])


def test_bad_instants_and_splits_are_refused_by_field(api, api_world, session):
    def details(options):
        response = api.post(URL, json={"format": "raw", **options})
        assert response.status_code == 422, response.get_json()
        return response.get_json()["error"]["details"]

    assert list(details({"date_to": "March"})) == ["date_to"]
    assert list(details({"as_of": "soon"})) == ["as_of"]
    assert "an offset such as +02:00" in details({"as_of": "yesterday"})["as_of"]  # the parser's words, as date_from's
    assert list(details({"validation_fraction": 0.6, "test_fraction": 0.4})) == ["validation_fraction"]
    assert list(details({"with_ids": "sometimes"})) == ["with_ids"]
    session.commit()
    assert session.scalar(select(func.count(DatasetExport.id))) == 0


def test_an_empty_version_reports_why_and_has_no_files(api, api_world, session):
    reasons = ["min_agreement 0.9: 4 of 4 items agreed less"]
    export = DatasetExport(project_id=api_world.world.project.id, version=1, format="raw", status="empty",
                           filters={"format": "raw"}, manifest={"files": [], "empty_reasons": reasons})
    session.add(export)
    session.commit()
    status = api.get(f"/api/v1/exports/{export.id}", as_="client").get_json()
    assert status["status"] == "empty" and status["empty_reasons"] == reasons and status["files"] == []
    assert status["manifest"]["empty_reasons"] == reasons
    listed = api.get(URL, as_="client").get_json()["data"]
    assert [(v["id"], v["status"], v["files"]) for v in listed] == [(export.id, "empty", [])]
    assert api.get(f"/api/v1/exports/{export.id}/files/train.jsonl").status_code == 404


def test_the_document_lists_every_status_and_the_new_options():
    from app.models import EXPORT_STATUSES
    from app.web.api.exports import ExportCreate, ExportSummary

    assert ExportSummary.model_json_schema()["properties"]["status"]["enum"] == list(EXPORT_STATUSES)
    assert "empty" in EXPORT_STATUSES
    assert {"with_ids", "with_agreement", "validation_fraction", "as_of"} <= set(ExportCreate.model_fields)
