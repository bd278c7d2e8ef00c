import numpy as np
import pytest

from app.services.quality.aggregation import (
    bradley_terry,
    comparisons_from_pairs,
    dawid_skene,
    majority_vote,
    mean_ratings,
)
from app.services.quality.agreement import ranking_pairs


def simulated_crowd(seed=7, items=600, honest=5, spammers=2, labels=("a", "b", "c")):
    """Honest workers right 75 % of the time; spammers answer uniformly at random."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(labels), size=items)
    triples = []
    for worker in range(honest + spammers):
        spam = worker >= honest
        for item in range(items):
            if rng.random() < 0.5:  # each worker sees half of the items
                continue
            if spam:
                given = rng.integers(0, len(labels))
            else:
                given = truth[item] if rng.random() < 0.75 else rng.integers(0, len(labels))
            triples.append((item, f"w{worker}" + ("-spam" if spam else ""), labels[given]))
    return [labels[t] for t in truth], triples


def test_dawid_skene_beats_majority_vote_and_finds_the_spammers():
    truth, triples = simulated_crowd()
    by_item = {}
    for item, _worker, label in triples:
        by_item.setdefault(item, []).append(label)
    mv = majority_vote(by_item)
    ds = dawid_skene(triples)
    scored = [i for i in by_item]
    mv_accuracy = np.mean([mv[i][0] == truth[i] for i in scored])
    ds_accuracy = np.mean([ds.consensus[i][0] == truth[i] for i in scored])
    assert ds_accuracy > mv_accuracy
    ranked = sorted(ds.reliability, key=ds.reliability.get)
    assert set(ranked[:2]) == {"w5-spam", "w6-spam"}
    assert all(0.0 <= p <= 1.0 for _, p in ds.consensus.values())


def test_majority_vote_and_means():
    assert majority_vote({1: ["x", "y", "x"], 2: ["b", "a"]}) == {1: ("x", 2 / 3), 2: ("a", 0.5)}
    assert mean_ratings({1: [1, 2, 4], 2: []}) == {1: pytest.approx(7 / 3)}


def test_bradley_terry_orders_responses_by_their_wins():
    comparisons = []
    for groups in ([["r1"], ["r2"], ["r3"]], [["r1"], ["r3"], ["r2"]], [["r2"], ["r1"], ["r3"]]):
        comparisons += comparisons_from_pairs(ranking_pairs(groups))
    strengths = bradley_terry(comparisons)
    assert sorted(strengths, key=strengths.get, reverse=True) == ["r1", "r2", "r3"]
    assert sum(strengths.values()) == pytest.approx(1.0)


def test_bradley_terry_matches_the_closed_form_for_two_players():
    # With two players, the MM fixed point is p_a / p_b = wins_a / wins_b.
    strengths = bradley_terry([("a", "b", 1.0)] * 3 + [("b", "a", 1.0)])
    assert strengths["a"] / strengths["b"] == pytest.approx(3.001 / 1.001, rel=1e-6)
