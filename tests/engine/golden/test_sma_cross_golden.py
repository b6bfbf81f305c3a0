"""sma_cross golden runs, derived without the engine.

1. By hand: sma_cross(fast=2, slow=3) on 32 designed bars.  With fast=2 and slow=3,
   ``fast - slow = (c[i] + c[i-1] - 2 c[i-2]) / 6``, so the crossings below were designed from
   the sign of ``D[i] = c[i] + c[i-1] - 2 c[i-2]`` (see comments).  Costs: commission 0.1 %,
   slippage 0.05 %, stop 2 % below the entry fill, target 4 % above.
2. By backtesting.py (kernc/backtesting.py, a test-only dependency): the same rules written as
   a backtesting.py Strategy on 80 seeded bars and 16 parameter sets, compared trade by trade
   and metric by metric with ``run`` and with the sweep path.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from backtestlab.engine.metrics import METRIC_NAMES, compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import run_params
from backtestlab.engine.timeframes import bars_per_year

from ..conftest import make_data
from . import reference as ref
from .backtesting_py import sma_cross_stats

C = 0.001  # commission fraction
S = 0.0005  # slippage fraction

# bar: close  (open defaults to previous close; high/low given where a position is open)
CLOSE = [
    100,
    99,
    98,
    97,
    96,  # 0-4 falling, D < 0
    100,  # 5: D=+2 -> up-cross, enter at open of 6
    101,  # 6: entry bar, no level hit
    104,  # 7: high 105 >= target 104.052 -> TARGET
    100,
    96,
    95,  # 8-10: down-cross at 9 while flat (ignored)
    99,  # 11: up-cross, enter at 12
    99.2,  # 12
    97.5,  # 13: low 97 <= stop 97.06851 -> STOP (at level); down-cross ignored (flat)
    97,  # 14
    100,  # 15: up-cross, enter at 16
    100.2,  # 16
    97.2,  # 17: opens at 97, below stop 98.049 -> STOP at the open (gap)
    96.5,  # 18
    99,  # 19: up-cross, enter at 20
    100,  # 20: entry bar holds both stop and target -> STOP first
    97,
    96,  # 21-22: down-cross at 21 while flat
    99,  # 23: up-cross, enter at 24
    99.5,
    100,  # 24-25
    98.9,  # 26: D=-0.1 -> down-cross while long: exit at the open of 27
    98.5,  # 27: opens at 98.8 -> SIGNAL exit
    98,  # 28
    101,  # 29: up-cross, enter at 30
    101.5,  # 30
    102,  # 31: last bar -> still long: marked at the close 102, not closed
]
N = len(CLOSE)


def _golden_data():
    close = np.array(CLOSE, dtype=float)
    open_ = np.r_[close[0], close[:-1]]
    open_[17] = 97.0  # gap down through the stop
    open_[27] = 98.8
    high = np.maximum(open_, close) + 0.3
    low = np.minimum(open_, close) - 0.3
    levels = {
        6: (101, 99.5),
        7: (105, 100.5),
        12: (99.5, 98.5),
        13: (99.4, 97.0),
        16: (100.5, 99.8),
        17: (97.5, 96.5),
        20: (104, 97.0),
        24: (100, 98.5),
        25: (100.5, 99.0),
        26: (100.2, 98.8),
        27: (99.0, 98.2),
        30: (102, 100.5),
        31: (102.5, 101.0),
    }
    for i, (h, lo) in levels.items():
        high[i], low[i] = h, lo
    return make_data(close, open_, high, low, timeframe="1h")


def _mult(entry_fill, exit_fill):
    """Equity multiplier of one long round trip (all-in, commission on both sides)."""
    return exit_fill / entry_fill * (1 - C) / (1 + C)


def _mark(entry_fill, close):
    """Equity multiplier of a long still open, marked at ``close`` (entry commission only)."""
    return close / entry_fill / (1 + C)


ENTRY_100 = 100 * (1 + S)  # 100.05
ENTRY_99 = 99 * (1 + S)  # 99.0495
ENTRY_101 = 101 * (1 + S)
EXPECTED = [
    # entry_idx, exit_idx, entry fill, exit fill, reason
    (6, 7, ENTRY_100, ENTRY_100 * 1.04 * (1 - S), "target"),
    (12, 13, ENTRY_99, ENTRY_99 * 0.98 * (1 - S), "stop"),
    (16, 17, ENTRY_100, 97.0 * (1 - S), "stop"),
    (20, 20, ENTRY_99, ENTRY_99 * 0.98 * (1 - S), "stop"),
    (24, 27, ENTRY_99, 98.8 * (1 - S), "signal"),
]
# entered at the open of 30 and still held at the last bar: marked at its close 102 (no sell
# slippage, no exit commission), not a closed trade
OPEN = (30, 31, ENTRY_101, 102.0, "end")
PARAMS = {"fast": 2, "slow": 3, "sl_pct": 2.0, "rr": 2.0}
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=10_000.0)


@pytest.fixture(scope="module")
def golden():
    strat = get_strategy("sma_cross")
    data = _golden_data()
    ctx = strat.prepare(data)
    return data, strat, ctx, strat.run(ctx, PARAMS, COSTS)


def test_golden_trades(golden):
    data, _, _, res = golden
    t = res.trades
    assert len(t) == len(EXPECTED)
    np.testing.assert_array_equal(t.entry_idx, [e[0] for e in EXPECTED])
    np.testing.assert_array_equal(t.exit_idx, [e[1] for e in EXPECTED])
    assert np.allclose(t.entry_price, [e[2] for e in EXPECTED], rtol=1e-8, atol=0)
    assert np.allclose(t.exit_price, [e[3] for e in EXPECTED], rtol=1e-8, atol=0)
    assert list(t.reason) == [e[4] for e in EXPECTED]
    assert (t.side == 1).all()
    pnl = [(_mult(e[2], e[3]) - 1) * 100 for e in EXPECTED]
    assert np.allclose(t.pnl_pct, pnl, rtol=1e-8, atol=0)
    np.testing.assert_array_equal(t.entry_ts, data.ts[t.entry_idx])
    np.testing.assert_array_equal(t.exit_ts, data.ts[t.exit_idx])
    o = res.open_trade
    assert (len(o), o.entry_idx[0], o.exit_idx[0], o.side[0], o.reason[0]) == (1, 30, 31, 1, "end")
    assert np.isclose(o.entry_price[0], OPEN[2], rtol=1e-12) and o.exit_price[0] == OPEN[3]
    assert np.isclose(o.pnl_pct[0], (_mark(OPEN[2], OPEN[3]) - 1) * 100, rtol=1e-8)


def test_golden_levels_in_plain_numbers(golden):
    """The same fills spelled out as numbers, as a reviewer would compute them."""
    t = golden[3].trades
    assert np.isclose(t.entry_price[0], 100.05, rtol=1e-12)
    assert np.isclose(t.exit_price[0], 104.052 * 0.9995, rtol=1e-12)  # target fill
    assert np.isclose(t.exit_price[1], 97.06851 * 0.9995, rtol=1e-12)  # stop at level
    assert np.isclose(t.exit_price[2], 96.9515, rtol=1e-12)  # gap: open 97 less slippage
    assert np.isclose(t.exit_price[4], 98.7506, rtol=1e-12)  # next-open signal exit
    o = golden[3].open_trade
    assert np.isclose(o.entry_price[0], 101.0505, rtol=1e-12)  # 101 * 1.0005
    assert o.exit_price[0] == 102.0  # marked at the last close, no slippage


def _expected_equity():
    e0 = 10_000.0
    m = [_mult(e[2], e[3]) for e in EXPECTED]
    eq = [e0]
    for x in m:
        eq.append(eq[-1] * x)
    eq.append(eq[-1] * _mark(OPEN[2], OPEN[3]))
    return eq  # equity before trade k is eq[k]; eq[6] the final mark of the open position


def test_golden_equity_curve(golden):
    res = golden[3]
    eq = _expected_equity()
    assert res.equity.shape == (N,)
    assert np.allclose(res.equity[:6], 10_000.0, rtol=1e-12)
    # bar 6 is marked at its close 101 while long from 100.05
    assert np.isclose(res.equity[6], eq[0] / (1 + C) * 101 / ENTRY_100, rtol=1e-8)
    assert np.isclose(res.equity[7], eq[1], rtol=1e-8)
    assert np.isclose(res.equity[12], eq[1] / (1 + C) * 99.2 / ENTRY_99, rtol=1e-8)
    assert np.isclose(res.equity[20], eq[4], rtol=1e-8)
    assert np.isclose(res.equity[26], eq[4] / (1 + C) * 98.9 / ENTRY_99, rtol=1e-8)
    assert np.isclose(res.equity[27], eq[5], rtol=1e-8)
    assert np.isclose(res.equity[30], eq[5] / (1 + C) * 101.5 / ENTRY_101, rtol=1e-8)
    assert np.isclose(res.equity[-1], eq[6], rtol=1e-8)  # 10,019.09: the mark, no exit costs
    # closed trades' pnl and the open position's mark compound exactly into the final equity
    growth = np.prod(1 + res.trades.pnl_pct / 100) * (1 + res.open_trade.pnl_pct[0] / 100)
    assert np.isclose(growth * 10_000.0, res.equity[-1], rtol=1e-12)
    held = {6, 7, 12, 13, 16, 17, 20, 24, 25, 26, 30, 31}
    np.testing.assert_array_equal(res.in_position, [i in held for i in range(N)])


def test_golden_metrics(golden):
    res = golden[3]
    m = compute(res)
    eq = _expected_equity()
    pnl = np.array([(_mult(e[2], e[3]) - 1) * 100 for e in EXPECTED])  # closed trades only
    peak = eq[1] / (1 + C) * 99.2 / ENTRY_99  # mark at the close of bar 12
    trough = eq[5]  # after the signal exit of trade 5 (the open position's marks are above)
    assert np.isclose(m.total_return_pct, (eq[6] / 1e4 - 1) * 100, rtol=1e-8)
    assert np.isclose(m.max_drawdown_pct, (trough / peak - 1) * 100, rtol=1e-8)
    assert m.n_trades == 5
    assert np.isclose(m.win_rate, 100 * 1 / 5, rtol=1e-12)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    assert len(wins) == 1 and len(losses) == 4
    assert np.isclose(m.profit_factor, wins.sum() / -losses.sum(), rtol=1e-8)
    assert np.isclose(m.expectancy_pct, pnl.mean(), rtol=1e-8)
    assert np.isclose(m.avg_win_pct, wins.mean(), rtol=1e-8)
    assert np.isclose(m.avg_loss_pct, losses.mean(), rtol=1e-8)
    assert m.max_consec_wins == 1
    assert m.max_consec_losses == 4
    assert np.isclose(m.avg_trade_duration_h, (1 + 1 + 1 + 0 + 3) / 5, rtol=1e-12)
    assert np.isclose(m.exposure_pct, 100 * 12 / 32, rtol=1e-12)
    years = (31 * 3600 + 3600) / (365.25 * 86400)
    assert np.isclose(m.cagr_pct, ((eq[6] / 1e4) ** (1 / years) - 1) * 100, rtol=1e-8)
    assert np.isclose(m.calmar, m.cagr_pct / abs(m.max_drawdown_pct), rtol=1e-12)
    r = res.equity[1:] / res.equity[:-1] - 1
    assert np.isclose(m.sharpe, r.mean() / r.std(ddof=1) * np.sqrt(8760), rtol=1e-8)
    down = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert np.isclose(m.sortino, r.mean() / down * np.sqrt(8760), rtol=1e-8)


def test_golden_run_many_matches(golden):
    _, strat, ctx, res = golden
    row = strat.run_many(ctx, [PARAMS], COSTS)[0]
    np.testing.assert_array_equal(row, compute(res).as_row())


def _reference():
    """Equity, bars in a position and trade pnl of the EXPECTED trades and the OPEN position
    (its pnl last), bar by bar."""
    trades = [
        ref.RefTrade(e[0], e[1], 1, e[2], e[3], e[4], exit_at_open=e[4] == "signal")
        for e in [*EXPECTED, OPEN]
    ]
    return ref.all_in_curve(CLOSE, trades, C, 10_000.0)


def test_golden_equity_curve_bar_by_bar(golden):
    res = golden[3]
    equity, in_pos, pnl = _reference()
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)
    assert np.allclose(res.trades.pnl_pct, pnl[:-1], rtol=1e-10, atol=0)
    assert np.allclose(res.open_trade.pnl_pct, pnl[-1:], rtol=1e-10, atol=0)


def _reference_metrics():
    equity, in_pos, pnl = _reference()
    pnl = pnl[:-1]  # the trade statistics count closed trades only
    hours = [e[1] - e[0] for e in EXPECTED]  # 1h bars
    return ref.metrics(equity, 10_000.0, pnl, in_pos, hours, bars_per_year("1h"))


def test_golden_metrics_of_run_and_of_the_sweep_path(golden):
    _, strat, ctx, res = golden
    expected = _reference_metrics()
    # closed trades: target, stop, stop (gap), stop (entry bar), signal -> 1 win, 4 losses
    assert expected["n_trades"] == 5 and expected["win_rate"] == 100 * 1 / 5
    ref.assert_metrics(compute(res).as_row(), expected)
    # the sweep path: a second parameter set in the same call must not disturb the first
    rows = run_params(strat, ctx, [PARAMS, {**PARAMS, "sl_pct": 50.0, "rr": 20.0}], COSTS)
    ref.assert_metrics(rows[0], expected)
    ref.assert_metrics(strat.run_many(ctx, [PARAMS], COSTS)[0], expected)


# --- 2. backtesting.py (its Strategy: ``backtesting_py.py``) --------------------------------

BT_COMMISSION = 0.001
# Commission alone (slippage is checked by hand above).  Positions are whole units: with
# 10^12 of cash and prices near 100 a position is ~10^10 units, so rounding moves returns by
# < 1e-9 relative.
BT_CASH = 1e12
BT_GRID = [
    {"fast": f, "slow": s, "sl_pct": sl, "rr": rr}
    for f, s, sl, rr in itertools.product([2, 3], [5, 8], [1.0, 2.5], [1.0, 2.0])
]


def _bt_data():
    """80 seeded hourly bars with gaps between a close and the next open.

    backtesting.py refuses an order whose stop or target is already on the wrong side of the
    last close (we would fill and exit at the open); seed 27 has no such entry in BT_GRID,
    and has gaps through stops (asserted below).  Nothing is tuned at the end: both leave a
    position open at the last bar open, marked at its close (``finalize_trades=False``)."""
    rng = np.random.default_rng(27)
    n = 80
    close = 100 + np.cumsum(rng.normal(0, 1.0, n))
    open_ = np.r_[100.0, close[:-1] + rng.normal(0, 0.4, n - 1)]
    high = np.maximum(open_, close) + np.abs(rng.normal(0, 0.6, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0, 0.6, n))
    return make_data(close, open_, high, low)


def _backtesting_py(data, params):
    return sma_cross_stats(
        data.ts, data.open, data.high, data.low, data.close, params, cash=BT_CASH,
        commission=BT_COMMISSION,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bt_runs():
    data = _bt_data()
    return data, [_backtesting_py(data, p) for p in BT_GRID]


def _bt_expected(data, stats, params):
    """Our trade and metric vocabulary computed from backtesting.py's ledger and equity."""
    trades = stats["_trades"]
    equity = stats["_equity_curve"]["Equity"].to_numpy() / BT_CASH
    before = BT_CASH + np.r_[0.0, np.cumsum(trades["PnL"].to_numpy())[:-1]]
    pnl = trades["PnL"].to_numpy() / before * 100
    # backtesting.py counts the bar of a signal exit (filled at its open) as held; we do not.
    # A signal exit is one at the open after a down-cross (the same cross as in ``next``);
    # when that open also gaps through the target both fill at the open, backtesting.py
    # calling it the target's fill.
    close = pd.Series(data.close)
    fast = close.rolling(params["fast"]).mean().to_numpy()
    slow = close.rolling(params["slow"]).mean().to_numpy()
    down = np.r_[False, (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])]
    x = trades["ExitBar"].to_numpy()
    signal_exit = down[x - 1]
    in_pos = np.zeros(len(data), dtype=bool)
    for e, x, sig in zip(trades["EntryBar"], trades["ExitBar"], signal_exit, strict=True):
        in_pos[e : x + (0 if sig else 1)] = True
    for t in stats["_strategy"].trades:  # still open at the end
        in_pos[t.entry_bar :] = True
    hours = (trades["ExitBar"] - trades["EntryBar"]).to_numpy()
    return trades, equity, pnl, in_pos, hours


