"""Repairs that keep cached counters honest."""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import NotFound
from app.models import Assignment, Item, Project

from . import pay
from .assignment import recount_progress, refresh_open_flags


def recount_item_counters(session: Session, project_id: int) -> int:
    """Set each item's done_count and active_count from its assignments, then the project's progress
    counters from the items and its billable weeks from the work; commits; returns how many items changed.

    ``done_count`` counts submitted assignments; ``active_count`` counts live leases (expired leases
    that were not reclaimed yet still count, as the claim query reclaims them lazily).
    """
    begin_write(session)
    if session.get(Project, project_id) is None:
        raise NotFound(f"no project with id {project_id}")
    # The trainers' rows first, as the queue takes them before items (assignment.py's lock order): their
    # submits, skips and heartbeats wait for the recount instead of crossing it, and their time stays still.
    pay.lock_project_trainers(session, project_id)
    counts = (
        select(
            Assignment.item_id,
            func.sum(case((Assignment.status == "submitted", 1), else_=0)).label("done"),
            func.sum(case((Assignment.status == "active", 1), else_=0)).label("active"),
        )
        .where(Assignment.project_id == project_id)
        .group_by(Assignment.item_id)
    )
    actual = {row.item_id: (int(row.done), int(row.active)) for row in session.execute(counts)}
    changed = 0
    for item_id, done, active in session.execute(
        select(Item.id, Item.done_count, Item.active_count).where(Item.project_id == project_id)
    ):
        want = actual.get(item_id, (0, 0))
        if (done, active) != want:
            session.execute(update(Item).where(Item.id == item_id).values(done_count=want[0], active_count=want[1]))
            changed += 1
    project = session.get(Project, project_id)
    refresh_open_flags(session, project)
    recount_progress(session, project)
    pay.recount_billable(session, project_id)
    session.commit()
    return changed
