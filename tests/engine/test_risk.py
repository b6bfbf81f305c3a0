"""The seed's risk manager: checks in order (per trade, per underlying, daily cap), its
messages, and the rule that only an allowed trade counts toward the daily cap."""

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backtestlab.engine.risk import (
    CandidateTrade,
    OpenPosition,
    RiskConfig,
    RiskManager,
    veto_kind,
)

T0 = datetime(2024, 3, 1, 9, 0)


def cand(pct, underlying="BTC", at=T0, strategy="opt-1"):
    return CandidateTrade(underlying, pct, at, strategy)


def pos(pct, underlying="BTC", i=0):
    return OpenPosition(f"p{i}", underlying, pct, T0 - timedelta(days=1))


def test_a_trade_risking_1_2_pct_is_vetoed_at_a_1_pct_limit():
    ok, reason = RiskManager(RiskConfig()).check_trade(cand(0.012), [])
    assert not ok and reason == "per-trade risk 1.20% exceeds limit 1.00%"


def test_a_third_btc_position_over_3_pct_is_vetoed():
    ok, reason = RiskManager(RiskConfig()).check_trade(
        cand(0.01), [pos(0.01, i=1), pos(0.011, i=2)]
    )
    assert not ok and reason == "correlated risk on BTC would be 3.10% > limit 3.00%"


def test_positions_on_other_underlyings_do_not_count():
    rm = RiskManager(RiskConfig())
    assert rm.check_trade(
        cand(0.01), [pos(0.01, "ETH", 1), pos(0.01, "ETH", 2), pos(0.01, "ETH", 3)]
    )[0]


def test_the_third_trade_of_a_day_is_vetoed_and_the_next_day_is_fresh():
    rm = RiskManager(RiskConfig())
    assert rm.check_trade(cand(0.005), []) == (True, None)
    assert rm.check_trade(cand(0.005, "ETH", T0 + timedelta(hours=1)), []) == (True, None)
    ok, reason = rm.check_trade(cand(0.005, "SOL", T0 + timedelta(hours=2)), [])
    assert not ok and reason == "daily trade cap reached for strategy opt-1 (2/2)"
    assert veto_kind(reason) == "daily_cap"
    assert rm.check_trade(cand(0.005, at=T0 + timedelta(days=1)), [])[0]


def test_the_checks_run_in_the_seeds_order():
    rm = RiskManager(RiskConfig(max_new_trades_per_day=0))
    # all three would fail: the per-trade one is reported
    assert veto_kind(rm.check_trade(cand(0.05), [pos(0.03)])[1]) == "per_trade"
    assert veto_kind(rm.check_trade(cand(0.01), [pos(0.03)])[1]) == "per_underlying"
    assert veto_kind(rm.check_trade(cand(0.01), [])[1]) == "daily_cap"


def test_a_disabled_config_allows_everything_and_counts_nothing():
    rm = RiskManager(RiskConfig(enabled=False))
    assert rm.check_trade(cand(0.5), [pos(0.5)]) == (True, None)
    assert rm.counters() == {}


def test_the_daily_cap_is_per_strategy():
    rm = RiskManager(RiskConfig(max_new_trades_per_day=1))
    assert rm.check_trade(cand(0.005, strategy="a"), [])[0]
    assert rm.check_trade(cand(0.005, "ETH", strategy="b"), [])[0]
    assert not rm.check_trade(cand(0.005, "SOL", strategy="a"), [])[0]


trades = st.lists(
    st.tuples(
        st.floats(0, 0.03, allow_nan=False),
        st.sampled_from(["BTC", "ETH"]),
        st.integers(0, 72),
        st.sampled_from(["a", "b"]),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(trades, st.integers(0, 3), st.floats(0.001, 0.02), st.floats(0.005, 0.05))
def test_a_vetoed_trade_never_changes_the_counters_and_no_limit_is_exceeded(
    seq, cap, per_trade, per_underlying
):
    rm = RiskManager(RiskConfig(per_trade, per_underlying, cap))
    open_positions: list[OpenPosition] = []
    for i, (pct, underlying, hours, strategy) in enumerate(seq):
        before = rm.counters()
        c = cand(pct, underlying, T0 + timedelta(hours=hours), strategy)
        ok, reason = rm.check_trade(c, open_positions)
        if not ok:
            assert reason and rm.counters() == before
            continue
        assert reason is None and pct <= per_trade
        open_positions.append(OpenPosition(str(i), underlying, pct, c.opened_at))
        total = sum(p.estimated_max_loss_pct for p in open_positions if p.underlying == underlying)
        assert total <= per_underlying + 1e-12
    assert all(n <= cap for n in rm.counters().values())
