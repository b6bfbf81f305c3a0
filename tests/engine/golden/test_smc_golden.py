"""smc_zones golden runs on 33 designed hourly bars, derived by hand from the documented rules.

Rules used (``backtestlab/engine/smc_zones.py`` and ``strategies/smc.py`` docstrings): a bullish
fair value gap completes at bar ``i`` when ``L[i] > H[i-2]`` (zone ``[H[i-2], L[i]]``), a bearish
one when ``H[i] < L[i-2]`` (zone ``[H[i], L[i-2]]``); no zone before ATR(14) exists, none
thinner than ``min_zone_pct`` % of the completing close.  An accepted zone's order rests at its
near edge (long: top, short: bottom) until a bar trades there; each close arms the nearest
resting order as a limit order for the next bar only.  Stop: beyond the far edge by
``sl_buffer_pct`` % of the height; ``fixed_rr`` target at ``rr_target`` x risk from the entry
level; ``atr_multiple``: three thirds with targets at 1/3, 2/3, 3/3 of ``rr_target`` x ATR(14)
of the completing bar.  A limit filled at its level checks only the stop in that bar; a gap
through the level fills at the open.  Costs: commission 0.1 %, slippage 0.05 % on every fill.

Timeline (bars 0-14 are flat 100 / 100.5 / 99.5 / 100, true range 1.0):

====  =========================  =============================================================
bar   open high low close        what happens
====  =========================  =============================================================
15    100   102.2 99.9  102      displacement up
16    102   102.6 101.5 102.3    L 101.5 > H[14] 100.5: bullish zone A [100.5, 101.5]
17    102.3 102.8 102   102.6    A's limit 101.5 armed, low 102 > 101.5: not filled
18    102.4 102.5 101   101.2    A re-armed and filled at 101.5 (long #1)
19    101.2 101.3 100.2 100.5    low 100.2 <= A's stop 100.4: stop.  H 101.3 < L[17] 102:
                                 bearish zone B [101.3, 102]
20    100.5 101.4 100.3 101      B's limit 101.3 filled (short #2); stop 102.07 not reached
21    101   101.1 99.7  99.9     B's target 99.76 reached; close 99.9 < 100.5 ends zone A
22    99.9  100   99.5  99.8     H 100 < L[20] 100.3: bearish zone Z [100, 100.3]
23    99.8  101.6 99.7  101.5    Z's limit 100 filled (short #3) and its stop 100.33 hit in
                                 the same bar; close 101.5 > 100.3 ends Z
24    101.5 102   100.6 101.8    L 100.6 > H[22] 100: bullish zone C [100, 100.6]
25    100.4 100.5 100.1 100.3    opens below C's limit 100.6: filled at the open (long #4)
26    100.3 102   100.2 101.9    C's target 101.92 reached
27-29                            no gap
30    101.3 101.4 101.32 101.38  L 101.32 > H[28] 101.3: a 0.02 zone, 0.02 % < 0.15 %: rejected
31-32                            no gap; nothing open
====  =========================  =============================================================
"""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.metrics import compute
from backtestlab.engine.smc_zones import detect_historical
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import run_params
from backtestlab.engine.timeframes import bars_per_year

from ..conftest import make_data
from . import reference as ref

C = 0.001  # commission fraction
S = 0.0005  # slippage fraction
E0 = 10_000.0
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=E0)
SMC = get_strategy("smc_zones")

