"""Timeframes: bar length and bars per year (24/7 markets: 365 days of 24 hours)."""

import pytest

from backtestlab.engine.timeframes import TIMEFRAME_SECONDS, bars_per_year


def test_bars_per_year_counts_a_whole_year_of_round_the_clock_bars():
    # 365 * 24 = 8760 hours; * 60 = 525,600 minutes; / 4 = 2190 four-hour bars
    assert bars_per_year("1h") == 8760.0
    assert bars_per_year("1d") == 365.0
    assert bars_per_year("1m") == 525_600.0
    assert bars_per_year("4h") == 2190.0
    assert bars_per_year("15m") == 35_040.0


def test_an_unknown_timeframe_is_a_key_error_naming_it():
    assert set(TIMEFRAME_SECONDS) == {"1m", "5m", "15m", "1h", "4h", "1d"}
    with pytest.raises(KeyError, match="2h"):
        bars_per_year("2h")
