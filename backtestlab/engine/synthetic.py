"""Seeded synthetic market universe (BTC, ETH): 1-minute candles, funding, environment.

Determinism and the prefix property
-----------------------------------
The universe starts ``BURN_IN_DAYS`` before ``start`` (the burn-in warms up regimes, AR
processes and 200-day indicators so that day 1 is already valid) and is generated day by
day.  Every day ``g`` (counted from the burn-in origin) draws from its own generators,
``PCG64(SeedSequence([seed, symbol_code, stream, g]))``, with a fixed number of draws per
day, and every derived series is causal.  Hence the same ``(symbol, days, seed, start)``
gives byte-identical arrays and generating ``N`` days and ``M > N`` days gives identical
first ``N`` days: the universe extends forward deterministically day by day.  ``start``
only stamps times: the price path does not depend on it.

Model
-----
* Daily regime from a Markov chain over bull/bear/chop (mean stay 2-4 weeks), each regime
  with its own drift and annualised volatility (~40-85 %), times a persistent AR(1)
  log-volatility multiplier.  The drift is weakly pulled towards a slow log-trend so
  multi-year paths stay in a plausible range.
* Minute log returns are Gaussian, scaled by a UTC intraday volatility profile and a random
  hourly jitter (fat-tailed mixture).  Open = previous close exactly; high/low extend beyond
  the body by a random fraction of the bar volatility.  Volume is positive, higher in bear
  regimes, at high volatility and on large moves.
* The first bar's open is exactly the symbol's reference price (BTC 30 000, ETH 2 000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import EnvironmentSeries, FundingSeries, MarketData
from .indicators import adx, chop, rolling_std, rsi, sma
from .timeframes import TIMEFRAME_SECONDS

SYMBOLS: tuple[str, ...] = ("BTC", "ETH")
DEFAULT_SEED = 42
DEFAULT_START = 1672531200  # 2023-01-01T00:00:00Z
ENVIRONMENT_METRICS: dict[str, str] = {
    "vrp_30d": "VRP 30d",
    "iv_rank_6m": "IV Rank 6m",
    "chop_factor_7d": "Chop Factor 7d",
    "skew_25d": "Skew 25d",
    "term_structure_spread": "Term Spread",
    "adx_14d": "ADX 14d",
    "rsi_14d": "RSI 14d",
    "price_vs_ma200": "Price vs MA200",
}
MAX_DAYS = 3650
BURN_IN_DAYS = 260  # > 200-day MA and 30-day RV + 180-day IV rank windows
FUNDING_SECONDS = 8 * 3600

_MINUTES = 1440
_MINUTES_PER_YEAR = 365.25 * _MINUTES
_SYMBOL_CODE = {"BTC": 1, "ETH": 2}
_STREAM_STATE = 0
_STREAM_MINUTES = 1
_N_STATE_NORMALS = 8  # vol shock, 3 funding, vrp, skew, term, spare (fixed for prefix safety)

# Daily regime transition matrix, rows = from (bull, bear, chop).
_TRANSITION = np.array(
    [
        [0.965, 0.010, 0.025],
        [0.012, 0.955, 0.033],
        [0.030, 0.025, 0.945],
    ]
)
_CUM_TRANSITION = np.cumsum(_TRANSITION, axis=1)


@dataclass(frozen=True)
class _Profile:
    price: float
    drift: tuple[float, float, float]  # annual log-drift per regime (before -sigma^2/2)
    vol: tuple[float, float, float]  # annualised volatility per regime
    volume: float  # mean base-currency volume per minute
    funding_mean: tuple[float, float, float]


_PROFILES = {
    "BTC": _Profile(
        30_000.0, (1.20, -0.60, 0.15), (0.50, 0.70, 0.38), 12.0, (0.00020, 0.00001, 0.00010)
    ),
    "ETH": _Profile(
        2_000.0, (1.35, -0.70, 0.15), (0.62, 0.85, 0.48), 180.0, (0.00022, 0.00000, 0.00011)
    ),
}
_REGIME_VOLUME = np.array([1.1, 1.4, 0.8])
_TREND_PER_YEAR = 0.12  # long-run log growth the price is pulled towards
_MEAN_REVERSION = 0.6  # annual drift change per unit of log deviation from the trend


def _intraday_profile() -> np.ndarray:
    h = np.arange(24) + 0.5
    prof = 1.0 + 0.45 * np.exp(-(((h - 14.5) / 2.5) ** 2)) + 0.2 * np.exp(-(((h - 8.0) / 2.0) ** 2))
    return prof / np.sqrt(np.mean(prof**2))


_HOUR_PROFILE = _intraday_profile()


def _check(symbol: str, days: int, seed: int, start: int) -> None:
    if symbol not in _SYMBOL_CODE:
        raise ValueError(f"unknown symbol {symbol!r}; known: {', '.join(SYMBOLS)}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)):
        raise ValueError(f"days must be an integer, got {days!r}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start % 60:
        raise ValueError(f"start must be an integer multiple of 60 seconds, got {start!r}")


def _rng(seed: int, symbol: str, stream: int, day: int) -> np.random.Generator:
    ss = np.random.SeedSequence([int(seed), _SYMBOL_CODE[symbol], stream, int(day)])
    return np.random.Generator(np.random.PCG64(ss))


@dataclass(frozen=True)
class _DailyState:
    regime: np.ndarray  # int8 (D,)
    vol_mult: np.ndarray  # float64 (D,)
    normals: np.ndarray  # float64 (D, _N_STATE_NORMALS)


def _daily_state(symbol: str, n_days: int, seed: int) -> _DailyState:
    regime = np.empty(n_days, dtype=np.int8)
    vol_mult = np.empty(n_days)
    normals = np.empty((n_days, _N_STATE_NORMALS))
    reg = 2
    lv = 0.0
    for g in range(n_days):
        rng = _rng(seed, symbol, _STREAM_STATE, g)
        u = rng.random()
        normals[g] = rng.standard_normal(_N_STATE_NORMALS)
        if g > 0:
            reg = int(np.searchsorted(_CUM_TRANSITION[reg], u, side="right"))
            reg = min(reg, 2)
        lv = 0.95 * lv + 0.07 * normals[g, 0]
        regime[g] = reg
        vol_mult[g] = math.exp(lv)
    return _DailyState(regime, vol_mult, normals)


@dataclass(frozen=True)
class _Minutes:
    state: _DailyState
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray


def _minutes(symbol: str, n_days: int, seed: int) -> _Minutes:
    """Minute candles for ``n_days`` days from the burn-in origin (vectorised per stream)."""
    prof = _PROFILES[symbol]
    state = _daily_state(symbol, n_days, seed)
    z = np.empty((n_days, 4, _MINUTES))
    jitter = np.empty((n_days, 24))
    vol_ann = np.asarray(prof.vol)[state.regime] * state.vol_mult  # (D,)
    regime_drift = np.asarray(prof.drift)[state.regime]
    drift_ann = np.empty(n_days)
    # Hourly stochastic volatility; dividing by exp(s^2) keeps the mean variance unchanged.
    s = 0.25
    root_mpy = math.sqrt(_MINUTES_PER_YEAR)
    logp = 0.0
    for g in range(n_days):
        rng = _rng(seed, symbol, _STREAM_MINUTES, g)
        z[g] = rng.standard_normal((4, _MINUTES))
        jitter[g] = rng.standard_normal(24)
        # Pull the drift back towards a slow trend so that a 10-year path stays within a
        # plausible price range instead of wandering off geometrically.
        dev = logp - _TREND_PER_YEAR * g / 365.25
        drift_ann[g] = regime_drift[g] - _MEAN_REVERSION * dev
        sig_h = vol_ann[g] / root_mpy * _HOUR_PROFILE * np.exp(s * jitter[g] - s * s)
        noise = float((sig_h * z[g, 0].reshape(24, 60).sum(axis=1)).sum())
        logp += (drift_ann[g] - 0.5 * vol_ann[g] ** 2) / 365.25 + noise

    hour_scale = _HOUR_PROFILE[None, :] * np.exp(s * jitter - s * s)  # (D, 24)
    sig = (vol_ann[:, None] / root_mpy) * hour_scale  # (D, 24)
    sig = np.repeat(sig, 60, axis=1)  # (D, 1440)
    mu = ((drift_ann - 0.5 * vol_ann**2) / _MINUTES_PER_YEAR)[:, None]
    lr = (mu + sig * z[:, 0, :]).ravel()
    logc = np.cumsum(lr)  # sequential accumulation: prefixes are bit-identical
    logo = np.empty_like(logc)
    logo[0] = 0.0
    logo[1:] = logc[:-1]
    anchor = logc[BURN_IN_DAYS * _MINUTES - 1]
    close = prof.price * np.exp(logc - anchor)
    open_ = prof.price * np.exp(logo - anchor)
    sig_flat = sig.ravel()
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = body_hi * np.exp(0.6 * sig_flat * np.abs(z[:, 1, :].ravel()))
    low = body_lo * np.exp(-0.6 * sig_flat * np.abs(z[:, 2, :].ravel()))
    day_factor = (_REGIME_VOLUME[state.regime] * state.vol_mult)[:, None]
    shock = 0.4 + 0.6 * np.abs(z[:, 0, :])
    volume = (
        prof.volume
        * day_factor
        * np.repeat(hour_scale, 60, axis=1)
        * shock
        * np.exp(0.35 * z[:, 3, :] - 0.5 * 0.35**2)
    ).ravel()
    regime = np.repeat(state.regime, _MINUTES)
    return _Minutes(state, open_, high, low, close, volume, regime)


def synthetic_candles(
    symbol: str, *, days: int, seed: int = DEFAULT_SEED, start: int = DEFAULT_START
) -> MarketData:
    """1-minute candles for ``days`` days from ``start`` (``days * 1440`` bars).

    Parameters
    ----------
    symbol : {"BTC", "ETH"}
    days : int
        1..3650.
    seed : int
        Non-negative; the per-symbol sub-seed comes from ``SeedSequence`` (not ``hash``).
    start : int
        Epoch seconds of the first bar's open, a multiple of 60.
    """
    _check(symbol, days, seed, start)
    m = _minutes(symbol, BURN_IN_DAYS + days, seed)
    sl = slice(BURN_IN_DAYS * _MINUTES, None)
    ts = np.int64(start) + np.arange(days * _MINUTES, dtype=np.int64) * 60
    return MarketData(
        symbol=symbol,
        timeframe="1m",
        ts=ts,
        open=m.open[sl],
        high=m.high[sl],
        low=m.low[sl],
        close=m.close[sl],
        volume=m.volume[sl],
        regime=m.regime[sl],
    )


def resample(data: MarketData, timeframe: str) -> MarketData:
    """Aggregate candles to a coarser timeframe.

    Buckets are aligned to epoch multiples of the target bar length (``ts // seconds``), so
    a partial first/last bucket is kept as a (shorter) bar.  open = first open, high = max,
    low = min, close = last close, volume = sum, regime = regime of the bucket's LAST source
    bar (the state the bar closes in, known without look-ahead at its close).
    """
    if timeframe not in TIMEFRAME_SECONDS:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_SECONDS)}")
    sec = TIMEFRAME_SECONDS[timeframe]
    if sec < data.bar_seconds or sec % data.bar_seconds:
        raise ValueError(f"cannot resample {data.timeframe} to {timeframe}")
    if len(data) == 0:
        return MarketData(
            data.symbol,
            timeframe,
            data.ts,
            data.open,
            data.high,
            data.low,
            data.close,
            data.volume,
            data.regime,
        )
    bucket = data.ts // sec
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))
    ends = np.concatenate((starts[1:], [len(data)])) - 1
    return MarketData(
        symbol=data.symbol,
        timeframe=timeframe,
        ts=bucket[starts] * sec,
        open=data.open[starts],
        high=np.maximum.reduceat(data.high, starts),
        low=np.minimum.reduceat(data.low, starts),
        close=data.close[ends],
        volume=np.add.reduceat(data.volume, starts),
        regime=data.regime[ends],
    )


def synthetic_funding(
    symbol: str, *, days: int, seed: int = DEFAULT_SEED, start: int = DEFAULT_START
) -> FundingSeries:
    """Funding rates every 8 hours (epoch multiples of 8 h: 00, 08, 16 UTC) in
    ``[start, start + days * 86400)``; ``3 * days`` values.

    AR(1) per 8-hour period (fraction per period), mean-reverting to a regime-dependent
    level: clearly positive in bull markets (~0.0002), ~0.0001 in chop, around zero (often
    negative) in bear markets, with persistence 0.92 per period.
    """
    _check(symbol, days, seed, start)
    prof = _PROFILES[symbol]
    n_days = BURN_IN_DAYS + days
    state = _daily_state(symbol, n_days, seed)
    origin = start - BURN_IN_DAYS * 86400
    first = -(-origin // FUNDING_SECONDS) * FUNDING_SECONDS
    # Each 24 h window from the origin holds exactly three 8 h multiples, so slot j belongs
    # to day j // 3 and uses that day's j % 3-th funding draw.
    n_slots = 3 * n_days
    eps = state.normals[:, 1:4].ravel()
    means = np.asarray(prof.funding_mean)[np.repeat(state.regime, 3)]
    rate = np.empty(n_slots)
    f = means[0]
    phi = 0.92
    for j in range(n_slots):
        f = means[j] + phi * (f - means[j]) + 0.000025 * eps[j]
        rate[j] = f
    rate = np.clip(rate, -0.0075, 0.0075)
    ts = first + np.arange(n_slots, dtype=np.int64) * FUNDING_SECONDS
    sl = slice(3 * BURN_IN_DAYS, None)
    return FundingSeries(symbol=symbol, ts=ts[sl], rate=rate[sl])


def _ar_path(eps: np.ndarray, target: np.ndarray, phi: float, sigma: float) -> np.ndarray:
    out = np.empty(len(eps))
    x = target[0]
    for g in range(len(eps)):
        x = target[g] + phi * (x - target[g]) + sigma * eps[g]
        out[g] = x
    return out


def synthetic_environment(
    symbol: str, *, days: int, seed: int = DEFAULT_SEED, start: int = DEFAULT_START
) -> EnvironmentSeries:
    """One row per day (``ts = start + d * 86400``) of ``ENVIRONMENT_METRICS``.

    Each row holds values known at that day's OPEN, i.e. computed through the close of the
    previous day, so using them for same-day decisions is free of look-ahead.

    * ``adx_14d``, ``rsi_14d``, ``chop_factor_7d``: indicators on the synthetic daily candles.
    * ``price_vs_ma200``: ``(close / SMA200(close) - 1) * 100`` on daily closes (percent).
    * ``vrp_30d``: implied minus 30-day realised volatility (vol points), AR(1), mostly
      positive (mean ~5), lower in bear regimes.
    * ``iv_rank_6m``: rank of implied vol (realised + VRP) within its last 180 days, 0..100.
    * ``skew_25d``: 25-delta risk reversal (vol points), AR(1) around +3 / -7 / -2 for
      bull / bear / chop, clipped to -15..10.
    * ``term_structure_spread``: 3-month minus 1-month implied vol (vol points), AR(1),
      inverted (negative) when realised vol is high, clipped to -10..10.
    """
    _check(symbol, days, seed, start)
    n_days = BURN_IN_DAYS + days
    m = _minutes(symbol, n_days, seed)
    st = m.state
    o = m.open.reshape(n_days, _MINUTES)[:, 0]
    h = m.high.reshape(n_days, _MINUTES).max(axis=1)
    lo = m.low.reshape(n_days, _MINUTES).min(axis=1)
    c = m.close.reshape(n_days, _MINUTES)[:, -1]
    del o  # daily open is not needed by these indicators

    ret = np.empty(n_days)
    ret[0] = 0.0
    ret[1:] = np.log(c[1:] / c[:-1])
    rv = rolling_std(ret, 30) * math.sqrt(365.0) * 100.0
    fallback = np.asarray(_PROFILES[symbol].vol)[st.regime] * st.vol_mult * 100.0
    rv = np.where(np.isnan(rv), fallback, rv)

    reg = st.regime
    vrp = np.clip(_ar_path(st.normals[:, 4], np.array([7.0, 2.5, 6.0])[reg], 0.9, 1.6), -12, 30)
    iv = np.maximum(rv + vrp, 5.0)
    win = np.lib.stride_tricks.sliding_window_view(iv, 180)
    iv_hi = np.full(n_days, np.nan)
    iv_lo = np.full(n_days, np.nan)
    iv_hi[179:] = win.max(axis=1)
    iv_lo[179:] = win.min(axis=1)
    span = iv_hi - iv_lo
    safe = np.where(span > 0, span, 1.0)
    iv_rank = np.where(span > 0, (iv - iv_lo) / safe * 100.0, 50.0)
    skew = np.clip(_ar_path(st.normals[:, 5], np.array([3.0, -7.0, -2.0])[reg], 0.9, 1.5), -15, 10)
    term_target = 4.0 - 0.12 * (rv - 55.0)
    term = np.clip(_ar_path(st.normals[:, 6], term_target, 0.85, 1.2), -10, 10)

    series = {
        "vrp_30d": vrp,
        "iv_rank_6m": iv_rank,
        "chop_factor_7d": chop(h, lo, c, 7),
        "skew_25d": skew,
        "term_structure_spread": term,
        "adx_14d": adx(h, lo, c, 14),
        "rsi_14d": rsi(c, 14),
        "price_vs_ma200": (c / sma(c, 200) - 1.0) * 100.0,
    }
    # Row d (day open) uses values as of the close of global day BURN_IN_DAYS + d - 1.
    rows = np.arange(days) + BURN_IN_DAYS - 1
    metrics = {k: np.ascontiguousarray(series[k][rows]) for k in ENVIRONMENT_METRICS}
    for k, v in metrics.items():
        if np.isnan(v).any():  # pragma: no cover - guarded by BURN_IN_DAYS
            raise AssertionError(f"synthetic environment metric {k} has NaN")
    ts = np.int64(start) + np.arange(days, dtype=np.int64) * 86400
    return EnvironmentSeries(symbol=symbol, ts=ts, metrics=metrics)
