"""The engine's half of the strategy contract (backtestlab.engine.runner): one detailed run,
the compiled sweep, grouping by signal parameters, batches, and clear errors for a strategy
that returns the wrong thing."""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine import indicators, runner
from backtestlab.engine.metrics import (
    N_METRICS,
    compute_row,
    curve_and_trade_metrics,
    metrics_kernel,
)
from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Levels, Signals, crossed_above, crossed_below
from backtestlab.engine.simulate import (
    LEVEL_FRACTION,
    allocate_trade_buffers,
    simulate_kernel,
)
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs, Strategy
from backtestlab.engine.sweep import grid_size, params_range
from backtestlab.engine.throughput import SWEEP_GRID

COSTS = Costs(commission_pct=0.1, slippage_pct=0.05)


def sweep(strategy, grid):
    full = strategy.parameter_space().validate_grid(grid, max_combinations=100_000)
    return params_range(full, 0, grid_size(full))


class CountingSma(Strategy):
    """sma_cross's rules, counting its signal computations."""

    key = "counting_sma"
    label = "Counting SMA"
    parameters = get_strategy("sma_cross").parameters

    def __init__(self):
        self.calls = []

    def signals(self, ctx, p):
        self.calls.append((p.fast, p.slow))
        fast, slow = ctx.sma(p.fast), ctx.sma(p.slow)
        if p.fast >= p.slow:
            return Signals(entries=np.zeros(len(fast), dtype=bool))
        return Signals(entries=crossed_above(fast, slow), exits=crossed_below(fast, slow))

    def levels(self, p):
        return Levels(stop_pct=p.sl_pct, target_pct=p.sl_pct * p.rr)


def test_a_900_combination_sma_sweep_computes_100_signal_sets(hourly_btc, monkeypatch):
    windows = []
    real_sma = indicators.sma
    monkeypatch.setattr(indicators, "sma", lambda x, n: windows.append(n) or real_sma(x, n))
    strategy = CountingSma()
    params = sweep(strategy, SWEEP_GRID)
    assert len(params) == 900
    ctx = strategy.prepare(hourly_btc)
    matrix = strategy.run_many(ctx, params, COSTS)
    assert len(strategy.calls) == 100 and len(set(strategy.calls)) == 100
    # Each distinct window once: 5..50 step 5 and 20..200 step 20 share 20 and 40.
    assert sorted(windows) == sorted({*range(5, 51, 5), *range(20, 201, 20)})
    # ... and the numbers are sma_cross's.
    sma = get_strategy("sma_cross")
    np.testing.assert_array_equal(matrix, sma.run_many(sma.prepare(hourly_btc), params, COSTS))


class KitchenSink(Strategy):
    """Every Signals field at once: long and short entries, exits, limits, price stops,
    per-bar partial-exit targets, per-bar size, a cash flow; exit and sizing parameters."""

    key = "kitchen_sink"
    label = "Kitchen sink"
    parameters = ParameterSpace(
        [
            Param("window", "int", 20, 2, 200),
            Param("parts", "choice", "one", choices=("one", "three")),
            Param("limit_pct", "float", 0.0, 0.0, 5.0),
            Param("stop_mult", "float", 2.0, 0.5, 10.0),
            Param("size", "float", 1.0, 0.1, 1.0, role="sizing"),
        ]
    )

    def signals(self, ctx, p):
        close = ctx.data.close
        m = ctx.sma(p.window)
        sd = ctx.rolling_std(p.window)
        long_ = crossed_above(close, m + sd)
        short = crossed_below(close, m - sd)
        entries = long_.astype(np.int8) - short.astype(np.int8)
        side = np.sign(entries)
        limit = np.where(entries != 0, close * (1 - side * p.limit_pct / 100), np.nan)
        limit = np.where(p.limit_pct > 0, limit, np.nan)
        stop = close - side * p.stop_mult * sd
        targets = [close + side * k * sd for k in (1.0, 2.0, 3.0)]
        flow = np.where(np.arange(len(close)) % 8 == 7, close * 1e-4, 0.0)
        sig = Signals(
            entries=entries,
            exits=crossed_below(close, m) & crossed_above(close, m - 10 * sd),
            limit=limit,
            stop_price=np.where(entries != 0, stop, np.nan),
            target_price=targets if p.parts == "three" else targets[1],
            flow=flow,
        )
        return sig

    def levels(self, p):
        return Levels(size=p.size)


