"""SMC zones: detectors, TP1/TP2/TP3 thirds, golden trade, sweep == run."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from backtestlab.engine.metrics import compute, compute_row
from backtestlab.engine.smc_zones import PATTERN_TYPES, detect_historical
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.strategies.smc import DEFAULT_PARAMETER_GRID, QUICK_PARAMETER_GRID
from backtestlab.engine.sweep import grid_size

from ..conftest import make_data

COSTS = Costs()
C = 0.001
S = 0.0005
SMC = get_strategy("smc_zones")


def _bars(rows):
    """rows of (open, high, low, close) -> MarketData (1h)."""
    a = np.array(rows, dtype=float)
    return make_data(a[:, 3], open_=a[:, 0], high=a[:, 1], low=a[:, 2])


def _golden_data():
    rows = [(100.0, 100.5, 99.5, 100.0)] * 16  # 0-15: flat, ATR(14) warms up
    rows += [
        (100.0, 102.2, 99.9, 102.0),  # 16: displacement
        (102.0, 102.5, 101.5, 102.3),  # 17: low 101.5 > high[15] 100.5 -> bullish FVG
        (102.3, 102.8, 102.1, 102.6),  # 18: no touch of 101.5
        (102.4, 102.5, 101.3, 102.0),  # 19: low 101.3 touches -> limit fill at 101.5
        (102.0, 103.6, 101.9, 103.5),  # 20: high 103.6 < target 103.7
        (103.5, 104.0, 103.4, 103.9),  # 21: target 103.7 hit (also a new FVG, never touched)
    ]
    rows += [(103.9, 104.0, 103.55, 103.9)] * 6  # 22-27: above every zone
    return _bars(rows)


def test_detect_historical_finds_the_gap_from_its_completing_bar():
    zones = detect_historical(_golden_data(), "imbalance")
    assert [(z["bar"], z["direction"], z["zone_low"], z["zone_high"]) for z in zones] == [
        (17, "bullish", 100.5, 101.5),
        (21, "bullish", 102.5, 103.4),
    ]
    assert zones[0]["touch_bar"] == 19 and zones[1]["touch_bar"] is None
    assert zones[0]["end_bar"] is None and zones[0]["entry"] == 101.5


def test_golden_fvg_trade():
    data = _golden_data()
    res = SMC.run(SMC.prepare(data), {"pattern_type": "imbalance"}, COSTS)
    t = res.trades
    assert len(t) == 1
    entry = 101.5 * (1 + S)
    stop = 100.5 - 0.10 * 1.0
    target = 101.5 + 2.0 * (101.5 - stop)
    exit_ = target * (1 - S)
    assert (t.entry_idx[0], t.exit_idx[0], t.side[0], t.reason[0]) == (19, 21, 1, "target")
    assert np.isclose(t.entry_price[0], entry, rtol=1e-8)
    assert np.isclose(t.exit_price[0], exit_, rtol=1e-8)
    base = 10_000 / (1 + C)
    qty = base / entry
    final = base + qty * (exit_ - entry) - C * qty * exit_
    assert np.isclose(t.pnl_pct[0], (final / 10_000 - 1) * 100, rtol=1e-8)
    assert np.isclose(res.equity[-1], final, rtol=1e-8)
    # marked at the close of the fill bar (102.0) before exit costs
    assert np.isclose(res.equity[19], base + qty * (102.0 - entry), rtol=1e-8)
    m = compute(res)
    assert np.isclose(m.total_return_pct, (final / 10_000 - 1) * 100, rtol=1e-8)
    assert np.isclose(m.total_return_pct, 1.8614444395642638, rtol=1e-8)
    assert m.win_rate == 100.0 and m.n_trades == 1


def test_presets_are_the_seed_grids():
    space = SMC.parameter_space()
    default = space.validate_grid(SMC.presets["default"], max_combinations=10**6)
    quick = space.validate_grid(SMC.presets["quick"], max_combinations=10**6)
    assert grid_size(default) == 960 and grid_size(quick) == 6
    assert SMC.presets["default"] is DEFAULT_PARAMETER_GRID
    assert SMC.presets["quick"] is QUICK_PARAMETER_GRID
    assert SMC.group_by == ("pattern_type",)
    assert space["pattern_type"].choices == PATTERN_TYPES


@pytest.mark.parametrize("pattern", PATTERN_TYPES)
def test_every_pattern_trades_long_and_short(hourly_btc, pattern):
    res = SMC.run(SMC.prepare(hourly_btc), {"pattern_type": pattern}, COSTS)
    t = res.trades
    assert (t.side == 1).sum() > 5 and (t.side == -1).sum() > 5
    assert (t.entry_idx[1:] >= t.exit_idx[:-1]).all()  # one position at a time
    # closed trades and the position open at the end (if any) compound to the final equity
    final = COSTS.initial_equity * np.prod(1 + np.r_[t.pnl_pct, res.open_trade.pnl_pct] / 100)
    assert np.isclose(final, res.equity[-1], rtol=1e-9)


def test_zone_validation_min_zone_and_overlap(hourly_btc):
    thin = detect_historical(hourly_btc, "order_block", min_zone_pct=0.0, skip_overlap=True)
    thick = detect_historical(hourly_btc, "order_block", min_zone_pct=0.5, skip_overlap=True)
    dedup = detect_historical(hourly_btc, "order_block", min_zone_pct=0.0)
    assert len(thick) < len(dedup) < len(thin)
    for z in thick:
        close = hourly_btc.close[z["bar"]]
        assert (z["zone_high"] - z["zone_low"]) / close * 100 >= 0.5


@pytest.mark.parametrize("tp_method", ["swing_target", "atr_multiple"])
def test_three_targets_are_partial_exits_of_one_position(hourly_btc, tp_method):
    ctx = SMC.prepare(hourly_btc)
    params = {"pattern_type": "order_block", "tp_method": tp_method}
    res = SMC.run(ctx, params, COSTS)
    t = res.trades
    assert len(t) > 20
    # one reported trade per group position; equity and trade pnl agree
    assert (t.entry_idx[1:] >= t.exit_idx[:-1]).all()
    final = COSTS.initial_equity * np.prod(1 + np.r_[t.pnl_pct, res.open_trade.pnl_pct] / 100)
    assert np.isclose(final, res.equity[-1], rtol=1e-9)
    # with a blended exit price, some winners' exit lies strictly between TP1 and TP3
    one = SMC.run(ctx, {**params, "tp_method": "fixed_rr"}, COSTS)
    assert not np.array_equal(one.equity, res.equity)


PARAM_CHANGES = [
    ("pattern_type", "order_block"),
    ("rr_target", 3.5),
    ("sl_buffer_pct", 20.0),
    ("entry_method", "zone_mid"),
    ("entry_method", "atr_buffer"),
    ("tp_method", "swing_target"),
    ("tp_method", "atr_multiple"),
    ("min_zone_pct", 0.4),
    ("use_overlap", False),
]


@pytest.mark.parametrize(("name", "value"), PARAM_CHANGES)
def test_each_parameter_changes_results(hourly_btc, name, value):
    ctx = SMC.prepare(hourly_btc)
    base = compute_row(SMC.run(ctx, {}, COSTS))
    changed = compute_row(SMC.run(ctx, {name: value}, COSTS))
    assert not np.array_equal(base, changed, equal_nan=True)


def test_costs_are_applied(hourly_btc):
    ctx = SMC.prepare(hourly_btc)
    free = SMC.run(ctx, {}, Costs(0, 0))
    paid = SMC.run(ctx, {}, Costs(0.1, 0.05))
    assert np.array_equal(free.trades.entry_idx[:5], paid.trades.entry_idx[:5])
    assert paid.equity[-1] < free.equity[-1]
    side = paid.trades.side[0]
    assert np.isclose(paid.trades.entry_price[0], free.trades.entry_price[0] * (1 + side * S))


@pytest.mark.parametrize(
    "close",
    [np.linspace(100, 200, 300), np.full(300, 100.0), np.linspace(100, 101, 10), [100.0], []],
    ids=["monotonic", "flat", "too-short", "one-bar", "empty"],
)
def test_degenerate_data_gives_no_trades(close):
    data = make_data(np.asarray(close, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = SMC.prepare(data)
        for tp in ("fixed_rr", "swing_target", "atr_multiple"):
            res = SMC.run(ctx, {"tp_method": tp}, COSTS)
            assert len(res.trades) == 0
            row = SMC.run_many(ctx, [{"tp_method": tp}], COSTS)[0]
            np.testing.assert_array_equal(row, compute_row(res))
            if len(close):
                assert res.equity[-1] == COSTS.initial_equity
                assert math.isnan(compute(res).win_rate)


def test_run_many_equals_run_and_compute(hourly_btc):
    rng = np.random.Generator(np.random.PCG64(2024))
    space = SMC.parameter_space()
    params = []
    for _ in range(40):
        params.append(
            {
                "pattern_type": str(rng.choice(PATTERN_TYPES)),
                "rr_target": float(np.round(rng.uniform(0.5, 5), 2)),
                "sl_buffer_pct": float(np.round(rng.uniform(0, 40), 1)),
                "entry_method": str(rng.choice(space["entry_method"].choices)),
                "tp_method": str(rng.choice(space["tp_method"].choices)),
                "min_zone_pct": float(np.round(rng.uniform(0, 0.5), 2)),
                "use_overlap": bool(rng.integers(0, 2)),
            }
        )
    costs = Costs(commission_pct=0.075, slippage_pct=0.02, initial_equity=5_000.0)
    fast = SMC.run_many(SMC.prepare(hourly_btc), params, costs)
    ctx = SMC.prepare(hourly_btc)
    traded = 0
    for k, p in enumerate(params):
        row = compute_row(SMC.run(ctx, p, costs))
        np.testing.assert_array_equal(fast[k], row, err_msg=str(p))
        traded += row[11] > 0
    assert traded > 30


@pytest.mark.parametrize("k", [300, 1111, 2000])
@pytest.mark.parametrize("tp_method", ["fixed_rr", "atr_multiple"])
def test_no_look_ahead(hourly_btc, k, tp_method):
    params = {"pattern_type": "imbalance", "tp_method": tp_method, "entry_method": "zone_mid"}
    full = SMC.run(SMC.prepare(hourly_btc), params, COSTS)
    cut_data = hourly_btc.slice_time(None, int(hourly_btc.ts[k]))
    cut = SMC.run(SMC.prepare(cut_data), params, COSTS)
    done_full = full.trades.exit_idx < k - 1
    done_cut = cut.trades.exit_idx < k - 1
    assert done_full.sum() == done_cut.sum() > 0
    for name in ("entry_idx", "exit_idx", "entry_price", "exit_price", "pnl_pct", "reason"):
        np.testing.assert_array_equal(
            getattr(full.trades, name)[done_full], getattr(cut.trades, name)[done_cut]
        )
    np.testing.assert_array_equal(
        full.trades.entry_idx[full.trades.entry_idx < k], cut.trades.entry_idx
    )
    np.testing.assert_array_equal(full.equity[: k - 1], cut.equity[: k - 1])
    zones_full = [z for z in detect_historical(hourly_btc, "imbalance") if z["bar"] < k]
    zones_cut = detect_historical(cut_data, "imbalance")
    assert [z["bar"] for z in zones_full] == [z["bar"] for z in zones_cut]
