"""options_selector: hand-computed golden trades, costs, no look-ahead, every parameter
matters, degenerate data, run_many == run + compute, seed-002 trade records."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pytest

from backtestlab.engine.data import EnvironmentSeries
from backtestlab.engine.metrics import compute
from backtestlab.engine.options_selector_rules import SELECTOR_RULES
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.synthetic import resample, synthetic_candles, synthetic_environment

from ..conftest import START, make_data

DAY = 86400
OPT = get_strategy("options_selector")
COSTS = Costs(commission_pct=0.1, slippage_pct=0.05)
N = 50


def _env(n=N, **overrides):
    metrics = {
        "vrp_30d": np.full(n, 5.0),
        "iv_rank_6m": np.full(n, 50.0),
        "adx_14d": np.full(n, 20.0),
        "rsi_14d": np.full(n, 50.0),
    }
    metrics.update(overrides)
    return EnvironmentSeries("BTC", START + np.arange(n, dtype=np.int64) * DAY, metrics)


def _golden_close():
    # Days 0-30 alternate 100 / 101 (a known realised vol), then a drift and a jump.
    close = np.where(np.arange(N) % 2 == 0, 100.0, 101.0)
    close[31:] = 100.0 * 1.001 ** np.arange(1, N - 30)
    close[40:] *= 1.05  # a large move inside the second position
    return close


def _golden():
    candles = make_data(_golden_close(), timeframe="1d")
    return OPT.prepare(_env(), {"candles": candles})


def _expected_pnl(s0, s1, iv, days=7, k=2.0, max_loss=0.01, c=0.001, s=0.0005):
    """The module docstring's model, written out independently."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(k / math.sqrt(2)))
    credit = math.sqrt(2 / math.pi) - 2 * phi + 2 * k * (1 - big_phi)
    move = abs(s1 / s0 - 1) / (iv * math.sqrt(days / 365))
    value = min(move, k)
    return (
        max_loss
        * (credit * (1 - s - c) - value * (1 + s + c))
        / (k * (1 + s + c) - credit * (1 - s - c))
    )


def test_golden_trades_and_equity():
    ctx = _golden()
    close = _golden_close()
    # The price at day d's open is the close of candle d - 1; returns from day 2 on, so the
    # first 30-day realised vol exists on day 31.
    ret = np.log(close[1:31] / close[:30])  # returns of days 2..31 (price_d / price_{d-1})
    rv = np.std(ret, ddof=1) * math.sqrt(365) * 100
    assert np.isclose(ctx.rv_30d[31], rv, rtol=1e-12)
    assert np.isnan(ctx.rv_30d[30])
    res = OPT.run(ctx, {}, COSTS)
    t = res.trades
    # Opened day 31 (settles at day 38's open), next step after the settlement day: day 39.
    assert list(t.entry_idx) == [31, 39]
    assert list(t.exit_idx) == [38, 46]
    f = []
    for d in (31, 39):
        iv = max(ctx.rv_30d[d] + 5.0, 5.0) / 100
        f.append(_expected_pnl(close[d - 1], close[d + 6], iv))
    assert np.allclose(t.pnl_pct, np.array(f) * 100, rtol=1e-8)
    assert f[0] > 0 > f[1]  # the quiet week wins, the 5 % jump (~1.7 implied sigmas) loses
    assert np.isclose(res.equity[-1], 10_000 * (1 + f[0]) * (1 + f[1]), rtol=1e-8)
    assert np.isclose(res.equity[37], 10_000 * (1 + f[0]), rtol=1e-8)  # settlement close
    assert np.allclose(f, [0.004668497472972123, -0.009343188711985787], rtol=1e-8, atol=0)
    m = compute(res)
    assert m.n_trades == 2 and m.win_rate == 50.0
    assert np.isclose(m.exposure_pct, 14 / N * 100)  # 2 x 7 days held