def test_the_sweep_equals_single_runs_with_every_signal_field(hourly_btc):
    strategy = KitchenSink()
    params = sweep(
        strategy,
        {"window": [10, 40], "parts": ["one", "three"], "limit_pct": [0.0, 0.5],
         "stop_mult": [1.0, 3.0], "size": [0.5, 1.0]},
    )  # fmt: skip
    ctx = strategy.prepare(hourly_btc)
    matrix = strategy.run_many(ctx, params, COSTS)
    trades = held = 0
    for k, p in enumerate(params):
        result = strategy.run(ctx, p, COSTS)
        np.testing.assert_array_equal(matrix[k], compute_row(result))
        trades += len(result.trades)
        held += len(result.open_trade)
        if p["size"] == 0.5 and len(result.trades):
            assert result.equity.min() > 0.4 * COSTS.initial_equity
    assert trades > 200
    # some runs end with a position open (marked, not counted), some flat
    assert 0 < held < len(params)
    shorts = strategy.run(ctx, params[0], COSTS).trades.side
    assert set(shorts) == {-1, 1}


def test_small_batches_give_the_same_matrix(hourly_btc, monkeypatch):
    strategy = get_strategy("smc_zones")
    params = sweep(
        strategy,
        {"pattern_type": ["imbalance", "order_block"], "tp_method": ["fixed_rr", "swing_target"],
         "rr_target": [1.5, 3.0], "min_zone_pct": [0.1, 0.2]},
    )  # fmt: skip
    ctx = strategy.prepare(hourly_btc)
    whole = strategy.run_many(ctx, params, COSTS)
    monkeypatch.setattr(runner, "BATCH_CELLS", len(hourly_btc) * 3)  # 3 signal sets a batch
    np.testing.assert_array_equal(strategy.run_many(ctx, params, COSTS), whole)
    assert np.nansum(whole[:, 11]) > 50


def test_the_compact_curve_has_the_full_curves_metrics(hourly_btc):
    """The sweep leaves flat, position-free bars out of the curve it folds: same metrics."""
    d = hourly_btc
    n = len(d)
    sma = get_strategy("sma_cross")
    ctx = sma.prepare(d)
    entries = crossed_above(ctx.sma(10), ctx.sma(60)).astype(np.int8)
    exits = crossed_below(ctx.sma(10), ctx.sma(60))
    stop, target = np.array([0.02]), np.array([0.05])
    full_eq, full_pos = np.empty(n), np.empty(n, dtype=np.bool_)
    full = allocate_trade_buffers(n)
    c1 = simulate_kernel(
        d.open, d.high, d.low, d.close, entries, exits, stop, LEVEL_FRACTION, target,
        LEVEL_FRACTION, 0.001, 0.0005, 1e4, full_eq, full_pos, *full,
    )  # fmt: skip
    eq, pos, written = np.empty(n), np.empty(n, dtype=np.bool_), np.zeros(1, dtype=np.int64)
    bufs = allocate_trade_buffers(n)
    c2 = simulate_kernel(
        d.open, d.high, d.low, d.close, entries, exits, stop, LEVEL_FRACTION, target,
        LEVEL_FRACTION, 0.001, 0.0005, 1e4, eq, pos, *bufs, None, None, False, 0, None, written,
    )  # fmt: skip
    w = int(written[0])
    assert c1 == c2 > 10 and 0 < w < n * 0.9
    kept = np.r_[True, (full_eq[1:] != full_eq[:-1]) | full_pos[1:]]
    assert w <= kept.sum() + c1 + 1  # only flat, position-free bars are left out
    np.testing.assert_array_equal(eq[w - 1], full_eq[-1])
    a, b = np.empty(N_METRICS), np.empty(N_METRICS)
    metrics_kernel(d.ts, full_eq, full_pos, full[0], full[1], full[5], c1, 8766.0, 1e4, a)
    curve_and_trade_metrics(d.ts, eq, pos, w, n, bufs[0], bufs[1], bufs[5], c2, 8766.0, 1e4, b)
    np.testing.assert_array_equal(a, b)


