from types import SimpleNamespace

import pytest

from app.services.errors import ValidationError
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
    assert err.value.errors == {"safety": "is required", "safty": "is not a question of this project"}


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
