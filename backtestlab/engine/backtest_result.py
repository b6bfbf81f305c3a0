"""What one simulated backtest produces: its closed trades and its equity curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Trades:
    """Closed trades of one backtest (parallel arrays).

    Prices are fills including slippage.  ``pnl_pct`` is net of both commissions, in percent
    of the equity just before entry.  ``exit_ts`` is the open time of the exit bar (also for
    intrabar stop/target exits and the ``"end"`` exit at the last close).
    """

    entry_idx: np.ndarray
    exit_idx: np.ndarray
    entry_ts: np.ndarray
    exit_ts: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    side: np.ndarray
    pnl_pct: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.entry_idx)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Outcome of one simulated backtest.

    Attributes
    ----------
    ts : ndarray[int64]
        Bar open times (epoch seconds).
    equity : ndarray[float64]
        Equity in quote currency marked to market at each bar's close.
    trades : Trades
    bars_per_year : float
    initial_equity : float
    in_position : ndarray[bool]
        True where a position was held at some point during the bar.
    """

    ts: np.ndarray
    equity: np.ndarray
    trades: Trades
    bars_per_year: float
    initial_equity: float
    in_position: np.ndarray
