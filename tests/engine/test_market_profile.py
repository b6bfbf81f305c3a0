"""Market profile of minute candles: volume profile (POC / VAH / VAL) and candle order flow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtestlab.engine.market_profile import VP_BUCKET_PCT, candle_flow, volume_profile
from backtestlab.engine.synthetic import synthetic_candles

G = math.log1p(VP_BUCKET_PCT / 100)


@pytest.fixture(scope="module")
def minutes():
    """Ten synthetic days of BTC minute candles (14,400 bars)."""
    return synthetic_candles("BTC", days=10, seed=11)


def test_volume_profile_golden():
    # Single-price candles: all volume of a candle sits in one bucket.
    price = np.array([100.0, 100.0, 101.0, 99.0])
    volume = np.array([1.0, 5.0, 2.0, 1.0])
    poc, vah, val = volume_profile(price, price, volume, 3)
    b = math.floor(math.log(100.0) / G)
    assert np.isnan(poc[:2]).all()
    # bars 0-2: 6 of 8 at 100 >= 70 % -> the value area is the POC bucket alone
    assert np.isclose(poc[2], math.exp((b + 0.5) * G), rtol=1e-8)
    assert np.isclose(val[2], math.exp(b * G), rtol=1e-8)
    assert np.isclose(vah[2], math.exp((b + 1) * G), rtol=1e-8)
    # bars 1-3: 5 at 100, 2 at 101, 1 at 99; 5/8 < 70 %: grow up (2 > 1) to 7/8
    b101 = math.floor(math.log(101.0) / G)
    assert np.isclose(poc[3], math.exp((b + 0.5) * G), rtol=1e-8)
    assert np.isclose(vah[3], math.exp((b101 + 1) * G), rtol=1e-8)
    assert np.isclose(val[3], math.exp(b * G), rtol=1e-8)


def test_volume_profile_matches_a_plain_recount(minutes):
    lookback = 45
    poc, vah, val = volume_profile(minutes.high, minutes.low, minutes.volume, lookback)
    lo = np.floor(np.log(minutes.low) / G).astype(int)
    hi = np.maximum(np.floor(np.log(minutes.high) / G).astype(int), lo)
    for i in [44, 45, 4095, 4096, 4097, 9000, len(minutes) - 1]:
        hist: dict[int, float] = {}
        for j in range(i - lookback + 1, i + 1):
            for b in range(lo[j], hi[j] + 1):
                hist[b] = hist.get(b, 0.0) + minutes.volume[j] / (hi[j] - lo[j] + 1)
        best = max(hist.values())
        p = min(b for b, v in hist.items() if np.isclose(v, best, rtol=1e-12))
        assert np.isclose(poc[i], math.exp((p + 0.5) * G), rtol=1e-12), i
        assert val[i] <= poc[i] <= vah[i]
        covered = sum(
            v for b, v in hist.items() if math.exp(b * G) >= val[i] * (1 - 1e-12)
            and math.exp((b + 1) * G) <= vah[i] * (1 + 1e-12)
        )  # fmt: skip
        assert covered >= 0.7 * sum(hist.values()) * (1 - 1e-9)


def test_candle_flow_golden():
    high = np.array([101.0, 101.0, 100.0])
    low = np.array([99.0, 99.0, 100.0])
    close = np.array([100.5, 99.5, 100.0])
    buy, delta = candle_flow(high, low, close, np.array([10.0, 10.0, 4.0]))
    np.testing.assert_allclose(buy, [7.5, 2.5, 2.0], rtol=1e-12)
    np.testing.assert_allclose(delta, [5.0, -5.0, 0.0], rtol=1e-12)
