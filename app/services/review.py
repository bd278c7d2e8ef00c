"""The reviewer's side of quality: the review queue, verdicts, and trainers' feedback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.bounds import has_visible, plain_text_problem
from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import VERDICTS, Annotation, Item, Project, Review, User, utcnow

from . import access
from .assignment import project_questions
from .projects import get_by_slug
from .questions import validate_answers

# Most urgent first: a failed honeypot says more than a random sample.
REASON_ORDER = ("failed_gold", "too_fast", "flagged_trainer", "low_agreement", "sampled")
REASON_TITLES = {
    "failed_gold": "failed a gold item",
    "too_fast": "much faster than usual",
    "flagged_trainer": "trainer is flagged",
    "low_agreement": "low agreement on this item",
    "sampled": "random sample",
}
STATUS_FOR = {"approve": "approved", "reject": "rejected", "correct": "corrected"}
COMMENT_MAX = 2000
ALREADY_REVIEWED = "This work has already been reviewed; the first verdict stands."


def _reviews(user_id: int):
    """The condition on ``Project`` that the person reviews it (``access.member_not_training``)."""
    return access.member_not_training(user_id, "reviewer")


def can_review(session: Session, user: User, project: Project) -> bool:
    """Who may review a project: an admin, or someone it ``_reviews``."""
    if access.is_admin(user):
        return True
    return session.scalar(select(Project.id).where(Project.id == project.id, _reviews(user.id))) is not None


def project_for_review(session: Session, user: User, slug: str) -> Project:
    """The project ``user`` reviews under that slug; one they may not review does not exist for them."""
    project = get_by_slug(session, slug)
    if not can_review(session, user, project):
        raise NotFound(f"no project {slug!r}")
    return project


def reviewable_projects(session: Session, user: User) -> list[Project]:
    """The projects ``user`` may review, by name: every one for an admin."""
    stmt = select(Project).order_by(Project.name)
    if not access.is_admin(user):
        stmt = stmt.where(_reviews(user.id))
    return list(session.scalars(stmt))


def annotation_in(session: Session, project: Project, annotation_id: int) -> Annotation:
    annotation = session.get(Annotation, annotation_id)
    if annotation is None or annotation.project_id != project.id:
        raise NotFound("no such annotation")
    return annotation


def item_of(session: Session, annotation: Annotation) -> Item:
    return session.get(Item, annotation.item_id)


RECENT_MAX = 10_000  # the latest submissions a reviewer can page through (older ones: the exports)


def recent_count(session: Session, project: Project) -> int:
    """How many submissions the project's latest-work pages hold: all of them, up to ``RECENT_MAX``
    (a count that stops there, so a large project's page does not walk every annotation)."""
    newest = select(Annotation.id).where(Annotation.project_id == project.id).limit(RECENT_MAX).subquery()
    return session.scalar(select(func.count()).select_from(newest))


def recent_work(session: Session, project: Project, limit: int = 50, offset: int = 0) -> list:
    """One page of the project's latest submissions: (annotation, item, trainer name), newest first
    (the item for reading the answers as people do: responses by their letters)."""
    return session.execute(
        select(Annotation, Item, User.name)
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.trainer_id)
        .where(Annotation.project_id == project.id)
        .order_by(Annotation.submitted_at.desc(), Annotation.id.desc())
        .limit(limit)
        .offset(min(offset, RECENT_MAX))
    ).all()


def _queue_filter(project_id: int, reviewer_id: int):
    return (
        Annotation.project_id == project_id,
        Annotation.review_reason.is_not(None),
        Annotation.review_status == "unreviewed",
        Annotation.excluded.is_(False),
        Annotation.trainer_id != reviewer_id,  # nobody reviews their own work
    )


def queue_size(session: Session, project_id: int, reviewer_id: int) -> int:
    return session.scalar(select(func.count(Annotation.id)).where(*_queue_filter(project_id, reviewer_id)))


QUEUE_SHOWN = 1000  # pages count the queue this far, then say "1,000+"


def queue_shown(session: Session, project_id: int, reviewer_id: int) -> int | str:
    """How many annotations wait, as a page shows it: the number up to QUEUE_SHOWN, else "1,000+".
    Counting stops there, so a queue of a hundred thousand costs what one of a thousand does."""
    waiting = session.scalar(select(func.count()).select_from(
        select(Annotation.id).where(*_queue_filter(project_id, reviewer_id)).limit(QUEUE_SHOWN + 1).subquery()))
    return waiting if waiting <= QUEUE_SHOWN else f"{QUEUE_SHOWN:,}+"


def next_for_review(session: Session, project_id: int, reviewer_id: int, after_id: int | None = None) -> Annotation | None:
    """The most urgent unreviewed annotation in the project's queue: by reason (REASON_ORDER, any other
    reason last), then oldest first. One reason at a time, so each look-up reads the review index in
    its order and stops at the first row, however long the queue."""
    stmt = select(Annotation).where(*_queue_filter(project_id, reviewer_id))
    if after_id is not None:
        stmt = stmt.where(Annotation.id != after_id)
    for reason in REASON_ORDER:
        found = session.scalar(stmt.where(Annotation.review_reason == reason)
                               .order_by(Annotation.submitted_at, Annotation.id).limit(1))
        if found is not None:
            return found
    return session.scalar(stmt.where(Annotation.review_reason.not_in(REASON_ORDER))
                          .order_by(Annotation.submitted_at, Annotation.id).limit(1))


