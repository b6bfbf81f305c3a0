"""Sensitivity: the objective's drop in the best run's grid neighbourhood."""

import math

import numpy as np
import pytest

from backtestlab.engine.evaluation import sensitivity


def test_sensitivity_drop_on_a_peak_and_a_plateau():
    grid = {"a": [1, 2, 3], "b": [10, 20], "c": ["x", "y"]}
    v = np.ones(12)
    plateau = sensitivity.neighbourhood_drop(grid, v, best_index=0)
    assert plateau.drop == 0
    v = np.full(12, 0.5)
    best = int(np.ravel_multi_index((1, 0, 1), (3, 2, 2)))
    v[best] = 2.0
    peak = sensitivity.neighbourhood_drop(grid, v)
    assert peak.best_index == best
    assert len(peak.neighbour_indexes) == 3  # a-1, a+1, b+1; c is a choice
    assert peak.drop == pytest.approx((2.0 - 0.5) / 2.0)
    lone = sensitivity.neighbourhood_drop({"a": [1]}, np.array([1.0]))
    assert math.isnan(lone.drop)


@pytest.mark.parametrize(
    ("centre", "other", "fall"),
    [
        (2.0, 0.5, 0.75),
        (2.0, 3.0, -0.5),
        (-2.0, -3.0, 0.5),  # a negative centre: lower is still a fall
        (0.0, 0.0, 0.0),
        (0.0, -1.0, math.inf),
        (0.0, 1.0, -math.inf),
        (math.inf, math.inf, 0.0),  # unbounded to unbounded: a plateau
        (math.inf, 5.0, 1.0),  # unbounded to finite: all of it (the limit)
        (5.0, math.inf, -math.inf),
        (5.0, -math.inf, math.inf),
    ],
)
def test_relative_fall_and_its_limits(centre, other, fall):
    assert sensitivity.relative_fall(centre, other) == fall


@pytest.mark.parametrize(("centre", "other"), [(math.nan, 1.0), (1.0, math.nan)])
def test_relative_fall_of_an_undefined_value_is_undefined(centre, other):
    assert math.isnan(sensitivity.relative_fall(centre, other))


def test_an_unbounded_best_is_the_best_and_falls_all_the_way_to_finite_neighbours():
    grid = {"a": [1, 2, 3]}
    v = np.array([1.5, math.inf, 2.5])
    res = sensitivity.neighbourhood_drop(grid, v)
    assert res.best_index == 1 and res.best_value == math.inf
    assert res.neighbour_mean == 2.0 and res.drop == 1.0
    plateau = sensitivity.neighbourhood_drop(grid, np.array([math.inf, math.inf, 1.0]))
    assert plateau.best_index == 0 and plateau.drop == 0.0
    # A failed (NaN) neighbour counts as the worst value of the grid.
    res = sensitivity.neighbourhood_drop(grid, np.array([math.nan, 4.0, 2.0]))
    assert res.best_index == 1 and res.neighbour_mean == 2.0 and res.drop == 0.5
    with pytest.raises(ValueError, match="no objective value"):
        sensitivity.neighbourhood_drop(grid, np.full(3, math.nan))


def test_neighbourhood_scores_by_hand():
    # a: 3 numeric values, b: 2, c: a choice (no neighbours along it); grid index = 4a+2b+c
    grid = {"a": [1, 2, 3], "b": [10, 20], "c": ["x", "y"]}
    v = np.arange(12, dtype=float)
    v[5] = math.nan  # (a=2, b=10, c=y) may not be ranked: a cliff, counts as 0 (the worst)
    worst, mean = sensitivity.neighbourhood_scores(grid, v)
    # k=4 (a=2, b=10, c=x): itself 4, a-1 -> 0, a+1 -> 8, b+1 -> 6
    assert worst[4] == 0.0 and mean[4] == pytest.approx((4 + 0 + 8 + 6) / 4)
    # k=1 (a=1, b=10, c=y): itself 1, a+1 -> k=5 (NaN: the worst, 0), b+1 -> 3
    assert worst[1] == 0.0 and mean[1] == pytest.approx((1 + 0 + 3) / 3)
    # k=11 (a=3, b=20, c=y): itself 11, a-1 -> 7, b-1 -> 9
    assert worst[11] == 7.0 and mean[11] == pytest.approx(9.0)
    assert math.isnan(worst[5]) and math.isnan(mean[5])
    # lower is better: "worst" is the highest value
    worst, mean = sensitivity.neighbourhood_scores(grid, v, higher_is_better=False)
    assert worst[4] == 8.0 and worst[1] == 11.0  # the cliff is the grid's highest (11)
    assert mean[11] == pytest.approx(9.0)


def test_neighbourhood_scores_agree_with_the_neighbourhood_drop_and_handle_infinity():
    grid = {"a": [1, 2, 3, 4], "b": [0.5, 1.0, 1.5]}
    rng = np.random.default_rng(3)
    v = rng.normal(size=12)
    worst, mean = sensitivity.neighbourhood_scores(grid, v)
    for k in range(12):
        res = sensitivity.neighbourhood_drop(grid, v, best_index=k)
        n = len(res.neighbour_indexes)
        assert mean[k] == pytest.approx((v[k] + n * res.neighbour_mean) / (n + 1))
        assert worst[k] == min(v[k], *v[list(res.neighbour_indexes)])
    v = np.array([1.0, math.inf, math.inf, 2.0])
    worst, mean = sensitivity.neighbourhood_scores({"a": [1, 2, 3, 4]}, v)
    assert list(worst) == [1.0, 1.0, 2.0, 2.0] and mean[2] == math.inf
    with pytest.raises(ValueError, match="values has 3 entries, the grid 4"):
        sensitivity.neighbourhood_scores({"a": [1, 2, 3, 4]}, np.ones(3))


def test_a_skipped_combination_is_no_neighbour_and_no_cliff():
    # a: 1..4 (index = a - 1); a = 2 was skipped by a constraint (never run)
    grid = {"a": [1, 2, 3, 4]}
    v = np.array([5.0, math.nan, 4.0, 1.0])
    ran = np.array([True, False, True, True])
    worst, mean = sensitivity.neighbourhood_scores(grid, v, exists=ran)
    # as a cliff (no exists) a=1 would fall to the grid's worst, 1.0; skipped, a=1 has no
    # neighbour but itself and a=3 only a=4
    assert worst[0] == 5.0 and mean[0] == 5.0
    assert worst[2] == 1.0 and mean[2] == pytest.approx((4.0 + 1.0) / 2)
    assert math.isnan(worst[1]) and math.isnan(mean[1])
    cliff_worst, cliff_mean = sensitivity.neighbourhood_scores(grid, v)
    assert cliff_worst[0] == 1.0 and cliff_mean[0] == pytest.approx((5.0 + 1.0) / 2)
    # a value stored at a skipped index is ignored too
    w2, m2 = sensitivity.neighbourhood_scores(grid, np.array([5.0, 9.0, 4.0, 1.0]), exists=ran)
    assert list(w2[[0, 2, 3]]) == list(worst[[0, 2, 3]]) and math.isnan(w2[1])
    # lower is better: the worst is the highest
    w3, _ = sensitivity.neighbourhood_scores(grid, v, higher_is_better=False, exists=ran)
    assert w3[0] == 5.0 and w3[3] == 4.0
