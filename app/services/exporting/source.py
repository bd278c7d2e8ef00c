"""Reading a project's annotations for an export: streamed item by item, filtered, pseudonymised.

One ordered query streams the annotations (``yield_per``: a server-side cursor on PostgreSQL, a
plain cursor on SQLite); items are fetched once per streamed batch. Memory holds one batch, never
the project. Every filter that SQL can apply is applied in SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter

import orjson
from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.db import unindexed
from app.models import Annotation, Item, ProjectMember, Review, TrainerStats, utcnow

from ..projects import plain_text
from .options import ExportOptions, instant_text

FETCH_ROWS = 5000
_item_of = itemgetter(1)
_answers_of = itemgetter(3)


class Row:
    """One annotation with its answers adjudicated, for formats that need more than the answers.
    The trainer is an id here; formats that name trainers ask the plan for the pseudonym."""

    __slots__ = ("id", "trainer_id", "answers", "active_seconds", "gold_score", "review_status", "submitted_at")

    def __init__(self, raw: tuple, answers: dict):
        self.id, _item, self.trainer_id, _text, self.active_seconds, self.gold_score, self.review_status, when = raw
        self.answers = answers
        self.submitted_at = _aware(when) if when is not None else None


class Group:
    """One item and its exported annotations, in annotation order.

    ``answers`` holds each annotation's answers (a reviewer's correction where there is one);
    ``rows`` the annotations as read, in the same order. Most formats need only ``answers``;
    ``records()`` builds full rows for the ones that need more. (A plain class: one is made per item.)
    """

    __slots__ = ("item_id", "external_id", "context", "responses", "raw_meta", "is_gold", "rows", "answers", "_texts")

    def __init__(self, item_id: int, external_id: str, context: list, responses: list, raw_meta, is_gold: bool,
                 rows: list[tuple], answers: list[dict]):
        self.item_id, self.external_id, self.context, self.responses = item_id, external_id, context, responses
        self.raw_meta, self.is_gold = raw_meta, is_gold  # metadata is parsed only when asked for
        self.rows, self.answers = rows, answers
        self._texts: dict | None = None

    @property
    def meta(self) -> dict:
        raw = self.raw_meta
        if raw == "{}":  # most items carry none: skip the parse
            return {}
        return _json(raw) or {}

    def text_of(self, response_id: str) -> str:
        if self._texts is None:
            self._texts = {r["id"]: r["text"] for r in self.responses}
        return self._texts[response_id]

    @property
    def response_ids(self) -> list[str]:
        return [r["id"] for r in self.responses]

    @property
    def trainer_ids(self) -> list[int]:
        return [r[2] for r in self.rows]

    def records(self) -> list[Row]:
        return [Row(raw, answers) for raw, answers in zip(self.rows, self.answers, strict=True)]


class Pseudonyms(dict):
    """Stable trainer pseudonyms: an HMAC of the user id under the app secret; never a name or e-mail.
    A dict of the ones made so far, so the per-line code looks one up at C speed (``names[user_id]``)."""

    def __init__(self, secret: str):
        super().__init__()
        self._key = hashlib.sha256(b"groundwork-export-pseudonym:" + secret.encode()).digest()

    def __missing__(self, user_id: int) -> str:
        name = self[user_id] = "annotator-" + hmac.new(self._key, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]
        return name

    __call__ = dict.__getitem__


SPLITS = ("train", "validation", "test")


def split_of(context: list, test_fraction: float, validation_fraction: float) -> str:
    """The item's split, by a hash of its prompt, not of its id, the same in every format of the project:
    each turn's role and text as a reader sees it (``projects.plain_text``: spacing, invisible characters
    and composition do not count, as for repeated items), a system message read as the start of the user
    turn after it. Two items with the same prompt always land in the same split, so no prompt is both
    trained and tested on, also across formats (an SFT, a reward model and a DPO stage built from one
    project share their test prompts); and two items whose rows read the same in any format (hh-rlhf
    opens the first Human turn with the system message) are one prompt here too."""
    return split_by(split_turns(context), test_fraction, validation_fraction)


def split_turns(context: list) -> list[list[str]]:
    """What ``split_of`` hashes: [role, text] per turn, a system message joined to the next user turn by
    a blank line (a trailing one stands as a user turn), as hh-rlhf's transcript writes it. A context
    with no system message gives its own turns."""
    turns, pending = [], []
    for m in context:
        role, content = m.get("role"), m.get("content") or ""
        if role == "system":
            pending.append(content)
        elif role == "user" and pending:
            turns.append(["user", plain_text("\n\n".join([*pending, content]))])
            pending = []
        else:
            turns.append([role, plain_text(content)])
    if pending:
        turns.append(["user", plain_text("\n\n".join(pending))])
    return turns


def split_by(prompt, test_fraction: float, validation_fraction: float) -> str:
    """The split of a prompt already read as a reader sees it (``split_turns``)."""
    digest = hashlib.sha256(orjson.dumps(prompt)).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    # Test takes the lowest shares and validation the highest, so a version that adds or changes one
    # split's fraction never moves the other's prompts (validation prompts never become test prompts).
    if share < test_fraction:
        return "test"
    if share >= 1 - validation_fraction:
        return "validation"
    return "train"


@dataclass
class Snapshot:
    """What a version sees: the annotations and reviews committed when its build started, or as
    they stood at ``as_of``.

    A verdict is final (``review.record_verdict`` refuses a second one), so an annotation whose
    verdict came after the snapshot was unreviewed at it. The statements say so themselves
    (``late_clause``), so each one's own read is consistent, in this process or a helper.
    """

    instant: datetime
    max_annotation_id: int
    max_review_id: int
    as_of: datetime | None = None

    @classmethod
    def take(cls, session: Session, as_of: datetime | None = None) -> Snapshot:
        instant = utcnow()  # before the ids: only a submit in flight at this moment can fall between the two
        return cls(instant, session.scalar(select(func.max(Annotation.id))) or 0,
                   session.scalar(select(func.max(Review.id))) or 0, as_of)

    def review_seen(self):
        """SQL: a review the snapshot sees."""
        seen = Review.id <= self.max_review_id
        return and_(seen, Review.created_at <= self.as_of) if self.as_of else seen

    def late_clause(self):
        """SQL: the annotation's verdict came after the snapshot (few rows: the reviews since)."""
        return Annotation.id.in_(select(Review.annotation_id).where(~self.review_seen()))

    def review_status(self):
        """SQL: the annotation's review status as the snapshot saw it."""
        return case((self.late_clause(), "unreviewed"), else_=Annotation.review_status)

    def as_dict(self) -> dict:
        return {"instant": instant_text(self.instant), "max_annotation_id": self.max_annotation_id,
                "max_review_id": self.max_review_id}


