"""What a project's clients (the AI team that ordered its data) see: progress, budget burn, dataset
versions and the quality figures, with every trainer named only by the pseudonym their dataset files
carry (``exporting.source.Pseudonyms``). Never a name, an e-mail or anyone's pay.

The pages and the API read the same functions; admins get the same figures (with trainer ids when
asked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import DatasetExport, Project, ProjectMember, TrainerStats, User

from . import access, pay
from . import projects as project_service
from .exporting.source import Pseudonyms
from .qtypes import FIGURE_NAMES
from .stats import SINCE_SHOWN_MAX, answers_since, project_figures, verdicts_behind

# Columns the trainer table sorts by ("trainer" is the pseudonym).
SORTABLE = ("trainer", "annotations", "gold_accuracy", "consensus_agreement", "reliability", "approval_rate",
            "median_seconds")
REVIEW_STATUSES = ("unreviewed", "approved", "rejected", "corrected")
RECENT_VERSIONS = 10
STAFF = "Groundwork team"  # who built a version, when it was not one of the project's clients


# --- quality ---------------------------------------------------------------------------------------


@dataclass
class TrainerRow:
    pseudonym: str
    trainer_id: int | None  # only when the caller asked for ids (admins)
    annotations: int
    gold_answers: int
    gold_accuracy: float | None
    consensus_agreement: float | None
    reliability: float | None
    approval_rate: float | None
    median_seconds: float | None
    flags: list[str]


@dataclass
class QuestionRow:
    key: str
    type: str
    title: str
    items_with_2_plus: int
    figures: dict[str, float | None]  # name (FIGURE_NAMES) → value


@dataclass
class Quality:
    """A project's stored quality figures, trainers by pseudonym. ``computed_at`` is None until the
    figures were first computed (then every list is empty)."""

    computed_at: datetime | None = None
    annotations: int = 0
    answers_since: int = 0  # answers submitted after the figures were computed (not in them yet)
    verdicts_since: int = 0  # reviewers' verdicts given after the figures were computed (not in them yet)
    trainers_count: int = 0
    items_annotated: int = 0
    median_seconds: float | None = None
    gold_answers: int = 0
    gold_accuracy_histogram: list[int] = field(default_factory=lambda: [0] * 5)
    agreement_question: str | None = None
    questions: list[QuestionRow] = field(default_factory=list)
    lowest_agreement_items: list[tuple[str, float]] = field(default_factory=list)  # (external id, agreement)
    review: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REVIEW_STATUSES, 0))
    trainers: list[TrainerRow] = field(default_factory=list)
    trainers_total: int = 0


def _number(value) -> float | None:
    """A stored figure as a finite float, or None (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def quality(session: Session, project: Project, secret: str, sort: str = "annotations", descending: bool = True,
            limit: int | None = None, with_ids: bool = False) -> Quality:
    """The project's quality figures as its clients see them: agreement per question, gold accuracy,
    review outcomes, the lowest-agreement items (by external id) and one row per trainer keyed by
    their dataset pseudonym (under ``secret``, the app's secret key, as the exports use). Rows are
    sorted by ``sort`` (one of SORTABLE), at most ``limit`` of them; ``with_ids`` adds user ids."""
    stats = project_figures(session, project)
    if stats is None:
        return Quality(answers_since=answers_since(session, project, None, SINCE_SHOWN_MAX))
    f = stats.figures or {}
    name = Pseudonyms(secret)
    rows = [
        TrainerRow(pseudonym=name(t.trainer_id), trainer_id=t.trainer_id if with_ids else None,
                   annotations=t.annotations, gold_answers=t.gold_answers, gold_accuracy=_number(t.gold_accuracy),
                   consensus_agreement=_number(t.consensus_agreement), reliability=_number(t.reliability),
                   approval_rate=_number(t.approval_rate), median_seconds=_number(t.median_seconds),
                   flags=[str(flag) for flag in (t.flags or [])])
        for t in session.scalars(select(TrainerStats).where(TrainerStats.project_id == project.id))
    ]
    # Sorted by one column; rows without a value go last whichever way.
    sort = sort if sort in SORTABLE else "annotations"
    column = "pseudonym" if sort == "trainer" else sort
    valued = sorted((r for r in rows if getattr(r, column) is not None),
                    key=lambda r: (getattr(r, column), r.pseudonym), reverse=descending)
    ordered = valued + sorted((r for r in rows if getattr(r, column) is None), key=lambda r: r.pseudonym)
    histogram = [_count(n) for n in (f.get("gold_accuracy_histogram") or [])][:5]
    return Quality(
        computed_at=stats.computed_at, annotations=stats.annotations,
        answers_since=answers_since(session, project, stats.computed_at, SINCE_SHOWN_MAX),
        verdicts_since=verdicts_behind(session, project, stats), trainers_count=_count(f.get("trainers")),
        items_annotated=_count(f.get("items_annotated")), median_seconds=_number(f.get("median_seconds")),
        gold_answers=_count(f.get("gold_answers")),
        gold_accuracy_histogram=histogram + [0] * (5 - len(histogram)),
        agreement_question=f.get("agreement_question") if isinstance(f.get("agreement_question"), str) else None,
        questions=[
            QuestionRow(key=str(q.get("key", "")), type=str(q.get("type", "")), title=str(q.get("title", "")),
                        items_with_2_plus=_count(q.get("items_with_2_plus")),
                        figures={n: _number(q[n]) for n in FIGURE_NAMES if n in q})
            for q in f.get("questions") or [] if isinstance(q, dict)
        ],
        lowest_agreement_items=[
            (str(row.get("external_id", "")), _number(row.get("agreement")) or 0.0)
            for row in f.get("lowest_agreement_items") or [] if isinstance(row, dict)
        ],
        review={status: _count((f.get("review") or {}).get(status)) for status in REVIEW_STATUSES},
        trainers=ordered[:limit] if limit is not None else ordered,
        trainers_total=len(rows),
    )


# --- projects --------------------------------------------------------------------------------------


@dataclass
class ProjectView:
    project: Project
    progress: dict
    budget: pay.Budget
    latest: DatasetExport | None  # the newest finished version
    throughput: dict | None = None
    versions: list[DatasetExport] = field(default_factory=list)  # the newest versions, any status
    version_count: int = 0


def latest_version(session: Session, project: Project) -> DatasetExport | None:
    """The project's newest finished dataset version."""
    return session.scalar(
        select(DatasetExport).where(DatasetExport.project_id == project.id, DatasetExport.status == "done")
        .order_by(DatasetExport.id.desc()).limit(1))


def overview(session: Session, user: User) -> list[ProjectView]:
    """The projects ``user`` is a client of, each with its progress, budget burn and latest version."""
    return [ProjectView(project=p, progress=project_service.progress(session, p),
                        budget=pay.Budget(p, pay.project_spend(session, p)), latest=latest_version(session, p))
            for p in access.client_projects(session, user)]


def project_view(session: Session, project: Project) -> ProjectView:
    """One project for its client: progress, pace and time left, budget burn, and its recent versions."""
    from . import exporting

    progress = project_service.progress(session, project)
    return ProjectView(
        project=project, progress=progress,
        budget=pay.Budget(project, pay.project_spend(session, project)), latest=latest_version(session, project),
        throughput=project_service.throughput(session, project, figures=progress),
        versions=exporting.list_exports(session, project.id, RECENT_VERSIONS),
        version_count=exporting.count_exports(session, project.id),
    )


def creator_names(session: Session, project: Project, user_ids) -> dict[int, str]:
    """Who built each version, as a client may read it: the name of one of the project's clients, else
    the staff at large (never a person outside their team)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    clients = dict(session.execute(
        select(User.id, User.name).join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project.id, ProjectMember.role == "client", User.id.in_(ids))).all())
    return {i: clients.get(i, STAFF) for i in ids}
