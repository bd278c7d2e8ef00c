"""Questions and answers — the one contract.

Each question type is a row in ``QUESTION_TYPES``: how its options are checked, how an answer is
checked and normalised, how a form posts it, how an answer is scored against gold, which widget
renders it, and how many responses an item needs for it. The web forms, the importer and the REST
API all validate through ``validate_answers``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.bounds import json_problem
from app.errors import ValidationError

from .quality.agreement import kendall_tau_b

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TEXT_MAX_CHARS = 20_000
TITLE_MAX = 500
HELP_MAX = 2_000
LABEL_MAX = 100
ANCHOR_MAX = 200


class AnswerError(ValueError):
    """One answer broke its question's rule; the message says how."""


@dataclass(frozen=True)
class QuestionType:
    name: str
    title: str
    check_options: Callable[[Mapping[str, Any]], list[str]]
    # (options, value, response ids of the item) -> normalised value, or AnswerError
    clean_answer: Callable[[Mapping[str, Any], Any, Sequence[str]], Any]
    # (the values a form posted for this question, the item's response ids) -> the JSON value
    # clean_answer takes; pages name responses by letter (A, B, C…), never by their ids
    parse_form: Callable[[list[str], Sequence[str]], Any]
    gold_score: Callable[[Mapping[str, Any], Any, Any], float | None]
    widget: str
    missing: str  # what a trainer is told when a required answer is missing
    responses: tuple[int, int] = (0, 9)  # how many responses an item must have for this question
    # (options answers were given under, new options) -> why the change would strand those answers
    breaks_answers: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None] = lambda _old, _new: None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _single(values: list[str], _responses: Sequence[str] = ()) -> Any:
    return values[0] if values else None


def _many(values: list[str], _responses: Sequence[str] = ()) -> list[str]:
    return list(values)


def _int_from_form(values: list[str], _responses: Sequence[str] = ()) -> Any:
    raw = _single(values)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return raw  # clean_answer reports it as "not a whole number"


# --- label and multi_label -------------------------------------------------------------------------


def _check_labels(options: Mapping[str, Any]) -> list[str]:
    labels = options.get("labels")
    if not isinstance(labels, list) or len(labels) < 2:
        return ["labels must be a list of at least 2 labels"]
    if any(not isinstance(x, str) or not x.strip() for x in labels):
        return ["labels must be non-empty strings"]
    if any(len(x) > LABEL_MAX for x in labels):
        return [f"a label may have at most {LABEL_MAX} characters"]
    if len(set(labels)) != len(labels):
        return ["labels must not repeat a label"]
    if len(labels) > 26:
        return ["at most 26 labels"]
    return []


def _labels_kept(old, new) -> str | None:
    gone = [label for label in old.get("labels", []) if label not in new.get("labels", [])]
    if gone:
        return f"labels that answers already use cannot be removed or renamed ({', '.join(gone[:5])})"
    return None


def _clean_label(options, value, _responses) -> str:
    if not isinstance(value, str) or value == "":
        raise AnswerError("choose one label")
    if value not in options["labels"]:
        raise AnswerError(f"{value!r} is not one of {', '.join(options['labels'])}")
    return value


def _score_label(_options, answer, gold) -> float:
    return 1.0 if answer == gold else 0.0


def _clean_multi_label(options, value, _responses) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise AnswerError("must be a list of labels")
    unknown = [v for v in value if v not in options["labels"]]
    if unknown:
        raise AnswerError(f"{', '.join(map(repr, unknown))} not among {', '.join(options['labels'])}")
    return sorted(set(value))


def _score_multi_label(_options, answer, gold) -> float:
    a, g = set(answer), set(gold)
    if not a and not g:
        return 1.0
    return len(a & g) / len(a | g)  # Jaccard


# --- rating ------------------------------------------------------------------------------------------


