"""The risk manager at its edges: each limit is a maximum that may be reached, not passed;
the daily counter; which positions are open at a candidate's time; and the with/without-risk
summary computed by hand.

Fractions are dyadic (0.25, 0.125 …) so sums are exact in binary floating point and "exactly
at the limit" really is exactly at it.
"""

import dataclasses
from datetime import datetime, timedelta

import pytest

from backtestlab.engine.risk import (
    DAILY_CAP,
    PER_TRADE,
    PER_UNDERLYING,
    CandidateTrade,
    OpenPosition,
    RiskConfig,
    RiskManager,
    RiskTrade,
    RiskVerdict,
    risk_filter,
    risk_summary,
    veto_kind,
)

T0 = datetime(2024, 3, 1, 9, 0)
H = timedelta(hours=1)
WIDE = RiskConfig(max_risk_per_trade=1.0, max_risk_per_underlying=1.0, max_new_trades_per_day=99)


def cand(pct, underlying="BTC", at=T0, strategy="s"):
    return CandidateTrade(underlying, pct, at, strategy)


def pos(pct, underlying="BTC"):
    return OpenPosition("p", underlying, pct, T0 - H)


def trade(hours_open, hours_close, pct=0.125, underlying="BTC", pnl=0.0):
    return RiskTrade(T0 + hours_open * H, T0 + hours_close * H, underlying, pct, pnl)


def test_the_seeds_defaults():
    cfg = RiskConfig()
    assert (cfg.max_risk_per_trade, cfg.max_risk_per_underlying) == (0.01, 0.03)
    assert (cfg.max_new_trades_per_day, cfg.enabled) == (2, True)


# --- each limit may be reached, not passed ----------------------------------------------------


def test_a_trade_risking_exactly_the_per_trade_limit_is_allowed():
    rm = RiskManager(RiskConfig(0.25, 1.0, 9))
    assert rm.check_trade(cand(0.25), []) == (True, None)
    ok, reason = rm.check_trade(cand(0.25 + 2**-20), [])
    assert not ok and reason.startswith("per-trade risk 25.00% exceeds limit 25.00%")


def test_an_underlying_filled_exactly_to_its_limit_is_allowed():
    rm = RiskManager(RiskConfig(1.0, 0.5, 9))
    assert rm.check_trade(cand(0.25), [pos(0.125), pos(0.125)]) == (True, None)
    ok, reason = rm.check_trade(cand(0.25), [pos(0.125), pos(0.125 + 2**-20)])
    assert not ok and reason == "correlated risk on BTC would be 50.00% > limit 50.00%"


def test_the_candidate_itself_counts_toward_its_underlying():
    rm = RiskManager(RiskConfig(1.0, 0.5, 9))
    assert rm.check_trade(cand(0.5), [])[0]
    ok, reason = rm.check_trade(cand(0.375), [pos(0.25)])
    assert not ok and reason == "correlated risk on BTC would be 62.50% > limit 50.00%"


@pytest.mark.parametrize("cap", [0, 1, 3])
def test_the_daily_cap_allows_exactly_cap_trades(cap):
    rm = RiskManager(RiskConfig(1.0, 1.0, cap))
    verdicts = [rm.check_trade(cand(0.001, at=T0 + i * H), []) for i in range(cap + 1)]
    assert [ok for ok, _ in verdicts] == [True] * cap + [False]
    assert verdicts[-1][1] == f"daily trade cap reached for strategy s ({cap}/{cap})"
    assert rm.trades_today("s", T0) == cap


# --- the daily counter ------------------------------------------------------------------------


def test_the_counter_is_per_strategy_and_calendar_day():
    rm = RiskManager(WIDE)
    assert rm.trades_today("s", T0) == 0
    rm.check_trade(cand(0.01), [])
    rm.check_trade(cand(0.01, at=T0 + 2 * H), [])
    rm.check_trade(cand(0.01, strategy="t"), [])
    rm.check_trade(cand(0.01, at=T0 + timedelta(days=1)), [])
    assert rm.counters() == {
        ("s", T0.date()): 2,
        ("t", T0.date()): 1,
        ("s", T0.date() + timedelta(days=1)): 1,
    }
    assert rm.trades_today("s", T0 + 10 * H) == 2 and rm.trades_today("t", T0) == 1


def test_record_trade_restores_a_days_counter_and_reset_clears_it():
    rm = RiskManager(RiskConfig(1.0, 1.0, 2))
    rm.record_trade("s", T0)
    rm.record_trade("s", T0 + H)
    assert rm.trades_today("s", T0) == 2
    assert not rm.check_trade(cand(0.001, at=T0 + 2 * H), [])[0]
    rm.reset_daily_counter()
    assert rm.counters() == {} and rm.check_trade(cand(0.001, at=T0 + 3 * H), [])[0]


