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
        pairs = [[agreement.preference_pairs(v, units.responses(i)) for _, v in units.by_item[i]]
                 for i in units.unit_ids]
        return {"pairwise_agreement": skip_safe(agreement.pairwise_preference_agreement, pairs),
                "alpha_interval": skip_safe(agreement.krippendorff_alpha, units.reliability_data(), "interval")}

    def pairs(self, options, values, responses, strategy, use_consensus):
        if use_consensus:
            values = [consensus.mean_preference(values)[0]] if values else []
        first, second = responses[0], responses[1]
        found = [(first, second, float(-v)) if v < 0 else (second, first, float(v)) for v in values if v]
        return found, len(values) - len(found)

    def best_response(self, options, values, responses):
        mean = consensus.mean_preference(values)[0] if values else 0
        return None if mean == 0 else responses[0 if mean < 0 else 1]
