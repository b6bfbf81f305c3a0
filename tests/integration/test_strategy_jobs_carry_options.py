"""funding_carry and options_selector jobs through a real celery worker (PostgreSQL + Redis).

Small grids; each job finishes in seconds. The stored metrics equal a direct engine run on
the same data (dataset + its companion series), so the worker really ran these strategies.
"""

from __future__ import annotations

import math

import pytest

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion, dataset_market_data
from apps.optimization.models import JobStatus, OptimizationRun
from apps.optimization.services.jobs import job_create
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs

pytestmark = pytest.mark.django_db(transaction=True)


def _assert_succeeded(job, report, total):
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, report
    assert job.total_runs == job.completed_runs == total, report
    assert job.failed_runs == 0
    assert job.best_params and job.best_params["overall"]["params"]


def _direct(strategy_key, run: OptimizationRun):
    strategy = get_strategy(strategy_key)
    companions = {
        kind: dataset_market_data(dataset_companion(run.dataset, kind))
        for kind in strategy.companion_kinds
    }
    ctx = strategy.prepare(dataset_market_data(run.dataset), companions)
    return compute(strategy.run(ctx, run.params, Costs()))


def _same(stored, direct):
    return (stored is None and math.isnan(direct)) or stored == pytest.approx(direct, rel=1e-12)


def test_a_funding_carry_job_runs_both_modes_through_a_worker(
    alice, hourly_datasets, start_worker, wait_for_job, failure_report
):
    start_worker("carry", concurrency=2)
    btc = hourly_datasets[0]
    job = job_create(
        user=alice,
        name="integration: funding carry",
        strategy="funding_carry",
        dataset_ids=[btc.id],
        parameter_grid={
            "strategy_mode": ["simple", "composite"],
            "min_funding_rate": [0.00015, 0.0002, 0.0003],
            "entry_threshold": [0.45, 0.5],
        },
        min_trades=1,  # a year of funding-driven holds: a handful of trades
    )
    job = wait_for_job(job.id, timeout=60)
    _assert_succeeded(job, failure_report(job.id), 12)
    runs = OptimizationRun.objects.filter(job=job)
    assert runs.filter(n_trades__gt=0).exists()
    for run in runs.order_by("grid_index")[::5]:
        direct = _direct("funding_carry", run)
        assert _same(run.sharpe, direct.sharpe) and run.n_trades == direct.n_trades


def test_an_options_selector_job_runs_on_both_environments(
    alice, hourly_datasets, start_worker, wait_for_job, failure_report
):
    start_worker("options", concurrency=2)
    envs = list(Dataset.objects.filter(kind=Dataset.Kind.ENVIRONMENT).order_by("symbol"))
    assert [e.symbol for e in envs] == ["BTC", "ETH"]
    job = job_create(
        user=alice,
        name="integration: options selector",
        strategy="options_selector",
        dataset_ids=[e.id for e in envs],
        parameter_grid={
            "holding_days": [5, 7],
            "min_vrp_30d": [0, 5],
            "max_adx_14d": [25, 40],
        },
        objective="total_return_pct",
        min_trades=1,  # a year of multi-day holds: a few dozen trades at most
    )
    job = wait_for_job(job.id, timeout=60)
    _assert_succeeded(job, failure_report(job.id), 16)
    runs = OptimizationRun.objects.filter(job=job)
    assert runs.filter(n_trades__gt=0).count() >= 8
    # per environment: its run with the highest total return (ties: lowest id) of those that
    # traded at least once
    expected = [
        runs.filter(dataset=e, total_return_pct__isnull=False, n_trades__gte=1)
        .order_by("-total_return_pct", "id")
        .first()
        .id
        for e in envs
    ]
    assert [b["run_id"] for b in job.best_params["per_dataset"]] == expected
    assert [b["symbol"] for b in job.best_params["per_dataset"]] == ["BTC", "ETH"]
    for run in runs.order_by("grid_index")[::3]:
        direct = _direct("options_selector", run)
        assert _same(run.total_return_pct, direct.total_return_pct)
        assert run.n_trades == direct.n_trades
