"""Reading a project's annotations for an export: streamed item by item, filtered, pseudonymised.

One ordered query streams the annotations (``yield_per``: a server-side cursor on PostgreSQL, a
plain cursor on SQLite); items are fetched once per streamed batch. Memory holds one batch, never
the project. Every filter that SQL can apply is applied in SQL.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from app.models import Annotation, Item, ProjectMember, Review, TrainerStats

from .options import ExportOptions

FETCH_ROWS = 5000


@dataclass(slots=True)
class Row:
    """One annotation as an export sees it: answers already adjudicated, trainer a pseudonym."""

    id: int
    trainer: str
    answers: dict
    active_seconds: int
    gold_score: float | None
    review_status: str
    submitted_at: datetime


@dataclass(slots=True)
class Group:
    """One item and its exported annotations (in annotation order)."""

    item_id: int
    external_id: str
    context: list
    responses: list
    meta: dict
    is_gold: bool
    rows: list[Row] = field(default_factory=list)
    _texts: dict | None = None

    def text_of(self, response_id: str) -> str:
        if self._texts is None:
            self._texts = {r["id"]: r["text"] for r in self.responses}
        return self._texts[response_id]

    @property
    def response_ids(self) -> list[str]:
        return [r["id"] for r in self.responses]


class Pseudonyms:
    """Stable trainer pseudonyms: an HMAC of the user id under the app secret; never a name or e-mail."""

    def __init__(self, secret: str):
        self._key = hashlib.sha256(b"groundwork-export-pseudonym:" + secret.encode()).digest()
        self._cache: dict[int, str] = {}

    def __call__(self, user_id: int) -> str:
        name = self._cache.get(user_id)
        if name is None:
            digest = hmac.new(self._key, str(user_id).encode(), hashlib.sha256).hexdigest()
            name = self._cache[user_id] = "annotator-" + digest[:12]
        return name


def in_test_split(external_id: str, fraction: float) -> bool:
    """Deterministic split by the item's external id: the same item is always on the same side."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(external_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _trainer_filter(session: Session, project_id: int, options: ExportOptions):
    """SQL conditions on the trainer: flagged ones out, quality below the threshold out."""
    conditions = []
    if options.exclude_flagged_trainers:
        flagged = select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.role == "trainer",
            (ProjectMember.flagged_reason.is_not(None)) | ProjectMember.status.in_(("paused", "removed")),
        )
        conditions.append(Annotation.trainer_id.not_in(flagged))
    if options.min_trainer_quality is not None:
        allowed = [
            trainer_id for trainer_id, gold, consensus in session.execute(
                select(TrainerStats.trainer_id, TrainerStats.gold_accuracy, TrainerStats.consensus_agreement)
                .where(TrainerStats.project_id == project_id)
            )
            if trainer_quality(gold, consensus) is not None
            and trainer_quality(gold, consensus) >= options.min_trainer_quality
        ]
        conditions.append(Annotation.trainer_id.in_(allowed))
    return conditions


def trainer_quality(gold_accuracy: float | None, consensus_agreement: float | None) -> float | None:
    """What ``min_trainer_quality`` compares: gold accuracy when the trainer met gold, else agreement
    with the consensus. A trainer with neither has no known quality and is left out by that filter."""
    return gold_accuracy if gold_accuracy is not None else consensus_agreement


def annotation_conditions(session: Session, project_id: int, options: ExportOptions, keep_rejected: bool) -> list:
    conditions = [Annotation.project_id == project_id, Annotation.excluded.is_(False)]
    if options.reviewed_only:
        conditions.append(Annotation.review_status.in_(("approved", "corrected")))
    elif not keep_rejected:
        conditions.append(Annotation.review_status != "rejected")
    if options.date_from:
        conditions.append(Annotation.submitted_at >= datetime.combine(options.date_from, time(), UTC))
    if options.date_to:
        conditions.append(Annotation.submitted_at < datetime.combine(options.date_to + timedelta(days=1), time(), UTC))
    if options.exclude_gold:
        gold_items = select(Item.id).where(Item.project_id == project_id, Item.is_gold.is_(True))
        conditions.append(Annotation.item_id.not_in(gold_items))
    conditions.extend(_trainer_filter(session, project_id, options))
    return conditions


def count_annotations(session: Session, conditions: list) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count(Annotation.id)).where(and_(*conditions)))


def corrections(session: Session, project_id: int) -> dict[int, dict]:
    """Reviewers' corrections of the project, latest per annotation: they replace the answers."""
    rows = session.execute(
        select(Review.annotation_id, Review.corrected_answers)
        .join(Annotation, Annotation.id == Review.annotation_id)
        .where(Annotation.project_id == project_id, Annotation.review_status == "corrected",
               Review.verdict == "correct", Review.corrected_answers.is_not(None))
        .order_by(Review.id)
    )
    return {annotation_id: answers for annotation_id, answers in rows}


def has_multi_turn_items(session: Session, project_id: int) -> bool:
    """True when some item is more than one user turn (a system message or a chat history).

    Decides, before the first line is written, whether a file is plain or conversational: TRL
    reads that from the first row, so one file never mixes the two.
    """
    if session.get_bind().dialect.name == "postgresql":
        condition = "(jsonb_array_length(context) <> 1 OR context->0->>'role' <> 'user')"
    else:
        condition = "(json_array_length(context) <> 1 OR json_extract(context, '$[0].role') <> 'user')"
    found = session.execute(
        text(f"SELECT 1 FROM items WHERE project_id = :project AND {condition} LIMIT 1"), {"project": project_id}
    ).first()
    return found is not None


def stream_groups(
    session: Session, conditions: list, pseudonym: Pseudonyms, corrected: dict[int, dict],
    fetch_rows: int = FETCH_ROWS,
) -> Iterator[tuple[Group, int]]:
    """Yield (group, annotations read so far) item by item, in item id then annotation id order."""
    stmt = (
        select(Annotation.id, Annotation.item_id, Annotation.trainer_id, Annotation.answers,
               Annotation.active_seconds, Annotation.gold_score, Annotation.review_status, Annotation.submitted_at)
        .where(and_(*conditions))
        .order_by(Annotation.item_id, Annotation.id)
        .execution_options(yield_per=fetch_rows)
    )
    result = session.execute(stmt)
    group: Group | None = None
    read = 0
    for batch in result.partitions():
        wanted = {r[1] for r in batch}
        if group is not None:
            wanted.discard(group.item_id)
        items = {}
        if wanted:
            for item in session.execute(
                select(Item.id, Item.external_id, Item.context, Item.responses, Item.meta, Item.is_gold)
                .where(Item.id.in_(wanted))
            ):
                items[item[0]] = item
        for ann_id, item_id, trainer_id, answers, seconds, gold, status, submitted in batch:
            if group is None or group.item_id != item_id:
                if group is not None:
                    yield group, read
                i = items[item_id]
                group = Group(i[0], i[1], i[2], i[3], i[4] or {}, i[5])
            if corrected and ann_id in corrected:
                answers = corrected[ann_id]
            group.rows.append(Row(ann_id, pseudonym(trainer_id), answers, seconds, gold, status, submitted))
            read += 1
    if group is not None:
        yield group, read
