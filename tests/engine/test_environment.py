"""The pure engine of the synthetic tools: decision steps, buckets (half-open, also exactly on
an edge), labels, golden counts, the selector scan and heatmap."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.data import EnvironmentSeries
from backtestlab.engine.environment import (
    Axis,
    decision_steps,
    environment_heatmap,
    format_value,
    selector_frequency_scan,
    selector_heatmap,
)
from backtestlab.engine.options_selector_rules import selector_allows, selector_defaults
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.synthetic import ENVIRONMENT_METRICS

DAY = 86400


def make_env(n=None, **metrics) -> EnvironmentSeries:
    """A hand-made series: the given metric arrays, every other metric constant 50."""
    n = n or len(next(iter(metrics.values())))
    full = {k: np.full(n, 50.0) for k in ENVIRONMENT_METRICS}
    full.update({k: np.asarray(v, dtype=float) for k, v in metrics.items()})
    return EnvironmentSeries(symbol="BTC", ts=np.arange(n) * DAY, metrics=full)


def heatmap(x_values, y_values, x: Axis, y: Axis, **steps_kw):
    env = make_env(vrp_30d=x_values, adx_14d=y_values)
    steps = decision_steps(env, horizon_days=len(x_values), **steps_kw)
    return environment_heatmap(steps, x_metric="vrp_30d", y_metric="adx_14d", x=x, y=y)


# --- decision steps ------------------------------------------------------------------------


def test_decision_steps_are_every_kth_day_from_the_first_day_of_the_horizon():
    env = make_env(vrp_30d=np.arange(10.0))
    steps = decision_steps(env, horizon_days=10, decision_interval_days=3)
    assert steps.day.tolist() == [0, 3, 6, 9]
    assert steps.metrics["vrp_30d"].tolist() == [0.0, 3.0, 6.0, 9.0]
    assert steps.ts.tolist() == [0, 3 * DAY, 6 * DAY, 9 * DAY]
    assert len(decision_steps(env, horizon_days=9, decision_interval_days=3)) == 3


def test_a_shorter_horizon_gives_a_prefix_of_the_decision_steps():
    env = make_env(vrp_30d=np.arange(100.0))
    short = decision_steps(env, horizon_days=40, decision_interval_days=7)
    long = decision_steps(env, horizon_days=100, decision_interval_days=7)
    assert long.day[: len(short)].tolist() == short.day.tolist()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 11}, "horizon_days"),
        ({"horizon_days": 5, "decision_interval_days": 0}, "decision_interval_days"),
        ({"horizon_days": 5, "decision_interval_days": 31}, "decision_interval_days"),
    ],
)
def test_decision_steps_reject_a_horizon_or_interval_out_of_range(kwargs, field):
    with pytest.raises(ParameterError) as err:
        decision_steps(make_env(vrp_30d=np.arange(10.0)), **kwargs)
    assert err.value.field == field


# --- buckets -------------------------------------------------------------------------------


def test_a_value_exactly_at_a_buckets_lower_edge_goes_in_that_bucket():
    axis = Axis(5.0, 5.0, 4)
    assert axis.bucket(np.array([5.0, 10.0, 15.0, 20.0])).tolist() == [0, 1, 2, 3]
    # Float-noisy steps too: 0.3 is the lower edge of the bucket labelled 0.3.
    noisy = Axis(0.1, 0.1, 5)
    assert noisy.bucket(np.array([0.1, 0.2, 0.3, 0.4, 0.5])).tolist() == [0, 1, 2, 3, 4]


def test_a_value_exactly_at_the_upper_end_of_the_grid_is_outside():
    axis = Axis(5.0, 5.0, 4)  # buckets [5,10) [10,15) [15,20) [20,25)
    assert axis.bucket(np.array([25.0, 24.999999])).tolist() == [-1, 3]


def test_a_value_just_below_the_start_is_outside_not_in_the_first_bucket():
    # The seed's int((x - start) / step) truncates -0.2 to 0 and counts 4.9 in [5, 10).
    axis = Axis(5.0, 5.0, 4)
    assert axis.bucket(np.array([4.9, 4.999999, 0.1, -3.0])).tolist() == [-1, -1, -1, -1]
    result = heatmap([4.9, 5.0, 7.0], [15.0, 15.0, 15.0], axis, Axis(15.0, 5.0, 2))
    assert result.counts[0].tolist() == [2, 0, 0, 0]
    assert result.in_grid_steps == 2 and result.total_steps == 3


def test_nan_values_are_never_in_the_grid():
    assert Axis(0.0, 1.0, 3).bucket(np.array([np.nan, 1.5])).tolist() == [-1, 1]


# --- golden counts and coverage ------------------------------------------------------------


def test_golden_counts_on_a_hand_made_series():
    x = [0.0, 0.5, 1.0, 1.9, 2.0, 2.5, 3.0, -0.1, 1.0, 2.9]
    y = [10, 10, 10, 20, 20, 25, 10, 10, 29.9, 30]
    result = heatmap(x, y, Axis(0.0, 1.0, 3), Axis(10.0, 10.0, 2))
    # x buckets [0,1) [1,2) [2,3); y buckets [10,20) [20,30).
    # (3.0, 10) is at the upper end, (-0.1, 10) below the start, (2.9, 30) above y's end.
    assert result.counts.tolist() == [[2, 1, 0], [0, 2, 2]]
    assert (result.total_steps, result.in_grid_steps) == (10, 7)
    assert result.grid == [[28.6, 14.3, 0.0], [0.0, 28.6, 28.6]]
    assert result.coverage_pct == 70.0
    assert result.x_labels == [0.0, 1.0, 2.0] and result.y_labels == [10.0, 20.0]


def test_the_decision_interval_counts_only_every_kth_day():
    x = [0.5, 9.0, 1.5, 9.0, 2.5, 9.0]
    result = heatmap(
        x, [10.0] * 6, Axis(0.0, 1.0, 3), Axis(10.0, 10.0, 2), decision_interval_days=2
    )
    assert result.total_steps == 3 and result.in_grid_steps == 3
    assert result.counts[0].tolist() == [1, 1, 1] and result.coverage_pct == 100.0


def test_a_grid_that_misses_everything_gives_zeros_and_zero_coverage():
    result = heatmap([100.0, 200.0], [100.0, 200.0], Axis(0.0, 1.0, 2), Axis(0.0, 1.0, 2))
    assert result.grid == [[0.0, 0.0], [0.0, 0.0]]
    assert (result.in_grid_steps, result.coverage_pct) == (0, 0.0)


def test_coverage_is_rounded_to_a_tenth_of_a_percent():
    x = [0.5, 0.5, 5.0]  # 2 of 3 inside
    result = heatmap(x, [10.0] * 3, Axis(0.0, 1.0, 2), Axis(10.0, 10.0, 2))
    assert result.coverage_pct == 66.7


# --- labels --------------------------------------------------------------------------------


def test_labels_carry_no_float_noise():
    axis = Axis(0.1, 0.2, 5)
    assert axis.labels() == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert [format_value(v) for v in axis.labels()] == ["0.1", "0.3", "0.5", "0.7", "0.9"]
    assert Axis(0.1, 0.1, 3).labels()[2] == 0.3 != 0.1 + 0.2
    assert [format_value(v) for v in Axis(-0.3, 0.1, 4).labels()] == ["-0.3", "-0.2", "-0.1", "0"]
    assert format_value(5.0) == "5" and format_value(2.5) == "2.5"


@pytest.mark.parametrize(
    ("axis", "field"),
    [
        ((5.0, 0.0, 3, "x"), "x_step"),
        ((5.0, -5.0, 3, "y"), "y_step"),
        ((5.0, math.nan, 3, "x"), "x_step"),
        ((5.0, 1e-12, 3, "x"), "x_step"),  # grid values equal within 10 decimals
        ((1e308, 1e308, 3, "x"), "x_step"),  # beyond the float range
        ((5.0, 1.0, 0, "x"), "x_points"),
    ],
)
def test_an_axis_that_cannot_form_a_grid_is_rejected_naming_the_field(axis, field):
    with pytest.raises(ParameterError) as err:
        Axis(*axis)
    assert err.value.field == field and field in err.value.message


# --- properties ----------------------------------------------------------------------------

dyadic = st.integers(-400, 400).map(lambda k: k / 4)  # exact in binary: floor is exact too


@settings(max_examples=200)
@given(
    xs=st.lists(dyadic, min_size=1, max_size=60),
    ys=st.lists(dyadic, min_size=1, max_size=60),
    x_start=dyadic,
    y_start=dyadic,
    x_step=st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0, 12.5]),
    y_step=st.sampled_from([0.25, 0.5, 1.0, 3.0, 10.0]),
    x_points=st.integers(2, 20),
    y_points=st.integers(2, 20),
)
def test_counts_equal_a_brute_force_loop_with_floor(
    xs, ys, x_start, y_start, x_step, y_step, x_points, y_points
):
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    result = heatmap(xs, ys, Axis(x_start, x_step, x_points), Axis(y_start, y_step, y_points))
    expected = [[0] * x_points for _ in range(y_points)]
    for xv, yv in zip(xs, ys, strict=True):
        ix = math.floor((xv - x_start) / x_step)
        iy = math.floor((yv - y_start) / y_step)
        if 0 <= ix < x_points and 0 <= iy < y_points:
            expected[iy][ix] += 1
    assert result.counts.tolist() == expected
    assert result.in_grid_steps == sum(map(sum, expected)) and result.total_steps == n
    if result.in_grid_steps:
        # Each cell is rounded to 0.1: the sum is 100 within half a tenth per cell.
        assert abs(sum(map(sum, result.grid)) - 100.0) <= 0.05 * x_points * y_points + 1e-9
    else:  # nothing inside: every cell 0 % (not NaN from 0 / 0)
        assert result.grid == [[0.0] * x_points for _ in range(y_points)]


@settings(max_examples=200)
@given(
    values=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=50
    ),
    start=st.floats(-1e4, 1e4, allow_nan=False),
    step=st.floats(1e-3, 1e3),
    points=st.integers(1, 20),
)
def test_every_value_lands_in_the_bucket_whose_edges_enclose_it(values, start, step, points):
    axis = Axis(start, step, points)
    edges = axis.edges()
    for v, i in zip(values, axis.bucket(np.array(values)), strict=True):
        inside = [j for j in range(points) if edges[j] <= v < edges[j + 1]]
        assert [i] == inside if inside else i == -1


# --- selector scan and heatmap -------------------------------------------------------------


def selector_env():
    rng = np.random.default_rng(7)
    n = 400
    return make_env(
        vrp_30d=rng.normal(5, 5, n),
        iv_rank_6m=rng.uniform(0, 100, n),
        adx_14d=rng.uniform(5, 60, n),
        rsi_14d=rng.uniform(10, 90, n),
    )


def test_a_selector_scan_counts_the_steps_the_one_selector_allows():
    steps = decision_steps(selector_env(), horizon_days=400, decision_interval_days=2)
    fixed = selector_defaults()
    scan = selector_frequency_scan(
        steps, param="min_vrp_30d", axis=Axis(-5.0, 2.5, 7), thresholds=fixed
    )
    for value, count in zip(scan.values, scan.allowed_steps, strict=True):
        brute = selector_allows(steps.metrics, {**fixed, "min_vrp_30d": value}).sum()
        assert count == brute
    assert scan.total_steps == 200
    assert scan.allowed_pct == [round(c / 200 * 100, 1) for c in scan.allowed_steps]


def test_a_scan_over_a_minimum_threshold_never_increases():
    steps = decision_steps(selector_env(), horizon_days=400)
    scan = selector_frequency_scan(
        steps, param="min_vrp_30d", axis=Axis(-10.0, 1.0, 30), thresholds=selector_defaults()
    )
    assert all(a >= b for a, b in zip(scan.allowed_steps, scan.allowed_steps[1:], strict=False))
    assert scan.allowed_steps[0] > scan.allowed_steps[-1]


def test_a_one_point_scan_equals_the_selector_heatmap_cell_with_the_same_thresholds():
    steps = decision_steps(selector_env(), horizon_days=400)
    fixed = {**selector_defaults(), "min_rsi_14d": None}
    grid = selector_heatmap(
        steps,
        x_param="min_vrp_30d",
        y_param="max_adx_14d",
        x=Axis(0.0, 2.5, 4),
        y=Axis(20.0, 10.0, 3),
        thresholds=fixed,
    )
    for j, y_value in enumerate(grid.y_labels):
        for i, x_value in enumerate(grid.x_labels):
            scan = selector_frequency_scan(
                steps,
                param="min_vrp_30d",
                axis=Axis(x_value, 1.0, 1),
                thresholds={**fixed, "max_adx_14d": y_value},
            )
            assert scan.allowed_steps == [grid.counts[j, i]]
            assert scan.allowed_pct == [grid.grid[j][i]]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"x_param": "min_vrp_30d", "y_param": "min_vrp_30d"}, "y_param"),
        ({"x_param": "min_vrp", "y_param": "max_adx_14d"}, "x_param"),
    ],
)
def test_a_selector_heatmap_rejects_bad_threshold_names(kwargs, field):
    steps = decision_steps(selector_env(), horizon_days=10)
    with pytest.raises(ParameterError) as err:
        selector_heatmap(
            steps, x=Axis(0, 1, 2), y=Axis(0, 1, 2), thresholds=selector_defaults(), **kwargs
        )
    assert err.value.field == field


def test_a_sweep_beyond_the_thresholds_bounds_names_the_step():
    steps = decision_steps(selector_env(), horizon_days=10)
    with pytest.raises(ParameterError) as err:
        selector_frequency_scan(
            steps, param="min_iv_rank_6m", axis=Axis(50.0, 10.0, 10), thresholds={}
        )
    assert err.value.field == "step" and "100" in err.value.message


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
