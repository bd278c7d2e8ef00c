"""Admin export pages: create a version, watch it finish, download it; bad input changes nothing."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import func, select

from app.models import AuditEvent, DatasetExport
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user
from tests.services.exporting.conftest import annotate, make_project, with_members


def _admin(client, session):
    admin = make_user(session, "admin")
    login(client, admin.email, PASSWORD)
    return admin


def _project(session):
    trainer = make_user(session, "trainer")
    project = make_project(session, "pairwise", [
        ("w1", "Q1", [{"id": "a", "text": "A1"}, {"id": "b", "text": "B1"}]),
        ("w2", "Q2", [{"id": "a", "text": "A2"}, {"id": "b", "text": "B2"}]),
    ], overlap=1, slug="web-pairs")
    with_members(session, project, [trainer])
    annotate(session, trainer, project, {"w1": {"preference": -2}, "w2": {"preference": 1}})
    return project, trainer


def _wait_done(client, url: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = client.get(url + "/progress")
        if response.status_code == 286:
            return response.get_data(as_text=True)
        time.sleep(0.1)
    raise AssertionError("export did not finish")


def test_admin_builds_a_version_and_downloads_it(client, session):
    _admin(client, session)
    project, trainer = _project(session)
    page = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert 'data-testid="no-exports"' in page
    assert "helpsteer — HelpSteer-style rubric ratings (not for this project)" in page
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    response = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "exclude_gold": "on", "margin": "on", "test_fraction": ""})
    assert response.status_code == 303
    url = response.headers["Location"]
    fragment = _wait_done(client, url)
    assert 'data-status="done"' in fragment and "train.jsonl" in fragment
    download = client.get(url + "/files/train.jsonl")
    assert download.status_code == 200 and download.mimetype == "application/x-ndjson"
    assert "web-pairs-v" in download.headers["Content-Disposition"]
    body = download.get_data()
    assert [orjson.loads(x) for x in body.splitlines()] == [
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1", "margin": 2.0},
        {"prompt": "Q2", "chosen": "B2", "rejected": "A2", "margin": 1.0}]
    assert download.headers["ETag"]
    partial = client.get(url + "/files/train.jsonl", headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206 and partial.get_data() == body[:10]  # a dropped download resumes
    detail = client.get(url).get_data(as_text=True)
    assert 'data-testid="dataset-card"' in detail and "Manifest" in detail and trainer.email not in detail
    history = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert history.count("data-export-id") == 1 and "trl-preference" in history
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export.create")) == 1


def test_bad_options_show_every_problem_and_create_nothing(client, session):
    _admin(client, session)
    _project(session)
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    response = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "min_agreement": "2", "date_from": "yesterday"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "min_agreement</strong>: must be between 0 and 1" in page and "date_from</strong>: must be a date" in page
    assert 'name="min_agreement" min="0" max="1" step="0.05" value="2" aria-invalid="true"' in page  # input kept
    response = client.post("/admin/projects/web-pairs/exports/", data={"csrf_token": token, "format": "helpsteer"})
    assert response.status_code == 422 and "helpsteer needs at least one rating question" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(DatasetExport)) == 0


def test_files_outside_the_manifest_and_unfinished_versions_are_404(client, session):
    _admin(client, session)
    project, _ = _project(session)
    export = DatasetExport(project_id=project.id, format="raw", filters={"format": "raw"}, status="running")
    session.add(export)
    session.commit()
    base = f"/admin/projects/web-pairs/exports/{export.id}"
    assert client.get(base + "/files/train.jsonl").status_code == 404
    assert client.get(base + "/progress").status_code == 200  # still polling
    assert client.get("/admin/projects/web-pairs/exports/999999").status_code == 404
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    assert client.post(base + "/retry", data={"csrf_token": token}).status_code == 409  # running, not stalled


def test_a_failed_version_can_be_run_again(client, session):
    _admin(client, session)
    project, _ = _project(session)
    export = DatasetExport(project_id=project.id, format="raw", status="failed", error="RuntimeError: disk full",
                           filters={"format": "raw", "exclude_gold": True})
    session.add(export)
    session.commit()
    url = f"/admin/projects/web-pairs/exports/{export.id}"
    assert "disk full" in client.get(url).get_data(as_text=True)
    response = client.post(url + "/retry", data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 303
    assert 'data-status="done"' in _wait_done(client, url)
    assert client.get(url + "/files/train.jsonl").status_code == 200


def test_reviewers_and_trainers_cannot_export(client, session):
    _project(session)
    reviewer = make_user(session, "reviewer")
    login(client, reviewer.email, PASSWORD)
    assert client.get("/admin/projects/web-pairs/exports/").status_code == 403
