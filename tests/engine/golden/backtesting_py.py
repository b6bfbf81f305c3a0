"""sma_cross's rules written as a backtesting.py Strategy (kernc/backtesting.py, a test-only
dependency): the independent implementation the golden tests compare the engine with.

Run with backtesting.py's default ``finalize_trades=False``: a trade still open at the end is
not closed (not in ``# Trades`` or ``_trades``; ``stats["_strategy"].trades`` has it) and the
last equity marks it at the last close without an exit commission (its broker's equity is the
cash, less the entry commission, plus the open trades' P/L at that close; a trade's
commissions are booked when it closes) - the engine's end-of-data rule.  backtesting.py
charges its ``spread`` on the entry fill only, while the engine's slippage worsens both
fills, so the comparisons run with commission alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def sma_cross_stats(ts, open_, high, low, close, params: dict, *, cash: float, commission: float):
    """backtesting.py's stats of sma_cross(``params``) on these bars (``ts`` epoch seconds).

    Long when the fast SMA crosses above the slow one (both defined on this bar and the one
    before), filled at the next open with a stop ``sl_pct`` and a target ``sl_pct * rr``
    percent from that fill; exit at the next open after a cross below.  No entry is ordered on
    the last close (nothing follows to fill it).  Positions are whole units: give ``cash``
    large enough (~10^12 at prices near 100) that rounding is below 1e-9 relative."""
    from backtesting import Backtest, Strategy

    fast, slow = params["fast"], params["slow"]
    stop_frac = params["sl_pct"] / 100
    target_frac = params["sl_pct"] * params["rr"] / 100
    open_ = np.asarray(open_, dtype=float)
    n = len(open_)
    next_open = np.r_[open_[1:], np.nan]

    class SmaCross(Strategy):
        def init(self):
            c = pd.Series(self.data.Close)
            self.fast = self.I(lambda: c.rolling(fast).mean().to_numpy(), name="fast")
            self.slow = self.I(lambda: c.rolling(slow).mean().to_numpy(), name="slow")

        def next(self):
            i = len(self.data) - 1
            up = self.fast[-1] > self.slow[-1] and self.fast[-2] <= self.slow[-2]
            down = self.fast[-1] < self.slow[-1] and self.fast[-2] >= self.slow[-2]
            if not self.position and up and i < n - 1:
                # The engine's levels are distances from the entry fill, the next open;
                # backtesting.py takes absolute prices, so they are set from that open here.
                fill = next_open[i]
                self.buy(size=1 - 1e-12, sl=fill * (1 - stop_frac), tp=fill * (1 + target_frac))
            elif self.position and down:
                self.position.close()

    frame = pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": np.ones(n)},
        index=pd.to_datetime(np.asarray(ts), unit="s"),
    )
    bt = Backtest(frame, SmaCross, cash=cash, commission=commission)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # its notices (open trades at the end, the index's frequency)
        return bt.run()
