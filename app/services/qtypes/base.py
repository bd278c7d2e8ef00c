"""What every question type provides. A type is one module in this package with one subclass of
``QuestionType`` and one template, ``templates/qtypes/<name>.html``, holding three macros: ``widget``
(the trainer's and the reviewer's input), ``answer`` (how a stored answer reads) and ``options``
(its part of the question builder). Nothing outside this package branches on a type's name: callers
ask the type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class AnswerError(ValueError):
    """One answer broke its question's rule; the message says how."""


RESPONSE_LETTERS = "ABCDEFGHI"
MEMO_MAX = 50_000  # distinct answer combinations whose per-item results ``item_rules`` keeps


def response_letter(position: int) -> str:
    """How a page names the response at ``position`` (0-based): A, B, C…"""
    return RESPONSE_LETTERS[position]


def response_name(position: int, count: int) -> str:
    """What every page calls the response at ``position`` of an item with ``count`` responses: "Response A",
    "Response B"…, or plain "Response" when it is the only one (the item, the questions and the feedback alike)."""
    return f"Response {response_letter(position)}" if count > 1 else "Response"


class Responses(tuple):
    """An item's response ids in the order pages show them, with their texts.

    Built from the item's stored responses (``[{id, text, …}]``) or from bare ids; types that check
    answers against the text (span offsets) need the former.
    """

    texts: dict[str, str]

    def __new__(cls, responses: Sequence = ()):
        if isinstance(responses, Responses):
            return responses
        entries = list(responses or ())
        self = super().__new__(cls, [r if isinstance(r, str) else r["id"] for r in entries])
        self.texts = {r["id"]: r.get("text", "") for r in entries if not isinstance(r, str)}
        return self

    def letters(self) -> dict[str, str]:
        """Letter on the page -> response id."""
        return {response_letter(i): rid for i, rid in enumerate(self)}


@dataclass
class Units:
    """One question's answers on many items, as the quality figures read them."""

    by_item: dict[Any, list[tuple[Any, Any]]]  # item -> [(trainer, value)]
    reliability_data: Callable[[], list[list[Any]]]  # coders × units, None where missing
    responses: Callable[[Any], Responses]  # item -> its responses

    # Each unit's values, unit by unit in any order (a faster read than ``by_item`` for figures that sum
    # over units); when absent, read from ``by_item``.
    values: Callable[[], Iterable[Sequence[Any]]] | None = None

    @property
    def unit_ids(self) -> list:
        return sorted(self.by_item)

    def unit_values(self) -> Iterable[Sequence[Any]]:
        if self.values is not None:
            return self.values()
        return ([v for _, v in self.by_item[i]] for i in self.unit_ids)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def int_field(form: Mapping, name: str, errors: dict, label: str):
    raw = (form.get(name) or "").strip()
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        errors[label] = "must be a whole number"
        return None
    return int(raw)


def whole_number(values: list[str], _responses: Responses = ()) -> Any:
    """A posted whole number (bounded to 9 digits before ``int``); anything else is passed on for
    ``clean_answer`` to name; nothing posted is None."""
    raw = values[0] if values else None
    if raw is None or raw.strip() == "":
        return None
    return int(raw) if re.fullmatch(r"-?[0-9]{1,9}", raw.strip()) else raw


def single(values: list[str], _responses: Responses) -> Any:
    return values[0] if values else None


def quoted(values) -> str:
    """Labels as a card lists them: JSON-quoted (exactly as they appear in the files), comma separated."""
    return ", ".join(json.dumps(str(v), ensure_ascii=False) for v in values)


def skip_safe(fn, *args):
    """A figure that cannot be computed (too little data, a zero variance) is None, never an error."""
    try:
        value = fn(*args)
    except (ValueError, ZeroDivisionError):
        return None
    return None if value != value else value  # NaN -> None


