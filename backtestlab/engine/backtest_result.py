"""What one simulated backtest produces: its closed trades, the position still open at the
end (if any) and its equity curve."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Trades:
    """Trades of one backtest (parallel arrays): its closed trades, or its position open at
    the end (:attr:`BacktestResult.open_trade`).

    Prices are fills including slippage.  ``pnl_pct`` is net of both commissions, in percent
    of the equity just before entry.  ``exit_ts`` is the open time of the exit bar (also for
    intrabar stop/target exits).  A position open at the end is not closed: its "exit" is the
    last bar, its ``exit_price`` that bar's close (the mark, no slippage), its ``pnl_pct`` the
    marked equity (no exit commission) against the equity before entry, its reason ``"end"``.
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

    @classmethod
    def empty(cls) -> Trades:
        i, f = np.empty(0, dtype=np.int64), np.empty(0)
        return cls(i, i, i, i, f, f, np.empty(0, dtype=np.int8), f, np.empty(0, dtype="<U6"))


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
        The closed trades; every trade metric counts these only.
    bars_per_year : float
    initial_equity : float
    in_position : ndarray[bool]
        True where a position was held at some point during the bar.
    open_trade : Trades
        The position still open at the last bar, marked at its close (0 or 1 rows; not a
        closed trade, no exit costs).  ``equity[-1]`` includes its mark, so the product of
        ``1 + pnl_pct / 100`` over ``trades`` and ``open_trade`` is ``equity[-1] /
        initial_equity``.
    """

    ts: np.ndarray
    equity: np.ndarray
    trades: Trades
    bars_per_year: float
    initial_equity: float
    in_position: np.ndarray
    open_trade: Trades = field(default_factory=Trades.empty)
