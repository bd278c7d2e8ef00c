"""Finding 6: the importer's checks know every write constraint of both databases, a failed job
rolls back first and says why, no job is ever left running, and SQLite's lock is held a chunk at a time."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import event, func, select

from app.db import get_db
from app.models import ImportJob, Item, utcnow
from app.services import importing
from app.services import projects as project_service
from app.services.presets import preset_questions
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user


def jsonl(*records) -> io.BytesIO:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def _nested(depth: int):
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


BAD_LINES = [
    ({"prompt": "p", "responses": ["a"], "priority": 2**40}, "priority"),
    ({"prompt": "p", "responses": ["a"], "priority": -(2**40)}, "priority"),
    ({"prompt": "p", "responses": ["a"], "metadata": _nested(300)}, "metadata"),
    ('{"prompt": "nul \\u0000 inside", "responses": ["a"]}', "prompt"),
    ('{"prompt": "p", "responses": ["a\\u0000b"]}', "responses[1]"),
    ('{"prompt": "p", "responses": ["a"], "metadata": {"k\\u0000": "v"}}', "metadata"),
    ('{"prompt": "p", "responses": ["a"], "metadata": {"k": "v\\u0000"}}', "metadata"),
    ('{"external_id": "x\\u0000y", "prompt": "p", "responses": ["a"]}', "external_id"),
    ({"prompt": "p" * 300_000, "responses": ["a"]}, "prompt"),
    ({"prompt": "p", "responses": [{"id": 'r" hx-get="/pwned', "text": "a"}]}, "responses[1].id"),
    ({"prompt": "p", "responses": [{"id": "ok", "text": "a", "model": "m" * 500}]}, "responses[1].model"),
]


@pytest.mark.parametrize(("line", "field"), BAD_LINES, ids=[f for _, f in BAD_LINES])
def test_a_line_the_database_would_refuse_is_a_line_error(session, line, field):
    project = make_label_project(session, items=0, slug="limits")
    report = importing.import_file(session, project, jsonl({"prompt": "fine", "responses": ["a"]}, line), "jsonl")
    assert not report.ok
    assert [(e.line, e.field) for e in report.errors] == [(2, field)], report.errors
    assert session.scalar(select(func.count(Item.id))) == 0


def test_a_csv_with_a_nul_byte_is_a_line_error(session):
    project = make_label_project(session, items=0, slug="limits")
    data = io.BytesIO(b"prompt,response_1\nfine,a\nbad\x00cell,b\n")
    report = importing.import_file(session, project, data, "csv")
    assert not report.ok and report.errors[0].line == 3
    assert session.scalar(select(func.count(Item.id))) == 0


def test_ranking_response_ids_keep_to_a_safe_charset(session):
    project = project_service.create_project(session, name="R", slug="r", status="active",
                                             questions=preset_questions("ranking"))
    session.commit()
    ok = {"prompt": "p", "responses": [{"id": "a.1:x_y-z", "text": "1"}, {"id": "b", "text": "2"}]}
    bad = {"prompt": "p", "responses": [{"id": "a b", "text": "1"}, {"id": "<b>", "text": "2"}]}
    report = importing.import_file(session, project, jsonl(ok, bad), "jsonl")
    assert [(e.line, e.field) for e in report.errors] == [(2, "responses[1].id")]


def _job(session, project, path, fmt="jsonl"):
    job = ImportJob(project_id=project.id, filename=os.path.basename(path), path=str(path), format=fmt,
                    bytes_total=os.path.getsize(path))
    session.add(job)
    session.commit()
    return job


def test_a_job_that_fails_while_writing_rolls_back_says_why_and_frees_the_lock(app, session, tmp_path, monkeypatch):
    project = make_label_project(session, items=0, slug="imp")
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"prompt": f"p{n}", "responses": ["a"]}) + b"\n" for n in range(5000)))
    job = _job(session, project, path)
    real_check = importing.ItemRules.check
    calls = {"n": 0}

    def check_then_fail(self, record):  # fault injection: the disk fills up half-way through the write
        calls["n"] += 1
        if calls["n"] > 5000 + 2500:
            raise OSError(28, "No space left on device " + "x" * 5000)
        return real_check(self, record)

    monkeypatch.setattr(importing.ItemRules, "check", check_then_fail)
    with app.app_context():
        factory = get_db().session_factory
    with pytest.raises(OSError):
        importing.run_import_job(factory, job.id)
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == "failed" and job.finished_at is not None
    assert "disk" in job.message and len(job.message) <= 1000
    assert "OSError" not in job.message and "Errno" not in job.message  # people read it, not Python
    # nothing half-imported stays behind, and the database takes writes at once
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 0
    make_label_project(session, items=1, slug="after")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL has no database-wide lock
def test_the_sqlite_write_lock_is_taken_one_chunk_at_a_time(app, session, tmp_path):
    """Items are committed in several transactions of at most one chunk each, so other writers get
    the database between chunks (one transaction for the whole file would hold it throughout)."""
    project = make_label_project(session, items=0, slug="imp")
    path = tmp_path / "items.jsonl"
    rows = importing.BATCH * 3 + 1
    path.write_bytes(b"".join(orjson.dumps({"prompt": f"p{n}", "responses": ["a"]}) + b"\n" for n in range(rows)))
    job = _job(session, project, path)
    with app.app_context():
        engine = get_db().engine
        factory = get_db().session_factory
    inserting, per_commit = {}, []

    def executed(conn, _cursor, statement, params, _context, many):
        if statement.lstrip().upper().startswith("INSERT INTO ITEMS"):
            inserting[id(conn)] = inserting.get(id(conn), 0) + (len(params) if many else 1)

    def committed(conn):
        if id(conn) in inserting:
            per_commit.append(inserting.pop(id(conn)))

    event.listen(engine, "after_cursor_execute", executed)
    event.listen(engine, "commit", committed)
    try:
        importing.run_import_job(factory, job.id)
    finally:
        event.remove(engine, "after_cursor_execute", executed)
        event.remove(engine, "commit", committed)
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == rows
    assert sum(per_commit) == rows and len(per_commit) >= 4 and max(per_commit) <= importing.BATCH


def test_a_job_failed_as_never_started_does_not_come_back_to_life(app, session, tmp_path):
    project = make_label_project(session, items=0, slug="late-start")
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"prompt": "p", "responses": ["a"]}\n')
    job = _job(session, project, path)
    job.status, job.message = "failed", "the import never started"
    session.commit()
    with app.app_context():
        importing.run_import_job(get_db().session_factory, job.id)
    session.expire_all()
    assert session.get(ImportJob, job.id).status == "failed"
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 0


def test_the_stalled_check_spares_a_job_that_moved_while_it_waited(app, session, tmp_path, monkeypatch):
    """The check reads a job as stalled, then waits for the write lock; meanwhile the import reports
    progress. The check must leave it running (and its items in place)."""
    project = make_label_project(session, items=0, slug="slow")
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"prompt": "p", "responses": ["a"]}\n')
    job = _job(session, project, path)
    job.status, job.started_at = "writing", utcnow() - timedelta(hours=2)
    job.progress_at = utcnow() - timedelta(hours=1)
    session.commit()
    with app.app_context():
        factory = get_db().session_factory
    real_begin = importing.begin_write

    def import_reports_first(s):
        with factory() as other:  # the running import, reporting while the check waits
            real_begin(other)
            other.execute(importing.update(ImportJob).where(ImportJob.id == job.id).values(progress_at=utcnow()))
            other.commit()
        real_begin(s)

    monkeypatch.setattr(importing, "begin_write", import_reports_first)
    with factory() as checker:
        assert importing.fail_stalled_imports(checker) == 0
    session.expire_all()
    assert session.get(ImportJob, job.id).status == "writing"


def test_pages_only_read_a_stalled_import_and_an_admin_stops_it(client, session, tmp_path):
    """Looking at a dead import changes nothing (no write on a GET); the admin's POST marks it failed
    and removes what it wrote; a live or finished one cannot be stopped (409)."""
    admin = make_user(session, "admin")
    project = make_label_project(session, items=0, slug="dead-import")
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"prompt": "p", "responses": ["a"]}\n')
    job = _job(session, project, path)
    job.status, job.started_at, job.progress_at = "writing", utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1)
    item = project_service.add_item(session, project, prompt="half written", responses=["a"], external_id="w1")
    item.import_id = job.id
    session.commit()
    login(client, admin.email, PASSWORD)
    for url in (f"/admin/imports/{job.id}", f"/admin/imports/{job.id}/progress", "/admin/projects/dead-import/import"):
        response = client.get(url)
        assert response.status_code in (200, 286), url
    session.rollback()
    assert session.scalar(select(ImportJob.status).where(ImportJob.id == job.id)) == "writing"  # nothing changed
    page = client.get(f"/admin/imports/{job.id}/progress")
    assert page.status_code == 286 and "looks stalled" in page.text  # polling stops; a button offers to stop it
    token = csrf_token(client, f"/admin/imports/{job.id}")
    stopped = client.post(f"/admin/imports/{job.id}/abandon", data={"csrf_token": token})
    assert stopped.status_code == 302
    session.rollback()  # a new snapshot: see what the request committed
    assert session.scalar(select(ImportJob.status).where(ImportJob.id == job.id)) == "failed"
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 0
    again = client.post(f"/admin/imports/{job.id}/abandon", data={"csrf_token": token})
    assert again.status_code == 409


def _upload(session, project, folder, data=b'{"prompt": "p", "responses": ["a"]}\n', actor_id=None):
    return importing.create_job(session, project, "items.jsonl", lambda path: path.write_bytes(data), folder, actor_id)


def test_an_upload_is_removed_however_its_job_ends(app, session, tmp_path, monkeypatch):
    """Done, refused line by line, failed while writing, abandoned as stalled: the file goes each time
    (a refused upload used to stay on disk for good, so repeated bad uploads filled it)."""
    project = make_label_project(session, items=0, slug="leftovers")
    folder = tmp_path / "imports"
    with app.app_context():
        factory = get_db().session_factory
    done = _upload(session, project, folder)
    refused = _upload(session, project, folder, b'{"prompt": "", "responses": ["a"], "surprise": 1}\n')
    for job in (done, refused):
        importing.run_import_job(factory, job.id)
    failing = _upload(session, project, folder, b'{"prompt": "q", "responses": ["a"]}\n')
    monkeypatch.setattr(importing, "write_items", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        importing.run_import_job(factory, failing.id)
    session.expire_all()
    assert [session.get(ImportJob, j.id).status for j in (done, refused, failing)] == ["done", "failed", "failed"]
    stalled = _upload(session, project, folder)
    stalled.status, stalled.started_at = "writing", utcnow() - timedelta(hours=2)
    stalled.progress_at = utcnow() - timedelta(hours=1)
    session.commit()
    assert importing.fail_stalled_imports(session) == 1
    assert list(folder.iterdir()) == []


def test_a_project_runs_a_few_imports_at_a_time(client, session, tmp_path):
    """Past MAX_RUNNING_IMPORTS waiting or running uploads of one project, another is a 409 and its
    bytes are not kept; a stalled one stops counting, and other projects are not held up."""
    admin = make_user(session, "admin")
    project = make_label_project(session, items=0, slug="busy")
    other = make_label_project(session, items=0, slug="quiet")
    folder = tmp_path / "imports"
    jobs = [_upload(session, project, folder) for _ in range(importing.MAX_RUNNING_IMPORTS)]
    with pytest.raises(importing.Conflict, match="imports of this project are under way"):
        _upload(session, project, folder)
    assert len(list(folder.iterdir())) == importing.MAX_RUNNING_IMPORTS
    _upload(session, other, folder)
    login(client, admin.email, PASSWORD)
    client.application.config["IMPORT_DIR"] = str(folder)
    token = csrf_token(client, "/admin/projects/busy/import")
    refused = client.post("/admin/projects/busy/import", data={
        "csrf_token": token, "file": (io.BytesIO(b'{"prompt": "p", "responses": ["a"]}\n'), "more.jsonl")})
    assert refused.status_code == 409 and "under way" in refused.text
    assert len(list(folder.iterdir())) == importing.MAX_RUNNING_IMPORTS + 1
    session.rollback()  # a new snapshot: the request wrote meanwhile
    jobs[0].status, jobs[0].created_at = "queued", utcnow() - timedelta(hours=2)  # never started: stalled
    session.commit()
    importing.fail_stalled_imports(session)
    assert _upload(session, project, folder).status == "queued"
