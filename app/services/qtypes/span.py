"""Spans: fine-grained feedback on a response. The trainer marks stretches of a response's text and
gives each a category from the question's labels (e.g. factual error, unsafe, irrelevant) and an
optional comment.

An answer is ``[{"response": id, "start": int, "end": int, "label": str, "comment": str}]``:
character offsets into the response text as stored (``end`` exclusive), ordered by response and
position. Scoring, consensus and agreement use span-level F1 with the matching rule written in
``quality/consensus.py`` (same response and label, IoU ≥ 0.5, one to one).
"""

from __future__ import annotations

from itertools import combinations

import orjson

from app.bounds import plain_text_problem

from ..quality import consensus
from .base import AnswerError, Units, quoted
from .labels import LabelList

SPANS_MAX = 100
COMMENT_MAX = 500
KEYS = {"response", "start", "end", "label", "comment"}


def _offset(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SpanType(LabelList):
    name = "span"
    title = "Spans (mark parts of a response)"
    missing = "mark at least one span (select text in a response, then press 1–9)"
    defaults = {"labels": ["factual error", "unsafe", "irrelevant"]}
    responses = (1, 9)
    reads_texts = True  # offsets must fit the text
    unanswered: list = []  # never changed: a shared empty answer
    script = "js/qtypes/span.js"

    def check_options(self, options):
        problems = super().check_options(options)
        if not problems and len(options["labels"]) > 9:
            return ["at most 9 labels (one key each, 1–9)"]
        return problems

    def parse_form(self, values, responses):
        """The widget posts JSON spans naming responses by letter; letters become ids (anything else
        becomes a name no response has, so a form cannot test guesses of the hidden ids)."""
        raw = values[0] if values else None
        if raw is None or raw.strip() == "":
            return None
        try:
            spans = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return self.from_letters(spans, responses)

    def from_letters(self, value, responses):
        """Spans naming their response by letter -> spans naming the item's response id."""
        if not isinstance(value, list):
            return value
        by_letter = responses.letters()
        spans = []
        for n, span in enumerate(value):
            if isinstance(span, dict) and "response" in span:
                letter = span["response"]
                span = {**span, "response": by_letter.get(letter, f"?{n}") if isinstance(letter, str) else letter}
            spans.append(span)
        return spans

    def to_letters(self, value, responses):
        letter_of = {rid: letter for letter, rid in responses.letters().items()}
        if not isinstance(value, list):
            return value
        return [{**span, "response": letter_of.get(span.get("response"), "?")} if isinstance(span, dict) else span
                for span in value]

    def clean_answer(self, options, value, responses):
        if not isinstance(value, list):
            raise AnswerError("must be a list of spans")
        if len(value) > SPANS_MAX:
            raise AnswerError(f"at most {SPANS_MAX} spans")
        order = {rid: n for n, rid in enumerate(responses)}
        clean, seen = [], set()
        for n, span in enumerate(value, start=1):
            if not isinstance(span, dict) or not {"response", "start", "end", "label"} <= set(span) or set(span) - KEYS:
                raise AnswerError(f"span {n} must be an object with response, start, end, label and an optional comment")
            rid, start, end, label = span["response"], _offset(span["start"]), _offset(span["end"]), span["label"]
            if not isinstance(rid, str) or rid not in order or rid not in responses.texts:
                raise AnswerError(f"span {n} marks a response this item does not have")
            length = len(responses.texts[rid])
            if start is None or end is None or not 0 <= start < end <= length:
                raise AnswerError(f"span {n} must have whole-number offsets with 0 ≤ start < end ≤ {length:,} "
                                  "(the length of its response)")
            if label not in options["labels"]:
                raise AnswerError(f"span {n}: {str(label)[:40]!r} is not one of {', '.join(options['labels'])}")
            comment = "" if span.get("comment") is None else span["comment"]
            if not isinstance(comment, str) or len(comment) > COMMENT_MAX:
                raise AnswerError(f"span {n}: the comment must be text of at most {COMMENT_MAX} characters")
            if problem := plain_text_problem(comment):
                raise AnswerError(f"span {n}: the comment {problem}")
            if (rid, start, end, label) in seen:
                raise AnswerError(f"span {n} repeats another span")
            seen.add((rid, start, end, label))
            clean.append({"response": rid, "start": start, "end": end, "label": label,
                          "comment": comment.replace("\r\n", "\n").strip()})
        clean.sort(key=lambda s: (order[s["response"]], s["start"], s["end"], s["label"]))
        return clean

    def gold_score(self, options, answer, gold):
        return consensus.span_f1(answer, gold)

    def answer_feature(self, options):
        return {"list": [{"name": "response", "dtype": "string"}, {"name": "start", "dtype": "int64"},
                         {"name": "end", "dtype": "int64"}, {"name": "label", "dtype": "string"},
                         {"name": "comment", "dtype": "string"}]}

    def card_meaning(self, options):
        return ("A list of marked stretches of a response, each {response, start, end, label, comment}: the "
                "response's id, character offsets into its text as stored (end exclusive), a category from "
                f"{quoted(options.get('labels', []))} and an optional comment; an empty list marks nothing. "
                "Two spans match when they share response and label and overlap with IoU ≥ 0.5; an item's "
                "consensus keeps the spans more than half of its annotators marked.")

    def consensus(self, options, values, responses):
        agreed, confidence = consensus.spans(values)
        order = {rid: n for n, rid in enumerate(responses)}
        agreed.sort(key=lambda s: (order.get(s["response"], len(order)), s["start"], s["end"], s["label"]))
        return agreed, confidence

    def agreement_with(self, options, value, agreed, responses):
        return consensus.span_f1(value, agreed)

    def item_agreement(self, options, values, responses):
        return consensus.mean_pairwise(values, consensus.span_f1)

    def figures(self, options, units: Units):
        scores = [consensus.span_f1(a, b) for answers in units.by_item.values()
                  for (_, a), (_, b) in combinations(answers, 2)]
        return {"mean_span_f1": sum(scores) / len(scores) if scores else None}
