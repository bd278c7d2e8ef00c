"""Project and trainer quality figures, computed from the database into ProjectStats and
TrainerStats. The maths lives in ``services/quality``; this module only gathers the data and stores
the results. Run by a background job every STATS_EVERY submissions and on demand.
"""

from __future__ import annotations

import gc
import statistics
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from sqlalchemy import Text, cast, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from app.db import begin_write, unindexed
from app.errors import ValidationError
from app.models import (
    Annotation,
    Item,
    Project,
    ProjectMember,
    ProjectStats,
    Review,
    TrainerStats,
    User,
    utcnow,
)

from . import pay
from .assignment import project_questions
from .checks import fast_threshold
from .qtypes import Responses, Units, type_of
from .quality import aggregation

STATS_EVERY = 50  # submissions between automatic recomputations (fewer while the project is small: a
STATS_SHARE = 10  # tenth of the answers the figures hold, at least one, so a small project's stay current)…
STATS_MIN_INTERVAL = timedelta(minutes=1)  # …and at most this often, however busy the project
# {engine: {project id: the figures' computed_at last read}}, so a submit in the minute after a
# recomputation asks nothing (every submit asks ``recompute_due``). Figures are only ever replaced by
# newer ones, so a remembered time answers "not due" where the row would too (two computations
# finishing out of order delay the next by at most their gap); weak, so the memo goes with its engine.
_computed_seen: WeakKeyDictionary = WeakKeyDictionary()
# {engine: {project id: the computed_at a later recomputation was asked for}} (``recompute_later``).
_later_asked: WeakKeyDictionary = WeakKeyDictionary()
# The same for verdicts (``after_verdict``): apart, as the job a verdict asks for recomputes whatever
# the answers, where a submit's asks whether enough answers came.
_verdict_asked: WeakKeyDictionary = WeakKeyDictionary()
LOW_AGREEMENT_ITEMS = 10


def item_agreement(question, answers, item):
    """Share of annotator pairs on this item that agree (its type's rule); None under two answers."""
    if len(answers) < 2:
        return None
    return type_of(question).item_agreement(question.options or {}, [v for _, v in answers],
                                            Responses(item.responses or []))


# Whether a helper thread reads the next chunk while this one is worked through, per database: a
# server works beside us, while SQLite makes its rows in this process under the interpreter's lock,
# where a second thread only competes with the work.
READ_AHEAD = {"sqlite": False}
STREAM_CHUNK = 20_000  # annotations read per statement (keyset on item, id: one index range each)


