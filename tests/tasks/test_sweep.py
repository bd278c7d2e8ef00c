"""The sweep of overdue jobs: what it picks up, what it leaves alone, and that picking up runs the
work once. Without Redis the sweep's jobs run in this process, so these run on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
from sqlalchemy import func, select, update

from app.models import DatasetExport, ImportJob, Item, utcnow
from app.services import exporting, importing, overdue
from app.services.throttle import LoginThrottle, RedisCounter
from tasks import enqueue
from tasks.jobs import sweep_overdue
from tests.factories import make_label_project, make_user


def _queued_version(session, project, minutes_ago: float) -> int:
    export = exporting.create_export(session, project, {"format": "raw"}, None)
    session.execute(update(DatasetExport).where(DatasetExport.id == export.id)
                    .values(created_at=utcnow() - timedelta(minutes=minutes_ago)))
    session.commit()
    return export.id


def test_only_versions_queued_over_a_minute_are_overdue(session):
    project = make_label_project(session, items=1)
    fresh = _queued_version(session, project, 0.5)
    waiting = _queued_version(session, project, 2)
    running = _queued_version(session, project, 5)
    session.execute(update(DatasetExport).where(DatasetExport.id == running).values(status="running"))
    session.commit()
    assert exporting.overdue_queued(session) == [waiting]
    assert exporting.overdue_queued(session, now=utcnow() + timedelta(minutes=1)) == [fresh, waiting]


def _running(session, export_id: int, seconds_ago: int, attempts: int) -> None:
    at = utcnow() - timedelta(seconds=seconds_ago)
    session.execute(update(DatasetExport).where(DatasetExport.id == export_id)
                    .values(status="running", started_at=at, progress_at=at, attempts=attempts))
    session.commit()


def test_a_run_that_stopped_reporting_is_queued_again_then_failed(app, session):
    root = Path(app.config["EXPORT_DIR"])
    project = make_label_project(session, items=1)
    alive, dead, hopeless = (_queued_version(session, project, 10) for _ in range(3))
    _running(session, alive, exporting.STALLED_AFTER_SECONDS - 30, 1)
    _running(session, dead, exporting.STALLED_AFTER_SECONDS + 30, 1)
    _running(session, hopeless, exporting.STALLED_AFTER_SECONDS + 30, exporting.MAX_RUNS)
    leftover = root / exporting.TMP_FOLDER / f"{hopeless}-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "train.jsonl").write_text("{}\n")

    recovered = exporting.recover_stalled(session, root)
    assert recovered.again == [dead] and recovered.failed == [hopeless]
    session.expire_all()
    states = {e.id: e for e in session.scalars(select(DatasetExport))}
    assert states[alive].status == "running"
    assert states[dead].status == "queued" and states[dead].attempts == 1 and states[dead].error is None
    assert states[hopeless].status == "failed" and "stopped 3 times" in states[hopeless].error
    assert not leftover.exists()
    # Once queued again it is not overdue until a minute has passed without a worker starting it.
    assert exporting.overdue_queued(session) == []
    assert exporting.recover_stalled(session, root) == exporting.Recovered([], [])


def test_the_sweep_builds_a_forgotten_version_and_runs_a_forgotten_import(app, session, tmp_path):
    admin = make_user(session, "admin")
    project = make_label_project(session, items=2)
    export_id = _queued_version(session, project, 2)
    data = b"".join(orjson.dumps({"external_id": f"n{i}", "prompt": f"P{i}", "responses": ["R"]}) + b"\n"
                    for i in range(3))
    job = importing.create_job(session, project, "items.jsonl", lambda path: path.write_bytes(data),
                               tmp_path / "imports", admin.id)
    assert overdue.queued_imports(session) == []  # just queued: its job may still be on its way
    session.execute(update(ImportJob).where(ImportJob.id == job.id).values(created_at=utcnow() - timedelta(minutes=2)))
    session.commit()
    assert overdue.queued_imports(session) == [job.id]

    with app.app_context():
        result = enqueue(sweep_overdue).wait(timeout=60).result  # the jobs it queued run in this process
    assert result["exports"] == [export_id] and result["imports"] == [job.id]
    session.expire_all()
    assert _wait(lambda: session.get(DatasetExport, export_id).status in exporting.FINISHED, session)
    assert _wait(lambda: session.get(ImportJob, job.id).status == "done", session)
    assert session.scalar(select(func.count(Item.id)).where(Item.project_id == project.id)) == 5


def _wait(check, session, seconds: float = 30) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.rollback()
        session.expire_all()
        if check():
            return True
        time.sleep(0.05)
    return False


def test_sign_in_counts_go_on_in_memory_while_redis_is_unreachable():
    from redis import Redis

    from tests.faults.conftest import free_port

    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    throttle = LoginThrottle(RedisCounter(unreachable, "gwtest:"), max_failures=2, window_seconds=60)
    verdicts = [throttle.attempt("10.0.0.1", "a@example.test").allowed for _ in range(3)]
    assert verdicts == [True, True, False]  # never unlimited, never an error
    assert throttle.attempt("10.0.0.2", "a@example.test").allowed  # per address, as with Redis
    throttle.succeeded("10.0.0.1", "a@example.test")
    assert throttle.attempt("10.0.0.1", "a@example.test").allowed


def test_the_sweep_recomputes_figures_a_burst_left_behind(app, session):
    """Answers after the figures, and nothing since to ask for them: the sweep finds the project (its
    figures are due) and recomputes them; fresh figures, or none missing, are left alone."""
    from app.models import ProjectStats
    from app.services import assignment as queue
    from app.services.stats import compute_project_stats

    trainer = make_user(session, "trainer")
    behind = make_label_project(session, items=4, trainers=[trainer], slug="behind")
    current = make_label_project(session, items=2, trainers=[trainer], slug="current")
    for project in (behind, current):
        task = queue.next_task(session, trainer.id, project)
        queue.submit(session, task.id, trainer.id, {"label": "yes"})
        compute_project_stats(session, project)
        session.commit()
    task = queue.next_task(session, trainer.id, behind)
    queue.submit(session, task.id, trainer.id, {"label": "no"})
    session.execute(update(ProjectStats).where(ProjectStats.project_id == behind.id)
                    .values(computed_at=utcnow() - timedelta(minutes=5)))
    session.commit()
    assert overdue.statistics_behind(session) == [behind.id]
    with app.app_context():
        assert sweep_overdue()["statistics"] == [behind.id]
        from tasks import stop_inline_jobs
        stop_inline_jobs(app)  # the recomputation ran
    session.rollback()
    held = dict(session.execute(select(ProjectStats.project_id, ProjectStats.annotations)).all())
    assert held == {behind.id: 2, current.id: 1}
    assert overdue.statistics_behind(session) == []
