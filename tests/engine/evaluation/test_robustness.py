"""Walk-forward, stress, sensitivity and overfitting on the engine."""

import math

import numpy as np
import pytest

from backtestlab.engine import sweep
from backtestlab.engine.evaluation import overfitting, sensitivity, stress, walk_forward
from backtestlab.engine.metrics import compute_row
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.synthetic import synthetic_candles

GRID = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}


def test_windows_tile_the_end_of_the_data():
    folds = walk_forward.walk_forward_windows(1000, n_splits=5)
    tests = [f[1] for f in folds]
    assert tests[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(tests, tests[1:], strict=False))
    for (tr_lo, tr_hi), (te_lo, te_hi) in folds:
        assert tr_hi == te_lo
        assert (tr_hi - tr_lo) / (te_hi - te_lo) == pytest.approx(0.7 / 0.3, rel=0.05)
    anchored = walk_forward.walk_forward_windows(1000, n_splits=5, anchored=True)
    assert all(f[0][0] == 0 for f in anchored)
    with pytest.raises(ValueError, match="too few"):
        walk_forward.walk_forward_windows(10, n_splits=5)
    with pytest.raises(ValueError, match="must be 1"):
        walk_forward.walk_forward_windows(1000, train_frac=0.6, test_frac=0.3)


def test_walk_forward_picks_the_train_best_and_tests_it_out_of_sample(hourly_btc):
    strategy = get_strategy("sma_cross")
    params = sweep.params_range(GRID, 0, sweep.grid_size(GRID))
    res = walk_forward.walk_forward(strategy, hourly_btc, params, Costs(), n_splits=3)
    assert len(res.folds) == 3
    f = res.folds[0]
    (tr_lo, tr_hi), (te_lo, te_hi) = walk_forward.walk_forward_windows(len(hourly_btc),
                                                                       n_splits=3)[0]  # fmt: skip
    train = hourly_btc.slice_time(int(hourly_btc.ts[tr_lo]), int(hourly_btc.ts[tr_hi]))
    matrix = strategy.run_many(strategy.prepare(train), params, Costs())
    assert f.grid_index == walk_forward.best_row(matrix, "sharpe")
    assert f.params == params[f.grid_index]
    test = hourly_btc.slice_time(int(hourly_btc.ts[te_lo]), int(hourly_btc.ts[te_hi]))
    oos = compute_row(strategy.run(strategy.prepare(test), f.params, Costs()))
    assert f.oos_value == pytest.approx(oos[2], nan_ok=True)
    s = res.summary
    if s["is_mean"] > 0:
        assert s["wfe"] == pytest.approx(s["oos_mean"] / s["is_mean"])


def test_stress_scenarios_cost_more_and_delay_shifts_entries(hourly_btc):
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(hourly_btc)
    p = {"fast": 5, "slow": 30}
    res = stress.stress_test(strategy, ctx, p, Costs(), objective="total_return_pct")
    values = {r["name"]: r["value"] for r in res.rows}
    assert values["fees_x2"] < values["base"] and values["slippage_x2"] < values["base"]
    base = strategy.run(ctx, p, Costs())
    late = strategy.run(ctx, p, Costs(signal_delay_bars=1))
    assert np.array_equal(late.trades.entry_idx[:3], base.trades.entry_idx[:3] + 1)
    assert values["base"] > 0
    assert res.passed(min_fraction=-100, min_fraction_combined=-100)
    assert not res.passed(min_fraction=1.01, min_fraction_combined=0)


def test_a_delay_of_zero_changes_nothing_and_sweeps_refuse_a_delay(hourly_btc):
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(hourly_btc)
    a = strategy.run(ctx, {}, Costs())
    b = strategy.run(ctx, {}, Costs(signal_delay_bars=0))
    assert np.array_equal(a.equity, b.equity)
    with pytest.raises(ValueError, match="stress scenario"):
        sweep.run_params(strategy, ctx, [{}], Costs(signal_delay_bars=1))


@pytest.mark.parametrize("key", ["smc_zones", "market_state"])
def test_every_candle_strategy_honours_the_delay(key, hourly_btc):
    strategy = get_strategy(key)
    data, params = hourly_btc, {}
    if strategy.timeframes == ("1m",):
        data, params = synthetic_candles("BTC", days=10, seed=11), {"allow_balance_trades": True}
    ctx = strategy.prepare(data)
    base = strategy.run(ctx, params, Costs())
    late = strategy.run(ctx, params, Costs(signal_delay_bars=1))
    assert len(base.trades) > 0  # otherwise the comparison below proves nothing
    assert not np.array_equal(base.equity, late.equity)


def test_sensitivity_drop_on_a_peak_and_a_plateau():
    grid = {"a": [1, 2, 3], "b": [10, 20], "c": ["x", "y"]}
    v = np.ones(12)
    plateau = sensitivity.neighbourhood_drop(grid, v, best_index=0)
    assert plateau.drop == 0
    v = np.full(12, 0.5)
    best = int(np.ravel_multi_index((1, 0, 1), (3, 2, 2)))
    v[best] = 2.0
    peak = sensitivity.neighbourhood_drop(grid, v)
    assert peak.best_index == best
    assert len(peak.neighbour_indexes) == 3  # a-1, a+1, b+1; c is a choice
    assert peak.drop == pytest.approx((2.0 - 0.5) / 2.0)
    lone = sensitivity.neighbourhood_drop({"a": [1]}, np.array([1.0]))
    assert math.isnan(lone.drop)


def test_pbo_is_low_for_a_real_edge_and_high_for_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (800, 40))
    p_noise = overfitting.probability_of_backtest_overfitting(noise).pbo
    edge = noise.copy()
    edge[:, 3] += 0.004
    p_edge = overfitting.probability_of_backtest_overfitting(edge).pbo
    assert p_edge < 0.05 < 0.2 < p_noise < 0.8


def test_deflated_sharpe_penalises_many_trials():
    rng = np.random.default_rng(1)
    r = rng.normal(0.0005, 0.01, 1000)
    few = overfitting.deflated_sharpe_ratio(r, rng.normal(0, 0.01, 2))
    many = overfitting.deflated_sharpe_ratio(r, rng.normal(0, 0.03, 1000))
    assert 0 <= many.dsr < few.dsr <= 1
    assert many.n_trials == 1000 and many.expected_max_sharpe > 0


def test_returns_matrix_samples_long_data_into_coarser_periods(hourly_btc):
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(hourly_btc)
    params = [{"fast": 5, "slow": 30}, {"fast": 10, "slow": 60}]
    full, per = overfitting.returns_matrix(strategy, ctx, params, Costs())
    assert full.shape == (len(hourly_btc) - 1, 2) and per == 1.0
    coarse, per = overfitting.returns_matrix(strategy, ctx, params, Costs(), max_periods=100)
    assert coarse.shape == (100, 2) and per == pytest.approx((len(hourly_btc) - 1) / 100)
    assert np.prod(1 + coarse[:, 0]) == pytest.approx(np.prod(1 + full[:, 0]))
