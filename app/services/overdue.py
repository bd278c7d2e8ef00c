"""Jobs that should have started a while ago, for the sweep (``tasks.jobs.sweep_overdue``).

Every job's work is remembered in the database, so a job lost before it ran (Redis down when it was
queued, a queue lost with its server) is found again here and queued again. Exports keep their own
rule beside their runs (``exporting.overdue_queued``, ``exporting.recover_stalled``); webhook
deliveries theirs (``webhooks.overdue``); imports, and the grading model's suggestions for finished
interviews, are read here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.models import ImportJob, Interview, WrittenAnswer, utcnow

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
