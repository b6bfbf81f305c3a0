"""Regime coverage: did the trades' span include bull, bear and chop bars?

The data's per-bar regime labels (:data:`~backtestlab.engine.data.REGIME_LABELS`) are counted
over the bars from the first trade's entry to the last trade's exit; a regime is covered when
its share of those bars is at least ``min_share`` (a threshold of the approval config).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data import REGIME_LABELS


@dataclass(frozen=True)
class RegimeCoverage:
    bull: bool
    bear: bool
    chop: bool
    shares: dict | None = None  # label -> share of bars in the trades' span
    bars: int = 0
    trades: dict | None = None  # label -> trades entered in that regime

    def as_dict(self) -> dict:
        return {
            "bull": self.bull, "bear": self.bear, "chop": self.chop,
            "shares": self.shares or {}, "bars": self.bars, "trades": self.trades or {},
        }  # fmt: skip


def regime_coverage(
    ts: np.ndarray, regime: np.ndarray, start_ts: int, end_ts: int, *, min_share: float = 0.05
) -> RegimeCoverage:
    """Coverage over bars with ``start_ts <= ts <= end_ts``."""
    ts = np.asarray(ts)
    lo = int(np.searchsorted(ts, start_ts, side="left"))
    hi = int(np.searchsorted(ts, end_ts, side="right"))
    labels = np.asarray(regime)[lo:hi]
    n = int(labels.size)
    counts = np.bincount(labels.astype(np.int64), minlength=len(REGIME_LABELS)) if n else None
    shares = {name: (float(counts[k]) / n if n else 0.0) for k, name in enumerate(REGIME_LABELS)}
    covered = {name: n > 0 and shares[name] >= min_share for name in REGIME_LABELS}
    return RegimeCoverage(**covered, shares=shares, bars=n)


def trades_regime_coverage(data, result, *, min_share: float = 0.05) -> RegimeCoverage:
    """Coverage of a backtest's trades on ``data`` (a MarketData with regime labels)."""
    t = result.trades
    if len(t) == 0:
        zero = {n: 0 for n in REGIME_LABELS}
        return RegimeCoverage(False, False, False, {n: 0.0 for n in REGIME_LABELS}, 0, zero)
    cov = regime_coverage(
        data.ts, data.regime, int(t.entry_ts.min()), int(t.exit_ts.max()), min_share=min_share
    )
    entered = np.bincount(
        np.asarray(data.regime)[t.entry_idx].astype(np.int64), minlength=len(REGIME_LABELS)
    )
    trades = {name: int(entered[k]) for k, name in enumerate(REGIME_LABELS)}
    return replace(cov, trades=trades)
