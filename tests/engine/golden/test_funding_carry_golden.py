"""funding_carry golden runs on 48 hourly bars and 7 funding times, derived by hand.

Rules used (``strategies/funding_carry.py`` and ``simulate.py`` docstrings): at funding time
``t`` the decision is read at the close of the bar containing ``t`` (bar ``8k - 1`` for
``t = 8k`` hours here) and filled at the next open.  The position is long spot + short
perpetual of equal quantity, each leg paying slippage in its own direction and commission on
its own traded value, sized so ``qty = E / (fill_long + c (fill_long + fill_short))``.  A
position held through the close of the bar containing ``t`` receives ``qty x rate x price(t)``
(pays it when the rate is negative); ``price(t)`` is the close of that bar.  A position still
open at the last close is marked there (the two fills' spread plus its flows; no exit costs)
and is not a closed trade.  Costs: commission 0.1 %, slippage 0.05 %.

Funding (per 8 h), ``k`` = funding index, ``t = 8k`` h, decision bar ``8k - 1``:

===  ======  ===============================================================================
k    rate    simple mode (enter >= 0.0003, exit < 0.0001)
===  ======  ===============================================================================
0    0       before the first close: no bar, no decision
1    0.0004  enter: signal on bar 7, filled at the open of bar 8
2    0.0002  hold; received on bar 15
3    -0.0001 exit: paid on bar 23 (held through its close), closed at the open of bar 24
4    0.0006  enter: signal on bar 31, filled at the open of bar 32
5    0.008   hold; received on bar 39
6    0.0001  hold (not < 0.0001); received on bar 47, still open at its close (marked)
===  ======  ===============================================================================
"""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.data import FundingSeries
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import run_params
from backtestlab.engine.timeframes import bars_per_year

from ..conftest import START, make_data
from . import reference as ref

H = 3600
C = 0.001
S = 0.0005
E0 = 10_000.0
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=E0)
CARRY = get_strategy("funding_carry")

N = 48
CLOSE = 100.0 + 0.5 * np.arange(N)  # open = the previous close (make_data's default)
OPEN = np.r_[CLOSE[0], CLOSE[:-1]]
RATES = [0.0, 0.0004, 0.0002, -0.0001, 0.0006, 0.008, 0.0001]

SIMPLE = {"strategy_mode": "simple"}  # the seed's 0.0003 / 0.0001
COMPOSITE = {
    "strategy_mode": "composite",
    "weight_rate_level": 0.4,
    "weight_trend": 0.2,
    "weight_persistence": 0.4,
    "weight_basis": 0.0,
    "trend_ema_span": 2,
    "persistence_threshold": 0.0003,
    "persistence_max_periods": 2,
    "entry_threshold": 0.7,
    "exit_threshold": 0.4,
}


def _ctx():
    data = make_data(CLOSE)
    funding = FundingSeries("TEST", START + np.arange(7) * 8 * H, np.array(RATES))
    return CARRY.prepare(data, {"funding": funding})


def _funding(k):
    """Cash per unit of position at funding time k: rate x the close of bar 8k - 1."""
    return RATES[k] * CLOSE[8 * k - 1]


def _hedged_curve(trades):
    """Equity per close, bars held and trade pnl for ``(entry_bar, exit_bar, exit_at_open,
    {bar: funding per unit})`` round trips, from the module docstring's accounting; an exit bar
    of ``None`` is a position still open at the last close: marked, its pnl from the mark."""
    equity = np.full(N, E0)
    in_pos = np.zeros(N, dtype=bool)
    pnl = []
    cash = E0
    for entry, exit_, at_open, flows in trades:
        p = OPEN[entry]
        long_fill, short_fill = p * (1 + S), p * (1 - S)
        qty = cash / (long_fill + C * (long_fill + short_fill))
        base = cash - C * qty * (long_fill + short_fill)
        for i in range(entry, N if exit_ is None else exit_ + (0 if at_open else 1)):
            in_pos[i] = True
            base += qty * flows.get(i, 0.0)
            equity[i] = base + qty * (short_fill - long_fill)  # the legs' moves cancel
        if exit_ is None:  # open at the end: no sale, no buy-back, no exit commission
            pnl.append((equity[N - 1] / cash - 1) * 100)
            continue
        x = OPEN[exit_] if at_open else CLOSE[exit_]
        sell, buy_back = x * (1 - S), x * (1 + S)
        after = (
            base
            + qty * (sell - long_fill)
            - qty * (buy_back - short_fill)
            - C * qty * (sell + buy_back)
        )
        pnl.append((after / cash - 1) * 100)
        cash = after
        equity[exit_:] = cash
    return equity, in_pos, pnl


SIMPLE_TRADES = [
    (8, 24, True, {15: _funding(2), 23: _funding(3)}),
    (32, None, False, {39: _funding(5), 47: _funding(6)}),  # open at the end
]

