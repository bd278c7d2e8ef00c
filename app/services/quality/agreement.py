"""Agreement statistics on plain data. No ORM: callers pass lists, tuples and dicts.

Big inputs (a million annotations) go through NumPy; nothing here loops over annotations in Python
except where the input itself is a Python structure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


# --- Krippendorff's alpha ---------------------------------------------------------------------------


def _encode(reliability_data: Sequence[Sequence], level: str) -> tuple[np.ndarray, np.ndarray]:
    """Coders × units values -> (codes with -1 for missing, the sorted value domain)."""
    import numpy as np

    if isinstance(reliability_data, np.ndarray) and reliability_data.dtype.kind == "f":
        data = reliability_data
        present = ~np.isnan(data)
        domain = np.unique(data[present])
        codes = np.full(data.shape, -1, dtype=np.int64)
        codes[present] = np.searchsorted(domain, data[present])
        return codes, domain
    rows = [list(row) for row in reliability_data]
    width = max((len(r) for r in rows), default=0)
    if any(len(r) != width for r in rows):
        raise ValueError("every coder needs one value (or None) per unit")
    values = sorted({v for r in rows for v in r if v is not None}, key=_sort_key if level == "nominal" else None)
    if level != "nominal" and any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{level} alpha needs numeric values")
    index = {v: i for i, v in enumerate(values)}
    codes = np.array([[index[v] if v is not None else -1 for v in r] for r in rows], dtype=np.int64).reshape(
        len(rows), width
    )
    return codes, np.array(values, dtype=float if level != "nominal" else object)


def _sort_key(value: Hashable):
    return (type(value).__name__, value)


def _distance(level: str, domain: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Squared difference δ² between every pair of values (Krippendorff 2011, 'Computing alpha')."""
    import numpy as np

    k = len(domain)
    if level == "nominal":
        return 1.0 - np.eye(k)
    values = domain.astype(float)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = ((values[:, None] - values[None, :]) / total) ** 2
        return np.nan_to_num(d, nan=0.0)
    # ordinal: the mass of values between c and k, ends counted half
    cumulative = np.concatenate([[0.0], np.cumsum(totals)])
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = cumulative[hi + 1] - cumulative[lo]
    return (between - (totals[:, None] + totals[None, :]) / 2.0) ** 2


def coincidence_matrix(codes: np.ndarray, k: int) -> np.ndarray:
    """o[c, k]: pairable value pairs within units, each unit weighted 1 / (m_u − 1)."""
    import numpy as np

    coders, units = codes.shape
    present = codes >= 0
    unit_index = np.broadcast_to(np.arange(units), codes.shape)[present]
    counts = np.zeros((units, k))
    np.add.at(counts, (unit_index, codes[present]), 1.0)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    weights = 1.0 / (m - 1.0)
    o = (counts * weights[:, None]).T @ counts
    o -= np.diag((counts * weights[:, None]).sum(axis=0))
    return o


def krippendorff_alpha(reliability_data, level: str = "nominal") -> float:
    """Krippendorff's α for coders × units data, ``None`` (or NaN) for a missing value.

    ``level`` is ``nominal``, ``ordinal``, ``interval`` or ``ratio``. Reproduces the published
    example in Krippendorff (2011): nominal 0.691, interval 0.811.
    """
    import numpy as np

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    codes, domain = _encode(reliability_data, level)
    if len(domain) == 0:
        raise ValueError("no values to compare")
    o = coincidence_matrix(codes, len(domain))
    totals = o.sum(axis=1)
    n = totals.sum()
    if n <= 1:
        raise ValueError("alpha needs at least one unit with two values")
    delta = _distance(level, domain, totals)
    observed = (o * delta).sum()
    expected = (np.outer(totals, totals) * delta).sum() / (n - 1.0)
    if expected == 0:
        return 1.0 if observed == 0 else float("nan")
    return float(1.0 - observed / expected)


# --- Fleiss' and Cohen's kappa ------------------------------------------------------------------------


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float:
    """Fleiss' κ from a units × categories table of rater counts (every unit rated by n raters).

    Reproduces Fleiss (1971) as worked on Wikipedia: 10 subjects × 14 raters, κ = 0.210.
    """
    import numpy as np

    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError("counts must be a units × categories table")
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (≥ 2) of raters for every unit")
    n = raters[0]
    per_unit = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = per_unit.mean()
    shares = table.sum(axis=0) / table.sum()
    p_e = (shares**2).sum()
    if p_e == 1:
        return 1.0
    return float((p_bar - p_e) / (1 - p_e))