def _trainer_filter(session: Session, project_id: int, options: ExportOptions):
    """SQL conditions on the trainer: flagged ones out, quality below the threshold out."""
    conditions = []
    if options.exclude_flagged_trainers:
        flagged = select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.role == "trainer",
            (ProjectMember.flagged_reason.is_not(None)) | ProjectMember.status.in_(("paused", "removed")),
        )
        conditions.append(("exclude_flagged_trainers", Annotation.trainer_id.not_in(flagged)))
    if options.min_trainer_quality is not None:
        allowed = [
            trainer_id for trainer_id, gold, consensus in session.execute(
                select(TrainerStats.trainer_id, TrainerStats.gold_accuracy, TrainerStats.consensus_agreement)
                .where(TrainerStats.project_id == project_id)
            )
            if trainer_quality(gold, consensus) is not None
            and trainer_quality(gold, consensus) >= options.min_trainer_quality
        ]
        conditions.append(("min_trainer_quality", Annotation.trainer_id.in_(allowed)))
    return conditions


def trainer_quality(gold_accuracy: float | None, consensus_agreement: float | None) -> float | None:
    """What ``min_trainer_quality`` compares: gold accuracy when the trainer met gold, else agreement
    with the consensus. A trainer with neither has no known quality and is left out by that filter."""
    return gold_accuracy if gold_accuracy is not None else consensus_agreement


def named_conditions(session: Session, project_id: int, options: ExportOptions, keep_rejected: bool,
                     snapshot: Snapshot) -> list[tuple[str, object]]:
    """The SQL filters of an export, each with the name an empty version's reasons use: the
    project and the snapshot first (``base``), then one entry per active filter."""
    conditions: list[tuple[str, object]] = [
        ("base", Annotation.project_id == project_id), ("base", Annotation.id <= snapshot.max_annotation_id),
        ("base", unindexed(Annotation.submitted_at) <= snapshot.instant), ("excluded", Annotation.excluded.is_(False)),
    ]
    late = snapshot.late_clause()
    if options.reviewed_only:
        conditions.append(("reviewed_only", and_(Annotation.review_status.in_(("approved", "corrected")), ~late)))
    elif not keep_rejected:
        conditions.append(("rejected", or_(Annotation.review_status != "rejected", late)))
    if options.as_of:
        conditions.append(("as_of", Annotation.submitted_at <= options.as_of))
    if options.date_from:
        conditions.append(("date_from", Annotation.submitted_at >= options.date_from))
    if options.date_to:
        conditions.append(("date_to", Annotation.submitted_at <= options.date_to))
    if options.exclude_gold:
        gold_items = select(Item.id).where(Item.project_id == project_id, Item.is_gold.is_(True))
        conditions.append(("exclude_gold", Annotation.item_id.not_in(gold_items)))
    if not keep_rejected and (repeats := _repeated_items(session, project_id, not options.exclude_gold)) is not None:
        conditions.append(("repeated_items", Annotation.item_id.not_in(repeats)))
    conditions.extend(_trainer_filter(session, project_id, options))
    return conditions


