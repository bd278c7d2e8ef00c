"""The streamed statistics give exactly the figures of the method they replaced (which loaded every
annotation as a row and listed the project's items in one IN list), on random projects of every
comparable question type, with gold items, reviews, exclusions and answers that no longer fit."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models import Annotation, Assignment, Item, ProjectMember, Review, TrainerStats, utcnow
from app.services import projects as project_service
from app.services import stats as stats_service
from app.services.assignment import project_questions
from app.services.checks import fast_threshold
from app.services.qtypes import Responses, Units, type_of
from app.services.quality import aggregation
from app.services.questions import fits
from tests.factories import make_user

# --- the previous method, kept here as the oracle --------------------------------------------------------


def _previous_units(rows, items, trainer_index) -> Units:
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


def previous_figures(session, project):
    """What compute_project_stats computed before it streamed: (figures, {trainer: row fields})."""
    questions = project_questions(session, project.id)
    rows = session.execute(
        select(Annotation.id, Annotation.item_id, Annotation.trainer_id, Annotation.answers, Annotation.gold_score,
               Annotation.active_seconds, Annotation.review_status, Annotation.review_reason)
        .where(Annotation.project_id == project.id, Annotation.excluded.is_(False)).order_by(Annotation.id)
    ).all()
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_({r.item_id for r in rows})))}
    trainers = sorted({r.trainer_id for r in rows})
    trainer_index = {t: n for n, t in enumerate(trainers)}
    work_rows = [r for r in rows if not items[r.item_id].is_gold]
    per_question, consensus, reliability = [], {}, {}
    first_comparable, first_by_item = None, {}
    for question in questions:
        kind = type_of(question)
        if not kind.comparable:
            continue
        options = question.options or {}
        values = [(r.item_id, r.trainer_id, value) for r in work_rows
                  if (value := r.answers.get(question.key, kind.unanswered)) is not None
                  and fits(question, value, items[r.item_id].responses)]
        units = _previous_units(values, items, trainer_index)
        figures = {"key": question.key, "type": question.type, "title": question.title,
                   "items_with_2_plus": sum(1 for v in units.by_item.values() if len(v) >= 2)}
        if units.by_item:
            figures.update(kind.figures(options, units))
        for item_id, answers in units.by_item.items():
            if len(answers) < 2:  # one answer is its own consensus: nobody's agreement is counted
                continue
            consensus[(question.key, item_id)] = kind.consensus(
                options, [v for _, v in answers], units.responses(item_id))[0]
        if "desirable" in kind.exported_as(options) and not reliability and len({v for _, _, v in values}) > 1:
            ds = aggregation.dawid_skene(values)
            figures["dawid_skene_iterations"] = ds.iterations
            reliability = ds.reliability
        per_question.append(figures)
        if first_comparable is None:
            first_comparable, first_by_item = question, units.by_item
    low = []
    if first_comparable is not None:
        for item_id, answers in first_by_item.items():
            score = stats_service.item_agreement(first_comparable, answers, items[item_id])
            if score is not None:
                low.append((score, item_id))
        low.sort()
        low = [(s, i) for s, i in low if s < 1.0][:stats_service.LOW_AGREEMENT_ITEMS]
    members = {m.user_id: m for m in session.scalars(
        select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.role == "trainer"))}
    rows_by_trainer = defaultdict(list)
    for r in rows:
        rows_by_trainer[r.trainer_id].append(r)
    out, gold_histogram = {}, [0] * 5
    fast = fast_threshold(session, project.id)
    for trainer_id in trainers:
        mine = rows_by_trainer[trainer_id]
        gold = [r.gold_score for r in mine if r.gold_score is not None]
        agreements = []
        for r in mine:
            for question in questions:
                key, kind = (question.key, r.item_id), type_of(question)
                value = r.answers.get(question.key, kind.unanswered)
                if key in consensus and value is not None:
                    score = kind.agreement_with(question.options or {}, value, consensus[key],
                                                Responses(items[r.item_id].responses or []))
                    if score is not None:
                        agreements.append(score)
        reviewed = [r for r in mine if r.review_status != "unreviewed"]
        approved = [r for r in reviewed if r.review_status == "approved"]
        median_seconds = statistics.median(r.active_seconds for r in mine)
        flags = []
        member = members.get(trainer_id)
        if member is not None and member.flagged_reason:
            flags.append(member.flagged_reason)
        if member is not None and member.status != "active":
            flags.append(member.status)
        if fast is not None and median_seconds < fast:
            flags.append("too fast")
        accuracy = sum(gold) / len(gold) if gold else None
        if accuracy is not None:
            gold_histogram[min(int(accuracy * 5), 4)] += 1
        out[trainer_id] = {
            "annotations": len(mine), "gold_answers": len(gold), "gold_accuracy": accuracy,
            "consensus_agreement": statistics.fmean(agreements) if agreements else None,
            "reliability": reliability.get(trainer_id),
            "approval_rate": len(approved) / len(reviewed) if reviewed else None,
            "median_seconds": median_seconds, "flags": flags,
        }
    figures = {
        "questions": per_question, "trainers": len(trainers), "items_annotated": len({r.item_id for r in work_rows}),
        "median_seconds": statistics.median([r.active_seconds for r in rows]) if rows else None,
        "gold_answers": sum(1 for r in rows if r.gold_score is not None),
        "gold_accuracy_histogram": gold_histogram,
        "agreement_question": first_comparable.title if first_comparable is not None else None,
        "lowest_agreement_items": [{"item_id": i, "external_id": items[i].external_id, "agreement": s} for s, i in low],
        "review": {s: sum(1 for r in rows if r.review_status == s) for s in ("unreviewed", "approved", "rejected",
                                                                             "corrected")},
        # not a figure: the highest verdict id the computation saw (what makes later verdicts due)
        "reviews_to": session.scalar(select(func.max(Review.id))) or 0,
    }
    return figures, out


# --- random projects -------------------------------------------------------------------------------------

PAIR_QUESTIONS = [
    {"key": "preference", "type": "preference", "title": "Which is better?", "options": {"scale": 3}},
    {"key": "label", "type": "label", "title": "Helpful?", "options": {"labels": ["yes", "no", "maybe"]}},
    {"key": "rating", "type": "rating", "title": "How good?", "options": {"min": 1, "max": 5, "anchors": {}}},
    {"key": "note", "type": "text", "title": "Why?", "options": {"min_chars": 1, "mode": "critique"}},
]
RANK_QUESTIONS = [
    {"key": "ranking", "type": "ranking", "title": "Order them", "options": {"allow_ties": True}},
    {"key": "tags", "type": "multi_label", "title": "Tags", "options": {"labels": ["a", "b", "c"]}},
]


def _answer(rng, key, responses):
    if rng.random() < 0.04:
        return {"preference": 9, "label": "gone", "rating": 0, "ranking": [["nope"]], "tags": ["z"]}[key]  # no longer fits
    if rng.random() < 0.04 and key in ("preference", "label", "rating"):
        # Look-alikes of valid answers (equal to one, and hashed alike, but of another type): an item's
        # results are reused only between items with answers of exactly the same type.
        return rng.choice({"preference": [True, False, 2.0, -1.0], "label": [1, 0.0],
                           "rating": [4.0, True, 2.5]}[key])
    ids = [r["id"] for r in responses]
    if key == "preference":
        return rng.choice([-3, -2, -1, 0, 1, 2, 3])
    if key == "label":
        return rng.choice(["yes", "yes", "no", "maybe"])
    if key == "rating":
        return rng.randint(1, 5)
    if key == "ranking":
        rng.shuffle(ids)
        return [[ids[0], ids[1]], [ids[2]]] if rng.random() < 0.2 else [[i] for i in ids]
    return sorted(rng.sample(["a", "b", "c"], rng.randint(1, 3)))


def random_project(session, seed, questions, n_responses, items=40, trainers=7, overlap=3):
    rng = random.Random(seed)
    people = [make_user(session, "trainer") for _ in range(trainers)]
    project = project_service.create_project(
        session, name=f"Random {seed}", slug=f"random-{seed}", kind="work", status="active", overlap=overlap,
        lease_minutes=30, instructions="", questions=questions)
    for person in people:
        project_service.add_member(session, project, person, "trainer")
    session.commit()
    made = [project_service.add_item(session, project, prompt=f"Prompt {seed}-{n}",
                                     responses=[f"Response {k} to {n}" for k in range(n_responses)],
                                     external_id=f"it-{n}") for n in range(items)]
    session.commit()
    for item in made[: items // 8]:
        item.is_gold = True
    now = utcnow()
    statuses = ["unreviewed"] * 6 + ["approved", "approved", "rejected", "corrected"]
    order = [(item, person) for item in made for person in rng.sample(people, rng.randint(1, overlap))]
    rng.shuffle(order)  # annotation ids do not follow the items
    for n, (item, person) in enumerate(order):
        assignment = Assignment(item_id=item.id, project_id=project.id, trainer_id=person.id, status="submitted",
                                assigned_at=now, expires_at=now + timedelta(minutes=30))
        session.add(assignment)
        session.flush()
        answers = {q["key"]: _answer(rng, q["key"], item.responses) for q in questions
                   if q["type"] != "text" and rng.random() < 0.95}
        session.add(Annotation(
            assignment_id=assignment.id, item_id=item.id, project_id=project.id, trainer_id=person.id,
            answers=answers, submitted_at=now - timedelta(seconds=n), active_seconds=rng.randint(5, 400),
            gold_score=rng.choice([0.0, 1.0, 0.5, 1 / 3]) if item.is_gold else None,
            review_status=rng.choice(statuses), excluded=rng.random() < 0.05))
    session.commit()
    return project


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streamed_figures_equal_the_previous_methods(session, seed, monkeypatch):
    monkeypatch.setattr(stats_service, "STREAM_CHUNK", 7)  # many chunks, items split across them
    for questions, responses in ((PAIR_QUESTIONS, 2), (RANK_QUESTIONS, 3)):
        project = random_project(session, seed * 10 + responses, questions, responses)
        expected_figures, expected_trainers = previous_figures(session, project)
        session.rollback()
        stats = stats_service.compute_project_stats(session, project)
        for got, want in zip(stats.figures["questions"], expected_figures["questions"], strict=True):
            assert got == want
        assert stats.figures == expected_figures
        stored = {t.trainer_id: t for t in session.scalars(select(TrainerStats).where(
            TrainerStats.project_id == project.id))}
        assert set(stored) == set(expected_trainers)
        for trainer_id, fields in expected_trainers.items():
            assert {name: getattr(stored[trainer_id], name) for name in fields} == fields
        assert stats.annotations == sum(f["annotations"] for f in expected_trainers.values())
        assert stats.figures["questions"][0]["items_with_2_plus"] > 0
        assert stats.figures["lowest_agreement_items"]
