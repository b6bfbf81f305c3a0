"""Best table (ordering, ties, slices, production beside it), sensitivity, run detail, export."""

import json

import numpy as np
import pytest

from apps.market.selectors import dataset_market_data
from apps.optimization import gateway
from apps.optimization.selectors.export import job_export_csv_lines, job_export_json_chunks
from apps.optimization.selectors.runs import downsample_indices, run_backtest_detail
from apps.optimization.selectors.sensitivity import job_sensitivity
from apps.strategies.models import StrategyConfig
from apps.strategies.selectors.best_table import improvement_pct, job_best_table, production_metrics
from apps.strategies.selectors.configs import strategy_config_current
from backtestlab.engine.metrics import METRIC_NAMES, compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from tests.factories import make_job, run_all_chunks
from tests.results_data import SEED_GRID, job_with_runs, seed_metrics

pytestmark = pytest.mark.django_db


def test_the_best_table_orders_by_the_objective_and_breaks_ties_by_run_id(alice, datasets):
    sharpe = [1.0, 3.0, 2.0, 3.0, None, 0.5, 3.0, 2.0, 1.0, 1.0, 0.0, -1.0]
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": sharpe[gi]})
    (section,) = job_best_table(job=job, limit=5)
    got = [(r["run"].grid_index, r["value"]) for r in section["rows"]]
    assert got == [(1, 3.0), (3, 3.0), (6, 3.0), (2, 2.0), (7, 2.0)]
    assert section["production"] is None
    assert all(r["improvement_pct"] is None for r in section["rows"])


def test_the_best_table_has_one_section_per_dataset_and_group(alice, datasets):
    job = job_with_runs(
        alice, datasets, seed_metrics, grid=SEED_GRID, strategy="smc_zones", objective="win_rate"
    )
    table = job_best_table(job=job, limit=3)
    assert [(s["slice"].dataset.symbol, s["slice"].group_label) for s in table] == [
        ("BTC", "imbalance"), ("BTC", "order_block"), ("ETH", "imbalance"), ("ETH", "order_block"),
    ]  # fmt: skip
    imbalance = table[0]["rows"]
    assert [r["value"] for r in imbalance] == [55, 53, 52]
    assert {r["run"].params["pattern_type"] for r in imbalance} == {"imbalance"}
    assert [r["value"] for r in table[1]["rows"]] == [72, 68, 62]


def test_the_current_production_config_is_the_highest_version(alice):
    assert strategy_config_current("sma_cross", "BTC", "1h") is None
    for v in (1, 3, 2):
        StrategyConfig.objects.create(
            strategy="sma_cross", symbol="BTC", timeframe="1h", version=v, params={"fast": v}
        )
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", pattern="x", version=9, params={}
    )
    assert strategy_config_current("sma_cross", "BTC", "1h").version == 3
    assert strategy_config_current("sma_cross", "BTC", "1h", "x").version == 9


def engine_metrics(job, dataset, params):
    strategy = get_strategy(job.strategy)
    ctx = strategy.prepare(dataset_market_data(dataset))
    full = strategy.parameter_space().validate_params(params)
    return compute(strategy.run(ctx, full, Costs(**job.costs))).as_dict()


def test_production_parameters_are_measured_on_the_same_data_and_compared(alice, datasets):
    job = make_job(alice, datasets[:1], objective="total_return_pct")
    run_all_chunks(job)
    params = {"fast": 10, "slow": 60, "sl_pct": 2.0}
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1, params=params
    )
    (section,) = job_best_table(job=job, limit=3)
    production = section["production"]
    expected = engine_metrics(job, datasets[0], params)["total_return_pct"]
    assert production["version"] == 1 and np.isclose(production["value"], expected, rtol=1e-9)
    for row in section["rows"]:
        want = (row["value"] - expected) / abs(expected) * 100
        assert np.isclose(row["improvement_pct"], want, rtol=1e-9)


def test_production_metrics_are_cached_per_job_and_config_version(alice, datasets, monkeypatch):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    config = StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1, params={"fast": 7}
    )
    first = production_metrics(job, datasets[0], config)
    monkeypatch.setattr(gateway, "compute", lambda *a: pytest.fail("recomputed"))
    assert production_metrics(job, datasets[0], config) is first


def test_invalid_production_parameters_are_reported_not_raised(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=4, params={"fats": 7}
    )
    (section,) = job_best_table(job=job)
    assert "invalid parameters" in section["production"]["error"]
    assert section["production"]["value"] is None


def test_improvement_respects_the_metrics_direction():
    assert improvement_pct(12.0, 10.0, "sharpe") == pytest.approx(20.0)
    assert improvement_pct(8.0, -10.0, "total_return_pct") == pytest.approx(180.0)
    assert improvement_pct(2.0, 4.0, "max_consec_losses") == pytest.approx(50.0)
    assert improvement_pct(2.0, 0.0, "sharpe") is None


