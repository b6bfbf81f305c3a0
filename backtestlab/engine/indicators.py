"""Technical indicators, compiled with numba.

Conventions
-----------
* Inputs are 1-D float arrays of equal length; outputs are new float64 arrays.
* Values that are undefined because the look-back is not yet full are NaN (the exact
  warm-up length is stated per function).  Indicators never look ahead: value ``i`` uses
  bars ``0..i`` only, so they are safe for signals evaluated at the close of bar ``i``.
* Wilder smoothing (ATR, RSI, ADX) is the recursive average
  ``s[i] = (s[i-1] * (n - 1) + x[i]) / n`` seeded by a simple mean of the first ``n`` inputs.
* True range of bar 0 is ``high - low`` (there is no previous close).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# A rolling sum updated by add/subtract drifts slowly; re-summing the window every this many
# bars bounds the error on multi-million-bar series while staying O(n).
_RESUM_EVERY = 1024


def _check_window(n: int) -> int:
    n = int(n)
    if n < 1:
        raise ValueError(f"window must be >= 1, got {n}")
    return n


def _as_f64(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


@njit(cache=True, error_model="numpy")
def _sma_kernel(x, n):
    m = x.shape[0]
    out = np.full(m, np.nan)
    if m < n:
        return out
    s = 0.0
    for i in range(m):
        if i < n:
            s += x[i]
        elif (i - n + 1) % _RESUM_EVERY == 0:
            s = 0.0
            for j in range(i - n + 1, i + 1):
                s += x[j]
        else:
            # Flat input keeps the sum bit-identical (x[i] - x[i-n] == 0), so two SMAs of a
            # flat series never produce spurious crossings.
            s += x[i] - x[i - n]
        if i >= n - 1:
            out[i] = s / n
    return out


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over ``n`` bars; the first ``n - 1`` values are NaN."""
    return _sma_kernel(_as_f64(x), _check_window(n))


@njit(cache=True, error_model="numpy")
def _ema_kernel(x, n):
    m = x.shape[0]
    out = np.full(m, np.nan)
    if m < n:
        return out
    alpha = 2.0 / (n + 1.0)
    s = 0.0
    for i in range(n):
        s += x[i]
    e = s / n
    out[n - 1] = e
    for i in range(n, m):
        e = e + alpha * (x[i] - e)
        out[i] = e
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, ``alpha = 2 / (n + 1)``, seeded with the SMA of the
    first ``n`` values; the first ``n - 1`` values are NaN."""
    return _ema_kernel(_as_f64(x), _check_window(n))


@njit(cache=True, error_model="numpy")
def _true_range(high, low, close):
    m = high.shape[0]
    tr = np.empty(m)
    for i in range(m):
        r = high[i] - low[i]
        if i > 0:
            a = abs(high[i] - close[i - 1])
            b = abs(low[i] - close[i - 1])
            if a > r:
                r = a
            if b > r:
                r = b
        tr[i] = r
    return tr


@njit(cache=True, error_model="numpy")
def _wilder(x, n, first):
    """Wilder average of x[first:], seeded by the mean of x[first:first+n]."""
    m = x.shape[0]
    out = np.full(m, np.nan)
    if m - first < n:
        return out
    s = 0.0
    for i in range(first, first + n):
        s += x[i]
    a = s / n
    out[first + n - 1] = a
    for i in range(first + n, m):
        a = (a * (n - 1) + x[i]) / n
        out[i] = a
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range per bar (price units); bar 0 is ``high - low``."""
    return _true_range(_as_f64(high), _as_f64(low), _as_f64(close))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average true range (Wilder), price units; the first ``n - 1`` values are NaN."""
    n = _check_window(n)
    return _wilder(true_range(high, low, close), n, 0)


@njit(cache=True, error_model="numpy")
def _rsi_kernel(close, n):
    m = close.shape[0]
    out = np.full(m, np.nan)
    if m <= n:
        return out
    g = 0.0
    lo = 0.0
    for i in range(1, n + 1):
        d = close[i] - close[i - 1]
        if d > 0:
            g += d
        else:
            lo -= d
    g /= n
    lo /= n
    for i in range(n, m):
        if i > n:
            d = close[i] - close[i - 1]
            up = d if d > 0 else 0.0
            dn = -d if d < 0 else 0.0
            g = (g * (n - 1) + up) / n
            lo = (lo * (n - 1) + dn) / n
        if lo == 0.0:
            out[i] = 100.0 if g > 0.0 else 50.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + g / lo)
    return out


def rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI in 0..100; the first ``n`` values are NaN (it needs ``n`` price changes).

    With no losses in the window RSI is 100 (50 if there was no movement at all).
    """
    return _rsi_kernel(_as_f64(close), _check_window(n))


