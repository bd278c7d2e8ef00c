"""Predictive validity of the interview: does ability at hiring rank trainers as their later work does?

Spearman's rank correlation, because the two scales (θ and a quality score) need not be linearly
related, only in the same order. Plain data only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Validity:
    n: int
    rho: float  # Spearman's rank correlation
    low: float  # its confidence interval
    high: float
    confidence: float


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    import numpy as np

    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


MIN_N = 4  # fewer pairs than this give no interval worth reading


def predictive_validity(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> Validity | None:
    """Spearman's rho between interview ability and later on-the-job quality, with a Fisher-z confidence
    interval whose standard error is sqrt(1.06 / (n - 3)) (Fieller, Hartley and Pearson's correction
    for Spearman's rho). Ties take mid-ranks (rho is then the Pearson correlation of the ranks). At
    rho = ±1 the interval is the point itself (no width to report, read it with n). None when n < 4 or either side is constant: there is nothing to correlate."""
    import numpy as np

    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    data = np.asarray(pairs, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(data)):
        raise ValueError("abilities and quality scores must be finite numbers")
    n = len(data)
    if n < MIN_N:
        return None
    x, y = _ranks(data[:, 0]), _ranks(data[:, 1])
    x -= x.mean()
    y -= y.mean()
    spread = math.sqrt(float(x @ x) * float(y @ y))
    if spread == 0.0:
        return None
    rho = max(-1.0, min(1.0, float(x @ y) / spread))
    if abs(rho) == 1.0:  # Fisher's z is infinite: the interval collapses onto rho
        return Validity(n=n, rho=rho, low=rho, high=rho, confidence=confidence)
    z = math.atanh(rho)
    half = NormalDist().inv_cdf(0.5 + confidence / 2.0) * math.sqrt(1.06 / (n - 3))
    return Validity(n=n, rho=rho, low=math.tanh(z - half), high=math.tanh(z + half), confidence=confidence)
