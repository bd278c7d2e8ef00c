"""Agreement statistics on plain data. No ORM: callers pass lists and dicts."""

from __future__ import annotations

import math
from collections.abc import Sequence


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between two paired score lists, with the tie correction.

    τ-b = (C − D) / sqrt((n0 − n1)(n0 − n2)), n1 and n2 the tied pairs within x and within y
    (Kendall 1945). Raises ValueError when either list is constant (τ-b is undefined there).
    """
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    n = len(x)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            if dx == 0 and dy == 0:
                ties_x += 1
                ties_y += 1
            elif dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    n0 = n * (n - 1) // 2
    denominator = math.sqrt((n0 - ties_x) * (n0 - ties_y))
    if denominator == 0:
        raise ValueError("tau-b is undefined when a ranking ties everything")
    return (concordant - discordant) / denominator
