"""Quality maths at scale: Krippendorff's alpha on 1,000,000 annotations (200,000 units × 5 coders),
against the `krippendorff` package in the same run, and Dawid–Skene on 200,000 labels.

    .venv/bin/python -m bench.quality
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from app.services.quality.aggregation import dawid_skene
from app.services.quality.agreement import krippendorff_alpha
from bench.common import Timer


def best_of(runs: int, fn):
    times, value = [], None
    for _ in range(runs):
        with Timer() as t:
            value = fn()
        times.append(t.seconds)
    return min(times), value


def main() -> None:
    from importlib.metadata import version

    import krippendorff

    print(f"# bench/quality.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, "
          f"NumPy {np.__version__}, krippendorff {version('krippendorff')}, {os.cpu_count()} cores")
    rng = np.random.default_rng(1)
    units, coders = 200_000, 5
    truth = rng.integers(1, 6, size=units)
    data = np.where(rng.random((coders, units)) < 0.7, truth, rng.integers(1, 6, size=(coders, units))).astype(float)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        ours_s, ours = best_of(3, lambda level=level: krippendorff_alpha(data, level))
        theirs_s, theirs = best_of(3, lambda level=level: krippendorff.alpha(reliability_data=data, level_of_measurement=level))
        print(f"alpha {level:<8} 1,000,000 annotations: ours {ours_s:.3f} s, krippendorff {theirs_s:.3f} s "
              f"(ratio {ours_s / theirs_s:.2f}×), |difference| {abs(ours - theirs):.1e}")

    labels = ("a", "b", "c", "d")
    items, workers = 50_000, 40
    truth = rng.integers(0, len(labels), size=items)
    skill = rng.uniform(0.4, 0.95, size=workers)
    triples = []
    for item in range(items):
        for worker in rng.choice(workers, size=4, replace=False):
            right = rng.random() < skill[worker]
            triples.append((item, int(worker), labels[truth[item] if right else rng.integers(0, len(labels))]))
    seconds, result = best_of(1, lambda: dawid_skene(triples))
    accuracy = np.mean([result.consensus[i][0] == labels[truth[i]] for i in range(items)])
    print(f"Dawid–Skene {len(triples):,} labels ({items:,} items × 4, {workers} workers, {len(labels)} labels): "
          f"{seconds:.2f} s, {result.iterations} iterations, consensus accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
