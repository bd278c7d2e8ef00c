"""A point on a numbered scale, with optional descriptions (anchors) of some points."""

from __future__ import annotations

import re
import statistics

from ..quality import agreement, consensus
from .base import AnswerError, QuestionType, Units, int_field, is_int, lines, quoted, skip_safe, whole_number

ANCHOR_MAX = 200
POINTS_MAX = 101


class RatingType(QuestionType):
    name = "rating"
    title = "Rating scale"
    missing = "choose a point on the scale"
    defaults = {"min": 1, "max": 5, "anchors": {}}
    column_kind = "int"
    exports = frozenset({"score"})
    memo_type = int  # its rules read the values alone

    def check_options(self, options):
        lo, hi = options.get("min"), options.get("max")
        if not (is_int(lo) and is_int(hi)) or lo >= hi:
            return ["min and max must be whole numbers with min < max"]
        if hi - lo >= POINTS_MAX:
            return [f"a scale may have at most {POINTS_MAX} points"]
        anchors = options.get("anchors", {})
        if not isinstance(anchors, dict):
            return ["anchors must map scale points to descriptions"]
        for point, text in anchors.items():
            if not re.fullmatch(r"-?[0-9]{1,4}", str(point)) or not lo <= int(point) <= hi:
                return [f"anchor {str(point)[:10]!r} is not a point of the scale {lo}–{hi}"]
            if not isinstance(text, str) or len(text) > ANCHOR_MAX:
                return [f"anchor {str(point)[:10]!r} must be text of at most {ANCHOR_MAX} characters"]
        return []

    def options_from_form(self, form, prefix, errors, label):
        lo = int_field(form, f"{prefix}min", errors, f"{label}.min")
        hi = int_field(form, f"{prefix}max", errors, f"{label}.max")
        anchors = {}
        for line in lines(form.get(f"{prefix}anchors")):
            point, _, text = line.partition(":")
            if not text:
                errors[f"{label}.anchors"] = f"write each anchor as 'point: description' ({line[:40]!r})"
                continue
            anchors[point.strip()] = text.strip()
        return {"min": lo, "max": hi, "anchors": anchors}

    def breaks_answers(self, old, new):
        if (old.get("min"), old.get("max")) != (new.get("min"), new.get("max")):
            return f"the scale {old.get('min')}–{old.get('max')} cannot change once answers use it (anchors can)"
        return None

    def parse_form(self, values, responses):
        return whole_number(values)

    def clean_answer(self, options, value, responses):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not is_int(value):
            raise AnswerError("must be a whole number")
        if not options["min"] <= value <= options["max"]:
            raise AnswerError(f"must be between {options['min']} and {options['max']}")
        return value

    def gold_score(self, options, answer, gold):
        return 1.0 - abs(answer - gold) / (options["max"] - options["min"])

    def answer_feature(self, options):
        return {"dtype": "int64"}

    def consensus_feature(self, options):
        return {"dtype": "float64"}  # the mean rating

    def card_meaning(self, options):
        lo, hi = options.get("min"), options.get("max")
        anchors = {int(point): text for point, text in (options.get("anchors") or {}).items()}

        def end(point):
            return f"{point} ({quoted([anchors[point]])})" if anchors.get(point) else str(point)

        middle = [f"{point} = {quoted([anchors[point]])}" for point in sorted(anchors) if lo < point < hi and anchors[point]]
        return (f"A whole number from {end(lo)} to {end(hi)}"
                + (f"; described points: {'; '.join(middle)}" if middle else "")
                + "; an item's consensus is the mean of its annotators' ratings (a float; rubric columns round it).")

    def consensus(self, options, values, responses):
        return consensus.mean_rating(values, options["min"], options["max"])

    def agreement_with(self, options, value, agreed, responses):
        return consensus.rating_agrees(value, agreed)

    def item_agreement(self, options, values, responses):
        return consensus.mean_pairwise(values, consensus.same)

    def figures(self, options, units: Units):
        data = units.reliability_data()
        values = [v for answers in units.by_item.values() for _, v in answers]
        return {"alpha_ordinal": skip_safe(agreement.krippendorff_alpha, data, "ordinal"),
                "alpha_interval": skip_safe(agreement.krippendorff_alpha, data, "interval"),
                "mean": statistics.fmean(values) if values else None}
