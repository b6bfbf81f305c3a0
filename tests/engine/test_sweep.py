"""Grid enumeration and hashing: product order (last parameter fastest), chunks cut anywhere
concatenate to the whole grid (what workers rely on), canonical hashes, the run_params path."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.parameters import Constraint, Param, ParameterError, ParameterSpace
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import (
    allowed,
    constraint_masks,
    grid_positions,
    grid_size,
    index_range,
    param_hash,
    params_at,
    params_range,
    rule_label,
    run_params,
)

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


# --- constraints: the combinations a sweep skips ------------------------------------------------


def _brute_force(grid, constraints, start, stop):
    """Where every constraint holds, one combination at a time through the space's own check
    (``params -> message | None``), independently of the vectorised masks."""
    return [all(not rule(p) for rule in constraints) for p in params_range(grid, start, stop)]


def test_grid_positions_decode_like_params_range():
    g = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.5, 1.5, 2.5, 3.5]}
    pos = grid_positions(g, 5, 19)
    decoded = [{k: g[k][pos[k][j]] for k in g} for j in range(14)]
    assert decoded == params_range(g, 5, 19)
    assert list(pos) == ["a", "b", "c"] and pos["c"].dtype == np.int64
    # stop clamped to the grid, start to 0; an empty or inverted range is empty
    assert len(grid_positions(g, 20, 99)["a"]) == 4
    assert len(grid_positions(g, 7, 7)["a"]) == 0 and len(grid_positions(g, 9, 3)["b"]) == 0
    low = grid_positions(g, -3, 4)
    assert [{k: g[k][low[k][j]] for k in g} for j in range(4)] == params_range(g, 0, 4)
    assert len(low["a"]) == 4 and len(grid_positions(g, 0, None)["c"]) == 24
    assert index_range(g, -3, 4) == range(0, 4) and index_range(g, 0, -2) == range(0, 0)
    assert index_range(g, 5, None) == range(5, 24) and index_range(g, 30, 40) == range(30, 24)
    assert len(index_range(g, 30, 40)) == 0


def test_allowed_skips_exactly_the_combinations_that_break_fast_below_slow():
    g = SPACE.validate_grid(
        {"fast": list(range(2, 32)), "slow": list(range(5, 35))}, max_combinations=10**6
    )
    mask = allowed(g, SPACE.constraints)
    assert mask.dtype == np.bool_ and mask.shape == (900,)
    # independently: for fast in 2..31 the slows above it in 5..34
    expected = sum(1 for f in range(2, 32) for s in range(5, 35) if f < s)
    assert mask.sum() == expected == 522
    assert list(mask) == _brute_force(g, SPACE.constraints, 0, 900)
    for start, stop in [(0, 1), (17, 95), (899, 900), (450, 2000)]:
        part = allowed(g, SPACE.constraints, start, stop)
        assert list(part) == list(mask[start:stop])
    assert allowed(g, SPACE.constraints, 30, 30).shape == (0,)
    assert list(allowed(g, SPACE.constraints, -5, 40)) == list(mask[:40])
    assert allowed(g, SPACE.constraints, 0, -1).shape == (0,)
    assert [len(h) for _, h in constraint_masks(g, SPACE.constraints, -5, 3)] == [3]
    ((label, holds),) = constraint_masks(g, SPACE.constraints)
    assert label == "fast < slow" and (holds == mask).all()


def test_a_rule_against_a_number_and_one_on_a_parameter_with_one_value():
    space = ParameterSpace(
        [Param("a", "int", 1, 0, 10), Param("b", "int", 5, 0, 10)],
        constraints=["a != 3", Constraint("b >= 4")],
    )
    g = space.validate_grid({"a": [1, 2, 3, 4]}, max_combinations=100)  # b = [5] only
    labels = [label for label, _ in constraint_masks(g, space.constraints)]
    assert labels == ["a != 3", "b >= 4"]
    assert list(allowed(g, space.constraints)) == [True, True, False, True]
    g2 = space.validate_grid({"a": [1, 2], "b": [3]}, max_combinations=100)
    assert list(allowed(g2, space.constraints)) == [False, False]  # b >= 4 breaks everywhere


def test_a_callable_constraint_is_asked_once_per_combination():
    asked = []

    def composite_needs_weight(params):
        """composite mode needs a positive weight"""
        asked.append(dict(params))
        return "no weight" if params["mode"] == "composite" and params["w"] == 0 else None

    def nameless(params):
        return None

    def two_lines(params):
        """w is at most 2

        (the second line is not the label)"""
        return None

    space = ParameterSpace(
        [
            Param("mode", "choice", "simple", choices=("simple", "composite")),
            Param("w", "int", 0, 0, 3),
        ],
        constraints=[composite_needs_weight, nameless, "w < 3"],
    )
    g = space.validate_grid({"mode": ["simple", "composite"], "w": [0, 1, 3]}, max_combinations=100)
    masks = constraint_masks(g, space.constraints, 1, 6)
    assert [label for label, _ in masks] == [
        "composite mode needs a positive weight",
        "nameless",
        "w < 3",
    ]
    assert asked == params_range(g, 1, 6)  # the grid's own values, in order, once each
    assert isinstance(asked[0]["w"], int) and not isinstance(asked[0]["w"], np.integer)
    assert list(allowed(g, space.constraints, 1, 6)) == [True, False, False, True, False]
    assert list(allowed(g, space.constraints)) == _brute_force(g, space.constraints, 0, 6)
    assert rule_label(space.constraints[2]) == "w < 3"
    assert rule_label(two_lines) == "w is at most 2"


def test_no_constraints_allow_everything():
    g = {"a": [1, 2], "b": [3, 4, 5]}
    assert allowed(g, ()).all() and allowed(g, ()).shape == (6,)
    assert constraint_masks(g, ()) == []
