"""Agreement statistics against published values, an independent implementation, and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.quality.agreement import (
    cohen_kappa,
    fleiss_kappa,
    kendall_tau_b,
    krippendorff_alpha,
    pairwise_preference_agreement,
    pairwise_sign_agreement,
    preference_pairs,
    ranking_pairs,
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", also on Wikipedia:
# 3 coders × 15 units, None = missing.
WIKI_ALPHA = [
    [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
    [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
    [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
]

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories.
WIKI_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_alpha_matches_published_nominal_and_interval_values():
    assert krippendorff_alpha(WIKI_ALPHA, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert krippendorff_alpha(WIKI_ALPHA, "interval") == pytest.approx(0.811, abs=5e-4)


def test_fleiss_kappa_matches_the_published_value():
    assert fleiss_kappa(WIKI_FLEISS) == pytest.approx(0.210, abs=5e-4)


def test_cohen_kappa_matches_scikit_learn_examples():
    # Artstein and Poesio (2008), Table 1, as in scikit-learn's tests.
    y1 = [0] * 40 + [1] * 60
    y2 = [0] * 20 + [1] * 20 + [0] * 10 + [1] * 50
    assert cohen_kappa(y1, y2) == pytest.approx(0.348, abs=5e-4)
    assert cohen_kappa(y1, y2) == cohen_kappa(y2, y1)
    assert cohen_kappa(y1, y1) == pytest.approx(1.0)
    # Table 4, three classes.
    y1 = [0] * 46 + [1] * 44 + [2] * 10
    y2 = [0] * 52 + [1] * 32 + [2] * 16
    assert cohen_kappa(y1, y2) == pytest.approx(0.8013, abs=5e-5)
    # Weighted forms.
    y2 = [0] * 50 + [1] * 40 + [2] * 10
    assert cohen_kappa(y1, y2) == pytest.approx(0.9315, abs=5e-5)
    assert cohen_kappa(y1, y2, weights="linear") == pytest.approx(0.9412, abs=5e-5)
    assert cohen_kappa(y1, y2, weights="quadratic") == pytest.approx(0.9541, abs=5e-5)


def random_reliability(seed, coders=5, units=10_000, values=5, missing=0.3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, values + 1, size=units)
    noisy = np.where(rng.random((coders, units)) < 0.6, truth, rng.integers(1, values + 1, size=(coders, units)))
    data = noisy.astype(float)
    data[rng.random((coders, units)) < missing] = np.nan
    return data


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_agrees_with_the_krippendorff_package_on_random_data(level):
    krippendorff = pytest.importorskip("krippendorff")
    data = random_reliability(seed=42)
    ours = krippendorff_alpha(data, level)
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-9)
    # The Python-list form (None for missing) gives the same figure.
    as_lists = [[None if np.isnan(v) else int(v) for v in row] for row in data[:, :500]]
    assert krippendorff_alpha(as_lists, level) == pytest.approx(
        krippendorff.alpha(reliability_data=data[:, :500], level_of_measurement=level), abs=1e-9
    )


units_strategy = st.lists(st.integers(0, 4), min_size=2, max_size=30)


@settings(max_examples=60, deadline=None)
@given(units=units_strategy, coders=st.integers(2, 5), level=st.sampled_from(["nominal", "ordinal", "interval"]))
def test_alpha_is_one_when_every_coder_agrees(units, coders, level):
    if len(set(units)) < 2:
        units = [*units, (units[0] + 1) % 5]
    data = [list(units) for _ in range(coders)]
    assert krippendorff_alpha(data, level) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=6, max_size=6), min_size=2, max_size=5),
    seed=st.integers(0, 1000),
    level=st.sampled_from(["nominal", "ordinal", "interval", "ratio"]),
)
def test_alpha_does_not_depend_on_the_order_of_coders_or_units(data, seed, level):
    try:
        reference = krippendorff_alpha(data, level)
    except ValueError:
        return  # not enough pairable values: nothing to compare
    rng = np.random.default_rng(seed)
    coders = [data[i] for i in rng.permutation(len(data))]
    order = rng.permutation(len(data[0]))
    shuffled = [[row[j] for j in order] for row in coders]
    result = krippendorff_alpha(shuffled, level)
    if np.isnan(reference):
        assert np.isnan(result)
    else:
        assert result == pytest.approx(reference, abs=1e-12)


def test_kendall_tau_b_with_and_without_ties():
    assert kendall_tau_b([1, 2, 3, 4, 5], [3, 4, 1, 2, 5]) == pytest.approx(0.2)
    # ties: x = [1,1,2], y = [1,2,3] -> C=2, D=0, n0=3, n1=1, n2=0 -> 2/sqrt(2*3)
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6**0.5)
    with pytest.raises(ValueError):
        kendall_tau_b([1, 1, 1], [1, 2, 3])


def test_pairwise_agreement_expands_rankings_into_pairs():
    assert ranking_pairs([["b"], ["a", "c"]]) == {("a", "b"): 1, ("a", "c"): 0, ("b", "c"): -1}
    assert preference_pairs(-2, ["x", "y"]) == {("x", "y"): -1}
    assert preference_pairs(-2, ["y", "x"]) == {("x", "y"): 1}
    units = [
        # item 1: three annotators on one pair: two say x, one says y -> 1 of 3 annotator pairs agree
        [preference_pairs(-1, ["x", "y"]), preference_pairs(-3, ["x", "y"]), preference_pairs(2, ["x", "y"])],
        # item 2: two rankings over three responses; they agree on 2 of the 3 implied pairs
        [ranking_pairs([["a"], ["b"], ["c"]]), ranking_pairs([["a"], ["c"], ["b"]])],
    ]
    assert pairwise_preference_agreement(units) == pytest.approx((1 + 2) / (3 + 3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(-3, 3), max_size=6), st.booleans()), min_size=1, max_size=12))
def test_sign_agreement_is_the_pairwise_agreement_of_preferences(items):
    """Read from counts of signs, the same figure (to the last bit) as through each answer's pair,
    whichever way round an item's responses come."""
    units = [[preference_pairs(v, ["p", "q"] if flipped else ["q", "p"]) for v in values] for values, flipped in items]
    try:
        expected = pairwise_preference_agreement(units)
    except ValueError:
        with pytest.raises(ValueError, match="two annotators"):
            pairwise_sign_agreement([values for values, _ in items])
        return
    assert pairwise_sign_agreement([values for values, _ in items]) == expected


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(WIKI_ALPHA, "cardinal")
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [2, 1]])
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa([1, 2], [1])