class Broken(Strategy):
    key = "broken"
    label = "Broken"
    parameters = ParameterSpace(
        [Param("mode", "int", 0, 0, 9), Param("sl", "float", 1.0, 0.1, 9, role="exit")]
    )

    def signals(self, ctx, p):
        n = len(ctx.data)
        return {
            0: lambda: [1] * n,
            1: lambda: Signals(entries=np.zeros(n - 1, dtype=bool)),
            2: lambda: Signals(entries=np.full(n, 2, dtype=np.int8)),
            3: lambda: Signals(entries=np.zeros(n, dtype=bool), stop_pct=1.0),
            4: lambda: Signals(entries=np.zeros(n, dtype=bool), size=1.5),
            5: lambda: Signals(entries=np.zeros(n), exits=None),
            6: lambda: Signals(
                entries=np.zeros(n, dtype=bool), stop_pct=1.0, stop_price=np.ones(n)
            ),
        }[p.mode]()

    def levels(self, p):
        return Levels(stop_pct=p.sl)


@pytest.mark.parametrize(
    "mode, error, message",
    [
        (
            0,
            TypeError,
            r"broken.signals must return Signals\(entries=\.\.\., exits=\.\.\.\), got list",
        ),
        (1, ValueError, r"entries must have shape \(\d+,\) \(one value per bar\), got \(\d+,\)"),
        (2, ValueError, r"integer entries must be \+1 \(long\), -1 \(short\) or 0"),
        (3, ValueError, "stop_pct is given by both signals and levels; give it once"),
        (4, ValueError, r"size must be a fraction of equity in \(0, 1\]"),
        (5, ValueError, "entries must be bool or integers"),
        (6, ValueError, "stop_pct is given by both signals and levels"),
    ],
)
def test_a_strategy_returning_the_wrong_thing_gets_a_clear_error(hourly_btc, mode, error, message):
    strategy = Broken()
    ctx = strategy.prepare(hourly_btc)
    with pytest.raises(error, match=message):
        strategy.run(ctx, {"mode": mode}, COSTS)
    with pytest.raises(error, match=message):
        strategy.run_many(ctx, [{"mode": mode, "sl": 1.0}, {"mode": mode, "sl": 2.0}], COSTS)


def test_signals_see_only_signal_parameters(hourly_btc):
    class Peeks(CountingSma):
        def signals(self, ctx, p):
            return Signals(entries=np.zeros(len(ctx.data), dtype=bool) & (p.sl_pct > 0))

    with pytest.raises(AttributeError, match="no parameter 'sl_pct' here; known: fast, slow"):
        Peeks().run(Peeks().prepare(hourly_btc), {}, COSTS)


def test_a_signal_delay_is_a_single_run_stress_only(hourly_btc):
    sma = get_strategy("sma_cross")
    with pytest.raises(ValueError, match="signal_delay_bars is a stress scenario"):
        sma.run_many(sma.prepare(hourly_btc), [{}], Costs(signal_delay_bars=1))
    delayed = sma.run(sma.prepare(hourly_btc), {"fast": 5, "slow": 20}, Costs(signal_delay_bars=1))
    plain = sma.run(sma.prepare(hourly_btc), {"fast": 5, "slow": 20}, Costs())
    np.testing.assert_array_equal(delayed.trades.entry_idx[:5], plain.trades.entry_idx[:5] + 1)
