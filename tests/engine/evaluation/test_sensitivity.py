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
