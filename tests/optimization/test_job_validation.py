"""Bad input to job creation: a clear error naming the field, and nothing written."""

import pytest

from apps.optimization.models import JobChunk, OptimizationJob
from apps.optimization.services.jobs import job_create
from backtestlab.errors import ApplicationError
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def assert_refused(user, datasets, field_part, message_part, **kwargs):
    grid = kwargs.pop("grid", None)
    with pytest.raises(ApplicationError) as err:
        make_job(user, datasets, grid=grid, **kwargs)
    assert field_part in (err.value.field or ""), err.value.as_dict()
    assert message_part in err.value.message, err.value.message
    assert OptimizationJob.objects.count() == 0
    assert JobChunk.objects.count() == 0
    return err.value


@pytest.mark.parametrize(
    "grid, field, message",
    [
        ({"fsat": [5]}, "parameter_grid.fsat", "did you mean 'fast'"),
        ({"fast": []}, "parameter_grid.fast", "at least one value"),
        ({"fast": [float("nan")]}, "parameter_grid.fast", "fast"),
        ({"fast": [float("inf")]}, "parameter_grid.fast", "fast"),
        ({"sl_pct": [1e309]}, "parameter_grid.sl_pct", "sl_pct"),
        ({"fast": ["ten"]}, "parameter_grid.fast", "fast"),
        ({"fast": [True]}, "parameter_grid.fast", "fast"),
        ({"sl_pct": [-1]}, "parameter_grid.sl_pct", "between"),
        ({"fast": {"start": 5, "stop": 50, "step": 0}}, "parameter_grid.fast", "step"),
        ({"fast": {"start": 5, "stop": 50, "step": -5}}, "parameter_grid.fast", "step"),
        ({"fast": {"start": 50, "stop": 5, "step": 5}}, "parameter_grid.fast", "start"),
    ],
)
def test_a_bad_grid_is_refused(alice, datasets, grid, field, message):
    assert_refused(alice, datasets, field, message, grid=grid)


def test_an_empty_grid_is_refused(alice, datasets):
    with pytest.raises(ApplicationError) as err:
        from apps.optimization.services.jobs import job_create

        job_create(
            user=alice, name="x", strategy="sma_cross", dataset_ids=[datasets[0].id],
            parameter_grid={},
        )  # fmt: skip
    assert err.value.field == "parameter_grid" and "known: fast" in err.value.message
    assert OptimizationJob.objects.count() == 0


def test_an_unknown_strategy_gets_a_suggestion(alice, datasets):
    assert_refused(alice, datasets, "strategy", "did you mean 'sma_cross'", strategy="sma_crss")


def test_an_unknown_dataset_is_refused(alice, datasets):

    with pytest.raises(ApplicationError) as err:
        job_create(
            user=alice, name="x", strategy="sma_cross", dataset_ids=[987654],
            parameter_grid={"fast": [5]},
        )  # fmt: skip
    assert err.value.field == "datasets" and "987654" in err.value.message


def test_an_unknown_objective_lists_the_choices(alice, datasets):
    assert_refused(alice, datasets, "objective", "sharpe", objective="happiness")


def test_bad_costs_are_refused(alice, datasets):
    assert_refused(alice, datasets, "costs", "finite", costs={"commission_pct": float("nan")})
    assert_refused(alice, datasets, "costs", "unknown cost", costs={"fee": 1})


def test_dates_in_the_wrong_order_are_refused(alice, datasets):
    assert_refused(
        alice, datasets, "date_from", "before", date_from="2023-02-01", date_to="2023-01-15"
    )


def test_a_grid_over_the_cap_is_refused_before_expansion(alice, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_COMBINATIONS": 1000}
    huge = {
        "fast": {"start": 2, "stop": 500, "step": 1},
        "slow": {"start": 3, "stop": 2000, "step": 1},
        "sl_pct": {"start": 0.1, "stop": 50, "step": 0.001},
        "rr": {"start": 0.1, "stop": 20, "step": 0.0001},
    }
    # ~10^15 combinations: the test could not finish if anything expanded the grid.
    err = assert_refused(alice, datasets, "parameter_grid", "cap", grid=huge)
    assert "cap of 500" in err.message  # 1000 runs shared by the 2 datasets


def test_the_cap_counts_runs_across_datasets(alice, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_COMBINATIONS": 15}
    make_job(alice, datasets[:1], grid={"fast": list(range(2, 14))}, name="12 on one")
    assert OptimizationJob.objects.count() == 1
    with pytest.raises(ApplicationError) as err:
        make_job(alice, datasets, grid={"fast": list(range(2, 14))})
    assert "shared by 2 datasets" in err.value.message
    assert OptimizationJob.objects.count() == 1


def test_a_strategy_refuses_datasets_of_a_timeframe_it_cannot_run(alice, datasets):
    err = assert_refused(
        alice, datasets, "datasets", "market_state runs on 1m candles only", strategy="market_state"
    )
    assert "make_synthetic --with-minutes" in err.message
