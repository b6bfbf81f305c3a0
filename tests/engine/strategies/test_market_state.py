"""Market state strategy: states, golden trade, seed-plan tests, sweep == run, no look-ahead."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtestlab.engine.market_profile import (
    STATE_BALANCE,
    STATE_IMBALANCE_UP,
    STATE_UNKNOWN,
)
from backtestlab.engine.metrics import compute, compute_row
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.synthetic import synthetic_candles

from ..conftest import make_data

COSTS = Costs()
S = 0.0005
C = 0.001
MS = get_strategy("market_state")


@pytest.fixture(scope="module")
def minutes():
    """Ten synthetic days of BTC minute candles (14,400 bars)."""
    return synthetic_candles("BTC", days=10, seed=11)


def _golden_minutes():
    rows = [(100.0, 100.05, 99.95, 100.0)] * 20  # 0-19 flat: TR 0.1
    rows += [
        (100.0, 101.05, 99.95, 101.0),  # 20: +1 % jump -> IMBALANCE_UP
        (101.0, 101.35, 100.95, 101.3),  # 21: long filled at the open 101
        (101.3, 101.8, 101.25, 101.7),  # 22: target hit
    ]
    rows += [(101.7, 101.75, 101.65, 101.7)] * 7  # 23-29 flat
    a = np.array(rows)
    data = make_data(a[:, 3], open_=a[:, 0], high=a[:, 1], low=a[:, 2], timeframe="1m")
    data.volume[20] = 10.0
    return data


GOLDEN_PARAMS = {
    "lookback_period": 10,
    "poc_distance_threshold": 0.5,
    "momentum_threshold": 0.5,
    "min_confidence": 0,
}


def test_golden_imbalance_trade():
    data = _golden_minutes()
    ctx = MS.prepare(data)
    state, conf = MS.states(ctx, GOLDEN_PARAMS)
    assert (state[:10] == STATE_UNKNOWN).all()
    assert (state[10:20] == STATE_BALANCE).all()
    assert state[20] == STATE_IMBALANCE_UP and conf[20] > 66
    res = MS.run(ctx, GOLDEN_PARAMS, COSTS)
    t = res.trades
    assert len(t) == 1
    atr20 = (0.1 * 13 + 1.1) / 14  # Wilder ATR(14): 0.1 for bars 0-19, then TR 1.1
    entry = 101.0 * (1 + S)
    target = entry * (1 + 3.0 * atr20 / 101.0)
    exit_ = target * (1 - S)
    assert (t.entry_idx[0], t.exit_idx[0], t.side[0], t.reason[0]) == (21, 22, 1, "target")
    assert np.isclose(t.entry_price[0], entry, rtol=1e-8)
    assert np.isclose(t.exit_price[0], exit_, rtol=1e-8)
    base = 10_000 / (1 + C)
    qty = base / entry
    final = base + qty * (exit_ - entry) - C * qty * exit_
    assert np.isclose(res.equity[-1], final, rtol=1e-8)
    assert np.isclose(compute(res).total_return_pct, (final / 10_000 - 1) * 100, rtol=1e-8)


def test_seed_plan_higher_poc_threshold_gives_more_balance(minutes):
    ctx = MS.prepare(minutes)
    counts = []
    for thr in (0.1, 0.25, 0.5, 1.5, 2.5):
        state, _ = MS.states(ctx, {"poc_distance_threshold": thr})
        counts.append(int((state == STATE_BALANCE).sum()))
    assert counts == sorted(counts) and counts[0] < counts[-1]
    low = MS.run(ctx, {"poc_distance_threshold": 0.25}, COSTS)
    high = MS.run(ctx, {"poc_distance_threshold": 1.5}, COSTS)
    assert len(low.trades) > len(high.trades)  # fewer imbalances to trade


def test_seed_plan_allow_balance_trades_gives_more_trades(minutes):
    ctx = MS.prepare(minutes)
    n = len(MS.run(ctx, {"allow_balance_trades": False}, COSTS).trades)
    m = len(MS.run(ctx, {"allow_balance_trades": True}, COSTS).trades)
    assert m > n


PARAM_CHANGES = [
    ("lookback_period", 30),
    ("poc_distance_threshold", 0.6),
    ("momentum_threshold", 0.2),
    ("cvd_pressure_threshold", 5.0),
    ("lookback_buckets", 30),
    ("allow_balance_trades", True),
    ("min_confidence", 80.0),
    ("atr_period", 30),
    ("sl_atr_mult", 0.7),
    ("tp_atr_mult", 1.5),
]


@pytest.mark.parametrize(("name", "value"), PARAM_CHANGES)
def test_each_parameter_changes_results(minutes, name, value):
    ctx = MS.prepare(minutes)
    base = {"poc_distance_threshold": 0.3, "momentum_threshold": 0.3}
    before = compute_row(MS.run(ctx, base, COSTS))
    after = compute_row(MS.run(ctx, {**base, name: value}, COSTS))
    assert not np.array_equal(before, after, equal_nan=True)


def test_costs_are_applied(minutes):
    ctx = MS.prepare(minutes)
    params = {"poc_distance_threshold": 0.3}
    free = MS.run(ctx, params, Costs(0, 0))
    paid = MS.run(ctx, params, Costs(0.1, 0.05))
    t0 = free.trades
    assert len(t0) > 5 and t0.entry_idx[0] == paid.trades.entry_idx[0]
    side = paid.trades.side[0]
    assert np.isclose(paid.trades.entry_price[0], t0.entry_price[0] * (1 + side * S))
    assert paid.equity[-1] < free.equity[-1]


@pytest.mark.parametrize(
    "close",
    [np.full(500, 100.0), np.linspace(100, 101, 30), [100.0], []],
    ids=["flat", "too-short", "one-bar", "empty"],
)
def test_degenerate_data_gives_no_trades(close):
    data = make_data(np.asarray(close, dtype=float), timeframe="1m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = MS.prepare(data)
        for allow in (False, True):
            params = {"allow_balance_trades": allow}
            res = MS.run(ctx, params, COSTS)
            assert len(res.trades) == 0
            np.testing.assert_array_equal(MS.run_many(ctx, [params], COSTS)[0], compute_row(res))


def test_other_timeframes_are_refused_clearly(hourly_btc):
    ctx = MS.prepare(hourly_btc)
    with pytest.raises(ValueError, match="needs 1-minute candles.*1h"):
        MS.run(ctx, {}, COSTS)
    with pytest.raises(ValueError, match="needs 1-minute candles"):
        MS.run_many(ctx, [{}], COSTS)


def test_run_many_equals_run_and_compute(minutes):
    rng = np.random.Generator(np.random.PCG64(77))
    params = []
    for _ in range(30):
        params.append(
            {
                "lookback_period": int(rng.choice([20, 60, 90])),
                "poc_distance_threshold": float(np.round(rng.uniform(0.05, 1.0), 2)),
                "momentum_threshold": float(np.round(rng.uniform(0.05, 1.0), 2)),
                "cvd_pressure_threshold": float(np.round(rng.uniform(1, 40), 1)),
                "lookback_buckets": int(rng.integers(1, 20)),
                "allow_balance_trades": bool(rng.integers(0, 2)),
                "min_confidence": float(np.round(rng.uniform(0, 80), 1)),
                "atr_period": int(rng.choice([10, 14, 30])),
                "sl_atr_mult": float(np.round(rng.uniform(0.5, 4), 2)),
                "tp_atr_mult": float(np.round(rng.uniform(0.5, 6), 2)),
            }
        )
    costs = Costs(commission_pct=0.05, slippage_pct=0.01, initial_equity=3_000.0)
    fast = MS.run_many(MS.prepare(minutes), params, costs)
    ctx = MS.prepare(minutes)
    traded = 0
    for k, p in enumerate(params):
        row = compute_row(MS.run(ctx, p, costs))
        np.testing.assert_array_equal(fast[k], row, err_msg=str(p))
        traded += row[11] > 0
    assert traded > 20


@pytest.mark.parametrize("k", [700, 5000, 11111])
def test_no_look_ahead(minutes, k):
    params = {"poc_distance_threshold": 0.3, "allow_balance_trades": True}
    full_ctx = MS.prepare(minutes)
    full = MS.run(full_ctx, params, COSTS)
    cut_data = minutes.slice_time(None, int(minutes.ts[k]))
    cut_ctx = MS.prepare(cut_data)
    cut = MS.run(cut_ctx, params, COSTS)
    s_full, c_full = MS.states(full_ctx, params)
    s_cut, c_cut = MS.states(cut_ctx, params)
    np.testing.assert_array_equal(s_full[:k], s_cut)
    np.testing.assert_array_equal(c_full[:k], c_cut)
    done_full = full.trades.exit_idx < k - 1
    done_cut = cut.trades.exit_idx < k - 1
    assert done_full.sum() == done_cut.sum() > 0
    for name in ("entry_idx", "exit_idx", "entry_price", "exit_price", "pnl_pct", "reason"):
        np.testing.assert_array_equal(
            getattr(full.trades, name)[done_full], getattr(cut.trades, name)[done_cut]
        )
    np.testing.assert_array_equal(full.equity[: k - 1], cut.equity[: k - 1])


def test_a_year_of_minutes_backtests_and_its_context_serves_another_parameter_set():
    """Functional half of the seed's "fast": a whole year of minutes goes through (its
    wall-clock figure, target < 1 s, is printed by ``make bench``), and a context prepared
    once answers a second parameter set exactly as a fresh one does."""
    data = synthetic_candles("BTC", days=365, seed=42)
    assert len(data) == 525_600
    ctx = MS.prepare(data)
    res = MS.run(ctx, {}, COSTS)  # includes the volume profile of the lookback
    assert len(res.equity) == 525_600 and len(res.trades) > 0
    params = {"poc_distance_threshold": 0.5}
    again = MS.run(ctx, params, COSTS)
    fresh = MS.run(MS.prepare(data), params, COSTS)
    np.testing.assert_array_equal(again.equity, fresh.equity)
    np.testing.assert_array_equal(again.trades.entry_idx, fresh.trades.entry_idx)
    assert not np.array_equal(again.equity, res.equity)  # the parameter does act
