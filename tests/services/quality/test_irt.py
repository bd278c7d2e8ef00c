"""IRT for adaptive interviews, on simulated candidates of known ability and items of known parameters."""

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from app.services.quality.irt import (
    LEVELS,
    THETA_BOUNDS,
    Estimate,
    calibrate,
    estimate,
    final_estimate,
    information,
    next_item,
    percentile,
    stop_reason,
)


def p_correct(a: float, b: float, theta: float) -> float:
    return 1.0 / (1.0 + math.exp(-a * (theta - b)))


def make_bank(rng: np.random.Generator, n: int = 200) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in zip(np.exp(rng.normal(0, 0.25, n)), rng.normal(0, 1, n), strict=True)]


def answers(rng: np.random.Generator, params, theta: float) -> list[bool]:
    return [bool(rng.random() < p_correct(a, b, theta)) for a, b in params]


def test_the_module_imports_neither_catsim_nor_girth():
    code = "import sys, app.services.quality.irt; sys.exit(any(m in sys.modules for m in ('catsim', 'girth', 'scipy')))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- estimate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [-1.5, 0.0, 1.2])
def test_estimate_recovers_a_known_ability(theta):
    rng = np.random.default_rng(3)
    bank = make_bank(rng)
    est = estimate(bank, answers(rng, bank, theta))
    assert est.se < 0.25
    assert abs(est.theta - theta) < 3 * est.se


def test_estimates_track_true_abilities_across_candidates():
    rng = np.random.default_rng(4)
    bank = make_bank(rng, 60)
    truth = rng.normal(0, 1, 300)
    found = [estimate(bank, answers(rng, bank, t), bank=bank).theta for t in truth]
    assert np.corrcoef(truth, found)[0, 1] > 0.9
    assert abs(np.mean(found) - np.mean(truth)) < 0.1


def test_se_shrinks_as_items_are_answered():
    rng = np.random.default_rng(5)
    params = [(1.0, float(b)) for b in rng.normal(0, 0.5, 80)]
    correct = answers(rng, params, 0.0)
    ses = [estimate(params[:k], correct[:k]).se for k in (5, 10, 20, 40, 80)]
    assert ses == sorted(ses, reverse=True)
    assert ses[-1] < 0.25 < ses[0]


def test_se_is_one_over_root_test_information():
    params, correct = [(1.0, -0.5), (1.5, 0.0), (0.8, 0.7)], [True, False, True]
    est = estimate(params, correct)
    assert est.se == pytest.approx(1 / math.sqrt(sum(information(a, b, est.theta) for a, b in params)))


def test_no_items_is_the_mean_with_infinite_error():
    assert estimate([], []) == Estimate(0.0, math.inf)


def test_estimate_needs_one_outcome_per_item():
    with pytest.raises(ValueError):
        estimate([(1.0, 0.0)], [])
    with pytest.raises(ValueError):
        estimate([(0.0, 0.0)], [True])


def test_all_right_or_all_wrong_follow_dodd_towards_the_bank_ends():
    bank = [(1.0, LEVELS["easy"]), (1.0, LEVELS["medium"]), (1.0, LEVELS["hard"])]
    up = [estimate([(1.0, 0.0)] * k, [True] * k, bank=bank).theta for k in (1, 2, 3)]
    down = [estimate([(1.0, 0.0)] * k, [False] * k, bank=bank).theta for k in (1, 2, 3)]
    assert up == [0.5, 0.75, 0.875]  # halfway to the hardest item each time, from 0
    assert down == [-0.5, -0.75, -0.875]
    easy_bank = [(1.0, -2.0), (1.0, -1.0)]
    assert estimate([(1.0, -1.0)], [True], bank=easy_bank).theta == 0.0  # never down after a right answer
    assert estimate([(1.0, -1.0)], [False], bank=easy_bank).theta == -1.0
    assert estimate(np.array([(1.0, 0.0)]), np.array([True]), bank=np.array(bank)).theta == 0.5
    unbounded = [estimate([(1.0, 0.0)] * k, [True] * k).theta for k in (1, 2, 20)]
    assert unbounded[:2] == [2.0, 3.0] and THETA_BOUNDS[0] <= unbounded[2] <= THETA_BOUNDS[1]


