"""Shared fixtures for the engine tests (plain pytest, no Django)."""

from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.data import MarketData
from backtestlab.engine.synthetic import resample, synthetic_candles

START = 1672531200


def make_data(close, open_=None, high=None, low=None, timeframe="1h") -> MarketData:
    close = np.asarray(close, dtype=float)
    n = len(close)
    if open_ is None:
        open_ = np.r_[close[:1], close[:-1]] if n else close
    open_ = np.asarray(open_, dtype=float)
    if high is None:
        high = np.maximum(open_, close)
    if low is None:
        low = np.minimum(open_, close)
    sec = {"1m": 60, "1h": 3600, "1d": 86400}[timeframe]
    return MarketData(
        symbol="TEST",
        timeframe=timeframe,
        ts=START + np.arange(n, dtype=np.int64) * sec,
        open=open_,
        high=np.asarray(high, dtype=float),
        low=np.asarray(low, dtype=float),
        close=close,
        volume=np.ones(n),
    )


@pytest.fixture(scope="session")
def hourly_btc() -> MarketData:
    return resample(synthetic_candles("BTC", days=120, seed=7), "1h")