def queue_page(session: Session, project_id: int, reviewer_id: int, after_id: int | None, limit: int) -> list:
    """One page of the project's review queue by annotation id (the API's list; the page serves the most
    urgent first through ``next_for_review``): (annotation, item external id, trainer name)."""
    stmt = (
        select(Annotation, Item.external_id, User.name)
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.trainer_id)
        .where(*_queue_filter(project_id, reviewer_id))
    )
    if after_id is not None:
        stmt = stmt.where(Annotation.id > after_id)
    return session.execute(stmt.order_by(Annotation.id).limit(limit)).all()


def record_verdict(
    session: Session, annotation_id: int, reviewer_id: int, verdict: str, comment: str = "",
    corrected: dict | None = None, now: datetime | None = None,
) -> Review:
    """Approve, reject (a reason is required) or correct (the corrected answers are validated like a
    submit and become the adjudicated answer). A second verdict on the same annotation is refused.
    Commits; an error changes nothing."""
    now = now or utcnow()
    comment = (comment or "").strip()
    if verdict not in VERDICTS:
        raise ValidationError({"verdict": f"must be one of {', '.join(VERDICTS)}"})
    if len(comment) > COMMENT_MAX:
        raise ValidationError({"comment": f"at most {COMMENT_MAX:,} characters"})
    if problem := plain_text_problem(comment):  # the trainer reads it
        raise ValidationError({"comment": problem})
    begin_write(session)
    annotation = session.get(Annotation, annotation_id, populate_existing=True)
    if annotation is None:
        raise NotFound("no such annotation")
    if annotation.trainer_id == reviewer_id:
        raise ValidationError({"verdict": "you cannot review your own work"})
    if annotation.review_status != "unreviewed":
        raise Conflict(ALREADY_REVIEWED)
    if annotation.excluded:  # left the queue with its trainer's exclusion: nothing to judge any more
        raise Conflict("this work was excluded from the project's data (its trainer's work was set aside); "
                       "there is nothing to review")
    errors: dict[str, str] = {}
    clean = None
    if verdict == "reject" and not has_visible(comment):  # invisible characters say nothing
        errors["comment"] = "say what is wrong, so the trainer can learn from it"
    if verdict == "correct":
        questions = project_questions(session, annotation.project_id, share_lock=True)
        item = session.get(Item, annotation.item_id)
        try:
            clean = validate_answers(questions, corrected or {}, item.responses or [])
        except ValidationError as exc:
            errors.update(exc.errors)
        if clean is not None and clean == annotation.answers:
            errors["verdict"] = "the correction is the same as the trainer's answer; approve it instead"
    if errors:
        raise ValidationError(errors)
    # Conditional: of two verdicts racing, the second finds the status changed and changes nothing.
    taken = session.execute(
        update(Annotation)
        .where(Annotation.id == annotation.id, Annotation.review_status == "unreviewed",
               Annotation.excluded.is_(False))
        .values(review_status=STATUS_FOR[verdict])
    ).rowcount
    if taken != 1:
        raise Conflict(ALREADY_REVIEWED)
    review = Review(
        annotation_id=annotation.id, reviewer_id=reviewer_id, verdict=verdict, comment=comment,
        corrected_answers=clean, created_at=now,
    )
    session.add(review)
    session.commit()
    return review


def adjudicated_answers(session: Session, annotation: Annotation) -> dict:
    """What the project should believe: a reviewer's correction when there is one, else the answer."""
    if annotation.review_status == "corrected":
        corrected = session.scalar(
            select(Review.corrected_answers)
            .where(Review.annotation_id == annotation.id, Review.verdict == "correct")
            .order_by(Review.id.desc())
            .limit(1)
        )
        if corrected is not None:
            return corrected
    return annotation.answers


def feedback_for(session: Session, trainer_id: int, limit: int = 50, offset: int = 0) -> list:
    """The trainer's reviewed work, newest verdict first: (review, annotation, project). No item ids:
    trainers never see them (an external id could tell a gold item apart)."""
    return session.execute(
        select(Review, Annotation, Project)
        .join(Annotation, Annotation.id == Review.annotation_id)
        .join(Project, Project.id == Annotation.project_id)
        .where(Annotation.trainer_id == trainer_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()


def feedback_page(session: Session, trainer_id: int, limit: int, offset: int = 0) -> list:
    """One page of the trainer's feedback page: (review, annotation, project, questions, item)."""
    return [
        (review, annotation, project, project_questions(session, project.id), item_of(session, annotation))
        for review, annotation, project in feedback_for(session, trainer_id, limit=limit, offset=offset)
    ]


def feedback_count(session: Session, trainer_id: int) -> int:
    return session.scalar(
        select(func.count(Review.id)).join(Annotation, Annotation.id == Review.annotation_id).where(
            Annotation.trainer_id == trainer_id
        )
    )


def trainer_name(session: Session, annotation: Annotation) -> str:
    return session.scalar(select(User.name).where(User.id == annotation.trainer_id)) or "—"
