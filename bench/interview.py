"""Adaptive interviews against fixed tests: 1,000 simulated candidates of known ability on a 200-item
bank of known 2PL parameters, through the interview functions of app/services/quality/irt.py.

    .venv/bin/python -m bench.interview [--candidates 1000] [--bank 200] [--seed 1]

The goal (from the issue): the adaptive interview reaches the fixed test's precision with at most half
its items. The comparison: find the shortest fixed test of random items whose RMSE of ability is no
worse than the interview's, and check that the interview's mean length is at most half of it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter

import numpy as np

from app.services.quality import irt

SE_TARGET, MIN_ITEMS, MAX_ITEMS, BIN_SIZE = 0.3, 5, 40, 5
FIXED_LENGTH = 40


def answer(rng: np.random.Generator, a: float, b: float, theta: float) -> bool:
    return bool(rng.random() < 1.0 / (1.0 + np.exp(-a * (theta - b))))


def interview(bank: list[tuple[float, float]], theta: float, rng: np.random.Generator):
    """One adaptive interview; returns (estimate, items administered, their outcomes, stop reason)."""
    administered: list[int] = []
    correct: list[bool] = []
    est = irt.estimate([], [])
    while True:
        reason = irt.stop_reason(bank, administered, est, se_target=SE_TARGET, min_items=MIN_ITEMS,
                                 max_items=MAX_ITEMS)
        if reason:
            return est, administered, correct, reason
        item = irt.next_item(bank, administered, est.theta, rng, BIN_SIZE)
        administered.append(item)
        correct.append(answer(rng, *bank[item], theta))
        est = irt.estimate([bank[i] for i in administered], correct, bank=bank)


def fixed_test(bank: list[tuple[float, float]], thetas: np.ndarray, order: np.ndarray, draws: np.ndarray,
               length: int):
    """Every candidate answers the first `length` items of their own random order of the bank; the
    answers are fixed in advance (draws), so tests of different lengths are nested and their RMSEs
    differ by the extra items, not by fresh luck. Returns (estimates, exposure counts)."""
    estimates, seen = [], Counter()
    for person, theta in enumerate(thetas):
        items = [int(i) for i in order[person, :length]]
        seen.update(items)
        params = [bank[i] for i in items]
        correct = [bool(draws[person, i] < 1.0 / (1.0 + np.exp(-a * (theta - b)))) for i, (a, b) in zip(items, params, strict=True)]
        estimates.append(irt.estimate(params, correct, bank=bank).theta)
    return np.array(estimates), seen


def rmse(truth: np.ndarray, estimates: np.ndarray) -> float:
    return float(np.sqrt(np.mean((estimates - truth) ** 2)))


def report(label: str, truth: np.ndarray, estimates: np.ndarray, mean_items: float, seen: Counter) -> float:
    error = rmse(truth, estimates)
    print(f"{label:<34} mean items {mean_items:5.1f}   RMSE {error:.3f}   r {np.corrcoef(truth, estimates)[0, 1]:.3f}"
          f"   max exposure {max(seen.values()) / len(truth):.3f}")
    return error


def main() -> None:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--bank", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"# bench/interview.py — {time.strftime('%Y-%m-%d')} — Python {platform.python_version()}, "
          f"NumPy {np.__version__}, catsim {version('catsim')}, {os.cpu_count()} cores")
    rng = np.random.default_rng(args.seed)
    bank = [(float(a), float(b)) for a, b in zip(np.exp(rng.normal(0.0, 0.25, args.bank)),
                                                  rng.normal(0.0, 1.0, args.bank), strict=True)]
    truth = rng.normal(0.0, 1.0, args.candidates)
    print(f"{args.candidates:,} candidates θ ~ N(0, 1); {args.bank} items, a ~ lognormal(0, 0.25), b ~ N(0, 1); "
          f"interview: SE ≤ {SE_TARGET}, {MIN_ITEMS}–{MAX_ITEMS} items, randomesque bin {BIN_SIZE}")

    started = time.perf_counter()
    estimates, lengths, reasons, seen, responses = [], [], Counter(), Counter(), []
    scored = []  # the ability the app scores an interview by: EAP over every answer
    for person, theta in enumerate(truth):
        est, administered, correct, reason = interview(bank, float(theta), rng)
        scored.append(irt.final_estimate([bank[i] for i in administered], correct).theta)
        responses += [(item, person, right) for item, right in zip(administered, correct, strict=True)]
        estimates.append(est.theta)
        lengths.append(len(administered))
        reasons[reason] += 1
        seen.update(administered)
    seconds = time.perf_counter() - started
    adaptive_items = float(np.mean(lengths))
    print(f"interviews: {seconds:.1f} s, {seconds / sum(lengths) * 1000:.2f} ms per answer "
          f"(estimate + next item + stop check); stop reasons {dict(reasons)}")
    adaptive_rmse = report("adaptive interview", truth, np.array(estimates), adaptive_items, seen)

    fixed_rng = np.random.default_rng([args.seed, 1])
    order = np.argsort(fixed_rng.random((args.candidates, args.bank)), axis=1)
    draws = fixed_rng.random((args.candidates, args.bank))
    curve: dict[int, float] = {}

    def fixed(length: int, label: str | None = None) -> float:
        if length not in curve or label:
            est, exposure = fixed_test(bank, truth, order, draws, length)
            curve[length] = rmse(truth, est)
            if label:
                report(label, truth, est, length, exposure)
        return curve[length]

    fixed(FIXED_LENGTH, f"fixed test, {FIXED_LENGTH} random items")
    same = round(adaptive_items)
    fixed(same, f"fixed test, {same} random items")

    # Scored as the app scores an interview (EAP, standard normal prior), both ways.
    eap_fixed = []
    for person, theta in enumerate(truth):
        items = [int(i) for i in order[person, :FIXED_LENGTH]]
        correct = [bool(draws[person, i] < 1.0 / (1.0 + np.exp(-bank[i][0] * (theta - bank[i][1])))) for i in items]
        eap_fixed.append(irt.final_estimate([bank[i] for i in items], correct).theta)
    print(f"scored by EAP as the app does: interview RMSE {rmse(truth, np.array(scored)):.3f} "
          f"(r {np.corrcoef(truth, scored)[0, 1]:.3f}) in {adaptive_items:.1f} items; fixed {FIXED_LENGTH} items "
          f"RMSE {rmse(truth, np.array(eap_fixed)):.3f} (r {np.corrcoef(truth, eap_fixed)[0, 1]:.3f})")

    # The shortest fixed test as precise as the interview: double until it is, then bisect.
    low, high = 1, None
    for length in (5, 10, 20, 40, 80, 160, args.bank):
        if length > args.bank:
            break
        if fixed(length) <= adaptive_rmse:
            high = length
            break
        low = length
    if high is None:
        print(f"no fixed test up to the whole bank ({args.bank} items) reaches the interview's RMSE {adaptive_rmse:.3f}")
        matched = args.bank * 2  # the interview beats every fixed test
    else:
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fixed(middle) <= adaptive_rmse else (middle, high)
        matched = high
        print("fixed-test RMSE by length: " + ", ".join(f"{n}: {curve[n]:.3f}" for n in sorted(curve)))
        print(f"shortest fixed test with RMSE ≤ the interview's {adaptive_rmse:.3f}: {matched} items "
              f"(RMSE {curve[matched]:.3f}); half of it: {matched / 2:.1f}")

    calibration(bank, responses, args.candidates)
    ok = adaptive_items <= matched / 2
    print(f"{'PASS' if ok else 'FAIL'}: the adaptive interview uses {adaptive_items:.2f} items on average "
          f"({adaptive_items / matched:.2f} of {matched}), {'at most' if ok else 'more than'} half of what a fixed "
          f"test needs for the same precision")


def calibration(bank: list[tuple[float, float]], responses: list[tuple[int, int, bool]], people: int) -> None:
    """Re-estimate the difficulties from the interviews' own answers (adaptive, so hard items went to
    strong candidates), for items with at least 50 answers; girth's MML beside it for contrast."""
    from girth import INVALID_RESPONSE, rasch_mml

    answered = np.bincount([i for i, _, _ in responses], minlength=len(bank))
    well = np.flatnonzero(answered >= 50)
    truth = np.array([b for _, b in bank])[well]
    with_ = time.perf_counter()
    ours = np.array([p[1] if p else np.nan for p in irt.calibrate(responses, len(bank), people)])[well]
    seconds = time.perf_counter() - with_
    data = np.full((len(bank), people), INVALID_RESPONSE)
    for item, person, right in responses:
        data[item, person] = int(right)
    mml = np.asarray(rasch_mml(data[well])["Difficulty"])
    print(f"calibration from the interviews' {len(responses):,} answers, {len(well)} items with ≥ 50 answers: "
          f"calibrate (rasch_jml) {seconds:.1f} s, r {np.corrcoef(truth, ours)[0, 1]:.3f}, RMSE of b {rmse(truth, ours):.3f}; "
          f"girth rasch_mml on the same answers: r {np.corrcoef(truth, mml)[0, 1]:.3f}, RMSE {rmse(truth, mml):.3f}")


if __name__ == "__main__":
    main()