def test_sensitivity_slices_through_the_best_run(alice, datasets):
    def metrics(d, gi, params):
        f, s, sl = gi // 4, (gi // 2) % 2, gi % 2
        return {"win_rate": float(10 * f + 3 * s + sl), "sharpe": 0.1 * gi}

    job = job_with_runs(alice, datasets[:1], metrics, objective="win_rate")
    data = job_sensitivity(job=job)
    assert data["run"]["params"] == {"fast": 20, "slow": 60, "sl_pct": 2.0, "rr": 2.0}
    by_name = {p["name"]: p for p in data["parameters"]}
    assert list(by_name) == ["fast", "slow", "sl_pct"]  # rr has one value
    assert [pt["metric"] for pt in by_name["fast"]["points"]] == [4, 14, 24]
    assert [pt["is_run"] for pt in by_name["fast"]["points"]] == [False, False, True]
    assert [pt["metric"] for pt in by_name["slow"]["points"]] == [21, 24]
    assert [pt["metric"] for pt in by_name["sl_pct"]["points"]] == [23, 24]
    assert by_name["fast"]["neighbour_drop_pct"] == pytest.approx(100 * 10 / 24)
    other = job_sensitivity(job=job, metric="sharpe")
    fast = [pt["metric"] for pt in {p["name"]: p for p in other["parameters"]}["fast"]["points"]]
    assert np.allclose(fast, [0.3, 0.7, 1.1])


def test_sensitivity_of_a_job_without_runs_is_empty(alice, datasets):
    job = make_job(alice, datasets[:1])
    assert job_sensitivity(job=job)["run"] is None


def test_run_detail_recomputes_the_stored_metrics(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    run = job.runs.order_by("-n_trades").first()
    detail = run_backtest_detail(run, max_points=500)
    for name in METRIC_NAMES:
        stored = getattr(run, name)
        if stored is None:
            assert detail["metrics"][name] is None
        else:
            assert np.isclose(detail["metrics"][name], stored, rtol=1e-9), name
    assert len(detail["trades"]) == run.n_trades
    trade = detail["trades"][0]
    assert set(trade) == {
        "entry_time", "exit_time", "entry_price", "exit_price", "side", "pnl_pct", "reason",
    }  # fmt: skip
    assert trade["side"] in ("long", "short")
    # closed trades only: a position open at the end is ``open_position``, not a trade
    assert {t["reason"] for t in detail["trades"]} <= {"signal", "stop", "target"}
    held = detail["open_position"]
    assert held is None or set(held) == {
        "entry_time", "mark_time", "entry_price", "mark_price", "side", "unrealised_pnl_pct",
    }  # fmt: skip
    curve = detail["curve"]
    assert len(curve["time"]) <= 500 < detail["bars"] == 1440
    assert min(curve["drawdown_pct"]) == pytest.approx(run.max_drawdown_pct, rel=1e-9)
    assert curve["equity"][-1] == pytest.approx(10_000 * (1 + run.total_return_pct / 100))


def test_downsampling_keeps_peaks_troughs_and_ends():
    rng = np.random.default_rng(1)
    equity = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50_000)))
    peak = np.maximum.accumulate(equity)
    drawdown = (equity / peak - 1) * 100
    idx = downsample_indices(equity, drawdown, 2000)
    assert len(idx) <= 2000 and idx[0] == 0 and idx[-1] == len(equity) - 1
    assert np.all(np.diff(idx) > 0)
    assert equity[idx].max() == equity.max() and drawdown[idx].min() == drawdown.min()
    assert len(downsample_indices(equity[:10], drawdown[:10], 2000)) == 10


def test_export_rows_have_params_in_grid_order_and_every_metric(alice, datasets):
    job = job_with_runs(alice, datasets, lambda d, gi, p: None if gi == 5 else {"sharpe": gi})
    lines = list(job_export_csv_lines(job))
    header = lines[0].strip().split(",")
    assert header == ["run_id", "dataset", "fast", "slow", "sl_pct", "rr", "status", *METRIC_NAMES]
    assert len(lines) == 1 + 24
    first = lines[1].strip().split(",")
    assert first[1] == datasets[0].name and first[2:7] == ["5", "30", "1.0", "2.0", "succeeded"]
    assert lines[6].strip().split(",")[6] == "failed"
    body = json.loads("".join(job_export_json_chunks(job)))
    assert len(body) == 24 and list(body[0]["params"]) == ["fast", "slow", "sl_pct", "rr"]
    assert body[0]["sharpe"] == 0 and body[5]["sharpe"] is None
