"""API: reviews — the queue of work awaiting a verdict, and verdicts (reviewer members and admins).

An annotation is shown as the review page shows it: the reason it is here, the trainer's name, the
item (responses by letter), the answers and, on a gold item, the gold answers. Answers and
corrections name responses by letter, as on the page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Response
from pydantic import BaseModel, Field

from app.db import get_session
from app.errors import ValidationError
from app.models import REVIEW_STATUSES, VERDICTS, Annotation, Project
from app.services import questions as question_rules
from app.services import review as review_service
from app.services.assignment import project_questions
from tasks.jobs import queue_statistics_after_verdict

from .base import In, PageQuery, allow, bp, decode_cursor, page, responses, spec, user
from .projects import QuestionOut
from .work import QuestionKey, TaskItem, item_out, questions_out


class ReviewSummary(BaseModel):
    annotation_id: int
    reason: str | None = Field(description="Why it is in the queue: failed_gold, too_fast, flagged_trainer, "
                                           "low_agreement or sampled")
    reason_title: str | None
    trainer: str = Field(description="The trainer's name")
    external_id: str = Field(description="The item's id in the project's data")
    submitted_at: datetime
    active_seconds: int
    gold_score: float | None = Field(description="On a gold item: how well the answer matched, 0–1")


class ReviewList(BaseModel):
    data: list[ReviewSummary]
    next_cursor: str | None


class ReviewTask(ReviewSummary):
    item: TaskItem
    questions: list[QuestionOut]
    answers: dict[str, Any] = Field(description="The trainer's answers, responses named by letter")
    gold_answers: dict[str, Any] | None = Field(description="On a gold item: its gold answers, by letter")
    waiting: int = Field(description="Annotations in this project's queue for the caller, this one included")


class VerdictIn(In):
    verdict: Literal[VERDICTS]  # type: ignore[valid-type]
    comment: str = Field("", max_length=review_service.COMMENT_MAX,
                         description="Required to reject: what is wrong (the trainer sees it)")
    corrections: dict[QuestionKey, Any] | None = Field(
        None, max_length=50,
        description="With verdict=correct: the corrected answers, every question, as a submit names them "
                    "(responses by letter)")


class VerdictOut(BaseModel):
    id: int
    annotation_id: int
    verdict: Literal[VERDICTS]  # type: ignore[valid-type]
    review_status: Literal[REVIEW_STATUSES]  # type: ignore[valid-type]
    comment: str
    corrections: dict[str, Any] | None
    created_at: datetime


def _summary(annotation: Annotation, external_id: str, trainer: str) -> dict:
    return {
        "annotation_id": annotation.id, "reason": annotation.review_reason,
        "reason_title": review_service.REASON_TITLES.get(annotation.review_reason) if annotation.review_reason else None,
        "trainer": trainer, "external_id": external_id, "submitted_at": annotation.submitted_at,
        "active_seconds": annotation.active_seconds, "gold_score": annotation.gold_score,
    }


def _review_project(slug: str) -> Project:
    return review_service.project_for_review(get_session(), user(), slug)


@bp.get("/projects/<slug>/reviews/next")
@allow("reviewer", "admin")
@spec.validate(resp=responses(HTTP_200=ReviewTask, HTTP_204=None), tags=["reviews"])
def next_review(slug: str):
    """The most urgent annotation awaiting review (failed gold first, then too fast, flagged trainer,
    low agreement, sampled), never the caller's own work; 204 (no body) when the queue is empty."""
    project = _review_project(slug)
    db = get_session()
    annotation = review_service.next_for_review(db, project.id, user().id)
    if annotation is None:
        return Response(status=204)
    item = review_service.item_of(db, annotation)
    questions = project_questions(db, project.id)
    responses_ = item.responses or []
    return ReviewTask(
        **_summary(annotation, item.external_id, review_service.trainer_name(db, annotation)),
        item=item_out(project, item), questions=questions_out(questions),
        answers=question_rules.answers_with_letters(questions, annotation.answers, responses_),
        gold_answers=question_rules.answers_with_letters(questions, item.gold_answers, responses_)
        if item.is_gold else None,
        waiting=review_service.queue_size(db, project.id, user().id),
    )


@bp.get("/projects/<slug>/reviews")
@allow("reviewer", "admin")
@spec.validate(query=PageQuery, resp=responses(HTTP_200=ReviewList), tags=["reviews"])
def list_reviews(slug: str, query: PageQuery):
    """The project's queue, oldest first (by annotation id), without the items: open one with its
    ``annotation_id`` through ``reviews/next`` or give a verdict directly."""
    project = _review_project(slug)
    rows = review_service.queue_page(get_session(), project.id, user().id, decode_cursor(query.cursor),
                                     query.limit + 1)
    rows, cursor = page(rows, query.limit, key=lambda row: row[0].id)
    return ReviewList(data=[ReviewSummary(**_summary(*row)) for row in rows], next_cursor=cursor)


@bp.post("/projects/<slug>/reviews/<int:annotation_id>/verdict")
@allow("reviewer", "admin")
@spec.validate(json=VerdictIn, resp=responses(HTTP_201=VerdictOut, errors=(409,)), tags=["reviews"])
def give_verdict(slug: str, annotation_id: int, json: VerdictIn):
    """Approve, reject (``comment`` required) or correct (``corrections``: validated like a submit; they
    become the adjudicated answer). The first verdict stands: a second one is 409. Nobody reviews
    their own work (422)."""
    project = _review_project(slug)
    db = get_session()
    annotation = review_service.annotation_in(db, project, annotation_id)
    item = review_service.item_of(db, annotation)
    questions = project_questions(db, project.id)
    corrected = None
    if json.verdict == "correct":
        corrected = question_rules.parse_json_answers(questions, json.corrections or {}, item.responses or [])
    try:
        review = review_service.record_verdict(db, annotation.id, user().id, json.verdict, json.comment, corrected)
    except ValidationError as exc:
        raise ValidationError({key if key in ("", "verdict", "comment") else f"corrections.{key}": message
                               for key, message in exc.errors.items()}) from None
    queue_statistics_after_verdict(db, project)  # the review counts and approval rates read verdicts
    return VerdictOut(
        id=review.id, annotation_id=annotation.id, verdict=review.verdict,
        review_status=review_service.STATUS_FOR[review.verdict], comment=review.comment,
        corrections=question_rules.answers_with_letters(questions, review.corrected_answers, item.responses or [])
        if review.corrected_answers is not None else None,
        created_at=review.created_at,
    ), 201
