"""The Quality page's figures for every comparable question type, and one consensus for stats,
review routing and exports (ties included)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from app.models import Annotation
from app.services import assignment as queue
from app.services import projects as project_service
from app.services import stats as stats_service
from tests.factories import make_user

RESPONSES = [{"id": "a", "text": "The first answer, long enough to mark."},
             {"id": "b", "text": "The second answer, also long enough."}]
COMMON = [
    {"key": "verdict", "type": "label", "title": "Verdict", "options": {"labels": ["good", "bad"]}},
    {"key": "score", "type": "rating", "title": "Score", "options": {"min": 1, "max": 5}},
    {"key": "marks", "type": "span", "title": "Marks", "required": False, "options": {"labels": ["error", "unclear"]}},
    {"key": "note", "type": "text", "title": "Note", "required": False, "options": {"min_chars": 0}},
]
RANKED = [*COMMON, {"key": "order", "type": "ranking", "title": "Order", "options": {"allow_ties": True}}]
PREFERRED = [*COMMON, {"key": "better", "type": "preference", "title": "Better?", "options": {"scale": 3}}]


def span(start, end, label="error", response="a"):
    return {"response": response, "start": start, "end": end, "label": label, "comment": ""}


def work(session, questions, answers_by_trainer: list[list[dict]]):
    """Trainers answer the same items in order; returns the project and the trainers."""
    trainers = [make_user(session, "trainer") for _ in answers_by_trainer]
    project = project_service.create_project(session, name=f"Types {trainers[0].id}", status="active",
                                             overlap=len(trainers), questions=questions)
    for n in range(len(answers_by_trainer[0])):
        project_service.add_item(session, project, prompt=f"Q{n}", responses=RESPONSES, external_id=f"i{n}")
    for trainer in trainers:
        project_service.add_member(session, project, trainer, "trainer")
    session.commit()
    for trainer, answers in zip(trainers, answers_by_trainer, strict=True):
        for answer in answers:
            a = queue.next_task(session, trainer.id, project)
            queue.submit(session, a.id, trainer.id, {"verdict": "good", **answer}, rng=random.Random(0))
    return project, trainers


def figures_by_key(session, project):
    stats = stats_service.compute_project_stats(session, project)
    session.commit()
    return {q["key"]: q for q in stats.figures["questions"]}


def test_each_comparable_type_reports_its_own_figures(session):
    first = {"score": 4, "order": [["a"], ["b"]], "marks": [span(0, 9)]}
    same = {"score": 4, "order": [["a"], ["b"]], "marks": [span(1, 9)]}
    other = {"score": 2, "order": [["b"], ["a"]], "marks": [span(20, 30, "unclear")]}
    project, _trainers = work(session, RANKED, [[first, other], [same, other], [first, first]])
    figures = figures_by_key(session, project)
    assert set(figures) == {"verdict", "score", "order", "marks"}  # free text has no agreement
    assert figures["score"]["mean"] == pytest.approx((4 + 2 + 4 + 2 + 4 + 4) / 6)
    assert figures["score"]["alpha_interval"] is not None and "alpha_ordinal" in figures["score"]
    assert 0 < figures["order"]["pairwise_agreement"] < 1
    assert -1 <= figures["order"]["mean_tau_b"] < 1
    # spans: on item 0 three matching marks (F1 1 for every pair); on item 1 two alike and one not
    assert figures["marks"]["mean_span_f1"] == pytest.approx((1 + 1 + 1 + 1 + 0 + 0) / 6)
    assert figures["marks"]["items_with_2_plus"] == 2

    preferred, _trainers = work(session, PREFERRED, [[{"score": 3, "better": -2}, {"score": 3, "better": 1}],
                                                     [{"score": 3, "better": -1}, {"score": 3, "better": -1}]])
    figures = figures_by_key(session, preferred)
    assert figures["better"]["pairwise_agreement"] == pytest.approx(0.5)
    assert "alpha_interval" in figures["better"]


@pytest.mark.parametrize("questions", [RANKED, PREFERRED], ids=["ranking", "preference"])
def test_one_consensus_for_stats_review_and_exports_with_ties(session, build, questions):
    # Two trainers, one item, a tie everywhere: a label (bad vs good), a rating (3 vs 4), a ranking
    # (opposite orders) or a preference (-1 vs +1), and spans only one of them marked.
    a = {"verdict": "bad", "score": 3, "order": [["a"], ["b"]], "better": -1, "marks": [span(0, 9)]}
    b = {"verdict": "good", "score": 4, "order": [["b"], ["a"]], "better": 1, "marks": []}
    keys = {q["key"] for q in questions}
    project, (t1, t2) = work(session, questions, [[{k: v for k, v in a.items() if k in keys}],
                                                  [{k: v for k, v in b.items() if k in keys}]])
    figures_by_key(session, project)
    table = {row.trainer_id: row for row, _name, _email in stats_service.trainer_table(session, project)}

    (line,) = build(project, format="aggregated").lines()
    consensus = line["consensus"]
    assert consensus["verdict"] is None  # a tie has no consensus, whichever label is listed first
    assert consensus["score"] == 3.5
    assert consensus["marks"] == []  # one of two is not more than half
    if "order" in keys:
        assert consensus["order"] == [["a", "b"]]  # opposite orders: equally strong
        pair_scores = {t1.id: 0.0, t2.id: 0.0}  # no pair the consensus decides
    else:
        assert consensus["better"] == 0.0  # a tie
        pair_scores = {t1.id: 0.0, t2.id: 0.0}  # neither answered "about the same"

    # Stats judged each trainer against that same consensus, question by question: score (within half
    # a point of 3.5), marks (F1 against no spans), and the pair question; the tied label is in no one's.
    expected = {t1.id: [1.0, 0.0], t2.id: [1.0, 1.0]}
    for trainer_id, scores in expected.items():
        assert table[trainer_id].consensus_agreement == pytest.approx((sum(scores) + pair_scores[trainer_id]) / 3)

    # Review routing: both annotations go to review for low agreement on the first comparable
    # question (the label), the same agreement the export reports for the item.
    assert line["agreement"] == 0.0
    reasons = set(session.scalars(select(Annotation.review_reason).where(Annotation.project_id == project.id)))
    assert reasons == {"low_agreement"}



def test_agreement_with_the_consensus_counts_only_items_two_or_more_answered(session):
    """One trainer alone on every item would "agree" with each consensus (their own answer): no figure;
    a second trainer on the items makes one, for both."""
    answers = [{"verdict": "good", "score": 3}, {"verdict": "bad", "score": 5}]
    alone, _trainers = work(session, COMMON, [answers])
    figures_by_key(session, alone)
    (row,) = [row for row, _name, _email in stats_service.trainer_table(session, alone)]
    assert row.consensus_agreement is None
    together, (t1, t2) = work(session, COMMON, [answers, [{"verdict": "good", "score": 3}, {"verdict": "good", "score": 5}]])
    figures_by_key(session, together)
    table = {row.trainer_id: row for row, _name, _email in stats_service.trainer_table(session, together)}
    # item 0: both agree on everything; item 1: a tied label (no one's), the same score
    assert table[t1.id].consensus_agreement == table[t2.id].consensus_agreement == 1.0

# --- the pair rules the training exports read (quality/consensus.py) ----------------------------------


def test_consensus_pairs_count_ties_as_not_agreeing():
    from app.services.quality import consensus

    orders = [[["a"], ["b"], ["c"]], [["a", "c"], ["b"]], [["b"], ["a"], ["c"]]]
    agreed = [["a"], ["b"], ["c"]]
    assert consensus.consensus_pairs(orders, agreed, "all_pairs") == [
        ("a", "b", 1.0, (0, 1)), ("a", "c", 2.0, (0, 2)), ("b", "c", 1.0, (0, 2))]  # 1 ties a and c
    assert consensus.consensus_pairs(orders, agreed, "best_vs_worst") == [("a", "c", 2.0, (0, 2))]


def test_distinct_pairs_give_each_direction_once_with_its_voters():
    from app.services.quality import consensus

    orders = [[["a"], ["b"]], [["a"], ["b"]], [["b"], ["a"]], [["a", "b"]]]
    assert consensus.distinct_pairs(orders, "all_pairs") == [("a", "b", 1.0, (0, 1)), ("b", "a", 1.0, (2,))]


def test_distinct_pairs_count_only_the_answers_whose_own_pairs_hold_them():
    """Under best_vs_worst an annotator gives only their top-against-bottom pairs: one who ranked r1
    above r3 in passing did not give the r1 > r3 row (nor its weight, nor its meta line)."""
    from app.services.quality import consensus

    orders = [[["r1"], ["r2"], ["r3"], ["r4"], ["r5"]], [["r2"], ["r1"], ["r3"], ["r5"], ["r4"]],
              [["r1", "r2"], ["r3", "r4", "r5"]]]
    worst = {(c, r): voters for c, r, _gap, voters in consensus.distinct_pairs(orders, "best_vs_worst")}
    assert worst == {("r1", "r5"): (0, 2), ("r2", "r4"): (1, 2), ("r1", "r3"): (2,), ("r1", "r4"): (2,),
                     ("r2", "r3"): (2,), ("r2", "r5"): (2,)}
    rest = {(c, r): voters for c, r, _gap, voters in consensus.distinct_pairs(orders, "best_vs_rest")}
    assert rest[("r2", "r5")] == (1, 2) and rest[("r1", "r2")] == (0,)  # t1's best_vs_rest never pairs r2 with r5
    assert {(c, r) for c, r, _g, _v in consensus.distinct_pairs(orders, "all_pairs")} >= set(worst)


def test_order_ends_top_desirable_bottom_undesirable_middle_counted():
    from app.services.quality import consensus

    orders = [[["a"], ["b"], ["c"]], [["a", "b"], ["c"]], [["c"], ["b"], ["a"]]]
    found, middle = consensus.order_ends(orders, [["a"], ["b"], ["c"]])
    assert found == [("a", True, (0, 1)), ("c", False, (0, 1))] and middle == 1
    assert consensus.order_ends(orders, [["a", "b", "c"]]) == ([], 0)  # a tie has no ends


def test_preference_pairs_by_mode_and_card_meaning():
    from app.services.qtypes import type_of

    kind = type_of(type("Q", (), {"type": "preference"})())
    assert kind.pairs({"scale": 3}, [-3, -1, 2], ["a", "b"], "all_pairs", True) == ([("a", "b", 2 / 3, [0, 1])], 0)
    assert kind.pairs({"scale": 3}, [-1, 1], ["a", "b"], "all_pairs", True) == ([], 1)
    assert kind.pairs({"scale": 3}, [-3, -1, 2, 0], ["a", "b"], "all_pairs", False) == (
        [("a", "b", 2.0, [0, 1]), ("b", "a", 2.0, [2])], 1)
    assert "-3 to +3: negative means the first response (A) is better" in kind.card_meaning({"scale": 3})
    ranking = type_of(type("Q", (), {"type": "ranking"})())
    assert "best first" in ranking.card_meaning({"allow_ties": True})


def test_a_multi_label_consensus_is_sorted_as_its_answers_are():
    """Answers are stored sorted; the consensus of agreeing answers equals them, whatever the labels'
    order in the question."""
    from app.services.qtypes import QUESTION_TYPES

    kind = QUESTION_TYPES["multi_label"]
    options = {"labels": ["zeta", "alpha", "mid"]}
    answers = [kind.clean_answer(options, ["zeta", "alpha"], []) for _ in range(3)]
    agreed, _share = kind.consensus(options, answers, [])
    assert answers[0] == ["alpha", "zeta"] and agreed == answers[0]
