from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import AuditEvent


def record(session: Session, actor_id: int | None, action: str, target_type: str, target_id, data=None) -> AuditEvent:
    """Add an audit event to the caller's transaction: it commits (or not) with the change it describes."""
    event = AuditEvent(
        actor_id=actor_id, action=action, target_type=target_type, target_id=str(target_id), data=data or {}
    )
    session.add(event)
    return event
