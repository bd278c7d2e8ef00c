"""RQ job functions: thin — find the app context, call one service, return plain values."""

from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, has_app_context


@contextmanager
def job_app():
    """The worker's app context, or a fresh app when a job runs outside one."""
    if has_app_context():
        yield current_app._get_current_object()
        return
    from app import create_app

    app = create_app()
    with app.app_context():
        yield app


def recount_items(project_id: int) -> dict:
    """Recompute a project's counters (items' done/active, progress, billable weeks) from its assignments."""
    from app.db import get_db
    from app.services.maintenance import recount_item_counters

    with job_app():
        with get_db().session_factory() as session:
            changed = recount_item_counters(session, project_id)
        return {"project_id": project_id, "items_corrected": changed}


def import_items(import_id: int) -> dict:
    """Run one uploaded import (validate, then write) and report its counts."""
    from app.db import get_db
    from app.models import ImportJob
    from app.services.importing import run_import_job

    with job_app():
        factory = get_db().session_factory
        run_import_job(factory, import_id)
        with factory() as session:
            job = session.get(ImportJob, import_id)
            return {"status": job.status, "inserted": job.inserted, "errors": job.error_count}


def _import_key(import_id: int) -> str:
    return f"import-{import_id}"


import_items.job_key = _import_key  # an import runs once: queued under one id


def compute_stats(project_id: int) -> dict:
    """Recompute a project's quality figures (ProjectStats / TrainerStats)."""
    from app.db import get_db
    from app.models import Project
    from app.services.stats import compute_project_stats

    with job_app():
        with get_db().session_factory() as session:
            project = session.get(Project, project_id)
            if project is None:
                raise ValueError(f"no project with id {project_id}")
            stats = compute_project_stats(session, project)
            return {"project_id": project_id, "annotations": stats.annotations}


def compute_stats_if_due(project_id: int) -> dict:
    """Recompute a project's figures if they are due by then (asked for a minute after a burst)."""
    from app.db import get_db
    from app.models import Project
    from app.services.stats import recompute_due

    with job_app():
        with get_db().session_factory() as session:
            project = session.get(Project, project_id)
            due = project is not None and recompute_due(session, project)
            session.rollback()
    return compute_stats(project_id) if due else {"project_id": project_id, "due": False}


def queue_statistics(session, project) -> None:
    """After a submit committed: the project's figures now when they are due, or once, a minute after
    the last computation, when answers arrive while they are fresh (``after_submit``)."""
    from app.services import after_submit
    from tasks import enqueue, enqueue_in

    if after_submit.statistics_due(session, project):
        enqueue(compute_stats, project.id)
    elif (wait := after_submit.statistics_later(session, project)) is not None:
        enqueue_in(wait, compute_stats_if_due, project.id)


def queue_statistics_after_verdict(session, project) -> None:
    """After a verdict committed: the project's figures now when they are not fresh, else once, a minute
    after the last computation (``stats.after_verdict``)."""
    from app.services import stats
    from tasks import enqueue, enqueue_in

    wait = stats.after_verdict(session, project)
    if wait == 0:
        enqueue(compute_stats, project.id)
    elif wait is not None:
        enqueue_in(wait, compute_stats, project.id)


def _stats_key(project_id: int) -> str:
    return f"stats-{project_id}"


compute_stats.job_key = _stats_key  # submits while one waits do not queue more of the same


def build_export(export_id: int) -> dict:
    """Build one dataset version (stream, write, rename into place) and report its figures (status
    "done", or "empty" when no row passed the filters)."""
    from app.db import get_db
    from app.services.exporting import run_export

    with job_app() as app:
        export = run_export(
            get_db().session_factory, export_id, app.config["EXPORT_DIR"], app.config["SECRET_KEY"],
            progress_rows=app.config["EXPORT_PROGRESS_ROWS"], processes=app.config["EXPORT_PROCESSES"],
        )
        return {"export_id": export.id, "status": export.status, "rows": export.row_count, "sha256": export.sha256}


def _export_key(export_id: int) -> str:
    """One id per run of a version (its id and how many runs it has had), so a version queued again
    after a dead run gets a new job while a waiting one is not queued twice."""
    from app.db import get_db
    from app.services.exporting import run_key

    with get_db().session_factory() as session:
        return run_key(session, export_id)


