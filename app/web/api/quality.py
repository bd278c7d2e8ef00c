"""API: a project's quality figures, for admins and the project's clients. Trainers are named by the
pseudonym their dataset files carry; only admins get user ids as well."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from flask import current_app
from pydantic import BaseModel, BeforeValidator, Field

from app.db import get_session
from app.services import access, client_view

from .base import Query, allow, ascii_count, bp, responses, spec, user
from .projects import managed_project


class QualityQuery(Query):
    sort: Literal[client_view.SORTABLE] = Field("annotations", description="Column the trainer rows are sorted by")  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc"
    limit: Annotated[int, BeforeValidator(ascii_count)] = Field(
        200, ge=1, le=1000, description="Trainer rows at most (trainers_total says how many there are)")


class QuestionQuality(BaseModel):
    key: str
    type: str
    title: str
    items_with_2_plus: int = Field(description="Items two or more trainers answered")
    figures: dict[str, float | None] = Field(description="Agreement figures of the question's type (α nominal, "
                                                         "Fleiss κ, mean τ-b, …): name → value")


class LowAgreementItem(BaseModel):
    external_id: str
    agreement: float = Field(description="Share of annotator pairs that agree on the item")


class TrainerQuality(BaseModel):
    trainer: str = Field(description="Stable pseudonym: the `trainer` field of the dataset files")
    user_id: int | None = Field(None, description="Admins only")
    annotations: int
    gold_answers: int
    gold_accuracy: float | None
    consensus_agreement: float | None
    reliability: float | None = Field(description="Dawid–Skene reliability, where the project has a label question")
    approval_rate: float | None = Field(description="Approved share of their reviewed answers")
    median_seconds: float | None
    flags: list[str]


class ReviewCounts(BaseModel):
    unreviewed: int
    approved: int
    rejected: int
    corrected: int


class QualityOut(BaseModel):
    project: str
    computed_at: datetime | None = Field(description="When the figures were computed; null before the first time")
    annotations: int
    answers_since: int = Field(description="Answers submitted after the figures were computed, not in them yet, "
                                           "counted up to 10,000 (figures are recomputed as answers arrive, at "
                                           "most once a minute)")
    verdicts_since: int = Field(description="Reviewers' verdicts given after the figures were computed, not in "
                                            "their review counts and approval rates yet, counted up to 10,000")
    trainers_count: int
    items_annotated: int
    median_seconds: float | None
    gold_answers: int
    gold_accuracy_histogram: list[int] = Field(description="Trainers per 20 % band of gold accuracy, lowest first")
    agreement_question: str | None = Field(description="The question the item agreement is measured on")
    questions: list[QuestionQuality]
    lowest_agreement_items: list[LowAgreementItem]
    review: ReviewCounts
    trainers: list[TrainerQuality]
    trainers_total: int


@bp.get("/projects/<slug>/quality")
@allow("admin", "client")
@spec.validate(query=QualityQuery, resp=responses(HTTP_200=QualityOut), tags=["quality"])
def project_quality(slug: str, query: QualityQuery):
    """The project's quality figures: agreement per question, gold accuracy, review outcomes, the items
    annotators agree on least, and a row per trainer by pseudonym (admins and the project's clients)."""
    project = managed_project(slug)
    admin = access.is_admin(user())
    q = client_view.quality(get_session(), project, current_app.config["SECRET_KEY"], query.sort,
                            query.order == "desc", query.limit, with_ids=admin)
    return QualityOut(
        project=project.slug, computed_at=q.computed_at, annotations=q.annotations, answers_since=q.answers_since,
        verdicts_since=q.verdicts_since, trainers_count=q.trainers_count,
        items_annotated=q.items_annotated, median_seconds=q.median_seconds, gold_answers=q.gold_answers,
        gold_accuracy_histogram=q.gold_accuracy_histogram, agreement_question=q.agreement_question,
        questions=[QuestionQuality(key=r.key, type=r.type, title=r.title, items_with_2_plus=r.items_with_2_plus,
                                   figures=r.figures) for r in q.questions],
        lowest_agreement_items=[LowAgreementItem(external_id=e, agreement=a) for e, a in q.lowest_agreement_items],
        review=ReviewCounts(**q.review),
        trainers=[TrainerQuality(trainer=t.pseudonym, user_id=t.trainer_id, annotations=t.annotations,
                                 gold_answers=t.gold_answers, gold_accuracy=t.gold_accuracy,
                                 consensus_agreement=t.consensus_agreement, reliability=t.reliability,
                                 approval_rate=t.approval_rate, median_seconds=t.median_seconds, flags=t.flags)
                  for t in q.trainers],
        trainers_total=q.trainers_total,
    )