def _repeated_items(session: Session, project_id: int, with_gold: bool = False):
    """SQL: the items that repeat an older item's prompt and responses (``projects.content_hash``),
    among the work items, or among all items when gold is exported too; None when there are none (the
    usual case: the importer refuses a repeated work item, so only items kept from before, or added
    another way, can; a gold item may repeat a work item). A training file takes each question once:
    the oldest item's annotations, never two items' rows that could disagree."""
    hashed = (Item.project_id == project_id, Item.content_hash.is_not(None))
    work = (*hashed, Item.is_gold.is_(False))
    repeated_work = select(Item.content_hash).where(*work).group_by(Item.content_hash).having(func.count() > 1)
    found = session.scalar(select(repeated_work.exists())) is True
    if with_gold and not found:  # a gold item with a twin: a few index look-ups, one per gold item
        gold, twin = aliased(Item), aliased(Item)
        twins = select(twin.id).where(twin.project_id == project_id, twin.is_gold.in_((False, True)),
                                      twin.content_hash == gold.content_hash, twin.id != gold.id)
        found = session.scalar(select(select(gold.id).where(
            gold.project_id == project_id, gold.is_gold.is_(True), gold.content_hash.is_not(None), twins.exists(),
        ).exists())) is True
    if not found:
        return None
    scope = hashed if with_gold else work
    repeated = select(Item.content_hash).where(*scope).group_by(Item.content_hash).having(func.count() > 1)
    oldest = select(func.min(Item.id)).where(*scope, Item.content_hash.in_(repeated)).group_by(Item.content_hash)
    return select(Item.id).where(*scope, Item.content_hash.in_(repeated), Item.id.not_in(oldest))


def annotation_conditions(session: Session, project_id: int, options: ExportOptions, keep_rejected: bool,
                          snapshot: Snapshot) -> list:
    return [c for _name, c in named_conditions(session, project_id, options, keep_rejected, snapshot)]


def count_annotations(session: Session, conditions: list) -> int:
    return session.scalar(select(func.count(Annotation.id)).where(and_(*conditions)))


def first_and_last_submitted(session: Session, conditions: list) -> list:
    """[first, last] ``submitted_at`` of the annotations the conditions pass, [] when none do: two
    walks of the (project, submitted_at) index from either end, each stopping at its first row that
    passes, rather than reading the instant of every row streamed."""
    query = select(Annotation.submitted_at).where(and_(*conditions)).limit(1)
    first = session.scalar(query.order_by(Annotation.submitted_at))
    if first is None:
        return []
    return [first, session.scalar(query.order_by(Annotation.submitted_at.desc()))]


def corrections(session: Session, project_id: int, snapshot: Snapshot) -> dict[int, dict]:
    """Reviewers' corrections of the project that the snapshot sees, latest per annotation: they
    replace the answers."""
    rows = session.execute(
        select(Review.annotation_id, Review.corrected_answers)
        .join(Annotation, Annotation.id == Review.annotation_id)
        .where(Annotation.project_id == project_id, Annotation.review_status == "corrected",
               Review.verdict == "correct", Review.corrected_answers.is_not(None), snapshot.review_seen())
        .order_by(Review.id)
    )
    return {annotation_id: answers for annotation_id, answers in rows}


def _json(value):
    """JSON columns are read untyped (SQLite hands back text, psycopg a parsed value): parse once here."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _aware(value):
    if isinstance(value, str):  # SQLite stores naive UTC text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _bind_value(value, dialect_name: str):
    """A parameter as the driver takes it (what the column types would do for these statements)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect_name == "sqlite" else value
    return value


