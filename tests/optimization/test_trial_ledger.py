"""The trial ledger: every parameter set of a strategy evaluated on a dataset, by any job,
counted once; the deflated Sharpe ratio deflates for all of them."""

import importlib

import pytest
from django.apps import apps as django_apps

from apps.market.selectors import dataset_market_data
from apps.optimization.models import Trial
from apps.optimization.selectors.jobs import trials_count
from apps.optimization.services.monte_carlo import monte_carlo_job_create
from apps.optimization.services.walk_forward import walk_forward_job_from_sweep
from backtestlab.engine import sweep as sweep_lib
from backtestlab.engine.evaluation import overfitting
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.timeframes import bars_per_year
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

GRID = {"fast": [5, 10], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}
WIDER = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}


def swept(alice, datasets, grid):
    job = make_job(alice, datasets, grid=grid)
    run_all_chunks(job)
    assert job.status == "succeeded", job.error
    return job


def test_every_sweep_adds_its_new_parameter_sets_and_the_dsr_deflates_for_them(alice, datasets):
    btc, eth = datasets
    first = swept(alice, [btc], GRID)
    assert trials_count(strategy="sma_cross", dataset_id=btc.id) == 8
    assert trials_count(strategy="sma_cross", dataset_id=eth.id) == 0
    figures = first.evaluation["overfitting"]
    assert (figures["n_trials"], figures["job_trials"]) == (8, 8)
    # The same sweep again: the same 8 parameter sets on the same data, no new trial.
    again = swept(alice, [btc], GRID)
    assert trials_count(strategy="sma_cross", dataset_id=btc.id) == 8
    assert again.evaluation["overfitting"]["n_trials"] == 8
    # A wider sweep of the same strategy on the same data: 4 new sets, 12 trials in all.
    second = swept(alice, [btc], WIDER)
    assert trials_count(strategy="sma_cross", dataset_id=btc.id) == 12
    figures = second.evaluation["overfitting"]
    assert (figures["n_trials"], figures["job_trials"]) == (12, 12)
    assert Trial.objects.filter(dataset=btc, job=first).count() == 8  # first job kept
    # The DSR is the engine's on this job's returns, deflated for the ledger's 12 trials.
    runs = list(second.runs.order_by("grid_index"))
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(dataset_market_data(btc))
    matrix, per = overfitting.returns_matrix(
        strategy, ctx, [r.params for r in runs], Costs(**second.costs)
    )
    col = [r.id for r in runs].index(second.best_run_id)
    sharpes = overfitting.per_period_sharpes(matrix)
    ppy = bars_per_year("1h") / per
    dsr12 = overfitting.deflated_sharpe_ratio(
        matrix[:, col], sharpes, periods_per_year=ppy, n_trials=12
    )
    assert figures["deflated_sharpe"]["dsr"] == pytest.approx(dsr12.dsr)
    # More trials on the same data: a lower deflated Sharpe for the same best run.
    dsr30 = overfitting.deflated_sharpe_ratio(
        matrix[:, col], sharpes, periods_per_year=ppy, n_trials=30
    )
    assert dsr30.dsr < dsr12.dsr and dsr30.expected_max_sharpe > dsr12.expected_max_sharpe


def test_a_walk_forward_counts_its_whole_grid_on_every_dataset(alice, datasets):
    sweep = swept(alice, datasets, GRID)
    wf = walk_forward_job_from_sweep(user=alice, job=sweep, n_splits=2)
    Trial.objects.all().delete()  # only the walk-forward's
    run_all_chunks(wf)
    for d in datasets:
        assert trials_count(strategy="sma_cross", dataset_id=d.id) == 8
    hashes = {sweep_lib.param_hash(p) for p in sweep_lib.params_range(GRID, 0, 8)}
    assert set(Trial.objects.values_list("param_hash", flat=True)) == hashes


def test_a_monte_carlo_job_adds_no_trial(alice, datasets):
    sweep = swept(alice, datasets[:1], GRID)
    before = Trial.objects.count()
    job = monte_carlo_job_create(user=alice, run=sweep.best_run, sims=100, seed=1)
    run_all_chunks(job)
    assert Trial.objects.count() == before == 8


def test_the_migration_backfills_the_ledger_from_earlier_runs(alice, datasets):
    job = swept(alice, datasets, GRID)
    swept(alice, datasets[:1], WIDER)  # overlapping sets: counted once
    Trial.objects.all().delete()
    migration = importlib.import_module("apps.optimization.migrations.0010_trial_ledger")
    migration.backfill(django_apps, None)
    assert trials_count(strategy="sma_cross", dataset_id=datasets[0].id) == 12
    assert trials_count(strategy="sma_cross", dataset_id=datasets[1].id) == 8
    assert Trial.objects.filter(job=job).count() == 16  # the first job first