def test_the_counters_are_a_copy():
    rm = RiskManager(WIDE)
    rm.record_trade("s", T0)
    rm.counters()[("s", T0.date())] = 99
    assert rm.trades_today("s", T0) == 1


def test_a_vetoed_trade_is_not_counted():
    rm = RiskManager(RiskConfig(0.25, 1.0, 2))
    assert not rm.check_trade(cand(0.5), [])[0]
    assert rm.counters() == {}


def test_a_cap_lowered_below_todays_count_vetoes_the_next_trade():
    """Today's counter restored from 3 paper trades, then the cap lowered to 2."""
    rm = RiskManager(RiskConfig(1.0, 1.0, 2))
    for i in range(3):
        rm.record_trade("s", T0 + i * H)
    ok, reason = rm.check_trade(cand(0.001, at=T0 + 4 * H), [])
    assert not ok and reason == "daily trade cap reached for strategy s (3/2)"
    assert rm.trades_today("s", T0) == 3


# --- the reasons -----------------------------------------------------------------------------


def test_each_reason_has_its_kind():
    assert veto_kind(None) is None
    assert veto_kind("per-trade risk 2.00% exceeds limit 1.00%") == PER_TRADE == "per_trade"
    assert veto_kind("correlated risk on BTC would be 4.00% > limit 3.00%") == PER_UNDERLYING
    assert veto_kind("daily trade cap reached for strategy s (2/2)") == DAILY_CAP == "daily_cap"
    assert PER_UNDERLYING == "per_underlying"


# --- a run of trades: time order, which positions are open, what a veto leaves out --------------


def test_trades_are_checked_in_time_order_whatever_the_input_order():
    late, early = trade(5, 6), trade(1, 2)
    verdicts = risk_filter([late, early], RiskConfig(1.0, 1.0, 1), "s")
    assert [v.trade for v in verdicts] == [early, late]
    assert [v.allowed for v in verdicts] == [True, False]  # one trade a day: the later is vetoed
    assert verdicts[1].kind == DAILY_CAP and verdicts[1].reason.startswith("daily trade cap")


def test_a_position_counts_from_its_opening_until_before_its_close():
    """Limit 0.25 per underlying, each trade 0.125: a third concurrent trade is vetoed."""
    cfg = RiskConfig(1.0, 0.25, 99)
    a, b = trade(0, 4), trade(1, 3)
    same_time_as_a = trade(0, 1)  # opens with a (a is open at its own opening time)
    at_close_of_b = trade(3, 5)  # b has closed: only a is open
    before = risk_filter([a, b, trade(2, 6)], cfg, "s")
    assert [v.allowed for v in before] == [True, True, False]
    assert before[2].kind == PER_UNDERLYING
    assert [v.allowed for v in risk_filter([a, same_time_as_a, trade(0, 2)], cfg, "s")] == [
        True,
        True,
        False,
    ]
    assert [v.allowed for v in risk_filter([a, b, at_close_of_b], cfg, "s")] == [True, True, True]


def test_a_position_that_closed_before_the_candidate_does_not_count():
    cfg = RiskConfig(1.0, 0.125, 99)
    assert [v.allowed for v in risk_filter([trade(0, 1), trade(2, 3)], cfg, "s")] == [True, True]


def test_a_vetoed_trade_never_opens():
    cfg = RiskConfig(0.25, 0.375, 99)
    big = trade(0, 9, pct=0.5)  # over the per-trade limit: vetoed, so never open
    verdicts = risk_filter([big, trade(1, 9, pct=0.25), trade(2, 9, pct=0.125)], cfg, "s")
    assert [v.allowed for v in verdicts] == [False, True, True]


def test_given_open_positions_and_other_underlyings():
    cfg = RiskConfig(1.0, 0.25, 99)
    already = [trade(-5, 5, pct=0.25)]
    verdicts = risk_filter(
        [trade(0, 1), trade(0, 1, underlying="ETH")], cfg, "s", open_positions=already
    )
    assert [(v.trade.underlying, v.allowed) for v in verdicts] == [("BTC", False), ("ETH", True)]


def test_a_given_manager_keeps_its_counters_across_calls():
    rm = RiskManager(RiskConfig(1.0, 1.0, 1))
    first = risk_filter([trade(0, 1)], rm.config, "s", manager=rm)
    second = risk_filter([trade(2, 3)], rm.config, "s", manager=rm)
    assert first[0].allowed and not second[0].allowed
    assert rm.trades_today("s", T0) == 1
    fresh = risk_filter([trade(2, 3)], rm.config, "s")  # without it: a new manager
    assert fresh[0].allowed


