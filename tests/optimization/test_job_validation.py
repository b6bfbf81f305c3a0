"""Bad input to job creation: a clear error naming the field, and nothing written."""

import datetime as dt

import pytest

from apps.optimization.models import JobChunk, OptimizationJob
from apps.optimization.services.jobs import job_create
from apps.optimization.services.validation import (
    DESCRIPTION_MAX_LENGTH,
    costs_validate,
    datasets_validate,
    date_validate,
    description_validate,
    grid_validate,
    int_option,
    name_option,
    objective_validate,
)
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


# --- each check at its edges (the grid_service mutation target) ------------------------------


def refusal(call, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as err:
        call(*args, **kwargs)
    return err.value


def test_costs_default_to_the_engines_and_are_bounded_inclusively():
    assert costs_validate(None) == {
        "commission_pct": 0.1, "slippage_pct": 0.05, "initial_equity": 10_000.0,
    }  # fmt: skip
    edges = costs_validate({"commission_pct": 0, "slippage_pct": 5, "initial_equity": 1})
    assert edges == {"commission_pct": 0.0, "slippage_pct": 5.0, "initial_equity": 1.0}
    assert all(type(v) is float for v in edges.values())
    top = costs_validate({"commission_pct": 5.0, "initial_equity": 1e12})
    assert top == {"commission_pct": 5.0, "slippage_pct": 0.05, "initial_equity": 1e12}


@pytest.mark.parametrize(
    "costs, field, message",
    [
        ({"commission_pct": 5.0001}, "costs.commission_pct",
         "costs.commission_pct must be between 0 and 5, got 5.0001"),
        ({"slippage_pct": -0.01}, "costs.slippage_pct",
         "costs.slippage_pct must be between 0 and 5, got -0.01"),
        ({"initial_equity": 0.5}, "costs.initial_equity",
         "costs.initial_equity must be between 1 and 1e+12, got 0.5"),
        ({"slippage_pct": True}, "costs.slippage_pct",
         "costs.slippage_pct must be a number, got True"),
        ({"commission_pct": "0.1"}, "costs.commission_pct",
         "costs.commission_pct must be a number, got '0.1'"),
        ({"initial_equity": float("inf")}, "costs.initial_equity",
         "costs.initial_equity must be a finite number, got inf"),
        ([0.1], "costs",
         "costs must be an object like {'commission_pct': 0.1, 'slippage_pct': 0.05}"),
        ({"fee": 1, "commission_pct": 0.1}, "costs",
         "unknown cost field 'fee'; known: commission_pct, slippage_pct, initial_equity"),
        ({"tax": 1, "fee": 1}, "costs",  # the first in alphabetical order is named
         "unknown cost field 'fee'; known: commission_pct, slippage_pct, initial_equity"),
        ({"initial_equity": 1e12 + 1}, "costs.initial_equity",
         "costs.initial_equity must be between 1 and 1e+12, got 1000000000001.0"),
    ],
)  # fmt: skip
def test_bad_costs_are_explained(costs, field, message):

    err = refusal(costs_validate, costs)
    assert (err.field, err.message) == (field, message)


def test_only_objective_metrics_are_objectives():

    assert objective_validate("profit_factor") == "profit_factor"
    for bad in ("n_trades", 5, None):
        err = refusal(objective_validate, bad)
        assert err.field == "objective"
        assert err.message == (
            f"unknown objective {bad!r}; choose one of total_return_pct, cagr_pct, sharpe, "
            "sortino, calmar, max_drawdown_pct, win_rate, profit_factor, expectancy_pct"
        )


@pytest.mark.parametrize(
    "dataset_ids, message",
    [
        ([], "datasets must be a non-empty list of dataset ids, e.g. [1, 2]"),
        ("1", "datasets must be a non-empty list of dataset ids, e.g. [1, 2]"),
        ([True], "datasets must contain integer ids, got True"),
        ([1.0], "datasets must contain integer ids, got 1.0"),
        ([0], "dataset 0 does not exist; list the datasets at /api/datasets/"),
        ([2**63],
         "dataset 9223372036854775808 does not exist; list the datasets at /api/datasets/"),
        ([2**63 - 1],
         "dataset 9223372036854775807 does not exist; list the datasets at /api/datasets/"),
        # past any database integer: refused before the query (which could not hold it)
        ([2**64],
         "dataset 18446744073709551616 does not exist; list the datasets at /api/datasets/"),
        ([10**6, 10**6 + 1],  # the first missing one is named
         "dataset 1000000 does not exist; list the datasets at /api/datasets/"),
    ],
)  # fmt: skip
def test_bad_dataset_lists_are_explained(alice, datasets, dataset_ids, message):
    err = refusal(
        job_create, user=alice, name="x", strategy="sma_cross",
        dataset_ids=dataset_ids, parameter_grid={"fast": [5]},
    )  # fmt: skip
    assert (err.field, err.message) == ("datasets", message)
    assert OptimizationJob.objects.count() == 0


def test_the_smallest_and_the_largest_dataset_ids_are_valid_ones(alice, datasets):
    from apps.market.models import Dataset

    largest = 2**63 - 1  # a 64-bit integer column's
    Dataset.objects.filter(id=datasets[1].id).update(id=largest)
    Dataset.objects.filter(id=datasets[0].id).update(id=1)  # ids of earlier tests are not reused
    job = make_job(alice, list(Dataset.objects.filter(id__in=[1, largest]).order_by("id")))
    assert list(job.datasets.order_by("id").values_list("id", flat=True)) == [1, largest]


def test_a_dataset_named_twice_is_run_once(alice, datasets):
    job = make_job(alice, [datasets[0], datasets[1], datasets[0]])
    assert sorted(job.datasets.values_list("id", flat=True)) == [datasets[0].id, datasets[1].id]
    assert job.total_runs == 12 * 2 and job.chunks.count() == 2


def test_a_dataset_of_another_kind_is_refused(alice, datasets):
    from apps.market.models import Dataset

    funding = Dataset.objects.get(kind=Dataset.Kind.FUNDING, symbol="BTC")
    err = assert_refused(alice, [datasets[0], funding], "datasets", "holds funding")
    assert err.message == (
        f"dataset {funding.id} ({funding.name}) holds funding, but this strategy needs candles data"
    )


def test_a_strategy_needing_funding_refuses_candles_without_their_funding(alice, datasets):
    from apps.market.models import Dataset

    Dataset.objects.filter(kind=Dataset.Kind.FUNDING, symbol="ETH").delete()
    err = assert_refused(
        alice, datasets, "datasets", "has no funding series for ETH",
        strategy="funding_carry", grid={"min_funding_rate": [0.0003]},
    )  # fmt: skip
    assert err.message.startswith(f"dataset {datasets[1].id} ({datasets[1].name}) has no funding")
    make_job(alice, datasets[:1], strategy="funding_carry", grid={"min_funding_rate": [0.0003]})


def test_grid_validation_names_an_unknown_strategy_and_a_grid_that_is_not_an_object():

    err = refusal(grid_validate, "sma_crss", {"fast": [5]})
    assert err.field == "strategy" and "did you mean 'sma_cross'" in err.message
    err = refusal(grid_validate, "sma_cross", [["fast", 5]])
    assert (err.field, err.message) == (
        "parameter_grid",
        "parameter_grid must name at least one parameter with its values; "
        "known: fast, slow, sl_pct, rr",
    )


def test_the_run_cap_is_shared_by_the_datasets(settings):

    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_COMBINATIONS": 3}
    # 3 runs over 2 datasets: 1 combination each (3 // 2); never less than one
    assert grid_validate("sma_cross", {"fast": [5]}, n_datasets=2)["fast"] == [5]
    assert grid_validate("sma_cross", {"fast": [5]}, n_datasets=5)["fast"] == [5]
    assert grid_validate("sma_cross", {"fast": [5, 6, 7]}, n_datasets=0)["fast"] == [
        5, 6, 7,
    ]  # fmt: skip
    err = refusal(grid_validate, "sma_cross", {"fast": [5, 6]}, n_datasets=2)
    assert (err.field, err.message) == (
        "parameter_grid",
        "parameter_grid: 2 combinations exceed the cap of 1; reduce the number of values per "
        "parameter (the cap of 3 runs is shared by 2 datasets)",
    )
    err = refusal(grid_validate, "sma_cross", {"fast": [5, 6, 7, 8]}, n_datasets=1)
    assert err.message == (
        "parameter_grid: 4 combinations exceed the cap of 3; reduce the number of values per "
        "parameter"
    )
    err = refusal(grid_validate, "sma_cross", {"fast": [1]}, n_datasets=2)
    assert (err.field, err.message) == (
        "parameter_grid.fast", "fast: fast must be between 2 and 500, got 1"
    )  # fmt: skip


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("2023-06-01", dt.datetime(2023, 6, 1, tzinfo=dt.UTC)),
        ("2023-06-01T12:30:00Z", dt.datetime(2023, 6, 1, 12, 30, tzinfo=dt.UTC)),
        ("2023-06-01T12:30:00+02:00", dt.datetime(2023, 6, 1, 10, 30, tzinfo=dt.UTC)),
        (dt.date(2023, 6, 1), dt.datetime(2023, 6, 1, tzinfo=dt.UTC)),
        (dt.datetime(2023, 6, 1, 8), dt.datetime(2023, 6, 1, 8, tzinfo=dt.UTC)),
    ],
)
def test_dates_are_read_as_utc_unless_they_say_otherwise(value, expected):

    parsed = date_validate("date_from", value)
    assert parsed == expected
    if expected is not None:
        assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    "value, message",
    [
        ("June 1st", "date_from must be an ISO-8601 date or datetime like 2023-06-01, "
                     "got 'June 1st'"),
        (20230601, "date_from must be an ISO-8601 date string"),
    ],
)  # fmt: skip
def test_a_bad_date_is_explained(value, message):
    from apps.optimization.services.validation import (
        date_validate,
    )

    err = refusal(date_validate, "date_from", value)
    assert (err.field, err.message) == ("date_from", message)