def test_backtesting_py_sees_every_exit_rule(bt_runs):
    data, runs = bt_runs
    stops = targets = gaps = 0
    for stats in runs:
        t = stats["_trades"]
        stops += (t["ExitPrice"] <= t["SL"]).sum()
        gaps += (t["ExitPrice"] < t["SL"]).sum()  # opened through the stop
        targets += (t["ExitPrice"] >= t["TP"]).sum()
    assert stops > 10 and targets > 10 and gaps > 0
    assert sum(int(s["# Trades"]) for s in runs) > 60


@pytest.mark.parametrize("k", range(len(BT_GRID)))
def test_run_matches_backtesting_py_trade_by_trade(bt_runs, k):
    data, runs = bt_runs
    strat = get_strategy("sma_cross")
    res = strat.run(strat.prepare(data), BT_GRID[k], Costs(0.1, 0.0, 10_000.0))
    trades, equity, pnl, in_pos, _ = _bt_expected(data, runs[k], BT_GRID[k])
    t = res.trades
    assert len(t) == len(trades) > 0
    np.testing.assert_array_equal(t.entry_idx, trades["EntryBar"])
    np.testing.assert_array_equal(t.exit_idx, trades["ExitBar"])
    assert np.allclose(t.entry_price, trades["EntryPrice"], rtol=1e-12)
    assert np.allclose(t.exit_price, trades["ExitPrice"], rtol=1e-12)
    assert np.allclose(t.pnl_pct, pnl, rtol=1e-8, atol=1e-9)
    assert np.allclose(res.equity / 10_000.0, equity, rtol=1e-9)
    np.testing.assert_array_equal(res.in_position, in_pos)
    still_open = runs[k]["_strategy"].trades
    assert [int(x) for x in res.open_trade.entry_idx] == [x.entry_bar for x in still_open]
    assert np.allclose(res.open_trade.entry_price, [x.entry_price for x in still_open], rtol=1e-12)