def test_the_arguments_can_be_named():
    verdicts = risk_filter(trades=[trade(0, 1)], config=WIDE, strategy_id="s")
    assert verdicts == [RiskVerdict(trade(0, 1), True, None, None)]


def test_a_disabled_config_lets_every_trade_through():
    cfg = RiskConfig(0.0001, 0.0001, 0, enabled=False)
    verdicts = risk_filter([trade(0, 9, pct=0.5), trade(0, 9, pct=0.5)], cfg, "s")
    assert all(v.allowed and v.reason is None and v.kind is None for v in verdicts)


# --- the summary ------------------------------------------------------------------------------


def test_the_summary_compounds_returns_with_and_without_the_vetoed_trades():
    """+10 %, then a vetoed -50 %, then +20 %: without risk 1.1 × 0.5 × 1.2 = 0.66 (-34 %),
    with risk 1.1 × 1.2 = 1.32 (+32 %)."""
    cfg = RiskConfig(0.25, 1.0, 99)
    verdicts = risk_filter(
        [trade(0, 1, pnl=0.1), trade(2, 3, pct=0.5, pnl=-0.5), trade(4, 5, pnl=0.2)], cfg, "s"
    )
    summary = risk_summary(verdicts)
    assert summary["candidates"] == 3 and summary["allowed"] == 2 and summary["vetoed"] == 1
    assert summary["vetoed_by_reason"] == {PER_TRADE: 1}
    assert summary["return_pct_without_risk"] == pytest.approx(-34.0, abs=1e-12)
    assert summary["return_pct_with_risk"] == pytest.approx(32.0, abs=1e-12)


def test_the_summary_counts_vetoes_by_reason():
    cfg = RiskConfig(0.25, 0.25, 3)
    verdicts = risk_filter(
        [
            trade(0, 9, pct=0.5),
            trade(1, 9),
            trade(2, 9),
            trade(3, 9),
            trade(4, 9, underlying="ETH"),
            trade(5, 9, underlying="SOL"),
        ],
        cfg,
        "s",
    )
    kinds = [v.kind for v in verdicts]
    assert kinds == [PER_TRADE, None, None, PER_UNDERLYING, None, DAILY_CAP]
    summary = risk_summary(verdicts)
    assert summary["vetoed_by_reason"] == {PER_TRADE: 1, PER_UNDERLYING: 1, DAILY_CAP: 1}
    assert (summary["allowed"], summary["vetoed"]) == (3, 3)


def test_the_summary_counts_every_veto_of_the_same_reason():
    cfg = RiskConfig(0.25, 1.0, 99)
    verdicts = risk_filter(
        [trade(0, 1, pct=0.5), trade(2, 3), trade(4, 5, pct=0.5), trade(6, 7, pct=0.5)], cfg, "s"
    )
    assert [v.kind for v in verdicts] == [PER_TRADE, None, PER_TRADE, PER_TRADE]
    assert risk_summary(verdicts)["vetoed_by_reason"] == {PER_TRADE: 3}


def test_a_trade_without_a_known_pnl_counts_as_flat():
    bare = RiskTrade(T0, T0 + H, "BTC", 0.001)
    assert bare.pnl_frac == 0.0
    summary = risk_summary(risk_filter([bare], WIDE, "s"))
    assert summary["return_pct_with_risk"] == 0.0 == summary["return_pct_without_risk"]


def test_an_empty_run_has_no_return():
    assert risk_summary([]) == {
        "candidates": 0,
        "allowed": 0,
        "vetoed": 0,
        "vetoed_by_reason": {},
        "return_pct_without_risk": 0.0,
        "return_pct_with_risk": 0.0,
    }


# --- values, not state ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        RiskConfig(),
        OpenPosition("p", "BTC", 0.01, T0),
        CandidateTrade("BTC", 0.01, T0, "s"),
        RiskTrade(T0, T0 + H, "BTC", 0.01),
        RiskVerdict(RiskTrade(T0, T0 + H, "BTC", 0.01), True, None, None),
    ],
    ids=lambda v: type(v).__name__,
)
def test_configs_positions_trades_and_verdicts_are_frozen_values(value):
    """A manager's limits cannot be changed under it, and equal values hash alike."""
    name = next(iter(dataclasses.asdict(value)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, None)
    assert hash(value) == hash(dataclasses.replace(value))
