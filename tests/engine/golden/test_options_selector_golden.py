"""options_selector golden run on 54 designed days, derived from the documented model.

Rules used (``strategies/options_selector.py`` and ``selector.py`` docstrings): decision steps
are days 0, 2, 4, ... (``decision_interval_days`` 2).  At a step with no open position the
selector must allow the day (VRP >= 5, IV rank >= 30, ADX <= 25, 30 <= RSI <= 70), the day needs
a price (the close of candle ``d - 1``), 30 daily returns of realised vol and a settlement
inside the data; then a short iron butterfly opens at day ``d``'s open and settles at day
``d + 3``'s open (``holding_days`` 3), the next one no earlier than day ``d + 4``.  Its PnL as a
fraction of equity is ``max_loss (credit (1 - s - c) - V (1 + s + c)) / (k (1 + s + c) - credit
(1 - s - c))`` with ``k`` = 1 wing sigma, ``credit = sqrt(2/pi) - 2 phi(k) + 2 k (1 - Phi(k))``,
``V = min(|S1 / S0 - 1| / (iv sqrt(3 / 365)), k)``, ``iv = max(rv_30d + vrp_30d, 5) / 100``.
Costs: commission 0.1 %, slippage 0.05 %; ``max_loss_pct`` 2.

=====  ======================================================================================
day    what happens
=====  ======================================================================================
0-31   no realised vol yet (returns from day 2 on; the first 30 end at day 31)
32     VRP 3 < 5: the selector refuses
34     opens; S0 = close[33] 100.6, S1 = close[36] 100.9: a quiet move, a win
36     position open (settles at day 37's open)
38     opens; S0 101.0, S1 101.2: a win
40     position open
42     ADX 30 > 25: the selector refuses
44     opens; S0 101.0, S1 108.0: beyond the wing, the loss is exactly max_loss (2 %)
46     position open
48     opens; S0 108.2, S1 110.4: inside the wing but more than the credit: a smaller loss
50     position open
52     would settle at day 55, after the data: nothing opens
=====  ======================================================================================
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from backtestlab.engine.data import EnvironmentSeries
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import run_params
from backtestlab.engine.timeframes import bars_per_year

from ..conftest import START, make_data
from . import reference as ref

DAY = 86400
C = 0.001
S = 0.0005
E0 = 10_000.0
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=E0)
OPT = get_strategy("options_selector")
PARAMS = {"decision_interval_days": 2, "holding_days": 3, "wing_sigmas": 1.0, "max_loss_pct": 2.0}

N = 54
CLOSE = [100.0 if d % 2 == 0 else 101.0 for d in range(31)] + [
    100.5, 100.8, 100.6, 100.7, 100.4, 100.9,  # 31-36
    101.0, 101.3, 100.8, 101.2, 101.0, 100.9,  # 37-42
    101.0, 103.0, 106.0, 108.0, 108.2, 108.5,  # 43-48
    109.0, 110.4, 110.0, 110.2, 110.1,  # 49-53
]  # fmt: skip
VRP = [5.0] * N
VRP[32] = 3.0
ADX = [20.0] * N
ADX[42] = 30.0


def _ctx():
    env = EnvironmentSeries(
        "BTC",
        START + np.arange(N, dtype=np.int64) * DAY,
        {
            "vrp_30d": np.array(VRP),
            "iv_rank_6m": np.full(N, 50.0),
            "adx_14d": np.array(ADX),
            "rsi_14d": np.full(N, 50.0),
        },
    )
    return OPT.prepare(env, {"candles": make_data(np.array(CLOSE), timeframe="1d")})


def _iv(d):
    """Implied vol at day d from 30 daily log returns of the open prices (close[j - 1])."""
    rets = [math.log(CLOSE[j - 1] / CLOSE[j - 2]) for j in range(d - 29, d + 1)]
    rv = statistics.stdev(rets) * math.sqrt(365) * 100
    return max(rv + VRP[d], 5.0) / 100


def _pnl_fraction(d, k=1.0, max_loss=0.02, holding=3):
    phi = math.exp(-k * k / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(k / math.sqrt(2)))
    credit = math.sqrt(2 / math.pi) - 2 * phi + 2 * k * (1 - big_phi)  # 0.6312 at k = 1
    s0, s1 = CLOSE[d - 1], CLOSE[d + holding - 1]
    value = min(abs(s1 / s0 - 1) / (_iv(d) * math.sqrt(holding / 365)), k)
    keep, pay = 1 - S - C, 1 + S + C
    return max_loss * (credit * keep - value * pay) / (k * pay - credit * keep)


OPENED = [34, 38, 44, 48]


def _reference(opened=OPENED):
    equity = [E0] * N
    in_pos = [False] * N
    pnl = []
    cash = E0
    for d in opened:
        f = _pnl_fraction(d)
        pnl.append(f * 100)
        for i in range(d, d + 3):
            in_pos[i] = True  # held on days d, d + 1, d + 2; closed at day d + 3's open
        cash *= 1 + f
        # the PnL is known, and booked, at the close of the last day held
        equity[d + 2 :] = [cash] * (N - d - 2)
    return np.array(equity), np.array(in_pos), pnl


@pytest.fixture(scope="module")
def run():
    ctx = _ctx()
    return ctx, OPT.run(ctx, PARAMS, COSTS)


def test_the_hand_inputs_are_what_the_docstring_says():
    assert math.isclose(_iv(34) * 100 - 5.0, _ctx().rv_30d[34], rel_tol=1e-12)
    assert np.isnan(_ctx().rv_30d[30])
    f = [_pnl_fraction(d) for d in OPENED]
    assert f[0] > 0 and f[1] > 0  # quiet weeks keep most of the credit
    assert f[2] == pytest.approx(-0.02, rel=1e-12)  # capped at the wing: exactly max_loss
    assert -0.02 < f[3] < 0  # inside the wing, beyond the credit


def test_positions_by_hand(run):
    _, res = run
    t = res.trades
    assert list(t.entry_idx) == OPENED
    assert list(t.exit_idx) == [d + 3 for d in OPENED]
    assert list(t.reason) == ["signal"] * 4 and list(t.side) == [1] * 4
    equity, in_pos, pnl = _reference()
    assert np.allclose(t.pnl_pct, pnl, rtol=1e-10, atol=0)
    assert np.allclose(res.equity, equity, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(res.in_position, in_pos)


def test_metrics_of_run_and_sweep(run):
    ctx, res = run
    equity, in_pos, pnl = _reference()
    expected = ref.metrics(equity, E0, pnl, in_pos, [72.0] * 4, bars_per_year("1d"))
    assert expected["n_trades"] == 4 and expected["win_rate"] == 50.0
    assert expected["exposure_pct"] == 100 * 12 / N
    assert expected["max_consec_losses"] == 2
    ref.assert_metrics(compute(res).as_row(), expected)
    # the sweep path, next to parameter sets that let day 32 or day 42 trade:
    # VRP >= 2 opens day 32 (settles at 35), then 36, 40, 44, 48;
    # ADX <= 35 opens 34, 38 and then day 42 (settles at 45), 46, 50 (settles at 53, the last)
    vrp2 = {**PARAMS, "min_vrp_30d": 2.0}
    adx35 = {**PARAMS, "max_adx_14d": 35.0}
    rows = run_params(OPT, ctx, [vrp2, adx35, PARAMS], COSTS)
    ref.assert_metrics(rows[2], expected)
    for row, params, opened in (
        (rows[0], vrp2, [32, 36, 40, 44, 48]),
        (rows[1], adx35, [34, 38, 42, 46, 50]),
    ):
        assert list(OPT.run(ctx, params, COSTS).trades.entry_idx) == opened
        equity, in_pos, pnl = _reference(opened)
        want = ref.metrics(equity, E0, pnl, in_pos, [72.0] * 5, bars_per_year("1d"))
        ref.assert_metrics(row, want)