def _check_rating(options: Mapping[str, Any]) -> list[str]:
    lo, hi = options.get("min"), options.get("max")
    if not (_is_int(lo) and _is_int(hi)) or lo >= hi:
        return ["min and max must be whole numbers with min < max"]
    if hi - lo > 100:
        return ["a scale may have at most 101 points"]
    anchors = options.get("anchors", {})
    if not isinstance(anchors, dict):
        return ["anchors must map scale points to descriptions"]
    for point, text in anchors.items():
        if not re.fullmatch(r"-?\d{1,4}", str(point)) or not lo <= int(point) <= hi:
            return [f"anchor {str(point)[:10]!r} is not a point of the scale {lo}–{hi}"]
        if not isinstance(text, str) or len(text) > ANCHOR_MAX:
            return [f"anchor {str(point)[:10]!r} must be text of at most {ANCHOR_MAX} characters"]
    return []


def _scale_kept(old, new) -> str | None:
    if (old.get("min"), old.get("max")) != (new.get("min"), new.get("max")):
        return f"the scale {old.get('min')}–{old.get('max')} cannot change once answers use it (anchors can)"
    return None


def _clean_rating(options, value, _responses) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        raise AnswerError("must be a whole number")
    if not options["min"] <= value <= options["max"]:
        raise AnswerError(f"must be between {options['min']} and {options['max']}")
    return value


def _score_rating(options, answer, gold) -> float:
    return 1.0 - abs(answer - gold) / (options["max"] - options["min"])


# --- preference ---------------------------------------------------------------------------------------


def _check_preference(options: Mapping[str, Any]) -> list[str]:
    scale = options.get("scale")
    if not _is_int(scale) or not 1 <= scale <= 5:
        return ["scale must be a whole number from 1 to 5"]
    return []


def _strength_kept(old, new) -> str | None:
    if old.get("scale") != new.get("scale"):
        return f"the preference scale (±{old.get('scale')}) cannot change once answers use it"
    return None


def _clean_preference(options, value, _responses) -> int:
    if not _is_int(value):
        raise AnswerError("choose which response is better")
    scale = options["scale"]
    if not -scale <= value <= scale:
        raise AnswerError(f"must be between -{scale} and {scale}")
    return value


def _score_preference(_options, answer, gold) -> float:
    # HelpSteer3 convention: negative = first response better. Near-ties (|x| <= 1) agree with a tie.
    same_sign = (answer > 0) - (answer < 0) == (gold > 0) - (gold < 0)
    near_tie = abs(answer) <= 1 and abs(gold) <= 1 and (answer == 0 or gold == 0)
    return 1.0 if same_sign or near_tie else 0.0


# --- ranking -----------------------------------------------------------------------------------------


def _check_ranking(options: Mapping[str, Any]) -> list[str]:
    if not isinstance(options.get("allow_ties", True), bool):
        return ["allow_ties must be true or false"]
    return []


def _ties_kept(old, new) -> str | None:
    if old.get("allow_ties", True) and not new.get("allow_ties", True):
        return "ties cannot be forbidden once answers may hold them"
    return None


def _clean_ranking(options, value, responses) -> list[list[str]]:
    if not isinstance(value, list) or not value:
        raise AnswerError("rank the responses")
    groups = []
    for group in value:
        if isinstance(group, str):
            group = [group]
        if not isinstance(group, list) or not group or any(not isinstance(r, str) for r in group):
            raise AnswerError("must be a list of groups of response ids, best first")
        groups.append(sorted(group))
    ids = [r for g in groups for r in g]
    if len(ids) != len(set(ids)):
        raise AnswerError("a response appears twice")
    if set(ids) != set(responses):
        # Counted, not named: trainers know responses by letter, and ids may be anything an import held.
        missing, unknown = len(set(responses) - set(ids)), len(set(ids) - set(responses))
        parts = ([f"{missing} missing"] if missing else []) + ([f"{unknown} not of this item"] if unknown else [])
        raise AnswerError("must rank every response of the item exactly once (" + ", ".join(parts) + ")")
    if not options.get("allow_ties", True) and any(len(g) > 1 for g in groups):
        raise AnswerError("ties are not allowed in this project")
    return groups


