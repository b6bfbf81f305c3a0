"""The example package's strategies: registered through the entry points, and trading by
their rules (expected bars computed here, independently of the engine's indicators)."""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.data import MarketData
from backtestlab.engine.metrics import compute_row
from backtestlab.engine.strategies import STRATEGIES, load_strategies, strategy_problems
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import grid_size, params_range

COSTS = Costs(commission_pct=0.1, slippage_pct=0.0)


def candles(close: np.ndarray) -> MarketData:
    close = np.asarray(close, dtype=np.float64)
    open_ = np.r_[close[0], close[:-1]]
    return MarketData(
        symbol="TEST",
        timeframe="1h",
        ts=1_700_000_000 + 3600 * np.arange(len(close), dtype=np.int64),
        open=open_,
        high=np.maximum(open_, close),
        low=np.minimum(open_, close),
        close=close,
        volume=np.ones(len(close)),
    )


@pytest.fixture(scope="module")
def examples():
    load_strategies()
    return STRATEGIES["rsi_reversion"], STRATEGIES["bollinger_breakout"]


def wilder_rsi(close, n):
    """Wilder's RSI written out by hand (SMA seed over the first n changes)."""
    out = [float("nan")] * len(close)
    changes = [close[i] - close[i - 1] for i in range(1, len(close))]
    gain = sum(max(c, 0) for c in changes[:n]) / n
    loss = sum(max(-c, 0) for c in changes[:n]) / n
    for i in range(n, len(close)):
        if i > n:
            c = changes[i - 1]
            gain = (gain * (n - 1) + max(c, 0)) / n
            loss = (loss * (n - 1) + max(-c, 0)) / n
        out[i] = 100.0 if loss == 0 else 100 - 100 / (1 + gain / loss)
    return out


def test_the_entry_points_register_both_with_a_valid_declaration(examples):
    for strategy in examples:
        assert STRATEGIES[strategy.key] is strategy
        assert strategy_problems(strategy) == []
    assert (
        examples[0]
        .parameter_space()
        .check_constraints({"oversold": 60.0, "exit_level": 55.0})
        .startswith("oversold < exit_level does not hold")
    )


def test_rsi_enters_after_the_cross_into_oversold_and_exits_after_the_recovery(examples):
    rsi_strategy, _ = examples
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    params = {"period": 5, "oversold": 30.0, "exit_level": 60.0, "sl_pct": 50.0}
    result = rsi_strategy.run(rsi_strategy.prepare(candles(close)), params, COSTS)
    rsi = wilder_rsi(list(close), 5)
    expected, flat, i = [], True, 1
    while i < len(close) - 1:
        if flat and rsi[i] < 30 <= rsi[i - 1]:
            expected.append(i + 1)  # filled at the next open
            flat = False
        elif not flat and rsi[i] > 60 >= rsi[i - 1]:
            flat = True
        i += 1
    assert len(expected) >= 5
    # the last entry is still open at the end (marked, not a closed trade)
    assert list(result.trades.entry_idx) + list(result.open_trade.entry_idx) == expected
    assert set(result.trades.reason) == {"signal"} and len(result.open_trade) == 1


def test_half_size_halves_every_trade_return(examples):
    rsi_strategy, _ = examples
    rng = np.random.default_rng(3)
    data = candles(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500))))
    ctx = rsi_strategy.prepare(data)
    base = {"period": 7, "oversold": 35.0, "exit_level": 55.0, "sl_pct": 5.0}
    full = rsi_strategy.run(ctx, {**base, "size_pct": 100.0}, COSTS).trades
    half = rsi_strategy.run(ctx, {**base, "size_pct": 50.0}, COSTS).trades
    assert len(full) >= 5
    np.testing.assert_array_equal(full.entry_idx, half.entry_idx)
    np.testing.assert_allclose(half.pnl_pct, full.pnl_pct / 2, rtol=1e-12, atol=1e-12)


def test_bollinger_buys_the_breakout_and_sells_the_breakdown_only_when_allowed(examples):
    _, bands = examples
    close = np.r_[np.tile([100.0, 101.0], 15), 110.0, 111.0, np.tile([105.0, 104.0], 10), 80.0]
    close = np.r_[close, np.tile([90.0, 91.0], 10)]
    data = candles(close)
    ctx = bands.prepare(data)
    params = {"window": 10, "width": 2.0, "sl_pct": 50.0, "rr": 10.0}
    long_only = bands.run(ctx, params, COSTS).trades
    assert list(long_only.entry_idx[:1]) == [31] and list(long_only.side[:1]) == [1]
    assert -1 not in set(long_only.side)
    both = bands.run(ctx, {**params, "allow_short": True}, COSTS).trades
    shorts = [int(e) for e, s in zip(both.entry_idx, both.side, strict=True) if s == -1]
    assert shorts and shorts[0] == 53  # the 80 close is bar 52, filled at the next open


@pytest.mark.parametrize("key", ["rsi_reversion", "bollinger_breakout"])
def test_the_engine_sweep_equals_single_runs(examples, key):
    strategy = STRATEGIES[key]
    rng = np.random.default_rng(11)
    data = candles(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))))
    grid = {"rsi_reversion": {"period": [5, 14], "oversold": [25.0, 35.0], "sl_pct": [1.0, 4.0],
                              "size_pct": [50.0, 100.0]},
            "bollinger_breakout": {"window": [10, 30], "allow_short": [False, True],
                                   "sl_pct": [1.0, 3.0], "rr": [1.5, 3.0]}}[key]  # fmt: skip
    full = strategy.parameter_space().validate_grid(grid, max_combinations=100)
    params = params_range(full, 0, grid_size(full))
    ctx = strategy.prepare(data)
    matrix = strategy.run_many(ctx, params, COSTS)
    for k, p in enumerate(params):
        np.testing.assert_array_equal(matrix[k], compute_row(strategy.run(ctx, p, COSTS)))
    assert np.nanmax(matrix[:, 11]) > 0  # n_trades: the grid trades
