from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import AuditEvent

TARGET_ID_MAX = 64


def record(session: Session, actor_id: int | None, action: str, target_type: str, target_id, data=None) -> AuditEvent:
    """Add an audit event to the caller's transaction: it commits (or not) with the change it describes."""
    target = str(target_id)
    if len(target) > TARGET_ID_MAX:  # many targets at once: the data keeps the full list
        target = target[: TARGET_ID_MAX - 1] + "…"
    event = AuditEvent(actor_id=actor_id, action=action, target_type=target_type, target_id=target, data=data or {})
    session.add(event)
    return event
