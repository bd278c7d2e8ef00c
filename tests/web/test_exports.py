"""Admin export pages: create a version, watch it finish, download it; bad input changes nothing."""

from __future__ import annotations

import re
import time

import orjson
from sqlalchemy import func, select

from app.models import AuditEvent, DatasetExport, utcnow
from app.services import exporting
from app.services import projects as project_service
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
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


def test_a_downloaded_file_is_named_by_the_version_number_its_pages_show(client, session):
    """Versions are numbered per project (v1, v2…); the export id (in URLs) is the installation's. A
    download is named by the number people see, not by the id."""
    _admin(client, session)
    project, _trainer = _project(session)
    other = make_label_project(session, items=0, slug="earlier-one")
    session.add(DatasetExport(project_id=other.id, version=1, format="raw", status="failed"))  # takes an id
    session.commit()
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    url = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "test_fraction": ""}).headers["Location"]
    _wait_done(client, url)
    export = session.scalars(select(DatasetExport).where(DatasetExport.project_id == project.id)).one()
    assert export.version == 1 and export.id != 1
    disposition = client.get(url + "/files/train.jsonl").headers["Content-Disposition"]
    assert "web-pairs-v1-trl-preference-train.jsonl" in disposition


def test_admin_builds_a_version_and_downloads_it(client, session):
    _admin(client, session)
    project, trainer = _project(session)
    page = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert 'data-testid="no-exports"' in page
    assert f"helpsteer — {exporting.FORMATS['helpsteer'].title} (not for this project)" in page
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    response = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "exclude_gold": "on", "margin": "on", "test_fraction": ""})
    assert response.status_code == 303
    url = response.headers["Location"]
    fragment = _wait_done(client, url)
    assert 'data-status="done"' in fragment and "train.jsonl" in fragment
    assert 'data-role="meta"' in fragment and 'data-role="items"' in fragment  # provenance and items, listed
    for name in ("train.meta.jsonl", "items.jsonl", "README.md", "manifest.json"):
        assert f'/files/{name}" download>' in fragment and client.get(f"{url}/files/{name}").status_code == 200
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
    refused = client.get(url + "/files/train.jsonl", headers={"If-Match": '"nope"'})
    assert refused.status_code == 412 and refused.get_data() == b""
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
    # each error is named as the form labels its field
    assert "Minimum item agreement</strong>: must be between 0 and 1" in page and "Submitted from</strong>: must be a date" in page
    assert 'name="min_agreement" min="0" max="1" step="0.05" value="2" aria-describedby="min-agreement-help" aria-invalid="true"' in page  # input kept
    response = client.post("/admin/projects/web-pairs/exports/", data={"csrf_token": token, "format": "helpsteer"})
    assert response.status_code == 422 and "helpsteer needs at least one rating question" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(DatasetExport)) == 0


def test_files_outside_the_manifest_and_unfinished_versions_are_404(client, session):
    _admin(client, session)
    project, _ = _project(session)
    export = DatasetExport(project_id=project.id, version=1, format="raw", filters={"format": "raw"}, status="running")
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
    export = DatasetExport(project_id=project.id, version=1, format="raw", status="failed", error="RuntimeError: disk full",
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


def test_the_form_offers_the_new_options_and_they_reach_the_version(client, session):
    _admin(client, session)
    _project(session)
    page = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert re.search(r'<select name="pairs"[^>]*><option value="consensus" selected>', page)  # the default, first
    for field in ('name="with_ids"', 'name="with_agreement"', 'name="validation_fraction"',
                  'type="datetime-local" step="1" name="as_of"', 'type="datetime-local" step="1" name="date_to"'):
        assert field in page
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    response = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "with_ids": "on", "with_agreement": "on",
        "validation_fraction": "0.1", "test_fraction": "0.2", "date_from": "2026-01-01",
        "date_to": "2026-12-06T10:00:30", "as_of": "2026-12-01T03:04"})  # what datetime-local inputs send
    assert response.status_code == 303
    export = session.scalars(select(DatasetExport)).one()
    assert {k: export.filters[k] for k in ("pairs", "with_ids", "with_agreement", "validation_fraction",
                                           "test_fraction", "date_from", "date_to", "as_of")} == {
        "pairs": "consensus", "with_ids": True, "with_agreement": True, "validation_fraction": 0.1,
        "test_fraction": 0.2, "date_from": "2026-01-01T00:00:00.000000Z", "date_to": "2026-12-06T10:00:30.999999Z",
        "as_of": "2026-12-01T03:04:00.000000Z"}
    _wait_done(client, response.headers["Location"])  # finished one way or another before the test ends