def cohen_kappa(a: Sequence, b: Sequence, weights: str | None = None) -> float:
    """Cohen's κ between two raters' labels; ``weights`` None, ``linear`` or ``quadratic``.

    Labels are ordered by sorting (the order matters for the weighted forms).
    """
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError("a and b must be non-empty and of the same length")
    if weights not in (None, "linear", "quadratic"):
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    labels = sorted(set(a) | set(b), key=_sort_key)
    index = {v: i for i, v in enumerate(labels)}
    k = len(labels)
    confusion = np.zeros((k, k))
    np.add.at(confusion, (np.array([index[x] for x in a]), np.array([index[y] for y in b])), 1.0)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    w = {None: (grid > 0).astype(float), "linear": grid, "quadratic": grid**2}[weights]
    denominator = (w * expected).sum()
    if denominator == 0:
        return 1.0
    return float(1.0 - (w * confusion).sum() / denominator)


# --- rankings and preferences -------------------------------------------------------------------------


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between two paired score lists, with the tie correction.

    τ-b = (C − D) / sqrt((n0 − n1)(n0 − n2)), n1 and n2 the tied pairs within x and within y
    (Kendall 1945). Raises ValueError when either list is constant (τ-b is undefined there).
    """
    import numpy as np

    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xs)
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(xs[i] - xs[j]), np.sign(ys[i] - ys[j])
    n0 = n * (n - 1) // 2
    ties_x, ties_y = int((dx == 0).sum()), int((dy == 0).sum())
    denominator = math.sqrt((n0 - ties_x) * (n0 - ties_y))
    if denominator == 0:
        raise ValueError("tau-b is undefined when a ranking ties everything")
    return float((dx * dy).sum() / denominator)


def preference_pairs(value: int, response_ids: Sequence[str]) -> dict[tuple[str, str], int]:
    """A preference answer as its one implied pair: −1 first better, +1 second better, 0 tie."""
    a, b = response_ids[0], response_ids[1]
    sign = (value > 0) - (value < 0)
    return {(a, b): sign} if a < b else {(b, a): -sign}


def ranking_pairs(groups: Sequence[Sequence[str]]) -> dict[tuple[str, str], int]:
    """Every pair a ranking implies, keyed (a, b) with a < b: −1 a better, +1 b better, 0 tied."""
    position = {rid: p for p, group in enumerate(groups) for rid in group}
    ids = sorted(position)
    pairs = {}
    for n, a in enumerate(ids):
        for b in ids[n + 1 :]:
            pa, pb = position[a], position[b]
            pairs[(a, b)] = (pb < pa) - (pa < pb)
    return pairs


def pairwise_preference_agreement(units: Iterable[Sequence[Mapping[tuple[str, str], int]]]) -> float:
    """Share of annotator pairs, on the same item and the same response pair, agreeing in direction.

    ``units`` holds, per item, one mapping per annotator from a response pair to a direction (see
    ``preference_pairs`` and ``ranking_pairs``). A tie agrees only with a tie. This is the
    "inter-annotator agreement" InstructGPT reports (72.6 % among its labelers).
    """
    agree = total = 0
    for annotators in units:
        by_pair: dict[tuple[str, str], list[int]] = {}
        for judgement in annotators:
            for pair, direction in judgement.items():
                by_pair.setdefault(pair, []).append(direction)
        for directions in by_pair.values():
            # Plain integer counting: a million items with two or three judgements each is far quicker
            # this way than through an array per pair.
            m = len(directions)
            if m < 2:
                continue
            total += m * (m - 1) // 2
            if m == 2:
                agree += directions[0] == directions[1]
            else:
                agree += sum(c * (c - 1) // 2 for c in Counter(directions).values())
    if total == 0:
        raise ValueError("no response pair was judged by two annotators")
    return float(agree / total)


def pairwise_sign_agreement(units: Iterable[Sequence[float]]) -> float:
    """``pairwise_preference_agreement`` where every judgement on one item orders the same pair of
    responses (a preference between its two): per item, the values whose signs give the direction.
    The same figure, read from each item's counts of signs (a tie agrees only with a tie)."""
    agree = total = 0
    for values in units:
        m = len(values)
        if m < 2:
            continue
        total += m * (m - 1) // 2
        if m == 2:
            a, b = values
            agree += ((a > 0) - (a < 0)) == ((b > 0) - (b < 0))
        else:
            below = above = 0
            for v in values:
                if v < 0:
                    below += 1
                elif v > 0:
                    above += 1
            ties = m - below - above
            agree += (below * (below - 1) + above * (above - 1) + ties * (ties - 1)) // 2
    if total == 0:
        raise ValueError("no response pair was judged by two annotators")
    return float(agree / total)
