from types import SimpleNamespace

import pytest

from app.errors import ValidationError
from app.services.questions import check_question, gold_score, validate_answers

LABEL = SimpleNamespace(key="safety", type="label", options={"labels": ["safe", "unsafe"]}, required=True)


def test_label_answer_must_be_one_of_the_labels():
    assert validate_answers([LABEL], {"safety": "safe"}) == {"safety": "safe"}
    with pytest.raises(ValidationError) as err:
        validate_answers([LABEL], {"safety": "harmless"})
    assert err.value.errors == {"safety": "'harmless' is not one of safe, unsafe"}


def test_required_missing_and_unknown_keys_are_all_reported():
    with pytest.raises(ValidationError) as err:
        validate_answers([LABEL], {"safty": "safe"})
    assert err.value.errors == {"safety": "choose a label", "safty": "is not a question of this project"}


def test_optional_question_may_be_left_blank():
    optional = SimpleNamespace(**{**LABEL.__dict__, "required": False})
    assert validate_answers([optional], {"safety": ""}) == {}


@pytest.mark.parametrize(
    ("key", "type_name", "options", "field"),
    [
        ("Bad Key", "label", {"labels": ["a", "b"]}, "key"),
        ("ok", "essay", {}, "type"),
        ("ok", "label", {"labels": ["only"]}, "options"),
        ("ok", "label", {"labels": ["a", "a"]}, "options"),
    ],
)
def test_broken_question_definitions_are_refused(key, type_name, options, field):
    with pytest.raises(ValidationError) as err:
        check_question(key, type_name, "Title", options)
    assert field in err.value.errors


def test_label_gold_score():
    assert gold_score([LABEL], {"safety": "safe"}, {"safety": "safe"}) == 1.0
    assert gold_score([LABEL], {"safety": "unsafe"}, {"safety": "safe"}) == 0.0
    assert gold_score([LABEL], {"safety": "unsafe"}, {}) is None


def q(key, type_name, options, required=True):
    return SimpleNamespace(key=key, type=type_name, options=options, required=required)


MULTI = q("tags", "multi_label", {"labels": ["a", "b", "c"]})
RATING = q("helpfulness", "rating", {"min": 0, "max": 4, "anchors": {"0": "useless", "4": "perfect"}})
PREF = q("preference", "preference", {"scale": 3})
RANK = q("ranking", "ranking", {"allow_ties": True})
STRICT_RANK = q("ranking", "ranking", {"allow_ties": False})
CRITIQUE = q("critique", "text", {"min_chars": 20, "mode": "critique"})


def test_multi_label_answers_are_sorted_and_unique():
    assert validate_answers([MULTI], {"tags": ["c", "a", "c"]}) == {"tags": ["a", "c"]}
    with pytest.raises(ValidationError, match="'z' not among"):
        validate_answers([MULTI], {"tags": ["z"]})


def test_rating_must_be_a_whole_number_on_the_scale():
    assert validate_answers([RATING], {"helpfulness": 3}) == {"helpfulness": 3}
    for bad, message in ((5, "between 0 and 4"), ("3", "whole number"), (True, "whole number"), (2.5, "whole number")):
        with pytest.raises(ValidationError, match=message):
            validate_answers([RATING], {"helpfulness": bad})


def test_preference_is_signed_strength_with_negative_meaning_first_better():
    assert validate_answers([PREF], {"preference": -3}) == {"preference": -3}
    assert validate_answers([PREF], {"preference": 0}) == {"preference": 0}
    with pytest.raises(ValidationError, match="between -3 and 3"):
        validate_answers([PREF], {"preference": 4})


def test_ranking_must_cover_every_response_once():
    ids = ["r1", "r2", "r3"]
    assert validate_answers([RANK], {"ranking": [["r2"], ["r3", "r1"]]}, ids) == {"ranking": [["r2"], ["r1", "r3"]]}
    with pytest.raises(ValidationError, match="1 missing"):
        validate_answers([RANK], {"ranking": [["r2"], ["r1"]]}, ids)
    with pytest.raises(ValidationError, match="1 not of this item"):
        validate_answers([RANK], {"ranking": [["r2"], ["r1"], ["r3"], ["zz"]]}, ids)
    with pytest.raises(ValidationError, match="not of this item"):  # an item without responses ranks nothing
        validate_answers([RANK], {"ranking": [["r1"]]}, [])
    with pytest.raises(ValidationError, match="appears twice"):
        validate_answers([RANK], {"ranking": [["r2"], ["r2", "r1", "r3"]]}, ids)
    with pytest.raises(ValidationError, match="ties are not allowed"):
        validate_answers([STRICT_RANK], {"ranking": [["r1", "r2"], ["r3"]]}, ids)