# Composite score = 0.4 level + 0.2 trend + 0.4 persistence (weights sum to 1):
#   level = clip(rate / 0.0003, 0, 1)       -> 0, 1, 2/3, 0, 1, 1, 1/3
#   EMA(2) of the rates, alpha 2/3, seeded with mean(0, 0.0004) at k = 1:
#     -, 0.0002, 0.0002, 0, 0.0004, 0.0054667, 0.0018889
#   trend = clip(0.5 + 0.5 (rate - EMA) / 0.0001, 0, 1), 0.5 before the EMA exists
#                                           -> 0.5, 1, 0.5, 0, 1, 1, 0
#   persistence: run of rates >= 0.0003, capped at 2, / 2
#                                           -> 0, 0.5, 0, 0, 0.5, 1, 0
#   score                                   -> 0.1, 0.8, 0.3667, 0, 0.8, 1, 0.1333
# Enter at >= 0.7, exit below 0.4: enter k = 1 (bar 7), exit k = 2 (bar 15 -> open of 16),
# enter k = 4 (bar 31), the exit at k = 6 falls on the last close (ignored): open at the end.
COMPOSITE_TRADES = [
    (8, 16, True, {15: _funding(2)}),
    (32, None, False, {39: _funding(5), 47: _funding(6)}),
]


@pytest.fixture(scope="module")
def ctx():
    return _ctx()


@pytest.mark.parametrize(
    ("params", "trades"),
    [(SIMPLE, SIMPLE_TRADES), (COMPOSITE, COMPOSITE_TRADES)],
    ids=["simple", "composite"],
)
def test_trades_equity_and_metrics_by_hand(ctx, params, trades):
    res = CARRY.run(ctx, params, COSTS)
    t, o = res.trades, res.open_trade
    assert (list(t.entry_idx), list(t.exit_idx)) == ([8], [trades[0][1]])
    assert list(t.reason) == ["signal"] and list(t.side) == [1]
    assert (list(o.entry_idx), list(o.exit_idx), list(o.side)) == ([32], [47], [1])
    # the long leg's fills: entries at the open with slippage; the open one's mark price is
    # the last close
    assert np.allclose(t.entry_price, [OPEN[8] * (1 + S)], rtol=1e-12)
    assert np.allclose(o.entry_price, [OPEN[32] * (1 + S)], rtol=1e-12)
    assert np.allclose(t.exit_price, [OPEN[trades[0][1]] * (1 - S)], rtol=1e-12)
    assert list(o.exit_price) == [CLOSE[47]]
    equity, in_pos, pnl = _hedged_curve(trades)
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)
    assert np.allclose(t.pnl_pct, pnl[:1], rtol=1e-10, atol=0)
    assert np.allclose(o.pnl_pct, pnl[1:], rtol=1e-10, atol=0)
    # the first round trip loses to costs, the 0.8 % funding of k = 5 wins the open one
    assert pnl[0] < 0 < pnl[1]
    hours = [trades[0][1] - trades[0][0]]  # closed trades only
    expected = ref.metrics(equity, E0, pnl[:1], in_pos, hours, bars_per_year("1h"))
    assert expected["n_trades"] == 1 and expected["win_rate"] == 0.0
    assert expected["max_drawdown_pct"] < 0
    ref.assert_metrics(compute(res).as_row(), expected)
    rows = run_params(CARRY, ctx, [SIMPLE, COMPOSITE, params], COSTS)
    ref.assert_metrics(rows[2], expected)


def test_funding_received_and_paid_in_plain_numbers(ctx):
    res = CARRY.run(ctx, SIMPLE, COSTS)
    p = OPEN[8]  # 103.5 = close of bar 7
    qty = E0 / (p * 1.0005 + C * (p * 1.0005 + p * 0.9995))
    # bar 15 receives 0.0002 x 107.5 per unit; bar 23 pays 0.0001 x 111.5 per unit
    assert np.isclose(res.equity[15] - res.equity[14], qty * 0.0215, rtol=1e-9)
    assert np.isclose(res.equity[23] - res.equity[22], -qty * 0.01115, rtol=1e-9)
    # between funding times a hedged position's equity does not move with the price
    assert res.equity[9] == res.equity[10] == res.equity[14]


def test_the_composite_scores_by_hand():
    rates = np.array(RATES)
    level = np.clip(rates / 0.0003, 0, 1)
    ema = [np.nan, 0.0002]
    for r in rates[2:]:
        ema.append(ema[-1] + 2 / 3 * (r - ema[-1]))
    trend = np.clip(0.5 + 0.5 * (rates - np.array(ema)) / 0.0001, 0, 1)
    trend[0] = 0.5
    persistence = np.array([0, 0.5, 0, 0, 0.5, 1, 0])
    score = 0.4 * level + 0.2 * trend + 0.4 * persistence
    assert np.allclose(score, [0.1, 0.8, 0.4 * 2 / 3 + 0.1, 0, 0.8, 1, 0.4 / 3], atol=1e-12)
    assert list(score >= 0.7) == [False, True, False, False, True, True, False]
    assert list(score < 0.4) == [True, False, True, True, False, False, True]