def test_the_form_offers_only_the_options_some_format_of_the_project_acts_on(client, session):
    """A label project has no pair rows: no pair mode, ranking strategy or margin on its form (its KTO
    rows take agreement and ids); a pairwise project has the pair options but no ranking strategy; a
    ranking project has all."""
    from tests.services.exporting.conftest import make_project as exporting_project

    _admin(client, session)
    _project(session)
    label = make_label_project(session, slug="web-labels")
    ranked = exporting_project(session, "ranking", [("r1", "Q", [{"id": "a", "text": "A"}, {"id": "b", "text": "B"},
                                                                 {"id": "c", "text": "C"}])], slug="web-ranks")
    fields = ('name="pairs"', 'name="ranking_pairs"', 'name="margin"', 'name="with_agreement"', 'name="with_ids"')

    def offered(slug):
        page = client.get(f"/admin/projects/{slug}/exports/").get_data(as_text=True)
        return [field for field in fields if field in page]

    assert offered(label.slug) == ['name="with_agreement"', 'name="with_ids"']
    assert offered("web-pairs") == ['name="pairs"', 'name="margin"', 'name="with_agreement"', 'name="with_ids"']
    assert offered(ranked.slug) == list(fields)
    token = csrf_token(client, f"/admin/projects/{label.slug}/exports/")
    refused = client.post(f"/admin/projects/{label.slug}/exports/",
                          data={"csrf_token": token, "format": "raw", "pairs": "per_annotation"})
    assert refused.status_code == 422 and "raw has no pair rows for it to choose" in refused.get_data(as_text=True)


def test_splits_that_leave_no_training_data_are_refused_on_the_form(client, session):
    _admin(client, session)
    _project(session)
    token = csrf_token(client, "/admin/projects/web-pairs/exports/")
    response = client.post("/admin/projects/web-pairs/exports/", data={
        "csrf_token": token, "format": "trl-preference", "validation_fraction": "0.5", "test_fraction": "0.5",
        "as_of": "tomorrow"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Validation split</strong>: test_fraction and validation_fraction together must stay below 1" in page
    assert "Data as it stood at</strong>: must be a date" in page
    assert 'name="validation_fraction" min="0" max="0.99" step="0.01" value="0.5"' in page  # kept as typed
    assert session.scalar(select(func.count()).select_from(DatasetExport)) == 0


def _empty_version(session, project) -> DatasetExport:
    export = DatasetExport(
        project_id=project.id, version=1, format="trl-preference", status="empty", filters={"format": "trl-preference"},
        finished_at=utcnow(), manifest={"files": [], "empty_reasons": [
            "min_agreement 0.9: 2 of 2 items agreed less", "no annotation was submitted before as_of"]})
    session.add(export)
    session.commit()
    return export


def test_an_empty_version_says_why_and_offers_no_download(client, session):
    _admin(client, session)
    project, _ = _project(session)
    export = _empty_version(session, project)
    url = f"/admin/projects/web-pairs/exports/{export.id}"
    detail = client.get(url).get_data(as_text=True)
    assert 'data-status="empty"' in detail and 'data-testid="export-empty"' in detail
    assert "min_agreement 0.9: 2 of 2 items agreed less" in detail and "before as_of" in detail
    assert "/files/" not in detail and "hx-get" not in detail  # nothing to download, nothing to poll
    progress = client.get(url + "/progress")
    assert progress.status_code == 286  # polling stops
    assert client.get(url + "/files/train.jsonl").status_code == 404
    assert client.get(url + "/files/manifest.json").status_code == 404
    history = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert re.search(r'<span class="tag tag-draft"[^>]*>empty</span>', history)


def test_an_unset_licence_is_flagged_where_versions_are_listed(app, client, session):
    admin = _admin(client, session)
    project, _ = _project(session)
    customer = make_user(session, "client")
    project_service.add_member(session, project, customer, "client")
    _empty_version(session, project)
    page = client.get("/admin/projects/web-pairs/exports/").get_data(as_text=True)
    assert 'data-testid="license-unset"' in page
    assert 'href="/admin/projects/web-pairs/edit#dataset">set one in the project settings' in page
    client = app.test_client()
    login(client, customer.email, PASSWORD)
    for url in ("/admin/projects/web-pairs/exports/", "/client/web-pairs"):
        page = client.get(url).get_data(as_text=True)
        assert 'data-testid="license-unset"' in page and "/edit#dataset" not in page  # clients cannot set it
    assert 'data-testid="empty-why"' in client.get("/client/web-pairs").get_data(as_text=True)
    project_service.update_project(session, project, name=project.name, license="cc-by-4.0", actor_id=admin.id)
    for url in ("/admin/projects/web-pairs/exports/", "/client/web-pairs"):
        assert 'data-testid="license-unset"' not in client.get(url).get_data(as_text=True)