FLAT = (100.0, 100.5, 99.5, 100.0)
ROWS = [FLAT] * 15 + [
    (100.0, 102.2, 99.9, 102.0),  # 15
    (102.0, 102.6, 101.5, 102.3),  # 16
    (102.3, 102.8, 102.0, 102.6),  # 17
    (102.4, 102.5, 101.0, 101.2),  # 18
    (101.2, 101.3, 100.2, 100.5),  # 19
    (100.5, 101.4, 100.3, 101.0),  # 20
    (101.0, 101.1, 99.7, 99.9),  # 21
    (99.9, 100.0, 99.5, 99.8),  # 22
    (99.8, 101.6, 99.7, 101.5),  # 23
    (101.5, 102.0, 100.6, 101.8),  # 24
    (100.4, 100.5, 100.1, 100.3),  # 25
    (100.3, 102.0, 100.2, 101.9),  # 26
    (101.9, 102.0, 100.4, 101.0),  # 27
    (101.0, 101.3, 100.7, 101.1),  # 28
    (101.1, 101.35, 100.9, 101.3),  # 29
    (101.3, 101.4, 101.32, 101.38),  # 30
    (101.38, 101.45, 101.1, 101.2),  # 31
    (101.2, 101.3, 101.0, 101.2),  # 32
]
A = np.array(ROWS)
OPEN, HIGH, LOW, CLOSE = A[:, 0], A[:, 1], A[:, 2], A[:, 3]
N = len(ROWS)

FIXED = {"pattern_type": "imbalance", "tp_method": "fixed_rr", "rr_target": 2.0}
THIRDS = {"pattern_type": "imbalance", "tp_method": "atr_multiple", "rr_target": 1.5}


def _data():
    return make_data(CLOSE, open_=OPEN, high=HIGH, low=LOW)


def _wilder_atr(n=14):
    """ATR(14) by the textbook: true range, seeded by the mean of the first 14, then Wilder.

    Bars 0-14 have TR 1.0 -> ATR[13] = ATR[14] = 1.0; TR[15] = 102.2 - 99.9 = 2.3 ->
    ATR[15] = (13 * 1.0 + 2.3) / 14 = 1.0928571; TR[16] = 102.6 - 101.5 = 1.1 -> ATR[16] =
    (13 * 1.0928571 + 1.1) / 14 = 1.0933673; and so on.
    """
    tr = [HIGH[0] - LOW[0]]
    for i in range(1, N):
        tr.append(max(HIGH[i] - LOW[i], abs(HIGH[i] - CLOSE[i - 1]), abs(LOW[i] - CLOSE[i - 1])))
    atr = [float("nan")] * N
    atr[n - 1] = sum(tr[:n]) / n
    for i in range(n, N):
        atr[i] = (atr[i - 1] * (n - 1) + tr[i]) / n
    return atr


ATR = _wilder_atr()


def test_the_hand_atr_is_what_the_comment_says():
    assert ATR[14] == 1.0
    assert np.isclose(ATR[15], 15.3 / 14, rtol=1e-12)
    assert np.isclose(ATR[16], (13 * 15.3 / 14 + 1.1) / 14, rtol=1e-12)


def test_zones_detected_touched_and_ended_by_hand():
    zones = detect_historical(_data(), "imbalance")
    got = [
        (z["bar"], z["direction"], z["zone_low"], z["zone_high"], z["entry"])
        + (z["touch_bar"], z["end_bar"])
        for z in zones
    ]
    assert got == [
        (16, "bullish", 100.5, 101.5, 101.5, 18, 21),  # A: ended by the close 99.9 < 100.5
        (19, "bearish", 101.3, 102.0, 101.3, 20, None),  # B: closes never above 102
        (22, "bearish", 100.0, 100.3, 100.0, 23, 23),  # Z: ended by the close 101.5 > 100.3
        (24, "bullish", 100.0, 100.6, 100.6, 25, None),  # C
    ]
    # The 0.02-wide gap at bar 30 is only a zone without the 0.15 % minimum.
    thin = detect_historical(_data(), "imbalance", min_zone_pct=0.0)
    assert [z["bar"] for z in thin] == [16, 19, 22, 24, 30]


def _long(level):
    return level * (1 + S)


def _short(level):
    return level * (1 - S)


