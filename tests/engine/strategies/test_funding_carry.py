"""funding_carry: hand-computed golden runs, costs and funding, no look-ahead, every parameter
matters where it should, degenerate data, run_many == run + compute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtestlab.engine.data import FundingSeries
from backtestlab.engine.metrics import compute
from backtestlab.engine.signals import Params
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.strategies.funding_carry import BASIS_FULL_SCORE
from backtestlab.engine.synthetic import resample, synthetic_candles, synthetic_funding

from ..conftest import START, make_data

H = 3600
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05, initial_equity=10_000.0)
CARRY = get_strategy("funding_carry")

# 40 hourly bars from START (a multiple of 8 h); close = 100 + i, open = previous close.
CLOSE = 100.0 + np.arange(40)
# Funding at 0, 8, 16, 24, 32, 40 h.  t = 0 lies before the first close (no bar, no price);
# t = 8 h is settled on bar 7 (closes at 8 h), ..., t = 40 h on bar 39, the last bar.
RATES = [0.0001, 0.0004, 0.0005, 0.0002, 0.00005, 0.0004]


def _golden():
    data = make_data(CLOSE)
    funding = FundingSeries("TEST", START + np.arange(6) * 8 * H, np.array(RATES))
    return data, CARRY.prepare(data, {"funding": funding})


def _hedged_round_trip(entry_open, exit_open, flows, c=0.001, s=0.0005, e0=10_000.0):
    """The docstring's accounting, written out: both legs, both fills, funding per unit."""
    fill1, fill2 = entry_open * (1 + s), entry_open * (1 - s)
    qty = e0 / (fill1 + c * (fill1 + fill2))
    base = e0 - c * qty * (fill1 + fill2)
    mark = base + qty * (fill2 - fill1)
    base += qty * sum(flows)
    x1, x2 = exit_open * (1 - s), exit_open * (1 + s)
    final = base + qty * (x1 - fill1) - qty * (x2 - fill2) - c * qty * (x1 + x2)
    return qty, mark, final


def test_golden_simple_mode_settles_funding_and_pays_both_legs_fees():
    data, ctx = _golden()
    res = CARRY.run(ctx, {"strategy_mode": "simple"}, COSTS)
    t = res.trades
    # 0.0004 at 8 h >= 0.0003: signal on bar 7, entry at the open of bar 8 (= close 7 = 107).
    # 0.00005 at 32 h < 0.0001: exit signal on bar 31, exit at the open of bar 32 (= 131).
    assert list(t.entry_idx) == [8] and list(t.exit_idx) == [32]
    assert list(t.reason) == ["signal"]
    # Funding received: 16 h and 24 h and 32 h (held through bars 15, 23, 31); not the 8 h
    # rate that triggered the entry.
    flows = [0.0005 * CLOSE[15], 0.0002 * CLOSE[23], 0.00005 * CLOSE[31]]
    qty, mark, final = _hedged_round_trip(107.0, 131.0, flows)
    assert np.isclose(res.equity[10], mark, rtol=1e-8)
    assert np.isclose(res.equity[15], mark + qty * flows[0], rtol=1e-8)
    assert np.isclose(res.equity[-1], final, rtol=1e-8)
    assert np.isclose(t.pnl_pct[0], (final / 10_000.0 - 1) * 100, rtol=1e-8)
    # Pinned: 10,000 -> 9,941.70: ~66.6 of fees and slippage (the exit legs are worth
    # 131/107 of the entry legs), ~8.3 of funding.
    assert np.isclose(final, 9941.701820215818, rtol=1e-8)
    m = compute(res)
    assert m.n_trades == 1 and m.exposure_pct == 24 / 40 * 100


def test_golden_composite_persistence_only():
    data, ctx = _golden()
    params = {
        "strategy_mode": "composite",
        "weight_rate_level": 0.0,
        "weight_trend": 0.0,
        "weight_persistence": 1.0,
        "weight_basis": 0.0,
        "persistence_threshold": 0.0003,
        "persistence_max_periods": 2,
        "entry_threshold": 1.0,
        "exit_threshold": 0.5,
    }
    res = CARRY.run(ctx, params, COSTS)
    # Persistence: 8 h run 1 (0.5), 16 h run 2 (1.0 -> enter, bar 15), 24 h run 0 (exit, bar 23).
    assert list(res.trades.entry_idx) == [16] and list(res.trades.exit_idx) == [24]
    _, _, final = _hedged_round_trip(CLOSE[15], CLOSE[23], [0.0002 * CLOSE[23]])
    assert np.isclose(res.equity[-1], final, rtol=1e-8)
    assert np.isclose(final, 9940.2016697387, rtol=1e-8)


def test_composite_rate_level_alone_equals_simple_thresholds():
    _, ctx = _golden()
    composite = {
        "strategy_mode": "composite",
        "weight_rate_level": 1.0,
        "weight_trend": 0.0,
        "weight_persistence": 0.0,
        "weight_basis": 0.0,
        "entry_threshold": 0.9,  # rate >= 0.00027
        "exit_threshold": 1 / 3,  # rate < 0.0001
    }
    a = CARRY.run(ctx, composite, COSTS)
    b = CARRY.run(ctx, {"strategy_mode": "simple"}, COSTS)
    np.testing.assert_array_equal(a.equity, b.equity)