def test_each_dataset_refusal_names_the_first_wrong_one(alice, datasets):
    from apps.market.models import Dataset

    funding = list(Dataset.objects.filter(kind=Dataset.Kind.FUNDING).order_by("symbol"))
    environment = Dataset.objects.filter(kind=Dataset.Kind.ENVIRONMENT).first()
    err = assert_refused(alice, [datasets[0], funding[1], environment], "datasets", "holds")
    assert err.message == (
        f"dataset {funding[1].id} ({funding[1].name}) holds funding, "
        "but this strategy needs candles data"
    )


def test_a_strategy_of_another_data_kind_refuses_candles(alice, datasets):
    # options_selector reads "environment" datasets, which sort after "candles"
    err = assert_refused(
        alice, datasets[:1], "datasets", "holds candles", strategy="options_selector", grid={}
    )
    assert err.message == (
        f"dataset {datasets[0].id} ({datasets[0].name}) holds candles, "
        "but this strategy needs environment data"
    )


def test_the_template_form_check_names_an_unknown_strategy(datasets):
    err = refusal(datasets_validate, "sma_crss", [datasets[0].id])
    assert err.field == "strategy" and "did you mean 'sma_cross'" in err.message
    assert datasets_validate("sma_cross", [datasets[0].id]) == [datasets[0]]


