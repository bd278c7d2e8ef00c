"""What follows a stored answer: one explicit, ordered list of hooks.

``assignment.submit`` locks the task, validates the answers, counts the last stretch of time, moves
the item's counters and adds the ``Annotation``; then it runs ``POST_SUBMIT_HOOKS`` in order, in its
own transaction, and commits once. Each hook takes one ``Submitted`` and neither commits nor starts a
transaction, so the answer and everything the hooks decide land together or not at all. A hook sees
what the hooks before it did; adding one is one line in the tuple.

After the commit comes one more step, ``statistics_due``: the submit's caller asks it and starts the
statistics job when it says so (the job queue lives in ``tasks``, a layer above the services, so no
service starts a job itself).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.db import is_sqlite
from app.models import Annotation, Assignment, Item, Project

from . import checks, pay, webhooks


@dataclass
class Submitted:
    """One stored answer as the hooks see it. The rows are the submit's, locked as its door took them."""

    session: Session
    assignment: Assignment
    annotation: Annotation  # added to the session, not yet written
    item: Item
    project: Project
    flagged_reason: str | None  # the trainer's membership flag, read by the submit's locking query
    rng: random.Random
    now: datetime


def route_to_review(s: Submitted) -> None:
    """Give the answer its review reason (failed gold, too fast, flagged trainer, sampled) or none."""
    with s.session.no_autoflush:  # the project's median is that of the answers before this one
        s.annotation.review_reason = checks.review_reason(
            s.session, s.annotation, s.item, s.project, s.flagged_reason, s.rng)


def pause_on_failed_gold(s: Submitted) -> None:
    """A gold answer: pause the trainer in the project when their recent gold accuracy fell too low."""
    checks.pause_if_failing_gold(s.session, s.annotation, s.item, s.project, s.now)


def count_pay(s: Submitted) -> None:
    """Late time for an already approved week becomes an adjustment; a spent budget pauses the project."""
    pay.after_work(s.session, s.assignment, s.now)


# Built once: every answer that completes its item asks.
_WORK = (Item.project_id == bindparam("project")) & Item.is_gold.is_(False)
_LOCK_PROJECT = select(Project.id).where(Project.id == bindparam("project")).with_for_update(key_share=True)
_AN_OPEN_ITEM = select(Item.id).where(_WORK, Item.is_open.is_(True)).limit(1)
_AN_UNFINISHED_ITEM = select(Item.id).where(_WORK, Item.done_count < bindparam("overlap")).limit(1)


def announce_completion(s: Submitted) -> None:
    """The answer that brings a work project's last item to its overlap announces ``project.completed``
    (webhooks). Only an answer that completes its item asks (one indexed look-up for an open item,
    which all but the last items' answers find). It takes the project row first (PostgreSQL), so of
    two answers completing the last two items the later one waits for the other and sees both done."""
    if s.project.kind != "work" or s.item.is_gold or s.item.done_count != s.project.overlap:
        return  # the submit's counter UPDATE set done_count on the item in the session
    params = {"project": s.project.id, "overlap": s.project.overlap}
    if not is_sqlite(s.session):
        s.session.execute(_LOCK_PROJECT, params)
    if s.session.scalar(_AN_OPEN_ITEM, params) is not None or s.session.scalar(_AN_UNFINISHED_ITEM, params) is not None:
        return
    items = s.session.scalar(select(func.count(Item.id)).where(_WORK), params)
    webhooks.emit(s.session, s.project.id, "project.completed",
                  {"items": items, "overlap": s.project.overlap}, now=s.now)


Hook = Callable[[Submitted], None]

# In the submit's transaction, in this order.
POST_SUBMIT_HOOKS: tuple[Hook, ...] = (
    route_to_review,
    pause_on_failed_gold,
    count_pay,
    announce_completion,
)


def run(s: Submitted) -> None:
    """Run ``POST_SUBMIT_HOOKS`` in order. Does not commit."""
    for hook in POST_SUBMIT_HOOKS:
        hook(s)


def statistics_due(session: Session, project: Project) -> bool:
    """After the submit committed: whether the project's agreement figures should be recomputed now
    (every ``stats.STATS_EVERY`` submissions, at most every ``stats.STATS_MIN_INTERVAL``). The caller
    starts the job (``tasks.jobs.compute_stats``) when True; reads only."""
    from . import stats  # stats imports assignment, which imports this module

    return stats.recompute_due(session, project)


def statistics_later(session: Session, project: Project) -> float | None:
    """When ``statistics_due`` said no because the figures are fresh: in how many seconds to look again
    (``tasks.jobs.compute_stats_if_due``), once per computation; None: nothing to ask for. Reads only."""
    from . import stats

    return stats.recompute_later(session, project)