def test_estimate_is_clamped_to_the_bounds():
    easy = [(1.0, -3.5)] * 40
    est = estimate(easy, [True] * 39 + [False])
    assert est.theta <= THETA_BOUNDS[1]
    assert estimate(easy, [False] * 39 + [True]).theta >= THETA_BOUNDS[0]


# --- next_item ----------------------------------------------------------------------------------------


def test_next_item_never_repeats_and_ends_with_none():
    rng = np.random.default_rng(6)
    bank = make_bank(rng, 30)
    administered, correct = [], []
    theta = 0.0
    while (item := next_item(bank, administered, theta, rng)) is not None:
        assert item not in administered
        administered.append(item)
        correct.append(bool(rng.random() < 0.5))
        theta = estimate([bank[i] for i in administered], correct, bank=bank).theta
    assert sorted(administered) == list(range(30))


@pytest.mark.parametrize("bin_size", [1, 3, 5])
def test_next_item_draws_among_the_bin_size_most_informative(bin_size):
    rng = np.random.default_rng(7)
    bank = make_bank(rng, 50)
    administered = [int(i) for i in rng.choice(50, size=10, replace=False)]
    for theta in (-1.0, 0.0, 0.8):
        left = sorted((i for i in range(50) if i not in administered), key=lambda i: -information(*bank[i], theta))
        chosen = {next_item(bank, administered, theta, rng, bin_size) for _ in range(200)}
        assert chosen == set(left[:bin_size])


def test_first_items_vary_so_no_item_goes_to_everyone():
    rng = np.random.default_rng(8)
    bank = make_bank(rng)
    firsts = [next_item(bank, [], 0.0, rng) for _ in range(200)]
    assert max(firsts.count(i) for i in set(firsts)) < 0.5 * len(firsts)
    assert len(set(firsts)) == 5


def test_items_of_equal_information_share_the_first_draws():
    """A freshly seeded bank has many items at one level; all of them get to go first, not just the five
    catsim would rank first."""
    bank = [(1.0, LEVELS[level]) for level in ("easy", "medium", "hard") for _ in range(20)]
    rng = random.Random(9)
    firsts = {next_item(bank, [], 0.0, rng) for _ in range(400)}
    assert firsts == set(range(20, 40))


def test_next_item_accepts_every_kind_of_rng_and_a_seed_repeats():
    bank = make_bank(np.random.default_rng(10), 40)
    for rng in (None, 11, random.Random(11), np.random.default_rng(11)):
        assert next_item(bank, [0, 1], 0.3, rng) in range(2, 40)
    assert [next_item(bank, [], 0.0, seed) for seed in range(20)] == [next_item(bank, [], 0.0, s) for s in range(20)]


def test_next_item_rejects_bad_input():
    with pytest.raises(ValueError):
        next_item([(1.0, 0.0)], [3], 0.0, 1)
    with pytest.raises(ValueError):
        next_item([(1.0, 0.0)], [], 0.0, 1, bin_size=0)
    assert next_item([], [], 0.0, 1) is None


# --- stop_reason --------------------------------------------------------------------------------------


def test_each_stop_reason():
    bank = [(1.0, 0.0)] * 10
    rule = {"se_target": 0.3, "min_items": 5, "max_items": 8}
    assert stop_reason(bank, [0, 1, 2, 3, 4], Estimate(0.1, 0.3), **rule) == "precision"
    assert stop_reason(bank, [0, 1, 2, 3], Estimate(0.1, 0.2), **rule) is None  # precise, but too few
    assert stop_reason(bank, [0, 1, 2, 3, 4], Estimate(0.1, 0.31), **rule) is None
    assert stop_reason(bank, list(range(8)), Estimate(0.1, 0.5), **rule) == "length"
    assert stop_reason(bank[:3], [0, 1, 2], Estimate(0.1, 0.9), **rule) == "bank"
    assert stop_reason(bank, [], Estimate(0.0, math.inf), **rule) is None
    assert stop_reason(bank, list(range(8)), Estimate(0.1, 0.25), **rule) == "precision"  # the better reason


