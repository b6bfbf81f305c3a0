"""A team's own strategy, installed from examples/ (entry points), through a real worker.

The worker process loads the example package through the ``backtestlab.strategies`` entry
points at start-up like the web process does; the job's stored metrics equal a direct engine
run, so the worker really ran the team's code.
"""

from __future__ import annotations

import math

import pytest
from rest_framework.test import APIClient

from apps.market.selectors import dataset_market_data
from apps.optimization.models import JobStatus, OptimizationRun
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy, load_strategies
from backtestlab.engine.strategies.base import Costs

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_example_strategy_is_listed_and_its_job_runs_on_a_worker(
    alice, hourly_datasets, start_worker, wait_for_job, failure_report
):
    load_strategies()
    client = APIClient()
    client.force_authenticate(alice)
    listed = {s["key"]: s for s in client.get("/api/strategies/").json()}
    assert "rsi_reversion" in listed
    roles = {p["name"]: p["role"] for p in listed["rsi_reversion"]["parameters"]}
    assert roles["sl_pct"] == "exit" and roles["size_pct"] == "sizing"
    assert listed["rsi_reversion"]["constraints"] == ["oversold < exit_level"]

    start_worker("examples", concurrency=2)
    btc = hourly_datasets[0]
    r = client.post(
        "/api/jobs/",
        {
            "name": "integration: rsi reversion",
            "strategy": "rsi_reversion",
            "datasets": [btc.id],
            "parameter_grid": {
                "period": [7, 14],
                "oversold": [25, 30, 35],
                "sl_pct": [2, 4],
                "size_pct": [50, 100],
            },
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    job = wait_for_job(r.json()["id"], timeout=90)
    report = failure_report(job.id)
    assert job.status == JobStatus.SUCCEEDED, report
    assert job.total_runs == job.completed_runs == 24 and job.failed_runs == 0, report
    runs = OptimizationRun.objects.filter(job=job)
    assert runs.filter(n_trades__gt=0).count() >= 20
    strategy = get_strategy("rsi_reversion")
    ctx = strategy.prepare(dataset_market_data(btc))
    for run in runs.order_by("grid_index")[::5]:
        direct = compute(strategy.run(ctx, run.params, Costs()))
        assert run.n_trades == direct.n_trades
        assert (run.sharpe is None and math.isnan(direct.sharpe)) or run.sharpe == pytest.approx(
            direct.sharpe, rel=1e-12
        )