RESPONSE_LETTERS = "ABCDEFGHI"


def response_letter(position: int) -> str:
    """How a page names the response at ``position`` (0-based): A, B, C…"""
    return RESPONSE_LETTERS[position]


def _ranking_from_form(values: list[str], responses: Sequence[str] = ()) -> Any:
    """A posted ranking is JSON groups of letters, best first (``[["B"], ["A", "C"]]``); the letters
    become the item's response ids. Anything else is passed on for clean_answer to reject."""
    raw = _single(values)
    if raw is None or raw.strip() == "":
        return None
    try:
        groups = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    by_letter = {response_letter(i): rid for i, rid in enumerate(responses)}
    unknown = iter(range(1_000_000))

    def mapped(x):
        # Letters become ids. Anything else becomes a name no response has, so the error is the same
        # whatever was typed: a form cannot be used to test guesses of the hidden ids.
        if isinstance(x, str):
            return by_letter[x] if x in by_letter else f"?{next(unknown)}"
        return x

    if not isinstance(groups, list):
        return groups
    return [[mapped(x) for x in g] if isinstance(g, list) else mapped(g) for g in groups]


def ranks_of(groups: list[list[str]]) -> dict[str, int]:
    """Response id -> rank position (0 = best); tied responses share a position."""
    return {rid: position for position, group in enumerate(groups) for rid in group}


def _score_ranking(_options, answer, gold) -> float:
    a, g = ranks_of(answer), ranks_of(gold)
    ids = sorted(set(a) & set(g))
    try:
        tau = kendall_tau_b([a[i] for i in ids], [g[i] for i in ids])
    except ValueError:  # one side ties everything: only an identical answer agrees
        return 1.0 if [a[i] for i in ids] == [g[i] for i in ids] else 0.0
    return (tau + 1.0) / 2.0


# --- text --------------------------------------------------------------------------------------------


def _check_text(options: Mapping[str, Any]) -> list[str]:
    problems = []
    min_chars = options.get("min_chars", 0)
    if not _is_int(min_chars) or not 0 <= min_chars <= TEXT_MAX_CHARS:
        problems.append(f"min_chars must be a whole number from 0 to {TEXT_MAX_CHARS}")
    if options.get("mode", "critique") not in ("critique", "rewrite"):
        problems.append("mode must be critique or rewrite")
    return problems


def _clean_text(options, value, _responses) -> str:
    if not isinstance(value, str):
        raise AnswerError("must be text")
    value = value.replace("\r\n", "\n").strip()
    min_chars = options.get("min_chars", 0)
    if len(value) < min_chars:
        raise AnswerError(f"write at least {min_chars} characters ({len(value)} so far)")
    if len(value) > TEXT_MAX_CHARS:
        raise AnswerError(f"at most {TEXT_MAX_CHARS} characters")
    return value


def _no_gold(_options, _answer, _gold) -> None:
    return None  # graded by a reviewer


QUESTION_TYPES: dict[str, QuestionType] = {
    t.name: t
    for t in (
        QuestionType("label", "Label (choose one)", _check_labels, _clean_label, _single, _score_label,
                     "widgets/_label.html", "choose a label", breaks_answers=_labels_kept),
        QuestionType("multi_label", "Labels (choose any)", _check_labels, _clean_multi_label, _many,
                     _score_multi_label, "widgets/_multi_label.html", "choose at least one label",
                     breaks_answers=_labels_kept),
        QuestionType("rating", "Rating scale", _check_rating, _clean_rating, _int_from_form, _score_rating,
                     "widgets/_rating.html", "choose a point on the scale", breaks_answers=_scale_kept),
        QuestionType("preference", "Preference between two responses", _check_preference, _clean_preference,
                     _int_from_form, _score_preference, "widgets/_preference.html",
                     "choose which response is better", responses=(2, 2), breaks_answers=_strength_kept),
        QuestionType("ranking", "Ranking of responses", _check_ranking, _clean_ranking, _ranking_from_form,
                     _score_ranking, "widgets/_ranking.html",
                     "rank the responses (move rows, or confirm the order shown)", responses=(2, 9),
                     breaks_answers=_ties_kept),
        QuestionType("text", "Free text (critique or rewrite)", _check_text, _clean_text, _single, _no_gold,
                     "widgets/_text.html", "write your answer here"),
    )
}


