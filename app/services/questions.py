"""Questions and answers — the one contract.

What is particular to a kind of question (its options, how a form posts it, how an answer is checked,
scored, agreed on and exported) lives in its type, in ``services/qtypes``; this module applies the
types to a project's questions. The workspace, review corrections and the importer all validate
through ``validate_answers``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.bounds import has_visible, json_problem, one_line_problem
from app.errors import ValidationError

from .qtypes import QUESTION_TYPES, AnswerError, Responses, ranks_of, response_letter, type_of

__all__ = ["QUESTION_TYPES", "AnswerError", "Responses", "answers_with_letters", "check_question", "fits",
           "gold_score", "is_blank", "parse_form_answers", "parse_json_answers", "ranks_of", "response_count_range",
           "response_letter", "type_of", "validate_answers"]

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TITLE_MAX = 500
HELP_MAX = 2_000


def check_question(key: str, type_name: str, title: str, options: Mapping[str, Any], help: str = "") -> None:  # noqa: A002
    """Raise ValidationError when a question definition is unusable."""
    errors: dict[str, str] = {}
    if not KEY_RE.fullmatch(key or ""):
        errors["key"] = "must start with a letter and hold only a-z, 0-9 and _ (at most 64)"
    if not has_visible(title or ""):
        errors["title"] = "is required"
    elif len(title.strip()) > TITLE_MAX:
        errors["title"] = f"must be at most {TITLE_MAX} characters"
    elif problem := one_line_problem(title.strip()):
        errors["title"] = problem
    if len(help or "") > HELP_MAX:
        errors["help"] = f"must be at most {HELP_MAX:,} characters"
    if type_name not in QUESTION_TYPES:
        errors["type"] = f"unknown question type {str(type_name)[:20]!r}; known: {', '.join(QUESTION_TYPES)}"
    elif not isinstance(options, Mapping):
        errors["options"] = "must be an object"
    elif problems := QUESTION_TYPES[type_name].check_options(options):
        errors["options"] = "; ".join(problems)
    if errors:
        raise ValidationError(errors)


def response_count_range(questions: Sequence) -> tuple[int, int]:
    """How many responses an item of a project with these questions must carry."""
    lo, hi = 0, 9
    for q in questions:
        q_lo, q_hi = type_of(q).response_range(q.options or {})
        lo, hi = max(lo, q_lo), min(hi, q_hi)
    return lo, hi


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def parse_form_answers(questions: Sequence, form, responses: Sequence = ()) -> dict[str, Any]:
    """Turn posted ``answer.<key>`` fields (a MultiDict) into JSON answer values for an item whose
    responses are ``responses`` (stored responses or their ids, in the order the page shows them)."""
    responses = Responses(responses)
    return {
        q.key: type_of(q).parse_form(form.getlist(f"answer.{q.key}"), responses)
        for q in questions
        if f"answer.{q.key}" in form
    }


def parse_json_answers(questions: Sequence, raw: Mapping[str, Any], responses: Sequence = ()) -> dict[str, Any]:
    """The JSON twin of ``parse_form_answers`` (the API): answers keyed by question key, naming
    responses by letter as the page does, -> answer values for ``validate_answers`` (letters become the
    item's response ids through each type's ``from_letters``). Unknown keys pass on, for
    ``validate_answers`` to refuse."""
    responses = Responses(responses)
    by_key = {q.key: q for q in questions}
    return {key: type_of(by_key[key]).from_letters(value, responses) if key in by_key else value
            for key, value in raw.items()}


def answers_with_letters(questions: Sequence, answers: Mapping[str, Any] | None,
                         responses: Sequence = ()) -> dict[str, Any]:
    """Stored answers as the API shows them: response ids become the page's letters (A, B, C…)."""
    responses = Responses(responses)
    by_key = {q.key: q for q in questions}
    return {key: type_of(by_key[key]).to_letters(value, responses) if key in by_key else value
            for key, value in (answers or {}).items()}


def validate_answers(
    questions: Sequence, raw: Mapping[str, Any], responses: Sequence = (), partial: bool = False
) -> dict[str, Any]:
    """Check every answer against its question; return the normalised answers keyed by question key.

    ``questions`` are objects with ``key``, ``type``, ``options`` and ``required`` (ORM rows or plain
    records); ``responses`` are the item's stored responses (``[{id, text}]``: rankings must cover
    exactly these, span offsets must fit their texts).
    ``partial`` (gold answers on import) skips the required check. Unknown keys are refused so a
    typo never silently drops an answer.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError({"": "answers must be an object keyed by question key"})
    responses = Responses(responses)
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    known = {q.key for q in questions}
    for extra in sorted(set(raw) - known)[:10]:
        errors[str(extra)[:64]] = "is not a question of this project"
    for q in questions:
        value = raw.get(q.key)
        if problem := json_problem(value):
            errors[q.key] = problem
            continue
        if partial and value is not None and value == type_of(q).unanswered:
            clean[q.key] = value  # a gold answer of "nothing to mark" (spans) is an answer
            continue
        if is_blank(value):
            if q.required and not partial:
                errors[q.key] = type_of(q).missing
            continue
        try:
            clean[q.key] = type_of(q).clean_answer(q.options or {}, value, responses)
        except AnswerError as exc:
            errors[q.key] = str(exc)
    if errors:
        raise ValidationError(errors)
    return clean


def fits(question, value: Any, responses: Sequence = ()) -> bool:
    """Whether a stored answer still fits its question (figures leave out ones that do not)."""
    try:
        type_of(question).clean_answer(question.options or {}, value, Responses(responses))
    except (AnswerError, TypeError, ValueError, KeyError):
        return False
    return True


def gold_score(questions: Sequence, answers: Mapping[str, Any], gold: Mapping[str, Any]) -> float | None:
    """Mean gold score over the questions that have a gold answer and a scorer; None when none do."""
    scores = []
    for q in questions:
        unanswered = type_of(q).unanswered
        if q.key not in gold or (q.key not in answers and unanswered is None):
            continue
        try:
            score = type_of(q).gold_score(q.options or {}, answers.get(q.key, unanswered), gold[q.key])
        except (TypeError, ValueError, KeyError, ZeroDivisionError):
            score = None  # a gold answer that no longer fits its question scores nothing, never crashes
        if score is not None:
            scores.append(score)
    return sum(scores) / len(scores) if scores else None