# Levels of each zone (buffer 10 % of the height, fixed_rr 2 x risk from the entry level):
# A long  entry 101.5, stop 100.5 - 0.1 = 100.4,  risk 1.1,  target 101.5 + 2.2  = 103.7
# B short entry 101.3, stop 102.0 + 0.07 = 102.07, risk 0.77, target 101.3 - 1.54 = 99.76
# Z short entry 100.0, stop 100.3 + 0.03 = 100.33, risk 0.33, target 100.0 - 0.66 = 99.34
# C long  entry 100.6, stop 100.0 - 0.06 = 99.94,  risk 0.66, target 100.6 + 1.32 = 101.92
FIXED_TRADES = [
    # bar 18: limit 101.5 filled at the level (open 102.4 above it); bar 19: low 100.2 <= 100.4
    ref.RefTrade(18, 19, 1, _long(101.5), _short(100.4), "stop"),
    # bar 20: high 101.4 >= 101.3, open 100.5 below it; bar 21: low 99.7 <= 99.76
    ref.RefTrade(20, 21, -1, _short(101.3), _long(99.76), "target"),
    # bar 23: opens 99.8 below the sell limit 100, high 101.6 fills it and reaches 100.33
    ref.RefTrade(23, 23, -1, _short(100.0), _long(100.33), "stop"),
    # bar 25: opens at 100.4 <= 100.6, a gap into the zone: filled at the open, like a market
    # order, so the target is live at once; bar 26: high 102.0 >= 101.92
    ref.RefTrade(25, 26, 1, _long(100.4), _short(101.92), "target"),
]


@pytest.fixture(scope="module")
def fixed():
    ctx = SMC.prepare(_data())
    return ctx, SMC.run(ctx, FIXED, COSTS)


def test_fixed_rr_trades_by_hand(fixed):
    t = fixed[1].trades
    assert list(t.entry_idx) == [18, 20, 23, 25]
    assert list(t.exit_idx) == [19, 21, 23, 26]
    assert list(t.side) == [1, -1, -1, 1]
    assert list(t.reason) == ["stop", "target", "stop", "target"]
    assert np.allclose(t.entry_price, [x.entry_fill for x in FIXED_TRADES], rtol=1e-12)
    assert np.allclose(t.exit_price, [x.exit_fill for x in FIXED_TRADES], rtol=1e-12)
    # the same fills in plain numbers
    assert np.allclose(t.entry_price, [101.55075, 101.24935, 99.95, 100.4502], rtol=1e-12)
    assert np.allclose(t.exit_price, [100.3498, 99.80988, 100.380165, 101.86904], rtol=1e-12)


def test_fixed_rr_equity_bar_by_bar(fixed):
    res = fixed[1]
    equity, in_pos, pnl = ref.all_in_curve(CLOSE, FIXED_TRADES, C, E0)
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)
    assert np.allclose(res.trades.pnl_pct, pnl, rtol=1e-10, atol=0)
    assert pnl[0] < 0 < pnl[1] and pnl[2] < 0 < pnl[3]


def _fixed_metrics():
    equity, in_pos, pnl = ref.all_in_curve(CLOSE, FIXED_TRADES, C, E0)
    hours = [t.exit_idx - t.entry_idx for t in FIXED_TRADES]
    return ref.metrics(equity, E0, pnl, in_pos, hours, bars_per_year("1h"))


def test_fixed_rr_metrics_of_run_and_sweep(fixed):
    ctx, res = fixed
    expected = _fixed_metrics()
    assert expected["n_trades"] == 4 and expected["win_rate"] == 50.0
    assert expected["max_consec_wins"] == 1 and expected["exposure_pct"] == 100 * 7 / N
    ref.assert_metrics(compute(res).as_row(), expected)
    rows = run_params(SMC, ctx, [THIRDS, FIXED], COSTS)
    ref.assert_metrics(rows[1], expected)


# --- TP1 / TP2 / TP3 thirds (atr_multiple, rr_target 1.5) ----------------------------------
# Targets at k/3 of 1.5 x ATR(completing bar) = k x 0.5 x ATR from the entry level, k = 1..3.
# A (ATR[16]): 101.5 + 0.5467 k; bar 19 stops all three thirds before any target.
# B (ATR[19]): 101.3 - 0.5550 k = 100.745, 100.190, 99.635: bar 21 (low 99.7) takes TP1 and
#   TP2; the TP3 third stays short and takes 99.635 in bar 22 (low 99.5).
# Z (ATR[22]): stopped in its fill bar as above (all thirds).
# C (ATR[24]): 100.6 + 0.5648 k = 101.165, 101.730, 102.294: bar 26 (high 102.0) takes TP1 and
#   TP2; TP3 is never reached and the third is still open at the last close 101.2, marked
#   there (no sell slippage, no exit commission): the group is the position open at the end.