build_export.job_key = _export_key


def sweep_overdue() -> dict:
    """Queue again what should have run a while ago: versions and imports queued over a minute (Redis
    was down, or lost its queue), versions whose worker stopped reporting (rebuilt, or failed after
    ``exporting.MAX_RUNS`` runs), overdue webhook deliveries and, with a grader configured, the
    suggestions finished interviews still wait for, and quality figures that are due though no submit
    came to ask (a burst of answers inside the minute after the last computation, then nothing). Queued
    by every worker at its start and once a minute."""
    from app.db import get_db
    from app.services import exporting, overdue
    from tasks import WEBHOOK_QUEUE, enqueue

    with job_app() as app:
        with get_db().session_factory() as session:
            recovered = exporting.recover_stalled(session, app.config["EXPORT_DIR"])
            exports = sorted(set(recovered.again) | set(exporting.overdue_queued(session)))
            imports = overdue.queued_imports(session)
            suggestions = overdue.unsuggested_interviews(session) if app.config.get("GRADER_URL") else []
            statistics = overdue.statistics_behind(session)
        for project_id in statistics:
            enqueue(compute_stats, project_id)
        for export_id in exports:
            enqueue(build_export, export_id)
        for import_id in imports:
            enqueue(import_items, import_id)
        for interview_id in suggestions:
            enqueue(suggest_grades, interview_id)
        enqueue(deliver_webhooks, [], sweep=True, queue=WEBHOOK_QUEUE)
        return {"exports": exports, "imports": imports, "failed_exports": recovered.failed,
                "suggestions": suggestions, "statistics": statistics}


def _sweep_key() -> str:
    return "sweep"


sweep_overdue.job_key = _sweep_key  # one sweep waiting at a time, however many workers ask


def suggest_grades(interview_id: int) -> dict:
    """Ask the configured grading model for a suggested grade on each of an interview's written answers."""
    from app.db import get_db
    from app.services.grader import GraderSettings
    from app.services.recruiting import grading

    with job_app() as app:
        settings = GraderSettings.from_config(app.config)
        if settings is None:
            return {"interview_id": interview_id, "suggested": 0, "reason": "no grader configured"}
        with get_db().session_factory() as session:
            ids = grading.awaiting_suggestion(session, interview_id)
            for answer_id in ids:
                grading.suggest(session, answer_id, settings)
        return {"interview_id": interview_id, "suggested": len(ids)}


def _suggest_key(interview_id: int) -> str:
    return f"suggest-{interview_id}"


suggest_grades.job_key = _suggest_key  # the interview's end and the sweep may both ask


def calibrate_assessment(assessment_id: int) -> dict:
    """Re-estimate an assessment's item parameters from candidates' answers."""
    from app.db import get_db
    from app.services.recruiting import calibration

    with job_app():
        with get_db().session_factory() as session:
            return calibration.calibrate(session, assessment_id)


def deliver_webhooks(delivery_ids: list[int], sweep: bool = False) -> dict:
    """Post webhook deliveries (first attempts and retries that are due), and schedule the retry of each
    that failed with attempts left. With ``sweep``, overdue deliveries go too (a lost dispatch or retry)."""
    from app.db import get_db
    from app.services import webhooks
    from tasks import WEBHOOK_QUEUE, enqueue_in

    with job_app() as app:
        settings = webhooks.DeliverySettings.from_config(app.config)
        results: dict[str, str] = {}
        with get_db().session_factory() as session:
            ids = list(delivery_ids)
            if sweep:
                ids += [i for i in webhooks.overdue(session) if i not in ids]
            for delivery_id in ids:
                try:
                    outcome = webhooks.deliver(session, delivery_id, settings)
                except Exception:  # noqa: BLE001 - the others still go; this one stays pending until the sweep
                    session.rollback()
                    app.logger.exception("webhook delivery %s failed", delivery_id)
                    results[str(delivery_id)] = "error"
                    continue
                if outcome.retry_in is not None:
                    enqueue_in(outcome.retry_in, deliver_webhooks, [delivery_id], queue=WEBHOOK_QUEUE)
                results[str(delivery_id)] = outcome.status
        return results