class _ItemAnswers(Mapping):
    """One question's answers on many items (item -> [(trainer, value)]) held in flat arrays.

    Built in item order (the stream's), so a lookup is a bisection; the (trainer, value) lists are
    made only when asked for, which keeps a million answers to a few bytes each. Iterating goes by
    each item's first answer, as the dict it replaces did.
    """

    def __init__(self):
        self.items = array("q")  # ascending item ids
        self.starts = array("q")  # where each item's answers begin in the flat arrays
        self.trainers = array("q")
        self.given: list = []  # the values, flat
        self.ids = array("q")  # each answer's annotation id (Dawid–Skene reads them in id order)
        self.responses = array("l")  # per item: index into the shared table of response-id tuples

    def add(self, item_id, response_key, people, values, fitting) -> None:
        """One item's answers that fit: ``fitting`` indexes ``people`` ((annotation, trainer, …)) and
        ``values`` alike."""
        self.items.append(item_id)
        self.starts.append(len(self.given))
        self.responses.append(response_key)
        ids, trainers, given = self.ids, self.trainers, self.given
        for n in fitting:
            person = people[n]
            ids.append(person[0])
            trainers.append(person[1])
            given.append(values[n])

    def value_groups(self):
        """Each item's values, item by item (``Units.values``)."""
        given, starts = self.given, self.starts
        bounds = list(starts)
        bounds.append(len(given))
        return (given[bounds[p]:bounds[p + 1]] for p in range(len(starts)))

    def _bounds(self, position):
        end = self.starts[position + 1] if position + 1 < len(self.starts) else len(self.given)
        return self.starts[position], end

    def position(self, item_id) -> int:
        position = bisect_left(self.items, item_id)
        if position == len(self.items) or self.items[position] != item_id:
            raise KeyError(item_id)
        return position

    def __getitem__(self, item_id):
        items, starts = self.items, self.starts
        position = bisect_left(items, item_id)
        if position == len(items) or items[position] != item_id:
            raise KeyError(item_id)
        start = starts[position]
        end = starts[position + 1] if position + 1 < len(starts) else len(self.given)
        return list(zip(self.trainers[start:end], self.given[start:end], strict=True))

    def __iter__(self):
        """Items in the order of their first answer (annotation id): the order sums over items have
        always been taken in, so float figures come out to the last bit."""
        first = self.ids
        starts = self.starts
        order = sorted(range(len(starts)), key=lambda p: first[starts[p]])
        return (self.items[p] for p in order)

    def __len__(self):
        return len(self.items)

    def sizes(self):
        """How many answers each item has, in item order."""
        total = len(self.given)
        return [(self.starts[p + 1] if p + 1 < len(self.starts) else total) - self.starts[p]
                for p in range(len(self.starts))]

    def reliability_data(self):
        """Krippendorff's coders × units table, with one row per *position* in a unit rather than per
        trainer: alpha reads only the values each unit holds, so the figure is the same, and the table
        is (most answers on one item) × items instead of trainers × items. Whole numbers go as a float
        array with NaN for missing (what the maths reads fastest); anything else as lists with None."""
        import numpy as np

        starts = np.asarray(self.starts, dtype=np.int64)
        counts = np.diff(starts, append=len(self.given))
        width = int(counts.max()) if len(counts) else 0
        if set(map(type, self.given)) <= {int}:  # whole numbers
            data = np.full((width, len(self.items)), np.nan)
            unit = np.repeat(np.arange(len(counts)), counts)
            slot = np.arange(len(self.given)) - np.repeat(starts, counts)
            data[slot, unit] = np.asarray(self.given, dtype=float)
            return data
        sizes = counts.tolist()
        data = [[None] * len(self.items) for _ in range(width)]
        start = 0
        for unit, size in enumerate(sizes):
            for slot in range(size):
                data[slot][unit] = self.given[start + slot]
            start += size
        return data

    def triples_in_id_order(self):
        """(item, trainer, value) for every answer, in annotation id order (the order the figures
        were always fed in)."""
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        item_of = array("q")
        for position, size in enumerate(self.sizes()):
            item_of.extend([self.items[position]] * size)
        return ((item_of[n], self.trainers[n], self.given[n]) for n in order)


class _ResponseTable:
    """Items' response ids, shared: most items of a project carry the same ids, so each distinct
    tuple is stored (and turned into ``Responses``) once."""

    def __init__(self):
        self.index: dict = {}
        self.table: list = []

    def key(self, responses: Responses) -> int:
        ids = tuple(responses)
        found = self.index.get(ids)
        if found is None:
            found = self.index[ids] = len(self.table)
            self.table.append(Responses(ids))
        return found


@dataclass
class _Question:
    question: object
    kind: object
    options: dict
    key: str
    unanswered: object
    rules: object  # the type's item_rules for its options
    answers: _ItemAnswers = field(default_factory=_ItemAnswers)
    items_with_2_plus: int = 0


@dataclass
class _Trainer:
    annotations: int = 0
    gold: list = field(default_factory=list)  # gold scores, in annotation id order once sorted
    agreements: array = field(default_factory=lambda: array("d"))
    seconds: array = field(default_factory=lambda: array("q"))
    reviewed: int = 0
    approved: int = 0


class _Item:
    """What the per-item rules read of an item: its responses (``item_agreement``'s argument)."""

    __slots__ = ("responses",)

    def __init__(self, responses):
        self.responses = responses


