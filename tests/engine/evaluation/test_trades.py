"""StrategyStats and TradeResult against the seed's formulas (golden numbers)."""

import datetime as dt
import math

import numpy as np
import pytest

from backtestlab.engine.evaluation.trades import (
    NoTradesError,
    TradeResult,
    compute_strategy_stats,
    trades_from_backtest,
)

T0 = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
PNLS = [0.02, -0.01, -0.01, 0.03, 0.0, -0.02, 0.01, 0.01, 0.01, -0.005]


def make_trades(pnls, days=40):
    return [
        TradeResult(T0 + dt.timedelta(days=days * k), p, p > 0, "BTC", f"c{k}")
        for k, p in enumerate(pnls)
    ]


def test_stats_match_the_seed_formulas():
    s = compute_strategy_stats(make_trades(PNLS))
    assert s.n_trades == 10
    assert s.win_rate == pytest.approx(0.5)
    assert s.avg_win == pytest.approx(0.016)
    assert s.avg_loss == pytest.approx(-0.045 / 4)
    # loss rate 0.4 (the zero trade is neither): expectancy == mean pnl
    assert s.expectancy_per_trade == pytest.approx(np.mean(PNLS), rel=1e-12)
    assert s.max_consec_losses == 2
    assert s.max_consec_wins == 3
    eq = np.cumprod(1 + np.array(PNLS))
    dd = (eq / np.maximum.accumulate(np.concatenate([[1.0], eq]))[1:] - 1).min()
    assert s.max_drawdown_pct == pytest.approx(dd, rel=1e-12)
    assert s.years_covered == pytest.approx(360 / 365.25)


def test_the_backtests_own_drawdown_replaces_the_closed_trade_one_and_nothing_else():
    closed = compute_strategy_stats(make_trades(PNLS))
    curve = compute_strategy_stats(make_trades(PNLS), max_drawdown=-0.131)
    assert curve.max_drawdown_pct == -0.131 and closed.max_drawdown_pct > -0.131
    assert {**curve.as_dict(), "max_drawdown_pct": 0} == {**closed.as_dict(), "max_drawdown_pct": 0}


def test_expectancy_differs_from_the_seeds_only_with_break_even_trades():
    s = compute_strategy_stats(make_trades(PNLS))
    seed_expectancy = s.win_rate * s.avg_win + (1 - s.win_rate) * s.avg_loss
    assert seed_expectancy != pytest.approx(s.expectancy_per_trade)
    no_zero = [p for p in PNLS if p != 0]
    s2 = compute_strategy_stats(make_trades(no_zero))
    assert s2.win_rate * s2.avg_win + (1 - s2.win_rate) * s2.avg_loss == pytest.approx(
        s2.expectancy_per_trade
    )


def test_no_trades_is_a_clear_error():
    with pytest.raises(NoTradesError, match="No trades"):
        compute_strategy_stats([])


def test_one_trade_spans_one_day_at_least():
    s = compute_strategy_stats(make_trades([0.05]))
    assert s.n_trades == 1 and s.win_rate == 1.0 and s.max_drawdown_pct == 0.0
    assert s.years_covered == pytest.approx(1 / 365.25)


def test_all_wins_and_all_losses():
    w = compute_strategy_stats(make_trades([0.01] * 5))
    assert (w.win_rate, w.avg_loss, w.max_consec_wins, w.max_consec_losses) == (1.0, 0.0, 5, 0)
    lo = compute_strategy_stats(make_trades([-0.01] * 5))
    assert (lo.win_rate, lo.avg_win, lo.max_consec_losses) == (0.0, 0.0, 5)
    assert lo.max_drawdown_pct == pytest.approx(0.99**5 - 1)


def test_trades_from_any_backtest_compound_to_the_final_equity(hourly_btc):
    from backtestlab.engine.strategies import get_strategy
    from backtestlab.engine.strategies.base import Costs

    strategy = get_strategy("sma_cross")
    result = strategy.run(strategy.prepare(hourly_btc), {"fast": 5, "slow": 30}, Costs())
    trades = trades_from_backtest(result, underlying="BTC")
    assert len(trades) == len(result.trades) > 0
    growth = math.prod(1 + t.pnl_frac for t in trades)
    assert growth == pytest.approx(result.equity[-1] / result.initial_equity, rel=1e-9)
    assert all(t.is_win == (t.pnl_frac > 0) for t in trades)
    assert trades[0].timestamp == dt.datetime.fromtimestamp(
        int(result.trades.exit_ts[0]), tz=dt.UTC
    )
    assert trades[0].chain_id.startswith("BTC-")
