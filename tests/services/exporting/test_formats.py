"""Every format, line by line, against a hand-written expectation."""

from __future__ import annotations

import io

import orjson
import pandas as pd
import pytest

from app.services.exporting import FORMATS

from .conftest import CRITIQUE_SPAN, CRITIQUE_TEXT

U = "user"


def user(text):
    return [{"role": U, "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


def test_every_format_has_a_test_here():
    tested = {"trl-preference", "openai-dpo", "hh-rlhf", "trl-kto", "trl-sft", "openai-sft", "helpsteer", "raw",
              "aggregated", "csv", "parquet"}
    assert set(FORMATS) == tested


def test_trl_preference_per_annotation_drops_ties(build, pairs_project):
    built = build(pairs_project, format="trl-preference")
    assert built.lines() == [
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1"},
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1"},
        {"prompt": "Q2", "chosen": "B2", "rejected": "A2"},
    ]
    assert built.export.manifest["counts"]["skipped"] == {"tie": 1}
    assert built.export.manifest["conversational"] is False


def test_trl_preference_margin_is_a_float_from_the_strength(build, pairs_project):
    lines = build(pairs_project, format="trl-preference", margin=True).lines()
    assert [line["margin"] for line in lines] == [2.0, 1.0, 3.0]
    assert all(type(line["margin"]) is float for line in lines)
    assert b'"margin":2.0' in build(pairs_project, format="trl-preference", margin=True).raw()


def test_trl_preference_consensus_uses_the_mean_preference(build, pairs_project):
    assert build(pairs_project, format="trl-preference", pairs="consensus", margin=True).lines() == [
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1", "margin": 1.5},
        {"prompt": "Q2", "chosen": "B2", "rejected": "A2", "margin": 1.5},
    ]


def test_trl_preference_conversational_forced(build, pairs_project):
    assert build(pairs_project, format="trl-preference", conversational=True).lines()[2] == {
        "prompt": user("Q2"), "chosen": assistant("B2"), "rejected": assistant("A2")}


@pytest.mark.parametrize(("strategy", "expected"), [
    ("all_pairs", [("R1", "R2", 1.0), ("R1", "R3", 2.0), ("R2", "R3", 1.0), ("R2", "R1", 1.0), ("R2", "R3", 1.0)]),
    ("best_vs_worst", [("R1", "R3", 2.0), ("R2", "R1", 1.0), ("R2", "R3", 1.0)]),
    ("best_vs_rest", [("R1", "R2", 1.0), ("R1", "R3", 2.0), ("R2", "R1", 1.0), ("R2", "R3", 1.0)]),
])
def test_rankings_become_pairs_by_strategy_ties_dropped(build, ranking_project, strategy, expected):
    lines = build(ranking_project, format="trl-preference", ranking_pairs=strategy, margin=True).lines()
    assert lines == [{"prompt": "Rank these", "chosen": c, "rejected": r, "margin": m} for c, r, m in expected]


def test_ranking_consensus_orders_by_bradley_terry(build, ranking_project):
    # t1: R1 > R2 > R3; t2: R2 > (R1 = R3). Wins: R2 3, R1 2.5, R3 0.5 -> R2, R1, R3.
    lines = build(ranking_project, format="trl-preference", pairs="consensus").lines()
    assert [(x["chosen"], x["rejected"]) for x in lines] == [("R2", "R1"), ("R2", "R3"), ("R1", "R3")]


def test_openai_dpo(build, pairs_project):
    assert build(pairs_project, format="openai-dpo").lines() == [
        {"input": {"messages": user("Q1")}, "preferred_output": assistant("A1"), "non_preferred_output": assistant("B1")},
        {"input": {"messages": user("Q1")}, "preferred_output": assistant("A1"), "non_preferred_output": assistant("B1")},
        {"input": {"messages": user("Q2")}, "preferred_output": assistant("B2"), "non_preferred_output": assistant("A2")},
    ]


def test_hh_rlhf(build, pairs_project):
    assert build(pairs_project, format="hh-rlhf", pairs="consensus").lines() == [
        {"chosen": "\n\nHuman: Q1\n\nAssistant: A1", "rejected": "\n\nHuman: Q1\n\nAssistant: B1"},
        {"chosen": "\n\nHuman: Q2\n\nAssistant: B2", "rejected": "\n\nHuman: Q2\n\nAssistant: A2"},
    ]


def test_trl_kto_splits_pairs(build, pairs_project):
    assert build(pairs_project, format="trl-kto", pairs="consensus").lines() == [
        {"prompt": "Q1", "completion": "A1", "label": True},
        {"prompt": "Q1", "completion": "B1", "label": False},
        {"prompt": "Q2", "completion": "B2", "label": True},
        {"prompt": "Q2", "completion": "A2", "label": False},
    ]


def test_trl_kto_from_labels_needs_desirable_labels(build, label_project):
    assert build(label_project, format="trl-kto", desirable_labels="yes").lines() == [
        {"prompt": "Q1", "completion": "Resp 1", "label": True},
        {"prompt": "Q1", "completion": "Resp 1", "label": True},
        {"prompt": "Q2", "completion": "Resp 2", "label": True},
        {"prompt": "Q2", "completion": "Resp 2", "label": False},
    ]
    # consensus: l2 is a tie (yes 1, no 1), which goes to the label listed first
    assert [x["label"] for x in build(label_project, format="trl-kto", desirable_labels="yes", pairs="consensus").lines()] == [True, True]


def test_trl_sft_rewrites_and_consensus_best(build, critique_project, pairs_project):
    assert build(critique_project, format="trl-sft").lines() == [{"messages": user("Explain X") + assistant("Better answer")}]
    assert build(pairs_project, format="trl-sft").lines() == [
        {"messages": user("Q1") + assistant("A1")}, {"messages": user("Q2") + assistant("B2")}]


def test_openai_sft_is_rewrites_only(build, critique_project):
    assert build(critique_project, format="openai-sft").lines() == [
        {"messages": user("Explain X") + assistant("Better answer")}]


def test_helpsteer_per_annotation_and_consensus(build, critique_project):
    base = {"prompt": "Explain X", "response": "Orig"}
    assert build(critique_project, format="helpsteer").lines() == [
        {**base, "helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2},
        {**base, "helpfulness": 3, "correctness": 3, "coherence": 3, "complexity": 2, "verbosity": 2},
    ]
    # means rounded half to even: 2.5 -> 2, 3.5 -> 4, 1.5 -> 2
    assert build(critique_project, format="helpsteer", pairs="consensus").lines() == [
        {**base, "helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 2, "verbosity": 2}]


def test_raw_one_line_per_annotation_with_pseudonyms(build, pairs_project, trainers, pseudonym):
    lines = build(pairs_project, format="raw").lines()
    t1, t2 = (pseudonym(t.id) for t in trainers)
    assert [(x["item_id"], x["trainer"], x["answers"], x["review_status"]) for x in lines] == [
        ("p1", t1, {"preference": -2, "rationale": "r"}, "unreviewed"),
        ("p1", t2, {"preference": -1, "rationale": "r"}, "unreviewed"),
        ("p2", t1, {"preference": 0, "rationale": "r"}, "unreviewed"),
        ("p2", t2, {"preference": 3, "rationale": "r"}, "unreviewed"),
    ]
    assert all(set(x) == {"item_id", "trainer", "answers", "active_seconds", "review_status", "submitted_at"}
               for x in lines)  # gold_score is null everywhere here, so the column is dropped
    assert t1.startswith("annotator-") and t1 != t2


def test_aggregated_one_line_per_item(build, pairs_project):
    assert build(pairs_project, format="aggregated").lines() == [
        {"item_id": "p1", "annotations": 2, "consensus": {"preference": -1.5}, "confidence": {"preference": 1.0},
         "agreement": 1.0, "metadata": "{}"},
        {"item_id": "p2", "annotations": 2, "consensus": {"preference": 1.5}, "confidence": {"preference": 0.5},
         "agreement": 0.0, "metadata": "{}"},
    ]


def test_aggregated_labels_and_ratings(build, label_project, critique_project):
    assert build(label_project, format="aggregated").lines() == [
        {"item_id": "l1", "annotations": 2, "consensus": {"verdict": "yes"}, "confidence": {"verdict": 1.0},
         "agreement": 1.0, "metadata": "{}"},
        {"item_id": "l2", "annotations": 2, "consensus": {"verdict": "yes"}, "confidence": {"verdict": 0.5},
         "agreement": 0.0, "metadata": "{}"},
    ]
    line = build(critique_project, format="aggregated").lines()[0]
    assert line["consensus"] == {"helpfulness": 2.5, "correctness": 3.0, "coherence": 3.5, "complexity": 1.5,
                                 "verbosity": 2.0, "problems": []}  # one of two marked the span: not a majority
    assert line["confidence"]["problems"] == 0.5  # span F1 against the consensus: 0 and 1
    assert line["confidence"]["correctness"] == 1.0 and line["confidence"]["helpfulness"] == 1 - 0.5 / 4


def test_csv_and_parquet_hold_the_raw_table(build, critique_project, pseudonym, trainers):
    t1, t2 = (pseudonym(t.id) for t in trainers)
    expected = pd.DataFrame({
        "item_id": ["c1", "c1"], "trainer": [t1, t2], "active_seconds": [0, 0], "review_status": ["unreviewed"] * 2,
        "answer_helpfulness": [2, 3], "answer_correctness": [3, 3], "answer_coherence": [4, 3],
        "answer_complexity": [1, 2], "answer_verbosity": [2, 2], "answer_critique": [CRITIQUE_TEXT] * 2,
        "answer_problems": [[CRITIQUE_SPAN], None], "answer_rewrite": ["Better answer", None],
    })

    def cells(values, column):  # span answers travel as JSON text
        cells = [None if not isinstance(v, str) and pd.isna(v) else v for v in values]
        return [None if v is None else orjson.loads(v) for v in cells] if column == "answer_problems" else cells

    csv = build(critique_project, format="csv")
    frame = pd.read_csv(io.BytesIO(csv.raw("train.csv")))
    assert list(frame.columns) == ["item_id", "trainer", "submitted_at", "active_seconds", "gold_score", "review_status",
                                   *[c for c in expected.columns if c.startswith("answer_")]]
    assert frame["gold_score"].isna().all()
    for column in expected.columns:
        assert cells(frame[column], column) == [None if not isinstance(v, list) and pd.isna(v) else v
                                                for v in expected[column]]
    parquet = build(critique_project, format="parquet")
    table = pd.read_parquet(parquet.folder / "train.parquet")
    assert str(table["answer_helpfulness"].dtype) == "int64" and str(table["gold_score"].dtype) == "float64"
    for column in expected.columns:
        assert cells(table[column], column) == [None if not isinstance(v, list) and pd.isna(v) else v
                                                for v in expected[column]]


def test_raw_lines_carry_spans_as_stored(build, critique_project, pseudonym, trainers):
    lines = {x["trainer"]: x["answers"] for x in build(critique_project, format="raw").lines()}
    assert lines[pseudonym(trainers[0].id)]["problems"] == [CRITIQUE_SPAN]
    assert lines[pseudonym(trainers[1].id)]["problems"] is None  # not answered (optional)