class QuestionType:
    """The default behaviour; each type overrides what it has."""

    name: str = ""
    title: str = ""
    missing: str = "answer this question"  # told to a trainer who leaves a required answer out
    defaults: Mapping[str, Any] = {}  # the options a new builder row starts with
    responses: tuple[int, int] = (0, 9)  # how many responses an item needs for this question
    comparable: bool = True  # has a consensus and an agreement (free text has neither)
    side_by_side: bool = False  # its item's two responses are shown side by side (a preference)
    # Its pairs come from an order of many responses, so the exports' ``ranking_pairs`` strategies
    # (all pairs, best against worst, best against the rest) choose which of them are rows.
    pairs_by_strategy: bool = False
    # What an annotation without an answer counts as in consensus and agreement: None leaves it out;
    # spans count it as "nothing marked" (an empty answer is never stored).
    unanswered: Any = None
    column_kind: str = "string"  # the type of its answer column in CSV/Parquet exports (lists go as JSON)
    # Answers all of exactly this Python type get per-item rules (``item_rules``) that read only the
    # values, never the item's responses: the statistics may then reuse one item's results for every
    # item whose answers are the same. None: no such reuse.
    memo_type: type | None = None
    reads_texts: bool = False  # its rules read the responses' texts, not only their ids (span offsets)
    # What the training exports may use it for: "pairs" (chosen/rejected), "desirable" (KTO labels on
    # one response), "score" (a rubric column), "rewrite" (an SFT completion).
    exports: frozenset[str] = frozenset()

    script: str | None = None  # its behaviour in the browser, under static/ (keys, drag and drop, selection)

    @property
    def template(self) -> str:
        return f"qtypes/{self.name}.html"

    # --- the question ----------------------------------------------------------------------------

    def check_options(self, options: Mapping[str, Any]) -> list[str]:
        return []

    def options_from_form(self, form: Mapping, prefix: str, errors: dict, label: str) -> dict:
        """The options of one builder row (fields ``<prefix><option>``); problems go into ``errors``."""
        return {}

    def breaks_answers(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
        """Why changing the options from ``old`` to ``new`` would strand answers given under ``old``."""
        return None

    def response_range(self, options: Mapping[str, Any]) -> tuple[int, int]:
        return self.responses

    def exported_as(self, options: Mapping[str, Any]) -> frozenset[str]:
        return self.exports

    # --- one answer ------------------------------------------------------------------------------

    def parse_form(self, values: list[str], responses: Responses) -> Any:
        """The values a form posted for this question -> the JSON value ``clean_answer`` takes. Pages
        name responses by letter (A, B, C…), never by their ids."""
        return single(values, responses)

    def from_letters(self, value: Any, responses: Responses) -> Any:
        """An answer sent as JSON (the API), naming responses by letter as the page does -> the value
        ``clean_answer`` takes (letters become the item's response ids; anything else is passed on for
        ``clean_answer`` to name). Types whose answers name no response take the value as it is."""
        return value

    def to_letters(self, value: Any, responses: Responses) -> Any:
        """A stored answer with its response ids shown as the page's letters: ``from_letters`` undone."""
        return value

    def clean_answer(self, options: Mapping[str, Any], value: Any, responses: Responses) -> Any:
        raise NotImplementedError

    def gold_score(self, options: Mapping[str, Any], answer: Any, gold: Any) -> float | None:
        return None  # graded by a reviewer

    # --- many answers: consensus and agreement (rules in quality/consensus.py) ----------------------

    def consensus(self, options: Mapping[str, Any], values: list, responses: Responses) -> tuple[Any, float | None]:
        """(consensus value, confidence 0–1) of the answers one item got."""
        return None, None

    def agreement_with(self, options: Mapping[str, Any], value: Any, consensus: Any, responses: Responses) -> float | None:
        """How far one answer agrees with the consensus, 0–1 (a trainer's consensus agreement)."""
        return None

    def item_agreement(self, options: Mapping[str, Any], values: list, responses: Responses) -> float | None:
        """Share of annotator pairs on one item that agree (low values go to review)."""
        return None

    def item_rules(self, options: Mapping[str, Any]) -> Callable[[list, Responses, bool], tuple]:
        """The statistics' work on one item as one function of (the values its annotations give, in
        order, None left out; its responses; whether to compute its item agreement) -> (indexes of the
        values that fit the question, each value's ``agreement_with`` the consensus of those that fit
        (None where it has none, and for every value when fewer than two fit: agreement with one's own
        answer says nothing), the item agreement or None). Nothing fits: ((), (), None). An answer
        that no longer fits its question (older data) is left out of the consensus rather than breaking
        the figures, though its agreement with that consensus still counts (as it always did).

        Results are reused between items with the same values where ``memo_type`` allows."""
        clean, agreed_of, agreement_with, item_agreement = (self.clean_answer, self.consensus, self.agreement_with,
                                                            self.item_agreement)

        def rules(values, responses, with_item_agreement):
            fitting = []
            for n, value in enumerate(values):
                try:
                    clean(options, value, responses)
                except (AnswerError, TypeError, ValueError, KeyError):
                    continue
                fitting.append(n)
            if not fitting:
                return (), (), None
            kept = [values[n] for n in fitting] if len(fitting) < len(values) else values
            if len(kept) < 2:  # one answer is its own consensus: agreeing with it says nothing
                return tuple(fitting), (None,) * len(values), None
            agreed = agreed_of(options, kept, responses)[0]
            scores = tuple(agreement_with(options, value, agreed, responses) for value in values)
            agreement = item_agreement(options, kept, responses) if with_item_agreement and len(kept) >= 2 else None
            return tuple(fitting), scores, agreement

        memo_type = self.memo_type
        if memo_type is None:
            return rules
        memo: dict = {}

        def reused(values, responses, with_item_agreement):
            for value in values:
                if type(value) is not memo_type:
                    return rules(values, responses, with_item_agreement)
            key = (with_item_agreement, *values)
            found = memo.get(key)
            if found is None:
                found = rules(values, responses, with_item_agreement)
                if len(memo) < MEMO_MAX:
                    memo[key] = found
            return found

        return reused

    def figures(self, options: Mapping[str, Any], units: Units) -> dict[str, float | None]:
        """The agreement figures of the Quality page; names are listed in ``FIGURE_NAMES``."""
        return {}

    # --- exports -----------------------------------------------------------------------------------

    def pairs(self, options: Mapping[str, Any], values: list, responses: Sequence[str], strategy: str,
              use_consensus: bool) -> tuple[list[tuple[str, str, float, tuple[int, ...]]], int]:
        """((chosen id, rejected id, margin, voters), ties dropped) from the answers one item got; voters
        are the indexes into ``values`` of the answers that order the pair that way; ``responses`` are
        the item's response ids in page order."""
        return [], 0

    def answer_feature(self, options: Mapping[str, Any]) -> dict:
        """The type of one answer as a dataset card's ``features`` write it, without the column's name
        (``{"dtype": "string"}``, ``{"sequence": "string"}``…): ``datasets`` types a column from it even
        where every value is null."""
        return {"dtype": "string"}

    def consensus_feature(self, options: Mapping[str, Any]) -> dict:
        """The type of an item's consensus value in the same form (the aggregated exports)."""
        return self.answer_feature(options)

    def card_meaning(self, options: Mapping[str, Any]) -> str | None:
        """One sentence for the dataset card: what this question's answer values mean (scale ends,
        labels, sign and strength), so a reader of the files never has to guess. None: nothing to add."""
        return None


# Every figure a type may report, in the order the Quality page shows them.
FIGURE_NAMES = {
    "alpha_nominal": "α nominal", "fleiss_kappa": "Fleiss κ", "alpha_ordinal": "α ordinal",
    "alpha_interval": "α interval", "pairwise_agreement": "pairwise agreement", "mean_tau_b": "mean τ-b",
    "mean_jaccard": "mean Jaccard", "mean_span_f1": "mean span F1", "mean": "mean",
}
