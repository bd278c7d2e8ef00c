"""The queue (DESIGN §3): who gets which item next, and what happens on submit and skip.

The claim is atomic: on PostgreSQL the candidate item row is locked with FOR UPDATE SKIP LOCKED,
so concurrent claimers pass over each other's rows; on SQLite the whole claim runs in one
transaction that took the write lock first (BEGIN IMMEDIATE). Either way two trainers racing never
push an item past its overlap.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import begin_write, is_sqlite
from app.models import Annotation, Assignment, Item, Project, Question, utcnow

from . import questions as question_rules
from .errors import Conflict, NotFound, ValidationError


def _reclaim_expired(session: Session, project_id: int, now: datetime) -> int:
    """Mark this project's lapsed leases expired and give their slots back; returns how many."""
    rows = session.execute(
        update(Assignment)
        .where(
            Assignment.project_id == project_id,
            Assignment.status == "active",
            Assignment.expires_at <= now,
        )
        .values(status="expired", finished_at=now)
        .returning(Assignment.item_id)
    ).all()
    for item_id, n in Counter(r.item_id for r in rows).items():
        session.execute(update(Item).where(Item.id == item_id).values(active_count=Item.active_count - n))
    return len(rows)


def current_assignment(session: Session, trainer_id: int, project_id: int, now: datetime) -> Assignment | None:
    return session.scalar(
        select(Assignment)
        .where(
            Assignment.trainer_id == trainer_id,
            Assignment.project_id == project_id,
            Assignment.status == "active",
            Assignment.expires_at > now,
        )
        .order_by(Assignment.id)
        .limit(1)
    )


def next_task(session: Session, trainer_id: int, project: Project, now: datetime | None = None) -> Assignment | None:
    """The trainer's open task in this project, or a newly claimed one; None when the queue is empty.

    Reloading is safe: an unexpired active assignment is returned again. Commits.
    """
    now = now or utcnow()
    if project.status != "active":
        return None
    for _attempt in range(3):
        begin_write(session)
        try:
            assignment = current_assignment(session, trainer_id, project.id, now)
            if assignment is None:
                assignment = _claim(session, trainer_id, project, now)
            session.commit()
            return assignment
        except IntegrityError:
            # Only the (item, trainer) guard can fire here, on a claim racing a duplicate request.
            session.rollback()
    raise Conflict("could not claim a task; please try again")


def _claim(session: Session, trainer_id: int, project: Project, now: datetime) -> Assignment | None:
    _reclaim_expired(session, project.id, now)
    seen = select(Assignment.item_id).where(
        Assignment.trainer_id == trainer_id, Assignment.project_id == project.id
    )
    stmt = (
        select(Item.id)
        .where(
            Item.project_id == project.id,
            Item.done_count + Item.active_count < project.overlap,
            Item.id.not_in(seen),
        )
        .order_by(Item.priority.desc(), Item.id)
        .limit(1)
    )
    if not is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True)
    item_id = session.scalar(stmt)
    if item_id is None:
        return None
    session.execute(update(Item).where(Item.id == item_id).values(active_count=Item.active_count + 1))
    assignment = Assignment(
        item_id=item_id,
        project_id=project.id,
        trainer_id=trainer_id,
        status="active",
        assigned_at=now,
        expires_at=now + timedelta(minutes=project.lease_minutes),
    )
    session.add(assignment)
    session.flush()
    return assignment


def project_questions(session: Session, project_id: int) -> list[Question]:
    return list(session.scalars(select(Question).where(Question.project_id == project_id).order_by(Question.position)))


def submit(
    session: Session, assignment_id: int, trainer_id: int, raw_answers: dict, now: datetime | None = None
) -> Annotation:
    """Store the trainer's answers for one assignment. Idempotent; a late submit is still accepted.

    Raises ValidationError (nothing stored) when an answer breaks its question's rule.
    """
    now = now or utcnow()
    begin_write(session)
    stmt = select(Assignment).where(Assignment.id == assignment_id)
    if not is_sqlite(session):
        stmt = stmt.with_for_update()
    assignment = session.scalar(stmt)
    if assignment is None or assignment.trainer_id != trainer_id:
        session.rollback()
        raise NotFound("no such task")
    existing = session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id))
    if existing is not None:
        session.commit()
        return existing
    if assignment.status == "skipped":
        session.rollback()
        raise Conflict("this task was skipped and cannot be submitted")
    questions = project_questions(session, assignment.project_id)
    try:
        answers = question_rules.validate_answers(questions, raw_answers)
    except ValidationError:
        session.rollback()
        raise
    item = session.get(Item, assignment.item_id)
    annotation = Annotation(
        assignment_id=assignment.id,
        item_id=item.id,
        project_id=assignment.project_id,
        trainer_id=trainer_id,
        answers=answers,
        submitted_at=now,
        active_seconds=assignment.active_seconds,
        gold_score=question_rules.gold_score(questions, answers, item.gold_answers or {}) if item.is_gold else None,
    )
    session.add(annotation)
    # An expired lease already gave its slot back; only a live one holds active_count.
    held = 1 if assignment.status == "active" else 0
    assignment.status = "submitted"
    assignment.finished_at = now
    session.execute(
        update(Item)
        .where(Item.id == item.id)
        .values(done_count=Item.done_count + 1, active_count=Item.active_count - held)
    )
    session.commit()
    return annotation


def skip(session: Session, assignment_id: int, trainer_id: int, reason: str, now: datetime | None = None) -> Assignment:
    """Record a skip with its reason and free the slot for someone else. Commits."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "say why you skip this task"})
    begin_write(session)
    stmt = select(Assignment).where(Assignment.id == assignment_id)
    if not is_sqlite(session):
        stmt = stmt.with_for_update()
    assignment = session.scalar(stmt)
    if assignment is None or assignment.trainer_id != trainer_id:
        session.rollback()
        raise NotFound("no such task")
    if assignment.status in ("submitted", "skipped"):
        session.commit()
        return assignment
    held = 1 if assignment.status == "active" else 0
    assignment.status = "skipped"
    assignment.skip_reason = reason[:500]
    assignment.finished_at = now
    session.execute(update(Item).where(Item.id == assignment.item_id).values(active_count=Item.active_count - held))
    session.commit()
    return assignment


def session_progress(session: Session, trainer_id: int, project_id: int, since: datetime) -> int:
    return session.scalar(
        select(func.count(Annotation.id)).where(
            Annotation.trainer_id == trainer_id,
            Annotation.project_id == project_id,
            Annotation.submitted_at >= since,
        )
    )