def test_the_run_cap_is_for_one_dataset_by_default_and_never_shared_by_fewer_than_two(settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_COMBINATIONS": 3}
    assert grid_validate("sma_cross", {"fast": [5, 6, 7]})["fast"] == [5, 6, 7]
    err = refusal(grid_validate, "sma_cross", {"fast": [5, 6, 7, 8]}, n_datasets=0)
    assert err.message == (
        "parameter_grid: 4 combinations exceed the cap of 3; reduce the number of values per "
        "parameter"
    )
    # a parameter's own error is not about the cap, whatever the parameter is called
    err = refusal(grid_validate, "sma_cross", {"slow": [1]}, n_datasets=2)
    assert (err.field, err.message) == (
        "parameter_grid.slow", "slow: slow must be between 3 and 2000, got 1"
    )  # fmt: skip
    with pytest.raises(TypeError):  # keyword only: a count is never taken for something else
        grid_validate("sma_cross", {"fast": [5]}, 2)


def test_whole_number_options_are_bounded_inclusively():
    assert [int_option("n", v, 1, 50) for v in (1, 2, 49, 50)] == [1, 2, 49, 50]
    for bad in (0, 51, -1, True, 2.0, "3", None):
        err = refusal(int_option, "n_splits", bad, 1, 50)
        assert (err.field, err.message) == (
            "n_splits", f"n_splits must be an integer between 1 and 50, got {bad!r}"
        )  # fmt: skip


def test_a_name_is_optional_text():
    assert name_option(None) == ""
    assert name_option("") == "" and name_option("BTC sweep") == "BTC sweep"
    for bad in (5, ["x"]):
        err = refusal(name_option, bad)
        assert (err.field, err.message) == ("name", f"name must be a string, got {bad!r}")


def test_a_description_is_capped_at_its_length():
    assert DESCRIPTION_MAX_LENGTH == 2000
    longest = "x" * 2000
    assert description_validate(longest) == longest and description_validate("") == ""
    for length in (2001, 2002):
        err = refusal(description_validate, "x" * length)
        assert err.field == "description"
        assert err.message.startswith(f"description is {length:,} characters long; at most 2,000")
    err = refusal(description_validate, None)
    assert (err.field, err.message) == ("description", "description must be text")
