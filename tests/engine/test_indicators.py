from __future__ import annotations

import numpy as np
import pytest

from backtestlab.engine.indicators import adx, atr, chop, ema, rolling_std, rsi, sma


def test_sma_exact():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    out = sma(x, 3)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], [2, 3, 4, 5], rtol=1e-15)
    rng = np.random.Generator(np.random.PCG64(0))
    y = 30000 + rng.standard_normal(5000).cumsum() * 50
    ref = np.convolve(y, np.ones(200) / 200, mode="valid")
    assert np.allclose(sma(y, 200)[199:], ref, rtol=1e-12)
    assert np.isnan(sma(x, 10)).all()


def test_sma_flat_is_constant():
    out = sma(np.full(3000, 0.1), 7)
    assert np.unique(out[6:]).size == 1


def test_ema_exact():
    x = np.array([1.0, 2, 3, 4, 5])
    out = ema(x, 3)
    a = 0.5
    e2 = 2.0
    e3 = e2 + a * (4 - e2)
    e4 = e3 + a * (5 - e3)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], [e2, e3, e4], rtol=1e-15)


def test_rsi_monotonic_and_golden():
    up = np.arange(1.0, 40.0)
    r = rsi(up, 14)
    assert np.isnan(r[:14]).all() and (r[14:] == 100).all()
    assert (rsi(up[::-1], 14)[14:] == 0).all()
    assert (rsi(np.full(30, 5.0), 14)[14:] == 50).all()
    c = np.array([10.0, 11, 10, 11, 10])
    # n=2: first avg gain (1+0)/2, loss (0+1)/2 -> RSI 50; then Wilder
    r2 = rsi(c, 2)
    g, lo = 0.5, 0.5
    g, lo = (g + 1) / 2, (lo + 0) / 2
    exp3 = 100 - 100 / (1 + g / lo)
    g, lo = (g + 0) / 2, (lo + 1) / 2
    exp4 = 100 - 100 / (1 + g / lo)
    np.testing.assert_allclose(r2[2:], [50, exp3, exp4], rtol=1e-12)


def test_atr_constant_range():
    n = 50
    close = np.full(n, 100.0)
    high = close + 1
    low = close - 1
    a = atr(high, low, close, 14)
    assert np.isnan(a[:13]).all()
    np.testing.assert_allclose(a[13:], 2.0, rtol=1e-15)


def test_atr_wilder_recursion():
    rng = np.random.Generator(np.random.PCG64(1))
    close = 100 + rng.standard_normal(60).cumsum()
    high = close + rng.uniform(0, 2, 60)
    low = close - rng.uniform(0, 2, 60)
    tr = np.maximum(
        high - low,
        np.maximum(abs(high - np.r_[np.nan, close[:-1]]), abs(low - np.r_[np.nan, close[:-1]])),
    )
    tr[0] = high[0] - low[0]
    a = atr(high, low, close, 5)
    exp = tr[:5].mean()
    assert np.isclose(a[4], exp)
    for i in range(5, 60):
        exp = (exp * 4 + tr[i]) / 5
        assert np.isclose(a[i], exp, rtol=1e-12)


def test_adx_trend_and_warmup():
    n = 100
    close = np.linspace(100, 200, n)
    high = close + 1
    low = close - 1
    a = adx(high, low, close, 14)
    assert np.isnan(a[:27]).all() and not np.isnan(a[27])
    assert np.allclose(a[27:], 100.0)  # pure up-trend: -DM is zero -> DX 100
    rng = np.random.Generator(np.random.PCG64(2))
    c = 100 + rng.standard_normal(500).cumsum()
    out = adx(c + 1, c - 1, c, 14)
    assert ((out[27:] >= 0) & (out[27:] <= 100)).all()


def test_chop():
    n = 30
    close = np.linspace(100, 129, n)
    high = close + 0.5
    low = close - 0.5
    c = chop(high, low, close, 7)
    assert np.isnan(c[:6]).all()
    # trending: sum(TR)=7*1.5 (after bar 0) vs range 7, log10(1.5)/log10(7)
    assert np.isclose(c[10], 100 * np.log10(10.5 / 7) / np.log10(7))
    flat = chop(np.full(10, 1.0), np.full(10, 1.0), np.full(10, 1.0), 5)
    assert np.isnan(flat).all()
    with pytest.raises(ValueError):
        sma(np.ones(3), 0)


def test_rolling_std():
    x = np.arange(10.0)
    out = rolling_std(x, 4)
    assert np.isnan(out[:3]).all()
    np.testing.assert_allclose(out[3:], np.std([0, 1, 2, 3], ddof=1), rtol=1e-14)
