"""The generic simulator: shorts, absolute levels, reversals, costs, limit entries."""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.metrics import compute
from backtestlab.engine.simulate import simulate
from backtestlab.engine.strategies.base import Costs

from .conftest import make_data

NO_COSTS = Costs(commission_pct=0.0, slippage_pct=0.0, initial_equity=1000.0)


def test_short_with_price_levels():
    close = np.array([100, 100, 98, 97, 99, 100.0])
    data = make_data(close, high=close + 0.5, low=close - 0.5)
    entries = np.zeros(6, dtype=bool)
    entries[1] = True  # short at the open of bar 2 (= 100)
    stop = np.full(6, np.nan)
    target = np.full(6, np.nan)
    target[1] = 96.8  # reached by bar 3's low 96.5
    res = simulate(data, entries, side=-1, stop_price=stop, target_price=target, costs=NO_COSTS)
    t = res.trades
    assert len(t) == 1 and t.side[0] == -1 and t.reason[0] == "target"
    assert t.entry_idx[0] == 2 and t.exit_idx[0] == 3
    assert np.isclose(t.exit_price[0], 96.8)
    assert np.isclose(t.pnl_pct[0], (100 - 96.8) / 100 * 100)
    assert np.isclose(res.equity[2], 1000 * (1 + (100 - 98) / 100))  # short marked at 98


def test_short_stop_gap_and_slippage():
    close = np.array([100, 100, 100, 105.0])
    open_ = np.array([100, 100, 100, 104.0])
    data = make_data(close, open_, high=np.maximum(open_, close) + 1, low=np.minimum(open_, close))
    entries = np.array([0, -1, 0, 0], dtype=np.int8)
    costs = Costs(commission_pct=0.0, slippage_pct=0.1, initial_equity=1000.0)
    res = simulate(data, entries, stop_pct=2.0, costs=costs)
    t = res.trades
    fill = 100 * (1 - 0.001)  # selling short gets a worse (lower) price
    assert np.isclose(t.entry_price[0], fill)
    assert t.reason[0] == "stop" and t.exit_idx[0] == 3
    assert np.isclose(t.exit_price[0], 104 * 1.001)  # gap above the stop 101.898: open fill


def test_reversal_long_to_short():
    close = np.array([100, 100, 101, 102, 103, 104.0])
    data = make_data(close)
    entries = np.array([0, 1, 0, -1, 0, 0], dtype=np.int8)
    res = simulate(data, entries, costs=NO_COSTS)
    t = res.trades
    assert list(t.side) == [1] and list(t.reason) == ["signal"]
    # the short entered at the reversal is still open at the end: not a closed trade
    o = res.open_trade
    assert t.exit_idx[0] == 4 and list(o.entry_idx) == [4] and list(o.side) == [-1]
    # long 100 -> 102 (+2 %): 1020; short 10 units at 102 marked at 104: 1020 - 20 = 1000
    assert np.isclose(t.pnl_pct[0], 2.0, rtol=1e-12)
    assert np.isclose(res.equity[-1], 1000.0, rtol=1e-12)
    assert np.isclose(o.pnl_pct[0], (1000 / 1020 - 1) * 100, rtol=1e-12)
    assert (o.exit_idx[0], o.exit_price[0], o.reason[0]) == (5, 104.0, "end")


def test_commission_round_trip_formula():
    close = np.array([100, 100, 100, 110.0, 110.0])
    data = make_data(close)
    entries = np.array([0, 1, 0, 0, 0], dtype=bool)
    exits = np.array([0, 0, 0, 1, 0], dtype=bool)
    costs = Costs(commission_pct=0.5, slippage_pct=0.0, initial_equity=1000.0)
    res = simulate(data, entries, exits, costs=costs)
    expected = 1000 / 1.005 * 110 / 100 * 0.995
    assert np.isclose(res.equity[-1], expected, rtol=1e-12)
    assert np.isclose(compute(res).total_return_pct, (expected / 1000 - 1) * 100)


def test_bad_shapes():
    data = make_data(np.ones(5))
    with pytest.raises(ValueError):
        simulate(data, np.zeros(4, dtype=bool), costs=NO_COSTS)
    with pytest.raises(ValueError):
        simulate(data, np.zeros(5, dtype=bool), stop_pct=1.0, stop_price=np.ones(5), costs=NO_COSTS)


def test_limit_fill_rules_in_the_simulator():
    # A buy limit at 99 armed on the close of bar 0, for bar 1 only.
    close = [100, 100, 100, 100]
    entries = np.array([1, 0, 0, 0], dtype=np.int8)
    limit = np.array([99.0, np.nan, np.nan, np.nan])
    kw = dict(costs=Costs(0, 0), entry_limit=limit, stop_price=np.full(4, 90.0))
    # bar 1 never reaches 99: no fill, the order is gone
    no_touch = make_data(close, low=[99.5, 99.5, 98, 99.5])
    unfilled = simulate(no_touch, entries, **kw)
    assert len(unfilled.trades) == 0 and len(unfilled.open_trade) == 0
    # bar 1 trades down to 98.5: filled at the limit (still open at the end)
    touch = make_data(close, low=[99.5, 98.5, 99.5, 99.5])
    assert list(simulate(touch, entries, **kw).open_trade.entry_price) == [99.0]
    # bar 1 opens at 97 (gap through the limit): filled at the open
    gap = make_data(close, open_=[100, 97, 100, 100], low=[99.5, 96.5, 99.5, 99.5])
    assert list(simulate(gap, entries, **kw).open_trade.entry_price) == [97.0]
    # on a limit-fill bar a target is not trusted (its high may precede the fill)
    kw_t = dict(kw, target_price=np.full(4, 100.5))
    spiky = make_data(close, high=[100, 101, 100, 101], low=[99.5, 98.5, 99.5, 99.5])
    t = simulate(spiky, entries, **kw_t).trades
    assert (t.exit_idx[0], t.reason[0]) == (3, "target")
    # a limit signal never reverses an open position
    rev = np.array([1, 0, -1, 0], dtype=np.int8)
    t = simulate(touch, rev, costs=Costs(0, 0), entry_limit=np.array([np.nan, 0, 99.0, 0]))
    assert len(t.trades) == 0 and list(t.open_trade.side) == [1]
