"""The metric definitions, checked on hand-built equity curves and trade lists.

Every expected value is written out by hand (arithmetic in the comments) or is a numpy
one-liner of the textbook formula, never an earlier output of the engine.  Formulas, as in
the docstring of ``backtestlab.engine.metrics``, with ``r = diff(eq) / eq[:-1]``:

- Sharpe  = mean(r) / std(r, ddof=1) * sqrt(bars per year)
- Sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(bars per year)
- CAGR    = (eq[-1] / E0) ** (1 / years) - 1, years = (ts[-1] - ts[0] + one bar) / 365.25 d
- drawdown = min(eq / cummax(eq) - 1); Calmar = CAGR / |max drawdown|

A crypto year has 8760 hours: 525 600 one-minute bars, 8760 hourly, 2190 four-hour, 365 daily.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from backtestlab.engine.backtest_result import BacktestResult, Trades
from backtestlab.engine.data import MarketData
from backtestlab.engine.metrics import (
    M_CALMAR,
    M_PROFIT_FACTOR,
    M_SORTINO,
    METRIC_NAMES,
    METRICS,
    N_METRICS,
    Metrics,
    compute,
    compute_row,
    metrics_kernel,
)
from backtestlab.engine.simulate import simulate
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.timeframes import bars_per_year

START = 1672531200
DAY = 86400
YEAR_S = 365.25 * DAY  # CAGR's year
BPY = {"1m": 525_600.0, "1h": 8_760.0, "4h": 2_190.0, "1d": 365.0}
BAR_S = {"1m": 60, "1h": 3600, "4h": 14_400, "1d": DAY}
TRADE_METRICS = (
    "win_rate",
    "profit_factor",
    "expectancy_pct",
    "avg_win_pct",
    "avg_loss_pct",
    "avg_trade_duration_h",
)

# The curve most tests use: +10 %, -10 %, +10 %, +20 %.
#   eq = 100, 110, 99, 108.9, 130.68
#   mean r = 0.3 / 4 = 0.075
#   std(r, ddof=1): deviations 0.025, -0.175, 0.025, 0.125; squares sum to 0.0475; / 3
#   downside: only -0.1, so sqrt(0.01 / 4) = 0.05 and Sortino per bar = 0.075 / 0.05 = 1.5
#   drawdown: 99 / 110 - 1 = -10 %
CURVE = [100.0, 110.0, 99.0, 108.9, 130.68]
SHARPE_PER_BAR = 0.075 / math.sqrt(0.0475 / 3)  # 0.59604
SORTINO_PER_BAR = 1.5


def backtest(
    equity,
    *,
    e0: float | None = None,
    timeframe: str = "1h",
    ts=None,
    pnl=(),
    entry_idx=None,
    exit_idx=None,
    in_pos=None,
    bpy: float | None = None,
) -> BacktestResult:
    """A BacktestResult built by hand (no simulator involved)."""
    equity = np.asarray(equity, dtype=np.float64)
    n = len(equity)
    if ts is None:
        ts = START + np.arange(n, dtype=np.int64) * BAR_S[timeframe]
    ts = np.asarray(ts, dtype=np.int64)
    pnl = np.asarray(pnl, dtype=np.float64)
    k = len(pnl)
    entry_idx = np.zeros(k, np.int64) if entry_idx is None else np.asarray(entry_idx, np.int64)
    exit_idx = entry_idx.copy() if exit_idx is None else np.asarray(exit_idx, np.int64)
    trades = Trades(
        entry_idx=entry_idx,
        exit_idx=exit_idx,
        entry_ts=ts[entry_idx],
        exit_ts=ts[exit_idx],
        entry_price=np.full(k, 100.0),
        exit_price=np.full(k, 100.0),
        side=np.ones(k, np.int8),
        pnl_pct=pnl,
        reason=np.full(k, "signal"),
    )
    if e0 is None:
        e0 = float(equity[0]) if n else 100.0
    return BacktestResult(
        ts=ts,
        equity=equity,
        trades=trades,
        bars_per_year=BPY[timeframe] if bpy is None else bpy,
        initial_equity=e0,
        in_position=np.zeros(n, bool) if in_pos is None else np.asarray(in_pos, bool),
    )


def close(actual: float, expected: float) -> bool:
    return bool(np.isclose(actual, expected, rtol=1e-10, atol=0.0))


def textbook_sharpe(eq, bpy):
    r = np.diff(eq) / eq[:-1]
    return r.mean() / r.std(ddof=1) * np.sqrt(bpy)


def textbook_sortino(eq, bpy):
    r = np.diff(eq) / eq[:-1]
    return r.mean() / np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(bpy)


def textbook_drawdown_pct(eq):
    return (eq / np.maximum.accumulate(eq) - 1).min() * 100


# --- annualisation per timeframe ----------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "expected"),
    [
        ("1m", 525_600),  # 8760 h * 60
        ("5m", 105_120),  # 8760 h * 12
        ("15m", 35_040),  # 8760 h * 4
        ("1h", 8_760),
        ("4h", 2_190),  # 8760 / 4
        ("1d", 365),  # 8760 / 24
    ],
)
def test_bars_per_year_counts_a_round_the_clock_year_of_each_timeframe(timeframe, expected):
    assert bars_per_year(timeframe) == expected


@pytest.mark.parametrize("timeframe", ["1m", "1h", "4h", "1d"])
def test_sharpe_is_annualised_with_the_square_root_of_the_timeframes_bars_per_year(timeframe):
    m = compute(backtest(CURVE, timeframe=timeframe))
    # 1m: 0.59604 * sqrt(525600) = 432.12; 1h: * sqrt(8760) = 55.787;
    # 4h: * sqrt(2190) = 27.893; 1d: * sqrt(365) = 11.387
    assert close(m.sharpe, SHARPE_PER_BAR * math.sqrt(BPY[timeframe]))
    assert close(m.sharpe, textbook_sharpe(np.array(CURVE), BPY[timeframe]))


@pytest.mark.parametrize("timeframe", ["1m", "1h", "4h", "1d"])
def test_sortino_is_annualised_with_the_square_root_of_the_timeframes_bars_per_year(timeframe):
    m = compute(backtest(CURVE, timeframe=timeframe))
    # 1.5 * sqrt(bpy): 1m 1087.5, 1h 140.39, 4h 70.196, 1d 28.658
    assert close(m.sortino, SORTINO_PER_BAR * math.sqrt(BPY[timeframe]))
    assert close(m.sortino, textbook_sortino(np.array(CURVE), BPY[timeframe]))


@pytest.mark.parametrize("timeframe", ["1m", "1h", "4h", "1d"])
def test_a_simulated_run_is_annualised_with_its_datasets_timeframe(timeframe):
    # Hold a long from the open of bar 1 to the last close with no costs: equity follows the
    # close, so the curve is 100, 110, 99, 108.9, 130.68 and the Sharpe is the hand value.
    price = np.array(CURVE)
    n = len(price)
    data = MarketData(
        symbol="TEST",
        timeframe=timeframe,
        ts=START + np.arange(n, dtype=np.int64) * BAR_S[timeframe],
        open=np.r_[price[:1], price[:-1]],
        high=price,
        low=np.r_[price[:1], np.minimum(price[1:], price[:-1])],
        close=price,
        volume=np.ones(n),
    )
    entries = np.zeros(n, bool)
    entries[0] = True
    res = simulate(
        data,
        entries,
        costs=Costs(commission_pct=0.0, slippage_pct=0.0, initial_equity=100.0),
    )
    assert res.bars_per_year == BPY[timeframe]
    assert np.allclose(res.equity, CURVE, rtol=1e-12)
    assert close(compute(res).sharpe, SHARPE_PER_BAR * math.sqrt(BPY[timeframe]))


def test_sharpe_scales_with_the_square_root_of_the_ratio_of_bars_per_year():
    minute = compute(backtest(CURVE, timeframe="1m")).sharpe
    day = compute(backtest(CURVE, timeframe="1d")).sharpe
    assert close(minute / day, math.sqrt(1440))  # 1440 one-minute bars per day


# --- CAGR ---------------------------------------------------------------------------------


def test_cagr_over_four_years_of_daily_bars_is_the_fourth_root_of_the_growth():
    # 1461 daily bars = 4 * 365.25 days; equity doubles: (2 ** (1/4) - 1) = 18.9207 %
    eq = 100.0 * 2.0 ** (np.arange(1461) / 1460)
    m = compute(backtest(eq, timeframe="1d"))
    assert close(m.total_return_pct, 100.0)
    assert close(m.cagr_pct, 18.920711500272102)


def test_cagr_reads_the_span_of_the_timestamps_plus_one_bar():
    # Two daily bars 2 years apart (a gap in the data): years = (2 * 365.25 d - 1 d + 1 d)
    # / 365.25 d = 2; equity halves: 0.5 ** 0.5 - 1 = -29.2893 %
    ts = np.array([START, START + int(2 * YEAR_S) - DAY])
    m = compute(backtest([100.0, 50.0], ts=ts, timeframe="1d"))
    assert close(m.cagr_pct, -29.28932188134524)


@pytest.mark.parametrize(
    ("timeframe", "n_bars"),
    [("1h", 24), ("1d", 1), ("1m", 1440), ("4h", 6)],
)
def test_cagr_on_a_one_day_window_compounds_the_days_return_365_25_times(timeframe, n_bars):
    # One day of bars, +1 %: years = 1 / 365.25, so CAGR = 1.01 ** 365.25 - 1 = 3687.754 %
    eq = np.linspace(100.0, 101.0, n_bars) if n_bars > 1 else np.array([101.0])
    m = compute(backtest(eq, e0=100.0, timeframe=timeframe))
    assert close(m.cagr_pct, 3687.7540751204215)
    assert close(m.total_return_pct, 1.0)


def test_cagr_too_large_for_a_float_is_nan_not_infinite():
    # Doubling in 2 minutes: 2 ** (365.25 * 24 * 30) overflows.  Never report inf.
    m = compute(backtest([100.0, 90.0, 200.0], e0=100.0, timeframe="1m"))
    assert math.isnan(m.cagr_pct)
    assert math.isnan(m.calmar)
    assert close(m.total_return_pct, 100.0)


def test_a_wipe_out_is_minus_100_percent_cagr_total_return_and_drawdown():
    m = compute(backtest([100.0, 120.0, 0.0], timeframe="1d"))
    assert m.cagr_pct == -100.0
    assert m.total_return_pct == -100.0
    assert m.max_drawdown_pct == -100.0
    assert m.calmar == -1.0  # -100 % / |-100 %|


def test_a_wipe_out_followed_by_flat_bars_counts_their_returns_as_zero():
    # eq 100, 60, 0, 0: r = -0.4, -1.0 and 0 (nothing left to lose, not 0 / 0).
    eq = [100.0, 60.0, 0.0, 0.0]
    r = np.array([-0.4, -1.0, 0.0])
    m = compute(backtest(eq, timeframe="1d"))
    assert m.cagr_pct == -100.0
    assert close(m.sharpe, r.mean() / r.std(ddof=1) * math.sqrt(365))  # -0.92717 * 19.105
    assert close(m.sortino, r.mean() / math.sqrt((0.16 + 1.0) / 3) * math.sqrt(365))
    assert m.calmar == -1.0


def test_a_near_wipe_out_is_not_a_wipe_out():
    # 100 -> 0.5 over 4 years (two daily bars 4 * 365.25 - 1 days apart): 0.005 ** 0.25 - 1
    ts = np.array([START, START + int(4 * YEAR_S) - DAY])
    m = compute(backtest([100.0, 0.5], ts=ts, timeframe="1d"))
    assert close(m.cagr_pct, -73.40852051527506)
    assert close(m.total_return_pct, -99.5)


def test_a_negative_final_equity_is_a_wipe_out_and_returns_after_it_are_zero():
    # A hand-built curve may go below 0 (the simulator closes out at 0 instead): from a
    # non-positive equity nothing is left to gain or lose, so those returns count as 0.
    eq = [100.0, -50.0, 20.0, -0.5]
    r = np.array([-1.5, 0.0, -1.025])  # -50 / 100 - 1, then 0 from -50, then -0.5 / 20 - 1
    m = compute(backtest(eq, timeframe="1d"))
    assert m.cagr_pct == -100.0
    assert close(m.sharpe, r.mean() / r.std(ddof=1) * math.sqrt(365))
    assert close(m.sortino, r.mean() / math.sqrt(np.mean(r**2)) * math.sqrt(365))


def test_one_bar_has_a_total_return_and_cagr_but_no_ratios():
    m = compute(backtest([102.0], e0=100.0, timeframe="1d"))
    assert close(m.total_return_pct, 2.0)
    assert close(m.cagr_pct, (1.02**365.25 - 1) * 100)  # one day, +2 %
    assert math.isnan(m.sharpe) and math.isnan(m.sortino) and math.isnan(m.calmar)
    assert m.max_drawdown_pct == 0.0


# --- Sharpe and Sortino -------------------------------------------------------------------


def test_sharpe_and_sortino_match_the_textbook_on_a_random_curve():
    rng = np.random.default_rng(19)
    eq = 1000.0 * np.cumprod(1 + rng.normal(0.0005, 0.01, 60))
    m = compute(backtest(eq, timeframe="4h"))
    assert close(m.sharpe, textbook_sharpe(eq, 2190.0))
    assert close(m.sortino, textbook_sortino(eq, 2190.0))
    assert close(m.max_drawdown_pct, textbook_drawdown_pct(eq))


def test_sharpe_needs_two_returns():
    assert math.isnan(compute(backtest([100.0, 110.0])).sharpe)  # one return
    # Two returns +50 %, -50 % (exact in binary): mean 0 -> Sharpe 0 (defined, not NaN)
    assert compute(backtest([100.0, 150.0, 75.0])).sharpe == 0.0
    # +10 %, +20 %: mean 0.15, std(ddof=1) = 0.05 * sqrt(2) = 0.070711 -> 2.1213 * sqrt(8760)
    m = compute(backtest([100.0, 110.0, 132.0]))
    assert close(m.sharpe, 0.15 / (0.05 * math.sqrt(2)) * math.sqrt(8760))


def test_flat_equity_has_no_sharpe_no_sortino_no_drawdown_and_no_calmar():
    m = compute(backtest([100.0] * 6, timeframe="1d"))
    assert math.isnan(m.sharpe) and math.isnan(m.sortino) and math.isnan(m.calmar)
    assert m.max_drawdown_pct == 0.0 and m.total_return_pct == 0.0 and m.cagr_pct == 0.0


def test_float_noise_on_a_flat_curve_is_not_a_sharpe_ratio():
    # Returns of +-1e-16 are rounding, not a strategy: std(r) < 1e-14 counts as zero.
    eq = 100.0 * (1 + np.array([0.0, 1e-16, 0.0, 2e-16, 0.0, 1e-16]))
    assert math.isnan(compute(backtest(eq)).sharpe)
    # ... while a real, small wiggle (returns of about 1e-5) still has one.
    eq = np.array([100.0, 100.001, 100.003, 100.002])
    sharpe = compute(backtest(eq)).sharpe
    assert np.isclose(sharpe, textbook_sharpe(eq, 8760.0), rtol=1e-8)


def test_sortino_is_infinite_without_a_losing_bar_and_defined_from_one_loss():
    # Nothing ever lost and something gained: unbounded, ranked above every finite value.
    assert compute(backtest([100.0, 101.0, 103.0])).sortino == math.inf
    assert compute(backtest([100.0, 100.0, 100.5, 100.5])).sortino == math.inf
    # Nothing moved at all: no ratio (flat curves are tested below).
    assert math.isnan(compute(backtest([100.0, 100.0, 100.0])).sortino)
    # One return of -5 %: mean / sqrt(mean(r^2)) = -0.05 / 0.05 = -1 per bar
    assert close(compute(backtest([100.0, 95.0])).sortino, -math.sqrt(8760))
    # Only losses, -10 % then -20 %: mean -0.15, downside sqrt((0.01 + 0.04) / 2) = 0.15811
    m = compute(backtest([100.0, 90.0, 72.0]))
    assert close(m.sortino, -0.15 / math.sqrt(0.025) * math.sqrt(8760))


# --- drawdown and Calmar ------------------------------------------------------------------


def test_max_drawdown_is_the_deepest_fall_from_a_running_peak():
    # 120 -> 90 is -25 %; the later 130 -> 104 is only -20 %
    m = compute(backtest([100.0, 120.0, 90.0, 130.0, 104.0]))
    assert close(m.max_drawdown_pct, -25.0)


def test_drawdown_is_zero_and_calmar_infinite_when_equity_never_falls_but_grows():
    m = compute(backtest([100.0, 100.0, 101.0, 105.0], timeframe="1d"))
    assert m.max_drawdown_pct == 0.0
    assert m.calmar == math.inf
    assert m.cagr_pct > 0
    assert compute(backtest([100.0, 101.0], timeframe="1d")).calmar == math.inf  # two bars
    # No drawdown and no growth: no ratio.
    m = compute(backtest([100.0, 100.0, 100.0], timeframe="1d"))
    assert m.max_drawdown_pct == 0.0 and m.cagr_pct == 0.0 and math.isnan(m.calmar)


def test_calmar_is_cagr_over_the_absolute_drawdown():
    # 1461 daily bars (4 years) doubling overall; one step falls 20 % and the other 1459 grow
    # by g with g ** 1459 * 0.8 = 2, so the drop bar is the only one below its running peak.
    steps = np.full(1460, (2.0 / 0.8) ** (1 / 1459))
    steps[700] = 0.8
    eq = 100.0 * np.r_[1.0, np.cumprod(steps)]
    m = compute(backtest(eq, timeframe="1d"))
    assert close(m.max_drawdown_pct, -20.0)
    assert close(m.cagr_pct, 18.920711500272102)  # 2 ** (1/4) - 1
    assert close(m.calmar, 18.920711500272102 / 20.0)


def test_the_hand_curve_gives_every_equity_metric_its_hand_value():
    m = compute(backtest(CURVE, timeframe="1d"))
    # 5 daily bars: years = 5 / 365.25
    cagr = (1.3068 ** (365.25 / 5) - 1) * 100  # 3.0837e10 %
    assert close(m.total_return_pct, 30.68)
    assert close(m.max_drawdown_pct, -10.0)
    assert close(m.cagr_pct, cagr)
    assert close(m.calmar, cagr / 10.0)


# --- trade statistics ---------------------------------------------------------------------

# 8 trades on 20 hourly bars: pnl 2, -1, 0, 3, 4, -2, -1, -1 (%)
PNL = [2.0, -1.0, 0.0, 3.0, 4.0, -2.0, -1.0, -1.0]
ENTRY = [0, 1, 2, 4, 6, 9, 12, 15]
EXIT = [1, 2, 4, 6, 9, 12, 15, 19]  # durations 1, 1, 2, 2, 3, 3, 3, 4 h = 19 h


def trades_result(pnl, *, entry=None, exit_=None, n=20, timeframe="1h"):
    k = len(pnl)
    return backtest(
        np.full(n, 100.0),
        timeframe=timeframe,
        pnl=pnl,
        entry_idx=list(range(k)) if entry is None else entry,
        exit_idx=list(range(k)) if exit_ is None else exit_,
    )


def test_trade_statistics_of_a_mixed_list():
    m = compute(trades_result(PNL, entry=ENTRY, exit_=EXIT))
    assert m.n_trades == 8
    assert m.win_rate == 37.5  # 3 of 8 (2, 3, 4); the 0 is not a win
    assert close(m.profit_factor, 1.8)  # (2 + 3 + 4) / |-1 - 2 - 1 - 1| = 9 / 5
    assert close(m.expectancy_pct, 0.5)  # 4 / 8
    assert close(m.avg_win_pct, 3.0)  # 9 / 3
    assert close(m.avg_loss_pct, -1.25)  # -5 / 4
    assert m.max_consec_wins == 2  # 3, 4
    assert m.max_consec_losses == 3  # -2, -1, -1 at the end
    assert close(m.avg_trade_duration_h, 19 / 8)


def test_trade_duration_is_in_hours_whatever_the_timeframe():
    # daily bars: 0 -> 2 is 48 h, 1 -> 1 is 0 h (in and out within one bar)
    m = compute(trades_result([1.0, -1.0], entry=[0, 1], exit_=[2, 1], timeframe="1d"))
    assert close(m.avg_trade_duration_h, 24.0)
    # one-minute bars: 90 and 45 minutes are 1.5 h and 0.75 h, not whole hours
    m = compute(trades_result([1.0, 1.0], entry=[0, 5], exit_=[90, 50], n=100, timeframe="1m"))
    assert close(m.avg_trade_duration_h, (1.5 + 0.75) / 2)


@pytest.mark.parametrize(
    ("pnl", "wins", "losses"),
    [
        ([1.0, 0.0, 1.0], 1, 0),  # a zero between two wins breaks the run
        ([-1.0, 0.0, -1.0], 0, 1),  # ... and between two losses
        ([1.0, 1.0, 0.0, 1.0], 2, 0),
        ([-1.0, -1.0, 0.0, -1.0, 1.0], 1, 2),
        ([1.0, -1.0, 1.0, 1.0, 1.0], 3, 1),  # the longest run is the last one
        ([-1.0, 1.0, -1.0, -1.0], 1, 2),
        ([0.0, 0.0], 0, 0),
        ([0.0, 1.0, 1.0], 2, 0),  # a run after a zero counts from its first trade
        ([0.0, -1.0, -1.0], 0, 2),
    ],
)
def test_a_zero_pnl_trade_breaks_winning_and_losing_streaks(pnl, wins, losses):
    m = compute(trades_result(pnl))
    assert (m.max_consec_wins, m.max_consec_losses) == (wins, losses)


def test_a_zero_pnl_trade_is_neither_a_win_nor_a_loss():
    m = compute(trades_result([2.0, 0.0, -1.0, 0.0]))
    assert m.win_rate == 25.0
    assert m.avg_win_pct == 2.0 and m.avg_loss_pct == -1.0
    assert m.profit_factor == 2.0
    assert m.expectancy_pct == 0.25  # 1 / 4: zeros count in the mean


def test_without_a_losing_trade_profit_factor_is_infinite_and_average_loss_nan():
    m = compute(trades_result([1.0, 3.0]))
    assert m.profit_factor == math.inf  # not 999: wins and nothing lost
    assert math.isnan(m.avg_loss_pct)
    # Neither a win nor a loss (only zero-pnl trades): no ratio at all.
    assert math.isnan(compute(trades_result([0.0, 0.0])).profit_factor)
    assert compute(trades_result([0.0, 2.0, 0.0])).profit_factor == math.inf
    assert m.win_rate == 100.0 and m.avg_win_pct == 2.0 and m.max_consec_losses == 0


def test_without_a_winning_trade_profit_factor_is_zero():
    m = compute(trades_result([-1.0, -3.0]))
    assert m.profit_factor == 0.0  # 0 / 4
    assert math.isnan(m.avg_win_pct)
    assert m.win_rate == 0.0 and m.avg_loss_pct == -2.0
    assert (m.max_consec_wins, m.max_consec_losses) == (0, 2)


def test_only_zero_pnl_trades_have_no_profit_factor():
    m = compute(trades_result([0.0, 0.0]))
    assert math.isnan(m.profit_factor)
    assert m.win_rate == 0.0 and m.expectancy_pct == 0.0


def test_without_trades_trade_statistics_are_nan_and_counts_zero():
    m = compute(backtest(CURVE))
    for name in TRADE_METRICS:
        assert math.isnan(getattr(m, name)), name
    assert (m.n_trades, m.max_consec_wins, m.max_consec_losses) == (0, 0, 0)
    assert close(m.total_return_pct, 30.68)  # the equity metrics do not need trades


def test_one_trade():
    m = compute(trades_result([-4.0], entry=[3], exit_=[5]))
    assert m.n_trades == 1 and m.win_rate == 0.0 and m.expectancy_pct == -4.0
    assert m.avg_loss_pct == -4.0 and m.profit_factor == 0.0 and m.avg_trade_duration_h == 2.0


# --- exposure -----------------------------------------------------------------------------


def test_exposure_is_the_percent_of_bars_with_a_position():
    in_pos = [0, 1, 1, 0, 0, 1, 0, 0]
    assert compute(backtest(np.full(8, 100.0), in_pos=in_pos)).exposure_pct == 37.5  # 3 / 8
    assert compute(backtest(np.full(8, 100.0))).exposure_pct == 0.0
    assert compute(backtest(np.full(4, 100.0), in_pos=[1, 1, 1, 1])).exposure_pct == 100.0


# --- no data, no capital ------------------------------------------------------------------


def test_no_bars_give_nan_for_every_equity_metric():
    m = compute(backtest(np.empty(0), e0=100.0))
    for name in METRIC_NAMES:
        if name in ("n_trades", "max_consec_wins", "max_consec_losses"):
            assert getattr(m, name) == 0.0, name
        else:
            assert math.isnan(getattr(m, name)), name


@pytest.mark.parametrize("e0", [0.0, -100.0])
def test_without_initial_capital_the_equity_metrics_are_undefined(e0):
    m = compute(backtest(CURVE, e0=e0))
    for name in ("total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar"):
        assert math.isnan(getattr(m, name)), name
    assert math.isnan(m.max_drawdown_pct) and math.isnan(m.exposure_pct)


@pytest.mark.parametrize(
    "result",
    [
        backtest(np.empty(0), e0=100.0),
        backtest([100.0]),
        backtest([100.0, 95.0]),
        backtest([100.0] * 5),
        backtest([100.0, 60.0, 0.0, 0.0]),
        trades_result([1.0, 2.0]),
        trades_result([0.0]),
        trades_result([-1.0]),
    ],
    ids=[
        "no bars",
        "one bar",
        "one return",
        "flat",
        "wipe-out",
        "no losses",
        "zero pnl",
        "no wins",
    ],
)
def test_degenerate_inputs_raise_no_floating_point_warning(result):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        row = compute_row(result)
    # Only a ratio whose denominator is 0 may be infinite, and then only +inf.
    assert set(np.flatnonzero(np.isinf(row))) <= {M_SORTINO, M_CALMAR, M_PROFIT_FACTOR}
    assert not (row == -np.inf).any()


# --- the kernel's buffers -----------------------------------------------------------------


def test_the_kernel_reads_only_the_first_n_trades_and_overwrites_every_output():
    # Oversize trade buffers (as the sweep paths pass them) hold stale trades past n_trades,
    # and the output row holds a stale metric row; neither may leak into the result.
    n_trades = 2
    pnl = np.array([1.0, -1.0, -50.0, 70.0])
    entry = np.array([0, 1, 0, 0], np.int64)
    exit_ = np.array([1, 2, 4, 4], np.int64)
    ts = START + np.arange(5, dtype=np.int64) * 3600
    out = np.full(N_METRICS, 7.0)
    eq = np.full(5, 100.0)
    metrics_kernel(ts, eq, np.zeros(5, bool), entry, exit_, pnl, n_trades, 8760.0, 100.0, out)
    m = Metrics.from_row(out)
    assert m.n_trades == 2 and m.win_rate == 50.0 and m.profit_factor == 1.0
    assert m.expectancy_pct == 0.0 and m.avg_trade_duration_h == 1.0
    assert math.isnan(m.sharpe) and math.isnan(m.sortino) and math.isnan(m.calmar)


def test_metrics_round_trip_through_a_row_and_a_dict():
    res = trades_result(PNL, entry=ENTRY, exit_=EXIT)
    row = compute_row(res)
    m = compute(res)
    assert np.array_equal(m.as_row(), row, equal_nan=True)
    assert list(m.as_dict()) == list(METRIC_NAMES)
    assert m.as_dict()["profit_factor"] == row[METRIC_NAMES.index("profit_factor")]
    for bad in (row[:-1], np.r_[row, 1.0], row[None, :]):
        with pytest.raises(ValueError, match="expected 16 metric values"):
            Metrics.from_row(bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.sharpe = 0.0  # type: ignore[misc]


def test_the_metric_table_cannot_be_changed_at_run_time():
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["sharpe"].higher_is_better = False  # type: ignore[misc]


def test_each_metric_says_which_direction_is_better():
    # Ranking a sweep by a metric must prefer the right end: a shallower drawdown (closer to
    # 0) and a smaller average loss are better; long losing streaks, long trades and a high
    # exposure are not "better" in themselves.
    lower_or_neutral = {"max_consec_losses", "avg_trade_duration_h", "exposure_pct"}
    for name, info in METRICS.items():
        assert info.higher_is_better == (name not in lower_or_neutral), name
    objectives = {n for n, info in METRICS.items() if info.objective}
    assert objectives == {
        "total_return_pct",
        "cagr_pct",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown_pct",
        "win_rate",
        "profit_factor",
        "expectancy_pct",
    }


# --- invariants ---------------------------------------------------------------------------


def random_curves(seed: int = 7, count: int = 25):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(3, 40))
        yield 1000.0 * np.cumprod(1 + rng.normal(0.0, rng.uniform(0.001, 0.2), n))


def test_drawdown_is_never_positive_nor_below_minus_100_percent():
    for eq in random_curves():
        m = compute(backtest(eq))
        assert -100.0 <= m.max_drawdown_pct <= 0.0
        assert close(m.max_drawdown_pct, textbook_drawdown_pct(eq))


@pytest.mark.parametrize("epoch", [3600, START + 10**9])
def test_moving_the_timestamps_to_another_epoch_changes_no_metric(epoch):
    # Only differences of timestamps matter (CAGR's window, trade durations).
    ts = START + np.arange(20, dtype=np.int64) * 3600
    eq = np.r_[np.linspace(100.0, 130.0, 10), np.linspace(125.0, 110.0, 10)]
    kw = {"pnl": PNL, "entry_idx": ENTRY, "exit_idx": EXIT}
    a = compute_row(backtest(eq, ts=ts, **kw))
    b = compute_row(backtest(eq, ts=ts - START + epoch, **kw))
    assert np.array_equal(a, b, equal_nan=True)
    assert close(a[METRIC_NAMES.index("avg_trade_duration_h")], 19 / 8)


@pytest.mark.parametrize("factor", [1e-6, 0.001, 3.0, 1e6])
def test_scaling_equity_leaves_every_return_based_metric_unchanged(factor):
    names = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct")
    for eq in random_curves():
        a = compute(backtest(eq, timeframe="1d"))
        b = compute(backtest(eq * factor, e0=eq[0] * factor, timeframe="1d"))
        for name in names:
            x, y = getattr(a, name), getattr(b, name)
            assert (math.isnan(x) and math.isnan(y)) or np.isclose(x, y, rtol=1e-9), name


def test_sharpe_has_the_sign_of_the_mean_return():
    for eq in random_curves(seed=11):
        mean = np.mean(np.diff(eq) / eq[:-1])
        assert np.sign(compute(backtest(eq)).sharpe) == np.sign(mean)


def test_win_loss_and_zero_shares_add_up_and_expectancy_is_their_weighted_mean():
    rng = np.random.default_rng(5)
    for _ in range(20):
        pnl = np.round(rng.normal(0, 2, int(rng.integers(1, 15))), 0)  # some exact zeros
        m = compute(trades_result(list(pnl)))
        wins, losses = pnl[pnl > 0], pnl[pnl < 0]
        assert close(m.win_rate, 100 * len(wins) / len(pnl))
        ew = m.win_rate / 100 * (m.avg_win_pct if len(wins) else 0.0)
        el = len(losses) / len(pnl) * (m.avg_loss_pct if len(losses) else 0.0)
        assert np.isclose(m.expectancy_pct, ew + el, atol=1e-12)
        assert m.max_consec_wins <= len(wins) and m.max_consec_losses <= len(losses)


def test_every_metric_is_finite_nan_or_an_unbounded_ratio_on_extreme_curves():
    curves = [
        [100.0, 1e-300, 1e300],
        [1e-300, 1e300],
        [100.0, 0.0, 100.0],
        [100.0, 200.0, 0.0, 0.0, 0.0],
        list(np.geomspace(1.0, 1e300, 30)),
    ]
    for eq in curves:
        for timeframe in ("1m", "1d"):
            m = compute(backtest(eq, e0=100.0, timeframe=timeframe))
            row = m.as_row()
            # Overflowing values are NaN; +inf only where nothing was ever lost.
            infinite = {METRIC_NAMES[k] for k in np.flatnonzero(np.isinf(row))}
            never_fell = bool(np.all(np.diff(eq) >= 0))
            assert infinite <= ({"sortino", "calmar"} if never_fell else set()), (eq, timeframe)
            assert (m.sortino == math.inf) == (never_fell and eq[-1] > eq[0]), (eq, timeframe)