def test_some_backtesting_py_runs_end_with_a_position_open(bt_runs):
    _, runs = bt_runs
    held = sum(len(stats["_strategy"].trades) for stats in runs)
    assert 0 < held < len(runs)


def test_the_sweep_path_matches_backtesting_py(bt_runs):
    data, runs = bt_runs
    strat = get_strategy("sma_cross")
    rows = run_params(strat, strat.prepare(data), BT_GRID, Costs(0.1, 0.0, 10_000.0))
    for k, stats in enumerate(runs):
        trades, equity, pnl, in_pos, hours = _bt_expected(data, stats, BT_GRID[k])
        # backtesting.py's own headline numbers, in its own units
        assert np.isclose(rows[k, METRIC_NAMES.index("total_return_pct")], stats["Return [%]"])
        assert rows[k, METRIC_NAMES.index("n_trades")] == stats["# Trades"]
        assert np.isclose(rows[k, METRIC_NAMES.index("win_rate")], stats["Win Rate [%]"])
        assert np.isclose(
            rows[k, METRIC_NAMES.index("max_drawdown_pct")], stats["Max. Drawdown [%]"]
        )
        # and every trade metric from its ledger
        expected = ref.metrics(equity, 1.0, pnl, in_pos, hours, bars_per_year("1h"))
        ref.assert_metrics(rows[k], expected, rtol=1e-7)
