"""The look-ahead and warm-up checks (backtestlab.engine.checks).

* every built-in strategy has no look-ahead on its own kind of data;
* two planted faults are caught where they truly are: a one-bar peek (entries and, in a
  variant, the limit level read bar ``i + 1``) and a warm-up declared far shorter than the
  indicator needs (the first offending bar is computed here independently of the check);
* a correct strategy passes over many cuts, start bars and parameter samples (no false
  positive), and the replacements themselves keep what was known and change the rest.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backtestlab.engine import runner
from backtestlab.engine.checks import (
    REPLACEMENTS,
    check_strategy,
    first_difference,
    iso,
    replace_future,
    sample_param_sets,
)
from backtestlab.engine.data import MarketData, validate_candles
from backtestlab.engine.indicators import sma
from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.runner import warmup_bars
from backtestlab.engine.signals import Signals, crossed_above, crossed_below
from backtestlab.engine.strategies import STRATEGIES, get_strategy
from backtestlab.engine.strategies.base import Costs, Strategy
from backtestlab.engine.synthetic import (
    resample,
    synthetic_candles,
    synthetic_environment,
    synthetic_funding,
)

DAYS = 90


@pytest.fixture(scope="module")
def minutes_90():
    return synthetic_candles("BTC", days=DAYS)


@pytest.fixture(scope="module")
def hourly(minutes_90):
    return resample(minutes_90, "1h")


@pytest.fixture(scope="module")
def inputs(minutes_90, hourly):
    """Each built-in's data and companions: hourly candles (with funding for the carry),
    1-minute candles for market_state, a year of environment rows + daily candles for the
    options selector (90 days of them give no trade to test) and a year of hourly candles
    for the carry (its warm-up is 42 days of funding periods)."""
    year = synthetic_candles("BTC", days=365)
    daily_year = resample(year, "1d")
    return {
        "sma_cross": (hourly, None),
        "smc_zones": (hourly, None),
        "funding_carry": (resample(year, "1h"), {"funding": synthetic_funding("BTC", days=365)}),
        "options_selector": (
            synthetic_environment("BTC", days=365),
            {"candles": daily_year},
        ),
        "market_state": (synthetic_candles("BTC", days=3), None),
    }


@pytest.fixture(scope="module")
def builtin_check(inputs):
    """``check_strategy`` of a built-in on its inputs, computed once per module."""
    done = {}

    def get(key):
        if key not in done:
            data, companions = inputs[key]
            done[key] = check_strategy(get_strategy(key), data, companions)
        return done[key]

    return get


# --------------------------------------------------------------------------- planted faults


class PeekingSmaCross(Strategy):
    """In an uptrend (fast SMA above slow), buy before an up bar: ``close[i+1] > close[i]``
    is the peek.  ``peek="limit"`` instead trades crosses at a limit equal to the NEXT open
    (the entries are honest, the level is not)."""

    key = "peeking_sma"
    label = "Peeking SMA cross"
    parameters = ParameterSpace(
        [Param("fast", "int", 10, 2, 100), Param("slow", "int", 50, 3, 300)],
        constraints=["fast < slow"],
    )

    def __init__(self, peek: str = "entries"):
        self.peek = peek

    def signals(self, ctx, p):
        close = ctx.data.close
        fast, slow = ctx.sma(p.fast), ctx.sma(p.slow)
        if self.peek == "limit":
            return Signals(
                entries=crossed_above(fast, slow),
                exits=crossed_below(fast, slow),
                limit=np.roll(ctx.data.open, -1),
            )
        next_up = np.roll(close, -1) > close  # reads close[i + 1]
        return Signals(entries=(fast > slow) & next_up, exits=crossed_below(fast, slow))

    def warmup(self, p):
        return max(p["fast"], p["slow"])


class AboveSma(Strategy):
    """Enter when the close crosses above its SMA(window), exit on the cross below.
    ``declared`` is what ``warmup`` claims (None = the truth: ``window`` bars)."""

    key = "above_sma"
    label = "Close above SMA"
    parameters = ParameterSpace([Param("window", "int", 100, 2, 500)])

    def __init__(self, declared: int | None = None):
        self.declared = declared

    def signals(self, ctx, p):
        m = ctx.sma(p.window)
        close = ctx.data.close
        return Signals(entries=crossed_above(close, m), exits=crossed_below(close, m))

    def warmup(self, p):
        return p["window"] if self.declared is None else self.declared


class ShortEma(Strategy):
    """Crosses of the close and its EMA(100), declaring 5 bars of warm-up: the EMA is NaN
    for 99 bars and, once seeded, remembers where the data started."""

    key = "short_ema"
    label = "EMA with a short warm-up"
    parameters = ParameterSpace([Param("span", "int", 100, 2, 500)])

    def signals(self, ctx, p):
        e = ctx.ema(p.span)
        close = ctx.data.close
        return Signals(entries=crossed_above(close, e), exits=crossed_below(close, e))

    def warmup(self, p):
        return 5


class EnvironmentRule(Strategy):
    """On daily environment rows: at the close of day ``d`` enter when ``vrp_30d`` of row
    ``d + ahead`` is above its median.  Row ``d + 1`` is observed at the open of day
    ``d + 1``, i.e. at the close of day ``d`` (what the options selector does): honest.
    Row ``d + 2`` is tomorrow's close: a peek."""

    key = "environment_rule"
    label = "Environment rule"
    data_kind = "environment"
    parameters = ParameterSpace([Param("hold", "int", 3, 1, 30)])

    def __init__(self, ahead: int):
        self.ahead = ahead

    def prepare(self, data, companions=None):
        ones = np.ones(len(data))
        bars = MarketData(data.symbol, "1d", data.ts, ones, ones, ones, ones, np.zeros(len(data)))
        return SimpleNamespace(env=data, bars=bars)

    def bars(self, ctx):
        return ctx.bars

    def signals(self, ctx, p):
        vrp = ctx.env.metrics["vrp_30d"]
        row = np.roll(vrp, -self.ahead)
        row[len(vrp) - self.ahead :] = np.nan
        with np.errstate(invalid="ignore"):
            entries = row > 5.0
        held = np.zeros_like(entries)
        held[p.hold :] = entries[: -p.hold]  # entered `hold` days ago (no wrap-around)
        return Signals(entries=entries, exits=held & ~entries)


