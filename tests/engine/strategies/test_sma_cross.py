"""sma_cross behaviour: degenerate inputs, fast path == slow path, no look-ahead."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from backtestlab.engine.metrics import METRIC_NAMES, compute
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs

from ..conftest import make_data

COSTS = Costs()


def _run_quiet(data, params):
    strat = get_strategy("sma_cross")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = strat.prepare(data)
        res = strat.run(ctx, params, COSTS)
        m = compute(res)
        row = strat.run_many(ctx, [params], COSTS)[0]
    np.testing.assert_array_equal(row, m.as_row())
    return res, m


def _assert_no_trade_metrics(m, n_bars):
    assert m.n_trades == 0
    assert math.isnan(m.win_rate)
    assert math.isnan(m.profit_factor)
    assert math.isnan(m.expectancy_pct)
    assert math.isnan(m.avg_trade_duration_h)
    assert m.max_consec_wins == 0 and m.max_consec_losses == 0
    assert math.isnan(m.sharpe) and math.isnan(m.sortino) and math.isnan(m.calmar)
    if n_bars:
        assert m.total_return_pct == 0.0
        assert m.max_drawdown_pct == 0.0
        assert m.exposure_pct == 0.0
        assert m.cagr_pct == 0.0


@pytest.mark.parametrize(
    "close",
    [
        np.linspace(100, 200, 300),  # monotonic: fast stays above slow, never crosses
        np.full(300, 123.456),  # flat
        np.full(300, 0.1),  # flat, value with binary rounding
        np.linspace(100, 110, 10),  # shorter than the slow window
        np.array([100.0]),  # one bar
    ],
    ids=["monotonic", "flat", "flat-0.1", "too-short", "one-bar"],
)
def test_degenerate_inputs_give_no_trades(close):
    res, m = _run_quiet(make_data(close), {"fast": 5, "slow": 20})
    assert len(res.trades) == 0
    _assert_no_trade_metrics(m, len(close))


def test_empty_data():
    res, m = _run_quiet(make_data(np.array([])), {"fast": 5, "slow": 20})
    assert len(res.trades) == 0 and res.equity.shape == (0,)
    assert m.n_trades == 0


def test_fast_not_below_slow_never_trades(hourly_btc):
    strat = get_strategy("sma_cross")
    ctx = strat.prepare(hourly_btc)
    for fast, slow in [(20, 20), (50, 20)]:
        assert len(strat.run(ctx, {"fast": fast, "slow": slow}, COSTS).trades) == 0
        assert strat.parameter_space().check_constraints({"fast": fast, "slow": slow}) == (
            f"fast < slow does not hold (fast={fast}, slow={slow}); this combination never trades"
        )
    assert strat.parameter_space().check_constraints({"fast": 5, "slow": 20}) is None


def test_run_many_equals_run_and_compute(hourly_btc):
    strat = get_strategy("sma_cross")
    rng = np.random.Generator(np.random.PCG64(12345))
    params = []
    for _ in range(50):
        params.append(
            {
                "fast": int(rng.integers(2, 60)),
                "slow": int(rng.integers(3, 250)),
                "sl_pct": float(np.round(rng.uniform(0.1, 8.0), 2)),
                "rr": float(np.round(rng.uniform(0.1, 6.0), 2)),
            }
        )
    costs = Costs(commission_pct=0.075, slippage_pct=0.02, initial_equity=5_000.0)
    ctx = strat.prepare(hourly_btc)
    fast = strat.run_many(ctx, params, costs)
    assert fast.shape == (50, len(METRIC_NAMES)) and fast.dtype == np.float64
    fresh_ctx = strat.prepare(hourly_btc)
    traded = 0
    for k, p in enumerate(params):
        m = compute(strat.run(fresh_ctx, p, costs))
        np.testing.assert_array_equal(fast[k], m.as_row(), err_msg=str(p))
        traded += m.n_trades > 0
    assert traded > 30  # the comparison is not vacuous


def test_run_many_rejects_bad_values(hourly_btc):
    strat = get_strategy("sma_cross")
    ctx = strat.prepare(hourly_btc)
    with pytest.raises(ParameterError) as exc:
        strat.run_many(ctx, [{"fast": 5, "slow": 20}, {"fast": 1, "slow": 20}], COSTS)
    assert exc.value.field == "fast"
    with pytest.raises(ParameterError) as exc:
        strat.run_many(ctx, [{"fsat": 5}], COSTS)
    assert exc.value.field == "fsat" and "did you mean 'fast'" in exc.value.message
    with pytest.raises(ParameterError):
        strat.run_many(ctx, [{"fast": 5.5}], COSTS)
    with pytest.raises(ParameterError):
        strat.run_many(ctx, [{"sl_pct": float("nan")}], COSTS)
    assert strat.run_many(ctx, [], COSTS).shape == (0, len(METRIC_NAMES))


def test_trade_invariants(hourly_btc):
    strat = get_strategy("sma_cross")
    res = strat.run(strat.prepare(hourly_btc), {"fast": 8, "slow": 40, "sl_pct": 1.5}, COSTS)
    t = res.trades
    assert len(t) > 10
    assert (t.exit_idx >= t.entry_idx).all()
    assert (t.entry_idx[1:] >= t.exit_idx[:-1]).all()  # one position at a time
    assert set(t.reason) <= {"signal", "stop", "target", "end"}
    final = COSTS.initial_equity * np.prod(1 + t.pnl_pct / 100)
    assert np.isclose(final, res.equity[-1], rtol=1e-10)
    stops = t.reason == "stop"
    # a stop fill is never above the stop level less slippage
    lvl = t.entry_price[stops] * (1 - 0.015) * (1 - COSTS.slippage_pct / 100)
    assert (t.exit_price[stops] <= lvl * (1 + 1e-12)).all()


@pytest.mark.parametrize("k", [150, 601, 1333, 2000])
def test_no_look_ahead(hourly_btc, k):
    strat = get_strategy("sma_cross")
    params = {"fast": 6, "slow": 30, "sl_pct": 1.0, "rr": 2.5}
    full = strat.run(strat.prepare(hourly_btc), params, COSTS)
    cut_data = hourly_btc.slice_time(None, int(hourly_btc.ts[k]))
    assert len(cut_data) == k
    cut = strat.run(strat.prepare(cut_data), params, COSTS)
    done_full = full.trades.exit_idx < k - 1
    done_cut = cut.trades.exit_idx < k - 1
    assert done_full.sum() == done_cut.sum() > 0
    for name in ("entry_idx", "exit_idx", "entry_price", "exit_price", "pnl_pct", "reason"):
        np.testing.assert_array_equal(
            getattr(full.trades, name)[done_full], getattr(cut.trades, name)[done_cut]
        )
    # every entry before the cut happens in both runs (the cut run's last one may be open)
    full_entries = np.r_[full.trades.entry_idx, full.open_trade.entry_idx]
    cut_entries = np.r_[cut.trades.entry_idx, cut.open_trade.entry_idx]
    np.testing.assert_array_equal(full_entries[full_entries < k], cut_entries)
    # a position open at the cut is marked there, as the full run marks it: no end fill
    np.testing.assert_array_equal(full.equity[:k], cut.equity)
