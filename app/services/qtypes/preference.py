"""Which of two responses is better, and by how much: -scale … +scale (negative: the first, A)."""

from __future__ import annotations

from ..quality import agreement, consensus
from .base import AnswerError, QuestionType, Units, int_field, is_int, skip_safe, whole_number


class PreferenceType(QuestionType):
    name = "preference"
    title = "Preference between two responses"
    missing = "choose which response is better"
    defaults = {"scale": 3}
    responses = (2, 2)
    side_by_side = True
    script = "js/qtypes/preference.js"
    column_kind = "int"
    exports = frozenset({"pairs"})
    # Its rules read the values alone: the item agreement reads the responses only to name the pair,
    # and every answer on one item names the same pair.
    memo_type = int

    def check_options(self, options):
        scale = options.get("scale")
        if not is_int(scale) or not 1 <= scale <= 5:
            return ["scale must be a whole number from 1 to 5"]
        return []

    def options_from_form(self, form, prefix, errors, label):
        return {"scale": int_field(form, f"{prefix}scale", errors, f"{label}.scale")}

    def breaks_answers(self, old, new):
        if old.get("scale") != new.get("scale"):
            return f"the preference scale (±{old.get('scale')}) cannot change once answers use it"
        return None

    def parse_form(self, values, responses):
        return whole_number(values)

    def clean_answer(self, options, value, responses):
        if not is_int(value):
            raise AnswerError("choose which response is better")
        scale = options["scale"]
        if not -scale <= value <= scale:
            raise AnswerError(f"must be between -{scale} and {scale}")
        return value

    def gold_score(self, options, answer, gold):
        # HelpSteer3 convention: negative = first response better. Near-ties (|x| <= 1) agree with a tie.
        same_side = consensus.sign(answer) == consensus.sign(gold)
        near_tie = abs(answer) <= 1 and abs(gold) <= 1 and (answer == 0 or gold == 0)
        return 1.0 if same_side or near_tie else 0.0

    def consensus(self, options, values, responses):
        return consensus.mean_preference(values)

    def agreement_with(self, options, value, agreed, responses):
        return consensus.preference_agrees(value, agreed)

    def item_agreement(self, options, values, responses):
        units = [[agreement.preference_pairs(v, responses) for v in values]]
        return skip_safe(agreement.pairwise_preference_agreement, units)

    def figures(self, options, units: Units):
        # Every answer on one item judges the same pair (its two responses): the pairwise agreement reads
        # only the signs of each item's values.
        return {"pairwise_agreement": skip_safe(agreement.pairwise_sign_agreement, units.unit_values()),
                "alpha_interval": skip_safe(agreement.krippendorff_alpha, units.reliability_data(), "interval")}

    def card_meaning(self, options):
        s = options["scale"]
        return (f"A whole number from -{s} to +{s}: negative means the first response (A) is better, positive the "
                f"second (B); the size is the strength (1 slightly, {s} much better); 0 is a tie. An item's "
                "consensus is the mean (0: a tie, no pair).")

    def answer_feature(self, options):
        return {"dtype": "int64"}

    def consensus_feature(self, options):
        return {"dtype": "float64"}  # the mean

    # --- exports: a preference is an order of the item's two responses ---------------------------------

    def order(self, options, value, responses):
        """One answer as best-first groups: [[A], [B]], [[B], [A]], or [[A, B]] for a tie."""
        a, b = responses[0], responses[1]
        return [[a], [b]] if value < 0 else [[b], [a]] if value > 0 else [[a, b]]

    def consensus_order(self, options, values, responses):
        """The order of the mean preference (a mean of 0 ties them)."""
        return self.order(options, sum(values) / len(values) if values else 0, responses)

    def pairs(self, options, values, responses, strategy, use_consensus):
        """((chosen, rejected, margin, voters), ties). Consensus: the mean's direction, margin |mean|;
        per annotation: each direction given once, margin the mean strength of those who gave it.
        Voters are the indexes of the answers on the row's side."""
        a, b = responses[0], responses[1]
        if use_consensus:
            if not values:
                return [], 0
            mean = sum(values) / len(values)
            if mean == 0:
                return [], 1
            if mean < 0:
                return [(a, b, -mean, [n for n, v in enumerate(values) if v < 0])], 0
            return [(b, a, mean, [n for n, v in enumerate(values) if v > 0])], 0
        first = [n for n, v in enumerate(values) if v < 0]
        second = [n for n, v in enumerate(values) if v > 0]
        found = []
        if first:
            found.append((a, b, -sum(values[n] for n in first) / len(first), first))
        if second:
            found.append((b, a, sum(values[n] for n in second) / len(second), second))
        return found, len(values) - len(first) - len(second)