def test_basis_proxy_is_the_price_against_its_seeded_ema():
    _, ctx = _golden()
    p = ctx.price  # NaN at t = 0, then closes 107, 115, 123, 131, 139
    assert np.isnan(p[0]) and list(p[1:]) == [107.0, 115.0, 123.0, 131.0, 139.0]
    alpha = 2 / 22
    ref = [107.0]
    for v in p[2:]:
        ref.append(ref[-1] + alpha * (v - ref[-1]))
    expected = np.clip(0.5 + 0.5 * (p[1:] / np.array(ref) - 1) / BASIS_FULL_SCORE, 0, 1)
    assert ctx.basis[0] == 0.5
    assert np.allclose(ctx.basis[1:], expected, rtol=1e-12)


def test_costs_and_funding_sign():
    data, ctx = _golden()
    free = Costs(commission_pct=0.0, slippage_pct=0.0)
    res = CARRY.run(ctx, {"strategy_mode": "simple"}, free)
    # Without costs the hedge is exactly flat: equity = E * (1 + sum(rate * price) / entry).
    received = 0.0005 * CLOSE[15] + 0.0002 * CLOSE[23] + 0.00005 * CLOSE[31]
    assert np.isclose(res.equity[-1], 10_000 * (1 + received / 107.0), rtol=1e-12)
    costly = CARRY.run(
        ctx, {"strategy_mode": "simple"}, Costs(commission_pct=0.2, slippage_pct=0.05)
    )
    cheap = CARRY.run(ctx, {"strategy_mode": "simple"}, Costs(commission_pct=0.1, slippage_pct=0.0))
    assert costly.equity[-1] < cheap.equity[-1] < res.equity[-1]
    # Negative funding is paid by the short perpetual.
    neg = FundingSeries("TEST", START + np.arange(6) * 8 * H, -np.array(RATES))
    ctx_neg = CARRY.prepare(data, {"funding": neg})
    always = {"strategy_mode": "simple", "min_funding_rate": -0.01, "exit_funding_rate": -0.01}
    paid = CARRY.run(ctx_neg, always, free)
    assert len(paid.trades) == 0 and list(paid.open_trade.entry_idx) == [8]  # held to the end
    assert paid.equity[-1] < 10_000


@pytest.fixture(scope="module")
def year():
    data = resample(synthetic_candles("BTC", days=365, seed=3), "1h")
    return data, synthetic_funding("BTC", days=365, seed=3)


@pytest.fixture(scope="module")
def year_ctx(year):
    data, funding = year
    return CARRY.prepare(data, {"funding": funding})


# Thresholds inside the synthetic universe's funding range (its rates rarely reach 0.0003).
ACTIVE_SIMPLE = {"strategy_mode": "simple", "min_funding_rate": 0.0002, "exit_funding_rate": 0.0001}
ACTIVE_COMPOSITE = {"strategy_mode": "composite", "entry_threshold": 0.45, "exit_threshold": 0.3,
                    "persistence_threshold": 0.00015}  # fmt: skip


def test_no_look_ahead_cutting_the_future_changes_no_earlier_decision(year):
    data, funding = year
    cut = int(data.ts[0]) + 200 * 86400 + 5 * H
    for params in (ACTIVE_SIMPLE, ACTIVE_COMPOSITE):
        full_ctx = CARRY.prepare(data, {"funding": funding})
        full = CARRY.run(full_ctx, params, COSTS)
        short_data = data.slice_time(None, cut)
        short_ctx = CARRY.prepare(short_data, {"funding": funding.slice_time(None, cut)})
        short = CARRY.run(short_ctx, params, COSTS)
        n = len(short_data)
        valid = Params(CARRY.parameter_space().validate_params(params))
        full_sig = CARRY.signals(full_ctx, valid)
        short_sig = CARRY.signals(short_ctx, valid)
        e_full, x_full = full_sig.entries, full_sig.exits
        e_short, x_short = short_sig.entries, short_sig.exits
        np.testing.assert_array_equal(e_full[:n], e_short)
        np.testing.assert_array_equal(x_full[:n], x_short)
        # Equity identical up to and including the truncated run's last bar (a position
        # still open there is only marked, as the full run marks it).
        np.testing.assert_array_equal(full.equity[:n], short.equity)
        assert len(full.trades) > 3
        # Future funding alone (candles kept) changes nothing before the cut either.
        noisy = FundingSeries("BTC", funding.ts, np.where(funding.ts >= cut, 0.002, funding.rate))
        noisy_ctx = CARRY.prepare(data, {"funding": noisy})
        e_noisy = CARRY.signals(noisy_ctx, valid).entries
        last_before = int(np.searchsorted(data.ts + 3600, cut, side="left")) - 1
        np.testing.assert_array_equal(e_noisy[:last_before], e_full[:last_before])


def _row(ctx, params):
    return CARRY.run_many(ctx, [params], COSTS)[0]