# --- percentile and information -----------------------------------------------------------------------


def test_percentile_is_the_normal_cdf():
    assert percentile(0.0) == 0.5
    assert percentile(1.959964) == pytest.approx(0.975, abs=1e-6)
    assert percentile(-1.0) == pytest.approx(1 - percentile(1.0))
    assert percentile(math.inf) == 1.0 and percentile(-math.inf) == 0.0
    assert percentile(-40.0) >= 0.0
    with pytest.raises(ValueError):
        percentile(math.nan)


def test_information_peaks_at_the_difficulty():
    assert information(1.0, 0.5, 0.5) == pytest.approx(0.25)
    assert information(2.0, 0.0, 0.0) == pytest.approx(1.0)
    assert information(1.0, 0.0, 1.0) == pytest.approx(information(1.0, 0.0, -1.0))
    assert information(1.0, 0.0, 1.0) < information(1.0, 0.0, 0.2)
    assert information(4.0, 4.0, -4.0) >= 0.0 and information(4.0, -4.0, 4.0) >= 0.0
    from catsim.irt import inf

    assert information(1.3, -0.4, 0.9) == pytest.approx(inf(0.9, 1.3, -0.4))


# --- a whole interview ----------------------------------------------------------------------------------


def test_an_adaptive_interview_measures_candidates_in_few_items():
    rng = np.random.default_rng(12)
    bank = make_bank(rng)
    truth, found, lengths = rng.normal(0, 1, 60), [], []
    for theta in truth:
        administered, correct, est = [], [], estimate([], [])
        while not stop_reason(bank, administered, est, se_target=0.4, min_items=5, max_items=30):
            administered.append(next_item(bank, administered, est.theta, rng))
            correct.append(bool(rng.random() < p_correct(*bank[administered[-1]], theta)))
            est = estimate([bank[i] for i in administered], correct, bank=bank)
        found.append(est.theta)
        lengths.append(len(administered))
    assert np.corrcoef(truth, found)[0, 1] > 0.85
    assert np.mean(lengths) < 30


# --- calibrate ------------------------------------------------------------------------------------------


def simulated_answers(rng, n_items=60, n_people=600, share=0.4):
    a = np.exp(rng.normal(0, 0.25, n_items))
    b = rng.normal(0, 1, n_items)
    theta = rng.normal(0, 1, n_people)
    seen = rng.random((n_items, n_people)) < share
    right = rng.random((n_items, n_people)) < 1 / (1 + np.exp(-a[:, None] * (theta[None, :] - b[:, None])))
    responses = [(int(i), int(p), bool(right[i, p])) for i, p in zip(*np.nonzero(seen), strict=True)]
    return a, b, responses


@pytest.mark.parametrize("two_parameter", [False, True])
def test_calibration_recovers_known_difficulties(two_parameter):
    """Acceptance: 60 items, 600 people, each seeing a random 40 % of the items."""
    a, b, responses = simulated_answers(np.random.default_rng(13))
    fitted = calibrate(responses, 60, 600, two_parameter=two_parameter)
    found_a = np.array([p[0] for p in fitted])
    found_b = np.array([p[1] for p in fitted])
    assert np.corrcoef(b, found_b)[0, 1] >= 0.9
    assert np.sqrt(np.mean((found_b - b) ** 2)) < 0.4
    assert np.all((found_a >= 0.2) & (found_a <= 4.0))
    if two_parameter:
        assert np.corrcoef(a, found_a)[0, 1] > 0.3
    else:
        assert set(found_a) == {1.0}


