"""Grid enumeration and hashing: product order (last parameter fastest), chunks cut anywhere
concatenate to the whole grid (what workers rely on), canonical hashes, the run_params path."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import grid_size, param_hash, params_at, params_range, run_params

SPACE = get_strategy("sma_cross").parameter_space()


def test_grid_enumeration_order_and_hashes():
    g = SPACE.validate_grid(
        {"fast": [5, 10], "slow": [20, 30, 40], "rr": [1.0, 2.0]}, max_combinations=100
    )
    n = grid_size(g)
    assert n == 12
    combos = params_range(g, 0, n)
    expected = [dict(zip(g, vals, strict=True)) for vals in itertools.product(*g.values())]
    assert combos == expected
    assert combos[1] == {"fast": 5, "slow": 20, "sl_pct": 2.0, "rr": 2.0}  # last key fastest
    assert [params_at(g, i) for i in range(n)] == combos
    assert params_range(g, 5, 9) == combos[5:9]
    assert params_range(g, 10, 99) == combos[10:]
    assert len({param_hash(p) for p in combos}) == n
    with pytest.raises(IndexError):
        params_at(g, n)


def test_param_hash_canonical():
    h = param_hash({"fast": 5, "slow": 20, "sl_pct": 2.0, "rr": 1.5})
    assert len(h) == 40 and int(h, 16) >= 0
    assert h == param_hash({"rr": 1.5, "sl_pct": 2.0, "slow": 20, "fast": 5})
    assert h == param_hash({"fast": np.int64(5), "slow": 20, "sl_pct": np.float64(2.0), "rr": 1.5})
    a = SPACE.validate_params({"fast": 5.0})
    b = SPACE.validate_params({"fast": 5})
    assert param_hash(a) == param_hash(b)
    assert param_hash({"x": 1}) != param_hash({"x": 1.0})
    assert param_hash({"x": True}) != param_hash({"x": 1})
    with pytest.raises(ValueError):
        param_hash({"x": float("nan")})


def test_run_params_delegates(hourly_btc):
    strat = get_strategy("sma_cross")
    ctx = strat.prepare(hourly_btc)
    pl = [{"fast": 5, "slow": 20}]
    np.testing.assert_array_equal(
        run_params(strat, ctx, pl, Costs()), strat.run_many(ctx, pl, Costs())
    )


_value_lists = st.fixed_dictionaries(
    {
        "fast": st.lists(st.integers(2, 500), min_size=1, max_size=5),
        "slow": st.lists(st.integers(3, 2000), min_size=1, max_size=5),
        "sl_pct": st.lists(
            st.floats(0.1, 50, allow_nan=False, allow_infinity=False), min_size=1, max_size=4
        ),
        "rr": st.lists(st.sampled_from([0.5, 1, 1.5, 2, 3.0]), min_size=1, max_size=3),
    }
)


@settings(max_examples=60)
@given(raw=_value_lists, data=st.data())
def test_grid_expansion_properties(raw, data):
    keys = data.draw(st.lists(st.sampled_from(list(raw)), unique=True, min_size=0, max_size=4))
    grid_in = {k: raw[k] for k in keys}
    g = SPACE.validate_grid(grid_in, max_combinations=10**6)
    assert list(g) == list(SPACE.names)
    for k, vals in g.items():
        assert len(vals) == len(set(vals))  # de-duplicated
        if k in grid_in:
            # first occurrences kept, in order
            seen = []
            for v in grid_in[k]:
                c = SPACE[k].coerce(v)
                if c not in seen:
                    seen.append(c)
            assert vals == seen
    n = grid_size(g)
    assert n == int(np.prod([len(v) for v in g.values()]))
    combos = params_range(g, 0, n)
    assert len(combos) == n
    assert combos == params_range(g, 0, n)  # stable
    assert len({param_hash(p) for p in combos}) == n
    i = data.draw(st.integers(0, n - 1))
    assert params_at(g, i) == combos[i]
    cap = data.draw(st.integers(1, 2 * n))
    if n > cap:
        with pytest.raises(ParameterError):
            SPACE.validate_grid(grid_in, max_combinations=cap)
    else:
        assert SPACE.validate_grid(grid_in, max_combinations=cap) == g


grids = st.fixed_dictionaries(
    {},
    optional={
        "fast": st.lists(st.integers(2, 500), min_size=1, max_size=4),
        "slow": st.lists(st.integers(3, 2000), min_size=1, max_size=4),
        "sl_pct": st.lists(st.floats(0.1, 50, allow_nan=False), min_size=1, max_size=4),
        "rr": st.lists(st.floats(0.1, 20, allow_nan=False), min_size=1, max_size=3),
    },
)


@settings(max_examples=150)
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
