"""smc_zones and market_state jobs through a real celery worker on PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_best_per_dataset
from apps.optimization.services.jobs import job_create
from backtestlab.engine.smc_zones import PATTERN_TYPES
from backtestlab.engine.strategies.smc import QUICK_PARAMETER_GRID
from backtestlab.errors import ApplicationError

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_smc_job_spans_symbols_timeframes_and_patterns_with_best_per_pattern(
    alice, start_worker, wait_for_job, failure_report
):
    synthetic_universe_create(days=120, timeframes=("1h", "4h"))
    datasets = list(Dataset.objects.filter(kind=Dataset.Kind.CANDLES).order_by("id"))
    assert {(d.symbol, d.timeframe) for d in datasets} == {
        (s, t) for s in ("BTC", "ETH") for t in ("1h", "4h")
    }
    start_worker("smc", concurrency=2)
    job = job_create(
        user=alice,
        name="integration: smc quick grid",
        strategy="smc_zones",
        dataset_ids=[d.id for d in datasets],
        parameter_grid={**QUICK_PARAMETER_GRID, "pattern_type": list(PATTERN_TYPES)},
        objective="total_return_pct",
        min_trades=1,  # 120 days of 4h bars: few zones
    )
    assert job.total_runs == 4 * 3 * 6

    job = wait_for_job(job.id, timeout=60)

    report = failure_report(job.id)
    assert job.status == JobStatus.SUCCEEDED, report
    assert job.completed_runs == 72 and job.failed_runs == 0, report
    runs = OptimizationRun.objects.filter(job=job)
    assert runs.filter(n_trades__gt=0).count() > 60
    best = job_best_per_dataset(job=job)
    pairs = [(r.dataset_id, r.params["pattern_type"]) for r in best]
    assert sorted(pairs) == sorted((d.id, p) for d in datasets for p in PATTERN_TYPES)
    for run in best:  # each is the best of its (dataset, pattern) group
        group = runs.filter(
            dataset_id=run.dataset_id, params__pattern_type=run.params["pattern_type"],
            n_trades__gte=1,
        )  # fmt: skip
        assert run.total_return_pct == max(group.values_list("total_return_pct", flat=True))
    summary = job.best_params["per_dataset"]
    assert len(summary) == 12
    assert {(s["symbol"], s["timeframe"], s["params"]["pattern_type"]) for s in summary} == {
        (s, t, p) for s in ("BTC", "ETH") for t in ("1h", "4h") for p in PATTERN_TYPES
    }


def test_a_market_state_job_runs_on_minute_candles_and_refuses_hourly_ones(
    alice, start_worker, wait_for_job, failure_report
):
    synthetic_universe_create(symbols=("BTC",), days=30, timeframes=("1h",), with_minutes=True)
    minutes = Dataset.objects.get(kind=Dataset.Kind.CANDLES, timeframe="1m")
    hourly = Dataset.objects.get(kind=Dataset.Kind.CANDLES, timeframe="1h")
    start_worker("ms", concurrency=2)
    job = job_create(
        user=alice,
        name="integration: market state",
        strategy="market_state",
        dataset_ids=[minutes.id],
        parameter_grid={
            "poc_distance_threshold": [0.25, 0.5, 1.5],
            "allow_balance_trades": [False, True],
        },
    )
    with pytest.raises(ApplicationError, match="runs on 1m candles only"):
        job_create(
            user=alice,
            name="integration: market state on hourly candles",
            strategy="market_state",
            dataset_ids=[hourly.id],
            parameter_grid={"poc_distance_threshold": [0.5]},
        )
    assert not OptimizationJob.objects.filter(name__contains="hourly").exists()

    job = wait_for_job(job.id, timeout=60)

    assert job.status == JobStatus.SUCCEEDED, failure_report(job.id)
    assert job.completed_runs == 6 and job.failed_runs == 0
    trades = {
        (r.params["poc_distance_threshold"], r.params["allow_balance_trades"]): r.n_trades
        for r in OptimizationRun.objects.filter(job=job)
    }
    for thr in (0.25, 0.5, 1.5):
        assert trades[(thr, True)] > trades[(thr, False)]  # the seed plan's test 4
    assert trades[(0.25, False)] > trades[(1.5, False)]
