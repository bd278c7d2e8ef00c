"""Jobs that should have started a while ago, for the sweep (``tasks.jobs.sweep_overdue``).

Every job's work is remembered in the database, so a job lost before it ran (Redis down when it was
queued, a queue lost with its server) is found again here and queued again. Exports keep their own
rule beside their runs (``exporting.overdue_queued``, ``exporting.recover_stalled``); webhook
deliveries theirs (``webhooks.overdue``); imports, quality figures a burst of answers left behind,
and the grading model's suggestions for finished interviews, are read here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.models import Annotation, ImportJob, Interview, Project, ProjectStats, WrittenAnswer, utcnow

QUEUED_OVERDUE = timedelta(minutes=1)


def queued_imports(session: Session, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Imports queued over a minute ago that no worker started. Queuing one twice is harmless: an
    import starts only from "queued" (``importing.run_import_job``). Reads only."""
    ids = list(session.scalars(
        select(ImportJob.id).where(ImportJob.status == "queued", ImportJob.created_at < (now or utcnow()) - QUEUED_OVERDUE)
        .order_by(ImportJob.id).limit(limit)))
    session.rollback()
    return ids


def unsuggested_interviews(session: Session, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Interviews finished over a minute ago with written answers still waiting for the grading
    model's suggestion (ungraded, no suggestion, no reason why not): the job asked for at the end
    of the interview was lost, or a grader was configured since. Reads only."""
    waiting = exists().where(WrittenAnswer.interview_id == Interview.id, WrittenAnswer.grade.is_(None),
                             WrittenAnswer.suggested_grade.is_(None), WrittenAnswer.suggestion_error.is_(None))
    ids = list(session.scalars(
        select(Interview.id).where(Interview.status == "done", Interview.finished_at < (now or utcnow()) - QUEUED_OVERDUE,
                                   waiting)
        .order_by(Interview.id).limit(limit)))
    session.rollback()
    return ids


def statistics_behind(session: Session, limit: int = 100) -> list[int]:
    """Projects whose quality figures are due (``stats.recompute_due``) though no submit asked since: a
    burst of answers inside the minute after the last computation, then nothing. Only projects with an
    answer newer than their figures are asked. Reads only."""
    from .stats import recompute_due  # the figures' own rule

    newer = exists().where(Annotation.project_id == Project.id,
                           Annotation.submitted_at > func.coalesce(ProjectStats.computed_at, datetime(1970, 1, 1)))
    projects = list(session.scalars(
        select(Project).outerjoin(ProjectStats, ProjectStats.project_id == Project.id).where(newer)
        .order_by(Project.id).limit(limit)))
    ids = [p.id for p in projects if recompute_due(session, p)]
    session.rollback()
    return ids