def _stream(session: Session, project_id: int):
    """The project's included annotations in (item, id) order, read in chunks by keyset on the
    (project, item, id) index: bounded memory, and no statement binds more than a handful of
    parameters however large the project. Yields (rows, {item: (gold flag, responses)}) per chunk,
    the items those rows answer.

    Where ``READ_AHEAD`` says so, the next chunk is read by a helper thread while the caller works
    through this one: the database server (and the driver's waiting on it) works beside the Python
    that consumes the rows. Only that thread uses the connection until the stream ends, so the two
    never share it at once."""
    from concurrent.futures import ThreadPoolExecutor

    connection = session.connection()
    answers_text = cast(Annotation.answers, Text)

    def chunk(last):
        stmt = (
            select(Annotation.id, Annotation.item_id, Annotation.trainer_id, answers_text, Annotation.gold_score,
                   Annotation.active_seconds, Annotation.review_status)
            .where(Annotation.project_id == project_id, Annotation.excluded.is_(False))
            .order_by(Annotation.item_id, Annotation.id)
            .limit(STREAM_CHUNK)
        )
        if last is not None:
            stmt = stmt.where(tuple_(Annotation.item_id, Annotation.id) > tuple_(*last))
        rows = connection.execute(stmt).all()  # Core rows: no ORM loading per row
        if not rows:
            return rows, {}
        # The items of these rows, once each (a range of the primary key): an item's responses are
        # long texts, read once rather than with each of its annotations.
        items = {item_id: (is_gold, responses) for item_id, is_gold, responses in connection.execute(
            select(Item.id, Item.is_gold, cast(Item.responses, Text))
            .where(Item.project_id == project_id, Item.id >= rows[0][1], Item.id <= rows[-1][1])).all()}
        return rows, items

    if not READ_AHEAD.get(connection.dialect.name, True):
        last = None
        while True:
            rows, items = chunk(last)
            yield rows, items
            if len(rows) < STREAM_CHUNK:
                return
            last = (rows[-1][1], rows[-1][0])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stats-stream") as reader:
        pending = reader.submit(chunk, None)
        while pending is not None:
            rows, items = pending.result()
            pending = reader.submit(chunk, (rows[-1][1], rows[-1][0])) if len(rows) == STREAM_CHUNK else None
            yield rows, items