class FundingPeek(Strategy):
    """Hourly candles + funding: enter when the NEXT funding rate (settled after the bar's
    close) is high - a peek into the companion series."""

    key = "funding_peek"
    label = "Funding peek"
    companion_kinds = ("funding",)
    parameters = ParameterSpace([Param("level", "float", 0.0001, -0.01, 0.01)])

    def signals(self, ctx, p):
        d, f = ctx.data, ctx.companions["funding"]
        nxt = np.searchsorted(f.ts, d.ts + d.bar_seconds, side="right")
        rate = f.rate[np.minimum(nxt, len(f) - 1)]
        return Signals(entries=rate > p.level, exits=rate <= p.level)


# --------------------------------------------------------------------------- built-ins


def _built_ins() -> list[str]:
    return [
        k for k, s in STRATEGIES.items() if type(s).__module__.startswith("backtestlab.engine.")
    ]


def test_the_five_built_ins_are_covered(inputs):
    assert set(inputs) == set(_built_ins())


@pytest.mark.parametrize("key", ["sma_cross", "funding_carry", "options_selector", "smc_zones",
                                 "market_state"])  # fmt: skip
def test_builtin_strategy_has_no_lookahead(builtin_check, key):
    result = builtin_check(key)
    v = result.lookahead
    assert v.passed, "\n".join(result.lines())
    assert v.finding is None and v.findings == ()
    # Not vacuous: cuts after the warm-up, some of them at the strategy's own decisions.
    assert len(v.cuts) >= 6
    assert not v.notes, v.notes
    assert v.comparisons == len(v.cuts) * len(REPLACEMENTS) * len(result.param_sets)
    assert len(result.param_sets) == 4  # the defaults + 3 samples


@pytest.mark.parametrize(
    "key", ["sma_cross", "funding_carry", "options_selector", "smc_zones", "market_state"]
)
def test_builtin_strategy_declares_enough_warmup(builtin_check, key):
    result = builtin_check(key)
    assert result.warmup.passed, "\n".join(result.lines())
    assert result.passed


def test_a_warmup_finding_names_bar_params_and_hint(hourly):
    """A failing verdict is specific: bar, time, start, parameters, a hint."""
    strategy = ShortEma()
    result = check_strategy(strategy, hourly, param_sets=[{"span": 100}])
    f = result.warmup.finding
    assert f is not None and not result.passed
    bars = strategy.bars(strategy.prepare(hourly))
    assert f.bar >= f.cut and f.time == iso(bars.ts[f.bar]) and f.cut_time == iso(bars.ts[f.cut])
    assert f.history == 5 and f.long_history > f.history
    assert f.params in result.param_sets
    assert f"at bar {f.bar} ({f.time})" in f.message
    assert "needs more history than it declares" in f.message
    assert any("FAIL" in line and "warmup" in line for line in result.lines())


# --------------------------------------------------------------------------- a one-bar peek


