"""Candle timeframes: bar length in seconds and bars per year (crypto trades 24/7)."""

from __future__ import annotations

TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
}
HOURS_PER_YEAR = 8760.0


def bars_per_year(timeframe: str) -> float:
    """Bars per year for a timeframe (crypto trades 24/7: ``HOURS_PER_YEAR * 3600 / bar``)."""
    return HOURS_PER_YEAR * 3600.0 / TIMEFRAME_SECONDS[timeframe]
