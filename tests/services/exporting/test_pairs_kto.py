"""Three trainers who disagree and tie: consensus pair files hold each item pair once, in the consensus
direction, never its reverse; per_annotation is de-duplicated; KTO labels each response at most once."""

from __future__ import annotations

import pytest

from tests.factories import make_user

from .conftest import annotate, make_project, with_members

A_BETTER, B_BETTER = ("A", "B"), ("B", "A")


@pytest.fixture
def three(session, trainers):
    third = make_user(session, "trainer", email="cressida.vantablack@pii.example", name="Cressida Vantablack")
    return [*trainers, third]


@pytest.fixture
def disagreeing_pairs(session, three):
    items = [(f"d{n}", f"Q{n}", [{"id": "a", "text": f"A{n}"}, {"id": "b", "text": f"B{n}"}]) for n in range(1, 5)]
    project = with_members(session, make_project(session, "pairwise", items, overlap=3, slug="disagree"), three)
    answers = {  # per item: the three trainers' preferences (negative: A better)
        "d1": (-2, -1, 3),  # mean 0: a tie, no consensus row
        "d2": (-1, 1, -2),  # A, agreement 2/3
        "d3": (0, 0, 1),  # B, agreement 1/3 (ties do not agree)
        "d4": (-1, -1, -1),  # A, unanimous
    }
    for n, trainer in enumerate(three):
        annotate(session, trainer, project, {item: {"preference": v[n], "rationale": ""} for item, v in answers.items()})
    return project


@pytest.fixture
def disagreeing_ranks(session, three):
    project = with_members(session, make_project(session, "ranking", [
        ("k1", "Rank three", ["R1", "R2", "R3"]),
        ("k2", "Rank four", ["S1", "S2", "S3", "S4"]),
        ("k3", "Rank two", ["T1", "T2"]),
    ], overlap=3, slug="ranks3"), three)
    answers = {
        # wins: r1 4.5, r2 3, r3 1.5 -> r1 > r2 > r3
        "k1": ([["r1"], ["r2"], ["r3"]], [["r1"], ["r3"], ["r2"]], [["r2"], ["r1", "r3"]]),
        # r1 and r2 mirror each other, as do r3 and r4 -> (r1 = r2) > (r3 = r4)
        "k2": ([["r1", "r2"], ["r3"], ["r4"]], [["r1"], ["r2"], ["r3", "r4"]], [["r2"], ["r1"], ["r4"], ["r3"]]),
        # one each way and one tie -> a single group
        "k3": ([["r1"], ["r2"]], [["r2"], ["r1"]], [["r1", "r2"]]),
    }
    for n, trainer in enumerate(three):
        annotate(session, trainer, project, {item: {"ranking": v[n], "rationale": ""} for item, v in answers.items()})
    return project


def triples(fmt: str, lines: list[dict]) -> list[tuple]:
    """(prompt, chosen, rejected) of any pair format's lines."""
    if fmt == "openai-dpo":
        return [(str(x["input"]), x["preferred_output"][0]["content"], x["non_preferred_output"][0]["content"])
                for x in lines]
    if fmt == "hh-rlhf":
        return [("", x["chosen"], x["rejected"]) for x in lines]
    return [(str(x["prompt"]), str(x["chosen"]), str(x["rejected"])) for x in lines]


def assert_no_duplicate_or_contradiction(fmt, lines):
    found = triples(fmt, lines)
    assert len(found) == len(set(found)), "duplicate rows"
    # (hh-rlhf transcripts differ only in their last turn: swapping them is the reverse pair too)
    assert not {(p, r, c) for p, c, r in found} & set(found), "a pair and its reverse"


@pytest.mark.parametrize("fmt", ["trl-preference", "openai-dpo", "hh-rlhf"])
def test_default_pair_files_have_no_duplicate_and_no_contradiction(build, disagreeing_pairs, disagreeing_ranks, fmt):
    for project in (disagreeing_pairs, disagreeing_ranks):
        built = build(project, format=fmt)
        assert built.lines(), "the fixture must produce rows"
        assert_no_duplicate_or_contradiction(fmt, built.lines())
        assert built.export.manifest["filters"]["pairs"] == "consensus"


def test_preference_consensus_rows_carry_agreement_and_annotators(build, disagreeing_pairs, three, pseudonym):
    built = build(disagreeing_pairs, format="trl-preference", with_agreement=True)
    assert built.lines() == [
        {"prompt": "Q2", "chosen": "A2", "rejected": "B2", "agreement": pytest.approx(2 / 3), "n_annotators": 3},
        {"prompt": "Q3", "chosen": "B3", "rejected": "A3", "agreement": pytest.approx(1 / 3), "n_annotators": 3},
        {"prompt": "Q4", "chosen": "A4", "rejected": "B4", "agreement": 1.0, "n_annotators": 3},
    ]
    assert built.export.manifest["counts"]["skipped"] == {"tie": 1}  # d1's mean is 0
    meta = built.lines("train.meta.jsonl")
    assert [(m["item_id"], m["response_ids"], m["n_annotators"]) for m in meta] == [
        ("d2", ["a", "b"], 3), ("d3", ["b", "a"], 3), ("d4", ["a", "b"], 3)]
    assert meta[0]["agreement"] == pytest.approx(2 / 3)
    assert sorted(meta[0]["annotators"]) == sorted(pseudonym(t.id) for t in three)  # all behind a consensus row


