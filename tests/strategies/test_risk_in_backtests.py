"""Risk in backtests: a run's trades through its strategy's risk config (run detail + API)."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.market.models import Dataset
from apps.optimization.models import OptimizationRun
from apps.strategies.models import RiskConfig
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

OPEN = {"min_vrp_30d": [-50.0], "min_iv_rank_6m": [0.0], "max_adx_14d": [100.0],
        "min_rsi_14d": [0.0], "max_rsi_14d": [100.0]}  # fmt: skip


@pytest.fixture
def options_run(alice, datasets):
    env = Dataset.objects.get(kind=Dataset.Kind.ENVIRONMENT, symbol="BTC")
    job = make_job(
        alice, [env], strategy="options_selector", objective="total_return_pct",
        grid={"max_loss_pct": [0.5, 1.5], **OPEN},
    )  # fmt: skip
    run_all_chunks(job)
    return {
        r.params["max_loss_pct"]: r for r in OptimizationRun.objects.filter(job=job, n_trades__gt=0)
    }


def test_trades_over_the_per_trade_limit_are_vetoed_counted_and_listed(alice, options_run):
    api = APIClient()
    api.force_authenticate(alice)
    big = api.get(f"/api/runs/{options_run[1.5].id}/risk/").json()
    assert big["applicable"] and big["candidates"] > 0 and big["allowed"] == 0
    assert big["vetoed_by_reason"] == {"per_trade": big["candidates"]}
    assert big["vetoed_trades"][0]["reason"] == "per-trade risk 1.50% exceeds limit 1.00%"
    assert big["return_pct_with_risk"] == 0.0
    assert big["candidates"] == options_run[1.5].n_trades  # every trade of the run checked
    assert big["return_pct_without_risk"] == pytest.approx(options_run[1.5].total_return_pct)
    small = api.get(f"/api/runs/{options_run[0.5].id}/risk/").json()
    assert small["vetoed"] == 0 and small["allowed"] == small["candidates"]
    assert small["candidates"] == options_run[0.5].n_trades and small["vetoed_trades"] == []
    # nothing vetoed: the run's own return (its trades compounded), with risk or without
    assert small["return_pct_with_risk"] == pytest.approx(options_run[0.5].total_return_pct)
    assert small["return_pct_without_risk"] == small["return_pct_with_risk"]


def test_the_strategys_risk_config_is_used_and_shown_in_the_run_detail(client, alice, options_run):
    RiskConfig.objects.create(strategy="options_selector", max_risk_per_trade=Decimal("0.004"))
    run = options_run[0.5]
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{run.job_id}/runs/{run.id}/").content.decode()
    assert 'id="run-risk"' in html and 'id="run-vetoes"' in html
    assert "per-trade risk 0.50% exceeds limit 0.40%" in html


def test_strategies_without_a_max_loss_estimate_say_so(alice, datasets):
    job = make_job(alice, datasets[:1], grid={"fast": [5], "slow": [50]})
    run_all_chunks(job)
    api = APIClient()
    api.force_authenticate(alice)
    body = api.get(f"/api/runs/{job.runs.first().id}/risk/").json()
    assert body["applicable"] is False and "maximum loss" in body["reason"]