@pytest.mark.slow  # seconds of work by design
def test_calibration_survives_adaptive_administration():
    """Interviews give hard items to strong candidates. Calibrating from such answers must still find
    the difficulties; girth's MML (difficulty from each item's share of right answers over the whole
    population) gets them backwards here, which is why calibrate uses JML. (The 2PL fit is weaker on
    such answers, r ≈ 0.8 here: each item is answered over a narrow band of abilities, where a and b
    trade off.)"""
    from girth import INVALID_RESPONSE, rasch_mml

    rng = np.random.default_rng(16)
    n_items, n_people = 80, 800
    b = rng.normal(0, 1, n_items)
    theta = rng.normal(0, 1, n_people)
    responses = []
    for person, t in enumerate(theta):  # the 20 items nearest a noisy ability, as an interview would pick
        for item in np.argsort(np.abs(b - (t + rng.normal(0, 0.3))))[:20]:
            responses.append((int(item), person, bool(rng.random() < p_correct(1.0, b[item], t))))
    answered = np.bincount([i for i, _, _ in responses], minlength=n_items)
    well = answered >= 50
    found = np.array([p[1] for p in calibrate(responses, n_items, n_people)])
    assert np.corrcoef(b[well], found[well])[0, 1] >= 0.9
    assert np.sqrt(np.mean((found[well] - b[well]) ** 2)) < 0.3

    data = np.full((n_items, n_people), INVALID_RESPONSE)
    for item, person, right in responses:
        data[item, person] = int(right)
    mml = rasch_mml(data[well])["Difficulty"]
    assert np.corrcoef(b[well], mml)[0, 1] < 0.5


def test_calibration_handles_empty_and_degenerate_items():
    _, b, responses = simulated_answers(np.random.default_rng(14), n_items=20, n_people=300, share=0.5)
    responses += [(20, p, True) for p in range(40)] + [(21, p, False) for p in range(40)] + [(22, 0, True)]
    for two_parameter in (False, True):
        fitted = calibrate(responses, 24, 300, two_parameter=two_parameter)
        assert fitted[23] is None
        ordinary = [p[1] for p in fitted[:20]]
        assert fitted[20][1] < min(ordinary) and fitted[21][1] > max(ordinary)
        assert fitted[22][1] < 0  # one right answer: easy, but only a little sure of it
        for a, b_ in fitted[:23]:
            assert isinstance(a, float) and isinstance(b_, float)
            assert 0.2 <= a <= 4.0 and THETA_BOUNDS[0] <= b_ <= THETA_BOUNDS[1]


def test_calibration_of_nothing_and_of_bad_indices():
    assert calibrate([], 3, 5) == [None, None, None]
    assert calibrate([(0, 0, True)], 1, 1)[0][1] < 0
    with pytest.raises(ValueError):
        calibrate([(3, 0, True)], 3, 5)
    with pytest.raises(ValueError):
        calibrate([(0, 5, True)], 3, 5)


def test_calibrated_items_feed_the_interview():
    _, _, responses = simulated_answers(np.random.default_rng(15), n_items=30, n_people=200)
    bank = calibrate(responses, 30, 200)
    item = next_item(bank, [], 0.0, 1)
    assert estimate([bank[item]], [True], bank=bank).theta > 0


def test_final_estimate_ranks_more_right_answers_higher_on_the_same_items():
    items = [(1.0, -1.0), (1.0, 0.0), (1.0, 1.0), (1.0, 1.0)]
    patterns = [[False] * 4, [True, False, False, False], [True, True, False, False], [True, True, True, False],
                [True] * 4]
    thetas = [final_estimate(items, p).theta for p in patterns]
    assert thetas == sorted(thetas) and len(set(thetas)) == 5
    assert all(THETA_BOUNDS[0] < t < THETA_BOUNDS[1] for t in thetas)


def test_final_estimate_recovers_ability_and_its_uncertainty_shrinks():
    rng = random.Random(4)
    bank = [(1.0, rng.gauss(0, 1)) for _ in range(60)]
    for truth in (-1.5, 0.0, 1.2):
        answers = [rng.random() < 1 / (1 + math.exp(-(truth - b))) for _a, b in bank]
        few, many = final_estimate(bank[:10], answers[:10]), final_estimate(bank, answers)
        assert abs(many.theta - truth) < 3 * many.se  # EAP leans a little towards the mean, by design
        assert many.se < few.se < 1.0
    assert final_estimate([], []) == Estimate(0.0, 1.0)