@njit(cache=True, error_model="numpy")
def _adx_kernel(high, low, close, n):
    m = high.shape[0]
    out = np.full(m, np.nan)
    if m < 2 * n:
        return out
    tr = _true_range(high, low, close)
    # Wilder's running sums of +DM, -DM and TR start at bar 1 (bar 0 has no predecessor).
    s_tr = 0.0
    s_p = 0.0
    s_m = 0.0
    dx_sum = 0.0
    a = 0.0
    for i in range(1, m):
        up = high[i] - high[i - 1]
        dn = low[i - 1] - low[i]
        p = up if (up > dn and up > 0.0) else 0.0
        q = dn if (dn > up and dn > 0.0) else 0.0
        if i <= n:
            s_tr += tr[i]
            s_p += p
            s_m += q
            if i < n:
                continue
        else:
            s_tr = s_tr - s_tr / n + tr[i]
            s_p = s_p - s_p / n + p
            s_m = s_m - s_m / n + q
        if s_tr > 0.0:
            pdi = 100.0 * s_p / s_tr
            mdi = 100.0 * s_m / s_tr
        else:
            pdi = 0.0
            mdi = 0.0
        tot = pdi + mdi
        dx = 100.0 * abs(pdi - mdi) / tot if tot > 0.0 else 0.0
        k = i - n  # 0 for the first DX
        if k < n:
            dx_sum += dx
            if k == n - 1:
                a = dx_sum / n
                out[i] = a
        else:
            a = (a * (n - 1) + dx) / n
            out[i] = a
    return out


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average directional index (Wilder), 0..100.

    The first DX is available at bar ``n`` and ADX (mean of the first ``n`` DX values, then
    Wilder-smoothed) at bar ``2n - 1``; earlier values are NaN.
    """
    return _adx_kernel(_as_f64(high), _as_f64(low), _as_f64(close), _check_window(n))


@njit(cache=True, error_model="numpy")
def _chop_kernel(high, low, close, n):
    m = high.shape[0]
    out = np.full(m, np.nan)
    if m < n or n < 2:
        return out
    tr = _true_range(high, low, close)
    ln = np.log10(n)
    for i in range(n - 1, m):
        s = 0.0
        hh = high[i]
        ll = low[i]
        for j in range(i - n + 1, i + 1):
            s += tr[j]
            if high[j] > hh:
                hh = high[j]
            if low[j] < ll:
                ll = low[j]
        rng = hh - ll
        if rng > 0.0 and s > 0.0:
            out[i] = 100.0 * np.log10(s / rng) / ln
    return out


def chop(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Choppiness index ``100 * log10(sum(TR, n) / (max(high, n) - min(low, n))) / log10(n)``.

    Roughly 0..100 (high = sideways).  The first ``n - 1`` values are NaN, as is any window
    with zero range; ``n`` must be >= 2.
    """
    return _chop_kernel(_as_f64(high), _as_f64(low), _as_f64(close), _check_window(n))


@njit(cache=True, error_model="numpy")
def _rolling_std_kernel(x, n, ddof):
    m = x.shape[0]
    out = np.full(m, np.nan)
    if n - ddof <= 0:
        return out
    for i in range(n - 1, m):
        s = 0.0
        for j in range(i - n + 1, i + 1):
            s += x[j]
        mu = s / n
        v = 0.0
        for j in range(i - n + 1, i + 1):
            v += (x[j] - mu) ** 2
        out[i] = np.sqrt(v / (n - ddof))
    return out


def rolling_std(x: np.ndarray, n: int, ddof: int = 1) -> np.ndarray:
    """Rolling standard deviation (two-pass per window, so each value depends only on its
    own window); the first ``n - 1`` values are NaN."""
    return _rolling_std_kernel(_as_f64(x), _check_window(n), int(ddof))