class RawQuery:
    """A Core SELECT run on the session's own DBAPI connection, yielding batches of plain tuples.

    The one place that bypasses SQLAlchemy's result rows: a million-row export spends half its
    time building them otherwise. Compiled once, run many times with new parameters. PostgreSQL
    gets a named (server-side) cursor, so memory holds one batch; SQLite's cursor steps through
    the result lazily anyway.
    """

    def __init__(self, session: Session, stmt):
        self.connection = session.connection()
        self.dialect = self.connection.dialect
        self.compiled = stmt.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})

    def batches(self, size: int, **params) -> Iterator[list[tuple]]:
        values = {k: _bind_value(v, self.dialect.name) for k, v in self.compiled.params.items()}
        values.update(params)
        driver = self.connection.connection.driver_connection
        if self.dialect.name == "postgresql":
            cursor = driver.cursor(name=f"groundwork_export_{uuid.uuid4().hex[:12]}")
            cursor.itersize = size
            cursor.execute(self.compiled.string, values)
        else:
            cursor = driver.cursor()
            cursor.execute(self.compiled.string, [values[name] for name in self.compiled.positiontup])
        try:
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            cursor.close()


ITEM_COLUMNS = (Item.id, Item.external_id, Item.context, Item.responses, Item.meta, Item.is_gold)


def _batches_with_items(session: Session, annotations: RawQuery, items_query: RawQuery,
                        fetch_rows: int) -> Iterator[tuple[list[tuple], dict]]:
    """Annotation batches, each with the items it needs ({item id: item row})."""
    previous_last = None
    for batch in annotations.batches(fetch_rows):
        # The batch covers a range of item ids (annotations come in item order): fetch that range,
        # less the item the previous batch ended on (its group is already open).
        first = batch[0][1] + (1 if batch[0][1] == previous_last else 0)
        last = previous_last = batch[-1][1]
        if last - first < 4 * len(batch):
            found = items_query.batches(fetch_rows, first=first, last=last)
        else:  # sparse (filters left few annotations per range): ask for exactly the items needed
            wanted = sorted({r[1] for r in batch if r[1] >= first})
            found = RawQuery(session, select(*ITEM_COLUMNS).where(Item.id.in_(wanted))).batches(fetch_rows)
        yield batch, {i[0]: i for rows in found for i in rows}


def stream_groups(
    session: Session, conditions: list, corrected: dict[int, dict], fetch_rows: int = FETCH_ROWS,
    full_rows: bool = True, snapshot: Snapshot | None = None,
) -> Iterator[tuple[Group, int]]:
    """Yield (group, annotations read so far) item by item, in item id then annotation id order.

    Annotations stream in batches; each batch's items come in one query. Values arrive as the
    driver gives them (JSON as text on SQLite, parsed on PostgreSQL) and are converted once, here,
    and only when used: this loop runs once per annotation. Review statuses are the snapshot's.
    """
    columns = [Annotation.id, Annotation.item_id, Annotation.trainer_id, Annotation.answers]
    if full_rows:  # what Row needs beyond the answers; most formats never read these
        status = snapshot.review_status() if snapshot is not None else Annotation.review_status
        columns += [Annotation.active_seconds, Annotation.gold_score, status, Annotation.submitted_at]
    stmt = select(*columns).where(and_(*conditions)).order_by(Annotation.item_id, Annotation.id)
    group: Group | None = None
    current = None
    read = 0
    loads = orjson.loads
    # Items by primary key range only: a project_id condition makes SQLite walk the project's index.
    items_query = RawQuery(session, select(*ITEM_COLUMNS).where(Item.id >= bindparam("first"),
                                                                 Item.id <= bindparam("last")))
    for batch, items in _batches_with_items(session, RawQuery(session, stmt), items_query, fetch_rows):
        parse = loads if type(batch[0][3]) is str else None
        for item_id, run in groupby(batch, key=_item_of):
            run = list(run)
            if corrected:
                answers = [corrected[r[0]] if r[0] in corrected else _json(r[3]) for r in run]
            elif parse is not None:
                answers = list(map(parse, map(_answers_of, run)))
            else:
                answers = list(map(_answers_of, run))
            read += len(run)
            if item_id == current:  # the item's annotations began in the previous batch
                group.rows.extend(run)
                group.answers.extend(answers)
                continue
            if group is not None:
                yield group, read - len(run)
            i = items[item_id]
            current = item_id
            context, responses = i[2], i[3]
            group = Group(item_id, i[1], loads(context) if type(context) is str else context,
                          loads(responses) if type(responses) is str else responses, i[4], bool(i[5]), run, answers)
    if group is not None:
        yield group, read