def compute_project_stats(session: Session, project: Project) -> ProjectStats:
    """Recompute and store the project's figures and every trainer's.

    Streams the annotations item by item (``_stream``) and keeps only compact per-item and
    per-trainer arrays, so memory grows by a few bytes per annotation and no statement lists the
    project's rows. Reads and computes first, then opens a write transaction for the results and
    commits (on SQLite a reading transaction may not turn into a writing one once others wrote).

    Python's cycle collector is paused meanwhile: the work makes millions of short-lived lists and
    tuples (none in cycles), and each full collection would walk all that is alive, which made the
    time grow faster than the data.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compute_project_stats(session, project)
    finally:
        if enabled:
            gc.enable()


def _compute_project_stats(session: Session, project: Project) -> ProjectStats:
    from orjson import loads

    now = utcnow()
    # The verdicts these figures see at most (any project's: one look-up of the key): a later one makes
    # the figures behind (``verdicts_behind``), as the review counts and approval rates read verdicts.
    reviews_to = session.scalar(select(func.max(Review.id))) or 0
    questions = project_questions(session, project.id)
    comparable = [_Question(q, type_of(q), q.options or {}, q.key, type_of(q).unanswered,
                            type_of(q).item_rules(q.options or {}))
                  for q in questions if type_of(q).comparable]
    # Rules that read only the responses' ids get the item's ids, shared between items with the same.
    texts_read = any(q.kind.reads_texts for q in comparable)
    first = comparable[0] if comparable else None  # the same question the exports' item agreement reads
    response_table = _ResponseTable()
    trainers: dict[int, _Trainer] = defaultdict(_Trainer)
    review = dict.fromkeys(("unreviewed", "approved", "rejected", "corrected"), 0)
    gold_answers = annotations = items_annotated = 0
    low: list = []  # (agreement, item id) under 1.0, the lowest kept
    response_index = response_table.index

    def finish_item(item_id, is_gold, responses_raw, group):
        nonlocal items_annotated
        if is_gold:
            return
        items_annotated += 1
        if not comparable:
            return
        entries = loads(responses_raw) if responses_raw else []
        if texts_read:
            responses = Responses(entries)
            response_key = response_table.key(responses)
        else:
            ids = tuple([r if isinstance(r, str) else r["id"] for r in entries])
            response_key = response_index.get(ids)
            if response_key is None:
                response_key = response_table.key(Responses(ids))
            responses = response_table.table[response_key]
        dicts = [loads(answers_raw) if answers_raw else {} for _, _, answers_raw in group]
        for q in comparable:
            key, unanswered = q.key, q.unanswered
            values = [answers.get(key, unanswered) for answers in dicts]
            people = group
            if None in values:
                present = [n for n, value in enumerate(values) if value is not None]
                if not present:
                    continue
                values = [values[n] for n in present]
                people = [group[n] for n in present]
            fitting, scores, agreement = q.rules(values, responses, q is first)
            if not fitting:
                continue
            q.answers.add(item_id, response_key, people, values, fitting)
            if len(fitting) >= 2:
                q.items_with_2_plus += 1
            # Each trainer's agreement with the consensus reads every answer given (as it always did).
            for person, score in zip(people, scores, strict=True):
                if score is not None:
                    trainers[person[1]].agreements.append(score)
            if agreement is not None and agreement < 1.0:  # item_agreement: None under two answers
                low.append((agreement, item_id))
                if len(low) > 8 * LOW_AGREEMENT_ITEMS:
                    low.sort()
                    del low[LOW_AGREEMENT_ITEMS:]

    current = None
    group: list = []
    for rows, items in _stream(session, project.id):
        for annotation_id, item_id, trainer_id, answers_raw, gold_score, active_seconds, review_status in rows:
            if current is None or item_id != current[0]:
                if current is not None:
                    finish_item(*current, group)
                current, group = (item_id, *items[item_id]), []
            group.append((annotation_id, trainer_id, answers_raw))
            trainer = trainers[trainer_id]
            trainer.seconds.append(active_seconds)  # how many it holds is the trainer's annotations
            if gold_score is not None:
                trainer.gold.append((annotation_id, gold_score))
                gold_answers += 1
            if review_status in review:
                review[review_status] += 1
            if review_status != "unreviewed":
                trainer.reviewed += 1
                trainer.approved += review_status == "approved"
    if current is not None:
        finish_item(*current, group)
    low.sort()
    low = low[:LOW_AGREEMENT_ITEMS]

    per_question = []
    reliability: dict = {}
    for q in comparable:
        by_item = q.answers
        units = Units(by_item, by_item.reliability_data,
                      lambda item_id, by_item=by_item: response_table.table[by_item.responses[by_item.position(item_id)]],
                      by_item.value_groups)
        figures = {"key": q.question.key, "type": q.question.type, "title": q.question.title,
                   "items_with_2_plus": q.items_with_2_plus}
        if len(by_item):
            figures.update(q.kind.figures(q.options, units))
        if "desirable" in q.kind.exported_as(q.options) and not reliability and len(set(by_item.given)) > 1:
            # Dawid–Skene weighs each trainer by their confusion matrix: it yields their reliability.
            ds = aggregation.dawid_skene(by_item.triples_in_id_order())
            figures["dawid_skene_iterations"] = ds.iterations
            reliability = ds.reliability
        per_question.append(figures)
        q.answers = None  # done with it: let it go before the next question's figures

    # Per trainer.
    members = {m.user_id: m for m in session.scalars(
        select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.role == "trainer"))}
    all_seconds = array("q")  # the median reads them in any order
    for mine in trainers.values():
        mine.annotations = len(mine.seconds)
        annotations += mine.annotations
        all_seconds.extend(mine.seconds)
    project_median = statistics.median(all_seconds) if all_seconds else None
    del all_seconds
    trainer_rows = []
    gold_histogram = [0] * 5
    fast = fast_threshold(session, project.id)
    for trainer_id in sorted(trainers):
        mine = trainers[trainer_id]
        gold = [score for _, score in sorted(mine.gold)]  # summed in annotation order, as always
        median_seconds = statistics.median(mine.seconds) if mine.annotations else None
        flags = []
        member = members.get(trainer_id)
        if member is not None and member.flagged_reason:
            flags.append(member.flagged_reason)
        if member is not None and member.status != "active":
            flags.append(member.status)
        # The same "too fast" line as review routing (checks.fast_threshold), met by the trainer's median.
        if fast is not None and median_seconds is not None and median_seconds < fast:
            flags.append("too fast")
        accuracy = sum(gold) / len(gold) if gold else None
        if accuracy is not None:
            gold_histogram[min(int(accuracy * 5), 4)] += 1
        trainer_rows.append(TrainerStats(
            project_id=project.id, trainer_id=trainer_id, annotations=mine.annotations, gold_answers=len(gold),
            gold_accuracy=accuracy,
            consensus_agreement=statistics.fmean(mine.agreements) if mine.agreements else None,
            reliability=reliability.get(trainer_id),
            approval_rate=mine.approved / mine.reviewed if mine.reviewed else None,
            median_seconds=median_seconds, flags=flags, computed_at=now,
        ))

    external_ids = dict(session.execute(
        select(Item.id, Item.external_id).where(Item.id.in_([i for _, i in low]))).all()) if low else {}
    figures = {
        "questions": per_question,
        "trainers": len(trainers),
        "items_annotated": items_annotated,
        "median_seconds": project_median,
        "gold_answers": gold_answers,
        "gold_accuracy_histogram": gold_histogram,  # trainers per 20 % band of gold accuracy
        "agreement_question": first.question.title if first is not None else None,
        "lowest_agreement_items": [
            {"item_id": i, "external_id": external_ids[i], "agreement": s} for s, i in low
        ],
        "review": review,
        "reviews_to": reviews_to,
    }

    # Everything is computed: now take the write lock (SQLite) just for storing the results.
    begin_write(session)
    if low:
        session.execute(
            update(Annotation)
            .where(Annotation.item_id.in_([i for _, i in low]), Annotation.review_status == "unreviewed",
                   Annotation.review_reason.is_(None), Annotation.excluded.is_(False))
            .values(review_reason="low_agreement")
        )
    session.execute(delete(TrainerStats).where(TrainerStats.project_id == project.id))
    session.add_all(trainer_rows)
    stats = session.scalar(select(ProjectStats).where(ProjectStats.project_id == project.id))
    if stats is None:
        stats = ProjectStats(project_id=project.id)
        session.add(stats)
    stats.annotations, stats.figures, stats.computed_at = annotations, figures, now
    session.commit()
    return stats


def trainer_table(session: Session, project: Project, sort: str = "annotations", descending: bool = True) -> list:
    """(TrainerStats, user name, user email) rows for the dashboard, sorted by one column."""
    columns = {
        "annotations": TrainerStats.annotations, "gold_accuracy": TrainerStats.gold_accuracy,
        "consensus_agreement": TrainerStats.consensus_agreement, "reliability": TrainerStats.reliability,
        "approval_rate": TrainerStats.approval_rate, "median_seconds": TrainerStats.median_seconds,
        "name": User.name,
    }
    column = columns.get(sort, TrainerStats.annotations)
    order = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return session.execute(
        select(TrainerStats, User.name, User.email)
        .join(User, User.id == TrainerStats.trainer_id)
        .where(TrainerStats.project_id == project.id)
        .order_by(order, User.name)
    ).all()


def project_figures(session: Session, project: Project) -> ProjectStats | None:
    return session.scalar(select(ProjectStats).where(ProjectStats.project_id == project.id))


def recompute_due(session: Session, project: Project) -> bool:
    """True when enough submissions arrived since the stored figures were computed — STATS_EVERY, or a
    STATS_SHARE-th of the answers the figures hold when that is fewer (at least one: a project with no
    figures gets them at its first answer) — and those figures are older than STATS_MIN_INTERVAL.

    Counts only annotations newer than the figures (an index range, at most STATS_EVERY of them), so it
    stays cheap however large the project grows.
    """
    now = utcnow()
    seen = _computed_seen.setdefault(session.get_bind(), {})
    recent = seen.get(project.id)
    if recent is not None and now - recent < STATS_MIN_INTERVAL:
        return False  # the figures were at least this fresh when last read here: no read needed
    stored = session.execute(select(ProjectStats.computed_at, ProjectStats.annotations)
                             .where(ProjectStats.project_id == project.id)).first()
    computed_at, counted = stored if stored is not None else (None, 0)
    if computed_at is not None and now - computed_at < STATS_MIN_INTERVAL:
        seen[project.id] = computed_at
        return False
    needed = max(1, min(STATS_EVERY, (counted or 0) // STATS_SHARE))
    return answers_since(session, project, computed_at, needed) >= needed


def recompute_later(session: Session, project: Project) -> float | None:
    """After a submit that found the figures too fresh to recompute (``recompute_due`` False within
    STATS_MIN_INTERVAL): the seconds until they may be, once per computation (later submits of that
    minute get None), so a burst of answers with nothing after it is not left out of them for good.
    The job that runs then asks ``recompute_due`` again. Reads only what ``recompute_due`` remembered."""
    engine = session.get_bind()
    computed_at = _computed_seen.get(engine, {}).get(project.id)
    if computed_at is None:
        return None
    wait = (computed_at + STATS_MIN_INTERVAL - utcnow()).total_seconds()
    asked = _later_asked.setdefault(engine, {})
    if wait <= 0 or asked.get(project.id) == computed_at:
        return None
    asked[project.id] = computed_at
    return wait + 1  # a second past the interval, so the figures are no longer fresh when it runs


SINCE_SHOWN_MAX = 10_000  # pages count the answers their figures miss up to this many ("10,000 or more")


def after_verdict(session: Session, project: Project) -> float | None:
    """After a verdict committed (review counts and approval rates read verdicts): 0 to recompute the
    figures now (none yet, or older than STATS_MIN_INTERVAL), else the seconds until they may be,
    asked once per computation (later verdicts of that minute get None: the job asked for will see
    them). Reads the figures' instant only, so a verdict costs one look-up."""
    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == project.id))
    if computed_at is None:
        return 0.0
    wait = (computed_at + STATS_MIN_INTERVAL - utcnow()).total_seconds()
    if wait <= 0:
        return 0.0
    asked = _verdict_asked.setdefault(session.get_bind(), {})
    if asked.get(project.id) == computed_at:
        return None
    asked[project.id] = computed_at
    return wait + 1


