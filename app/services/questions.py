"""Questions and answers — the one contract (DESIGN §2).

Each question type is a row in ``QUESTION_TYPES``: how its options are checked, how an answer is
checked and normalised, how an answer is scored against gold, and which widget renders it. The web
forms, the importer and the REST API all validate through ``validate_answers``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class AnswerError(ValueError):
    """One answer broke its question's rule; the message says how."""


@dataclass(frozen=True)
class QuestionType:
    name: str
    check_options: Callable[[Mapping[str, Any]], list[str]]
    clean_answer: Callable[[Mapping[str, Any], Any], Any]
    gold_score: Callable[[Mapping[str, Any], Any, Any], float | None]
    widget: str


# --- label ---------------------------------------------------------------------------------------


def _check_label_options(options: Mapping[str, Any]) -> list[str]:
    labels = options.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        return ["options.labels must be a list of at least 2 labels"]
    problems = []
    if any(not isinstance(x, str) or not x.strip() for x in labels):
        problems.append("options.labels must be non-empty strings")
    elif len(set(labels)) != len(labels):
        problems.append("options.labels must not repeat a label")
    if len(labels) > 26:
        problems.append("options.labels may hold at most 26 labels")
    return problems


def _clean_label(options: Mapping[str, Any], value: Any) -> str:
    if not isinstance(value, str) or value == "":
        raise AnswerError("choose one label")
    if value not in options["labels"]:
        raise AnswerError(f"{value!r} is not one of {', '.join(options['labels'])}")
    return value


def _score_label(options: Mapping[str, Any], answer: Any, gold: Any) -> float:
    return 1.0 if answer == gold else 0.0


QUESTION_TYPES: dict[str, QuestionType] = {
    "label": QuestionType("label", _check_label_options, _clean_label, _score_label, "widgets/_label.html"),
}


def question_type(name: str) -> QuestionType:
    try:
        return QUESTION_TYPES[name]
    except KeyError:
        raise ValidationError({"type": f"unknown question type {name!r}; known: {', '.join(QUESTION_TYPES)}"}) from None


def check_question(key: str, type_name: str, title: str, options: Mapping[str, Any]) -> None:
    """Raise ValidationError when a question definition is unusable."""
    errors: dict[str, str] = {}
    if not KEY_RE.match(key or ""):
        errors["key"] = "must start with a letter and hold only a-z, 0-9 and _ (at most 64)"
    if not (title or "").strip():
        errors["title"] = "is required"
    if type_name not in QUESTION_TYPES:
        errors["type"] = f"unknown question type {type_name!r}; known: {', '.join(QUESTION_TYPES)}"
    elif problems := QUESTION_TYPES[type_name].check_options(options or {}):
        errors["options"] = "; ".join(problems)
    if errors:
        raise ValidationError(errors)


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def validate_answers(questions: Sequence, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every answer against its question; return the normalised answers keyed by question key.

    ``questions`` are objects with ``key``, ``type``, ``options`` and ``required`` (ORM rows or plain
    records). Unknown keys are refused so a typo never silently drops an answer.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    known = {q.key for q in questions}
    for extra in sorted(set(raw) - known):
        errors[extra] = "is not a question of this project"
    for q in questions:
        value = raw.get(q.key)
        if is_blank(value):
            if q.required:
                errors[q.key] = "is required"
            continue
        try:
            clean[q.key] = QUESTION_TYPES[q.type].clean_answer(q.options, value)
        except AnswerError as exc:
            errors[q.key] = str(exc)
    if errors:
        raise ValidationError(errors)
    return clean


def gold_score(questions: Sequence, answers: Mapping[str, Any], gold: Mapping[str, Any]) -> float | None:
    """Mean gold score over the questions that have a gold answer and a scorer; None when none do."""
    scores = []
    for q in questions:
        if q.key not in gold or q.key not in answers:
            continue
        score = QUESTION_TYPES[q.type].gold_score(q.options, answers[q.key], gold[q.key])
        if score is not None:
            scores.append(score)
    return sum(scores) / len(scores) if scores else None
