"""Quality checks that run inside every submit (as hooks of ``after_submit``): gold accuracy,
auto-pause, and review routing.

The rules: a trainer with at least GOLD_MIN_ANSWERS gold answers in a project whose
accuracy over the last GOLD_WINDOW of them is below GOLD_MIN_ACCURACY is paused in that project and
flagged (a Toloka-style rule); an admin reinstates. An annotation goes to the review queue when it
failed gold, was too fast (under a third of the project's median time), comes from a flagged
trainer, or was sampled at the project's review rate.
"""

from __future__ import annotations

import random
import statistics
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.models import Annotation, Item, Project

from . import access, audit, webhooks

GOLD_WINDOW = 10
GOLD_MIN_ANSWERS = 3
GOLD_MIN_ACCURACY = 0.6
FAST_SHARE_OF_MEDIAN = 1 / 3
FAST_MIN_HISTORY = 20  # below this many annotations the project has no meaningful median yet
FAST_HISTORY = 200


def gold_accuracy(session: Session, trainer_id: int, project_id: int, since: datetime | None) -> tuple[int, float]:
    """(how many, mean score) of the trainer's last GOLD_WINDOW gold answers in the project."""
    stmt = (
        select(Annotation.gold_score)
        .where(
            Annotation.trainer_id == trainer_id,
            Annotation.project_id == project_id,
            Annotation.gold_score.is_not(None),
        )
        .order_by(Annotation.submitted_at.desc(), Annotation.id.desc())
        .limit(GOLD_WINDOW)
    )
    if since is not None:
        stmt = stmt.where(Annotation.submitted_at >= since)
    scores = list(session.scalars(stmt))
    return len(scores), (sum(scores) / len(scores) if scores else 1.0)


# Built once: every submit asks (routing to review).
_RECENT_SECONDS = (select(Annotation.active_seconds).where(Annotation.project_id == bindparam("project"))
                   .order_by(Annotation.id.desc()).limit(FAST_HISTORY))


def fast_threshold(session: Session, project_id: int) -> float | None:
    """A third of the median active seconds of the project's recent annotations, once there are enough."""
    if session.autoflush:  # as an ORM query would (a submit's review routing reads with it off)
        session.flush()
    seconds = session.connection().execute(_RECENT_SECONDS, {"project": project_id}).scalars().all()
    if len(seconds) < FAST_MIN_HISTORY:
        return None
    return statistics.median(seconds) * FAST_SHARE_OF_MEDIAN


def review_reason(
    session: Session, annotation: Annotation, item: Item, project: Project, flagged_reason: str | None,
    rng: random.Random,
) -> str | None:
    """Why the new annotation goes to the review queue (the most telling reason first), or None.

    ``flagged_reason`` is the trainer's membership flag, which the submit already read. The project's
    median is taken over the annotations written before this one.
    """
    if item.is_gold and annotation.gold_score is not None and annotation.gold_score < 1.0:
        return "failed_gold"
    threshold = fast_threshold(session, project.id)
    if threshold is not None and annotation.active_seconds < threshold:
        return "too_fast"
    if flagged_reason:
        return "flagged_trainer"
    if project.review_rate > 0 and rng.random() < project.review_rate:
        return "sampled"
    return None


def pause_if_failing_gold(session: Session, annotation: Annotation, item: Item, project: Project,
                          now: datetime) -> None:
    """After a gold answer in a work project: pause (and flag, audited) an active trainer whose recent
    gold accuracy fell below the rule. The annotation must be in the session; does not commit."""
    if not item.is_gold or project.kind != "work":
        return
    member = access.membership(session, annotation.trainer_id, project)
    if member is not None and member.status == "active":
        session.flush()
        count, accuracy = gold_accuracy(session, annotation.trainer_id, project.id, member.reinstated_at)
        if count >= GOLD_MIN_ANSWERS and accuracy < GOLD_MIN_ACCURACY:
            member.status = "paused"
            member.flagged_reason = (
                f"gold accuracy {accuracy:.0%} over the last {count} gold answers (minimum {GOLD_MIN_ACCURACY:.0%})"
            )
            member.flagged_at = now
            audit.record(
                session, None, "member.auto_pause", "project", project.id,
                {"user_id": annotation.trainer_id, "gold_answers": count, "gold_accuracy": round(accuracy, 4)},
            )
            webhooks.emit(session, project.id, "trainer.flagged", {  # the member id, never a name
                "member_id": member.id, "status": member.status, "reason": member.flagged_reason,
                "gold_answers": count, "gold_accuracy": round(accuracy, 4)}, now=now)
