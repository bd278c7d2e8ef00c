"""One answer from many: the consensus of each kind of answer, and how far one answer agrees with it.

The one home of these rules. The statistics (a trainer's agreement with the consensus, which the
export's ``min_trainer_quality`` filter reads), review routing (low-agreement items) and the exports
(the ``aggregated`` format, consensus pairs, KTO labels, SFT's best response) all call these functions
through the question types, so they cannot disagree. Plain data only: no ORM.

Ties are not broken: a label tie (two labels with the most votes) has no consensus, so no trainer
agrees or disagrees with it and it trains nothing; a KTO or SFT label is the side (desirable or not)
more than half the annotators took, and an even split gives no row. A rating consensus is the mean (a
trainer agrees when within half a point of it); a preference consensus is the mean, and a mean of 0
is a tie (no pair, no best response). An item answered once has a consensus (its one answer), but
nobody's agreement with it is counted: it would be agreement with oneself.

Pairs for training files come from orders: each answer as best-first groups of response ids (a
preference is a two-response order, its 0 one group), and the consensus as such groups. An annotator
*agrees* with a pair when their own order puts the chosen response strictly above the rejected one
(a tie is not agreement).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from itertools import combinations

from . import aggregation, agreement


def sign(value: float) -> int:
    return (value > 0) - (value < 0)


# --- labels ---------------------------------------------------------------------------------------------


def majority_label(values: Sequence, labels: Sequence[str]) -> tuple[str | None, float]:
    """The most frequent label and its share of the votes; None (with the tied labels' share) when two or
    more labels have the most votes: a tie has no consensus, whichever label the question lists first."""
    counts = Counter(values).most_common()
    top = counts[0][1]
    if len(counts) > 1 and counts[1][1] == top:
        return None, top / len(values)
    return counts[0][0], top / len(values)


def desirable_side(values: Sequence, desirable) -> tuple[bool | None, float]:
    """Whether more than half of the annotators chose a desirable label (True) or an undesirable one
    (False), and the share on that side; None (share 0.5) on an even split. What a KTO label or an SFT
    target from a label question rests on: two desirable labels split between them still say desirable."""
    good = sum(1 for v in values if v in desirable) / len(values)
    if good == 0.5:
        return None, 0.5
    return good > 0.5, max(good, 1 - good)


def label_set(values: Sequence[Sequence[str]], labels: Sequence[str]) -> tuple[list[str], float]:
    """Labels chosen by more than half of the annotators, sorted as an answer is (a multi-label answer
    is stored sorted, so a consensus equal to an answer compares equal), and the mean over labels of
    the share on the winning side."""
    shares = {x: sum(x in v for v in values) / len(values) for x in labels}
    return sorted(x for x in labels if shares[x] > 0.5), statistics.fmean(max(s, 1 - s) for s in shares.values())


def same(a, b) -> float:
    """Whole-answer agreement: 1 when two answers are equal, else 0 (labels, ratings' item agreement)."""
    return 1.0 if a == b else 0.0


def same_set(a, b) -> float:
    return 1.0 if set(a) == set(b) else 0.0


def jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return 1.0 if not a and not b else len(a & b) / len(a | b)


# --- numbers ---------------------------------------------------------------------------------------------


def mean_rating(values: Sequence[int], low: int, high: int) -> tuple[float, float]:
    """The mean rating, and 1 minus the mean distance from it as a share of the scale."""
    mean = statistics.fmean(values)
    return float(mean), 1 - statistics.fmean(abs(v - mean) for v in values) / ((high - low) or 1)


def rating_agrees(value: float, consensus: float) -> float:
    return 1.0 if abs(value - consensus) <= 0.5 else 0.0


def mean_preference(values: Sequence[int]) -> tuple[float, float]:
    """The mean preference, and the share of answers on its side (a tie on a tie)."""
    mean = statistics.fmean(values)
    return float(mean), sum(sign(v) == sign(mean) for v in values) / len(values)


def preference_agrees(value: float, consensus: float) -> float:
    return 1.0 if sign(value) == sign(consensus) else 0.0


# --- rankings --------------------------------------------------------------------------------------------


def ranking(rankings: Sequence[Sequence[Sequence[str]]]) -> list[list[str]]:
    """Best-first groups from Bradley–Terry strengths over every annotator's implied pairs; responses
    of equal strength share a group."""
    comparisons = []
    for groups in rankings:
        comparisons.extend(aggregation.comparisons_from_pairs(agreement.ranking_pairs(groups)))
    strengths = aggregation.bradley_terry(comparisons)
    ordered: dict[float, list[str]] = {}
    for rid in sorted(strengths):
        ordered.setdefault(round(strengths[rid], 9), []).append(rid)
    return [ordered[s] for s in sorted(ordered, reverse=True)]


def pair_agreement(mine: dict, consensus: dict) -> float:
    """Share of the pairs both orderings decide that they decide the same way."""
    shared = [p for p in mine if p in consensus]
    return sum(mine[p] == consensus[p] for p in shared) / len(shared) if shared else 0.0


def ranking_agrees(groups, consensus_groups) -> float:
    return pair_agreement(agreement.ranking_pairs(groups), agreement.ranking_pairs(consensus_groups))


# --- pairs and ends of an order (the training exports) ------------------------------------------------


def positions(groups: Sequence[Sequence[str]]) -> dict[str, int]:
    """Response id -> position in a best-first order (0 = best); tied responses share a position."""
    return {rid: position for position, group in enumerate(groups) for rid in group}


def pairs_from_groups(groups: Sequence[Sequence[str]], strategy: str):
    """(chosen, rejected, rank gap) from a best-first order under a ``ranking_pairs`` strategy; tied
    responses (one group) are never a pair."""
    if len(groups) < 2:
        return
    if strategy == "best_vs_worst":
        for a in groups[0]:
            for b in groups[-1]:
                yield a, b, float(len(groups) - 1)
        return
    last_first = 1 if strategy == "best_vs_rest" else len(groups) - 1
    for i in range(last_first):
        for j in range(i + 1, len(groups)):
            for a in groups[i]:
                for b in groups[j]:
                    yield a, b, float(j - i)


def _voters(ranks: Sequence[dict[str, int]], chosen: str, rejected: str) -> tuple[int, ...]:
    """Indexes of the answers that put ``chosen`` strictly above ``rejected``."""
    return tuple(n for n, rank in enumerate(ranks)
                 if chosen in rank and rejected in rank and rank[chosen] < rank[rejected])


def consensus_pairs(orders: Sequence[Sequence[Sequence[str]]], agreed: Sequence[Sequence[str]], strategy: str):
    """The consensus order's pairs under the strategy: [(chosen, rejected, rank gap, voters)], where
    voters are the indexes of the answers (``orders``) that order the pair the same way."""
    ranks = [positions(groups) for groups in orders]
    return [(c, r, gap, _voters(ranks, c, r)) for c, r, gap in pairs_from_groups(agreed, strategy)]


def distinct_pairs(orders: Sequence[Sequence[Sequence[str]]], strategy: str):
    """Every direction some answer's own pairs hold (under the strategy), once, in first-seen order:
    [(chosen, rejected, mean rank gap of its voters, voters)]. Both directions of a pair may appear
    (annotators disagreed): this is the per-annotation weighting, not a consensus."""
    ranks = [positions(groups) for groups in orders]
    own = [{(c, r): None for c, r, _gap in pairs_from_groups(groups, strategy)} for groups in orders]
    seen: dict[tuple[str, str], None] = {}
    for pairs in own:
        for pair in pairs:  # each answer's pairs in its own order: first seen, first written
            seen.setdefault(pair)
    found = []
    for c, r in seen:
        # The answers whose own pairs under the strategy hold it: best_vs_worst never pairs a middle
        # response, so an annotator who ranked c above r only in passing did not give this row.
        voters = tuple(n for n, pairs in enumerate(own) if (c, r) in pairs)
        found.append((c, r, sum(ranks[n][r] - ranks[n][c] for n in voters) / len(voters), voters))
    return found


def tied_pairs(groups: Sequence[Sequence[str]]) -> int:
    """How many response pairs an order ties (pairs inside one group)."""
    return sum(len(g) * (len(g) - 1) // 2 for g in groups)


def order_ends(orders: Sequence[Sequence[Sequence[str]]], agreed: Sequence[Sequence[str]]):
    """KTO's rule: the consensus top group is desirable, the bottom group undesirable, the middle
    neither; an order of one group (a tie) has no ends. Returns ([(response id, desirable, voters)],
    responses in the middle), voters being the answers that put the response in their own top (or
    bottom) group, of an order with at least two groups."""
    if len(agreed) < 2:
        return [], 0
    top, bottom = set(agreed[0]), set(agreed[-1])
    both = top & bottom  # cannot happen in a partition; guarded so a response never gets two labels
    ranks = [positions(groups) for groups in orders]
    lasts = [max(rank.values(), default=0) for rank in ranks]
    found = []
    for rid in agreed[0]:
        if rid not in both:
            found.append((rid, True, tuple(n for n, rank in enumerate(ranks) if lasts[n] > 0 and rank.get(rid) == 0)))
    for rid in agreed[-1]:
        if rid not in both:
            found.append((rid, False, tuple(n for n, rank in enumerate(ranks)
                                            if lasts[n] > 0 and rank.get(rid) == lasts[n])))
    return found, sum(len(g) for g in agreed[1:-1])


# --- spans -----------------------------------------------------------------------------------------------
#
# Matching rule: two spans match when they mark the same response with the same label and their
# characters overlap by at least half of their union (IoU ≥ 0.5). Matching is one to one, best
# overlap first. F1 = 2 × matched / (spans in A + spans in B); two empty answers agree fully.

SPAN_MIN_IOU = 0.5


def _iou(a: dict, b: dict) -> float:
    if a["response"] != b["response"] or a["label"] != b["label"]:
        return 0.0
    overlap = min(a["end"], b["end"]) - max(a["start"], b["start"])
    if overlap <= 0:
        return 0.0
    return overlap / (max(a["end"], b["end"]) - min(a["start"], b["start"]))


def span_matches(a: Sequence[dict], b: Sequence[dict]) -> list[tuple[int, int]]:
    """(index in a, index in b) of matched spans, one to one, best overlap first."""
    candidates = sorted(
        ((iou, i, j) for i, x in enumerate(a) for j, y in enumerate(b) if (iou := _iou(x, y)) >= SPAN_MIN_IOU),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_a, used_b, matched = set(), set(), []
    for _iou_value, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched.append((i, j))
    return matched


def span_f1(a: Sequence[dict], b: Sequence[dict]) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(span_matches(a, b)) / (len(a) + len(b))


def spans(answers: Sequence[Sequence[dict]]) -> tuple[list[dict], float]:
    """Spans that more than half of the annotators marked (a span counts for every annotator with a
    matching one), each once, ordered by response and position; and the annotators' mean F1 against
    that consensus."""
    need = len(answers) / 2
    chosen: list[dict] = []
    candidates = []
    for n, answer in enumerate(answers):
        for span in answer:
            support = 1 + sum(
                1 for m, other in enumerate(answers) if m != n and any(_iou(span, o) >= SPAN_MIN_IOU for o in other)
            )
            candidates.append((support, span))
    for support, span in sorted(candidates, key=lambda c: (-c[0], c[1]["response"], c[1]["start"], c[1]["end"])):
        if support > need and not any(_iou(span, c) >= SPAN_MIN_IOU for c in chosen):
            chosen.append({"response": span["response"], "start": span["start"], "end": span["end"],
                           "label": span["label"], "comment": ""})
    chosen.sort(key=lambda s: (s["response"], s["start"], s["end"], s["label"]))
    return chosen, statistics.fmean(span_f1(a, chosen) for a in answers)


def mean_pairwise(values: Sequence, score) -> float | None:
    """Mean of ``score`` over every pair of annotators' answers; None with fewer than two."""
    pairs = list(combinations(values, 2))
    return statistics.fmean(score(a, b) for a, b in pairs) if pairs else None
