"""Properties of grid validation and expansion that test_params_sweep.py does not state.

There: count = product of the value lists, unique hashes, params_at agrees with params_range,
the cap. Here: the order is itertools.product's (last parameter fastest) for any grid, chunks
cut anywhere concatenate to the whole grid (what workers rely on), validation is idempotent,
and any non-finite or ill-typed value is refused naming its parameter.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.sweep import grid_size, param_hash, params_range

SPACE = get_strategy("sma_cross").parameter_space()

grids = st.fixed_dictionaries(
    {},
    optional={
        "fast": st.lists(st.integers(2, 500), min_size=1, max_size=4),
        "slow": st.lists(st.integers(3, 2000), min_size=1, max_size=4),
        "sl_pct": st.lists(st.floats(0.1, 50, allow_nan=False), min_size=1, max_size=4),
        "rr": st.lists(st.floats(0.1, 20, allow_nan=False), min_size=1, max_size=3),
    },
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw=grids, cuts=st.lists(st.integers(0, 300), max_size=6))
def test_expansion_is_product_order_and_chunks_concatenate_to_the_whole(raw, cuts):
    grid = SPACE.validate_grid(raw, max_combinations=10**6)
    n = grid_size(grid)
    assert n == math.prod(len(v) for v in grid.values())
    whole = params_range(grid, 0, n)
    assert whole == [
        dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())
    ]
    edges = sorted({0, n, *(c % (n + 1) for c in cuts)})
    pieces = [p for a, b in itertools.pairwise(edges) for p in params_range(grid, a, b)]
    assert pieces == whole
    assert len({param_hash(p) for p in pieces}) == n
    assert SPACE.validate_grid(grid, max_combinations=10**6) == grid  # idempotent


bad_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e309, True, False, None, "5", [5], {}]),
    st.text(max_size=5),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(["fast", "slow", "sl_pct", "rr"]),
    bad=bad_values,
    good=st.lists(st.integers(5, 20), min_size=0, max_size=3),
    as_range=st.sampled_from([None, "start", "stop", "step"]),
)
def test_a_bad_value_anywhere_is_refused_naming_its_parameter(name, bad, good, as_range):
    if as_range is None:
        spec = [*good, bad]
    else:
        spec = {"start": 5, "stop": 10, "step": 1, as_range: bad}
    with pytest.raises(ParameterError) as err:
        SPACE.validate_grid({name: spec}, max_combinations=10**6)
    assert err.value.field == name
