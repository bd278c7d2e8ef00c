"""The consensus rules (quality/consensus.py): one home, ties broken one way."""

from __future__ import annotations

import pytest

from app.services.quality import consensus


def test_a_label_tie_has_no_consensus_whichever_label_is_listed_first():
    assert consensus.majority_label(["no", "yes"], ["yes", "no"]) == (None, 0.5)
    assert consensus.majority_label(["yes", "no"], ["no", "yes"]) == (None, 0.5)
    assert consensus.majority_label(["a", "b", "c", "a", "b"], ["c", "b", "a"]) == (None, 0.4)
    assert consensus.majority_label(["no", "no", "yes"], ["yes", "no"]) == ("no", pytest.approx(2 / 3))
    assert consensus.majority_label(["a", "b", "c", "a"], ["c", "b", "a"]) == ("a", 0.5)  # a plurality


def test_a_desirable_side_needs_more_than_half():
    assert consensus.desirable_side(["good", "meh", "bad"], {"good"}) == (False, pytest.approx(2 / 3))
    assert consensus.desirable_side(["good", "meh", "bad"], {"good", "meh"}) == (True, pytest.approx(2 / 3))
    assert consensus.desirable_side(["good", "bad"], {"good"}) == (None, 0.5)


def test_a_rating_agrees_within_half_a_point_and_a_preference_by_side():
    mean, _confidence = consensus.mean_rating([2, 3], 0, 4)
    assert mean == 2.5 and consensus.rating_agrees(2, mean) == consensus.rating_agrees(3, mean) == 1.0
    assert consensus.rating_agrees(4, mean) == 0.0
    tie, share = consensus.mean_preference([-2, 2])
    assert tie == 0.0 and share == 0.0
    assert consensus.preference_agrees(0, tie) == 1.0 and consensus.preference_agrees(-1, tie) == 0.0


def test_span_matching_needs_same_response_same_label_and_half_the_union():
    a = {"response": "r1", "start": 0, "end": 10, "label": "x"}
    assert consensus.span_f1([a], [{**a, "end": 5}]) == 1.0  # IoU 0.5: matches
    assert consensus.span_f1([a], [{**a, "end": 4}]) == 0.0  # IoU 0.4: does not
    assert consensus.span_f1([a], [{**a, "label": "y"}]) == 0.0
    assert consensus.span_f1([a], [{**a, "response": "r2"}]) == 0.0
    # one to one: two spans cannot both match one
    assert consensus.span_f1([a, {**a, "end": 9}], [a]) == pytest.approx(2 / 3)


def test_span_consensus_keeps_what_more_than_half_marked():
    a = {"response": "r1", "start": 0, "end": 10, "label": "x", "comment": "mine"}
    b = {"response": "r1", "start": 20, "end": 30, "label": "y", "comment": ""}
    agreed, confidence = consensus.spans([[a, b], [{**a, "start": 1}], [a]])
    assert [(s["start"], s["end"], s["label"]) for s in agreed] == [(0, 10, "x")]
    assert agreed[0]["comment"] == ""  # comments are the annotators' own, never a consensus
    assert 0 < confidence < 1
    assert consensus.spans([[b], []]) == ([], 0.5)  # half is not more than half