def test_trade_results_carry_the_seed_002_fields():
    ctx = _golden()
    trades = OPT.trade_results(ctx, {}, COSTS)
    assert [tr.chain_id for tr in trades] == ["BTC-20230201-7d", "BTC-20230209-7d"]
    assert trades[0].timestamp == dt.datetime(2023, 2, 1, tzinfo=dt.UTC)
    assert trades[0].settled_at == dt.datetime(2023, 2, 8, tzinfo=dt.UTC)
    assert [tr.is_win for tr in trades] == [True, False]
    assert all(tr.underlying == "BTC" and tr.estimated_max_loss_pct == 0.01 for tr in trades)
    assert all(tr.pnl_frac >= -tr.estimated_max_loss_pct for tr in trades)
    half = OPT.trade_results(ctx, {"max_loss_pct": 0.5}, COSTS)
    assert np.isclose(half[1].pnl_frac, trades[1].pnl_frac / 2, rtol=1e-12)
    assert half[0].estimated_max_loss_pct == 0.005


def test_the_worst_case_loses_exactly_the_estimated_max_loss():
    close = _golden_close()
    close[37:] *= 1.5  # far beyond the wings
    ctx = OPT.prepare(_env(), {"candles": make_data(close, timeframe="1d")})
    t = OPT.run(ctx, {}, COSTS).trades
    assert np.isclose(t.pnl_pct[0], -1.0, rtol=1e-12)


def test_costs_are_applied_to_both_fills():
    ctx = _golden()
    free = OPT.run(ctx, {}, Costs(commission_pct=0.0, slippage_pct=0.0)).trades.pnl_pct
    paid = OPT.run(ctx, {}, COSTS).trades.pnl_pct
    dearer = OPT.run(ctx, {}, Costs(commission_pct=0.3, slippage_pct=0.05)).trades.pnl_pct
    assert (paid < free).all() and (dearer < paid).all()


@pytest.fixture(scope="module")
def year():
    candles = resample(synthetic_candles("BTC", days=365, seed=5), "1d")
    return synthetic_environment("BTC", days=365, seed=5), candles


@pytest.fixture(scope="module")
def year_ctx(year):
    env, candles = year
    return OPT.prepare(env, {"candles": candles})


def test_no_look_ahead_cutting_the_future_changes_no_earlier_decision(year):
    env, candles = year
    full = OPT.run(OPT.prepare(env, {"candles": candles}), {}, COSTS)
    cut = int(env.ts[0]) + 250 * DAY
    short_ctx = OPT.prepare(env.slice_time(None, cut), {"candles": candles.slice_time(None, cut)})
    short = OPT.run(short_ctx, {}, COSTS)
    settled = full.trades.exit_idx < 249  # settled inside the shorter data
    assert settled.sum() >= 5
    np.testing.assert_array_equal(short.trades.entry_idx, full.trades.entry_idx[settled])
    np.testing.assert_array_equal(short.trades.pnl_pct, full.trades.pnl_pct[settled])
    # Future environment values alone change no decision before the cut.
    wild = {k: np.where(env.ts >= cut, -1e6, v) for k, v in env.metrics.items()}
    noisy = OPT.run(
        OPT.prepare(EnvironmentSeries("BTC", env.ts, wild), {"candles": candles}), {}, COSTS
    )
    before = full.trades.entry_idx < 250
    np.testing.assert_array_equal(
        noisy.trades.entry_idx[: before.sum()], full.trades.entry_idx[before]
    )


def _row(ctx, params):
    return OPT.run_many(ctx, [params], COSTS)[0]


LOOSE = {"min_vrp_30d": 0.0, "min_iv_rank_6m": 0.0, "max_adx_14d": 100.0,
         "min_rsi_14d": 0.0, "max_rsi_14d": 100.0}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [
        ("decision_interval_days", 1, 3),
        ("holding_days", 5, 10),
        ("wing_sigmas", 1.0, 3.0),
        ("max_loss_pct", 0.5, 2.0),
        ("min_vrp_30d", 0.0, 6.0),
        ("min_iv_rank_6m", 0.0, 60.0),
        ("max_adx_14d", 100.0, 25.0),
        ("min_rsi_14d", 0.0, 50.0),
        ("max_rsi_14d", 100.0, 50.0),
    ],
)
def test_each_parameter_changes_results(year_ctx, name, a, b):
    ra, rb = _row(year_ctx, {**LOOSE, name: a}), _row(year_ctx, {**LOOSE, name: b})
    assert not np.array_equal(ra, rb, equal_nan=True), name