@pytest.mark.parametrize("peek", ["entries", "limit"])
def test_one_bar_peek_is_caught_at_the_cut_bar(hourly, peek):
    strategy = PeekingSmaCross(peek)
    result = check_strategy(strategy, hourly)
    v = result.lookahead
    assert not v.passed and not result.passed
    assert v.findings, v.message
    for f in v.findings:
        # Bar k's signal reads bar k + 1: the first bar that changes is the cut bar itself,
        # every earlier bar is unchanged.
        assert f.bar == f.cut
        assert f.what == peek
        assert f.time == iso(hourly.ts[f.bar])
        assert f.replacement in REPLACEMENTS
    first = v.finding
    assert first == min(v.findings, key=lambda f: (f.cut, f.bar))
    assert first.message.startswith(f"{peek} at bar {first.bar} ({first.time}) change")
    assert first.message.endswith(
        f"when the bars after bar {first.cut} ({first.cut_time}) are replaced "
        f"({first.replacement}): the strategy reads the future"
    )
    # The peek is caught wherever it decides something.
    ctx = strategy.prepare(hourly)
    for p in result.param_sets:
        sig = runner.signals_for(strategy, ctx, p, Costs())
        decided = set(np.flatnonzero(np.asarray(sig.entries) != 0).tolist())
        cut_on_entry = [k for k in v.cuts if k in decided]
        caught = {f.cut for f in v.findings if f.params == p}
        if peek == "entries":  # the mirror always flips "the next close is higher"
            assert cut_on_entry and set(cut_on_entry) <= caught
        else:  # the limit of every bar is the next open, which both gaps move
            assert caught == set(v.cuts)


def test_one_bar_peek_is_caught_with_the_default_parameters_only(hourly):
    result = check_strategy(PeekingSmaCross(), hourly, param_sets=[{}], cuts=3)
    assert result.param_sets == ({"fast": 10, "slow": 50},)
    assert not result.lookahead.passed
    assert result.lookahead.finding.bar == result.lookahead.finding.cut
    assert "reads the future" in result.lookahead.message
    assert result.warmup.passed  # its SMAs are honest about their warm-up


# --------------------------------------------------------------------------- a short warm-up


def test_short_warmup_is_caught_at_the_first_offending_bar(hourly):
    window, declared = 100, 5
    result = check_strategy(AboveSma(declared), hourly, param_sets=[{"window": window}])
    assert result.lookahead.passed  # it does not peek...
    v = result.warmup
    assert not v.passed and not result.passed  # ...but it needs more history than it says
    f = v.finding
    # Independently: the short run starts `declared` bars before s; its SMA is NaN until
    # its bar window - 1 (bar s - declared + window - 1), and a cross needs the SMA of the
    # bar before, so it has no cross before bar s - declared + window.  The long run's
    # crosses there are the full data's (a finite window).  The first offending bar is the
    # first such cross at or after the first start bar that has one.
    full = crossed_above(hourly.close, sma(hourly.close, window)) | crossed_below(
        hourly.close, sma(hourly.close, window)
    )
    expected = None
    for s in v.cuts:
        hits = np.flatnonzero(full[s : s - declared + window])
        if len(hits):
            expected = (s, s + int(hits[0]))
            break
    assert expected is not None
    assert (f.cut, f.bar) == expected
    assert f.what in ("entries", "exits")
    assert f.history == declared and f.long_history == 3 * declared + 200
    assert f.time == iso(hourly.ts[f.bar])
    assert f.agreed_with is not None and f.agreed_with > declared
    assert f"warmup(p) = {declared}" in f.message


def test_ema_with_short_warmup_is_caught(hourly):
    result = check_strategy(ShortEma(), hourly, param_sets=[{"span": 100}])
    assert result.lookahead.passed
    f = result.warmup.finding
    assert not result.warmup.passed and f is not None
    assert f.what in ("entries", "exits") and f.bar >= f.cut


def test_true_warmup_passes(hourly):
    result = check_strategy(AboveSma(), hourly, param_sets=[{"window": 100}, {"window": 37}])
    assert result.passed, "\n".join(result.lines())


def test_environment_rows_are_known_at_their_timestamp(inputs):
    env, _ = inputs["options_selector"]
    honest = check_strategy(EnvironmentRule(ahead=1), env)
    assert honest.lookahead.passed, "\n".join(honest.lines())
    peek = check_strategy(EnvironmentRule(ahead=2), env).lookahead
    assert not peek.passed
    assert all(f.bar == f.cut and f.what == "entries" for f in peek.findings)


def test_a_peek_into_a_companion_is_caught(hourly):
    funding = synthetic_funding("BTC", days=DAYS)
    v = check_strategy(FundingPeek(), hourly, {"funding": funding}).lookahead
    assert not v.passed
    assert v.finding.what == "entries" and v.finding.bar <= v.finding.cut
    assert v.finding.cut - v.finding.bar < 8  # within one funding period of the cut


# --------------------------------------------------------------------------- no false positive


