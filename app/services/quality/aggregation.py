"""From many answers per item to one: majority vote, Dawid–Skene, Bradley–Terry, means.

Pure functions on plain data; NumPy does the heavy lifting.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def majority_vote(labels_by_item: dict[Hashable, Sequence[Hashable]]) -> dict[Hashable, tuple[Hashable, float]]:
    """item -> (most frequent label, its share). Ties go to the label sorted first, deterministically."""
    result = {}
    for item, labels in labels_by_item.items():
        if not labels:
            continue
        counts = Counter(labels)
        best = max(counts.values())
        winner = sorted((label for label, n in counts.items() if n == best), key=lambda v: (type(v).__name__, v))[0]
        result[item] = (winner, best / len(labels))
    return result


def mean_ratings(ratings_by_item: dict[Hashable, Sequence[float]]) -> dict[Hashable, float]:
    import numpy as np

    return {item: float(np.mean(values)) for item, values in ratings_by_item.items() if len(values)}


@dataclass
class DawidSkeneResult:
    labels: list  # the label set, in column order
    consensus: dict  # item -> (label, posterior probability)
    posteriors: dict  # item -> array over labels
    confusion: dict  # worker -> matrix[true label, given label]
    reliability: dict  # worker -> probability the worker's label is right, under the class priors
    priors: np.ndarray
    iterations: int


def dawid_skene(
    annotations: Iterable[tuple[Hashable, Hashable, Hashable]], max_iterations: int = 100, tolerance: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Dawid & Skene (1979) EM over (item, worker, label) triples.

    Starts from majority-vote posteriors; each M-step estimates class priors and one confusion
    matrix per worker (with a little additive smoothing), each E-step the item posteriors. A
    worker's reliability is the chance their label equals the true one: Σ_k π_k θ_w[k, k].
    """
    import numpy as np

    triples = list(annotations)
    if not triples:
        raise ValueError("no annotations")
    items = sorted({t[0] for t in triples}, key=_key)
    workers = sorted({t[1] for t in triples}, key=_key)
    labels = sorted({t[2] for t in triples}, key=_key)
    item_ix = {v: i for i, v in enumerate(items)}
    worker_ix = {v: i for i, v in enumerate(workers)}
    label_ix = {v: i for i, v in enumerate(labels)}
    it = np.fromiter((item_ix[t[0]] for t in triples), dtype=np.int64, count=len(triples))
    wk = np.fromiter((worker_ix[t[1]] for t in triples), dtype=np.int64, count=len(triples))
    lb = np.fromiter((label_ix[t[2]] for t in triples), dtype=np.int64, count=len(triples))
    n_items, n_workers, k = len(items), len(workers), len(labels)

    posterior = np.zeros((n_items, k))
    np.add.at(posterior, (it, lb), 1.0)
    posterior /= posterior.sum(axis=1, keepdims=True)

    previous = None
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        # M-step
        priors = posterior.mean(axis=0)
        confusion = np.full((n_workers, k, k), smoothing)
        # confusion[w, true, given] += posterior[item, true] for each annotation
        np.add.at(confusion, (wk, slice(None), lb), posterior[it])
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step, in logs
        log_post = np.tile(np.log(np.maximum(priors, 1e-300)), (n_items, 1))
        np.add.at(log_post, it, np.log(confusion[wk, :, lb]))
        log_post -= log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post)
        posterior /= posterior.sum(axis=1, keepdims=True)
        if previous is not None and np.abs(posterior - previous).max() < tolerance:
            break
        previous = posterior

    best = posterior.argmax(axis=1)
    reliability = (confusion[:, np.arange(k), np.arange(k)] * priors).sum(axis=1)
    return DawidSkeneResult(
        labels=labels,
        consensus={items[i]: (labels[best[i]], float(posterior[i, best[i]])) for i in range(n_items)},
        posteriors={items[i]: posterior[i] for i in range(n_items)},
        confusion={workers[w]: confusion[w] for w in range(n_workers)},
        reliability={workers[w]: float(reliability[w]) for w in range(n_workers)},
        priors=priors,
        iterations=iterations,
    )


def bradley_terry(
    comparisons: Iterable[tuple[Hashable, Hashable, float]], iterations: int = 200, tolerance: float = 1e-9
) -> dict[Hashable, float]:
    """Bradley–Terry strengths from (winner, loser, weight) comparisons by Hunter's (2004) MM updates.

    A tie is passed as two half-weight comparisons, one each way. Strengths are normalised to sum
    to 1; a response that never won gets a small positive floor, so every score is defined.
    """
    import numpy as np

    wins: defaultdict = defaultdict(float)
    games: defaultdict = defaultdict(float)
    players: set = set()
    for winner, loser, weight in comparisons:
        if winner == loser:
            continue
        wins[winner] += weight
        pair = (winner, loser) if _key(winner) < _key(loser) else (loser, winner)
        games[pair] += weight
        players.update((winner, loser))
    if not players:
        return {}
    names = sorted(players, key=_key)
    index = {p: i for i, p in enumerate(names)}
    w = np.array([wins[p] for p in names]) + 1e-3  # the floor: keeps never-winners finite
    pairs = np.array([(index[a], index[b]) for a, b in games], dtype=np.int64).reshape(-1, 2)
    counts = np.array(list(games.values()))
    p = np.full(len(names), 1.0 / len(names))
    for _ in range(iterations):
        inverse = counts / (p[pairs[:, 0]] + p[pairs[:, 1]])
        denominator = np.zeros(len(names))
        np.add.at(denominator, pairs[:, 0], inverse)
        np.add.at(denominator, pairs[:, 1], inverse)
        updated = w / denominator
        updated /= updated.sum()
        if np.abs(updated - p).max() < tolerance:
            p = updated
            break
        p = updated
    return {name: float(p[i]) for i, name in enumerate(names)}


def comparisons_from_pairs(pairs: dict[tuple[str, str], int]) -> list[tuple[str, str, float]]:
    """Implied pairs (see agreement.ranking_pairs) -> Bradley–Terry comparisons; ties split in half."""
    result = []
    for (a, b), direction in pairs.items():
        if direction < 0:
            result.append((a, b, 1.0))
        elif direction > 0:
            result.append((b, a, 1.0))
        else:
            result.extend([(a, b, 0.5), (b, a, 0.5)])
    return result


def _key(value):
    return (type(value).__name__, value)
