"""Parameter coercion and grid validation: types, bounds, ranges, the cap, did-you-mean; any
non-finite or ill-typed value is refused naming its parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.parameters import Param, ParameterError, ParameterSpace
from backtestlab.engine.strategies import get_strategy

SPACE = get_strategy("sma_cross").parameter_space()


def test_parameter_error_str():
    e = ParameterError("fast", "bad")
    assert (e.field, e.message, str(e)) == ("fast", "bad", "fast: bad")


def test_validate_params_defaults_and_order():
    assert SPACE.validate_params({}) == {"fast": 10, "slow": 50, "sl_pct": 2.0, "rr": 2.0}
    out = SPACE.validate_params({"rr": 3, "fast": 5.0})
    assert list(out) == ["fast", "slow", "sl_pct", "rr"]
    assert out["fast"] == 5 and type(out["fast"]) is int
    assert out["rr"] == 3.0 and type(out["rr"]) is float


def test_unknown_parameter_did_you_mean():
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_params({"fsat": 5})
    assert exc.value.field == "fsat"
    assert exc.value.message == (
        "unknown parameter 'fsat'; did you mean 'fast'? Known: fast, slow, sl_pct, rr"
    )
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid({"zzzz": [1]}, max_combinations=10)
    assert "Known: fast, slow, sl_pct, rr" in exc.value.message


@pytest.mark.parametrize(
    "name,value",
    [
        ("fast", float("nan")),
        ("fast", float("inf")),
        ("sl_pct", 1e309),
        ("sl_pct", float("-inf")),
        ("fast", True),
        ("sl_pct", False),
        ("fast", "5"),
        ("sl_pct", "2.0"),
        ("fast", None),
        ("fast", 5.5),
        ("fast", [5]),
    ],
)
def test_bad_values_rejected_with_field(name, value):
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_params({name: value})
    assert exc.value.field == name
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid({name: [value]}, max_combinations=100)
    assert exc.value.field == name


def test_bounds_message():
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_params({"sl_pct": 80})
    assert exc.value.message == "sl_pct must be between 0.1 and 50, got 80"
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_params({"fast": 1})
    assert exc.value.message == "fast must be between 2 and 500, got 1"
    with pytest.raises(ParameterError):
        SPACE.validate_params({"fast": 10**400})


def test_bool_and_choice_params():
    space = ParameterSpace(
        [Param("flag", "bool", False), Param("mode", "choice", "a", choices=("a", "b"))]
    )
    assert space.validate_params({"flag": True, "mode": "b"}) == {"flag": True, "mode": "b"}
    with pytest.raises(ParameterError) as exc:
        space.validate_params({"flag": 1})
    assert exc.value.field == "flag"
    with pytest.raises(ParameterError) as exc:
        space.validate_params({"mode": "c"})
    assert "'a', 'b'" in exc.value.message


def test_validate_grid_basic():
    g = SPACE.validate_grid(
        {"rr": [2, 2.0, 1.5], "fast": 5, "slow": {"start": 20, "stop": 60, "step": 20}},
        max_combinations=100,
    )
    assert list(g) == ["fast", "slow", "sl_pct", "rr"]
    assert g == {"fast": [5], "slow": [20, 40, 60], "sl_pct": [2.0], "rr": [2.0, 1.5]}
    assert SPACE.validate_grid({}, max_combinations=1) == {
        k: [v] for k, v in SPACE.defaults().items()
    }


def test_float_range_inclusive_stop():
    g = SPACE.validate_grid(
        {"sl_pct": {"start": 0.1, "stop": 0.3, "step": 0.1}}, max_combinations=100
    )
    assert g["sl_pct"] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    "spec",
    [
        {"start": 5, "stop": 50, "step": 0},
        {"start": 5, "stop": 50, "step": -5},
        {"start": 50, "stop": 5, "step": 5},
        {"start": 5, "stop": 50},
        {"start": 5, "stop": 50, "step": 5, "extra": 1},
        {"start": 5, "stop": 50, "step": 2.5},
        {"start": 1, "stop": 50, "step": 5},  # start below the bound
    ],
)
def test_bad_range_specs(spec):
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid({"fast": spec}, max_combinations=1000)
    assert exc.value.field == "fast"


def test_empty_list_rejected():
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid({"slow": []}, max_combinations=10)
    assert (exc.value.field, exc.value.message) == ("slow", "needs at least one value")


def test_cap_checked_without_expansion(monkeypatch):
    # Nothing larger than the lists the caller typed is ever materialised: a range is counted
    # arithmetically and refused before its values would be generated.
    materialised = []
    real = ParameterSpace._coerce_unique

    def watched(p, raw):
        materialised.append(len(raw))
        assert len(raw) <= 1000, f"{p.name}: {len(raw)} values materialised before the cap"
        return real(p, raw)

    monkeypatch.setattr(ParameterSpace, "_coerce_unique", staticmethod(watched))
    grid = {
        "sl_pct": {"start": 0.1, "stop": 50, "step": 1e-9},  # ~5e10 values
        "rr": {"start": 0.1, "stop": 20, "step": 1e-6},
    }
    with pytest.raises(ParameterError):
        SPACE.validate_grid(grid, max_combinations=10_000)
    big = {  # every list short, product ~2e9
        "fast": list(range(2, 501)),
        "slow": list(range(3, 1003)),
        "sl_pct": [float(x) for x in np.linspace(0.1, 50, 1000)],
        "rr": [float(x) for x in np.linspace(0.1, 20, 4)],
    }
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid(big, max_combinations=10_000)
    assert exc.value.field == "parameter_grid"
    assert "exceed the cap of 10000" in exc.value.message
    ranges = {
        "fast": {"start": 2, "stop": 500, "step": 1},
        "slow": {"start": 3, "stop": 2000, "step": 1},
        "sl_pct": {"start": 0.1, "stop": 50, "step": 0.01},
        "rr": {"start": 0.1, "stop": 20, "step": 0.01},
    }
    with pytest.raises(ParameterError) as exc:
        SPACE.validate_grid(ranges, max_combinations=10**6)
    assert exc.value.field == "parameter_grid"
    assert "exceed the cap of 1000000" in exc.value.message
    assert max(materialised) == 1000  # only the explicit lists were coerced


bad_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e309, True, False, None, "5", [5], {}]),
    st.text(max_size=5),
)


@settings(max_examples=150)
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
