"""Project and trainer quality figures, computed from the database into ProjectStats and
TrainerStats. The maths lives in ``services/quality``; this module only gathers the data and stores
the results. Run by a background job every STATS_EVERY submissions and on demand.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import timedelta
from itertools import combinations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import ValidationError
from app.models import Annotation, Item, Project, ProjectMember, ProjectStats, TrainerStats, User, utcnow

from . import pay
from .assignment import project_questions, response_ids
from .quality import aggregation, agreement
from .questions import fits, ranks_of

STATS_EVERY = 50  # submissions between automatic recomputations…
STATS_MIN_INTERVAL = timedelta(minutes=1)  # …and at most this often, however busy the project
LOW_AGREEMENT_ITEMS = 10


def _safe(fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except (ValueError, ZeroDivisionError):
        return None
    return None if value != value else value  # NaN -> None


def _pairs_of(question, value, item_responses):
    if question.type == "preference":
        return agreement.preference_pairs(value, item_responses)
    return agreement.ranking_pairs(value)


def _question_figures(question, rows, items, trainer_index):
    """Agreement figures of one question over rows of (item_id, trainer_id, value)."""
    figures: dict = {"key": question.key, "type": question.type, "title": question.title}
    by_item: dict = defaultdict(list)
    for item_id, trainer_id, value in rows:
        by_item[item_id].append((trainer_id, value))
    figures["items_with_2_plus"] = sum(1 for v in by_item.values() if len(v) >= 2)
    unit_ids = sorted(by_item)

    def reliability_data():
        data = [[None] * len(unit_ids) for _ in trainer_index]
        for u, item_id in enumerate(unit_ids):
            for trainer_id, value in by_item[item_id]:
                data[trainer_index[trainer_id]][u] = value
        return data

    if question.type == "label" and unit_ids:
        figures["alpha_nominal"] = _safe(agreement.krippendorff_alpha, reliability_data(), "nominal")
        labels = question.options["labels"]
        raters = {len(v) for v in by_item.values()}
        if len(raters) == 1 and min(raters) >= 2:
            counts = [[sum(1 for _, x in by_item[i] if x == label) for label in labels] for i in unit_ids]
            figures["fleiss_kappa"] = _safe(agreement.fleiss_kappa, counts)
    elif question.type == "rating" and unit_ids:
        data = reliability_data()
        figures["alpha_ordinal"] = _safe(agreement.krippendorff_alpha, data, "ordinal")
        figures["alpha_interval"] = _safe(agreement.krippendorff_alpha, data, "interval")
        figures["mean"] = statistics.fmean(v for _, _, v in rows) if rows else None
    elif question.type in ("preference", "ranking") and unit_ids:
        units = [[_pairs_of(question, value, response_ids(items[i])) for _, value in by_item[i]] for i in unit_ids]
        figures["pairwise_agreement"] = _safe(agreement.pairwise_preference_agreement, units)
        if question.type == "preference":
            figures["alpha_interval"] = _safe(agreement.krippendorff_alpha, reliability_data(), "interval")
        else:
            taus = []
            for i in unit_ids:
                for (_, a), (_, b) in combinations(by_item[i], 2):
                    ra, rb = ranks_of(a), ranks_of(b)
                    ids = sorted(ra)
                    tau = _safe(agreement.kendall_tau_b, [ra[x] for x in ids], [rb.get(x, 0) for x in ids])
                    if tau is not None:
                        taus.append(tau)
            figures["mean_tau_b"] = statistics.fmean(taus) if taus else None
    return figures, by_item


def item_agreement(question, answers, item):
    """Share of annotator pairs on this item that agree, for the first comparable question."""
    if len(answers) < 2:
        return None
    if question.type in ("label", "rating"):
        pairs = list(combinations([v for _, v in answers], 2))
        return sum(1 for a, b in pairs if a == b) / len(pairs)
    if question.type in ("preference", "ranking"):
        units = [[_pairs_of(question, value, response_ids(item)) for _, value in answers]]
        return _safe(agreement.pairwise_preference_agreement, units)
    return None


def compute_project_stats(session: Session, project: Project) -> ProjectStats:
    """Recompute and store the project's figures and every trainer's.

    Reads and computes first, then opens a write transaction for the results, which the caller
    commits (on SQLite a reading transaction may not turn into a writing one once others wrote).
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
    consensus: dict = {}  # (question key, item) -> consensus value
    reliability: dict = {}
    first_comparable = None
    first_by_item: dict = {}
    for question in questions:
        if question.type == "text":
            continue
        # An answer that no longer fits its question (older data) is left out rather than breaking the figures.
        values = [(r.item_id, r.trainer_id, r.answers[question.key]) for r in work_rows
                  if question.key in r.answers and fits(question, r.answers[question.key], response_ids(items[r.item_id]))]
        figures, by_item = _question_figures(question, values, items, trainer_index)
        if question.type == "label" and values:
            ds = aggregation.dawid_skene(values) if len({v for _, _, v in values}) > 1 else None
            if ds is not None:
                figures["dawid_skene_iterations"] = ds.iterations
                for item_id, (label, _p) in ds.consensus.items():
                    consensus[(question.key, item_id)] = label
                if not reliability:
                    reliability = ds.reliability
            else:
                for item_id, (label, _share) in aggregation.majority_vote(
                    {i: [v for _, v in a] for i, a in by_item.items()}
                ).items():
                    consensus[(question.key, item_id)] = label
        elif question.type == "rating":
            for item_id, answers in by_item.items():
                consensus[(question.key, item_id)] = round(statistics.fmean(v for _, v in answers))
        elif question.type == "preference":
            for item_id, answers in by_item.items():
                mean = statistics.fmean(v for _, v in answers)
                consensus[(question.key, item_id)] = (mean > 0) - (mean < 0)
        per_question.append(figures)
        if first_comparable is None and by_item:
            first_comparable, first_by_item = question, by_item

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
    for trainer_id in trainers:
        mine = rows_by_trainer[trainer_id]
        gold = [r.gold_score for r in mine if r.gold_score is not None]
        compared = agreed = 0
        for r in mine:
            for question in questions:
                key = (question.key, r.item_id)
                if key in consensus and question.key in r.answers:
                    compared += 1
                    value = r.answers[question.key]
                    if question.type == "preference":
                        value = (value > 0) - (value < 0)
                    agreed += value == consensus[key]
        reviewed = [r for r in mine if r.review_status != "unreviewed"]
        approved = [r for r in reviewed if r.review_status == "approved"]
        median_seconds = statistics.median(r.active_seconds for r in mine) if mine else None
        flags = []
        member = members.get(trainer_id)
        if member is not None and member.flagged_reason:
            flags.append(member.flagged_reason)
        if member is not None and member.status != "active":
            flags.append(member.status)
        if project_median and median_seconds is not None and median_seconds < project_median / 3:
            flags.append("too fast")
        accuracy = sum(gold) / len(gold) if gold else None
        if accuracy is not None:
            gold_histogram[min(int(accuracy * 5), 4)] += 1
        trainer_rows.append(TrainerStats(
            project_id=project.id, trainer_id=trainer_id, annotations=len(mine), gold_answers=len(gold),
            gold_accuracy=accuracy, consensus_agreement=agreed / compared if compared else None,
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
    session.flush()
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
    """Exclude (or include again) every annotation of one trainer in a project; audited. Returns how many.
    Nobody excludes or includes their own work (it decides their pay)."""
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
    return result.rowcount
