"""Item response theory for adaptive interviews: ability estimates, item choice, stopping, calibration.

The model is the two-parameter logistic (2PL): P(correct | θ) = 1 / (1 + exp(-a (θ - b))), with
discrimination a and difficulty b, no guessing (c = 0) and no slip (d = 1). Abilities are on the scale
of the calibration, which assumes candidates' abilities ~ N(0, 1), so Φ(θ) reads as a percentile.

catsim does the interview's maths (numerical ability search, Dodd's heuristic, randomesque selection,
standard error); girth calibrates items from answers. Both pull in SciPy and take most of a second to
import, so they are imported inside the functions that need them, never at module import.
Plain data only: parameters are (a, b) tuples, answers are booleans.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

LEVELS = {"easy": -1.0, "medium": 0.0, "hard": 1.0}  # seeded difficulty per level (discrimination 1.0)
THETA_BOUNDS = (-4.0, 4.0)
DISCRIMINATION_BOUNDS = (0.2, 4.0)


@dataclass(frozen=True)
class Estimate:
    theta: float
    se: float  # standard error of θ (math.inf when not estimable, e.g. no items)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _matrix(params: Sequence[tuple[float, float]]) -> np.ndarray:
    """(a, b) pairs -> an n × 2 float array, checked (a > 0, finite)."""
    items = np.asarray(params, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(items)) or np.any(items[:, 0] <= 0):
        raise ValueError("item parameters need a finite discrimination a > 0 and a finite difficulty b")
    return items


@cache
def _estimator():
    from catsim.estimation import NumericalSearchEstimator

    return NumericalSearchEstimator(method="bounded")


def estimate(
    params: Sequence[tuple[float, float]],
    correct: Sequence[bool],
    *,
    bank: Sequence[tuple[float, float]] | None = None,
) -> Estimate:
    """Ability θ and its standard error after the given answers.

    params = [(discrimination a, difficulty b)] of the administered items in order, correct = their
    outcomes. With both right and wrong answers θ is the maximum-likelihood estimate by catsim's
    numerical search (bounded Brent). With only right (or only wrong) answers the likelihood has no
    maximum, so θ follows Dodd's heuristic as catsim applies it during an interview: from 0 (the mean
    ability) each answer moves θ halfway towards the hardest (easiest) difficulty of ``bank`` (0 if
    all are easier) — pass the whole item bank so the estimate stays where the bank can measure;
    without it THETA_BOUNDS is the range. θ is clamped to THETA_BOUNDS. SE is catsim.irt.see: 1 / sqrt(test information at θ).
    No items -> Estimate(0.0, inf).
    """
    if len(params) != len(correct):
        raise ValueError("one outcome per administered item")
    if len(params) == 0:
        return Estimate(0.0, math.inf)
    from catsim import cat, irt
    from catsim.item_bank import ItemBank

    items = ItemBank(_matrix(params), validate=False)  # checked by _matrix; catsim's check prints a line
    answers = [bool(x) for x in correct]
    if all(answers) or not any(answers):
        ends = _matrix(bank) if bank is not None and len(bank) else np.array([[1.0, b] for b in THETA_BOUNDS])
        span = ItemBank(np.vstack([ends, [1.0, 0.0]]), validate=False)  # 0 inside, so θ moves the right way
        theta = 0.0
        for _ in answers:
            theta = cat.dodd(theta, span, answers[0])
    else:
        theta = _estimator().estimate(
            item_bank=items, administered_items=list(range(len(answers))), response_vector=answers, est_theta=0.0
        )
    theta = _clamp(float(theta), THETA_BOUNDS)
    return Estimate(theta, float(irt.see(theta, items.items[:, :4])))


_GRID = np.linspace(THETA_BOUNDS[0], THETA_BOUNDS[1], 161)


def final_estimate(params: Sequence[tuple[float, float]], correct: Sequence[bool]) -> Estimate:
    """The ability an interview is scored by, once it ends: the expected a posteriori (EAP) estimate
    under a standard normal prior (the calibration's own assumption about candidates), by quadrature
    on a grid over THETA_BOUNDS, with the posterior standard deviation as its SE.

    During the interview `estimate` (maximum likelihood, Dodd's steps before the first right and
    wrong answers) picks items; it is the wrong figure to rank people by at the end: after only right
    answers Dodd's θ is a step rule, so a candidate who got every item right could sit below one who
    missed some of the same items. EAP is finite for every answer pattern and rises with every right
    answer. No items -> the prior: Estimate(0.0, 1.0)."""
    if len(params) != len(correct):
        raise ValueError("one outcome per administered item")
    if len(params) == 0:
        return Estimate(0.0, 1.0)
    items = _matrix(params)
    right = np.asarray([bool(x) for x in correct])
    p = 1.0 / (1.0 + np.exp(-items[:, 0] * (_GRID[:, None] - items[:, 1])))
    p = np.clip(p, 1e-12, 1 - 1e-12)
    log_posterior = np.where(right, np.log(p), np.log1p(-p)).sum(axis=1) - _GRID**2 / 2
    weights = np.exp(log_posterior - log_posterior.max())
    weights /= weights.sum()
    theta = float(weights @ _GRID)
    return Estimate(theta, float(math.sqrt(weights @ (_GRID - theta) ** 2)))


def _generator(rng: random.Random | np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.default_rng(rng.getrandbits(64))
    return np.random.default_rng(rng)


def next_item(
    bank: Sequence[tuple[float, float]],
    administered: Sequence[int],
    theta: float,
    rng: random.Random | np.random.Generator | int | None,
    bin_size: int = 5,
) -> int | None:
    """Index into bank of the next item, or None when every item has been administered.

    Randomesque exposure control (catsim's RandomesqueSelector): one item at random among the
    bin_size most informative not-yet-administered items at θ, so no item goes first to everyone.
    The bank is shuffled before catsim ranks it, so items of equal information (a seeded bank has many
    items at the same level) share the draws instead of the same few always making the bin.
    """
    if bin_size < 1:
        raise ValueError("bin_size must be at least 1")
    items = _matrix(bank)
    done = set(administered)
    if any(not 0 <= i < len(items) for i in done):
        raise ValueError("administered index outside the bank")
    if len(done) >= len(items):
        return None
    from catsim.item_bank import ItemBank
    from catsim.selection import RandomesqueSelector

    generator = _generator(rng)
    order = generator.permutation(len(items))
    position = np.empty_like(order)
    position[order] = np.arange(len(items))
    chosen = RandomesqueSelector(bin_size).select(
        item_bank=ItemBank(items[order], validate=False),
        administered_items={int(position[i]) for i in done},
        est_theta=_clamp(float(theta), THETA_BOUNDS) if not math.isnan(theta) else 0.0,
        rng=generator,
    )
    return int(order[chosen])


def stop_reason(
    bank: Sequence[tuple[float, float]],
    administered: Sequence[int],
    est: Estimate,
    *,
    se_target: float,
    min_items: int,
    max_items: int,
) -> str | None:
    """Why the interview stops now, or None to go on. Plain logic rather than catsim's stoppers (whose
    MinErrorStopper stops on SE strictly below the target and needs a simulator to see the bank):
    'precision' when est.se <= se_target after at least min_items, else 'length' at max_items, else
    'bank' when every item has been administered. The caller handles the time box."""
    count = len(administered)
    if count >= min_items and est.se <= se_target:
        return "precision"
    if count >= max_items:
        return "length"
    if len(set(administered)) >= len(bank):
        return "bank"
    return None


def percentile(theta: float) -> float:
    """Φ(θ): the share of the calibration's N(0, 1) population below θ, in [0, 1]."""
    if math.isnan(theta):
        raise ValueError("theta is NaN")
    return 0.5 * math.erfc(-theta / math.sqrt(2.0))


def information(a: float, b: float, theta: float) -> float:
    """Fisher information of a 2PL item at θ, a² P (1 - P): how much the item tells about θ there."""
    p = 1.0 / (1.0 + math.exp(-a * (theta - b))) if a * (theta - b) > -700 else 0.0
    return a * a * p * (1.0 - p)


def _difficulty_from_share(right: int, answered: int, a: float) -> float:
    """b from an item's share of right answers alone, for items girth cannot fit (all right or all
    wrong): half an answer of each kind added so the share is never 0 or 1, then the 2PL marginal
    over θ ~ N(0, 1) inverted by the logistic-normal approximation E[σ(X)] ≈ σ(μ / sqrt(1 + πσ²/8))."""
    share = (right + 0.5) / (answered + 1.0)
    return -math.log(share / (1.0 - share)) * math.sqrt(1.0 + math.pi * a * a / 8.0) / a


def calibrate(
    responses: Sequence[tuple[int, int, bool]],
    n_items: int,
    n_people: int,
    *,
    two_parameter: bool = False,
) -> list[tuple[float, float] | None]:
    """Item parameters (a, b) re-estimated from candidates' answers, one entry per item, None for items
    nobody answered.

    responses = (item index, person index, correct); a repeated (item, person) keeps the last answer.
    Missing answers are normal (each candidate sees a few items) and are girth's INVALID_RESPONSE.

    girth's joint maximum likelihood: rasch_jml (a fixed at 1.0, the seeded discrimination) by
    default, twopl_jml (each item's own a) when two_parameter. The 2PL needs many more answers per
    item, and on adaptive answers, where each item meets a narrow band of abilities, a and b trade off
    and its difficulties are noticeably worse than the 1PL's; JML also inflates a somewhat.
    JML, not girth's MML routines: those solve each item's difficulty from its share of right answers
    over the whole N(0, 1) population, which is only right when who-sees-what is random. Adaptive
    interviews give hard items to strong candidates, and on such answers rasch_mml's difficulties
    correlate *negatively* with the true ones (see the tests); JML estimates each candidate's ability
    alongside, so the adaptive choice of items does not bias it. JML standardises abilities to mean 0,
    SD 1, which keeps Φ(θ) a percentile.

    Items or people with only right (or only wrong) answers carry no information for the fit; they
    are set aside (repeatedly, as setting one aside can leave another so) and such an item gets b from
    its smoothed share of right answers at the common a. b is clamped to THETA_BOUNDS, a to [0.2, 4].
    """
    if n_items < 0 or n_people < 0:
        raise ValueError("counts cannot be negative")
    from girth import INVALID_RESPONSE

    data = np.full((n_items, n_people), INVALID_RESPONSE, dtype=int)
    for item, person, right in responses:
        if not (0 <= item < n_items and 0 <= person < n_people):
            raise ValueError(f"response ({item}, {person}) outside {n_items} items × {n_people} people")
        data[item, person] = 1 if right else 0
    answered = np.count_nonzero(data != INVALID_RESPONSE, axis=1)
    right = np.count_nonzero(data == 1, axis=1)

    items, people = np.arange(n_items), np.arange(n_people)
    while True:  # keep the items and people with both kinds of answer among each other
        sub = data[np.ix_(items, people)]
        seen, ones = sub != INVALID_RESPONSE, sub == 1
        keep_items = np.any(ones, axis=1) & np.any(seen & ~ones, axis=1)
        keep_people = np.any(ones, axis=0) & np.any(seen & ~ones, axis=0)
        if keep_items.all() and keep_people.all():
            break
        items, people = items[keep_items], people[keep_people]
    if len(items) < 2 or len(people) < 2:
        items = items[:0]

    result: list[tuple[float, float] | None] = [None] * n_items
    common_a = 1.0
    if len(items):
        a_fit, b_fit, common_a = _fit(data[np.ix_(items, people)], two_parameter)
        for k, item in enumerate(items):
            a = _clamp(a_fit[k], DISCRIMINATION_BOUNDS) if math.isfinite(a_fit[k]) else common_a
            b = b_fit[k] if math.isfinite(b_fit[k]) else _difficulty_from_share(int(right[item]), int(answered[item]), a)
            result[item] = (float(a), float(_clamp(b, THETA_BOUNDS)))
    for item in np.flatnonzero(answered > 0):
        if result[item] is None:
            b = _difficulty_from_share(int(right[item]), int(answered[item]), common_a)
            result[item] = (float(common_a), float(_clamp(b, THETA_BOUNDS)))
    return result


def _fit(data: np.ndarray, two_parameter: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """girth's JML on items × people, every row and column with right and wrong answers -> (a per item,
    b per item, the a for items outside the fit)."""
    from girth import rasch_jml, twopl_jml

    if not two_parameter:
        b = np.asarray(rasch_jml(data, discrimination=1.0)["Difficulty"], dtype=float).reshape(-1)
        return np.ones(b.shape), b, 1.0
    out = twopl_jml(data)
    a = np.asarray(out["Discrimination"], dtype=float).reshape(-1)
    b = np.asarray(out["Difficulty"], dtype=float).reshape(-1)
    finite = a[np.isfinite(a)]
    return a, b, _clamp(float(np.median(finite)), DISCRIMINATION_BOUNDS) if finite.size else 1.0