def test_thresholds_are_the_selector_rules():
    names = OPT.parameter_space().names
    for rule in SELECTOR_RULES:
        assert OPT.parameter_space()[rule.param] == rule.as_param()
        assert rule.param in names


def _quiet(env, candles, params=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = OPT.prepare(env, {"candles": candles})
        res = OPT.run(ctx, params or {}, COSTS)
        m = compute(res)
        row = OPT.run_many(ctx, [params or {}], COSTS)[0]
    np.testing.assert_array_equal(row, m.as_row())
    return res, m


def test_degenerate_data_gives_zero_trades():
    close = _golden_close()
    daily = make_data(close, timeframe="1d")
    cases = [
        (_env(20), make_data(close[:20], timeframe="1d"), None),  # too short for 30-day vol
        (_env(1), make_data(close[:1], timeframe="1d"), None),  # one day
        (_env(0), make_data(close[:0], timeframe="1d"), None),  # nothing
        (_env(adx_14d=np.full(N, 60.0)), daily, None),  # the selector never allows
        (_env(), make_data(close[:10], timeframe="1d"), None),  # prices end too early
        (_env(), daily, {"holding_days": 60}),  # no position can settle inside the data
    ]
    for env, candles, params in cases:
        res, m = _quiet(env, candles, params)
        assert len(res.trades) == 0 and m.n_trades == 0
        if len(env):
            assert m.total_return_pct == 0.0


def test_missing_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="candles"):
        OPT.prepare(_env())
    env = EnvironmentSeries("BTC", _env().ts, {"vrp_30d": np.zeros(N)})
    with pytest.raises(ValueError, match="adx_14d"):
        OPT.prepare(env, {"candles": make_data(_golden_close(), timeframe="1d")})


def test_hourly_candles_give_the_same_prices_as_daily(year):
    env, _ = year
    hourly = resample(synthetic_candles("BTC", days=365, seed=5), "1h")
    daily = resample(synthetic_candles("BTC", days=365, seed=5), "1d")
    a = OPT.prepare(env, {"candles": hourly})
    b = OPT.prepare(env, {"candles": daily})
    np.testing.assert_array_equal(a.spot, b.spot)
    np.testing.assert_array_equal(OPT.run_many(a, [{}], COSTS), OPT.run_many(b, [{}], COSTS))


def test_run_many_equals_run_plus_compute_for_random_parameter_sets(year_ctx):
    rng = np.random.default_rng(5)
    space = OPT.parameter_space()
    params = []
    for _ in range(80):
        p = {}
        for prm in space.params:
            if prm.kind == "int":
                p[prm.name] = int(rng.integers(prm.low, min(prm.high, 20) + 1))
            else:
                lo, hi = prm.low, prm.high
                if prm.name.startswith(("min_", "max_")) and prm.name != "max_loss_pct":
                    lo, hi = (0.0, 40.0) if prm.name.startswith("min_") else (30.0, 100.0)
                p[prm.name] = float(rng.uniform(lo, hi))
        params.append(p)
    matrix = OPT.run_many(year_ctx, params, COSTS)
    for row, p in zip(matrix, params, strict=True):
        np.testing.assert_array_equal(row, compute(OPT.run(year_ctx, p, COSTS)).as_row())
    assert (matrix[:, 11] > 0).sum() > 10


def test_run_many_rejects_bad_values_by_name(year_ctx):
    with pytest.raises(ParameterError) as err:
        OPT.run_many(year_ctx, [{"holding_days": 0}], COSTS)
    assert err.value.field == "holding_days"
