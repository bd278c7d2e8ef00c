"""RQ job functions: thin — find the app context, call one service, return plain values."""

from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, has_app_context


@contextmanager
def job_session():
    """The database session of the worker's app context (or a fresh app when run outside one)."""
    if has_app_context():
        from app.db import get_session

        yield get_session()
        return
    from app import create_app

    app = create_app()
    with app.app_context():
        from app.db import get_session

        yield get_session()


def recount_items(project_id: int) -> dict:
    """Recompute every item's done/active counters of a project from its assignments."""
    from app.services.maintenance import recount_item_counters

    with job_session() as session:
        changed = recount_item_counters(session, project_id)
        session.commit()
        current_app.logger.info("recounted project %s: %s items corrected", project_id, changed)
        return {"project_id": project_id, "items_corrected": changed}