def check_question(key: str, type_name: str, title: str, options: Mapping[str, Any], help: str = "") -> None:  # noqa: A002
    """Raise ValidationError when a question definition is unusable."""
    errors: dict[str, str] = {}
    if not KEY_RE.fullmatch(key or ""):
        errors["key"] = "must start with a letter and hold only a-z, 0-9 and _ (at most 64)"
    if not (title or "").strip():
        errors["title"] = "is required"
    elif len(title.strip()) > TITLE_MAX:
        errors["title"] = f"must be at most {TITLE_MAX} characters"
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
        q_lo, q_hi = QUESTION_TYPES[q.type].responses
        lo, hi = max(lo, q_lo), min(hi, q_hi)
        if q.type == "text" and (q.options or {}).get("mode") == "rewrite":
            lo = max(lo, 1)
    return lo, hi


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def parse_form_answers(questions: Sequence, form, response_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Turn posted ``answer.<key>`` fields (a MultiDict) into JSON answer values for an item whose
    responses are ``response_ids`` (in the order the page shows them)."""
    return {
        q.key: QUESTION_TYPES[q.type].parse_form(form.getlist(f"answer.{q.key}"), response_ids)
        for q in questions
        if f"answer.{q.key}" in form
    }


def validate_answers(
    questions: Sequence, raw: Mapping[str, Any], response_ids: Sequence[str] = (), partial: bool = False
) -> dict[str, Any]:
    """Check every answer against its question; return the normalised answers keyed by question key.

    ``questions`` are objects with ``key``, ``type``, ``options`` and ``required`` (ORM rows or plain
    records); ``response_ids`` are the item's responses (rankings must cover exactly these).
    ``partial`` (gold answers on import) skips the required check. Unknown keys are refused so a
    typo never silently drops an answer.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError({"": "answers must be an object keyed by question key"})
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
        if is_blank(value):
            if q.required and not partial:
                errors[q.key] = QUESTION_TYPES[q.type].missing
            continue
        try:
            clean[q.key] = QUESTION_TYPES[q.type].clean_answer(q.options or {}, value, response_ids)
        except AnswerError as exc:
            errors[q.key] = str(exc)
    if errors:
        raise ValidationError(errors)
    return clean


def fits(question, value: Any, response_ids: Sequence[str] = ()) -> bool:
    """Whether a stored answer still fits its question (figures leave out ones that do not)."""
    try:
        QUESTION_TYPES[question.type].clean_answer(question.options or {}, value, response_ids)
    except (AnswerError, TypeError, ValueError, KeyError):
        return False
    return True


def gold_score(questions: Sequence, answers: Mapping[str, Any], gold: Mapping[str, Any]) -> float | None:
    """Mean gold score over the questions that have a gold answer and a scorer; None when none do."""
    scores = []
    for q in questions:
        if q.key not in gold or q.key not in answers:
            continue
        try:
            score = QUESTION_TYPES[q.type].gold_score(q.options or {}, answers[q.key], gold[q.key])
        except (TypeError, ValueError, KeyError, ZeroDivisionError):
            score = None  # a gold answer that no longer fits its question scores nothing, never crashes
        if score is not None:
            scores.append(score)
    return sum(scores) / len(scores) if scores else None