def verdicts_behind(session: Session, project: Project, stats: ProjectStats | None) -> int:
    """Verdicts on the project's answers newer than its stored figures (``figures.reviews_to``, the
    highest verdict id they saw), up to SINCE_SHOWN_MAX: what a quality page says beside the answers.
    Figures stored before they kept that mark say nothing (0): which verdicts they held is unknown.
    Reads the newer verdicts by their key and each one's annotation by its own: SQLite, left to
    itself, would walk every annotation of the project instead."""
    reviews_to = (stats.figures or {}).get("reviews_to") if stats is not None else None
    if reviews_to is None:
        return 0
    newer = (select(Review.id).join(Annotation, Annotation.id == Review.annotation_id)
             .where(Review.id > int(reviews_to), unindexed(Annotation.project_id) == project.id)
             .limit(SINCE_SHOWN_MAX))
    return session.scalar(select(func.count()).select_from(newer.subquery()))


def answers_since(session: Session, project: Project, computed_at: datetime | None, limit: int | None = None) -> int:
    """How many of the project's answers were submitted after ``computed_at`` (every one when None),
    counted up to ``limit``: the ones its quality figures do not hold yet."""
    newer = select(Annotation.id).where(Annotation.project_id == project.id)
    if computed_at is not None:
        newer = newer.where(Annotation.submitted_at > computed_at)
    if limit is not None:
        newer = newer.limit(limit)
    return session.scalar(select(func.count()).select_from(newer.subquery()))


def exclude_trainer_work(
    session: Session, project: Project, trainer_id: int, actor_id: int | None, excluded: bool = True
) -> int:
    """Exclude (or include again) every annotation of one trainer in a project, with the pay it
    settles; audited; commits. Returns how many. Nobody excludes or includes their own work (it
    decides their pay)."""
    from . import audit

    if trainer_id == actor_id:
        raise ValidationError({"trainer": "nobody may exclude or include their own work; another admin does it"})
    begin_write(session)
    pay.lock_trainers(session, [trainer_id])  # this changes their billable time: the pay lock
    result = session.execute(
        update(Annotation)
        .where(Annotation.project_id == project.id, Annotation.trainer_id == trainer_id,
               Annotation.excluded.is_(not excluded))
        .values(excluded=excluded)
    )
    audit.record(session, actor_id, "annotations.exclude" if excluded else "annotations.include", "project",
                 project.id, {"trainer_id": trainer_id, "annotations": result.rowcount})
    pay.recount_billable(session, project.id, trainer_id)  # their weeks, without the excluded work
    # Weeks already approved keep their timesheet; the change shows as an adjustment now.
    pay.settle_approved_weeks(session, trainer_id, project.id)
    session.commit()
    return result.rowcount
