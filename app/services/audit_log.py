"""Reading the audit log (``audit.record`` writes it, inside the transaction of each change)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User


def count_events(session: Session) -> int:
    return session.scalar(select(func.count(AuditEvent.id)))


def events(session: Session, limit: int, offset: int = 0) -> list:
    """One page of the log, newest first: (event, the actor's e-mail or None)."""
    return session.execute(
        select(AuditEvent, User.email)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