def _tp(zone_bar, entry, side, k):
    return entry + side * 0.5 * ATR[zone_bar] * k


def _third_trades(k):
    """The trades of the third whose target is TP``k``."""
    b_exit = 21 if k < 3 else 22
    c_exit, c_px, c_reason = (
        (26, _short(_tp(24, 100.6, 1, k)), "target") if k < 3 else (32, CLOSE[32], "end")
    )
    return [
        ref.RefTrade(18, 19, 1, _long(101.5), _short(100.4), "stop"),
        ref.RefTrade(20, b_exit, -1, _short(101.3), _long(_tp(19, 101.3, -1, k)), "target"),
        ref.RefTrade(23, 23, -1, _short(100.0), _long(100.33), "stop"),
        ref.RefTrade(25, c_exit, 1, _long(100.4), c_px, c_reason),
    ]


def _thirds_reference():
    """Each third is an all-in account of E0 / 3; the position is their sum."""
    curves = [ref.all_in_curve(CLOSE, _third_trades(k), C, E0 / 3) for k in (1, 2, 3)]
    equity = sum(c[0] for c in curves)
    in_pos = np.logical_or.reduce([c[1] for c in curves])
    before = [E0 / 3] * 3
    pnl, exit_px = [], []
    for j in range(4):
        after = [before[k] * (1 + curves[k][2][j] / 100) for k in range(3)]
        pnl.append((sum(after) / sum(before) - 1) * 100)
        # all thirds enter at one fill, so quantities are in proportion to equity before
        fills = [_third_trades(k + 1)[j].exit_fill for k in range(3)]
        exit_px.append(sum(b * f for b, f in zip(before, fills, strict=True)) / sum(before))
        before = after
    return equity, in_pos, pnl, exit_px


def test_tp_thirds_by_hand():
    assert np.allclose([_tp(19, 101.3, -1, k) for k in (1, 2, 3)], [100.745, 100.19, 99.635],
                       atol=6e-4)  # fmt: skip
    assert LOW[21] <= _tp(19, 101.3, -1, 2) and LOW[21] > _tp(19, 101.3, -1, 3) >= LOW[22]
    assert HIGH[26] >= _tp(24, 100.6, 1, 2) and HIGH[26:].max() < _tp(24, 100.6, 1, 3)
    ctx = SMC.prepare(_data())
    res = SMC.run(ctx, THIRDS, COSTS)
    t, o = res.trades, res.open_trade
    equity, in_pos, pnl, exit_px = _thirds_reference()
    # one reported trade per group: entry, last exit, its reason, the blended exit price; the
    # fourth group (25) is still open at the end: TP1 and TP2 taken, the TP3 third marked
    assert list(t.entry_idx) == [18, 20, 23]
    assert list(t.exit_idx) == [19, 22, 23]
    assert list(t.reason) == ["stop", "target", "stop"]
    assert (list(o.entry_idx), list(o.exit_idx), list(o.reason)) == ([25], [32], ["end"])
    assert np.allclose(t.exit_price, exit_px[:3], rtol=1e-10)
    assert np.allclose(t.pnl_pct, pnl[:3], rtol=1e-10)
    assert np.allclose(o.exit_price, exit_px[3:], rtol=1e-10)
    assert np.allclose(o.pnl_pct, pnl[3:], rtol=1e-10)
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)
    hours = [x - e for e, x in zip(t.entry_idx, t.exit_idx, strict=True)]
    expected = ref.metrics(equity, E0, pnl[:3], in_pos, hours, bars_per_year("1h"))
    assert expected["n_trades"] == 3 and expected["win_rate"] == 100 / 3
    ref.assert_metrics(compute(res).as_row(), expected)
    rows = SMC.run_many(ctx, [FIXED, THIRDS], COSTS)
    ref.assert_metrics(rows[1], expected)
    ref.assert_metrics(rows[0], _fixed_metrics())
