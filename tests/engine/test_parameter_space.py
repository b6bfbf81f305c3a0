"""Parameter and grid validation at its edges, and the grid helpers of the sweep.

Bounds are inclusive; a range's stop is inclusive; the combination cap is "at most"; one-sided
bounds and odd input types (numpy scalars, tuples, arrays) get the same answers as plain ones.
Expected grids and hashes are written out by hand.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from backtestlab.engine.parameters import Param, ParameterError, ParameterSpace
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import grid_size, param_hash, params_at, params_range, run_params

SMA = get_strategy("sma_cross").parameter_space()  # fast 2..500, slow 3..2000, sl_pct 0.1..50


def refused(space: ParameterSpace, params=None, *, grid=None, cap: int = 10**6) -> ParameterError:
    with pytest.raises(ParameterError) as err:
        if grid is None:
            space.validate_params(params)
        else:
            space.validate_grid(grid, max_combinations=cap)
    return err.value


# --- one value ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, expected",
    [("fast", 2, 2), ("fast", 500, 500), ("sl_pct", 0.1, 0.1), ("sl_pct", 50, 50.0)],
)
def test_bounds_are_inclusive(name, value, expected):
    out = SMA.validate_params({name: value})[name]
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("fast", 501, "fast must be between 2 and 500, got 501"),
        ("sl_pct", 0.09, "sl_pct must be between 0.1 and 50, got 0.09"),
        ("sl_pct", 50.5, "sl_pct must be between 0.1 and 50, got 50.5"),
        ("sl_pct", 10**400, "sl_pct must be between 0.1 and 50, got 1.000e+400"),
        ("rr", True, "rr must be a number, got True"),  # 1 would be within bounds
        ("rr", np.bool_(True), f"rr must be a number, got {np.bool_(True)!r}"),
        ("fast", 5.5, "fast must be a whole number, got 5.5"),
        ("sl_pct", float("inf"), "sl_pct must be a finite number, got inf"),
    ],
)
def test_a_refused_value_is_explained(name, value, message):
    err = refused(SMA, {name: value})
    assert (err.field, err.message) == (name, message)


def test_one_sided_bounds_name_their_side():
    space = ParameterSpace([Param("n", "int", 5, low=1), Param("x", "float", 1.0, high=10)])
    assert space.validate_params({"n": 10**6, "x": -1e9}) == {"n": 10**6, "x": -1e9}
    assert refused(space, {"n": 0}).message == "n must be at least 1, got 0"
    assert refused(space, {"x": 10.5}).message == "x must be at most 10, got 10.5"


def test_numpy_scalars_are_coerced_like_python_ones():
    out = SMA.validate_params({"fast": np.int64(7), "slow": np.float64(30.0), "rr": np.int32(2)})
    assert out == {"fast": 7, "slow": 30, "sl_pct": 2.0, "rr": 2.0}
    assert [type(out[k]) for k in ("fast", "slow", "rr")] == [int, int, float]
    space = ParameterSpace(
        [Param("flag", "bool", False), Param("mode", "choice", "a", choices=("a", "b"))]
    )
    assert space.validate_params({"flag": np.bool_(True), "mode": np.str_("b")}) == {
        "flag": True,
        "mode": "b",
    }


def test_a_choice_must_match_in_type_too():
    space = ParameterSpace([Param("k", "choice", 1, choices=(1, 2))])
    assert space.validate_params({"k": 2}) == {"k": 2}
    err = refused(space, {"k": True})  # True == 1 in Python, but it is not the choice 1
    assert err.message == "k must be one of 1, 2, got True"
    assert refused(space, {"k": "1"}).message == "k must be one of 1, 2, got '1'"


def test_a_bool_parameter_takes_only_booleans():
    space = ParameterSpace([Param("flag", "bool", False)])
    assert refused(space, {"flag": 0}).message == "flag must be true or false, got 0"


def test_the_first_violated_constraint_is_reported():
    assert SMA.check_constraints({"fast": 50, "slow": 30, "sl_pct": 2.0, "rr": 2.0}) == (
        "fast < slow does not hold (fast=50, slow=30); this combination never trades"
    )
    assert SMA.check_constraints({"fast": 10, "slow": 30, "sl_pct": 2.0, "rr": 2.0}) is None
    space = ParameterSpace(
        [Param("a", "int", 1)],
        constraints=[lambda p: None, lambda p: "second", lambda p: "third"],
    )
    assert space.check_constraints({"a": 1}) == "second"


def test_an_unknown_parameter_is_named_whatever_its_type():
    err = refused(SMA, {3: 1})
    assert err.field == "3" and err.message.startswith("unknown parameter '3'")


# --- ranges ------------------------------------------------------------------------------------


def test_a_range_of_one_value():
    grid = SMA.validate_grid({"fast": {"start": 5, "stop": 5, "step": 1}}, max_combinations=1)
    assert grid["fast"] == [5]


def test_an_int_range_stops_at_or_before_its_stop():
    grid = SMA.validate_grid({"fast": {"start": 5, "stop": 21, "step": 5}}, max_combinations=10)
    assert grid["fast"] == [5, 10, 15, 20]  # (21 - 5) // 5 + 1 = 4 values


def test_a_float_range_keeps_the_numbers_the_user_typed():
    grid = SMA.validate_grid(
        {"sl_pct": {"start": 0.5, "stop": 1.7, "step": 0.3}}, max_combinations=10
    )
    assert grid["sl_pct"] == [0.5, 0.8, 1.1, 1.4, 1.7]  # (1.7 - 0.5) / 0.3 = 4 steps
    big = ParameterSpace([Param("level", "float", 1000.0, 0, 10_000)])
    grid = big.validate_grid(
        {"level": {"start": 1000.1, "stop": 1000.5, "step": 0.1}}, max_combinations=10
    )
    assert grid["level"] == [1000.1, 1000.2, 1000.3, 1000.4, 1000.5]  # 1000.3000000000001 raw
    tiny = ParameterSpace([Param("rate", "float", 0.0001, 0, 1)])
    grid = tiny.validate_grid(
        {"rate": {"start": 0.0001, "stop": 0.000100000003, "step": 1e-12}}, max_combinations=10
    )
    assert grid["rate"] == [0.0001, 0.000100000001, 0.000100000002, 0.000100000003]


def test_a_step_too_small_for_a_float_range_is_refused():
    err = refused(SMA, grid={"sl_pct": {"start": 0.1, "stop": 50, "step": 1e-320}})
    assert (err.field, err.message) == (
        "sl_pct", "range step is too small: the range has too many values"
    )  # fmt: skip


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"start": 5, "stop": 50, "step": 0}, "range step must be > 0, got 0"),
        ({"start": 5, "stop": 50, "step": -1}, "range step must be > 0, got -1"),
        ({"start": 6, "stop": 5, "step": 1}, "range start 6 is greater than stop 5"),
        ({"start": 5, "stop": 50}, "a range needs exactly the keys start, stop and step"),
        ({"start": 5, "stop": 6, "step": 1, "x": 1}, "a range needs exactly the keys start, stop "
                                                     "and step"),
    ],
)  # fmt: skip
def test_a_bad_range_is_explained(spec, message):
    err = refused(SMA, grid={"fast": spec})
    assert (err.field, err.message) == ("fast", message)


def test_a_float_step_of_one_thousandth_is_allowed():
    grid = SMA.validate_grid(
        {"sl_pct": {"start": 1, "stop": 1.002, "step": 0.001}}, max_combinations=10
    )
    assert grid["sl_pct"] == [1.0, 1.001, 1.002]


def test_only_numbers_have_ranges():
    space = ParameterSpace([Param("mode", "choice", "a", choices=("a", "b"))])
    err = refused(space, grid={"mode": {"start": "a", "stop": "b", "step": 1}})
    assert (err.field, err.message) == ("mode", "a range is only allowed for numbers, not choice")


# --- grids and the cap ---------------------------------------------------------------------


def test_the_cap_is_at_most_for_lists_and_ranges():
    ten = list(range(2, 12))
    assert len(SMA.validate_grid({"fast": ten}, max_combinations=10)["fast"]) == 10
    err = refused(SMA, grid={"fast": ten, "rr": [1, 2]}, cap=19)
    assert (err.field, err.message) == (
        "parameter_grid",
        "20 combinations exceed the cap of 19; reduce the number of values per parameter",
    )
    ranged = {"fast": {"start": 2, "stop": 11, "step": 1}}
    assert len(SMA.validate_grid(ranged, max_combinations=10)["fast"]) == 10
    err = refused(SMA, grid={"fast": {"start": 2, "stop": 12, "step": 1}}, cap=10)
    assert (err.field, err.message) == (
        "fast", "range has 11 values, more than the cap of 10 combinations"
    )  # fmt: skip


def test_tuples_arrays_and_scalars_are_value_lists():
    grid = SMA.validate_grid(
        {"fast": (5, 10), "slow": np.array([30, 60]), "sl_pct": 1, "rr": [2, 2.0, 3]},
        max_combinations=100,
    )
    assert grid == {"fast": [5, 10], "slow": [30, 60], "sl_pct": [1.0], "rr": [2.0, 3.0]}
    assert grid_size(grid) == 8


def test_a_grid_value_list_keeps_first_occurrences_only():
    grid = SMA.validate_grid({"fast": [10, 5, 10.0, 5, 20]}, max_combinations=100)
    assert grid["fast"] == [10, 5, 20]


# --- the sweep's grid helpers ----------------------------------------------------------------

GRID = {"fast": [5, 10], "slow": [20, 30, 40]}  # index = fast_i * 3 + slow_i


def test_params_at_decodes_with_the_last_key_fastest():
    assert [params_at(GRID, i) for i in (0, 1, 3, 5)] == [
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 30},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 40},
    ]


@pytest.mark.parametrize("index", [-1, 6, 7])
def test_params_at_refuses_an_index_outside_the_grid(index):
    with pytest.raises(IndexError) as err:
        params_at(GRID, index)
    assert str(err.value) == f"combination index {index} out of range 0..5"


def test_params_range_clamps_to_the_grid():
    whole = [params_at(GRID, i) for i in range(6)]
    assert params_range(GRID, -4, 2) == whole[:2]
    assert params_range(GRID, 4, 100) == whole[4:]
    assert params_range(GRID, 2, 5) == whole[2:5]
    assert params_range(GRID, 3, 3) == [] and params_range(GRID, 5, 2) == []
    assert params_range(GRID, 6, 9) == []


def test_params_range_rolls_over_every_digit():
    grid = {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert [tuple(p.values()) for p in params_range(grid, 1, 7)] == [
        (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1),
    ]  # fmt: skip


def test_the_parameter_hash_is_sha1_of_canonical_json():
    text = b'{"fast":5,"flag":true,"mode":"a","rr":1.5}'
    params = {"rr": 1.5, "mode": "a", "flag": np.bool_(True), "fast": np.int64(5)}
    assert param_hash(params) == hashlib.sha1(text).hexdigest()


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_value_cannot_be_hashed(value):
    with pytest.raises(ValueError, match="cannot hash non-finite value"):
        param_hash({"x": value})


def test_a_value_of_another_type_cannot_be_hashed():
    with pytest.raises(TypeError, match="cannot hash parameter value of type list"):
        param_hash({"x": [1]})


def test_the_sweep_refuses_a_signal_delay():
    with pytest.raises(ValueError, match="signal_delay_bars is a stress scenario"):
        run_params(get_strategy("sma_cross"), None, [{}], Costs(signal_delay_bars=1))
