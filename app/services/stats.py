"""Project and trainer quality figures, computed from the database into ProjectStats and
TrainerStats. The maths lives in ``services/quality``; this module only gathers the data and stores
the results. Run by a background job every STATS_EVERY submissions and on demand.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import ValidationError
from app.models import Annotation, Item, Project, ProjectMember, ProjectStats, TrainerStats, User, utcnow

from . import pay
from .assignment import project_questions
from .checks import fast_threshold
from .qtypes import Responses, Units, type_of
from .quality import aggregation
from .questions import fits

STATS_EVERY = 50  # submissions between automatic recomputations…
STATS_MIN_INTERVAL = timedelta(minutes=1)  # …and at most this often, however busy the project
LOW_AGREEMENT_ITEMS = 10


def _units(question, rows, items, trainer_index) -> Units:
    """One question's values, rows of (item_id, trainer_id, value), grouped for its type's figures."""
    by_item: dict = defaultdict(list)
    for item_id, trainer_id, value in rows:
        by_item[item_id].append((trainer_id, value))

    def reliability_data():
        unit_ids = sorted(by_item)
        data = [[None] * len(unit_ids) for _ in trainer_index]
        for u, item_id in enumerate(unit_ids):
            for trainer_id, value in by_item[item_id]:
                data[trainer_index[trainer_id]][u] = value
        return data

    return Units(by_item, reliability_data, lambda item_id: Responses(items[item_id].responses or []))


def item_agreement(question, answers, item):
    """Share of annotator pairs on this item that agree (its type's rule); None under two answers."""
    if len(answers) < 2:
        return None
    return type_of(question).item_agreement(question.options or {}, [v for _, v in answers],
                                            Responses(item.responses or []))


def compute_project_stats(session: Session, project: Project) -> ProjectStats:
    """Recompute and store the project's figures and every trainer's.

    Reads and computes first, then opens a write transaction for the results and commits (on SQLite
    a reading transaction may not turn into a writing one once others wrote).
    """
    now = utcnow()
    questions = project_questions(session, project.id)
    rows = session.execute(
        select(Annotation.id, Annotation.item_id, Annotation.trainer_id, Annotation.answers, Annotation.gold_score,
               Annotation.active_seconds, Annotation.review_status, Annotation.review_reason)
        .where(Annotation.project_id == project.id, Annotation.excluded.is_(False))
    ).all()
    items = {i.id: i for i in session.scalars(
        select(Item).where(Item.id.in_({r.item_id for r in rows}))
    )} if rows else {}
    trainers = sorted({r.trainer_id for r in rows})
    trainer_index = {t: n for n, t in enumerate(trainers)}
    work_rows = [r for r in rows if not items[r.item_id].is_gold]

    per_question = []
    consensus: dict = {}  # (question key, item) -> consensus value (quality/consensus.py, through the type)
    reliability: dict = {}
    first_comparable = None
    first_by_item: dict = {}
    for question in questions:
        kind = type_of(question)
        if not kind.comparable:
            continue
        options = question.options or {}
        # An answer that no longer fits its question (older data) is left out rather than breaking the figures.
        values = [(r.item_id, r.trainer_id, value) for r in work_rows
                  if (value := r.answers.get(question.key, kind.unanswered)) is not None
                  and fits(question, value, items[r.item_id].responses)]
        units = _units(question, values, items, trainer_index)
        figures = {"key": question.key, "type": question.type, "title": question.title,
                   "items_with_2_plus": sum(1 for v in units.by_item.values() if len(v) >= 2)}
        if units.by_item:
            figures.update(kind.figures(options, units))
        for item_id, answers in units.by_item.items():
            consensus[(question.key, item_id)] = kind.consensus(
                options, [v for _, v in answers], units.responses(item_id))[0]
        if "desirable" in kind.exported_as(options) and not reliability and len({v for _, _, v in values}) > 1:
            # Dawid–Skene weighs each trainer by their confusion matrix: it yields their reliability.
            ds = aggregation.dawid_skene(values)
            figures["dawid_skene_iterations"] = ds.iterations
            reliability = ds.reliability
        per_question.append(figures)
        if first_comparable is None:  # the same question the exports' item agreement reads
            first_comparable, first_by_item = question, units.by_item

    # Items whose annotators disagree most, for the dashboard and the review queue.
    low = []
    if first_comparable is not None:
        for item_id, answers in first_by_item.items():
            score = item_agreement(first_comparable, answers, items[item_id])
            if score is not None:
                low.append((score, item_id))
        low.sort()
        low = [(s, i) for s, i in low if s < 1.0][:LOW_AGREEMENT_ITEMS]

    # Per trainer.
    members = {m.user_id: m for m in session.scalars(
        select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.role == "trainer"))}
    all_seconds = [r.active_seconds for r in rows]
    project_median = statistics.median(all_seconds) if all_seconds else None
    rows_by_trainer: dict = defaultdict(list)
    for r in rows:
        rows_by_trainer[r.trainer_id].append(r)
    trainer_rows = []
    gold_histogram = [0] * 5
    fast = fast_threshold(session, project.id)
    for trainer_id in trainers:
        mine = rows_by_trainer[trainer_id]
        gold = [r.gold_score for r in mine if r.gold_score is not None]
        agreements = []
        for r in mine:
            for question in questions:
                key = (question.key, r.item_id)
                kind = type_of(question)
                value = r.answers.get(question.key, kind.unanswered)
                if key in consensus and value is not None:
                    score = kind.agreement_with(question.options or {}, value, consensus[key],
                                                Responses(items[r.item_id].responses or []))
                    if score is not None:
                        agreements.append(score)
        reviewed = [r for r in mine if r.review_status != "unreviewed"]
        approved = [r for r in reviewed if r.review_status == "approved"]
        median_seconds = statistics.median(r.active_seconds for r in mine) if mine else None
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
            project_id=project.id, trainer_id=trainer_id, annotations=len(mine), gold_answers=len(gold),
            gold_accuracy=accuracy,
            consensus_agreement=statistics.fmean(agreements) if agreements else None,
            reliability=reliability.get(trainer_id), approval_rate=len(approved) / len(reviewed) if reviewed else None,
            median_seconds=median_seconds, flags=flags, computed_at=now,
        ))

    figures = {
        "questions": per_question,
        "trainers": len(trainers),
        "items_annotated": len({r.item_id for r in work_rows}),
        "median_seconds": project_median,
        "gold_answers": sum(1 for r in rows if r.gold_score is not None),
        "gold_accuracy_histogram": gold_histogram,  # trainers per 20 % band of gold accuracy
        "agreement_question": first_comparable.title if first_comparable is not None else None,
        "lowest_agreement_items": [
            {"item_id": i, "external_id": items[i].external_id, "agreement": s} for s, i in low
        ],
        "review": {
            status: sum(1 for r in rows if r.review_status == status)
            for status in ("unreviewed", "approved", "rejected", "corrected")
        },
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
    stats.annotations, stats.figures, stats.computed_at = len(rows), figures, now
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
    """True when STATS_EVERY submissions arrived since the stored figures were computed, and those
    figures are older than STATS_MIN_INTERVAL.

    Counts only annotations newer than the figures (an index range), so it stays cheap however
    large the project grows.
    """
    from sqlalchemy import func

    computed_at = session.scalar(select(ProjectStats.computed_at).where(ProjectStats.project_id == project.id))
    if computed_at is not None and utcnow() - computed_at < STATS_MIN_INTERVAL:
        return False
    stmt = select(func.count()).select_from(
        select(Annotation.id).where(Annotation.project_id == project.id).limit(STATS_EVERY).subquery()
        if computed_at is None
        else select(Annotation.id)
        .where(Annotation.project_id == project.id, Annotation.submitted_at > computed_at)
        .limit(STATS_EVERY)
        .subquery()
    )
    return session.scalar(stmt) >= STATS_EVERY


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
    # Weeks already approved keep their timesheet; the change shows as an adjustment now.
    pay.settle_approved_weeks(session, trainer_id, project.id)
    session.commit()
    return result.rowcount
