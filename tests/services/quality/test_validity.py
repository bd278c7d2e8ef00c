"""Predictive validity: Spearman's rho and its interval, on synthetic trainers with a known relation."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from app.services.quality.validity import Validity, predictive_validity


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def trainers(rng, n, noise=0.15):
    theta = rng.normal(0, 1, n)
    return theta, sigmoid(theta) + rng.normal(0, noise, n)


def population_rho() -> float:
    theta, quality = trainers(np.random.default_rng(0), 400_000)
    return float(spearmanr(theta, quality).statistic)


def test_rho_is_close_to_the_truth_and_the_interval_holds_it():
    truth = population_rho()
    theta, quality = trainers(np.random.default_rng(1), 200)
    v = predictive_validity(list(zip(theta, quality, strict=True)))
    assert v.n == 200 and v.confidence == 0.95
    assert abs(v.rho - truth) < 0.08
    assert v.low < truth < v.high
    assert v.low < v.rho < v.high


def test_the_interval_covers_the_population_value_about_as_often_as_it_says():
    truth = population_rho()
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        theta, quality = trainers(rng, 40)
        v = predictive_validity(list(zip(theta, quality, strict=True)))
        covered += v.low <= truth <= v.high
    assert 0.91 <= covered / 400 <= 0.99


def test_independent_data_give_an_interval_around_zero():
    rng = np.random.default_rng(3)
    v = predictive_validity(list(zip(rng.normal(size=150), rng.normal(size=150), strict=True)))
    assert v.low < 0 < v.high


def test_interval_is_fisher_z_with_the_spearman_correction():
    rng = np.random.default_rng(4)
    theta, quality = trainers(rng, 30, noise=0.3)
    v = predictive_validity(list(zip(theta, quality, strict=True)), confidence=0.9)
    half = 1.6448536 * math.sqrt(1.06 / 27)
    assert v.low == pytest.approx(math.tanh(math.atanh(v.rho) - half))
    assert v.high == pytest.approx(math.tanh(math.atanh(v.rho) + half))
    wider = predictive_validity(list(zip(theta, quality, strict=True)), confidence=0.99)
    assert wider.low < v.low and wider.high > v.high


def test_ties_take_mid_ranks_like_scipy():
    rng = np.random.default_rng(5)
    theta = np.round(rng.normal(0, 1, 120), 1)
    quality = np.round(sigmoid(theta) + rng.normal(0, 0.2, 120), 1)  # many ties on both sides
    v = predictive_validity(list(zip(theta, quality, strict=True)))
    assert v.rho == pytest.approx(spearmanr(theta, quality).statistic, abs=1e-12)
    assert predictive_validity([(1, 1), (1, 2), (2, 2), (3, 3)]).rho == pytest.approx(
        spearmanr([1, 1, 2, 3], [1, 2, 2, 3]).statistic
    )


def test_perfect_order_gives_one_and_a_point_interval():
    assert predictive_validity([(x, x**3) for x in range(10)]) == Validity(10, 1.0, 1.0, 1.0, 0.95)
    assert predictive_validity([(x, -x) for x in range(10)]).rho == -1.0


def test_too_few_or_constant_is_none():
    assert predictive_validity([]) is None
    assert predictive_validity([(0.1, 0.5), (0.2, 0.6), (0.3, 0.9)]) is None
    assert predictive_validity([(0.1, 0.5), (0.2, 0.5), (0.3, 0.5), (0.4, 0.5)]) is None
    assert predictive_validity([(1.0, 0.5), (1.0, 0.6), (1.0, 0.7), (1.0, 0.1)]) is None
    assert isinstance(predictive_validity([(0.1, 0.5), (0.2, 0.6), (0.3, 0.9), (0.4, 0.7)]), Validity)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        predictive_validity([(0.1, 0.5)] * 5, confidence=1.0)
    with pytest.raises(ValueError):
        predictive_validity([(0.1, math.nan)] * 5)
