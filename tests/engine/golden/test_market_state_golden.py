"""market_state golden runs on 51 designed minutes: states by a plain reference, trades by hand.

The states come from a plain-Python reading of ``backtestlab/engine/market_state.py``'s
docstring (a fresh volume profile per window, no rolling histogram; candle order flow; the
BALANCE / IMBALANCE rules) and must equal the engine's bar by bar; the prices were designed so
that every state is far from its thresholds, and the trades are then derived by hand from the
strategy's rules (``strategies/market_state.py``): a fresh IMBALANCE_UP (DOWN) enters long
(short) at the next open, a fresh opposite imbalance reverses an open position, and with
``allow_balance_trades`` a close crossing below VAL in BALANCE enters long.  Stops and targets
are 4 and 6 x ATR(5) from the fill.  Costs: commission 0.1 %, slippage 0.05 %.

========  ========================================================================
minutes   what happens (lookback 10; a flat minute at p is p +- 0.05 %, close p)
========  ========================================================================
0-14      flat at 100; 0-9 UNKNOWN (window not full), then BALANCE
15        up to 101: 1 % above the POC, momentum +1 %: IMBALANCE_UP -> long
16-27     flat at 101 (the long opened at 16's open); BALANCE once the POC moves up
28        down to 100.4: 0.6 % below the POC, momentum -0.6 %: IMBALANCE_DOWN -> reverse
29        the long closed and a short opened at this open
30-31     down to 99.0: the short's target
32-45     flat at 99: BALANCE
46        dips to 98.8, below VAL but 0.2 % from the POC: still BALANCE; a long only with
          allow_balance_trades
47-50     around 98.85; the balance long is closed at the last close
========  ========================================================================
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtestlab.engine.market_profile import (
    STATE_BALANCE,
    STATE_IMBALANCE_DOWN,
    STATE_IMBALANCE_UP,
    STATE_UNKNOWN,
    VALUE_AREA_SHARE,
    VP_BUCKET_PCT,
)
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import run_params
from backtestlab.engine.timeframes import bars_per_year

from ..conftest import make_data
from . import reference as ref

C = 0.001
S = 0.0005
E0 = 10_000.0
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=E0)
MS = get_strategy("market_state")
PARAMS = {
    "lookback_period": 10,
    "lookback_buckets": 3,
    "poc_distance_threshold": 0.5,
    "momentum_threshold": 0.5,
    "cvd_pressure_threshold": 15.0,
    "min_confidence": 0.0,
    "atr_period": 5,
    "sl_atr_mult": 4.0,
    "tp_atr_mult": 6.0,
}
BALANCE_TOO = {**PARAMS, "allow_balance_trades": True}


def _flat(p):
    return (p, p * 1.0005, p * 0.9995, p)


ROWS = (
    [_flat(100.0)] * 15
    + [(100.0, 101.05, 99.95, 101.0)]  # 15
    + [_flat(101.0)] * 12  # 16-27
    + [
        (101.0, 101.05, 100.35, 100.4),  # 28
        (100.4, 100.45, 100.3, 100.35),  # 29
        (100.35, 100.4, 99.6, 99.7),  # 30
        (99.7, 99.75, 98.9, 99.0),  # 31
    ]
    + [_flat(99.0)] * 14  # 32-45
    + [(99.0, 99.05, 98.75, 98.8)]  # 46
    + [(98.8, 98.9, 98.7, 98.85)] * 4  # 47-50
)
A = np.array(ROWS)
OPEN, HIGH, LOW, CLOSE = A[:, 0], A[:, 1], A[:, 2], A[:, 3]
N = len(ROWS)
VOLUME = [1.0] * N


def _data():
    return make_data(CLOSE, open_=OPEN, high=HIGH, low=LOW, timeframe="1m")


# --- a plain reference of the docstring's state rules ---------------------------------------

G = math.log1p(VP_BUCKET_PCT / 100)


def _profile(i, lookback):
    """POC, VAH, VAL of the window ending at bar i, recounted from scratch."""
    hist: dict[int, float] = {}
    lows, highs = [], []
    for j in range(i - lookback + 1, i + 1):
        lo = math.floor(math.log(LOW[j]) / G)
        hi = max(math.floor(math.log(HIGH[j]) / G), lo)
        lows.append(lo)
        highs.append(hi)
        for b in range(lo, hi + 1):
            hist[b] = hist.get(b, 0.0) + VOLUME[j] / (hi - lo + 1)
    lo, hi = min(lows), max(highs)
    vol = [hist.get(b, 0.0) for b in range(lo, hi + 1)]
    top = max(vol)
    p = min(k for k, v in enumerate(vol) if math.isclose(v, top, rel_tol=1e-9))  # lowest tie
    a = c = p
    acc = vol[p]
    while acc < VALUE_AREA_SHARE * sum(vol) and (a > 0 or c < len(vol) - 1):
        up = vol[c + 1] if c < len(vol) - 1 else -1.0
        down = vol[a - 1] if a > 0 else -1.0
        if up >= down or math.isclose(up, down, rel_tol=1e-9):  # up on a tie
            c += 1
            acc += up
        else:
            a -= 1
            acc += down
    return math.exp((lo + p + 0.5) * G), math.exp((lo + c + 1) * G), math.exp((lo + a) * G)


def _buy(j):
    rng = HIGH[j] - LOW[j]
    return VOLUME[j] * (CLOSE[j] - LOW[j]) / rng if rng > 0 else VOLUME[j] / 2


def _reference_states(p):
    lb, nb = p["lookback_period"], p["lookback_buckets"]
    states = []
    for i in range(N):
        if i < lb or i < nb:  # momentum needs lookback returns, CVD momentum nb buckets
            states.append(STATE_UNKNOWN)
            continue
        poc, _, _ = _profile(i, lb)
        window = range(i - lb + 1, i + 1)
        pressure = 2 * 100 * sum(_buy(j) for j in window) / sum(VOLUME[j] for j in window) - 100
        momentum = (CLOSE[i] / CLOSE[i - lb] - 1) * 100
        cvd = sum(2 * _buy(j) - VOLUME[j] for j in range(i - nb + 1, i + 1))
        d = (CLOSE[i] - poc) / poc * 100
        sign = 1 if d > 0 else -1
        confirmed = sign * momentum >= p["momentum_threshold"] or (
            sign * pressure >= p["cvd_pressure_threshold"] and sign * cvd > 0
        )
        if abs(d) >= p["poc_distance_threshold"] and confirmed:
            states.append(STATE_IMBALANCE_UP if sign > 0 else STATE_IMBALANCE_DOWN)
        else:
            states.append(STATE_BALANCE)
    return states


def _wilder_atr(n=5):
    tr = [HIGH[0] - LOW[0]]
    for i in range(1, N):
        tr.append(max(HIGH[i] - LOW[i], abs(HIGH[i] - CLOSE[i - 1]), abs(LOW[i] - CLOSE[i - 1])))
    atr = [float("nan")] * N
    atr[n - 1] = sum(tr[:n]) / n
    for i in range(n, N):
        atr[i] = (atr[i - 1] * (n - 1) + tr[i]) / n
    return atr


ATR = _wilder_atr()


def test_states_equal_the_plain_reference_and_the_timeline():
    state, _ = MS.states(MS.prepare(_data()), PARAMS)
    expected = _reference_states(PARAMS)
    np.testing.assert_array_equal(state, expected)
    # the timeline of the module docstring
    runs = [(STATE_UNKNOWN, 0, 9), (STATE_BALANCE, 10, 14), (STATE_IMBALANCE_UP, 15, 19)]
    runs += [(STATE_BALANCE, 20, 27), (STATE_IMBALANCE_DOWN, 28, 34), (STATE_BALANCE, 35, 50)]
    for code, first, last in runs:
        assert all(s == code for s in expected[first : last + 1]), (code, first, last)
    # the dip of minute 46 closes below the value area yet within 0.5 % of the POC
    poc, _, val = _profile(46, 10)
    assert CLOSE[46] < val and abs(CLOSE[46] / poc - 1) < 0.005
    assert CLOSE[45] >= _profile(45, 10)[2]


# --- trades by hand ---------------------------------------------------------------------------
# ATR(5) (Wilder): 0.1 on the flat minutes; minute 15's true range 101.05 - 99.95 = 1.1 gives
# ATR[15] = (4 x 0.1 + 1.1) / 5 = 0.3.  Levels are fractions of the close times the fill:
# stop distance 4 x ATR / close, target 6 x ATR / close.


def _long_fill(p):
    return p * (1 + S)


def _short_fill(p):
    return p * (1 - S)


# Long from minute 16: fill 101.0505, stop 101.0505 (1 - 1.2 / 101) = 99.850, target
# 101.0505 (1 + 1.8 / 101) = 102.851: neither is reached before the reversal signal of minute
# 28; the long is closed and the short opened at minute 29's open 100.4.
LONG_1 = ref.RefTrade(16, 29, 1, _long_fill(101.0), _short_fill(100.4), "signal", True)
SHORT_FILL = _short_fill(100.4)
SHORT_TARGET = SHORT_FILL * (1 - 6 * ATR[28] / 100.4)  # ATR[28] = 0.2317: 98.960
SHORT_STOP = SHORT_FILL * (1 + 4 * ATR[28] / 100.4)  # 101.276, never reached
# minute 30's low 99.6 is above the target, minute 31's low 98.9 reaches it
SHORT_2 = ref.RefTrade(29, 31, -1, SHORT_FILL, _long_fill(SHORT_TARGET), "target")
# with allow_balance_trades: long from minute 47 (the signal of minute 46), its stop
# (4 x ATR[46] = 0.60 below) and target (0.91 above) untouched; still open at the end, marked
# at the last close 98.85 (no sell slippage, no exit commission): not a closed trade
LONG_3 = ref.RefTrade(47, 50, 1, _long_fill(98.8), 98.85, "end")


def test_the_hand_levels():
    assert ATR[15] == pytest.approx(0.3, rel=1e-12)
    assert LOW[16:29].min() > LONG_1.entry_fill * (1 - 1.2 / 101)
    assert HIGH[16:29].max() < LONG_1.entry_fill * (1 + 1.8 / 101)
    assert LOW[30] > SHORT_TARGET >= LOW[31] and HIGH[29:32].max() < SHORT_STOP
    # ATR[27] = 0.1147 after twelve flat minutes; minute 28's true range 101.05 - 100.35 =
    # 0.7 gives ATR[28] = (4 x 0.1147 + 0.7) / 5 = 0.2317
    assert np.isclose(ATR[28], (4 * ATR[27] + 0.7) / 5, rtol=1e-12)
    assert np.isclose(SHORT_TARGET, 98.960, atol=1e-3)
    stop_3 = LONG_3.entry_fill * (1 - 4 * ATR[46] / 98.8)
    target_3 = LONG_3.entry_fill * (1 + 6 * ATR[46] / 98.8)
    assert LOW[47:].min() > stop_3 and HIGH[47:].max() < target_3


@pytest.mark.parametrize(
    ("params", "trades"),
    [(PARAMS, [LONG_1, SHORT_2]), (BALANCE_TOO, [LONG_1, SHORT_2, LONG_3])],
    ids=["imbalances", "with-balance-trades"],
)
def test_trades_equity_and_metrics_by_hand(params, trades):
    ctx = MS.prepare(_data())
    res = MS.run(ctx, params, COSTS)
    closed = [x for x in trades if x.reason != "end"]  # "end": the position open at the end
    for t, want in ((res.trades, closed), (res.open_trade, trades[len(closed) :])):
        assert list(t.entry_idx) == [x.entry_idx for x in want]
        assert list(t.exit_idx) == [x.exit_idx for x in want]
        assert list(t.side) == [x.side for x in want]
        assert list(t.reason) == [x.reason for x in want]
        assert np.allclose(t.entry_price, [x.entry_fill for x in want], rtol=1e-12)
        assert np.allclose(t.exit_price, [x.exit_fill for x in want], rtol=1e-10)
    equity, in_pos, pnl = ref.all_in_curve(CLOSE, trades, C, E0)
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)
    assert np.allclose(res.trades.pnl_pct, pnl[: len(closed)], rtol=1e-10, atol=0)
    assert np.allclose(res.open_trade.pnl_pct, pnl[len(closed) :], rtol=1e-10, atol=0)
    minutes = [(x.exit_idx - x.entry_idx) / 60 for x in closed]
    expected = ref.metrics(equity, E0, pnl[: len(closed)], in_pos, minutes, bars_per_year("1m"))
    ref.assert_metrics(compute(res).as_row(), expected)
    rows = run_params(MS, ctx, [PARAMS, BALANCE_TOO], COSTS)
    ref.assert_metrics(rows[0 if params is PARAMS else 1], expected)


def test_the_hand_outcomes():
    _, _, pnl = ref.all_in_curve(CLOSE, [LONG_1, SHORT_2, LONG_3], C, E0)
    # the long gives back 101 -> 100.4 plus costs; the short earns 100.4 -> 99.02; the
    # balance long, marked at 98.85, does not cover its entry costs: 98.85 / (98.8 * 1.0005)
    # / 1.001 - 1 = -0.10 %
    assert pnl[0] < 0 < pnl[1] and pnl[2] < 0
    assert np.isclose(pnl[2], (98.85 / (98.8 * 1.0005) / 1.001 - 1) * 100, rtol=1e-12)
