"""The simulator's fill and cost rules on hand-built bars, every expected value by hand.

Rules (module docstring of ``backtestlab.engine.simulate``): a signal on the close of bar i is
filled at the open of bar i + 1; slippage worsens every fill (buy ``p * (1 + s)``, sell
``p * (1 - s)``); commission ``c`` is paid on traded value at entry and exit, with notional
``E / (1 + c)``; stops and targets are live from the entry bar, fill at the level or at the
open when the open is already through it, and the stop wins when both are inside one bar;
equity is marked at each close before exit costs; a position still open at the last close is
only marked there (no exit costs, not a closed trade, reported as ``open_trade``).  Equity
starts at 1000 everywhere below.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backtestlab.engine.data import MarketData
from backtestlab.engine.metrics import compute
from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Signals
from backtestlab.engine.simulate import (
    LEVEL_FRACTION,
    LEVEL_PRICE,
    _levels,
    allocate_trade_buffers,
    cost_fractions,
    parts_work,
    result_from_buffers,
    run_kernel,
    simulate,
    simulate_kernel,
    simulate_parts,
)
from backtestlab.engine.strategies.base import Costs, Strategy

START = 1672531200
NAN = np.nan
FLAT = (100.0, 100.0, 100.0, 100.0)  # open, high, low, close


def bars(*rows) -> MarketData:
    """Hourly bars from (open, high, low, close) rows."""
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    n = len(c)
    return MarketData(
        symbol="TEST",
        timeframe="1h",
        ts=START + np.arange(n, dtype=np.int64) * 3600,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=np.ones(n),
    )


def mirror(*rows):
    """The same bars reflected about 100 (p -> 200 - p): a rise becomes a fall."""
    return [(200 - o, 200 - lo, 200 - h, 200 - c) for o, h, lo, c in rows]


def costs(comm_pct: float = 0.0, slip_pct: float = 0.0, delay: int = 0) -> Costs:
    return Costs(
        commission_pct=comm_pct,
        slippage_pct=slip_pct,
        initial_equity=1000.0,
        signal_delay_bars=delay,
    )


def signal_at(n: int, *idx: int, side: int = 1) -> np.ndarray:
    s = np.zeros(n, dtype=np.int8)
    s[list(idx)] = side
    return s


def flags(n: int, *idx: int) -> np.ndarray:
    f = np.zeros(n, dtype=bool)
    f[list(idx)] = True
    return f


def near(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-12, atol=0.0))


# --- market entries and exits -------------------------------------------------------------

RISING = [
    (100.0, 101.0, 99.0, 100.0),  # 0: signal
    (104.0, 106.0, 103.0, 105.0),  # 1: filled at this open
    (105.0, 108.0, 104.0, 107.0),
    (107.0, 111.0, 106.0, 110.0),  # 3: last bar, the position is marked at its close
]


def test_a_long_is_filled_at_the_next_open_plus_slippage_and_marked_at_the_last_close():
    res = simulate(bars(*RISING), flags(4, 0), costs=costs(1.0, 1.0))
    assert len(res.trades) == 0  # still open at the end: not a closed trade
    t = res.open_trade
    assert len(t) == 1 and t.side[0] == 1 and t.reason[0] == "end"
    assert (t.entry_idx[0], t.exit_idx[0]) == (1, 3)
    assert (t.entry_ts[0], t.exit_ts[0]) == (START + 3600, START + 3 * 3600)
    assert near(t.entry_price[0], 105.04)  # 104 * 1.01: a buy pays more
    assert t.exit_price[0] == 110.0  # the mark: the last close, no slippage
    # notional 1000 / 1.01 (commission 1 %), qty = 1000 / 1.01 / 105.04; marked at 105, 107
    # and 110 with no exit commission and no exit slippage
    base = 1000 / 1.01
    assert near(res.equity, [1000, base * 105 / 105.04, base * 107 / 105.04, base * 110 / 105.04])
    assert near(t.pnl_pct[0], (110 / 105.04 / 1.01 - 1) * 100)  # +3.6848 %
    assert list(res.in_position) == [False, True, True, True]


def test_a_short_is_filled_at_the_next_open_minus_slippage_and_marked_at_the_last_close():
    res = simulate(bars(*RISING), flags(4, 0), side=-1, costs=costs(1.0, 1.0))
    assert len(res.trades) == 0
    t = res.open_trade
    assert t.side[0] == -1 and t.reason[0] == "end"
    assert near(t.entry_price[0], 102.96)  # 104 * 0.99: a short sale gets less
    assert t.exit_price[0] == 110.0  # marked at the close: no buy-back, no slippage
    base = 1000 / 1.01
    qty = base / 102.96
    assert near(res.equity[1], base - qty * (105 - 102.96))
    assert near(res.equity[3], base - qty * (110 - 102.96))  # 922.627, no exit commission
    assert near(t.pnl_pct[0], (res.equity[3] / 1000 - 1) * 100)


COMMISSION_BARS = [
    FLAT,  # 0: entry signal
    (100.0, 101.0, 99.0, 100.0),  # 1: filled at 100
    (100.0, 106.0, 99.0, 105.0),  # 2: exit signal
    (110.0, 111.0, 109.0, 110.0),  # 3: exit filled at the open, 110
    (110.0, 113.0, 109.0, 112.0),  # 4: flat
]


def test_commission_is_paid_on_the_traded_value_of_both_legs_of_a_long():
    res = simulate(bars(*COMMISSION_BARS), flags(5, 0), flags(5, 2), costs=costs(comm_pct=1.0))
    t = res.trades
    # notional 1000 / 1.01 = 990.099 (entry commission 9.901), qty 9.90099
    # exit: 990.099 + 9.90099 * (110 - 100) - 0.01 * 9.90099 * 110 = 1078.218
    final = 1000 / 1.01 * 1.1 * 0.99
    assert near(final, 1078.2178217821782)
    assert near(res.equity, [1000, 1000 / 1.01, 1000 / 1.01 * 1.05, final, final])
    assert near(t.pnl_pct[0], 7.821782178217822)
    assert t.reason[0] == "signal" and t.exit_idx[0] == 3 and t.exit_price[0] == 110.0
    # flat again at the open of bar 3: the exit bar holds no position
    assert list(res.in_position) == [False, True, True, False, False]


def test_commission_is_paid_on_the_traded_value_of_both_legs_of_a_short():
    res = simulate(
        bars(*COMMISSION_BARS), flags(5, 0), flags(5, 2), side=-1, costs=costs(comm_pct=1.0)
    )
    # 990.099 - 9.90099 * (110 - 100) - 0.01 * 9.90099 * 110 = 1000 / 1.01 * (1 - 0.1 - 0.011)
    final = 1000 / 1.01 * 0.889
    assert near(final, 880.1980198019802)
    assert near(res.equity, [1000, 1000 / 1.01, 1000 / 1.01 * 0.95, final, final])


def test_a_round_trip_with_commission_and_slippage_follows_the_documented_formula():
    res = simulate(
        bars(*COMMISSION_BARS), flags(5, 0), flags(5, 2), costs=costs(comm_pct=0.5, slip_pct=0.2)
    )
    t = res.trades
    assert near(t.entry_price[0], 100.2) and near(t.exit_price[0], 110 * 0.998)
    # E / (1 + c) * exit / entry * (1 - c)
    assert near(res.equity[-1], 1000 / 1.005 * (110 * 0.998) / 100.2 * 0.995)
    assert near(compute(res).total_return_pct, (res.equity[-1] / 1000 - 1) * 100)


def test_the_product_of_trade_returns_is_the_growth_of_equity():
    rng = np.random.default_rng(3)
    c = 100 * np.cumprod(1 + rng.normal(0, 0.02, 40))
    o = np.r_[100.0, c[:-1]]
    data = bars(*zip(o, np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99, c, strict=True))
    entries = np.zeros(40, np.int8)
    entries[[2, 9, 15, 22, 30]] = [1, -1, 1, -1, 1]
    res = simulate(data, entries, flags(40, 6, 19), stop_pct=3.0, costs=costs(0.1, 0.05))
    assert len(res.trades) >= 4
    growth = np.prod(1 + res.trades.pnl_pct / 100)
    assert np.isclose(growth, res.equity[-1] / 1000, rtol=1e-12)
    assert len(res.open_trade) == 0  # flat at the end here (the open one: below)


def test_closed_trades_and_the_open_mark_compound_to_the_final_equity():
    # The same bars with a long entered on the last signal still open at the end: the closed
    # trades' growth times the open position's mark ratio is the final equity, and the final
    # equity is the mark (no exit commission or slippage: the closed-trade growth times
    # base / (1 + c) * close / entry fill).
    rng = np.random.default_rng(3)
    c = 100 * np.cumprod(1 + rng.normal(0, 0.02, 40))
    o = np.r_[100.0, c[:-1]]
    data = bars(*zip(o, np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99, c, strict=True))
    entries = np.zeros(40, np.int8)
    entries[[2, 9, 15, 22, 36]] = [1, -1, 1, -1, 1]
    res = simulate(data, entries, flags(40, 6, 19), costs=costs(0.1, 0.05))
    o_t = res.open_trade
    assert len(res.trades) >= 3 and list(o_t.entry_idx) == [37] and o_t.side[0] == 1
    closed = np.prod(1 + res.trades.pnl_pct / 100)
    assert np.isclose(closed * (1 + o_t.pnl_pct[0] / 100), res.equity[-1] / 1000, rtol=1e-12)
    fill = o[37] * 1.0005
    assert near(o_t.entry_price, fill) and o_t.exit_price[0] == c[-1]
    assert np.isclose(res.equity[-1], 1000 * closed / 1.001 * c[-1] / fill, rtol=1e-12)
    assert compute(res).n_trades == len(res.trades)


def test_long_and_short_mirror_each_other_without_costs():
    # Same prices, no costs: qty = 1000 / fill for both, so the short's gain is the long's loss.
    rng = np.random.default_rng(8)
    c = 100 * np.cumprod(1 + rng.normal(0, 0.01, 30))
    o = np.r_[100.0, c[:-1]]
    data = bars(*zip(o, np.maximum(o, c), np.minimum(o, c), c, strict=True))
    long_ = simulate(data, flags(30, 0), costs=costs())
    short = simulate(data, flags(30, 0), side=-1, costs=costs())
    assert np.allclose(short.equity - 1000, -(long_.equity - 1000), rtol=0, atol=1e-9)
    assert np.isclose(short.open_trade.pnl_pct[0], -long_.open_trade.pnl_pct[0], rtol=1e-12)


# --- stops and targets --------------------------------------------------------------------

# Long entered at 100 (open of bar 1, no costs) with a 2 % stop (98) and a 3 % target (103).
# Each case gives bars 1 and 2; bar 3 (101 flat) ends the run.
STOP_TARGET_CASES = {
    "stop inside a bar": ((100, 101, 99, 100), (99, 100, 97, 98.5), 2, "stop", 98.0),
    "stop touched exactly": ((100, 101, 99, 100), (99, 100, 98, 98.5), 2, "stop", 98.0),
    "gap through the stop": ((100, 101, 99, 100), (96, 97, 95, 96), 2, "stop", 96.0),
    "target inside a bar": ((100, 101, 99, 100), (101, 104, 100.5, 102), 2, "target", 103.0),
    "target touched exactly": ((100, 101, 99, 100), (101, 103, 100.5, 102), 2, "target", 103.0),
    "gap through the target": ((100, 101, 99, 100), (105, 106, 104, 105), 2, "target", 105.0),
    "both in one bar: stop first": ((100, 101, 99, 100), (100, 104, 97, 101), 2, "stop", 98.0),
    "stop on the entry bar": ((100, 100.5, 97, 99), (99, 100, 99, 99), 1, "stop", 98.0),
    "target on the entry bar": ((100, 104, 99.5, 103), (103, 103, 103, 103), 1, "target", 103.0),
    "neither": ((100, 101, 99, 100), (100, 102.9, 98.1, 101), 3, "end", 101.0),  # open
}
LAST = (101.0, 101.0, 101.0, 101.0)


@pytest.mark.parametrize("case", STOP_TARGET_CASES, ids=list(STOP_TARGET_CASES))
def test_long_stop_and_target_fills(case):
    bar1, bar2, exit_idx, reason, price = STOP_TARGET_CASES[case]
    res = simulate(
        bars(FLAT, bar1, bar2, LAST), flags(4, 0), stop_pct=2.0, target_pct=3.0, costs=costs()
    )
    t = res.open_trade if reason == "end" else res.trades  # "end": marked, still open
    assert len(t) == 1 and len(res.trades) == (reason != "end")
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (exit_idx, reason, price)
    assert near(t.pnl_pct[0], price - 100)  # percent of a 100 entry
    assert near(res.equity[exit_idx:], 1000 * price / 100)
    assert res.in_position[exit_idx]  # held during the bar it was stopped in


@pytest.mark.parametrize("case", STOP_TARGET_CASES, ids=list(STOP_TARGET_CASES))
def test_short_stop_and_target_fills_mirror_the_long_ones(case):
    # Reflected bars: the short's stop is 102 (2 % above 100), its target 97 (3 % below).
    bar1, bar2, exit_idx, reason, price = STOP_TARGET_CASES[case]
    rows = mirror(FLAT, bar1, bar2, LAST)
    res = simulate(bars(*rows), flags(4, 0), side=-1, stop_pct=2.0, target_pct=3.0, costs=costs())
    t = res.open_trade if reason == "end" else res.trades
    assert len(t) == 1 and t.side[0] == -1 and len(res.trades) == (reason != "end")
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (exit_idx, reason, 200 - price)
    assert near(t.pnl_pct[0], price - 100)


def test_a_stop_is_a_distance_from_the_entry_fill_and_its_fill_pays_slippage_and_commission():
    rows = [FLAT, (100, 101, 99, 100), (99, 100, 97, 98.5), LAST]
    res = simulate(bars(*rows), flags(4, 0), stop_pct=2.0, costs=costs(0.1, 0.1))
    t = res.trades
    entry = 100 * 1.001  # 100.1
    stop = entry * 0.98  # 98.098, 2 % below the FILL, not below the open
    assert near(t.entry_price[0], entry)
    assert t.reason[0] == "stop" and near(t.exit_price[0], stop * 0.999)
    assert near(res.equity[2], 1000 / 1.001 * (stop * 0.999) / entry * 0.999)


def test_a_gap_fill_pays_slippage_from_the_open():
    rows = [FLAT, (100, 101, 99, 100), (96, 97, 95, 96), LAST]
    res = simulate(bars(*rows), flags(4, 0), stop_pct=2.0, costs=costs(slip_pct=0.5))
    assert near(res.trades.exit_price[0], 96 * 0.995)


def test_price_levels_come_from_the_signal_bar():
    rows = [FLAT, (100, 101, 99, 100), (99, 100, 98, 98.5), (98.5, 99, 96.5, 97), LAST]
    stop = np.array([97.0, 99.0, 99.0, 99.0, 99.0])  # the entry signal is on bar 0: stop 97
    target = np.array([NAN, 100.5, 100.5, 100.5, 100.5])  # bar 0 has no target
    res = simulate(bars(*rows), flags(5, 0), stop_price=stop, target_price=target, costs=costs())
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (3, "stop", 97.0)


def test_per_bar_stop_distances_come_from_the_signal_bar():
    rows = [FLAT, (100, 101, 99, 100), (99, 100, 97, 98.5), LAST]
    res = simulate(
        bars(*rows), flags(4, 0), stop_pct=np.array([2.0, 10.0, 10.0, 10.0]), costs=costs()
    )
    assert res.trades.reason[0] == "stop" and res.trades.exit_price[0] == 98.0


def test_a_per_bar_stop_is_read_from_a_later_signal_bar_too():
    # the entry signalled on bar 1 takes bar 1's 1 % stop (99, hit by bar 2's low), not bar 0's
    rows = [FLAT, FLAT, (100, 101, 98.5, 100), LAST]
    res = simulate(
        bars(*rows), flags(4, 1), stop_pct=np.array([50.0, 1.0, 50.0, 50.0]), costs=costs()
    )
    t = res.trades
    assert (t.entry_idx[0], t.exit_idx[0], t.reason[0], t.exit_price[0]) == (2, 2, "stop", 99.0)
    assert near(res.equity, [1000, 1000, 990, 990])


def test_nan_levels_mean_no_stop_and_no_target():
    rows = [FLAT, (100, 150, 50, 100), (100, 150, 50, 100), LAST]
    nan = np.full(4, NAN)
    res = simulate(bars(*rows), flags(4, 0), stop_price=nan, target_price=nan, costs=costs())
    assert len(res.trades) == 0 and res.open_trade.exit_price[0] == 101.0
    assert near(res.equity, [1000, 1000, 1000, 1010])


def test_a_position_stopped_out_can_be_re_entered_on_the_same_close():
    rows = [FLAT, (100, 101, 99, 100), (99, 100, 97, 98.5), (98.5, 99, 98, 98.5), LAST]
    res = simulate(bars(*rows), flags(5, 0, 2), stop_pct=2.0, costs=costs())
    t = res.trades
    assert list(t.reason) == ["stop"]
    o = res.open_trade
    assert (o.entry_idx[0], o.entry_price[0]) == (3, 98.5)
    assert near(res.equity[-1], 980 * 101 / 98.5)


# --- signals ------------------------------------------------------------------------------


def test_an_entry_signal_on_the_last_close_is_ignored():
    res = simulate(bars(FLAT, FLAT, FLAT), flags(3, 2), costs=costs(1.0, 1.0))
    assert len(res.trades) == 0 and near(res.equity, [1000, 1000, 1000])
    assert not res.in_position.any()


def test_a_second_entry_signal_on_the_same_side_adds_nothing():
    rows = [FLAT, (100, 101, 99, 101), (101, 102, 100, 102), (102, 103, 101, 103)]
    res = simulate(bars(*rows), flags(4, 0, 1, 2), costs=costs())
    assert len(res.trades) == 0 and list(res.open_trade.entry_idx) == [1]
    assert near(res.equity, [1000, 1010, 1020, 1030])


def test_an_exit_signal_while_flat_is_ignored():
    rows = [FLAT, FLAT, (100, 101, 99, 101), (101, 102, 100, 102)]
    res = simulate(bars(*rows), flags(4, 1), flags(4, 0), costs=costs())
    t = res.open_trade
    assert len(res.trades) == 0 and (t.entry_idx[0], t.reason[0]) == (2, "end")


def test_an_opposite_signal_closes_and_reverses_at_the_same_open():
    rows = [FLAT, (100, 101, 99, 105), (105, 111, 104, 110), (110, 111, 104, 105), (105,) * 4]
    res = simulate(bars(*rows), signal_at(5, 0) + signal_at(5, 2, side=-1), costs=costs(1.0))
    t, o = res.trades, res.open_trade
    assert list(t.side) == [1] and list(t.reason) == ["signal"] and list(o.side) == [-1]
    assert (t.exit_idx[0], o.entry_idx[0]) == (3, 3)
    long_cash = 1000 / 1.01 * 1.1 * 0.99  # long 100 -> 110: 1078.218
    base = long_cash / 1.01  # the short is sized from the cash after the long
    qty = base / 110
    assert near(res.equity[3], base - qty * (105 - 110))
    assert near(res.equity[4], base + qty * (110 - 105))  # marked: no buy-back commission
    assert near(t.pnl_pct, [(long_cash / 1000 - 1) * 100])
    assert near(o.pnl_pct, [(res.equity[4] / long_cash - 1) * 100])


def test_a_delayed_signal_reaches_the_market_that_many_bars_late():
    rows = [FLAT, FLAT, (100, 101, 99, 102), (102, 103, 101, 104), (106, 107, 105, 106), LAST]
    stop = np.array([2.0, 50.0, 50.0, 50.0, 50.0, 50.0])
    res = simulate(bars(*rows), flags(6, 0), flags(6, 2), stop_pct=stop, costs=costs(delay=1))
    t = res.trades
    # entry signal of bar 0 read at the close of bar 1: filled at the open of bar 2;
    # exit signal of bar 2 read at the close of bar 3: filled at the open of bar 4 (106)
    assert (t.entry_idx[0], t.exit_idx[0], t.reason[0], t.exit_price[0]) == (2, 4, "signal", 106)
    assert near(res.equity, [1000, 1000, 1020, 1040, 1060, 1060])


def test_a_delayed_stop_distance_is_the_one_of_the_delayed_signal_bar():
    rows = [FLAT, FLAT, (100, 101, 97, 99), LAST]
    stop = np.array([2.0, 50.0, 50.0, 50.0])
    res = simulate(bars(*rows), flags(4, 0), stop_pct=stop, costs=costs(delay=1))
    assert res.trades.reason[0] == "stop" and res.trades.exit_price[0] == 98.0


def test_a_wiped_out_account_takes_no_further_entries():
    # A short from 100 with qty 10 is bought back at 250: 1000 - 10 * 150 < 0, floored at 0.
    rows = [FLAT, (100, 101, 99, 150), (250, 260, 240, 250), (250,) * 4, (100,) * 4]
    res = simulate(bars(*rows), signal_at(5, 0, 2, side=-1), flags(5, 1), costs=costs())
    t = res.trades
    assert len(t) == 1 and t.pnl_pct[0] == -100.0
    assert len(res.open_trade) == 0  # the signal on bar 2 finds nothing to enter with
    assert near(res.equity, [1000, 500, 0, 0, 0])
    assert compute(res).cagr_pct == -100.0


# --- limit entries ------------------------------------------------------------------------


def limit_run(bar1, *, limit=99.0, side=1, bar2=LAST, **kw):
    rows = [FLAT, bar1, bar2, LAST]
    lim = np.array([limit, NAN, NAN, NAN])
    return simulate(bars(*rows), signal_at(4, 0, side=side), entry_limit=lim, **kw)


def test_a_long_limit_fills_at_the_limit_when_the_bar_trades_down_to_it():
    res = limit_run((100, 100.5, 98, 99.5), costs=costs(slip_pct=1.0))
    t = res.open_trade  # still open at the end
    assert t.entry_idx[0] == 1 and near(t.entry_price[0], 99 * 1.01)  # slippage still applies


def test_a_long_limit_fills_at_a_lower_open():
    res = limit_run((98.5, 99, 98, 98.8), costs=costs())
    assert res.open_trade.entry_price[0] == 98.5


def test_an_unfilled_limit_is_cancelled_after_one_bar():
    res = limit_run((100, 101, 99.5, 100), bar2=(100, 100, 90, 95), costs=costs())
    assert len(res.trades) == 0 and near(res.equity, 1000)


def test_a_short_limit_fills_at_the_limit_or_at_a_higher_open():
    res = limit_run((100, 101.5, 99.5, 101), limit=101.0, side=-1, costs=costs())
    assert res.open_trade.entry_price[0] == 101.0 and res.open_trade.side[0] == -1
    res = limit_run((101.5, 102, 101, 101.5), limit=101.0, side=-1, costs=costs())
    assert res.open_trade.entry_price[0] == 101.5
    res = limit_run((100, 100.8, 99, 100), limit=101.0, side=-1, costs=costs())
    assert len(res.trades) == 0 and len(res.open_trade) == 0


def test_a_target_is_not_trusted_on_the_bar_a_limit_filled_at_its_level():
    # filled at 99: target 99 * 1.02 = 100.98; the bar's high 101.5 may have come first
    res = limit_run(
        (100, 101.5, 98, 99.5),
        bar2=(99.5, 101.2, 99, 101),
        target_pct=2.0,
        stop_pct=2.0,
        costs=costs(),
    )
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (2, "target", 100.98)


def test_a_stop_is_checked_on_the_bar_a_limit_filled_at_its_level():
    # filled at 99: stop 99 * 0.98 = 97.02, the bar's low 96 goes through it
    res = limit_run((100, 100.5, 96, 97), stop_pct=2.0, costs=costs())
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (1, "stop", 97.02)


def test_a_limit_filled_at_the_open_checks_its_target_like_a_market_entry():
    # open 98.5 <= 99: filled at the open, target 98.5 * 1.02 = 100.47 < high 101
    res = limit_run((98.5, 101, 98, 100), target_pct=2.0, costs=costs())
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (1, "target", 100.47)


def test_a_short_limit_does_not_trust_its_target_on_the_fill_bar():
    res = limit_run(
        (100, 101.5, 98, 100.5), limit=101.0, side=-1, target_pct=2.0, costs=costs()
    )  # filled at 101, target 98.98 (low 98 may have come first)
    assert len(res.trades) == 0 and res.open_trade.entry_price[0] == 101.0


def test_a_limit_signal_never_reverses_an_open_position_but_a_market_one_does():
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100), LAST]
    entries = signal_at(5, 0) + signal_at(5, 2, side=-1)
    lim = np.array([NAN, NAN, 100.5, NAN, NAN])
    res = simulate(bars(*rows), entries, entry_limit=lim, costs=costs())
    assert len(res.trades) == 0 and list(res.open_trade.side) == [1]
    lim[2] = NAN
    res = simulate(bars(*rows), entries, entry_limit=lim, costs=costs())
    assert list(res.trades.side) == [1] and list(res.open_trade.side) == [-1]


# --- cash flows (funding) and hedged positions --------------------------------------------


def kernel(data, entry_side, *, exit_flag=None, comm=0.0, slip=0.0, stop=NAN, **kw):
    n = len(data)
    return run_kernel(
        data,
        np.asarray(entry_side, np.int8),
        np.zeros(n, bool) if exit_flag is None else exit_flag,
        np.array([stop]),
        LEVEL_FRACTION,
        np.array([NAN]),
        LEVEL_FRACTION,
        comm,
        slip,
        1000.0,
        **kw,
    )


def test_a_cash_flow_is_credited_per_unit_at_each_close_while_the_position_is_open():
    rows = [FLAT, (100, 101, 99, 101), (101, 102, 100, 102), (102, 103, 101, 103)]
    flow = np.array([0.7, 0.5, 0.5, 0.5])  # the 0.7 arrives while flat: ignored
    res = kernel(bars(*rows), signal_at(4, 0), flow=flow)
    # qty 10: +5 at the close of bars 1, 2 and 3 (the last one, still open: marked with it)
    assert near(res.equity, [1000, 1000 + 5 + 10, 1000 + 10 + 20, 1000 + 15 + 30])
    assert near(res.open_trade.pnl_pct[0], 4.5)


def test_a_short_pays_a_positive_flow_and_a_stopped_position_receives_none_that_bar():
    rows = [FLAT, (100, 101, 99, 100), (100, 103, 99, 100), LAST]
    flow = np.array([0.0, 0.5, 0.5, 0.5])
    res = kernel(bars(*rows), signal_at(4, 0, side=-1), flow=flow, stop=0.02)
    # qty 10, side -1: -5 at the close of bar 1; stopped at 102 in bar 2 before its flow
    assert near(res.equity, [1000, 995, 975, 975])
    assert res.trades.reason[0] == "stop"


def test_a_hedged_position_is_sized_so_both_commissions_and_one_notional_use_the_equity():
    rows = [FLAT, (100, 101, 99, 130), (130, 131, 99, 90), (120, 121, 119, 120)]
    res = kernel(
        bars(*rows), signal_at(4, 0, side=-1), exit_flag=flags(4, 2), comm=0.01, slip=0.01,
        hedged=True,
    )  # fmt: skip
    entry, hedge = 99.0, 101.0  # short sells at 100 * 0.99, the long hedge buys at 100 * 1.01
    qty = 1000 / (entry + 0.01 * (entry + hedge))  # 1000 / 101 = 9.90099
    base = 1000 - 0.01 * qty * (entry + hedge)  # 980.198
    mark = base - qty * (hedge - entry)  # the two fills' spread: 960.396, whatever the price
    assert near(res.equity[1:3], [mark, mark])
    # closed by the exit signal at the open of bar 3 (120): buy the short back, sell the hedge
    exit_, hedge_exit = 120 * 1.01, 120 * 0.99
    final = base - qty * (exit_ - entry) + qty * (hedge_exit - hedge) - 0.01 * qty * (240)
    assert near(res.equity[3], final)  # 912.871
    assert near(res.trades.exit_price[0], exit_)
    # without the exit it is still open at the end: marked at the spread, no exit costs
    held = kernel(bars(*rows), signal_at(4, 0, side=-1), comm=0.01, slip=0.01, hedged=True)
    assert len(held.trades) == 0 and near(held.equity[1:], [mark, mark, mark])
    assert near(held.open_trade.pnl_pct, [(mark / 1000 - 1) * 100])
    assert held.open_trade.exit_price[0] == 120.0


def test_a_hedged_position_closed_by_a_signal_buys_back_its_hedge_at_the_open():
    rows = [FLAT, (100, 101, 99, 105), (105, 106, 104, 105), (110, 111, 109, 110)]
    res = kernel(bars(*rows), signal_at(4, 0), exit_flag=flags(4, 1), hedged=True, flow=np.ones(4))
    # no costs: qty 10, legs cancel; +10 per close from the flow at bar 1 only
    assert near(res.equity, [1000, 1010, 1010, 1010])
    assert res.trades.reason[0] == "signal" and res.trades.exit_idx[0] == 2


# --- the wrapper --------------------------------------------------------------------------


def test_costs_in_percent_become_fractions():
    assert cost_fractions(Costs(commission_pct=0.1, slippage_pct=0.05)) == (0.001, 0.0005)


def test_trade_buffers_have_a_slot_per_bar_and_at_least_one():
    assert all(len(b) == 7 for b in allocate_trade_buffers(7))
    assert all(len(b) == 1 for b in allocate_trade_buffers(0))


def test_an_empty_dataset_gives_no_trades():
    res = simulate(bars(FLAT).slice_time(0, 1), np.zeros(0, bool), costs=costs())
    assert len(res.trades) == 0 and len(res.equity) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"entries": np.zeros(4, bool)}, r"entries must have shape \(5,\)"),
        ({"exits": np.zeros(4, bool)}, r"exits must have shape \(5,\)"),
        ({"side": 0}, "side must be 1"),
        ({"stop_pct": 1.0, "stop_price": np.ones(5)}, "either stop_pct or stop_price"),
        ({"target_pct": np.ones(3)}, r"target levels must be a scalar or have one value"),
        ({"stop_price": np.ones((5, 1))}, r"stop levels must be a scalar"),
        ({"entry_limit": np.ones(4)}, r"entry_limit must have shape \(5,\)"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(kwargs, message):
    args = {"entries": np.zeros(5, bool), **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate(bars(*[FLAT] * 5), costs=costs(), **args)


def test_a_scalar_price_level_applies_to_every_signal_bar():
    rows = [FLAT, (100, 101, 99, 100), (99, 100, 97, 98.5), LAST]
    res = simulate(bars(*rows), flags(4, 0), stop_price=97.5, costs=costs())
    assert (res.trades.reason[0], res.trades.exit_price[0]) == ("stop", 97.5)
    res = simulate(bars(*rows), flags(4, 0), target_price=100.5, costs=costs())
    assert (res.trades.reason[0], res.trades.exit_price[0]) == ("target", 100.5)


def test_integer_entries_carry_their_own_side():
    rows = [FLAT, (100, 101, 99, 101), LAST]
    res = simulate(bars(*rows), signal_at(3, 0, side=-1), side=1, costs=costs())
    assert res.open_trade.side[0] == -1


# --- wipe-out: an account cannot go below zero and come back -------------------------------

DOUBLING = [FLAT, (100, 101, 99, 100), (100, 260, 100, 250), (250, 250, 90, 100), (100,) * 4]


def test_a_short_is_closed_out_where_its_loss_takes_the_whole_equity():
    # qty 10 from 100: the equity 1000 - 10 * (p - 100) is gone at p = 200, inside bar 2.
    # Without the close-out it would be marked at -500 and recover to 1000 at bar 3's low.
    res = simulate(bars(*DOUBLING), flags(5, 0), flags(5, 3), side=-1, costs=costs())
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0], t.pnl_pct[0]) == (2, "stop", 200, -100)
    assert near(res.equity, [1000, 1000, 0, 0, 0])
    assert compute(res).max_drawdown_pct == -100.0


def test_a_short_gapping_beyond_its_wipe_out_price_is_closed_at_the_open_with_nothing_left():
    rows = [FLAT, (100, 101, 99, 100), (250, 260, 240, 250), (100,) * 4]
    res = simulate(bars(*rows), flags(4, 0), side=-1, costs=costs(slip_pct=1.0))
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.pnl_pct[0]) == (2, "stop", -100.0)
    assert near(t.exit_price[0], 250 * 1.01)
    assert near(res.equity[2:], [0, 0])


@pytest.mark.parametrize(("stop_pct", "price"), [(50.0, 150.0), (150.0, 200.0)])
def test_the_lower_of_a_shorts_stop_and_its_wipe_out_price_is_hit_first(stop_pct, price):
    res = simulate(bars(*DOUBLING), flags(5, 0), side=-1, stop_pct=stop_pct, costs=costs())
    assert (res.trades.reason[0], res.trades.exit_price[0]) == ("stop", price)


def test_a_long_paying_flows_is_closed_out_where_its_equity_is_gone():
    # qty 10 from 100 pays 60 per unit at the close of bar 1: 1000 - 600 = 400 left, so the
    # equity 400 + 10 * (p - 100) is gone at p = 60, inside bar 2 (low 55).
    rows = [FLAT, (100, 101, 99, 100), (70, 75, 55, 90), (90,) * 4]
    flow = np.array([0.0, -60.0, 0.0, 0.0])
    res = kernel(bars(*rows), signal_at(4, 0), flow=flow)
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0], t.pnl_pct[0]) == (2, "stop", 60, -100)
    assert near(res.equity, [1000, 400, 0, 0])


def test_a_flow_that_exhausts_the_equity_at_a_close_marks_zero_and_closes_at_the_next_open():
    # qty 10 from 100 pays 120 per unit at the close of bar 1: 1000 - 1200 < 0 is marked 0,
    # and the position is closed out at the open of bar 2 with nothing left.
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 99, 100), (100,) * 4]
    flow = np.array([0.0, -120.0, 0.0, 0.0])
    res = kernel(bars(*rows), signal_at(4, 0), flow=flow)
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.exit_price[0], t.pnl_pct[0]) == (2, "stop", 100, -100)
    assert near(res.equity, [1000, 0, 0, 0])


# --- position size ------------------------------------------------------------------------


def test_a_half_size_entry_keeps_half_the_equity_in_cash():
    # Entry at 100 (bar 1 open), closed at 110 (bar 3's open, after the exit signal on bar 2);
    # commission 0.1 %, no slippage.
    rows = [FLAT, (100.0, 100.0, 100.0, 105.0), (105.0, 111.0, 104.0, 110.0), (110.0,) * 4]
    res = simulate(bars(*rows), signal_at(4, 0), flags(4, 2), costs=costs(0.1), size=0.5)
    c = 0.001
    alloc = 500.0
    position = alloc / (1 + c) * 110 / 100 * (1 - c)  # the all-in formula on the allocation
    assert near(res.equity[1], 500.0 + alloc / (1 + c) * 105 / 100)  # marked: cash + position
    assert near(res.equity[-1], 500.0 + position)
    assert near(res.trades.pnl_pct[0], ((500.0 + position) / 1000.0 - 1) * 100)
    full = simulate(bars(*rows), signal_at(4, 0), flags(4, 2), costs=costs(0.1))
    assert near(res.trades.pnl_pct[0], full.trades.pnl_pct[0] / 2)
    # still open at the last close (110): the cash plus the position's mark, no exit fee
    held = simulate(bars(*rows[:3]), signal_at(3, 0), costs=costs(0.1), size=0.5)
    mark = 500.0 + alloc / (1 + c) * 110 / 100
    assert len(held.trades) == 0 and near(held.equity[-1], mark)
    assert near(held.open_trade.pnl_pct, [(mark / 1000.0 - 1) * 100])


def test_size_one_is_exactly_all_in_and_a_bad_size_is_refused():
    rows = [FLAT, (100.0, 104.0, 97.0, 103.0), (103.0, 104.0, 98.0, 99.0), FLAT]
    entries = signal_at(4, 0, 2, side=1)
    a = simulate(bars(*rows), entries, costs=costs(0.1, 0.05), stop_pct=2.0, size=1.0)
    b = simulate(bars(*rows), entries, costs=costs(0.1, 0.05), stop_pct=2.0)
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.trades.pnl_pct, b.trades.pnl_pct)
    for bad in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"size must be a fraction of equity in \(0, 1\]"):
            simulate(bars(*rows), entries, costs=costs(), size=bad)


def test_a_per_bar_size_is_read_from_the_signal_bar():
    up = (100.0, 100.0, 100.0, 120.0)
    rows = [FLAT, FLAT, up, FLAT, FLAT, up]
    entries = signal_at(6, 0, 3)
    exits = flags(6, 2)  # the first position leaves at bar 3's open (100)
    size = np.array([0.25, 1.0, 1.0, 0.75, 1.0, 1.0])
    res = simulate(bars(*rows), entries, exits, costs=costs(), size=size)
    # A quarter of 1000 from bar 1's open (100), marked at bar 2's close (120).
    assert near(res.equity[2], 750.0 + 250.0 * 120 / 100)
    assert near(res.equity[3], 1000.0)
    # The entry signalled on bar 3 uses bar 3's size: three quarters from bar 4's open.
    assert near(res.equity[-1], 250.0 + 750.0 * 120 / 100)
    assert list(res.trades.entry_idx) == [1] and list(res.open_trade.entry_idx) == [4]


# --- partial exits (TP1 / TP2 / TP3) ------------------------------------------------------


class ThreeTargets(Strategy):
    """A long signalled on bar 0 with a stop at 95 and targets at 102, 104 and 106."""

    key = "three_targets"
    label = "Three targets"
    parameters = ParameterSpace([Param("parts", "int", 3, 1, 3)])

    def signals(self, ctx, p):
        n = len(ctx.data)
        level = lambda x: np.r_[x, np.full(n - 1, NAN)]  # noqa: E731 - the signal bar only
        return Signals(
            entries=signal_at(n, 0),
            stop_price=level(95.0),
            target_price=[level(102.0), level(104.0), level(106.0)],
            parts=p.parts,
        )


PARTIAL = [
    FLAT,  # 0: signal
    (100.0, 101.0, 99.0, 100.0),  # 1: the three thirds enter at 100
    (100.0, 103.0, 100.0, 103.0),  # 2: TP1 (102) for the first third
    (103.0, 105.0, 102.0, 104.0),  # 3: TP2 (104) for the second
    (104.0, 104.0, 94.0, 95.0),  # 4: the stop (95) for the last
    (95.0, 95.0, 95.0, 95.0),
]


def test_three_targets_are_three_equal_parts_reported_as_one_trade():
    strategy = ThreeTargets()
    res = strategy.run(strategy.prepare(bars(*PARTIAL)), {"parts": 3}, costs())
    part = 1000.0 / 3
    tp1, tp2, stopped = part * 1.02, part * 1.04, part * 0.95
    expected = [1000.0, 1000.0, tp1 + 2 * part * 1.03, tp1 + tp2 + part * 1.04,
                tp1 + tp2 + stopped, tp1 + tp2 + stopped]  # fmt: skip
    assert near(res.equity, expected)
    t = res.trades
    assert len(t) == 1  # one group position
    assert (t.entry_idx[0], t.exit_idx[0], t.reason[0]) == (1, 4, "stop")  # the last part's exit
    assert near(t.exit_price[0], (95.0 + 102.0 + 104.0) / 3)  # weighted by the parts' equity
    assert near(t.pnl_pct[0], ((tp1 + tp2 + stopped) / 1000.0 - 1) * 100)


def test_one_part_is_the_whole_equity_at_the_first_target():
    strategy = ThreeTargets()
    res = strategy.run(strategy.prepare(bars(*PARTIAL)), {"parts": 1}, costs())
    assert near(res.equity[-1], 1000.0 * 1.02)
    assert list(res.trades.reason) == ["target"] and list(res.trades.exit_idx) == [2]


def test_a_part_that_compounds_alone_keeps_its_profit_for_the_next_entry():
    # Two group positions; the first third takes TP1 in the first and enters the second with
    # its profit (each part compounds on its own).
    rows = PARTIAL[:5] + [FLAT, (100.0, 101.0, 99.0, 100.0), (100.0, 106.0, 100.0, 106.0)]

    class Twice(ThreeTargets):
        def signals(self, ctx, p):
            sig = super().signals(ctx, p)
            n = len(ctx.data)
            entries = signal_at(n, 0, 5)
            lv = lambda x: np.where(entries != 0, x, NAN)  # noqa: E731
            return Signals(
                entries=entries,
                stop_price=lv(95.0),
                target_price=[lv(102.0), lv(104.0), lv(106.0)],
                parts=sig.parts,
            )

    strategy = Twice()
    res = strategy.run(strategy.prepare(bars(*rows)), {"parts": 3}, costs())
    part = 1000.0 / 3
    first = [part * 1.02, part * 1.04, part * 0.95]
    second = [first[0] * 1.02, first[1] * 1.04, first[2] * 1.06]  # all three targets hit on bar 7
    assert len(res.trades) == 2
    assert near(res.equity[-1], sum(second))
    assert near(res.trades.pnl_pct[1], (sum(second) / sum(first) - 1) * 100)


# --- the account near zero ----------------------------------------------------------------


def test_an_account_worth_less_than_one_is_still_marked_exited_and_re_entered():
    # qty 10 from 100; the price falls to 1/16, so the account is worth 0.625 (never 0: the
    # wipe-out price of an all-in long is 0).  It leaves at 1/16 and re-enters with 0.625.
    tick = 0.0625
    rows = [FLAT, (100, 100, tick, tick), (tick,) * 4, (tick,) * 4, (tick,) * 4,
            (tick, 0.125, tick, 0.125), (0.125, 0.25, 0.125, 0.25)]  # fmt: skip
    res = simulate(bars(*rows), flags(7, 0, 4), flags(7, 3), costs=costs())
    assert list(res.equity) == [1000, 0.625, 0.625, 0.625, 0.625, 1.25, 2.5]
    t, o = res.trades, res.open_trade
    assert (list(t.entry_idx), list(t.exit_idx), list(t.reason)) == ([1], [4], ["signal"])
    assert (list(o.entry_idx), list(o.exit_idx)) == ([5], [6])  # open at the end
    assert near(t.pnl_pct, [(0.625 / 1000 - 1) * 100]) and near(o.pnl_pct, [300.0])


def test_rounding_never_marks_an_account_below_zero():
    # 1000 / e units bought at e are worth a hair more than 1000 in floating point, so at a
    # price of 5e-324 (above the wipe-out price 0) the mark 1000 + qty * (5e-324 - e) is
    # -1.1e-13: the account is marked 0, on the entry bar, on a later bar and at the end.
    e, tiny = 753.7595955661318, 5e-324
    rows = [(e,) * 4, (e, e, tiny, tiny), (tiny,) * 4, (tiny,) * 4]
    res = simulate(bars(*rows), flags(4, 0), costs=costs())
    assert 1000 + 1000 / e * (tiny - e) < 0
    assert list(res.equity) == [1000, 0, 0, 0]
    assert len(res.trades) == 0 and list(res.open_trade.pnl_pct) == [-100.0]


@pytest.mark.parametrize(
    ("stop", "high", "price", "left"),
    [
        (199.5, 199.8, 199.5, 5.0),  # the stop, 0.5 below the wipe-out price 200: 1000 - 10 * 99.5
        (200.5, 200.2, 200.0, 0.0),
    ],  # the wipe-out price, 0.5 below the stop  # fmt: skip
)
def test_the_nearer_of_a_shorts_stop_and_its_wipe_out_price_is_hit_first(stop, high, price, left):
    # Short from 100 (qty 10); the bar's high lies between the two levels: on the entry bar and
    # on a later one.
    for rows, exit_idx in (
        ([FLAT, (100, high, 99, 150), LAST], 1),
        ([FLAT, (100, 101, 99, 100), (150, high, 149, 150), LAST], 2),
    ):
        res = simulate(bars(*rows), flags(len(rows), 0), side=-1, stop_price=stop, costs=costs())
        t = res.trades
        assert (t.exit_idx[0], t.reason[0], t.exit_price[0]) == (exit_idx, "stop", price)
        assert near(t.pnl_pct[0], left / 10 - 100) and list(res.equity[exit_idx:]) == [left] * 2


def test_a_short_closed_out_with_slippage_owes_nothing():
    # Slippage 0.01 %: sold at 99.99, qty 1000 / 99.99, wiped out at 199.98; buying back at
    # 199.98 * 1.0001 would leave 1000 - qty * 100.01 = -0.2: the account ends at 0.
    rows = [FLAT, (100, 101, 99, 100), (150, 250, 149, 150), LAST]
    res = simulate(bars(*rows), flags(4, 0), side=-1, costs=costs(slip_pct=0.01))
    t = res.trades
    assert (t.exit_idx[0], t.reason[0], t.pnl_pct[0]) == (2, "stop", -100.0)
    assert near(t.exit_price[0], (99.99 + 99.99) * 1.0001)
    assert list(res.equity[2:]) == [0, 0]


@pytest.mark.parametrize(("flow", "left"), [(-150.0, 0.0), (-100.05, 0.0), (-99.9375, 0.625)])
def test_a_hedged_position_paying_flows_keeps_what_is_left_and_never_owes(flow, left):
    # qty 10, legs cancel: paying 150 (or 100.05) per unit leaves 1000 - 1500 (or -0.5) < 0,
    # marked at 0; paying 99.9375 leaves 0.625.  Still open at the end: only marked.
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 99, 100), LAST]
    flows = np.array([0.0, flow, 0.0, 0.0])
    res = kernel(bars(*rows), signal_at(4, 0), flow=flows, hedged=True)
    assert list(res.equity) == [1000, left, left, left]
    assert len(res.trades) == 0 and near(res.open_trade.pnl_pct, [(left / 1000 - 1) * 100])
    # closed by an exit signal at bar 3's open (101): both legs move 10 x 1 and cancel, what
    # is left is still 0 (the account owes nothing) or 0.625
    res = kernel(bars(*rows), signal_at(4, 0), exit_flag=flags(4, 2), flow=flows, hedged=True)
    assert list(res.equity) == [1000, left, left, left] and len(res.open_trade) == 0
    assert list(res.trades.reason) == ["signal"] and res.trades.exit_idx[0] == 3
    assert near(res.trades.pnl_pct, [(left / 1000 - 1) * 100])


# --- limit entries touched exactly, gapped through, or signalled while in a position --------


@pytest.mark.parametrize(
    ("side", "limit", "bar1", "fill"),
    [
        (1, 99.0, (100, 100.5, 99, 99.5), 99.0),  # the low touches the limit exactly
        (-1, 101.0, (100, 101, 99.5, 100.5), 101.0),  # the high touches it exactly
        (1, 99.0, (97, 98, 96, 97), 97.0),  # the whole bar below a long limit: the open
        (-1, 101.0, (103, 104, 102, 103), 103.0),  # the whole bar above a short one
    ],
)
def test_a_limit_entry_fills_when_the_next_bar_touches_or_gaps_through_it(side, limit, bar1, fill):
    res = limit_run(bar1, limit=limit, side=side, costs=costs())
    t = res.open_trade
    assert (len(t), t.entry_idx[0], t.side[0], t.entry_price[0]) == (1, 1, side, fill)
    assert near(res.equity[1], 1000 + side * 1000 / fill * (bar1[3] - fill))


def test_a_limit_at_exactly_the_open_fills_there_and_trusts_its_target_like_a_market_entry():
    res = limit_run((100, 103, 99, 101), limit=100.0, target_pct=2.0, costs=costs())
    t = res.trades
    assert (t.entry_price[0], t.exit_idx[0], t.reason[0], t.exit_price[0]) == (
        100,
        1,
        "target",
        102,
    )


@pytest.mark.parametrize("side", [1, -1])
def test_a_limit_signal_on_the_entry_bar_does_not_reverse_the_position(side):
    # the opposite limit (100) would fill on bar 2, but a limit signal never reverses
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 99, 100), LAST]
    lim = np.array([NAN, 100.0, NAN, NAN])
    res = simulate(bars(*rows), signal_at(4, 0, side=side) + signal_at(4, 1, side=-side),
                   entry_limit=lim, costs=costs())  # fmt: skip
    t = res.open_trade
    assert (len(res.trades), len(t), t.side[0], t.reason[0]) == (0, 1, side, "end")


# --- reversals ----------------------------------------------------------------------------


REVERSAL = [FLAT, (100, 101, 99, 100), (100, 101, 97, 98), (98, 99, 97, 98), LAST]
REVERSAL_SIDES = signal_at(5, 0, side=-1) + signal_at(5, 2)


def test_a_short_held_without_events_is_reversed_by_a_long_signal():
    res = simulate(bars(*REVERSAL), REVERSAL_SIDES, costs=costs())
    t, o = res.trades, res.open_trade
    assert (list(t.side), list(t.reason), list(t.entry_idx)) == ([-1], ["signal"], [1])
    assert (list(o.side), list(o.entry_idx)) == ([1], [3])
    # the short gains 10 * 2; the long buys 1020 / 98 at 98 and is marked at 101
    assert near(res.equity, [1000, 1000, 1020, 1020, 1020 * 101 / 98])


def test_a_reversal_takes_the_stop_target_and_size_of_its_own_signal_bar():
    # the long entered at 98 on bar 3 reads bar 2's levels: a 1 % stop (97.02, hit by bar 3's
    # low 97) in one run; half the equity and a 2 % target (99.96, gapped through at bar 4's
    # open 101) in the other
    per_bar = lambda x: np.array([50.0, 50.0, x, 50.0, 50.0])  # noqa: E731
    res = simulate(bars(*REVERSAL), REVERSAL_SIDES, stop_pct=per_bar(1.0), costs=costs())
    t = res.trades
    assert (list(t.reason), t.exit_idx[1]) == (["signal", "stop"], 3)
    assert near(t.exit_price[1], 97.02) and near(res.equity[3:], 1020 * 97.02 / 98)
    size = np.array([1.0, 1.0, 0.5, 1.0, 1.0])
    res = simulate(bars(*REVERSAL), REVERSAL_SIDES, target_pct=per_bar(2.0), size=size,
                   costs=costs())  # fmt: skip
    t = res.trades
    assert (list(t.reason), t.exit_idx[1], t.exit_price[1]) == (["signal", "target"], 4, 101)
    assert near(res.equity[3:], [1020, 510 + 510 * 101 / 98])


# --- duck-typed costs, shapes and dtypes of the arguments -----------------------------------


def test_costs_without_a_signal_delay_mean_no_delay():
    bare = SimpleNamespace(commission_pct=0.0, slippage_pct=0.0, initial_equity=1000.0)
    rows = [FLAT, (100, 101, 99, 101), (101, 102, 100, 102), LAST]
    res = simulate(bars(*rows), flags(4, 0), costs=bare)
    assert (res.open_trade.entry_idx[0], res.open_trade.exit_idx[0]) == (1, 3)
    assert list(res.equity) == [1000, 1010, 1020, 1010]


def test_the_kernels_optional_arguments_default_to_an_unhedged_undelayed_full_curve():
    d = bars(FLAT, (100, 101, 99, 101), LAST)
    eq, pos = np.full(3, NAN), np.zeros(3, dtype=np.bool_)
    nan = np.array([NAN])
    bufs = allocate_trade_buffers(3)
    count = simulate_kernel(
        d.open, d.high, d.low, d.close, signal_at(3, 0), np.zeros(3, bool), nan, LEVEL_FRACTION,
        nan, LEVEL_FRACTION, 0.0, 0.0, 1000.0, eq, pos, *bufs,
    )  # fmt: skip
    assert (count, list(eq), list(pos)) == (0, [1000, 1010, 1010], [False, True, True])
    assert (bufs[0][0], bufs[1][0], bufs[6][0]) == (1, 2, 3)  # open at the end: slot 0


@pytest.mark.parametrize("size", [np.full((5, 1), 0.5), np.full(3, 0.5)])
def test_a_size_array_of_the_wrong_shape_is_refused(size):
    with pytest.raises(ValueError, match=r"size must be a number or have one value per bar \(5\)"):
        simulate(bars(*[FLAT] * 5), np.zeros(5, bool), costs=costs(), size=size)


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match=r"size must be a fraction of equity in \(0, 1\]"):
        simulate(bars(*[FLAT] * 5), np.zeros(5, bool), costs=costs(), size=-0.5)


@pytest.mark.parametrize("name", ["entries", "exits", "entry_limit"])
@pytest.mark.parametrize("shape", [(6,), (5, 1)])
def test_a_signal_array_longer_than_the_data_or_two_dimensional_is_refused(name, shape):
    args = {"entries": np.zeros(5, bool), name: np.zeros(shape, bool)}
    with pytest.raises(ValueError, match=rf"{name} must have shape \(5,\)"):
        simulate(bars(*[FLAT] * 5), costs=costs(), **args)


def test_a_price_level_array_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"target levels must be a scalar or have one value"):
        simulate(bars(*[FLAT] * 5), np.zeros(5, bool), target_price=np.ones(3), costs=costs())


def test_levels_are_one_per_bar_or_one_for_every_bar():
    arr, mode = _levels(None, 97.5, 4, "stop")  # a price: one per bar
    assert (list(arr), mode) == ([97.5] * 4, LEVEL_PRICE)
    arr, mode = _levels(2.0, None, 4, "stop")  # a distance: one for every bar
    assert (list(arr), mode) == ([0.02], LEVEL_FRACTION)
    arr, mode = _levels(None, None, 4, "target")  # none: one NaN
    assert (arr.shape, bool(np.isnan(arr[0])), mode) == ((1,), True, LEVEL_FRACTION)


def test_integer_entries_ignore_the_side_argument():
    rows = [FLAT, (100, 101, 99, 101), LAST]
    res = simulate(bars(*rows), signal_at(3, 0), side=-1, costs=costs())
    assert res.open_trade.side[0] == 1 and near(res.equity, [1000, 1010, 1010])


# --- the compact curve of the sweep -------------------------------------------------------


def compact_run(rows, entry_side, exit_flag=None, entry_limit=None, delay=0):
    """simulate_kernel in sweep mode: (equity, in_position) of the written bars, trades."""
    d = bars(*rows)
    n = len(d)
    eq, pos = np.full(n, NAN), np.ones(n, dtype=np.bool_)
    written = np.zeros(1, dtype=np.int64)
    bufs = allocate_trade_buffers(n)
    count = simulate_kernel(
        d.open, d.high, d.low, d.close, np.asarray(entry_side, np.int8),
        np.zeros(n, bool) if exit_flag is None else exit_flag, np.array([NAN]), LEVEL_FRACTION,
        np.array([NAN]), LEVEL_FRACTION, 0.0, 0.0, 1000.0, eq, pos, *bufs,
        entry_limit, None, False, delay, None, written,
    )  # fmt: skip
    w = int(written[0])
    return list(eq[:w]), list(pos[:w]), count


def test_the_compact_curve_keeps_bar_0_and_every_bar_with_a_signal_or_a_position():
    flat = (103.0,) * 4
    rows = [FLAT, FLAT, (100, 101, 99, 101), (101, 102, 100, 102), (102, 103, 101, 103), flat,
            flat, flat]  # fmt: skip
    eq, pos, count = compact_run(rows, signal_at(8, 1), exit_flag=flags(8, 4))
    # bar 0; bar 1 (signal); 2 (entry), 3 (held) and 4 (exit signal); 5 (exit at its open);
    # bar 6 left out; bar 7 (the last)
    assert eq == [1000, 1000, 1010, 1020, 1030, 1030, 1030]
    assert pos == [False, False, True, True, True, False, False]
    assert count == 1


def test_the_compact_curve_of_a_signal_on_bar_0_starts_with_it():
    rows = [FLAT, (100, 101, 99, 101), (101, 101, 101, 101), (101, 101, 101, 101)]
    eq, pos, count = compact_run(rows, signal_at(4, 0), exit_flag=flags(4, 1))
    assert (eq, pos, count) == ([1000, 1010, 1010, 1010], [False, True, False, False], 1)


def test_the_compact_curve_leaves_out_bars_before_a_delayed_signal_can_arrive():
    # delay 2: nothing can be read before bar 2; the signal on the last bar is never read
    eq, pos, count = compact_run([FLAT] * 5, signal_at(5, 4), delay=2)
    assert (eq, pos, count) == ([1000, 1000], [False, False], 0)


# A limit order the next bar does not reach (long 99 / short 101 against bar 2) next to bars
# that would reach it: only bar 0 and the last bar are written.
AROUND = (98.5, 101.5, 98.0, 100.0)
UNREACHED = (100.0, 100.5, 99.5, 100.0)


@pytest.mark.parametrize(
    ("side", "limit", "rows"),
    [
        (1, 99.0, [AROUND, AROUND, UNREACHED, AROUND, AROUND]),
        (-1, 101.0, mirror(AROUND, AROUND, UNREACHED, AROUND, AROUND)),
    ],  # fmt: skip
)
def test_the_compact_curve_leaves_out_the_bars_of_a_limit_order_that_will_not_fill(
    side, limit, rows
):
    entry_limit = np.array([NAN, limit, NAN, NAN, NAN])
    eq, pos, count = compact_run(rows, signal_at(5, 1, side=side), entry_limit=entry_limit)
    assert (eq, pos, count) == ([1000, 1000], [False, False], 0)


# --- partial exits: merging the parts' trades ---------------------------------------------


def parts_run(rows, entries, exits, targets, work=None, delay=0, equity=1000.0):
    """simulate_parts with K = len(targets) price targets (one per bar), no stop, no costs,
    every optional argument but ``delay`` left at its default; returns (equity, closed trades,
    the group's position open at the end or None)."""
    d = bars(*rows)
    n = len(d)
    eq, pos = np.empty(n), np.empty(n, dtype=np.bool_)
    bufs = allocate_trade_buffers(n)
    k = len(targets)
    count = simulate_parts(
        d.open, d.high, d.low, d.close, entries, exits, np.array([NAN]), LEVEL_PRICE,
        np.array(targets, dtype=float), k, LEVEL_PRICE, 0.0, 0.0, equity, eq, pos, *bufs,
        parts_work(k, n) if work is None else work, *((None, None, False, delay) if delay else ()),
    )  # fmt: skip
    e_idx, x_idx, _, x_px, _, pnl, _ = (list(b[:count]) for b in bufs)
    held = None if bufs[0][count] < 0 else (bufs[0][count], bufs[1][count], bufs[3][count],
                                           bufs[5][count])  # fmt: skip
    return list(eq), (e_idx, x_idx, x_px, pnl), held


# The last part (500) takes its 102 target on bar 2 and re-enters on bar 3 while the first
# part (500, no target) still holds from bar 1; both leave at bar 5's open (105) and enter
# again at bar 6 (105), still open at the last close (108).
SKIP_BARS = [
    FLAT,  # 0: signal
    (100.0, 101.0, 99.0, 101.0),  # 1: both parts enter at 100
    (101.0, 103.0, 100.0, 102.0),  # 2: the last part's target 102; signal
    (102.0, 103.0, 101.0, 102.0),  # 3: the last part re-enters at 102, the first still holds
    (102.0, 104.0, 101.0, 104.0),  # 4: exit signal
    (105.0, 106.0, 104.0, 105.0),  # 5: both leave at 105; signal
    (105.0, 107.0, 104.0, 106.0),  # 6: both enter at 105
    (106.0, 108.0, 105.0, 108.0),  # 7: marked at 108, still open
]
SKIP_TARGETS = [np.full(8, NAN), np.r_[102.0, np.full(7, NAN)]]


def test_a_part_still_holding_when_the_group_re_enters_is_matched_by_its_entry_bar():
    eq, (e_idx, x_idx, x_px, pnl), held = parts_run(
        SKIP_BARS, signal_at(8, 0, 2, 5), flags(8, 4), SKIP_TARGETS
    )
    # last part: 500 -> 510 (102) -> 525 (102 -> 105) -> 540; first: 500 -> 525 -> 540
    assert near(eq, [1000, 1010, 1020, 1020, 1040, 1050, 1060, 1080])
    assert (e_idx, x_idx) == ([1, 3], [2, 5])
    # group 1: 500 exits at 102 and 500 at 105; group 2: only the last part's 510 (105)
    assert near(x_px, [103.5, 105.0])
    assert near(pnl, [3.5, (1050 / 1035 - 1) * 100])
    # group 3, open at the end: 525 and 525, both marked at 108 (both parts entered at 6)
    assert held[:2] == (6, 7) and near(held[2:], [108.0, (1080 / 1050 - 1) * 100])


# Earlier runs on the same bars: the first part's second trade entered at bar 3 (both parts
# leave at bar 2's open and re-enter), or at bar 2 (both take a 100.5 target on bar 1).
STALE_RUNS = [
    (signal_at(6, 0, 2), flags(6, 1), [np.full(6, NAN)] * 2),
    (signal_at(6, 0, 1), flags(6), [np.r_[100.5, np.full(5, NAN)]] * 2),
]


@pytest.mark.parametrize("stale", STALE_RUNS, ids=["entry-at-3", "entry-at-2"])
def test_scratch_arrays_reused_from_an_earlier_run_do_not_leak_into_the_merge(stale):
    # A sweep reuses one parts_work; here the first part holds through the group's entry at
    # bar 3, so it has one trade and the scratch arrays still hold the earlier run's second.
    rows = SKIP_BARS[:5] + [(104.0, 105.0, 103.0, 105.0)]
    work = parts_work(2, 6)
    parts_run(rows, *stale, work)
    targets = [t[:6] for t in SKIP_TARGETS]
    eq, (e_idx, x_idx, x_px, pnl), held = parts_run(
        rows, signal_at(6, 0, 2), flags(6), targets, work
    )
    assert near(eq, [1000, 1010, 1020, 1020, 1040, 1050])
    assert (e_idx, x_idx) == ([1], [2])
    # group 1: 500 at 102 and the first part's 500 -> 525 marked at 105 (that part is still
    # open at the end: it is merged into the group position it entered with, not lost)
    assert near(x_px, [103.5]) and near(pnl, [3.5])
    # group 2, open at the end: the last part alone (510 -> 525), marked at 105
    assert held[:2] == (3, 5) and near(held[2:], [105.0, ((525 + 525) / (510 + 525) - 1) * 100])
    # so the group's trades still compound to the final equity
    assert near((1 + pnl[0] / 100) * (1 + held[3] / 100), eq[-1] / 1000)


def test_delayed_partial_exits_enter_together_that_many_bars_late():
    # signal on bar 0, delay 1: both parts enter at bar 2 (100); the first part's target 102
    # (from the signal bar) is hit on bar 3, the last part is still open at 104
    rows = [FLAT, FLAT, (100, 101, 99, 101), (101, 103, 100, 102), (102, 103, 101, 103),
            (103, 104, 102, 104)]  # fmt: skip
    targets = [np.r_[102.0, np.full(5, NAN)], np.full(6, NAN)]
    eq, closed, held = parts_run(rows, signal_at(6, 0), flags(6), targets, delay=1)
    assert near(eq, [1000, 1000, 1010, 1020, 1025, 1030])
    assert closed == ([], [], [], [])
    assert held[:2] == (2, 5) and near(held[2:], [103.0, 3.0])


def test_the_merged_trade_of_an_account_of_one():
    # 1.0 in two parts of 0.5: the first takes 102, the last 104
    rows = [FLAT, (100, 101, 99, 101), (101, 103, 100, 102), (102, 104, 101, 104), LAST]
    targets = [np.r_[102.0, np.full(4, NAN)], np.r_[104.0, np.full(4, NAN)]]
    eq, (e_idx, x_idx, x_px, pnl), held = parts_run(
        rows, signal_at(5, 0), flags(5), targets, equity=1.0
    )
    assert near(eq, [1.0, 1.01, 1.02, 1.03, 1.03])
    assert (e_idx, x_idx) == ([1], [3]) and near(x_px, [103.0]) and near(pnl, [3.0])
    assert held is None


def test_parts_scratch_holds_one_row_per_other_part():
    work = parts_work(3, 5)
    assert [a.shape for a in work] == [(5,), (2, 5), (5,), (5,), (2, 5), (2, 5), (2, 5), (2, 5),
                                       (5,), (5,), (5,)]  # fmt: skip
    assert "".join(a.dtype.kind for a in work) == "ffbiiifffii"
    assert [a.shape for a in parts_work(1, 0)] == [(0,), (1, 0), (0,), (0,), (1, 1), (1, 1),
                                                   (1, 1), (1, 1), (1,), (1,), (1,)]  # fmt: skip


# --- the end of the data: an open position is marked, not closed --------------------------


def test_a_position_open_at_the_end_is_not_a_trade_and_pays_no_exit_costs():
    # Long from 100 * 1.01 (slippage 1 %, commission 1 %), marked at the last close 110.
    rows = [FLAT, (100, 101, 99, 105), (105, 111, 104, 110)]
    res = simulate(bars(*rows), flags(3, 0), costs=costs(1.0, 1.0))
    mark = 1000 / 1.01 / 101 * 110  # base * close / entry fill: no sell slippage, no fee
    assert near(res.equity[-1], mark) and res.in_position[-1]
    assert len(res.trades) == 0 and len(res.open_trade) == 1
    m = compute(res)
    assert m.n_trades == 0 and np.isnan(m.win_rate) and np.isnan(m.expectancy_pct)
    assert near(m.total_return_pct, (mark / 1000 - 1) * 100)  # the unrealised mark counts
    # the same position closed by a signal at an open equal to that close pays both costs
    closed = simulate(bars(*rows, (110,) * 4), flags(4, 0), flags(4, 2), costs=costs(1.0, 1.0))
    assert near(closed.equity[-1], 1000 / 1.01 / 101 * 110 * 0.99 * 0.99)
    assert len(closed.trades) == 1 and len(closed.open_trade) == 0


def test_the_open_slot_says_flat_whatever_the_buffers_held_before():
    d = bars(FLAT, (100, 101, 99, 101), LAST)
    nan = np.array([NAN])
    bufs = allocate_trade_buffers(3)

    def run(entries):
        eq, pos = np.empty(3), np.empty(3, dtype=np.bool_)
        return simulate_kernel(
            d.open, d.high, d.low, d.close, entries, np.zeros(3, bool), nan, LEVEL_FRACTION, nan,
            LEVEL_FRACTION, 0.0, 0.0, 1000.0, eq, pos, *bufs,
        )  # fmt: skip

    assert run(signal_at(3, 0)) == 0 and (bufs[0][0], bufs[6][0]) == (1, 3)  # held at the end
    assert run(np.zeros(3, np.int8)) == 0  # the same buffers, flat this time
    assert (bufs[0][0], bufs[6][0]) == (-1, -1)
    flat = result_from_buffers(d, np.full(3, 1000.0), np.zeros(3, bool), bufs, 0, 1000.0)
    assert len(flat.open_trade) == 0 and len(flat.trades) == 0
    # no bars at all: the one slot says flat too
    bufs[0][0] = 7
    count = simulate_kernel(
        d.open[:0], d.high[:0], d.low[:0], d.close[:0], np.zeros(0, np.int8), np.zeros(0, bool),
        nan, LEVEL_FRACTION, nan, LEVEL_FRACTION, 0.0, 0.0, 1000.0, np.empty(0),
        np.empty(0, dtype=np.bool_), *bufs,
    )  # fmt: skip
    assert (count, bufs[0][0]) == (0, -1)


def test_the_open_slot_always_exists_after_the_most_trades_possible():
    # An entry on every open from bar 1 on, each stopped out on its own bar: n - 1 closed
    # trades in n slots, flat at the end, the sentinel in the last slot.
    n = 6
    rows = [FLAT] + [(100, 100, 90, 95)] * (n - 1)
    d = bars(*rows)
    bufs = allocate_trade_buffers(n)
    eq, pos = np.empty(n), np.empty(n, dtype=np.bool_)
    count = simulate_kernel(
        d.open, d.high, d.low, d.close, np.ones(n, np.int8), np.zeros(n, bool),
        np.array([0.05]), LEVEL_FRACTION, np.array([NAN]), LEVEL_FRACTION, 0.0, 0.0, 1000.0,
        eq, pos, *bufs,
    )  # fmt: skip
    assert count == n - 1 and len(bufs[0]) == n
    assert list(bufs[0][:count]) == [1, 2, 3, 4, 5] and (bufs[0][n - 1], bufs[6][n - 1]) == (-1, -1)
    # a reversal on every close: n - 2 closed trades and the open one in slot n - 2
    sides = np.array([1, -1] * (n // 2), dtype=np.int8)
    res = simulate(bars(*[FLAT] * n), sides, costs=costs())
    assert len(res.trades) == n - 2 and list(res.open_trade.entry_idx) == [n - 1]


def test_three_parts_open_at_the_end_are_one_open_group_position():
    # PARTIAL up to bar 3: TP1 (102) and TP2 (104) taken, the last third marked at 104.
    strategy = ThreeTargets()
    res = strategy.run(strategy.prepare(bars(*PARTIAL[:4])), {"parts": 3}, costs())
    part = 1000.0 / 3
    final = part * 1.02 + part * 1.04 + part * 1.04
    assert near(res.equity[-1], final) and len(res.trades) == 0
    o = res.open_trade
    assert (list(o.entry_idx), list(o.exit_idx), list(o.reason)) == ([1], [3], ["end"])
    assert near(o.exit_price, [(102.0 + 104.0 + 104.0) / 3])  # weighted by the parts' equity
    assert near(o.pnl_pct, [(final / 1000.0 - 1) * 100])


def test_the_other_parts_enter_with_a_last_part_still_open_at_the_end():
    # Entry signal on bar 2 (enter at 3); the last part has no target and is open at the end,
    # the first takes its 102 target on bar 4: both parts must have entered.
    rows = [FLAT, FLAT, FLAT, (100, 101, 99, 101), (101, 103, 100, 101), (101, 102, 100, 101)]
    targets = [np.r_[NAN, NAN, 102.0, NAN, NAN, NAN], np.full(6, NAN)]
    eq, closed, held = parts_run(rows, signal_at(6, 2), flags(6), targets)
    assert near(eq, [1000, 1000, 1000, 1010, 1015, 1015])
    assert closed == ([], [], [], []) and held[:2] == (3, 5)
    assert near(held[2:], [(102.0 + 101.0) / 2, 1.5])


def test_the_compact_curve_ends_with_the_mark_of_a_position_open_at_the_end():
    rows = [FLAT, FLAT, FLAT, (100, 101, 99, 101), (101, 102, 100, 102)]
    eq, pos, count = compact_run(rows, signal_at(5, 2))
    assert (eq, pos, count) == ([1000, 1000, 1010, 1020], [False, False, True, True], 0)


def test_a_part_flat_at_the_end_leaves_its_open_slot_unread():
    # The first part holds from bar 1 through the group's re-entry at bar 3 and both parts
    # leave at bar 5's open (105): that part is flat at the end with one trade, and its open
    # slot (the sentinel) must not be merged, whatever an earlier run left in the scratch
    # arrays (here a second trade of that part at the same index).
    rows = SKIP_BARS[:6] + [(105.0,) * 4]
    work = parts_work(2, 7)
    parts_run(rows, signal_at(7, 0, 2), flags(7, 1), [np.full(7, NAN)] * 2, work)
    targets = [t[:7] for t in SKIP_TARGETS]
    eq, (e_idx, x_idx, x_px, pnl), held = parts_run(
        rows, signal_at(7, 0, 2), flags(7, 4), targets, work
    )
    assert near(eq, [1000, 1010, 1020, 1020, 1040, 1050, 1050]) and held is None
    assert (e_idx, x_idx) == ([1, 3], [2, 5])
    # group 1: 500 at 102 and the first part's 500 -> 525 (105); group 2: the last part alone
    assert near(x_px, [103.5, 105.0])
    assert near(pnl, [3.5, ((525 + 525) / (510 + 525) - 1) * 100])
