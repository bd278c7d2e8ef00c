"""Exports as background jobs: in-process, through RQ, and a worker killed with SIGKILL half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.db import get_db
from app.models import Annotation, Assignment, DatasetExport, Item, utcnow
from app.services import projects as project_service
from app.services.exporting import create_export, run_export
from app.services.presets import preset_questions
from tasks import enqueue
from tasks.jobs import build_export
from tests.factories import make_user


def _big_pairs_project(app, items: int) -> int:
    """A pairwise project with one annotation per item, written in bulk (set-up, not under test)."""
    with app.app_context():
        session = get_db().session_factory()
        trainer = make_user(session, "trainer")
        project = project_service.create_project(session, name="Kill me", slug="kill-me", status="active",
                                                 questions=preset_questions("pairwise"))
        session.commit()
        now = utcnow()
        session.execute(insert(Item), [
            {"project_id": project.id, "external_id": f"k{n}", "context": [{"role": "user", "content": f"Q{n}"}],
             "responses": [{"id": "a", "text": f"A{n}"}, {"id": "b", "text": f"B{n}"}], "meta": {},
             "is_gold": False, "priority": 0, "done_count": 1, "active_count": 0, "is_open": False}
            for n in range(items)])
        item_ids = list(session.scalars(select(Item.id).where(Item.project_id == project.id).order_by(Item.id)))
        session.execute(insert(Assignment), [
            {"item_id": i, "project_id": project.id, "trainer_id": trainer.id, "status": "submitted",
             "assigned_at": now, "expires_at": now, "active_seconds": 30} for i in item_ids])
        assignments = dict(session.execute(select(Assignment.item_id, Assignment.id)
                                           .where(Assignment.project_id == project.id)).all())
        session.execute(insert(Annotation), [
            {"assignment_id": assignments[i], "item_id": i, "project_id": project.id, "trainer_id": trainer.id,
             "answers": {"preference": -1 if n % 3 else 2}, "submitted_at": now, "active_seconds": 30,
             "review_status": "unreviewed", "excluded": False} for n, i in enumerate(item_ids)])
        session.commit()
        session.close()
        return project.id


def _new_export(app, project_id: int) -> int:
    with app.app_context():
        session = get_db().session_factory()
        from app.models import Project

        export = create_export(session, session.get(Project, project_id), {"format": "trl-preference"}, None)
        session.commit()
        export_id = export.id
        session.close()
        return export_id


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return  # a zombie holds no locks and runs nothing
        time.sleep(0.05)


def _state(app, export_id: int) -> DatasetExport:
    with app.app_context():
        with get_db().session_factory() as session:
            export = session.get(DatasetExport, export_id)
            session.expunge(export)
            return export


def _kill_worker_mid_export(app, export_id: int) -> None:
    """A real `groundwork worker` builds the version; once 200 rows are in, it and its work horse get SIGKILL."""
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "REDIS_PREFIX": app.config["REDIS_PREFIX"], "SECRET_KEY": app.config["SECRET_KEY"],
           "EXPORT_DIR": app.config["EXPORT_DIR"], "GROUNDWORK_ENV": "development",
           # Save progress after every item: slow enough to be caught half-way, and we can see how far it got.
           "EXPORT_PROGRESS_ROWS": "1", "EXPORT_PROCESSES": "1"}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "groundwork"), "worker", "--burst"], env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            export = _state(app, export_id)
            if export.status == "running" and export.rows_read >= 200:
                break
            assert worker.poll() is None, f"worker exited early: {worker.stderr.read().decode()[-2000:]}"
            time.sleep(0.02)
        else:
            pytest.fail("the export never got going")
        # The worker and its work horse (RQ puts the horse in a session of its own): no chance to clean up.
        horses = _children(worker.pid)
        assert horses, "the job runs in a forked work horse"
        for pid in [*horses, worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=30)
        for pid in horses:
            _wait_gone(pid)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_export_job_runs_in_process(app):
    project_id = _big_pairs_project(app, 50)
    export_id = _new_export(app, project_id)
    with app.app_context():
        handle = enqueue(build_export, export_id).wait(timeout=60)
    assert handle.status == "finished", handle.error
    export = _state(app, export_id)
    assert export.status == "done" and export.row_count == 50 and handle.result["sha256"] == export.sha256
    assert handle.result["status"] == "done"


def test_export_job_runs_on_an_rq_worker(redis_app, rq_worker):
    project_id = _big_pairs_project(redis_app, 50)
    export_id = _new_export(redis_app, project_id)
    with redis_app.app_context():
        handle = enqueue(build_export, export_id)
    assert _state(redis_app, export_id).status == "queued"
    rq_worker(redis_app)
    assert handle.refresh().status == "finished"
    assert _state(redis_app, export_id).status == "done"


@pytest.mark.redis
def test_a_worker_killed_mid_export_publishes_nothing_and_a_rerun_is_correct(redis_app):
    app = redis_app
    project_id = _big_pairs_project(app, 20_000)
    export_id = _new_export(app, project_id)
    with app.app_context():
        enqueue(build_export, export_id)
    _kill_worker_mid_export(app, export_id)
    killed = _state(app, export_id)
    assert killed.status == "running" and killed.path is None and killed.sha256 is None
    assert 200 <= killed.rows_read < 20_000
    root = Path(app.config["EXPORT_DIR"])
    final = root / str(project_id) / str(export_id)
    assert not final.exists()
    leftovers = list((root / ".partial").glob(f"{export_id}-*"))
    assert leftovers, "the killed attempt was writing into its temporary folder"

    # Run it again (what "Run again" does): the leftovers go, the version is complete and correct.
    with app.app_context():
        factory = get_db().session_factory
    done = run_export(factory, export_id, root, app.config["SECRET_KEY"])
    assert done.status == "done" and done.row_count == 20_000 and done.attempts == 2
    assert not list((root / ".partial").glob(f"{export_id}-*"))
    lines = (final / "train.jsonl").read_bytes().splitlines()
    assert len(lines) == 20_000 and lines[0] == b'{"prompt":"Q0","chosen":"B0","rejected":"A0"}'
    fresh = run_export(factory, _new_export(app, project_id), root, app.config["SECRET_KEY"])
    assert fresh.sha256 == done.sha256
