"""Bull / bear / chop labels of candles computed from their own prices, without look-ahead.

Imported candles have no generated regime, so the lab labels them by this rule (the synthetic
universe keeps the labels it was generated with):

* over a trailing window of ``W`` bars (``window_days`` of bars, at least 2) ending at bar
  ``i``: the trend ``r = ln(close[i] / close[i - W])`` and the bar volatility ``s``, the
  standard deviation of the ``W`` one-bar log returns ending at ``i``;
* ``z = r / (s * sqrt(W))`` is the trend in units of what a random walk of that volatility
  would drift in ``W`` bars: ``bull`` when ``z >= threshold``, ``bear`` when
  ``z <= -threshold``, ``chop`` otherwise (and for the first ``W`` bars, and on a flat window).

Every input of bar ``i``'s label is known at its close, so a label never uses the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import REGIME_CHOP, REGIME_LABELS

REGIME_BULL = REGIME_LABELS.index("bull")
REGIME_BEAR = REGIME_LABELS.index("bear")
WINDOW_DAYS = 30.0
THRESHOLD = 1.0


def regimes_from_prices(
    close: np.ndarray,
    bar_seconds: int,
    *,
    window_days: float = WINDOW_DAYS,
    threshold: float = THRESHOLD,
) -> np.ndarray:
    """Regime codes (``REGIME_LABELS`` order) per bar; see the module docstring."""
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    out = np.full(n, REGIME_CHOP, dtype=np.int8)
    w = max(int(round(window_days * 86400 / bar_seconds)), 2)
    if n <= w:
        return out
    logp = np.log(close)
    ret = np.diff(logp, prepend=np.nan)
    sd = pd.Series(ret).rolling(w, min_periods=w).std(ddof=1).to_numpy()
    trend = np.full(n, np.nan)
    trend[w:] = logp[w:] - logp[:-w]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = trend / (sd * np.sqrt(w))
    out[z >= threshold] = REGIME_BULL
    out[z <= -threshold] = REGIME_BEAR
    return out
