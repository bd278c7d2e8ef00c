"""An order of the item's responses, best first, in groups (a group holds tied responses)."""

from __future__ import annotations

import statistics
from itertools import combinations

import orjson

from ..quality import agreement, consensus
from ..quality.consensus import pairs_from_groups  # noqa: F401 - the package re-exports it
from .base import AnswerError, QuestionType, Units, skip_safe


def ranks_of(groups: list[list[str]]) -> dict[str, int]:
    """Response id -> rank position (0 = best); tied responses share a position."""
    return consensus.positions(groups)


def _tau(a, b) -> float | None:
    ra, rb = ranks_of(a), ranks_of(b)
    ids = sorted(ra)
    return skip_safe(agreement.kendall_tau_b, [ra[x] for x in ids], [rb.get(x, 0) for x in ids])


class RankingType(QuestionType):
    name = "ranking"
    title = "Ranking of responses"
    missing = "rank the responses (move rows, or confirm the order shown)"
    defaults = {"allow_ties": True}
    responses = (2, 9)
    exports = frozenset({"pairs"})
    pairs_by_strategy = True
    script = "js/qtypes/ranking.js"

    def check_options(self, options):
        if not isinstance(options.get("allow_ties", True), bool):
            return ["allow_ties must be true or false"]
        return []

    def options_from_form(self, form, prefix, errors, label):
        return {"allow_ties": form.get(f"{prefix}allow_ties") == "on"}

    def breaks_answers(self, old, new):
        if old.get("allow_ties", True) and not new.get("allow_ties", True):
            return "ties cannot be forbidden once answers may hold them"
        return None

    def parse_form(self, values, responses):
        """A posted ranking is JSON groups of letters, best first (``[["B"], ["A", "C"]]``); the letters
        become the item's response ids. Anything else is passed on for clean_answer to reject."""
        raw = values[0] if values else None
        if raw is None or raw.strip() == "":
            return None
        try:
            groups = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return self.from_letters(groups, responses)

    def from_letters(self, value, responses):
        """Groups of letters, best first (``[["B"], ["A", "C"]]``) -> groups of the item's response ids."""
        if not isinstance(value, list):
            return value
        by_letter = responses.letters()
        unknown = iter(range(1_000_000))

        def mapped(x):
            # Letters become ids. Anything else becomes a name no response has, so the error is the same
            # whatever was typed: a form cannot be used to test guesses of the hidden ids.
            if isinstance(x, str):
                return by_letter[x] if x in by_letter else f"?{next(unknown)}"
            return x

        return [[mapped(x) for x in g] if isinstance(g, list) else mapped(g) for g in value]

    def to_letters(self, value, responses):
        letter_of = {rid: letter for letter, rid in responses.letters().items()}
        if not isinstance(value, list):
            return value
        return [sorted(letter_of.get(r, "?") for r in (g if isinstance(g, list) else [g])) for g in value]

    def clean_answer(self, options, value, responses):
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

    def gold_score(self, options, answer, gold):
        a, g = ranks_of(answer), ranks_of(gold)
        ids = sorted(set(a) & set(g))
        try:
            tau = agreement.kendall_tau_b([a[i] for i in ids], [g[i] for i in ids])
        except ValueError:  # one side ties everything: only an identical answer agrees
            return 1.0 if [a[i] for i in ids] == [g[i] for i in ids] else 0.0
        return (tau + 1.0) / 2.0

    def consensus(self, options, values, responses):
        agreed = consensus.ranking(values)
        return agreed, statistics.fmean(consensus.ranking_agrees(v, agreed) for v in values)

    def agreement_with(self, options, value, agreed, responses):
        return consensus.ranking_agrees(value, agreed)

    def item_agreement(self, options, values, responses):
        units = [[agreement.ranking_pairs(v) for v in values]]
        return skip_safe(agreement.pairwise_preference_agreement, units)

    def figures(self, options, units: Units):
        pairs = ([agreement.ranking_pairs(v) for _, v in units.by_item[i]] for i in units.unit_ids)  # item by item
        taus = [t for answers in units.by_item.values() for (_, a), (_, b) in combinations(answers, 2)
                if (t := _tau(a, b)) is not None]
        return {"pairwise_agreement": skip_safe(agreement.pairwise_preference_agreement, pairs),
                "mean_tau_b": statistics.fmean(taus) if taus else None}

    def card_meaning(self, options):
        ties = "; responses in one group are tied" if options.get("allow_ties", True) else " (one response each)"
        return ("Groups of the item's response ids, best first" + ties + ". An item's consensus is the "
                "Bradley–Terry order of all its annotators' rankings (equal strengths share a group).")

    def answer_feature(self, options):
        return {"sequence": {"sequence": "string"}}  # groups of response ids, best first

    def consensus_feature(self, options):
        return self.answer_feature(options)

    # --- exports ---------------------------------------------------------------------------------------

    def order(self, options, value, responses):
        return value

    def consensus_order(self, options, values, responses):
        """The Bradley–Terry order of the answers (equal strengths share a group)."""
        return consensus.ranking(values) if values else []

    def pairs(self, options, values, responses, strategy, use_consensus):
        """((chosen, rejected, rank gap, voters), ties): the consensus order's pairs under the strategy
        (ties: pairs it leaves tied), or each direction some annotator's pairs hold, once."""
        if use_consensus:
            if not values:
                return [], 0
            agreed = consensus.ranking(values)
            return consensus.consensus_pairs(values, agreed, strategy), consensus.tied_pairs(agreed)
        return consensus.distinct_pairs(values, strategy), 0
