"""Heatmap selector: golden cells on a 3×2×2 job, aggregations, fixed values, slices, errors."""

import pytest

from apps.optimization.models import JobStatus
from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from apps.optimization.selectors.slices import grid_strides
from backtestlab.errors import ApplicationError
from tests.results_data import (
    SEED_GRID,
    SEED_RR,
    SEED_SL,
    SEED_WIN_RATE,
    job_with_runs,
    seed_metrics,
)

pytestmark = pytest.mark.django_db


def win_rate(d, gi, params):
    """10·fast_i + 3·slow_i + sl_i on the first dataset, 100 minus that on the second."""
    f, s, sl = gi // 4, (gi // 2) % 2, gi % 2
    value = 10 * f + 3 * s + sl
    return {"win_rate": float(value if d == 0 else 100 - value), "sharpe": 0.1 * gi}


def heatmap(job, **query):
    return job_heatmap(job=job, options=heatmap_options(job, query))


def values(hm):
    return [[c and c["value"] for c in row] for row in hm.cells]


def runs(hm):
    return [[c and c["runs"] for c in row] for row in hm.cells]


@pytest.fixture
def job(alice, datasets):
    return job_with_runs(alice, datasets[:1], win_rate, objective="win_rate")


def test_it_defaults_to_the_first_two_varying_parameters_and_the_objective(job):
    hm = heatmap(job)
    assert (hm.options.y, hm.options.x) == ("fast", "slow")
    assert hm.options.metric == "win_rate" and hm.options.agg == "max"
    assert hm.y_values == [5, 10, 20] and hm.x_values == [30, 60]


def test_max_takes_the_best_over_the_other_parameters(job):
    hm = heatmap(job, x="slow", y="fast", agg="max")
    assert values(hm) == [[1, 4], [11, 14], [21, 24]]
    assert runs(hm) == [[2, 2], [2, 2], [2, 2]]
    assert hm.best == {"xi": 1, "yi": 2, "x": 60, "y": 20, "value": 24, "runs": 2}
    assert (hm.low, hm.high, hm.total_runs) == (1, 24, 12)


@pytest.mark.parametrize(
    "agg, expected",
    [
        ("min", [[0, 3], [10, 13], [20, 23]]),
        ("mean", [[0.5, 3.5], [10.5, 13.5], [20.5, 23.5]]),
        ("median", [[0.5, 3.5], [10.5, 13.5], [20.5, 23.5]]),
    ],
)
def test_min_mean_and_median(job, agg, expected):
    assert values(heatmap(job, x="slow", y="fast", agg=agg)) == expected


def test_a_fixed_value_replaces_the_aggregation(job):
    hm = heatmap(job, x="slow", y="fast", **{"fixed.sl_pct": "2"})
    assert values(hm) == [[1, 4], [11, 14], [21, 24]]
    assert runs(hm) == [[1, 1], [1, 1], [1, 1]]
    hm = heatmap(job, x="slow", y="fast", agg="mean", **{"fixed.sl_pct": "1.0"})
    assert values(hm) == [[0, 3], [10, 13], [20, 23]]
    assert hm.options.query(job)["fixed.sl_pct"] == "1"


def test_other_axes_work_too(job):
    hm = heatmap(job, x="sl_pct", y="slow", agg="max")
    assert values(hm) == [[20, 21], [23, 24]]
    assert runs(hm) == [[3, 3], [3, 3]]


def test_failed_runs_and_undefined_metrics_are_left_out_of_the_value(alice, datasets):
    def metrics(d, gi, params):
        if gi == 0:
            return None  # failed
        return {"win_rate": None if gi == 1 else float(gi)}

    job = job_with_runs(alice, datasets[:1], metrics, objective="win_rate")
    hm = heatmap(job, x="slow", y="fast", agg="mean")
    # cell (fast 5, slow 30) holds runs 0 (failed) and 1 (no win rate): one run, no value,
    # nothing to rank
    assert hm.cells[0][0] == {"value": None, "runs": 1, "ranked": 0}
    assert hm.cells[0][1] == {"value": 2.5, "runs": 2, "ranked": 2}