def test_text_is_trimmed_and_needs_its_minimum_length():
    assert validate_answers([CRITIQUE], {"critique": "  The second claim is wrong.  "}) == {
        "critique": "The second claim is wrong."
    }
    with pytest.raises(ValidationError, match=r"at least 20 characters \(5 so far\)"):
        validate_answers([CRITIQUE], {"critique": "short"})


@pytest.mark.parametrize("text", ["\u200b\u200b\u200b", "\u2060\u2060", "\ufeff", "\u3164", "\u2800 \u200d"])
def test_a_text_answer_of_only_invisible_characters_is_refused(text):
    """Zero-width spaces, joiners, fillers and the braille blank show nothing: as a rewrite they would
    become a training answer of silence, required or not."""
    rewrite = q("rewrite", "text", {"min_chars": 0, "mode": "rewrite"}, required=False)
    with pytest.raises(ValidationError, match="shows nothing"):
        validate_answers([rewrite], {"rewrite": text}, ["r1"])


def test_a_text_answer_counts_the_characters_a_reader_sees():
    padded = "short" + "\u200b" * 30 + "  " * 10 + "x"  # 7 characters as read ("short x")
    with pytest.raises(ValidationError, match=r"at least 20 characters \(7 so far\)"):
        validate_answers([CRITIQUE], {"critique": padded})
    # control characters and direction overrides are dropped (nobody sees them; a rewrite may carry them in)
    assert validate_answers([CRITIQUE], {"critique": "A long enough critique \u202eof the\x0b answer"}) == {
        "critique": "A long enough critique of the answer"}
    assert validate_answers([CRITIQUE], {"critique": "كلام واضح \u200fوكافٍ للنقد هنا تماما"})  # marks stay


def test_form_values_are_converted_by_each_type():
    from werkzeug.datastructures import MultiDict

    from app.services.questions import parse_form_answers

    form = MultiDict([("answer.tags", "a"), ("answer.tags", "c"), ("answer.helpfulness", "3"),
                      ("answer.preference", "-2"), ("answer.ranking", '[["C"],["A","B"]]')])
    # pages name responses by letter; the item's ids come back in their place
    assert parse_form_answers([MULTI, RATING, PREF, RANK], form, ["x7", "y8", "z9"]) == {
        "tags": ["a", "c"], "helpfulness": 3, "preference": -2, "ranking": [["z9"], ["x7", "y8"]],
    }


@pytest.mark.parametrize(
    ("question", "answer", "gold", "expected"),
    [
        (MULTI, ["a", "b"], ["b", "c"], 1 / 3),  # Jaccard
        (MULTI, [], [], 1.0),
        (RATING, 3, 4, 0.75),
        (RATING, 0, 4, 0.0),
        (PREF, -1, -3, 1.0),  # same sign
        (PREF, 2, -2, 0.0),
        (PREF, 0, -1, 1.0),  # a tie agrees with a slight preference
        (PREF, 0, 2, 0.0),
        (RANK, [["r1"], ["r2"], ["r3"]], [["r1"], ["r2"], ["r3"]], 1.0),
        (RANK, [["r3"], ["r2"], ["r1"]], [["r1"], ["r2"], ["r3"]], 0.0),
        (CRITIQUE, "anything at all here", "x", None),
    ],
)
def test_gold_scores_follow_the_answer_contract(question, answer, gold, expected):
    score = gold_score([question], {question.key: answer}, {question.key: gold})
    assert score == pytest.approx(expected) if expected is not None else score is None


def test_ranking_gold_score_uses_kendall_tau_b_with_ties():
    # answer ties r2 and r3; gold orders them: tau-b = 2 / sqrt(3 * 2) -> score (tau + 1) / 2
    score = gold_score([RANK], {"ranking": [["r1"], ["r2", "r3"]]}, {"ranking": [["r1"], ["r2"], ["r3"]]})
    assert score == pytest.approx((2 / 6**0.5 + 1) / 2)


def test_kendall_tau_b_matches_a_hand_computed_value():
    from app.services.quality.agreement import kendall_tau_b

    # x = [1,2,3,4,5], y = [3,4,1,2,5]: C = 6, D = 4, no ties -> 0.2
    assert kendall_tau_b([1, 2, 3, 4, 5], [3, 4, 1, 2, 5]) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        kendall_tau_b([1, 1, 1], [1, 2, 3])


def test_a_quality_bonus_needs_both_its_percent_and_its_accuracy(session):
    import pytest as _pytest

    from app.errors import ValidationError as _ValidationError
    from app.services import projects as project_service

    with _pytest.raises(_ValidationError) as caught:
        project_service.create_project(session, name="Half bonus", questions=[
            {"key": "label", "type": "label", "title": "Label?", "options": {"labels": ["yes", "no"]}}],
            quality_bonus_percent=10, quality_bonus_min_accuracy=None)
    assert "or neither" in caught.value.errors["quality_bonus_percent"]