@pytest.mark.parametrize(
    ("name", "a", "b", "mode"),
    [
        ("min_funding_rate", 0.00018, 0.00022, "simple"),
        ("exit_funding_rate", 0.00005, 0.00012, "simple"),
        ("entry_threshold", 0.42, 0.48, "composite"),
        ("exit_threshold", 0.25, 0.35, "composite"),
        ("weight_rate_level", 0.2, 0.5, "composite"),
        ("weight_trend", 0.1, 0.4, "composite"),
        ("weight_persistence", 0.1, 0.4, "composite"),
        ("weight_basis", 0.0, 0.3, "composite"),
        ("trend_ema_span", 3, 12, "composite"),
        ("persistence_threshold", 0.0001, 0.0002, "composite"),
        ("persistence_max_periods", 5, 30, "composite"),
    ],
)
def test_each_parameter_changes_results_only_in_its_mode(year_ctx, name, a, b, mode):
    own = ACTIVE_SIMPLE if mode == "simple" else ACTIVE_COMPOSITE
    other = ACTIVE_COMPOSITE if mode == "simple" else ACTIVE_SIMPLE
    ra, rb = _row(year_ctx, {**own, name: a}), _row(year_ctx, {**own, name: b})
    assert not np.array_equal(ra, rb, equal_nan=True), name
    oa, ob = _row(year_ctx, {**other, name: a}), _row(year_ctx, {**other, name: b})
    np.testing.assert_array_equal(oa, ob)


def test_mode_changes_results(year_ctx):
    base = {**ACTIVE_SIMPLE, **ACTIVE_COMPOSITE}
    assert not np.array_equal(
        _row(year_ctx, {**base, "strategy_mode": "simple"}),
        _row(year_ctx, {**base, "strategy_mode": "composite"}),
    )


def _quiet(data, funding, params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = CARRY.prepare(data, {"funding": funding})
        res = CARRY.run(ctx, params, COSTS)
        m = compute(res)
        row = CARRY.run_many(ctx, [params], COSTS)[0]
    np.testing.assert_array_equal(row, m.as_row())
    return res, m


@pytest.mark.parametrize("mode", ["simple", "composite"])
def test_degenerate_data_gives_zero_trades(mode):
    p = {"strategy_mode": mode}
    cases = [
        (make_data([100.0]), FundingSeries("T", [START + 8 * H], [0.001])),  # one bar
        (make_data(CLOSE[:5]), FundingSeries("T", [START + 8 * H], [0.001])),  # no funding time
        (make_data(CLOSE), FundingSeries("T", START + np.arange(6) * 8 * H, np.zeros(6))),
        (make_data(CLOSE), FundingSeries("T", np.array([], dtype=np.int64), np.array([]))),
        (make_data(CLOSE[:0]), FundingSeries("T", [START], [0.001])),  # no bars
    ]
    for data, funding in cases:
        res, m = _quiet(data, funding, p)
        assert len(res.trades) == 0 and m.n_trades == 0
        if len(data):
            assert m.total_return_pct == 0.0


def test_missing_funding_companion_is_a_clear_error():
    with pytest.raises(ValueError, match="funding series"):
        CARRY.prepare(make_data(CLOSE))


def test_run_many_equals_run_plus_compute_for_random_parameter_sets(year_ctx):
    rng = np.random.default_rng(11)
    params = []
    for _ in range(60):
        params.append(
            {
                "strategy_mode": str(rng.choice(["simple", "composite"])),
                "min_funding_rate": float(rng.uniform(0.0, 0.0003)),
                "exit_funding_rate": float(rng.uniform(-0.0001, 0.0002)),
                "entry_threshold": float(rng.uniform(0.2, 0.7)),
                "exit_threshold": float(rng.uniform(0.1, 0.5)),
                "weight_rate_level": float(rng.uniform(0, 1)),
                "weight_trend": float(rng.uniform(0, 1)),
                "weight_persistence": float(rng.uniform(0, 1)),
                "weight_basis": float(rng.uniform(0, 1)),
                "trend_ema_span": int(rng.integers(1, 40)),
                "persistence_threshold": float(rng.uniform(0.0, 0.0003)),
                "persistence_max_periods": int(rng.integers(1, 60)),
            }
        )
    matrix = CARRY.run_many(year_ctx, params, COSTS)
    for row, p in zip(matrix, params, strict=True):
        np.testing.assert_array_equal(row, compute(CARRY.run(year_ctx, p, COSTS)).as_row())
    assert (matrix[:, 11] > 0).sum() > 30  # most sets trade


def test_run_many_rejects_bad_values_by_name(year_ctx):
    from backtestlab.engine.parameters import ParameterError

    with pytest.raises(ParameterError) as err:
        CARRY.run_many(year_ctx, [{"strategy_mode": "fancy"}], COSTS)
    assert err.value.field == "strategy_mode"
    with pytest.raises(ParameterError) as err:
        CARRY.run_many(year_ctx, [{"entry_threshold": 2.0}], COSTS)
    assert err.value.field == "entry_threshold"