def test_per_annotation_is_each_direction_once_with_its_count(build, disagreeing_pairs, three, pseudonym):
    built = build(disagreeing_pairs, format="trl-preference", pairs="per_annotation", with_agreement=True)
    rows = [(x["prompt"], x["chosen"], x["rejected"], x["n_annotators"], round(x["agreement"], 3))
            for x in built.lines()]
    assert rows == [
        ("Q1", "A1", "B1", 2, 0.667), ("Q1", "B1", "A1", 1, 0.333),  # both directions: a weighting view
        ("Q2", "A2", "B2", 2, 0.667), ("Q2", "B2", "A2", 1, 0.333),
        ("Q3", "B3", "A3", 1, 0.333),
        ("Q4", "A4", "B4", 3, 1.0),
    ]
    assert len(set(rows)) == len(rows)
    assert built.export.manifest["counts"]["skipped"] == {"tie": 2}  # d3's two zeros
    meta = built.lines("train.meta.jsonl")
    t1, t2, t3 = (pseudonym(t.id) for t in three)
    assert meta[0]["annotators"] == [t1, t2] and meta[1]["annotators"] == [t3]  # who gave that direction


def test_ranking_consensus_pairs_with_ties_in_the_consensus(build, disagreeing_ranks):
    built = build(disagreeing_ranks, format="trl-preference", with_agreement=True, margin=True)
    rows = [(x["prompt"], x["chosen"], x["rejected"], x["margin"], round(x["agreement"], 3)) for x in built.lines()]
    assert rows == [
        ("Rank three", "R1", "R2", 1.0, 0.667), ("Rank three", "R1", "R3", 2.0, 0.667),
        ("Rank three", "R2", "R3", 1.0, 0.667),
        # (S1 = S2) > (S3 = S4): the tied pairs give no row
        ("Rank four", "S1", "S3", 1.0, 1.0), ("Rank four", "S1", "S4", 1.0, 1.0),
        ("Rank four", "S2", "S3", 1.0, 1.0), ("Rank four", "S2", "S4", 1.0, 1.0),
    ]  # "Rank two" is tied as a whole: no row
    assert built.export.manifest["counts"]["skipped"] == {"tie": 3}


def test_ranking_per_annotation_is_de_duplicated(build, disagreeing_ranks):
    lines = build(disagreeing_ranks, format="trl-preference", pairs="per_annotation", with_agreement=True).lines()
    found = [(x["prompt"], x["chosen"], x["rejected"]) for x in lines]
    assert len(found) == len(set(found))
    by_pair = {(p, c, r): x["n_annotators"] for (p, c, r), x in zip(found, lines, strict=True)}
    assert by_pair[("Rank three", "R1", "R2")] == 2 and by_pair[("Rank three", "R2", "R1")] == 1
    assert by_pair[("Rank two", "T1", "T2")] == 1 and by_pair[("Rank two", "T2", "T1")] == 1


def kto_labels(lines):
    labels = {}
    for x in lines:
        key = (str(x["prompt"]), str(x["completion"]))
        assert key not in labels, f"{key} labelled twice"
        labels[key] = x["label"]
    return labels


def test_kto_from_preferences_one_label_per_completion_by_consensus(build, disagreeing_pairs):
    """KTO labels by consensus whatever the pair mode, so it is refused the per-annotation mode
    (``test_build``'s idle options) and writes one label per completion."""
    built = build(disagreeing_pairs, format="trl-kto", with_agreement=True)
    assert kto_labels(built.lines()) == {
        ("Q2", "A2"): True, ("Q2", "B2"): False, ("Q3", "B3"): True, ("Q3", "A3"): False,
        ("Q4", "A4"): True, ("Q4", "B4"): False,
    }  # d1 is a tie: nothing
    assert built.export.manifest["counts"]["skipped"] == {"kto: the consensus ties every response": 1}
    assert [round(x["agreement"], 3) for x in built.lines()][:2] == [0.667, 0.667]


def test_kto_from_rankings_top_desirable_bottom_undesirable_middle_and_ties_dropped(build, disagreeing_ranks):
    built = build(disagreeing_ranks, format="trl-kto", with_agreement=True)
    assert kto_labels(built.lines()) == {
        ("Rank three", "R1"): True, ("Rank three", "R3"): False,  # R2, in the middle, is dropped
        ("Rank four", "S1"): True, ("Rank four", "S2"): True, ("Rank four", "S3"): False, ("Rank four", "S4"): False,
    }  # "Rank two" is one tied group: nothing
    assert built.export.manifest["counts"]["skipped"] == {
        "kto: response in the middle of the consensus order": 1, "kto: the consensus ties every response": 1}
    # R1 is in the top group of t1 and t2; R3 at the bottom of t1 and t3 (its tie with R1 is t3's bottom)
    assert [round(x["agreement"], 3) for x in built.lines()][:2] == [0.667, 0.667]
    meta = built.lines("train.meta.jsonl")
    assert [m["response_ids"] for m in meta[:2]] == [["r1"], ["r3"]]
