"""An RQ worker and its work horse killed with SIGKILL half-way through a version: nothing is
published, and the next worker's sweep (at its start, then every minute) sees the run stopped
reporting and builds the version again from scratch; after ``MAX_RUNS`` dead runs it fails with a
plain reason instead."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.db import get_db
from app.models import DatasetExport
from app.services import exporting
from tasks import enqueue, run_worker
from tasks.jobs import build_export
from tests.tasks.test_export_job import _big_pairs_project, _kill_worker_mid_export, _new_export, _state

pytestmark = [pytest.mark.slow, pytest.mark.redis]
ROWS = 5_000


def _time_passes(app, export_id: int, seconds: int) -> None:
    """The run's last sign of life moves back: what the sweep would see that much later."""
    with app.app_context():
        with get_db().session_factory() as session:
            export = session.get(DatasetExport, export_id)
            back = timedelta(seconds=seconds)
            session.execute(update(DatasetExport).where(DatasetExport.id == export_id).values(
                progress_at=export.progress_at - back, started_at=export.started_at - back))
            session.commit()


def test_a_killed_worker_s_version_is_rebuilt_by_the_next_worker(redis_app):
    app = redis_app
    project_id = _big_pairs_project(app, ROWS)
    export_id = _new_export(app, project_id)
    with app.app_context():
        enqueue(build_export, export_id)
    _kill_worker_mid_export(app, export_id)
    root = Path(app.config["EXPORT_DIR"])
    final = root / str(project_id) / str(export_id)
    assert _state(app, export_id).status == "running" and not final.exists()
    assert list((root / ".partial").glob(f"{export_id}-*")), "the killed run was writing its temporary folder"

    # A worker started at once leaves a run that may still be alive alone.
    run_worker(app, burst=True, simple=True)
    assert _state(app, export_id).status == "running" and _state(app, export_id).attempts == 1

    _time_passes(app, export_id, exporting.STALLED_AFTER_SECONDS + 1)
    run_worker(app, burst=True, simple=True)  # its sweep queues the version again, and it builds it
    done = _state(app, export_id)
    assert done.status == "done" and done.attempts == 2 and done.row_count == ROWS
    assert not list((root / ".partial").glob(f"{export_id}-*"))
    assert len((final / "train.jsonl").read_bytes().splitlines()) == ROWS


def test_a_version_whose_runs_keep_dying_fails_with_a_plain_reason(redis_app):
    app = redis_app
    project_id = _big_pairs_project(app, ROWS)
    export_id = _new_export(app, project_id)
    with app.app_context():
        enqueue(build_export, export_id)
    _kill_worker_mid_export(app, export_id)
    with app.app_context():
        with get_db().session_factory() as session:  # as if this were its last allowed run
            session.execute(update(DatasetExport).where(DatasetExport.id == export_id)
                            .values(attempts=exporting.MAX_RUNS))
            session.commit()
    _time_passes(app, export_id, exporting.STALLED_AFTER_SECONDS + 1)
    run_worker(app, burst=True, simple=True)
    failed = _state(app, export_id)
    assert failed.status == "failed" and failed.path is None and failed.sha256 is None
    assert failed.error.startswith(f"the build stopped {exporting.MAX_RUNS} times without finishing")
    root = Path(app.config["EXPORT_DIR"])
    assert not list((root / ".partial").glob(f"{export_id}-*"))
    assert not (root / str(project_id) / str(export_id)).exists()