@pytest.mark.parametrize("cuts", [3, 8, 15])
def test_correct_strategy_is_stable_over_cuts(hourly, cuts):
    for strategy in (get_strategy("sma_cross"), AboveSma()):
        result = check_strategy(strategy, hourly, cuts=cuts, warmup_starts=4)
        assert result.passed, "\n".join(result.lines())
        assert len(result.lookahead.cuts) >= cuts
        assert len(result.warmup.cuts) >= 4


def test_correct_strategy_is_stable_over_parameter_samples_and_symbols():
    eth = resample(synthetic_candles("ETH", days=60, seed=3), "1h")
    strategy = get_strategy("sma_cross")
    for seed in (1, 2):
        sets = sample_param_sets(strategy, samples=4, seed=seed, max_warmup=len(eth) // 4)
        result = check_strategy(strategy, eth, param_sets=sets, cuts=6)
        assert result.passed, "\n".join(result.lines())


# --------------------------------------------------------------------------- the machinery


def test_sample_param_sets_are_deterministic_and_respect_constraints():
    for key in _built_ins():
        strategy = get_strategy(key)
        space = strategy.parameter_space()
        a = sample_param_sets(strategy, samples=3, max_warmup=20_000)
        assert a == sample_param_sets(strategy, samples=3, max_warmup=20_000)
        assert a[0] == space.validate_params(space.defaults())
        assert len(a) == 4
        for p in a:
            assert space.validate_params(p) == p
            assert space.check_constraints(p) is None
            assert warmup_bars(strategy, p, 3600) <= 20_000
        assert len({tuple(sorted(p.items())) for p in a}) == len(a)
    smc = sample_param_sets(get_strategy("smc_zones"), samples=3)
    assert {p["pattern_type"] for p in smc} == {"imbalance", "order_block", "liquidity_sweep"}


@pytest.mark.parametrize("how", REPLACEMENTS)
def test_replaced_candles_keep_the_known_bars_and_change_every_later_one(hourly, how):
    k = 500
    known_until = int(hourly.ts[k]) + hourly.bar_seconds
    alt = replace_future(hourly, known_until, how)
    validate_candles(alt.to_frame())  # a consistent OHLC path
    np.testing.assert_array_equal(alt.ts, hourly.ts)
    for name in ("open", "high", "low", "close", "volume", "regime"):
        np.testing.assert_array_equal(getattr(alt, name)[: k + 1], getattr(hourly, name)[: k + 1])
    for name in ("high", "low", "close"):
        assert (getattr(alt, name)[k + 1 :] != getattr(hourly, name)[k + 1 :]).mean() > 0.99
    if how == "mirror":  # bull and bear swap, chop stays
        swapped = np.array([1, 0, 2])[hourly.regime[k + 1 :]]
        np.testing.assert_array_equal(alt.regime[k + 1 :], swapped)
    else:  # every regime moves
        assert (alt.regime[k + 1 :] != hourly.regime[k + 1 :]).all()
    if how == "mirror":  # rises become falls
        up = np.diff(hourly.close[k:]) > 0
        assert np.array_equal(np.diff(alt.close[k:]) < 0, up)


def test_replaced_companions_follow_what_is_known_when():
    day = 86400
    env = synthetic_environment("BTC", days=40)
    funding = synthetic_funding("BTC", days=40)
    k = 20
    known_until = int(env.ts[k]) + day  # the close of day k = the open of day k + 1
    for how in REPLACEMENTS:
        e = replace_future(env, known_until, how)
        for name, values in env.metrics.items():
            # Row k + 1 is observed at the open of day k + 1: known at the close of day k.
            np.testing.assert_array_equal(e.metrics[name][: k + 2], values[: k + 2])
            assert (e.metrics[name][k + 2 :] != values[k + 2 :]).all()
        f = replace_future(funding, known_until, how)
        known = funding.ts <= known_until
        np.testing.assert_array_equal(f.rate[known], funding.rate[known])
        assert (f.rate[~known] != funding.rate[~known]).all()
    with pytest.raises(ValueError, match="unknown replacement"):
        replace_future(env, known_until, "shuffle")
    with pytest.raises(TypeError, match="cannot replace the future"):
        replace_future([1, 2, 3], known_until, "mirror")


def test_first_difference_is_nan_equal_and_tolerant_only_when_asked():
    a = np.array([1.0, np.nan, 3.0, 4.0])
    assert first_difference(a, a.copy()) == -1
    assert first_difference(a, np.array([1.0, np.nan, 3.0, 4.0 + 1e-12])) == 3
    assert first_difference(a, np.array([1.0, np.nan, 3.0, 4.0 + 1e-12]), rtol=1e-9) == -1
    assert first_difference(a, np.array([1.0, 2.0, 3.0, 4.0]), rtol=1.0) == 1
    assert first_difference(np.array([0, 1, 1]), np.array([0, 1, -1])) == 2
