"""Market profile of 1-minute candles (seed 004): volume profile, order flow, market state.

Everything is computed on the fly from candles, causally: the value at bar ``i`` uses bars
``i - lookback + 1 .. i`` only, so any period that has candles can be backtested.

Volume profile (POC / VAH / VAL over ``lookback`` minutes)
---------------------------------------------------------
Price levels are buckets of a fixed logarithmic grid, ``VP_BUCKET_PCT`` (0.05 %) wide, the
same for every bar and every dataset (bucket ``b`` covers ``[g**b, g**(b+1))`` with
``g = 1 + VP_BUCKET_PCT / 100``), so a candle's contribution never depends on other data.
Each candle spreads its volume evenly over the buckets from its low to its high.  A rolling
histogram adds the newest candle and removes the one leaving the window (rebuilt from the
window every ``_REBUILD_EVERY`` bars so float drift stays bounded): O(1) per bar plus a scan of
the window's price range.  POC is the bucket with the most volume (lowest price on a tie); the
value area grows from the POC one bucket at a time towards the side with more volume (up on
a tie) until it holds ``VALUE_AREA_SHARE`` (70 %) of the window's volume; VAH / VAL are its
upper / lower bucket edges and POC the middle of its bucket (geometric).  NaN until the window
is full or when it has no volume.

Order flow estimated from candles
---------------------------------
Buy volume of a candle is ``volume * (close - low) / (high - low)`` (half the volume when
``high == low``), sell volume the rest, delta = buy - sell.  Over the lookback window:
``buy_pressure`` = 100 * sum(buy) / sum(volume) (0..100), ``sell_pressure`` = 100 - it and
the CVD pressure ``buy_pressure - sell_pressure`` (-100..100 points).  CVD momentum is the
change of the cumulative delta over the last ``lookback_buckets`` one-minute buckets.
Momentum is the close-to-close price change over the lookback window, in percent.

State (thresholds from the seed's Expert Mode)
----------------------------------------------
With ``d`` the distance of the close from the POC in percent and ``dir`` its sign:
* ``|d| < poc_distance_threshold`` -> BALANCE (price rotates around the POC);
* otherwise IMBALANCE in the direction ``dir`` if it is confirmed by momentum
  (``dir * momentum >= momentum_threshold``) or by flow (``dir * cvd_pressure >=
  cvd_pressure_threshold`` and the CVD momentum points the same way); unconfirmed -> BALANCE.
Raising ``poc_distance_threshold`` therefore only ever turns IMBALANCE into BALANCE.
Confidence (0..100): with strengths ``s_d = min(|d| / poc_thr, 1)``, ``s_m = clip(dir *
momentum / momentum_thr, 0, 1)``, ``s_f = clip(dir * cvd_pressure / cvd_thr, 0, 1)``, an
IMBALANCE has ``100 * (s_d + s_m + s_f) / 3`` and a BALANCE ``100 * (1 - (s_d + |s_m| +
|s_f|) / 3)`` with the direction-free strengths.  Before the window is full the state is
UNKNOWN (-2) and nothing trades.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

VP_BUCKET_PCT = 0.05
VALUE_AREA_SHARE = 0.70
_REBUILD_EVERY = 4096

STATE_UNKNOWN = -2
STATE_IMBALANCE_DOWN = -1
STATE_BALANCE = 0
STATE_IMBALANCE_UP = 1


@njit(cache=True, error_model="numpy")
def _add_candle(hist, lo, hi, vol, sign):
    share = sign * vol / (hi - lo + 1)
    for b in range(lo, hi + 1):
        hist[b] += share


@njit(cache=True, error_model="numpy")
def _sliding_min_max(lo_b, hi_b, n_win):
    """Window minimum of ``lo_b`` and maximum of ``hi_b`` (monotonic deques, O(n))."""
    n = lo_b.shape[0]
    wmin = np.empty(n, dtype=np.int64)
    wmax = np.empty(n, dtype=np.int64)
    qmin = np.empty(n, dtype=np.int64)
    qmax = np.empty(n, dtype=np.int64)
    a0 = 0
    a1 = 0
    b0 = 0
    b1 = 0
    for i in range(n):
        while a1 > a0 and lo_b[qmin[a1 - 1]] >= lo_b[i]:
            a1 -= 1
        qmin[a1] = i
        a1 += 1
        if qmin[a0] <= i - n_win:
            a0 += 1
        while b1 > b0 and hi_b[qmax[b1 - 1]] <= hi_b[i]:
            b1 -= 1
        qmax[b1] = i
        b1 += 1
        if qmax[b0] <= i - n_win:
            b0 += 1
        wmin[i] = lo_b[qmin[a0]]
        wmax[i] = hi_b[qmax[b0]]
    return wmin, wmax


@njit(cache=True, error_model="numpy")
def volume_profile_kernel(high, low, volume, lookback, bucket_log, share):
    n = high.shape[0]
    poc = np.full(n, np.nan)
    vah = np.full(n, np.nan)
    val = np.full(n, np.nan)
    if n < lookback or n == 0:
        return poc, vah, val
    lo_b = np.empty(n, dtype=np.int64)
    hi_b = np.empty(n, dtype=np.int64)
    for i in range(n):
        lo_b[i] = np.int64(math.floor(math.log(low[i]) / bucket_log))
        hi_b[i] = np.int64(math.floor(math.log(high[i]) / bucket_log))
        if hi_b[i] < lo_b[i]:
            hi_b[i] = lo_b[i]
    # The offset only shifts array indices; bucket edges never depend on the data.
    base = lo_b.min()
    size = hi_b.max() - base + 1
    lo_b -= base
    hi_b -= base
    wmin, wmax = _sliding_min_max(lo_b, hi_b, lookback)
    hist = np.zeros(size)
    for i in range(n):
        if i > 0 and i % _REBUILD_EVERY == 0:
            hist[:] = 0.0
            for j in range(max(0, i - lookback + 1), i):
                _add_candle(hist, lo_b[j], hi_b[j], volume[j], 1.0)
        else:
            if i >= lookback:
                j = i - lookback
                _add_candle(hist, lo_b[j], hi_b[j], volume[j], -1.0)
        _add_candle(hist, lo_b[i], hi_b[i], volume[i], 1.0)
        if i < lookback - 1:
            continue
        lo = wmin[i]
        hi = wmax[i]
        total = 0.0
        p = lo
        for b in range(lo, hi + 1):
            v = hist[b]
            total += v
            if v > hist[p]:
                p = b
        if not total > 0.0:
            continue
        target = share * total
        a = p
        c = p
        acc = hist[p]
        while acc < target and (a > lo or c < hi):
            up = hist[c + 1] if c < hi else -1.0
            dn = hist[a - 1] if a > lo else -1.0
            if up >= dn:
                c += 1
                acc += up
            else:
                a -= 1
                acc += dn
        poc[i] = math.exp((p + base + 0.5) * bucket_log)
        vah[i] = math.exp((c + base + 1) * bucket_log)
        val[i] = math.exp((a + base) * bucket_log)
    return poc, vah, val


def volume_profile(high, low, volume, lookback: int):
    """Rolling POC, VAH, VAL (price arrays) over ``lookback`` bars; see the module docstring."""
    lookback = int(lookback)
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    return volume_profile_kernel(
        np.ascontiguousarray(high, dtype=np.float64),
        np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(volume, dtype=np.float64),
        lookback,
        math.log1p(VP_BUCKET_PCT / 100.0),
        VALUE_AREA_SHARE,
    )


@njit(cache=True, error_model="numpy")
def _rolling_sum(x, n_win):
    """Sum of ``x[i - n_win + 1 .. i]`` (shorter at the start), re-summed every 1024 bars."""
    m = x.shape[0]
    out = np.empty(m)
    s = 0.0
    for i in range(m):
        if i % 1024 == 0:
            s = 0.0
            for j in range(max(0, i - n_win + 1), i + 1):
                s += x[j]
        else:
            s += x[i]
            if i >= n_win:
                s -= x[i - n_win]
        out[i] = s
    return out


@njit(cache=True, error_model="numpy")
def candle_flow(high, low, close, volume):
    """Estimated buy volume and delta (buy - sell) per candle."""
    n = close.shape[0]
    buy = np.empty(n)
    delta = np.empty(n)
    for i in range(n):
        rng = high[i] - low[i]
        b = volume[i] * (close[i] - low[i]) / rng if rng > 0.0 else 0.5 * volume[i]
        buy[i] = b
        delta[i] = 2.0 * b - volume[i]
    return buy, delta


@njit(cache=True, error_model="numpy")
def window_flow(close, volume, buy, lookback):
    """CVD pressure (buy % - sell %) and price momentum (%) over ``lookback`` bars."""
    n = close.shape[0]
    pressure = np.full(n, np.nan)
    momentum = np.full(n, np.nan)
    sb = _rolling_sum(buy, lookback)
    sv = _rolling_sum(volume, lookback)
    for i in range(lookback - 1, n):
        if sv[i] > 0.0:
            bp = 100.0 * sb[i] / sv[i]
            pressure[i] = 2.0 * bp - 100.0
        if i >= lookback:
            momentum[i] = (close[i] / close[i - lookback] - 1.0) * 100.0
    return pressure, momentum


def cvd_momentum(delta, buckets: int) -> np.ndarray:
    """Change of the cumulative delta over the last ``buckets`` one-minute buckets."""
    out = _rolling_sum(np.ascontiguousarray(delta, dtype=np.float64), int(buckets))
    out[: int(buckets)] = np.nan
    return out


@njit(cache=True, error_model="numpy")
def classify_kernel(
    close, poc, pressure, momentum, cvd_mom, poc_thr, mom_thr, cvd_thr, state, confidence
):
    """Fill ``state`` (int8, see STATE_*) and ``confidence`` (0..100, NaN when UNKNOWN)."""
    for i in range(close.shape[0]):
        p = poc[i]
        m = momentum[i]
        f = pressure[i]
        cm = cvd_mom[i]
        if not (p == p and m == m and f == f and cm == cm):
            state[i] = STATE_UNKNOWN
            confidence[i] = np.nan
            continue
        d = (close[i] - p) / p * 100.0
        sd = min(abs(d) / poc_thr, 1.0)
        if abs(d) >= poc_thr:
            di = 1.0 if d > 0.0 else -1.0
            sm = min(max(di * m / mom_thr, 0.0), 1.0)
            sf = min(max(di * f / cvd_thr, 0.0), 1.0)
            if di * m >= mom_thr or (di * f >= cvd_thr and di * cm > 0.0):
                state[i] = STATE_IMBALANCE_UP if di > 0.0 else STATE_IMBALANCE_DOWN
                confidence[i] = 100.0 * (sd + sm + sf) / 3.0
                continue
        am = min(abs(m) / mom_thr, 1.0)
        af = min(abs(f) / cvd_thr, 1.0)
        state[i] = STATE_BALANCE
        confidence[i] = 100.0 * (1.0 - (sd + am + af) / 3.0)