def test_the_best_cell_of_a_lower_is_better_metric_is_the_lowest(alice, datasets):
    job = job_with_runs(
        alice, datasets[:1], lambda d, gi, p: {"max_consec_losses": 10 - gi}, objective="sharpe"
    )
    hm = heatmap(job, x="slow", y="fast", metric="max_consec_losses")
    assert hm.options.agg == "min"
    assert hm.best["value"] == 10 - 11 and (hm.best["x"], hm.best["y"]) == (60, 20)


def test_ties_for_the_best_cell_go_to_the_first_in_reading_order(alice, datasets):
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"win_rate": 50.0})
    hm = heatmap(job, x="slow", y="fast", metric="win_rate")
    assert (hm.best["xi"], hm.best["yi"]) == (0, 0)


def test_a_job_over_two_datasets_shows_one_dataset_at_a_time(alice, datasets):
    job = job_with_runs(alice, datasets, win_rate, objective="win_rate")
    first, second = datasets
    # the default slice is the best run's: 100 - 0 on the second dataset
    hm = heatmap(job, x="slow", y="fast")
    assert hm.options.slice.dataset == second
    assert values(hm)[0] == [100, 97]
    hm = heatmap(job, x="slow", y="fast", dataset=str(first.id))
    assert values(hm)[2] == [21, 24] and hm.total_runs == 12


def test_the_seeds_example_on_smc_zones_win_rate_by_rr_target_vs_sl_buffer(alice, datasets):
    job = job_with_runs(
        alice, datasets[:1], seed_metrics, grid=SEED_GRID, strategy="smc_zones",
        objective="win_rate",
    )  # fmt: skip
    hm = heatmap(job)
    assert (hm.options.y, hm.options.x, hm.options.metric) == (
        "rr_target", "sl_buffer_pct", "win_rate",
    )  # fmt: skip
    assert hm.y_values == SEED_RR and hm.x_values == SEED_SL
    assert hm.options.slice.group == {"pattern_type": "order_block"}  # where the best run is
    hm = heatmap(job, group="imbalance")
    assert values(hm) == SEED_WIN_RATE
    assert runs(hm) == [[1] * 4] * 4
    assert (hm.best["y"], hm.best["x"], hm.best["value"]) == (2.0, 10, 55)
    other = heatmap(job, group="order_block")
    assert other.best["value"] == 100 - 28


def test_a_group_parameter_can_be_an_axis(alice, datasets):
    job = job_with_runs(
        alice, datasets[:1], seed_metrics, grid=SEED_GRID, strategy="smc_zones",
    )  # fmt: skip
    hm = heatmap(job, y="pattern_type", x="rr_target", metric="win_rate", agg="max")
    assert values(hm) == [[52, 55, 53, 51], [58, 62, 68, 72]]


@pytest.mark.parametrize(
    "query, field, words",
    [
        ({"x": "fast", "y": "fast"}, "x", "two different"),
        ({"x": "fsat"}, "x", "fast, slow, sl_pct, rr"),
        ({"metric": "wins"}, "metric", "win_rate"),
        ({"agg": "sum"}, "agg", "max, min, mean, median"),
        ({"x": "slow", "y": "fast", "fixed.slow": "30"}, "fixed.slow", "axis"),
        ({"fixed.sl_pct": "3"}, "fixed.sl_pct", "use one of 1, 2"),
        ({"fixed.nope": "3"}, "fixed.nope", "fixed.<one of"),
        ({"dataset": "999"}, "dataset", "one of this job's datasets"),
        ({"group": "imbalance"}, "group", "no groups"),
        ({"colour": "red"}, "colour", "allowed: x, y, metric"),
    ],
)
def test_bad_choices_name_what_is_allowed(job, query, field, words):
    with pytest.raises(ApplicationError) as exc:
        heatmap_options(job, query)
    assert exc.value.field == field and words in exc.value.message


def test_a_job_without_runs_gives_empty_cells(alice, datasets):
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: None, status=JobStatus.FAILED)
    hm = heatmap(job)
    assert hm.best is None and hm.total_runs == 0
    assert all(c is None for row in hm.cells for c in row)


def test_grid_positions_match_the_engines_decoding():
    from backtestlab.engine import sweep

    grid = {"a": [1, 2, 3], "b": [True, False], "c": ["x", "y", "z", "w"]}
    strides = grid_strides(grid)
    for gi in range(sweep.grid_size(grid)):
        params = sweep.params_at(grid, gi)
        for name, vals in grid.items():
            assert vals[(gi // strides[name]) % len(vals)] == params[name]
