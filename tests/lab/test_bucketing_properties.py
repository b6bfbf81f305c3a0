"""Heatmap bucketing at the edges (test_environment_engine.py draws values that rarely fall
exactly on an edge): buckets are half-open, [edge_i, edge_i+1)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.environment import Axis

dyadic = st.integers(-400, 400).map(lambda k: k / 4)


@settings(max_examples=200)
@given(
    start=dyadic,
    step=st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0]),
    points=st.integers(1, 20),
)
def test_a_value_on_an_edge_belongs_to_the_bucket_it_opens(start, step, points):
    axis = Axis(start, step, points)
    edges = axis.edges()
    assert len(edges) == points + 1 and np.all(np.diff(edges) > 0)
    buckets = axis.bucket(np.asarray(edges, dtype=float))
    assert buckets.tolist() == [*range(points), -1]  # the last edge closes the grid
    assert axis.bucket(np.array([start - step / 2]))[0] == -1
    assert len(axis.labels()) == points
